/* The library's promises against a hostile dev gateway and a slow host at once: the pull queue
 * is bounded in every state (in events and in bytes) and loses nothing; a full send queue is
 * refused by ubg_client_send itself; an identify that is never answered ends the attempt. */
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define BASIC "--heartbeat 200 --heartbeat-grace 2000 --key dev-key"

/* A pull-mode client (no callback) with fast reconnects. */
static ubg_client_t pull_client(devserver *gw, const char *query) {
    char url[512];
    devserver_url(gw, query, url, sizeof url);
    return make_client(NULL, url, "dev-key", NULL, NULL);
}

static uint64_t queued_events(ubg_client_t client) {
    ubg_stats_t stats;
    stats.size = sizeof stats;
    CHECK_OK(ubg_client_get_stats(client, &stats));
    return stats.queued_events;
}

/* The host does not pull: waits (20 s at most, a busy machine is slow to fill it) for the queue
 * to fill, then watches it for a second more; returns the most events it held. */
static uint64_t most_queued_while_not_pulling(ubg_client_t client) {
    ubg_stats_t stats;
    stats.size = sizeof stats;
    int64_t deadline = now_ms() + 20000;
    do {
        sleep_ms(50);
        CHECK_OK(ubg_client_get_stats(client, &stats));
    } while (stats.queue_full_count == 0 && now_ms() < deadline);
    uint64_t most = stats.queued_events;
    for (int i = 0; i < 20; i++) {
        sleep_ms(50);
        uint64_t now = queued_events(client);
        if (now > most) most = now;
    }
    return most;
}

/* Pulls until `count` FLOOD events arrived (each checked to carry the next seq) or the deadline
 * passes; returns how many arrived. */
static long pull_flood(ubg_client_t client, long count, int timeout_ms) {
    ubg_event_t events[64];
    events[0].size = sizeof events[0];
    long next = 0;
    int64_t deadline = now_ms() + timeout_ms;
    while (next < count && now_ms() < deadline) {
        size_t n = 0;
        ubg_result_t rc = ubg_client_next_events(client, 500, events, 64, &n);
        if (rc == UBG_ETIMEOUT) continue;
        CHECK_OK(rc);
        for (size_t i = 0; i < n; i++) {
            if (events[i].type != UBG_EVENT_DISPATCH || strcmp(events[i].name, "FLOOD") != 0) continue;
            long seq = -1;
            CHECK_MSG(events[i].data && json_number(events[i].data, "seq", &seq), "FLOOD without seq");
            CHECK_MSG(seq == next, "FLOOD seq %ld, expected %ld: an event was lost or reordered", seq, next);
            next++;
        }
    }
    return next;
}

/* A gateway that never sends bot_connect_success and floods op 0 events: while the host does
 * not pull, the queue stays at its bound (it used to grow without one before READY); then every
 * event arrives, in order. */
static void test_queue_bounded_before_ready(void) {
    devserver gw;
    devserver_start(&gw, BASIC);
    ubg_client_t client = pull_client(&gw, "v=1&fault_no_ready=1&fault_flood=20000");
    CHECK_OK(ubg_client_set_limits(client, 0, 0, 16));
    CHECK_OK(ubg_client_connect(client));
    /* The host is slow: nothing is pulled while the gateway floods. */
    uint64_t most = most_queued_while_not_pulling(client);
    CHECK_MSG(most >= 16, "the queue never filled (%llu): the flood did not arrive", (unsigned long long)most);
    /* At the bound, plus the few non-dispatch events (STATE, LOG) the session itself adds. */
    CHECK_MSG(most <= 16 + 8, "%llu events queued with a limit of 16", (unsigned long long)most);
    ubg_stats_t stats;
    stats.size = sizeof stats;
    CHECK_OK(ubg_client_get_stats(client, &stats));
    CHECK(stats.queue_full_count >= 1);
    CHECK(stats.state == UBG_STATE_IDENTIFYING);
    long got = pull_flood(client, 20000, 60000);
    CHECK_MSG(got == 20000, "only %ld of 20000 events arrived", got);
    CHECK_OK(ubg_client_free(client));
    devserver_stop(&gw);
}

/* The byte bound: small events, a limit of 4096 events but 4 KiB of bytes. */
static void test_queue_bounded_in_bytes(void) {
    devserver gw;
    devserver_start(&gw, BASIC);
    ubg_client_t client = pull_client(&gw, "v=1&fault_flood=3000");
    CHECK_OK(ubg_client_set_queue_bytes(client, 0, 4096));
    CHECK_OK(ubg_client_connect(client));
    uint64_t most = most_queued_while_not_pulling(client);
    /* Each event counts at least 64 bytes: the queue pauses at 64 events at the latest. */
    CHECK_MSG(most >= 16 && most <= 64 + 8, "%llu events queued with a bound of 4096 bytes", (unsigned long long)most);
    long got = pull_flood(client, 3000, 60000);
    CHECK_MSG(got == 3000, "only %ld of 3000 events arrived", got);
    CHECK_RC(ubg_client_set_queue_bytes(client, 0, 4096), UBG_ESTATE);
    CHECK_OK(ubg_client_free(client));
    devserver_stop(&gw);
}

static void test_queue_bytes_arguments(void) {
    ubg_client_t client;
    CHECK_OK(ubg_client_create(NULL, "k", &client));
    CHECK_RC(ubg_client_set_queue_bytes(client, 100, 0), UBG_EINVAL);
    CHECK_RC(ubg_client_set_queue_bytes(client, 0, 1023), UBG_EINVAL);
    CHECK_RC(ubg_client_set_queue_bytes(NULL, 0, 0), UBG_EHANDLE);
    CHECK_OK(ubg_client_set_queue_bytes(client, 0, 0));
    CHECK_OK(ubg_client_set_queue_bytes(client, 4096, 1 << 20));
    CHECK_RC(ubg_client_set_ready_timeout(NULL, 100), UBG_EHANDLE);
    CHECK_OK(ubg_client_set_ready_timeout(client, 100));
    CHECK_OK(ubg_client_free(client));
}

/* A full send queue is refused by the call itself, in messages and in bytes, and nothing is
 * reported later for the sends it accepted. */
static void test_send_queue_full_is_refused_at_once(void) {
    devserver gw;
    devserver_start(&gw, BASIC);
    recorder r;
    recorder_init(&r);
    char url[512];
    devserver_url(&gw, "v=1&fault_no_ready=1", url, sizeof url);
    ubg_client_t client = make_client(NULL, url, "dev-key", NULL, &r);
    CHECK_OK(ubg_client_set_limits(client, 0, 5, 0));
    CHECK_OK(ubg_client_set_queue_bytes(client, 2048, 0));
    CHECK_OK(ubg_client_connect(client));
    for (int i = 0; i < 5; i++) CHECK_OK(ubg_client_send(client, "x", "{}"));
    CHECK_RC(ubg_client_send(client, "x", "{}"), UBG_EQUEUEFULL);
    CHECK(strstr(ubg_client_last_error(client), "5 messages"));
    ubg_client_free(client);

    client = make_client(NULL, url, "dev-key", NULL, &r);
    CHECK_OK(ubg_client_set_queue_bytes(client, 2048, 0));
    CHECK_OK(ubg_client_connect(client));
    char data[1600];
    memset(data, 'a', sizeof data);
    memcpy(data, "{\"p\":\"", 6);
    memcpy(data + sizeof data - 3, "\"}", 3);
    CHECK_OK(ubg_client_send(client, "x", data));
    CHECK_RC(ubg_client_send(client, "x", data), UBG_EQUEUEFULL);
    CHECK(strstr(ubg_client_last_error(client), "2048 bytes"));
    CHECK_OK(ubg_client_send(client, "x", "{}")); /* what fits still goes in */
    sleep_ms(500);
    CHECK_MSG(count_events(&r, UBG_EVENT_ERROR, NULL) == 0, "an accepted send was reported as an error");
    CHECK_OK(ubg_client_free(client));
    devserver_stop(&gw);
    recorder_destroy(&r);
}

/* A gateway that never answers identify: the attempt ends after the ready timeout, as one
 * without Hello does, and the client tries again. */
static void test_no_ready_ends_the_attempt(void) {
    devserver gw;
    devserver_start(&gw, BASIC);
    recorder r;
    recorder_init(&r);
    char url[512];
    devserver_url(&gw, "v=1&fault_no_ready=1", url, sizeof url);
    ubg_client_t client = make_client(NULL, url, "dev-key", NULL, &r);
    CHECK_OK(ubg_client_set_ready_timeout(client, 600));
    CHECK_OK(ubg_client_connect(client));
    CHECK_OK(ubg_client_send(client, "queued", "{}"));
    const recorded_event *closed = wait_event(&r, UBG_EVENT_CLOSED, NULL, 15000);
    CHECK_MSG(closed != NULL, "the attempt never ended");
    CHECK_MSG(closed->local && closed->reconnect, "CLOSED local %d reconnect %d", closed->local, closed->reconnect);
    CHECK_MSG(closed->message && strstr(closed->message, "bot_connect_success"), "message \"%s\"",
              closed->message ? closed->message : "");
    CHECK_MSG(wait_event(&r, UBG_EVENT_STATE, NULL, 5000), "no new attempt");
    int64_t deadline = now_ms() + 15000;
    while (devserver_stat(&gw, "connects_total") < 2 && now_ms() < deadline) sleep_ms(50);
    CHECK(devserver_stat(&gw, "connects_total") >= 2);
    /* The queued send was never reported lost: it waits for a session that becomes ready. */
    CHECK(count_events(&r, UBG_EVENT_ERROR, NULL) == 0);
    CHECK_OK(ubg_client_free(client));
    devserver_stop(&gw);
    recorder_destroy(&r);
}

/* Pulls until READY or the deadline; returns 1 on READY. */
static int pull_until_ready(ubg_client_t client, int timeout_ms) {
    ubg_event_t event;
    event.size = sizeof event;
    int64_t deadline = now_ms() + timeout_ms;
    while (now_ms() < deadline) {
        ubg_result_t rc = ubg_client_next_event(client, 200, &event);
        if (rc == UBG_OK && event.type == UBG_EVENT_READY) return 1;
        if (rc != UBG_OK && rc != UBG_ETIMEOUT) return 0;
    }
    return 0;
}

typedef struct {
    const char *url;
    int ready;
} fork_child;

static void *connect_in_the_child(void *arg) {
    fork_child *c = arg;
    ubg_client_t fresh;
    if (ubg_client_create(NULL, "dev-key", &fresh) != UBG_OK) return NULL;
    if (ubg_client_set_url(fresh, c->url) == UBG_OK && ubg_client_connect(fresh) == UBG_OK)
        c->ready = pull_until_ready(fresh, 10000);
    ubg_client_free(fresh);
    return NULL;
}

/* The URL with "localhost" for "127.0.0.1": connecting then needs a host lookup. */
static void by_name(const char *url, char *out, size_t size) {
    const char *at = strstr(url, "127.0.0.1");
    CHECK(at != NULL);
    snprintf(out, size, "%.*slocalhost%s", (int)(at - url), url, at + strlen("127.0.0.1"));
}

/* fork(): in the child, the parent's clients answer UBG_ESTATE with a message at once (it used
 * to accept sends that never left, and ubg_client_free waited forever), on the default loop and
 * on a loop of ubg_loop_create(); that loop cannot take a new client nor be freed there. A client
 * made in the child works, on a default loop of its own, and looks its host up (the parent's
 * lookup threads do not exist in the child). The parent's clients are unaffected. */
static void test_fork_child_refuses_the_parents_client(void) {
    if (UNDER_TSAN) {
        fprintf(stderr, "  (skipped under ThreadSanitizer, which cannot follow a fork of a threaded process; "
                        "the plain, valgrind and AddressSanitizer runs cover it)\n");
        return;
    }
    devserver gw;
    devserver_start(&gw, BASIC);
    char url[512];
    devserver_url(&gw, "v=1", url, sizeof url);
    char named_url[512];
    by_name(url, named_url, sizeof named_url);
    ubg_client_t client = make_client(NULL, url, "dev-key", NULL, NULL);
    CHECK_OK(ubg_client_connect(client));
    CHECK_MSG(pull_until_ready(client, 10000), "never READY");
    ubg_loop_t own_loop;
    CHECK_OK(ubg_loop_create(&own_loop));
    ubg_client_t on_own_loop = make_client(own_loop, named_url, "dev-key", NULL, NULL);
    CHECK_OK(ubg_client_connect(on_own_loop));
    CHECK_MSG(pull_until_ready(on_own_loop, 10000), "never READY on its own loop");
    /* The child reports through a pipe: under valgrind its exit status is the leak check's, and
     * the parent's objects are lost to the child by design. */
    int report[2];
    CHECK(pipe(report) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(report[0]);
        alarm(30);
        int failed = 0;
        if (ubg_client_send(client, "x", "{}") != UBG_ESTATE) failed |= 1;
        if (!strstr(ubg_client_last_error(client), "fork()")) failed |= 2;
        ubg_event_t event;
        event.size = sizeof event;
        if (ubg_client_next_event(client, 100, &event) != UBG_ESTATE) failed |= 4;
        ubg_state_t state;
        if (ubg_client_get_state(client, &state) != UBG_ESTATE) failed |= 8;
        if (ubg_client_free(client) != UBG_ESTATE) failed |= 16;
        if (ubg_client_send(on_own_loop, "x", "{}") != UBG_ESTATE) failed |= 128;
        if (!strstr(ubg_client_last_error(on_own_loop), "fork()")) failed |= 128;
        if (ubg_client_free(on_own_loop) != UBG_ESTATE) failed |= 128;
        ubg_client_t refused = NULL;
        if (ubg_client_create(own_loop, "dev-key", &refused) != UBG_ESTATE || refused != NULL) failed |= 256;
        if (ubg_loop_free(own_loop) != UBG_ESTATE) failed |= 256;
        /* On a thread of its own: the forked thread keeps the parent's cached thread id in the
         * Swift runtime (see harness.c), which a new client's loop thread must not meet. */
        fork_child c = {.url = named_url, .ready = 0};
        pthread_t thread;
        if (pthread_create(&thread, NULL, connect_in_the_child, &c) != 0 || pthread_join(thread, NULL) != 0) failed |= 32;
        if (!c.ready) failed |= 64;
        if (write(report[1], &failed, sizeof failed) != (ssize_t)sizeof failed) _exit(1);
        _exit(0);
    }
    close(report[1]);
    int failed = -1;
    ssize_t got = read(report[0], &failed, sizeof failed);
    close(report[0]);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK_MSG(got == (ssize_t)sizeof failed && failed == 0,
              "the child failed (%d; bits: 1 send, 2 message, 4 pull, 8 state, 16 free, 32 thread, 64 new client "
              "never READY, 128 client on its own loop, 256 own loop; -1: no report, status %d)",
              failed, status);
    CHECK_OK(ubg_client_send(client, "after_fork", "{}"));
    ubg_state_t state;
    CHECK_OK(ubg_client_get_state(client, &state));
    CHECK(state == UBG_STATE_READY);
    CHECK_OK(ubg_client_free(client));
    CHECK_OK(ubg_client_send(on_own_loop, "after_fork", "{}"));
    CHECK_OK(ubg_client_get_state(on_own_loop, &state));
    CHECK(state == UBG_STATE_READY);
    CHECK_OK(ubg_client_free(on_own_loop));
    CHECK_OK(ubg_loop_free(own_loop));
    devserver_stop(&gw);
}

extern char **environ;

/* Returning from main while events flow on the default loop, over TLS with zlib, 50 times, each
 * after a different number of events (from none: the TLS handshake may be under way): every run
 * exits with status 0 (no crash in OpenSSL's or the runtime's exit-time cleanup). */
static void test_exit_mid_stream(void) {
    devserver gw;
    devserver_start(&gw, "--tls --heartbeat 200 --heartbeat-grace 2000 --key dev-key");
    char url[512];
    devserver_url(&gw, "v=1&compression=zlib&fault_flood=100000000", url, sizeof url);
    const char *program = ".build/exit-midstream";
    CHECK_MSG(access(program, X_OK) == 0, "%s is missing: make .build/exit-midstream", program);
    for (int run = 0; run < 50; run++) {
        char events[16];
        snprintf(events, sizeof events, "%d", (run * 37) % 500);
        char *argv[] = {(char *)program, url, gw.ca, events, NULL};
        pid_t pid;
        CHECK(posix_spawn(&pid, program, NULL, NULL, argv, environ) == 0);
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "run %d (exit after %s events): %s %d", run, events,
                  WIFEXITED(status) ? "status" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    }
    devserver_stop(&gw);
}

const test_case promise_tests[] = {
    {"promise: the pull queue is bounded before READY", test_queue_bounded_before_ready, 120},
    {"promise: the pull queue is bounded in bytes", test_queue_bounded_in_bytes, 120},
    {"promise: byte bounds and the ready timeout check their arguments", test_queue_bytes_arguments, 30},
    {"promise: a full send queue is refused by ubg_client_send", test_send_queue_full_is_refused_at_once, 60},
    {"promise: no bot_connect_success ends the attempt", test_no_ready_ends_the_attempt, 60},
    {"promise: after fork() the child refuses the parent's client", test_fork_child_refuses_the_parents_client, 60},
    {"promise: returning from main mid-stream never crashes (50 runs)", test_exit_mid_stream, 240},
};
const size_t promise_test_count = sizeof promise_tests / sizeof promise_tests[0];
