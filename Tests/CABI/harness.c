#include "harness.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Under AddressSanitizer, children check for leaks before they _exit (which skips the
 * sanitizer's own exit-time check). Weak: absent in plain builds. */
int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

static const char *current_test = "?";

static void (*failure_cleanup)(void);

void test_on_failure(void (*cleanup)(void)) { failure_cleanup = cleanup; }

void test_fail(const char *file, int line, const char *fmt, ...) {
    if (failure_cleanup) failure_cleanup();
    va_list args;
    va_start(args, fmt);
    fprintf(stderr, "  FAIL %s (%s:%d): ", current_test, file, line);
    vfprintf(stderr, fmt, args);
    fprintf(stderr, "\n");
    va_end(args);
    fflush(stderr);
    _exit(1);
}

int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

int under_valgrind(void) {
    const char *preload = getenv("LD_PRELOAD");
    return preload && strstr(preload, "vgpreload") != NULL;
}

/* Under valgrind the first TLS handshake alone can take seconds on a busy machine; the result
 * codes, not the clock, tell a failure detected at once from a timeout there. */
int slack_ms(void) { return under_valgrind() ? 10000 : 1000; }

int json_number(const char *json, const char *key, long *out) {
    char pattern[128];
    snprintf(pattern, sizeof pattern, "\"%s\"", key);
    const char *at = strstr(json, pattern);
    if (!at) return 0;
    at += strlen(pattern);
    while (*at == ' ' || *at == ':') at++;
    char *end;
    long value = strtol(at, &end, 10);
    if (end == at) return 0;
    *out = value;
    return 1;
}

static int json_string(const char *json, const char *key, char *out, size_t size) {
    char pattern[128];
    snprintf(pattern, sizeof pattern, "\"%s\"", key);
    const char *at = strstr(json, pattern);
    if (!at) return 0;
    at = strchr(at + strlen(pattern), '"');
    if (!at) return 0;
    at++;
    const char *end = strchr(at, '"');
    if (!end || (size_t)(end - at) >= size) return 0;
    memcpy(out, at, (size_t)(end - at));
    out[end - at] = 0;
    return 1;
}

/* Waits up to `seconds` for a line from the dev gateway: a silent gateway fails the test with a
 * message instead of running into the test's deadline. */
static void expect_line(FILE *out, int seconds, const char *what) {
    struct pollfd p = {fileno(out), POLLIN, 0};
    /* stdio may already hold the line in its buffer. */
    if (out->_IO_read_ptr < out->_IO_read_end) return;
    CHECK_MSG(poll(&p, 1, seconds * 1000) == 1, "the dev gateway said nothing within %d s (%s)", seconds, what);
}

void devserver_start(devserver *s, const char *args) {
    memset(s, 0, sizeof *s);
    const char *python = getenv("UBG_PYTHON");
    if (!python) python = ".venv/bin/python3";
    char command[1024];
    snprintf(command, sizeof command, "exec %s -m utilbot_gateway.devserver %s", python, args ? args : "");
    int to_child[2], from_child[2];
    CHECK(pipe(to_child) == 0 && pipe(from_child) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, to_child[0], 0);
    posix_spawn_file_actions_adddup2(&actions, from_child[1], 1);
    posix_spawn_file_actions_addclose(&actions, to_child[1]);
    posix_spawn_file_actions_addclose(&actions, from_child[0]);
    char *argv[] = {"/bin/sh", "-c", command, NULL};
    setenv("PYTHONPATH", "bindings/python", 0);
    CHECK_MSG(posix_spawn(&s->pid, "/bin/sh", &actions, NULL, argv, environ) == 0, "cannot start %s", command);
    posix_spawn_file_actions_destroy(&actions);
    close(to_child[0]);
    close(from_child[1]);
    s->in = fdopen(to_child[1], "w");
    s->out = fdopen(from_child[0], "r");
    char line[2048];
    expect_line(s->out, 20, command);
    CHECK_MSG(fgets(line, sizeof line, s->out) != NULL, "the dev gateway printed nothing (%s)", command);
    CHECK_MSG(json_string(line, "url", s->url, sizeof s->url), "no url in %s", line);
    json_string(line, "ca", s->ca, sizeof s->ca);
    long port = 0;
    json_number(line, "port", &port);
    s->port = (int)port;
}

char *devserver_command(devserver *s, const char *command) {
    fprintf(s->in, "%s\n", command);
    fflush(s->in);
    size_t size = 1 << 20;
    char *line = malloc(size);
    expect_line(s->out, 15, command);
    CHECK_MSG(fgets(line, (int)size, s->out) != NULL, "no answer to %s", command);
    return line;
}

long devserver_stat(devserver *s, const char *key) {
    char *reply = devserver_command(s, "{\"cmd\":\"stats\"}");
    long value = -1;
    CHECK_MSG(json_number(reply, key, &value), "no %s in %s", key, reply);
    free(reply);
    return value;
}

void devserver_stop(devserver *s) {
    if (!s->pid) return;
    fclose(s->in);
    fclose(s->out);
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

void devserver_url(const devserver *s, const char *query, char *out, size_t size) {
    snprintf(out, size, "%s?%s", s->url, query);
}

void recorder_init(recorder *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->changed, NULL);
}

void recorder_destroy(recorder *r) {
    for (size_t i = 0; i < r->count; i++) {
        free(r->events[i]->name);
        free(r->events[i]->data);
        free(r->events[i]->message);
        free(r->events[i]);
    }
    free(r->events);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->changed);
}

static char *copy(const char *text) { return text ? strdup(text) : NULL; }

void recorder_callback(ubg_client_t client, const ubg_event_t *event, void *user_data) {
    (void)client;
    recorder *r = user_data;
    pthread_mutex_lock(&r->lock);
    if (r->count == r->capacity) {
        r->capacity = r->capacity ? r->capacity * 2 : 64;
        r->events = realloc(r->events, r->capacity * sizeof *r->events);
    }
    recorded_event *e = calloc(1, sizeof *e);
    r->events[r->count++] = e;
    e->type = event->type;
    e->name = copy(event->name);
    e->data = copy(event->data);
    e->message = copy(event->message);
    e->code = event->code;
    e->has_code = event->has_code;
    e->local = event->local;
    e->reconnect = event->reconnect;
    e->http_status = event->http_status;
    e->state = event->state;
    e->result = event->result;
    e->at_ms = now_ms();
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
}

static int matches(const recorded_event *e, ubg_event_type_t type, const char *name) {
    return e->type == type && (!name || (e->name && strcmp(e->name, name) == 0));
}

const recorded_event *wait_event(recorder *r, ubg_event_type_t type, const char *name, int timeout_ms) {
    int64_t deadline = now_ms() + timeout_ms;
    pthread_mutex_lock(&r->lock);
    for (;;) {
        for (; r->cursor < r->count; r->cursor++) {
            if (matches(r->events[r->cursor], type, name)) {
                const recorded_event *found = r->events[r->cursor++];
                pthread_mutex_unlock(&r->lock);
                return found;
            }
        }
        int64_t left = deadline - now_ms();
        if (left <= 0) break;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += left / 1000;
        until.tv_nsec += (left % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&r->changed, &r->lock, &until);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

size_t count_events(recorder *r, ubg_event_type_t type, const char *name) {
    pthread_mutex_lock(&r->lock);
    size_t n = 0;
    for (size_t i = 0; i < r->count; i++) n += matches(r->events[i], type, name);
    pthread_mutex_unlock(&r->lock);
    return n;
}

ubg_client_t make_client(ubg_loop_t loop, const char *url, const char *key, const char *ca, recorder *r) {
    ubg_client_t client = NULL;
    CHECK_OK(ubg_client_create(loop, key, &client));
    CHECK_OK(ubg_client_set_url(client, url));
    if (ca) CHECK_OK(ubg_client_set_tls_ca(client, ca, NULL));
    CHECK_OK(ubg_client_set_reconnect(client, 50, 400));
    if (r) CHECK_OK(ubg_client_set_event_callback(client, recorder_callback, r));
    return client;
}

static void *run_test_body(void *test) {
    ((const test_case *)test)->fn();
    return NULL;
}

/* The runner: every test in a child process of its own, with a deadline. */
/* One array of tests per file; add a file's suite here. */
extern const test_case api_tests[], gateway_tests[], security_tests[], fault_tests[], promise_tests[],
    proxy_tests[], stress_tests[], soak_tests[];
extern const size_t api_test_count, gateway_test_count, security_test_count, fault_test_count, promise_test_count,
    proxy_test_count, stress_test_count, soak_test_count;

int main(int argc, char **argv) {
    size_t passed = 0, failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    const test_case *all[256];
    size_t total = 0;
    for (size_t i = 0; i < api_test_count; i++) all[total++] = &api_tests[i];
    for (size_t i = 0; i < gateway_test_count; i++) all[total++] = &gateway_tests[i];
    for (size_t i = 0; i < security_test_count; i++) all[total++] = &security_tests[i];
    for (size_t i = 0; i < fault_test_count; i++) all[total++] = &fault_tests[i];
    for (size_t i = 0; i < promise_test_count; i++) all[total++] = &promise_tests[i];
    for (size_t i = 0; i < proxy_test_count; i++) all[total++] = &proxy_tests[i];
    for (size_t i = 0; i < stress_test_count; i++) all[total++] = &stress_tests[i];
    for (size_t i = 0; i < soak_test_count; i++) all[total++] = &soak_tests[i];
    for (size_t i = 0; i < total; i++) {
        const test_case *t = all[i];
        if (argc > 1 && !strstr(t->name, argv[1])) continue;
        /* The soak runs only when asked for by name (make test-c runs its short form). */
        if (argc <= 1 && strncmp(t->name, "soak:", 5) == 0) continue;
        int64_t start = now_ms();
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            current_test = t->name;
            alarm((unsigned)t->timeout_s);
            /* The body runs on a fresh thread, never on the forked main thread: the statically
             * linked Swift runtime caches each thread's kernel id for its futex locks, and after
             * fork() the child's main thread still carries the parent's, which can livelock a
             * runtime lock contended with the loop thread (about one child in 500). */
            pthread_t body;
            CHECK(pthread_create(&body, NULL, run_test_body, (void *)t) == 0);
            CHECK(pthread_join(body, NULL) == 0);
            if (__lsan_do_recoverable_leak_check && __lsan_do_recoverable_leak_check()) {
                fprintf(stderr, "  FAIL %s: memory leaked\n", t->name);
                _exit(1);
            }
            _exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (ok) {
            passed++;
            printf("ok   %s (%lld ms)\n", t->name, (long long)(now_ms() - start));
        } else {
            failed++;
            if (WIFSIGNALED(status))
                printf("FAIL %s: %s\n", t->name,
                       WTERMSIG(status) == SIGALRM ? "timed out" : strsignal(WTERMSIG(status)));
            else
                printf("FAIL %s\n", t->name);
        }
    }
    printf("%zu passed, %zu failed\n", passed, failed);
    return failed ? 1 : 0;
}
