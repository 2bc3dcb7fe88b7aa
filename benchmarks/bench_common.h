/* Helpers shared by the C clients of the benchmark suite (header-only, static functions).
 *
 * Every client takes the same options and prints its result as the last line of stdout, one
 * JSON object (see benchmarks/README.md):
 *   --url URL      ws:// or wss:// with ?v=1 (and &compression=zlib for the zlib workloads)
 *   --mode M       stream (count events until BENCH_END), latency, idle, scale
 *   --zlib Z       none, msg, stream: how the server compresses (for clients that must know)
 *   --ca FILE      the CA (the load server's self-signed certificate) for wss
 *   --n N          latency: round trips (default 20000)
 *   --conns N      idle, scale: connections (default 500)
 *   --secs S       scale: how long to hold the connections once all are ready (default 10);
 *                  idle: how long to wait before reading the RSS (default 1)
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H
#pragma GCC diagnostic ignored "-Wunused-function"

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

enum bench_mode { MODE_STREAM, MODE_LATENCY, MODE_IDLE, MODE_SCALE };
enum bench_zlib { ZL_NONE, ZL_MSG, ZL_STREAM };

typedef struct {
    const char *url;
    enum bench_mode mode;
    enum bench_zlib zlib;
    const char *ca;
    long n, conns;
    double secs;
    int pull; /* ubg_bench: pull API instead of callbacks */
    int hand_scan; /* ubg_bench: find members of d by a hand scan instead of parsing it with cJSON */
    /* parsed from url */
    int tls;
    char host[256];
    int port;
    char path[1024];
} bench_opts_t;

static void bench_usage(const char *prog) {
    fprintf(stderr,
            "usage: %s --url ws[s]://HOST:PORT/PATH?QUERY [--mode stream|latency|idle|scale] [--zlib none|msg|stream]\n"
            "          [--ca FILE] [--n N] [--conns N] [--secs S] [--pull] [--hand-scan]\n",
            prog);
    exit(2);
}

static void bench_parse_url(bench_opts_t *o) {
    const char *u = o->url, *rest;
    if (strncmp(u, "ws://", 5) == 0) {
        o->tls = 0;
        rest = u + 5;
        o->port = 80;
    } else if (strncmp(u, "wss://", 6) == 0) {
        o->tls = 1;
        rest = u + 6;
        o->port = 443;
    } else {
        fprintf(stderr, "bad url %s\n", u);
        exit(2);
    }
    const char *slash = strchr(rest, '/');
    const char *hostend = slash ? slash : rest + strlen(rest);
    const char *colon = memchr(rest, ':', (size_t)(hostend - rest));
    size_t hl = (size_t)((colon ? colon : hostend) - rest);
    if (hl >= sizeof o->host) exit(2);
    memcpy(o->host, rest, hl);
    o->host[hl] = 0;
    if (colon) o->port = atoi(colon + 1);
    snprintf(o->path, sizeof o->path, "%s", slash ? slash : "/");
}

/* Raises the limit of open files: 10,000 connections need more than 10,000 descriptors (the
 * library also keeps an eventfd per client). As root the hard limit is raised to 65536 too. */
static void bench_raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    struct rlimit want = {65536, 65536};
    if (rl.rlim_max < want.rlim_max && setrlimit(RLIMIT_NOFILE, &want) == 0) return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void bench_parse(bench_opts_t *o, int argc, char **argv) {
    bench_raise_nofile();
    memset(o, 0, sizeof *o);
    o->n = 20000;
    o->conns = 500;
    o->secs = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--pull")) {
            o->pull = 1;
            continue;
        }
        if (!strcmp(a, "--hand-scan")) {
            o->hand_scan = 1;
            continue;
        }
        if (!v) bench_usage(argv[0]);
        i++;
        if (!strcmp(a, "--url")) o->url = v;
        else if (!strcmp(a, "--ca")) o->ca = v;
        else if (!strcmp(a, "--n")) o->n = atol(v);
        else if (!strcmp(a, "--conns")) o->conns = atol(v);
        else if (!strcmp(a, "--secs")) o->secs = atof(v);
        else if (!strcmp(a, "--mode")) {
            if (!strcmp(v, "stream")) o->mode = MODE_STREAM;
            else if (!strcmp(v, "latency")) o->mode = MODE_LATENCY;
            else if (!strcmp(v, "idle")) o->mode = MODE_IDLE;
            else if (!strcmp(v, "scale")) o->mode = MODE_SCALE;
            else bench_usage(argv[0]);
        } else if (!strcmp(a, "--zlib")) {
            if (!strcmp(v, "none")) o->zlib = ZL_NONE;
            else if (!strcmp(v, "msg")) o->zlib = ZL_MSG;
            else if (!strcmp(v, "stream")) o->zlib = ZL_STREAM;
            else bench_usage(argv[0]);
        } else bench_usage(argv[0]);
    }
    if (!o->url) bench_usage(argv[0]);
    if (o->secs < 0) o->secs = o->mode == MODE_SCALE ? 10 : 1;
    bench_parse_url(o);
}

static inline uint64_t bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Resident set size of this process in KiB (VmRSS). */
static long bench_rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = atol(line + 6);
    fclose(f);
    return kb;
}

/* CPU seconds (user + system) of the whole process, every thread. */
static double bench_cpu_secs(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int bench_cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Prints the latency result: sorts the round trips (ns) and reports p50 and p99 in µs. */
static void bench_print_latency(uint64_t *rtt, long n, uint64_t sum) {
    qsort(rtt, (size_t)n, sizeof *rtt, bench_cmp_u64);
    double p50 = n ? rtt[(size_t)(n * 50 / 100)] / 1e3 : -1;
    double p99 = n ? rtt[(size_t)((n * 99) / 100 < n ? (n * 99) / 100 : n - 1)] / 1e3 : -1;
    printf("{\"count\":%ld,\"sum\":%llu,\"p50_us\":%.2f,\"p99_us\":%.2f}\n", n, (unsigned long long)sum, p50, p99);
    fflush(stdout);
}

/* Finds the value of the top-level member `key` of the JSON object text s[0..n) and returns a
 * pointer to its first character, or NULL. A small hand-written scanner: it walks the members
 * of the outer object, skipping nested values (strings with escapes, objects, arrays) without
 * looking into them, so a nested member of the same name is never taken. The JSON is already
 * known to be valid (the library validated it). */
static const char *bench_json_member(const char *s, size_t n, const char *key) {
    const char *p = s, *e = s + n;
    size_t kl = strlen(key);
    while (p < e && *p != '{') p++;
    if (p >= e) return NULL;
    p++;
    for (;;) {
        while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',')) p++;
        if (p >= e || *p != '"') return NULL;
        const char *k = ++p;
        while (p < e && *p != '"') p += (*p == '\\') ? 2 : 1;
        if (p >= e) return NULL;
        int match = (size_t)(p - k) == kl && memcmp(k, key, kl) == 0;
        p++;
        while (p < e && *p != ':') p++;
        p++;
        while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
        if (match) return p;
        /* skip the value */
        int depth = 0;
        while (p < e) {
            char c = *p;
            if (c == '"') {
                p++;
                while (p < e && *p != '"') p += (*p == '\\') ? 2 : 1;
                p++;
                if (depth == 0) break;
                continue;
            }
            if (c == '{' || c == '[') depth++;
            else if (c == '}' || c == ']') {
                if (depth == 0) break; /* end of the outer object */
                depth--;
                if (depth == 0) {
                    p++;
                    break;
                }
            } else if (depth == 0 && c == ',') break;
            p++;
        }
        if (p >= e || *p == '}') return NULL;
    }
}

/* Reads an unsigned integer at p (as returned by bench_json_member); -1 when there is none. */
static int64_t bench_json_uint(const char *p, const char *e) {
    if (!p || p >= e || *p < '0' || *p > '9') return -1;
    int64_t v = 0;
    while (p < e && *p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0');
    return v;
}

#endif
