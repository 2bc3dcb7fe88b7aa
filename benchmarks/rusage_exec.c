/* rusage_exec FILE CMD [ARGS...]: runs CMD and writes its CPU time and peak RSS to FILE as
 * {"cpu_secs":..,"maxrss_kb":..}; exits with CMD's status.
 *
 * Why: Linux keeps a process's peak RSS across exec(), and a child forked (or vforked) from
 * the Python runner starts with the runner's memory, so wait4() on it reports at least the
 * runner's RSS. Forked from this small program instead, a client's peak RSS is its own. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: rusage_exec FILE CMD [ARGS...]\n");
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0) return 127;
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        perror("rusage_exec: exec");
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) return 127;
    FILE *f = fopen(argv[1], "w");
    if (f) {
        fprintf(f, "{\"cpu_secs\":%.6f,\"maxrss_kb\":%ld}\n",
                ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
                ru.ru_maxrss);
        fclose(f);
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}
