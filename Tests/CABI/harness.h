/* A small harness for the C tests: each test runs in its own process with a deadline, against
 * a dev gateway (bindings/python/utilbot_gateway/devserver) it starts as a subprocess. */
#ifndef UBG_TEST_HARNESS_H
#define UBG_TEST_HARNESS_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "utilbot_gateway.h"

/* Test registration and assertions. A failed CHECK reports and ends the test process. */
typedef void (*test_fn)(void);
typedef struct { const char *name; test_fn fn; int timeout_s; } test_case;

void test_fail(const char *file, int line, const char *fmt, ...);
/* Runs `cleanup` if a check of the current test fails (one at a time: the last one set). */
void test_on_failure(void (*cleanup)(void));
#define CHECK(cond) do { if (!(cond)) test_fail(__FILE__, __LINE__, "%s", #cond); } while (0)
#define CHECK_MSG(cond, ...) do { if (!(cond)) test_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define CHECK_OK(expr) do { ubg_result_t rc_ = (expr); \
    if (rc_ != UBG_OK) test_fail(__FILE__, __LINE__, "%s returned %s", #expr, ubg_result_name(rc_)); } while (0)
#define CHECK_RC(expr, want) do { ubg_result_t rc_ = (expr); \
    if (rc_ != (want)) test_fail(__FILE__, __LINE__, "%s returned %s, expected %s", #expr, \
        ubg_result_name(rc_), ubg_result_name(want)); } while (0)

int64_t now_ms(void);
void sleep_ms(int ms);
/* Whether the tests run under valgrind (`make test-c-valgrind`), many times slower. */
int under_valgrind(void);
/* Slack for every upper bound on a time: a loaded 2-core machine, more under valgrind. Lower
 * bounds are never counted in a fixed window: tests wait for them with generous deadlines. */
int slack_ms(void);

/* ThreadSanitizer does not support a process that forks while it has threads. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

/* The dev gateway. */
typedef struct {
    pid_t pid;
    FILE *in;
    FILE *out;
    char url[256];     /* as announced: ws://127.0.0.1:PORT/ or wss://localhost:PORT/ */
    char ca[512];      /* the CA file with --tls */
    int port;
} devserver;

void devserver_start(devserver *s, const char *args);
/* Sends one command line and returns its one-line reply (malloc'd, caller frees). */
char *devserver_command(devserver *s, const char *command);
/* A counter from {"cmd":"stats"}, e.g. "connects_total". */
long devserver_stat(devserver *s, const char *key);
void devserver_stop(devserver *s);
/* The URL with a query appended (e.g. "v=1&fault_no_ack=1"). */
void devserver_url(const devserver *s, const char *query, char *out, size_t size);

/* Finds "key": <number> in a JSON text; returns 1 when found. */
int json_number(const char *json, const char *key, long *out);

/* Events recorded from a callback-mode client, copied, for the test thread to wait on. */
typedef struct {
    ubg_event_type_t type;
    char *name;
    char *data;
    char *message;
    int32_t code;
    int32_t has_code;
    int32_t local;
    int32_t reconnect;
    int32_t http_status;
    ubg_state_t state;
    ubg_result_t result;
    int64_t at_ms;
} recorded_event;

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    recorded_event **events; /* each event is allocated once: pointers handed out stay valid */
    size_t count;
    size_t capacity;
    size_t cursor; /* next event wait_event looks at */
} recorder;

void recorder_init(recorder *r);
void recorder_destroy(recorder *r);
/* An ubg_event_cb: pass the recorder as user_data. */
void recorder_callback(ubg_client_t client, const ubg_event_t *event, void *user_data);
/* Waits for the next event of `type` (and `name` for DISPATCH, NULL for any) after the cursor;
 * returns a copy (valid until recorder_destroy) or NULL on timeout. */
const recorded_event *wait_event(recorder *r, ubg_event_type_t type, const char *name, int timeout_ms);
size_t count_events(recorder *r, ubg_event_type_t type, const char *name);

/* A client on `loop` (NULL: default) with the recorder as callback, fast reconnects, pointed at
 * `url` (and the dev CA when `ca` is not NULL). */
ubg_client_t make_client(ubg_loop_t loop, const char *url, const char *key, const char *ca, recorder *r);

#endif
