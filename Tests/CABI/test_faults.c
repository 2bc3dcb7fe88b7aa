/* The fault matrix: the release .so against a raw, misbehaving server (Tests/Peers/fault_server.py)
 * and against network failures, one test per row.
 *
 * Every row checks: no crash, no hang (the test deadline), the first CLOSED event (result code,
 * close code, `local`, `reconnect`, `http_status`, words of its message), the reconnect policy
 * (attempts counted over a window; the gap from every reconnecting CLOSED to the next CONNECTING
 * is within the backoff cap: no storm, no giving up), no FATAL for a non-fatal fault, then
 * ubg_client_free(): the server sees the connection gone, no attempt follows the free, and
 * /proc/self/fd has as many entries as before the client was created.
 *
 * Backoff in every row: ubg_client_set_reconnect(client, 200, 800). With full jitter the n-th
 * delay is uniform in [0, min(800, 200 * 2^n)]: for a fault that fails at once, about 8 attempts
 * in 2 s on average and at most 15 with overwhelming probability (14 delays summing under 2 s),
 * while a client without backoff makes hundreds; at least 3 (the first three delays are at most
 * 200 + 400 + 800 ms). Rows whose attempts last a timeout T are bounded by window / T + 1.
 *
 * "CLOSED 1006 local": an attempt that failed on our side, with no close frame from the server
 * (RFC 6455 7.1.5: no close frame received means 1006).
 *
 * | fault                               | expected reaction                                              | reconnects  |
 * |-------------------------------------|----------------------------------------------------------------|-------------|
 * | connection refused                  | CLOSED 1006 local, UBG_ECONNECT, "could not connect",          | yes, 3..15  |
 * |                                     | "Connection refused"                                           | in 2 s      |
 * | DNS failure (a name under .invalid) | CLOSED 1006 local, UBG_ERESOLVE, "could not resolve", the name | yes, 3..15  |
 * | TCP reset mid-frame (after Hello)   | CLOSED 1006 local, UBG_EIO, "reset"                            | yes, 3..15  |
 * | silent server (half-open: accept,   | CLOSED 1006 local, UBG_ETIMEOUT after connect_ms (600),        | yes, 2..5   |
 * |   never answer the upgrade)         | "timed out after 600 ms", "upgrade"                            | in 2.5 s    |
 * | zombie (Hello, then never an ACK)   | CLOSED local, UBG_ETIMEOUT, "zombie", within 2-3 intervals     | yes, 2..7   |
 * | one byte per second (the Hello)     | CLOSED local, UBG_ETIMEOUT, "no Hello within 800 ms"           | yes, 2..4   |
 * | one byte per second (the 101)       | CLOSED 1006 local, UBG_ETIMEOUT, "timed out after 800 ms"      | yes, 2..4   |
 * | TLS: the server answers the         | CLOSED 1006 local, UBG_ETLS, "TLS", "handshake"                | yes, 3..15  |
 * |   ClientHello with HTTP (not TLS)   |                                                                |             |
 * | TLS: certificate for another name   | CLOSED 1006 local, UBG_ETLS, "certificate verification         | yes, 3..15  |
 * |                                     | failed", "hostname mismatch"                                   |             |
 * | malformed 101 status line           | CLOSED 1006 local, UBG_EHANDSHAKE, "status line", at once      | yes, 3..15  |
 * | 101 without Upgrade/Connection/     | CLOSED 1006 local, UBG_EHANDSHAKE, "Upgrade", at once          | yes, 3..15  |
 * |   Accept headers                    |                                                                |             |
 * | garbage instead of the HTTP answer  | CLOSED 1006 local, UBG_EHANDSHAKE, "status line", at once (not | yes, 3..15  |
 * |                                     | after the 5 s connect timeout)                                 |             |
 * | oversized headers (100 KB in a 101) | CLOSED 1006 local, UBG_EHANDSHAKE, "exceed 16384 bytes", at    | yes, 3..15  |
 * |                                     | once                                                           |             |
 * | upgrade refused with HTTP 503       | CLOSED 1006 local, UBG_EHANDSHAKE, http_status 503, "HTTP 503" | yes, 3..15  |
 * | close without a close frame (FIN    | READY, then CLOSED 1006 local, UBG_EPROTOCOL (the server broke | yes, 2..10  |
 * |   after a good session)             | the closing handshake; not UBG_ECLOSED, which means the host   | in 2.5 s    |
 * |                                     | closed the client), "without a close frame"                    |             |
 * | close frame with an invalid code    | READY, then CLOSED 1002 local, UBG_EPROTOCOL, "invalid code    | yes, 2..10  |
 * |   (1005; 999)                       | 1005"; our close frame to the server carries 1002;             |             |
 * |                                     | ubg_client_free() closes every connection at once              |             |
 * | valid close 4006, then the server   | READY, then CLOSED 4006 (local 0, UBG_OK, the reason "close    | yes, 2..10  |
 * |   never closes TCP                  | then hold"); our close frame echoes 4006; ubg_client_free()    |             |
 * |                                     | closes every connection at once (none lingers for the close    |             |
 * |                                     | timeout)                                                       |             |
 * | ping flood (~10,000 pings/s, 2 s)   | no CLOSED, stays READY, pongs sent, heartbeats go on and are   | no (1 conn) |
 * |                                     | ACKed, a send during the flood is delivered                    |             |
 * | never answers our close             | ubg_client_close(1000): close frame 1000 reaches the server;   | no          |
 * |   (ubg_client_close)                | CLOSED (reconnect 0) then STATE CLOSED within close_ms (1000)  |             |
 * |                                     | + 400 ms, not before; CLOSED 1006 local, UBG_ETIMEOUT, "did    |             |
 * |                                     | not answer" (the handshake did not complete, RFC 6455 7.1.5)   |             |
 * | never sends Hello (101, then        | CLOSED local, UBG_ETIMEOUT, "no Hello within 500 ms"           | yes, 2..5   |
 * |   nothing)                          |                                                                | in 2.5 s    |
 *
 * Timing bounds get 1 s of slack (10 s under valgrind). Set UBG_FAULTS_VERBOSE=1 to print the
 * first CLOSED event of every row and the fault server's log.
 */
#include <arpa/inet.h>
#include <malloc.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

extern char **environ;

#define BACKOFF_BASE_MS 200
#define BACKOFF_CAP_MS 800
/* Slack on every timing bound: loop latency, a loaded 2-core machine; more under valgrind
 * (`make test-c-valgrind` runs this suite too), where the first TLS handshake takes 1-2.5 s. */
#define SLACK_MS slack_ms()
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif
#ifndef UNDER_SANITIZER
#define UNDER_SANITIZER 0
#endif

/* ------------------------------------------------------------------------------------------ */
/* The fault server (Tests/Peers/fault_server.py) */

typedef struct {
    pid_t pid;
    FILE *in;
    FILE *out;
    int port;
    int tls_port;
    int tls_wrong_host_port;
    int tls_ok_port; /* the plain port's paths over TLS, certified by `ca` for 127.0.0.1 */
    char ca[512];
} fault_server;

static int json_text(const char *json, const char *key, char *out, size_t size) {
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

static void fs_start(fault_server *s) {
    memset(s, 0, sizeof *s);
    const char *python = getenv("UBG_PYTHON");
    if (!python) python = ".venv/bin/python3";
    char command[1024];
    snprintf(command, sizeof command, "exec %s Tests/Peers/fault_server.py%s", python,
             getenv("UBG_FAULTS_VERBOSE") ? " --verbose" : "");
    int to_child[2], from_child[2];
    CHECK(pipe(to_child) == 0 && pipe(from_child) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, to_child[0], 0);
    posix_spawn_file_actions_adddup2(&actions, from_child[1], 1);
    posix_spawn_file_actions_addclose(&actions, to_child[1]);
    posix_spawn_file_actions_addclose(&actions, from_child[0]);
    char *argv[] = {"/bin/sh", "-c", command, NULL};
    CHECK_MSG(posix_spawn(&s->pid, "/bin/sh", &actions, NULL, argv, environ) == 0, "cannot start %s", command);
    posix_spawn_file_actions_destroy(&actions);
    close(to_child[0]);
    close(from_child[1]);
    s->in = fdopen(to_child[1], "w");
    s->out = fdopen(from_child[0], "r");
    char line[2048];
    CHECK_MSG(fgets(line, sizeof line, s->out) != NULL, "the fault server printed nothing (%s)", command);
    long port = 0, tls = 0, wrong = 0, ok = 0;
    CHECK_MSG(json_number(line, "port", &port) && json_number(line, "tls_port", &tls), "no ports in %s", line);
    json_number(line, "tls_wrong_host_port", &wrong);
    json_number(line, "tls_ok_port", &ok);
    json_text(line, "ca", s->ca, sizeof s->ca);
    s->port = (int)port;
    s->tls_port = (int)tls;
    s->tls_wrong_host_port = (int)wrong;
    s->tls_ok_port = (int)ok;
}

/* One command, its one-line answer (malloc'd). */
static char *fs_command(fault_server *s, const char *command) {
    fprintf(s->in, "%s\n", command);
    fflush(s->in);
    size_t size = 1 << 16;
    char *line = malloc(size);
    CHECK_MSG(fgets(line, (int)size, s->out) != NULL, "no answer to %s", command);
    return line;
}

static char *fs_count_reply(fault_server *s, const char *path) {
    char command[256];
    snprintf(command, sizeof command, "{\"cmd\":\"count\",\"path\":\"%s\"}", path);
    return fs_command(s, command);
}

/* A counter of a path: "connections", "open", "heartbeats", "pongs", "pings_sent", ... */
static long fs_count(fault_server *s, const char *path, const char *key) {
    char *reply = fs_count_reply(s, path);
    long value = -1;
    CHECK_MSG(json_number(reply, key, &value), "no %s in %s", key, reply);
    free(reply);
    return value;
}

/* Waits until the server holds no connection on `path`; returns the time it took, -1 if never. */
static int fs_wait_gone(fault_server *s, const char *path, int timeout_ms) {
    int64_t start = now_ms();
    while (now_ms() - start <= timeout_ms) {
        if (fs_count(s, path, "open") == 0) return (int)(now_ms() - start);
        sleep_ms(20);
    }
    return -1;
}

static void fs_stop(fault_server *s) {
    if (!s->pid) return;
    fclose(s->in); /* stdin EOF: the server exits */
    fclose(s->out);
    int64_t deadline = now_ms() + 3000;
    int status;
    while (waitpid(s->pid, &status, WNOHANG) == 0) {
        if (now_ms() > deadline) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            break;
        }
        sleep_ms(10);
    }
    s->pid = 0;
}

/* The path without its query, as the server counts it. */
static void path_only(const char *path_query, char *out, size_t size) {
    snprintf(out, size, "%s", path_query);
    char *q = strchr(out, '?');
    if (q) *q = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* A recorder with stable pointers and the `result` field (the harness's recorder reallocates its
 * array, which moves events a test still points to, and does not keep `result`). */

typedef struct {
    ubg_event_type_t type;
    ubg_state_t state;
    ubg_result_t result;
    int32_t code;
    int32_t local;
    int32_t reconnect;
    int32_t http_status;
    char name[64];
    char message[512];
    int64_t at_ms;
} fev;

#define FREC_CAPACITY 8192

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    fev *events;
    size_t count;
    size_t dropped;
    size_t cursor;
} frec;

static void frec_init(frec *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->changed, NULL);
    r->events = calloc(FREC_CAPACITY, sizeof *r->events);
    CHECK(r->events != NULL);
}

static void frec_destroy(frec *r) {
    free(r->events);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->changed);
}

static void frec_callback(ubg_client_t client, const ubg_event_t *event, void *user_data) {
    (void)client;
    frec *r = user_data;
    pthread_mutex_lock(&r->lock);
    if (r->count == FREC_CAPACITY) {
        r->dropped++;
    } else {
        fev *e = &r->events[r->count];
        memset(e, 0, sizeof *e);
        e->type = event->type;
        e->state = event->state;
        e->result = event->result;
        e->code = event->code;
        e->local = event->local;
        e->reconnect = event->reconnect;
        e->http_status = event->http_status;
        if (event->name) snprintf(e->name, sizeof e->name, "%s", event->name);
        if (event->message) snprintf(e->message, sizeof e->message, "%s", event->message);
        e->at_ms = now_ms();
        r->count++;
    }
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
}

static int fev_matches(const fev *e, ubg_event_type_t type, int state) {
    return e->type == type && (state < 0 || e->state == (ubg_state_t)state);
}

/* The next event of `type` (and, for STATE, `state`; -1 for any) after the cursor. */
static const fev *frec_wait(frec *r, ubg_event_type_t type, int state, int timeout_ms) {
    int64_t deadline = now_ms() + timeout_ms;
    pthread_mutex_lock(&r->lock);
    for (;;) {
        for (; r->cursor < r->count; r->cursor++) {
            if (fev_matches(&r->events[r->cursor], type, state)) {
                const fev *found = &r->events[r->cursor++];
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

static size_t frec_count(frec *r, ubg_event_type_t type, int state) {
    pthread_mutex_lock(&r->lock);
    size_t n = 0;
    for (size_t i = 0; i < r->count; i++) n += fev_matches(&r->events[i], type, state);
    pthread_mutex_unlock(&r->lock);
    return n;
}

static void note(const char *row, const fev *e) {
    if (!getenv("UBG_FAULTS_VERBOSE") || !e) return;
    fprintf(stderr, "    [%s] CLOSED code=%d local=%d reconnect=%d http_status=%d result=%s state=%s message=\"%s\"\n",
            row, e->code, e->local, e->reconnect, e->http_status, ubg_result_name(e->result), ubg_state_name(e->state),
            e->message);
}

/* ------------------------------------------------------------------------------------------ */
/* Shared checks */

static int count_fds(void) {
    DIR *dir = opendir("/proc/self/fd");
    CHECK(dir != NULL);
    int n = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        if (entry->d_name[0] != '.') n++;
    closedir(dir);
    return n;
}

/* After ubg_client_free(): the descriptor count comes back to `before` (allowing a short wait). */
static void check_no_fd_leak(int before) {
    int64_t deadline = now_ms() + 1000 + SLACK_MS;
    int now = count_fds();
    while (now != before && now_ms() < deadline) {
        sleep_ms(20);
        now = count_fds();
    }
    CHECK_MSG(now == before, "file descriptors leak: %d before the client, %d after ubg_client_free", before, now);
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, (struct sockaddr *)&address, sizeof address) == 0);
    socklen_t length = sizeof address;
    CHECK(getsockname(fd, (struct sockaddr *)&address, &length) == 0);
    close(fd);
    return ntohs(address.sin_port);
}

static ubg_client_t fault_client(ubg_loop_t loop, const char *url, const char *ca, uint32_t connect_ms,
                                 uint32_t hello_ms, uint32_t close_ms, frec *r) {
    ubg_client_t client = NULL;
    CHECK_OK(ubg_client_create(loop, "fault-key", &client));
    CHECK_OK(ubg_client_set_url(client, url));
    if (ca) CHECK_OK(ubg_client_set_tls_ca(client, ca, NULL));
    CHECK_OK(ubg_client_set_reconnect(client, BACKOFF_BASE_MS, BACKOFF_CAP_MS));
    CHECK_OK(ubg_client_set_timeouts(client, connect_ms, hello_ms, close_ms));
    CHECK_OK(ubg_client_set_event_callback(client, frec_callback, r));
    return client;
}

/* Every test body runs on a fresh thread, never on the main thread of the forked test process.
 * The statically linked Swift runtime caches each thread's kernel thread id in thread-local
 * storage (swift::threading_impl::linux::ulock_get_tid) and uses it as the owner of its PI futex
 * locks. The runner's fork() gives the child's main thread the parent's cached id, so the first
 * time that thread and the library's loop thread contend for a runtime lock (e.g. both
 * instantiating generic metadata at once), both spin forever in FUTEX_LOCK_PI/UNLOCK_PI errors:
 * about 1 forked child in 500 hangs (reported to the lead; see the fault-matrix report). A new
 * thread has a fresh cache. */
typedef struct {
    void (*fn)(void);
} body;

static void *run_body(void *arg) {
    ((const body *)arg)->fn();
    return NULL;
}

static void on_fresh_thread(void (*fn)(void)) {
    body b = {fn};
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, run_body, &b) == 0);
    CHECK(pthread_join(thread, NULL) == 0);
}

/* Attempts in [lo, hi]; no FATAL; every CLOSED says it reconnects; after every reconnecting
 * CLOSED the next attempt (STATE CONNECTING) starts within the backoff cap. */
static void check_reconnect_policy(const char *row, frec *r, long attempts, int lo, int hi) {
    CHECK_MSG(attempts >= lo && attempts <= hi, "[%s] %ld connection attempts, expected %d..%d", row, attempts, lo, hi);
    CHECK_MSG(frec_count(r, UBG_EVENT_FATAL, -1) == 0, "[%s] FATAL for a fault that is not fatal", row);
    int64_t now = now_ms();
    pthread_mutex_lock(&r->lock);
    int ok = 1;
    char why[700] = "";
    for (size_t i = 0; i < r->count && ok; i++) {
        const fev *e = &r->events[i];
        if (e->type != UBG_EVENT_CLOSED) continue;
        if (!e->reconnect) {
            ok = 0;
            snprintf(why, sizeof why, "a CLOSED with reconnect 0 (\"%s\")", e->message);
            break;
        }
        const fev *next = NULL;
        for (size_t j = i + 1; j < r->count && !next; j++)
            if (fev_matches(&r->events[j], UBG_EVENT_STATE, UBG_STATE_CONNECTING)) next = &r->events[j];
        int64_t gap = (next ? next->at_ms : now) - e->at_ms;
        if (gap > BACKOFF_CAP_MS + SLACK_MS) {
            ok = 0;
            snprintf(why, sizeof why, "%s %lld ms after a CLOSED (cap %d ms)", next ? "the next attempt came" : "no attempt",
                     (long long)gap, BACKOFF_CAP_MS);
        }
    }
    pthread_mutex_unlock(&r->lock);
    CHECK_MSG(ok, "[%s] reconnect policy: %s", row, why);
}

/* The client's own count of its attempts agrees with its statistics. */
static void check_stats_reconnects(const char *row, ubg_client_t client, frec *r) {
    /* Events first: an attempt that begins in between is counted by the statistics (at once) and
     * not yet by the recorder, never the other way round. */
    long connecting = (long)frec_count(r, UBG_EVENT_STATE, UBG_STATE_CONNECTING);
    ubg_stats_t stats;
    stats.size = sizeof stats;
    CHECK_OK(ubg_client_get_stats(client, &stats));
    long reconnects = (long)stats.reconnects;
    CHECK_MSG(reconnects == connecting - 1 || reconnects == connecting,
              "[%s] stats.reconnects %ld, but %ld attempts began", row, reconnects, connecting);
}

static int contains(const char *text, const char *word) { return text && word && strstr(text, word) != NULL; }

/* ------------------------------------------------------------------------------------------ */
/* One row: a fault that makes every attempt fail */

enum target { PLAIN, TLS_GARBAGE, TLS_WRONG_HOST, REFUSED, NO_DNS };

typedef struct {
    const char *row;
    enum target target;
    const char *path;       /* PLAIN: path and query on the fault server */
    ubg_result_t result;    /* expected in every CLOSED */
    int32_t code;           /* expected close code in the first CLOSED */
    int32_t http_status;    /* expected in the first CLOSED */
    const char *words[3];   /* each must be in the first CLOSED's message */
    uint32_t connect_ms;
    uint32_t hello_ms;
    int ready_first;        /* the fault comes after a READY */
    int first_within_ms;    /* the first CLOSED comes at most this long after connect (+ slack) */
    int at_least_ms;        /* ... and not before this (a timeout must run its course) */
    int window_ms;          /* attempts are counted over this window from connect */
    int min_attempts, max_attempts;
    int32_t client_close_code; /* the code of our close frame the server must see (0: not checked) */
    int remote;             /* the server closed (a valid close frame): local 0, result UBG_OK */
} fault_case;

static void check_first_closed(const fault_case *fc, const fev *closed) {
    CHECK_MSG(closed != NULL, "[%s] no CLOSED event", fc->row);
    note(fc->row, closed);
    CHECK_MSG(closed->result == fc->result, "[%s] result %s, expected %s (message \"%s\")", fc->row,
              ubg_result_name(closed->result), ubg_result_name(fc->result), closed->message);
    CHECK_MSG(closed->local == !fc->remote, "[%s] local %d, expected %d (message \"%s\")", fc->row, closed->local,
              !fc->remote, closed->message);
    CHECK_MSG(closed->reconnect == 1, "[%s] reconnect %d, expected 1", fc->row, closed->reconnect);
    if (fc->code)
        CHECK_MSG(closed->code == fc->code, "[%s] close code %d, expected %d (message \"%s\")", fc->row, closed->code,
                  fc->code, closed->message);
    CHECK_MSG(closed->http_status == fc->http_status, "[%s] http_status %d, expected %d", fc->row, closed->http_status,
              fc->http_status);
    for (int i = 0; i < 3 && fc->words[i]; i++)
        CHECK_MSG(contains(closed->message, fc->words[i]), "[%s] message \"%s\" lacks \"%s\"", fc->row, closed->message,
                  fc->words[i]);
}

/* How long a row waits for its minimum number of attempts. */
#define ATTEMPT_PATIENCE_MS 20000

static long count_attempts(fault_server *s, int served, const char *counted, frec *r) {
    return served ? fs_count(s, counted, "connections") : (long)frec_count(r, UBG_EVENT_STATE, UBG_STATE_CONNECTING);
}

static void run_fault_here(const fault_case *fc) {
    fault_server s = {0};
    int served = fc->target == PLAIN || fc->target == TLS_GARBAGE || fc->target == TLS_WRONG_HOST;
    if (served) fs_start(&s);
    char url[512], counted[256] = "";
    const char *ca = NULL;
    switch (fc->target) {
    case PLAIN:
        snprintf(url, sizeof url, "ws://127.0.0.1:%d%s", s.port, fc->path);
        path_only(fc->path, counted, sizeof counted);
        break;
    case TLS_GARBAGE:
        snprintf(url, sizeof url, "wss://127.0.0.1:%d/", s.tls_port);
        snprintf(counted, sizeof counted, "/tls-garbage");
        break;
    case TLS_WRONG_HOST:
        CHECK_MSG(s.tls_wrong_host_port > 0 && s.ca[0], "the fault server has no wrong-host TLS port (cryptography?)");
        snprintf(url, sizeof url, "wss://localhost:%d/", s.tls_wrong_host_port);
        snprintf(counted, sizeof counted, "/tls-wrong-host");
        ca = s.ca;
        break;
    case REFUSED:
        snprintf(url, sizeof url, "ws://127.0.0.1:%d/", free_port());
        break;
    case NO_DNS:
        snprintf(url, sizeof url, "ws://no-such-gateway.invalid:8080/");
        break;
    }
    ubg_loop_t loop;
    CHECK_OK(ubg_loop_create(&loop));
    int fds_before = count_fds();
    frec r;
    frec_init(&r);
    ubg_client_t client = fault_client(loop, url, ca, fc->connect_ms, fc->hello_ms, 0, &r);
    int64_t start = now_ms();
    CHECK_OK(ubg_client_connect(client));

    if (fc->ready_first) CHECK_MSG(frec_wait(&r, UBG_EVENT_READY, -1, 3000), "[%s] never READY before the fault", fc->row);
    const fev *closed = frec_wait(&r, UBG_EVENT_CLOSED, -1, fc->first_within_ms + SLACK_MS + 3000);
    check_first_closed(fc, closed);
    int64_t after = closed->at_ms - start;
    CHECK_MSG(after <= fc->first_within_ms + SLACK_MS, "[%s] the first CLOSED came %lld ms after connect, expected <= %d",
              fc->row, (long long)after, fc->first_within_ms);
    CHECK_MSG(after >= fc->at_least_ms, "[%s] the first CLOSED came %lld ms after connect, expected >= %d", fc->row,
              (long long)after, fc->at_least_ms);
    if (fc->ready_first) CHECK_MSG(frec_count(&r, UBG_EVENT_READY, -1) >= 1, "[%s] no READY", fc->row);
    else CHECK_MSG(frec_count(&r, UBG_EVENT_READY, -1) == 0, "[%s] READY on a broken server", fc->row);

    if (fc->client_close_code) {
        char want[32];
        snprintf(want, sizeof want, "%d", fc->client_close_code);
        int64_t deadline = now_ms() + 1000;
        char *reply = NULL;
        for (;;) {
            reply = fs_count_reply(&s, counted);
            if (strstr(reply, want) || now_ms() > deadline) break;
            free(reply);
            sleep_ms(20);
        }
        CHECK_MSG(strstr(reply, want), "[%s] our close frame with %s never reached the server: %s", fc->row, want, reply);
        free(reply);
    }

    /* No storm: at most max_attempts within the window (a slow machine only makes fewer). The
     * lower bound is waited for with a generous deadline instead of counted in the window: a
     * busy machine or valgrind (a TLS attempt can take seconds there) makes attempts later,
     * never fewer. */
    int64_t left = start + fc->window_ms - now_ms();
    if (left > 0) sleep_ms((int)left);
    long attempts = count_attempts(&s, served, counted, &r);
    CHECK_MSG(attempts <= fc->max_attempts, "[%s] %ld connection attempts within %d ms, expected at most %d", fc->row,
              attempts, fc->window_ms, fc->max_attempts);
    int64_t patience = now_ms() + ATTEMPT_PATIENCE_MS;
    while (attempts < fc->min_attempts && now_ms() < patience) {
        sleep_ms(50);
        attempts = count_attempts(&s, served, counted, &r);
    }
    check_reconnect_policy(fc->row, &r, attempts, fc->min_attempts, fc->max_attempts);
    check_stats_reconnects(fc->row, client, &r);
    /* Every attempt failed the same way. */
    pthread_mutex_lock(&r.lock);
    for (size_t i = 0; i < r.count; i++) {
        const fev *e = &r.events[i];
        if (e->type == UBG_EVENT_CLOSED && e->result != fc->result)
            test_fail(__FILE__, __LINE__, "[%s] a later CLOSED has result %s (\"%s\")", fc->row, ubg_result_name(e->result),
                      e->message);
    }
    pthread_mutex_unlock(&r.lock);

    CHECK_OK(ubg_client_free(client));
    if (served) {
        int gone = fs_wait_gone(&s, counted, 1600 + SLACK_MS);
        if (gone < 0) {
            long open = fs_count(&s, counted, "open");
            test_fail(__FILE__, __LINE__,
                      "[%s] %ld of %ld connections are still open %d ms after ubg_client_free, which must close "
                      "them at once (%d more file descriptors than before the client)",
                      fc->row, open, fs_count(&s, counted, "connections"), 1600 + SLACK_MS,
                      count_fds() - fds_before);
        }
        /* An attempt whose request left before the free may reach the server's count a little
         * later: let it settle, then no new attempt may come for longer than any backoff delay. */
        sleep_ms(300);
        long before = fs_count(&s, counted, "connections");
        sleep_ms(BACKOFF_CAP_MS + 200);
        long later = fs_count(&s, counted, "connections");
        CHECK_MSG(later == before, "[%s] %ld connection attempts more than 300 ms after ubg_client_free", fc->row,
                  later - before);
    }
    check_no_fd_leak(fds_before);
    CHECK_OK(ubg_loop_free(loop));
    fs_stop(&s);
    frec_destroy(&r);
}

static void *run_fault_thread(void *arg) {
    run_fault_here(arg);
    return NULL;
}

static void run_fault(const fault_case *fc) {
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, run_fault_thread, (void *)fc) == 0);
    CHECK(pthread_join(thread, NULL) == 0);
}

/* ------------------------------------------------------------------------------------------ */
/* The rows */

static void test_connection_refused(void) {
    fault_case fc = {.row = "refused", .target = REFUSED, .result = UBG_ECONNECT, .code = 1006,
                     .words = {"could not connect", "onnection refused"}, .connect_ms = 3000,
                     .first_within_ms = 300, .window_ms = 2000, .min_attempts = 3, .max_attempts = 15};
    run_fault(&fc);
}

static void test_dns_failure(void) {
    fault_case fc = {.row = "dns", .target = NO_DNS, .result = UBG_ERESOLVE, .code = 1006,
                     .words = {"could not resolve", "no-such-gateway.invalid"}, .connect_ms = 3000,
                     .first_within_ms = 1500, .window_ms = 2000, .min_attempts = 3, .max_attempts = 15};
    run_fault(&fc);
}

static void test_reset_mid_frame(void) {
    fault_case fc = {.row = "reset mid-frame", .target = PLAIN, .path = "/reset-mid-frame?hb=1000",
                     .result = UBG_EIO, .code = 1006, .words = {"reset"}, .connect_ms = 3000, .hello_ms = 3000,
                     .first_within_ms = 500, .window_ms = 2000, .min_attempts = 3, .max_attempts = 15};
    run_fault(&fc);
}

static void test_silent_half_open(void) {
    fault_case fc = {.row = "silent", .target = PLAIN, .path = "/silent", .result = UBG_ETIMEOUT, .code = 1006,
                     .words = {"timed out after 600 ms", "upgrade"}, .connect_ms = 600, .hello_ms = 3000,
                     .first_within_ms = 600, .at_least_ms = 550, .window_ms = 2500, .min_attempts = 2,
                     .max_attempts = 5};
    run_fault(&fc);
}

static void test_zombie_after_hello(void) {
    /* Hello every 200 ms, never an ACK: the beat at 0 is unanswered when the one at 200 is due
     * (200 ms; nothing else arrived): a zombie within 2-3 intervals. */
    fault_case fc = {.row = "zombie", .target = PLAIN, .path = "/zombie?hb=200", .result = UBG_ETIMEOUT,
                     .words = {"zombie"}, .connect_ms = 3000, .hello_ms = 3000, .first_within_ms = 600,
                     .at_least_ms = 150, .window_ms = 2500, .min_attempts = 2, .max_attempts = 7};
    run_fault(&fc);
}

static void test_one_byte_per_second_hello(void) {
    fault_case fc = {.row = "slow hello", .target = PLAIN, .path = "/slow", .result = UBG_ETIMEOUT,
                     .words = {"no Hello within 800 ms"}, .connect_ms = 3000, .hello_ms = 800,
                     .first_within_ms = 800, .at_least_ms = 750, .window_ms = 2500, .min_attempts = 2,
                     .max_attempts = 4};
    run_fault(&fc);
}

static void test_one_byte_per_second_101(void) {
    fault_case fc = {.row = "slow 101", .target = PLAIN, .path = "/slow-101", .result = UBG_ETIMEOUT, .code = 1006,
                     .words = {"timed out after 800 ms"}, .connect_ms = 800, .hello_ms = 3000,
                     .first_within_ms = 800, .at_least_ms = 750, .window_ms = 2500, .min_attempts = 2,
                     .max_attempts = 4};
    run_fault(&fc);
}

static void test_tls_handshake_not_tls(void) {
    fault_case fc = {.row = "TLS not TLS", .target = TLS_GARBAGE, .result = UBG_ETLS, .code = 1006,
                     .words = {"TLS", "handshake"}, .connect_ms = 5000, .first_within_ms = 500, .window_ms = 2000,
                     .min_attempts = 3, .max_attempts = 15};
    run_fault(&fc);
}

static void test_tls_certificate_for_another_name(void) {
    fault_case fc = {.row = "TLS wrong name", .target = TLS_WRONG_HOST, .result = UBG_ETLS, .code = 1006,
                     .words = {"certificate verification failed", "hostname mismatch"}, .connect_ms = 5000,
                     .first_within_ms = 500, .window_ms = 2000, .min_attempts = 3, .max_attempts = 15};
    run_fault(&fc);
}

static void test_malformed_101(void) {
    fault_case fc = {.row = "bad 101", .target = PLAIN, .path = "/bad-101", .result = UBG_EHANDSHAKE, .code = 1006,
                     .words = {"status line"}, .connect_ms = 5000, .first_within_ms = 500, .window_ms = 2000,
                     .min_attempts = 3, .max_attempts = 15};
    run_fault(&fc);
}

static void test_101_without_upgrade_headers(void) {
    fault_case fc = {.row = "101 headers", .target = PLAIN, .path = "/bad-101-headers", .result = UBG_EHANDSHAKE,
                     .code = 1006, .words = {"Upgrade"}, .connect_ms = 5000, .first_within_ms = 500,
                     .window_ms = 2000, .min_attempts = 3, .max_attempts = 15};
    run_fault(&fc);
}

static void test_garbage_before_the_handshake(void) {
    fault_case fc = {.row = "garbage", .target = PLAIN, .path = "/garbage", .result = UBG_EHANDSHAKE, .code = 1006,
                     .words = {"status line"}, .connect_ms = 5000, .first_within_ms = 500, .window_ms = 2000,
                     .min_attempts = 3, .max_attempts = 15};
    run_fault(&fc);
}

static void test_oversized_headers(void) {
    fault_case fc = {.row = "huge headers", .target = PLAIN, .path = "/huge-headers", .result = UBG_EHANDSHAKE,
                     .code = 1006, .words = {"exceed 16384 bytes"}, .connect_ms = 5000, .first_within_ms = 500,
                     .window_ms = 2000, .min_attempts = 3, .max_attempts = 15};
    run_fault(&fc);
}

static void test_upgrade_refused_503(void) {
    fault_case fc = {.row = "HTTP 503", .target = PLAIN, .path = "/status/503", .result = UBG_EHANDSHAKE,
                     .code = 1006, .http_status = 503, .words = {"HTTP 503"}, .connect_ms = 5000,
                     .first_within_ms = 500, .window_ms = 2000, .min_attempts = 3, .max_attempts = 15};
    run_fault(&fc);
}

static void test_close_without_close_frame(void) {
    /* The result of a connection the server ended without a close frame: not UBG_OK and not
     * UBG_ECLOSED ("the client is closed"): the server broke the closing handshake. Checked below
     * by the result field; EPROTOCOL is what the matrix expects. */
    fault_case fc = {.row = "no close frame", .target = PLAIN, .path = "/no-close-frame?hb=1000&after=300",
                     .result = UBG_EPROTOCOL, .code = 1006, .words = {"without a close frame"}, .connect_ms = 3000,
                     .hello_ms = 3000, .ready_first = 1, .first_within_ms = 800, .at_least_ms = 250,
                     .window_ms = 2500, .min_attempts = 2, .max_attempts = 10};
    run_fault(&fc);
}

static void test_close_frame_with_invalid_code(void) {
    fault_case fc = {.row = "close 1005", .target = PLAIN, .path = "/bad-close-code?code=1005&hb=1000&after=300",
                     .result = UBG_EPROTOCOL, .code = 1002, .words = {"invalid code 1005"}, .connect_ms = 3000,
                     .hello_ms = 3000, .ready_first = 1, .first_within_ms = 800, .at_least_ms = 250,
                     .window_ms = 2500, .min_attempts = 2, .max_attempts = 10, .client_close_code = 1002};
    run_fault(&fc);
}

static void test_close_frame_with_code_999(void) {
    fault_case fc = {.row = "close 999", .target = PLAIN, .path = "/bad-close-code?code=999&hb=1000&after=200",
                     .result = UBG_EPROTOCOL, .code = 1002, .words = {"invalid code 999"}, .connect_ms = 3000,
                     .hello_ms = 3000, .ready_first = 1, .first_within_ms = 700, .at_least_ms = 150,
                     .window_ms = 1500, .min_attempts = 2, .max_attempts = 8, .client_close_code = 1002};
    run_fault(&fc);
}

static void test_close_frame_then_the_server_holds_tcp(void) {
    /* A valid close 4006: reported as the server's, echoed, and reconnected. The server then never
     * closes TCP: the client may wait for that up to its close timeout (default 5 s, kept here),
     * but ubg_client_free() must close every connection at once. */
    fault_case fc = {.row = "close then hold", .target = PLAIN, .path = "/close-then-hold?hb=1000&after=300",
                     .result = UBG_OK, .code = 4006, .words = {"close then hold"}, .connect_ms = 3000,
                     .hello_ms = 3000, .ready_first = 1, .first_within_ms = 800, .at_least_ms = 250,
                     .window_ms = 2500, .min_attempts = 2, .max_attempts = 10, .client_close_code = 4006,
                     .remote = 1};
    run_fault(&fc);
}

static void test_never_sends_hello(void) {
    fault_case fc = {.row = "no hello", .target = PLAIN, .path = "/no-hello", .result = UBG_ETIMEOUT,
                     .words = {"no Hello within 500 ms"}, .connect_ms = 3000, .hello_ms = 500,
                     .first_within_ms = 500, .at_least_ms = 450, .window_ms = 2500, .min_attempts = 2,
                     .max_attempts = 5};
    run_fault(&fc);
}

static void ping_flood(void) {
    fault_server s;
    fs_start(&s);
    char url[512];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/ping-flood?secs=2&hb=200", s.port);
    ubg_loop_t loop;
    CHECK_OK(ubg_loop_create(&loop));
    int fds_before = count_fds();
    frec r;
    frec_init(&r);
    ubg_client_t client = fault_client(loop, url, NULL, 3000, 3000, 0, &r);
    CHECK_OK(ubg_client_connect(client));
    const fev *ready = frec_wait(&r, UBG_EVENT_READY, -1, 3000);
    CHECK_MSG(ready != NULL, "never READY");
    sleep_ms(700);
    CHECK_OK(ubg_client_send(client, "probe", "{\"during\":\"flood\"}"));
    sleep_ms(1700); /* the flood lasts 2 s from identify */
    long pings = fs_count(&s, "/ping-flood", "pings_sent");
    long pongs = fs_count(&s, "/ping-flood", "pongs");
    long beats = fs_count(&s, "/ping-flood", "heartbeats");
    if (getenv("UBG_FAULTS_VERBOSE"))
        fprintf(stderr, "    [ping flood] %ld pings sent, %ld pongs, %ld heartbeats, %zu CLOSED\n", pings, pongs, beats,
                frec_count(&r, UBG_EVENT_CLOSED, -1));
    const fev *closed = frec_wait(&r, UBG_EVENT_CLOSED, -1, 0);
    note("ping flood", closed);
    CHECK_MSG(closed == NULL, "the ping flood ended the session: \"%s\"", closed ? closed->message : "");
    CHECK_MSG(pings >= 4000, "only %ld pings in 2 s: not a flood", pings);
    CHECK_MSG(pongs >= 1, "no pong for %ld pings", pings);
    CHECK_MSG(pongs <= pings, "%ld pongs for %ld pings", pongs, pings);
    /* Heartbeats every 200 ms for ~2.4 s went on during the flood (and were ACKed: no zombie). */
    CHECK_MSG(beats >= 6, "only %ld heartbeats during the flood", beats);
    char *reply = fs_count_reply(&s, "/ping-flood");
    CHECK_MSG(strstr(reply, "\"probe\": 1"), "the send during the flood never arrived: %s", reply);
    free(reply);
    ubg_state_t state;
    CHECK_OK(ubg_client_get_state(client, &state));
    CHECK_MSG(state == UBG_STATE_READY, "state %s after the flood", ubg_state_name(state));
    ubg_stats_t stats;
    stats.size = sizeof stats;
    CHECK_OK(ubg_client_get_stats(client, &stats));
    CHECK(stats.last_latency_us >= 0);
    CHECK_MSG(stats.last_latency_us < 500000, "heartbeat latency %lld us after the flood", (long long)stats.last_latency_us);
    CHECK(stats.reconnects == 0);
    CHECK(fs_count(&s, "/ping-flood", "connections") == 1);
    CHECK(frec_count(&r, UBG_EVENT_FATAL, -1) == 0);
    CHECK_OK(ubg_client_free(client));
    CHECK_MSG(fs_wait_gone(&s, "/ping-flood", 1600 + SLACK_MS) >= 0, "the server still holds the connection after ubg_client_free");
    check_no_fd_leak(fds_before);
    CHECK_OK(ubg_loop_free(loop));
    fs_stop(&s);
    frec_destroy(&r);
}

/* A slow host and a hostile gateway at once: the pull queue is full (16) and the host does not
 * pull for 6 s while the gateway sends 2,000 events, a close frame with 4001 and then resets the
 * TCP connection. The paused client burns no CPU; once the host catches up it gets every event in
 * order, then the 4001 as CLOSED and FATAL (nothing after FATAL but the final STATE), and it
 * never connects again. Over TLS, part of what arrived before the reset is plaintext OpenSSL has
 * already decrypted: it too is delivered before the end. */
static void paused_reading_keeps_the_last_word(int secure) {
    fault_server s;
    fs_start(&s);
    char url[512];
    if (secure) {
        CHECK_MSG(s.tls_ok_port > 0 && s.ca[0], "the fault server has no TLS port (cryptography?)");
        snprintf(url, sizeof url, "wss://127.0.0.1:%d/flood-then-close?n=2000&code=4001&hb=200", s.tls_ok_port);
    } else {
        snprintf(url, sizeof url, "ws://127.0.0.1:%d/flood-then-close?n=2000&code=4001&hb=200", s.port);
    }
    ubg_loop_t loop;
    CHECK_OK(ubg_loop_create(&loop));
    ubg_client_t client = NULL;
    CHECK_OK(ubg_client_create(loop, "fault-key", &client));
    CHECK_OK(ubg_client_set_url(client, url));
    if (secure) CHECK_OK(ubg_client_set_tls_ca(client, s.ca, NULL));
    CHECK_OK(ubg_client_set_reconnect(client, BACKOFF_BASE_MS, BACKOFF_CAP_MS));
    CHECK_OK(ubg_client_set_limits(client, 0, 0, 16));
    CHECK_OK(ubg_client_connect(client));
    int64_t deadline = now_ms() + 20000;
    while (fs_count(&s, "/flood-then-close", "frames_sent") < 2000 && now_ms() < deadline) sleep_ms(50);
    CHECK_MSG(fs_count(&s, "/flood-then-close", "frames_sent") >= 2000, "the gateway could not send its flood");
    sleep_ms(300); /* the close frame and the reset follow at once */

    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    sleep_ms(6000);
    getrusage(RUSAGE_SELF, &after);
    long cpu_ms = (after.ru_utime.tv_sec - before.ru_utime.tv_sec) * 1000 +
                  (after.ru_utime.tv_usec - before.ru_utime.tv_usec) / 1000 +
                  (after.ru_stime.tv_sec - before.ru_stime.tv_sec) * 1000 +
                  (after.ru_stime.tv_usec - before.ru_stime.tv_usec) / 1000;
    CHECK_MSG(cpu_ms < 1000, "the paused client used %ld ms of CPU in 6 s: a busy loop", cpu_ms);
    ubg_stats_t stats;
    stats.size = sizeof stats;
    CHECK_OK(ubg_client_get_stats(client, &stats));
    CHECK_MSG(stats.queued_events <= 16 + 8, "%llu events queued with a limit of 16",
              (unsigned long long)stats.queued_events);

    long next = 0;
    int closed = 0, fatal = 0, failed = 0;
    ubg_event_t event;
    event.size = sizeof event;
    ubg_result_t rc;
    while ((rc = ubg_client_next_event(client, 10000, &event)) == UBG_OK) {
        CHECK_MSG(!fatal || event.type == UBG_EVENT_STATE, "event type %d after FATAL", (int)event.type);
        if (event.type == UBG_EVENT_DISPATCH && strcmp(event.name, "FLOOD") == 0) {
            long seq = -1;
            CHECK(event.data && json_number(event.data, "seq", &seq));
            CHECK_MSG(seq == next, "FLOOD seq %ld, expected %ld", seq, next);
            CHECK_MSG(!closed, "FLOOD %ld after CLOSED", seq);
            next++;
        } else if (event.type == UBG_EVENT_CLOSED) {
            CHECK_MSG(!closed, "a second CLOSED: the client reconnected (\"%s\")", event.message ? event.message : "");
            CHECK_MSG(event.code == 4001 && !event.reconnect, "CLOSED %d reconnect %d (\"%s\"): the 4001 was lost",
                      event.code, event.reconnect, event.message ? event.message : "");
            closed = 1;
        } else if (event.type == UBG_EVENT_FATAL) {
            CHECK(closed && event.code == 4001);
            fatal = 1;
        } else if (event.type == UBG_EVENT_STATE && event.state == UBG_STATE_FAILED) {
            failed = 1;
        }
    }
    CHECK_RC(rc, UBG_ECLOSED);
    CHECK_MSG(next == 2000, "%ld of 2000 events arrived", next);
    CHECK(closed && fatal && failed);
    sleep_ms(2 * BACKOFF_CAP_MS);
    CHECK_MSG(fs_count(&s, "/flood-then-close", "connections") == 1, "the client connected again after 4001");
    CHECK_OK(ubg_client_free(client));
    CHECK_OK(ubg_loop_free(loop));
    fs_stop(&s);
}

/* A 4 MB message trickling in at 1 MB/s with a heartbeat every second: no ACK can come while it
 * arrives, but its bytes prove the gateway alive: no zombie, the message arrives whole. */
static void trickling_message_is_a_sign_of_life(void) {
    fault_server s;
    fs_start(&s);
    char url[512];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/trickle?hb=1000&size=4000000&rate=1000000", s.port);
    ubg_loop_t loop;
    CHECK_OK(ubg_loop_create(&loop));
    frec r;
    frec_init(&r);
    ubg_client_t client = fault_client(loop, url, NULL, 3000, 3000, 0, &r);
    CHECK_OK(ubg_client_connect(client));
    CHECK_MSG(frec_wait(&r, UBG_EVENT_READY, -1, 5000), "never READY");
    const fev *big = NULL;
    int64_t deadline = now_ms() + 20000 + SLACK_MS;
    while (!big && now_ms() < deadline) {
        const fev *e = frec_wait(&r, UBG_EVENT_DISPATCH, -1, 1000);
        if (e && strcmp(e->name, "BIG") == 0) big = e;
    }
    const fev *closed = frec_wait(&r, UBG_EVENT_CLOSED, -1, 0);
    note("trickle", closed);
    CHECK_MSG(closed == NULL, "the connection was given up while the message arrived: \"%s\"", closed->message);
    CHECK_MSG(big != NULL, "the 4 MB message never arrived");
    CHECK(fs_count(&s, "/trickle", "connections") == 1);
    CHECK_MSG(fs_count(&s, "/trickle", "heartbeats") >= 4, "heartbeats stopped during the message");
    CHECK_OK(ubg_client_free(client));
    CHECK_OK(ubg_loop_free(loop));
    fs_stop(&s);
    frec_destroy(&r);
}

/* Counts BIG messages and CLOSED events of many clients. */
typedef struct {
    pthread_mutex_t lock;
    int big;
    int closed;
} big_counter;

static void count_big(ubg_client_t client, const ubg_event_t *event, void *user_data) {
    (void)client;
    big_counter *c = user_data;
    pthread_mutex_lock(&c->lock);
    if (event->type == UBG_EVENT_DISPATCH && strcmp(event->name, "BIG") == 0) c->big++;
    if (event->type == UBG_EVENT_CLOSED) c->closed++;
    pthread_mutex_unlock(&c->lock);
}

static long resident_kib(void) {
    malloc_trim(0); /* what the allocator caches is not the library's */
    FILE *f = fopen("/proc/self/statm", "r");
    CHECK(f != NULL);
    long size = 0, resident = 0;
    CHECK(fscanf(f, "%ld %ld", &size, &resident) == 2);
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Memory comes back after a large message: 16 clients each receive one 4 MB message, then the
 * process holds at most 16 MB more than before the clients existed (each used to keep its frame
 * decoder's buffer and its callback's copy of d at full size: about 8 MB a client). RSS is not
 * meaningful under valgrind and the sanitizers, whose allocators keep freed memory: there the
 * test checks the messages only. */
static void large_messages_give_memory_back(void) {
    enum { CLIENTS = 16 };
    fault_server s;
    fs_start(&s);
    char url[512];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/trickle?hb=1000&size=4000000&rate=400000000", s.port);
    ubg_loop_t loop;
    CHECK_OK(ubg_loop_create(&loop));
    long before = resident_kib();
    big_counter counter = {.big = 0};
    pthread_mutex_init(&counter.lock, NULL);
    ubg_client_t clients[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        CHECK_OK(ubg_client_create(loop, "fault-key", &clients[i]));
        CHECK_OK(ubg_client_set_url(clients[i], url));
        CHECK_OK(ubg_client_set_event_callback(clients[i], count_big, &counter));
        CHECK_OK(ubg_client_connect(clients[i]));
    }
    int64_t deadline = now_ms() + 30000 + 10 * SLACK_MS;
    int big = 0, closed = 0;
    while (now_ms() < deadline) {
        pthread_mutex_lock(&counter.lock);
        big = counter.big;
        closed = counter.closed;
        pthread_mutex_unlock(&counter.lock);
        if (big == CLIENTS) break;
        sleep_ms(50);
    }
    CHECK_MSG(big == CLIENTS, "%d of %d clients got their 4 MB message", big, CLIENTS);
    CHECK_MSG(closed == 0, "%d connections ended", closed);
    sleep_ms(200); /* the loop finishes with the last message */
    long after = resident_kib();
    if (getenv("UBG_FAULTS_VERBOSE"))
        fprintf(stderr, "    [memory] RSS %ld KiB before the clients, %ld KiB after 16 x 4 MB\n", before, after);
    if (!under_valgrind() && !UNDER_SANITIZER)
        CHECK_MSG(after - before <= 16 * 1024, "RSS grew by %ld KiB for %d idle clients after one 4 MB message each",
                  after - before, CLIENTS);
    for (int i = 0; i < CLIENTS; i++) CHECK_OK(ubg_client_free(clients[i]));
    CHECK_OK(ubg_loop_free(loop));
    pthread_mutex_destroy(&counter.lock);
    fs_stop(&s);
}

static void never_answers_our_close(void) {
    enum { CLOSE_MS = 1000 };
    fault_server s;
    fs_start(&s);
    char url[512];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/ignore-close?hb=300", s.port);
    ubg_loop_t loop;
    CHECK_OK(ubg_loop_create(&loop));
    int fds_before = count_fds();
    frec r;
    frec_init(&r);
    ubg_client_t client = fault_client(loop, url, NULL, 3000, 3000, CLOSE_MS, &r);
    CHECK_OK(ubg_client_connect(client));
    CHECK_MSG(frec_wait(&r, UBG_EVENT_READY, -1, 3000), "never READY");
    int64_t start = now_ms();
    CHECK_OK(ubg_client_close(client, 1000));
    const fev *final = frec_wait(&r, UBG_EVENT_STATE, UBG_STATE_CLOSED, CLOSE_MS + 3000);
    CHECK_MSG(final != NULL, "not CLOSED %d ms after ubg_client_close (close timeout %d ms)", CLOSE_MS + 3000, CLOSE_MS);
    int64_t took = final->at_ms - start;
    CHECK_MSG(took <= CLOSE_MS + SLACK_MS, "CLOSED %lld ms after ubg_client_close; the close timeout is %d ms", (long long)took,
              CLOSE_MS);
    CHECK_MSG(took >= CLOSE_MS - 100, "CLOSED after %lld ms: it did not wait for the server's answer (%d ms)",
              (long long)took, CLOSE_MS);
    /* Our close frame reached the server. */
    char *reply = fs_count_reply(&s, "/ignore-close");
    CHECK_MSG(strstr(reply, "\"close_codes\": [1000]"), "the server did not get one close frame with 1000: %s", reply);
    free(reply);
    /* The connection is dropped when the timeout expires. */
    CHECK_MSG(fs_wait_gone(&s, "/ignore-close", 1000) >= 0, "the connection is still open after the close timeout");
    const fev *closed = NULL;
    pthread_mutex_lock(&r.lock);
    for (size_t i = 0; i < r.count; i++)
        if (r.events[i].type == UBG_EVENT_CLOSED) closed = &r.events[i];
    pthread_mutex_unlock(&r.lock);
    CHECK_MSG(closed != NULL, "no CLOSED event");
    note("ignore close", closed);
    CHECK_MSG(closed->at_ms <= final->at_ms, "the CLOSED event came after the CLOSED state");
    CHECK_MSG(closed->reconnect == 0, "reconnect %d after ubg_client_close", closed->reconnect);
    /* The closing handshake did not complete: the error is reported, not swallowed. */
    CHECK_MSG(closed->local == 1 && closed->result == UBG_ETIMEOUT,
              "the close timeout is not reported: local %d, result %s, code %d, message \"%s\"", closed->local,
              ubg_result_name(closed->result), closed->code, closed->message);
    CHECK_MSG(contains(closed->message, "did not answer"), "message \"%s\" does not say the server did not answer",
              closed->message);
    CHECK_MSG(closed->code == 1006, "close code %d: no close frame was received, so 1006 (RFC 6455 7.1.5)", closed->code);
    sleep_ms(2 * BACKOFF_CAP_MS);
    CHECK_MSG(fs_count(&s, "/ignore-close", "connections") == 1, "the client reconnected after ubg_client_close");
    CHECK(frec_count(&r, UBG_EVENT_CLOSED, -1) == 1);
    CHECK_OK(ubg_client_free(client));
    check_no_fd_leak(fds_before);
    CHECK_OK(ubg_loop_free(loop));
    fs_stop(&s);
    frec_destroy(&r);
}

static void test_ping_flood(void) { on_fresh_thread(ping_flood); }
static void test_never_answers_our_close(void) { on_fresh_thread(never_answers_our_close); }
static void paused_reading_keeps_the_last_word_ws(void) { paused_reading_keeps_the_last_word(0); }
static void paused_reading_keeps_the_last_word_wss(void) { paused_reading_keeps_the_last_word(1); }
static void test_paused_reading_keeps_the_last_word(void) { on_fresh_thread(paused_reading_keeps_the_last_word_ws); }
static void test_paused_reading_keeps_the_last_word_tls(void) {
    on_fresh_thread(paused_reading_keeps_the_last_word_wss);
}
static void test_trickling_message_is_a_sign_of_life(void) { on_fresh_thread(trickling_message_is_a_sign_of_life); }
static void test_large_messages_give_memory_back(void) { on_fresh_thread(large_messages_give_memory_back); }

const test_case fault_tests[] = {
    {"fault: connection refused", test_connection_refused, 60},
    {"fault: DNS failure (.invalid)", test_dns_failure, 60},
    {"fault: TCP reset mid-frame", test_reset_mid_frame, 60},
    {"fault: silent server (half-open)", test_silent_half_open, 60},
    {"fault: zombie after Hello", test_zombie_after_hello, 60},
    {"fault: one byte per second (Hello)", test_one_byte_per_second_hello, 60},
    {"fault: one byte per second (101)", test_one_byte_per_second_101, 60},
    {"fault: TLS handshake failure (not TLS)", test_tls_handshake_not_tls, 60},
    {"fault: TLS handshake failure (certificate for another name)", test_tls_certificate_for_another_name, 60},
    {"fault: malformed 101 status line", test_malformed_101, 60},
    {"fault: 101 without the upgrade headers", test_101_without_upgrade_headers, 60},
    {"fault: garbage before the handshake", test_garbage_before_the_handshake, 60},
    {"fault: oversized headers", test_oversized_headers, 60},
    {"fault: upgrade refused with 503", test_upgrade_refused_503, 60},
    {"fault: close without a close frame", test_close_without_close_frame, 60},
    {"fault: close frame with invalid code 1005", test_close_frame_with_invalid_code, 60},
    {"fault: close frame with invalid code 999", test_close_frame_with_code_999, 60},
    {"fault: close frame, then the server holds TCP", test_close_frame_then_the_server_holds_tcp, 60},
    {"fault: ping flood", test_ping_flood, 60},
    {"fault: server never answers our close", test_never_answers_our_close, 60},
    {"fault: paused reading keeps the last word (flood, 4001, reset)", test_paused_reading_keeps_the_last_word, 90},
    {"fault: paused reading keeps the last word over TLS", test_paused_reading_keeps_the_last_word_tls, 90},
    {"fault: a trickling message is a sign of life", test_trickling_message_is_a_sign_of_life, 90},
    {"fault: 4 MB messages give their memory back", test_large_messages_give_memory_back, 120},
    {"fault: server never sends Hello", test_never_sends_hello, 60},
};
const size_t fault_test_count = sizeof fault_tests / sizeof fault_tests[0];
