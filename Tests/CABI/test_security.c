/* Security properties end to end: the key never leaks, the insecure opt-out is loud, limits
 * hold, a slow consumer is back-pressured without losing events. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define KEY "k3y-Th4t-mUst-n3v3r-l34k"

static int contains_key(const char *text) { return text && strstr(text, KEY) != NULL; }

static void scan_events(recorder *r) {
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->count; i++) {
        recorded_event *e = r->events[i];
        CHECK_MSG(!contains_key(e->message) && !contains_key(e->data) && !contains_key(e->name),
                  "the key appears in event %zu: %s", i, e->message ? e->message : e->data);
    }
    pthread_mutex_unlock(&r->lock);
}

static void test_the_key_never_appears_in_logs_errors_or_stats(void) {
    devserver gw;
    devserver_start(&gw, "--heartbeat 200 --heartbeat-grace 2000 --key " KEY);
    char url[512];
    /* A good session, then a refused one (another key, also secret), with every log line. */
    recorder good, bad;
    recorder_init(&good);
    recorder_init(&bad);
    devserver_url(&gw, "v=1", url, sizeof url);
    ubg_client_t client = make_client(NULL, url, KEY, NULL, &good);
    CHECK_OK(ubg_client_set_log_level(client, UBG_LOG_DEBUG));
    CHECK_OK(ubg_client_connect(client));
    CHECK(wait_event(&good, UBG_EVENT_READY, NULL, 5000));
    free(devserver_command(&gw, "{\"cmd\":\"close_all\",\"code\":4006}"));
    CHECK(wait_event(&good, UBG_EVENT_READY, NULL, 5000));
    CHECK_RC(ubg_client_send(client, "identify", "{}"), UBG_EINVAL);
    CHECK_MSG(!contains_key(ubg_client_last_error(client)), "last error: %s", ubg_client_last_error(client));
    CHECK(count_events(&good, UBG_EVENT_LOG, NULL) >= 5);
    CHECK_OK(ubg_client_free(client));
    scan_events(&good);

    ubg_client_t refused = make_client(NULL, url, KEY "-but-wrong", NULL, &bad);
    CHECK_OK(ubg_client_set_log_level(refused, UBG_LOG_DEBUG));
    CHECK_OK(ubg_client_connect(refused));
    CHECK(wait_event(&bad, UBG_EVENT_FATAL, NULL, 5000));
    CHECK(!contains_key(ubg_client_last_error(refused)));
    CHECK_OK(ubg_client_free(refused));
    scan_events(&bad);
    /* What the gateway logged of the identify is redacted too (its `received` command). */
    char *received = devserver_command(&gw, "{\"cmd\":\"received\"}");
    CHECK_MSG(!contains_key(received), "the dev gateway's record holds the key");
    free(received);
    devserver_stop(&gw);
    recorder_destroy(&good);
    recorder_destroy(&bad);
}

static void test_insecure_opt_out_warns_on_every_connect(void) {
    devserver gw;
    devserver_start(&gw, "--heartbeat 200 --heartbeat-grace 2000 --tls --key dev-key");
    recorder r;
    recorder_init(&r);
    char url[512];
    devserver_url(&gw, "v=1", url, sizeof url);
    ubg_client_t client = make_client(NULL, url, "dev-key", NULL, &r);
    CHECK_OK(ubg_client_set_tls_insecure_skip_verify(client, 1));
    /* No ubg_client_set_log_level(): the warning reaches the host by default. */
    CHECK_OK(ubg_client_connect(client));
    CHECK(wait_event(&r, UBG_EVENT_READY, NULL, 5000));
    free(devserver_command(&gw, "{\"cmd\":\"close_all\",\"code\":1000}"));
    CHECK(wait_event(&r, UBG_EVENT_READY, NULL, 5000));
    size_t warnings = 0;
    pthread_mutex_lock(&r.lock);
    for (size_t i = 0; i < r.count; i++)
        warnings += r.events[i]->type == UBG_EVENT_LOG && r.events[i]->message &&
                    strstr(r.events[i]->message, "verification is OFF") != NULL;
    pthread_mutex_unlock(&r.lock);
    CHECK_MSG(warnings == 2, "%zu insecure warnings for 2 connects", warnings);
    CHECK_OK(ubg_client_free(client));
    devserver_stop(&gw);
    recorder_destroy(&r);
}

/* A close the gateway blames on the client (4002-4005) is an error a host must see: it comes as
 * a LOG event at UBG_LOG_ERROR without any log level set. */
static void test_a_client_bug_close_is_reported_by_default(void) {
    devserver gw;
    devserver_start(&gw, "--heartbeat 200 --heartbeat-grace 2000 --key dev-key");
    recorder r;
    recorder_init(&r);
    char url[512];
    devserver_url(&gw, "v=1&fault_close=4005", url, sizeof url);
    ubg_client_t client = make_client(NULL, url, "dev-key", NULL, &r);
    CHECK_OK(ubg_client_connect(client));
    const recorded_event *log = NULL;
    int64_t deadline = now_ms() + 10000;
    while (!log && now_ms() < deadline) {
        const recorded_event *e = wait_event(&r, UBG_EVENT_LOG, NULL, 1000);
        if (e && e->message && strstr(e->message, "client bug")) log = e;
    }
    CHECK_MSG(log != NULL, "no LOG event for the gateway's 4005 at the default log level");
    CHECK_MSG(log->code == UBG_LOG_ERROR, "logged at level %d", log->code);
    CHECK(strstr(log->message, "4005"));
    CHECK_OK(ubg_client_free(client));
    devserver_stop(&gw);
    recorder_destroy(&r);
}

static void test_a_message_over_the_limit_is_reported_and_the_connection_renewed(void) {
    devserver gw;
    devserver_start(&gw, "--heartbeat 200 --heartbeat-grace 2000 --key dev-key");
    recorder r;
    recorder_init(&r);
    char url[512];
    devserver_url(&gw, "v=1", url, sizeof url);
    ubg_client_t client = make_client(NULL, url, "dev-key", NULL, &r);
    CHECK_OK(ubg_client_set_limits(client, 4096, 0, 0));
    CHECK_OK(ubg_client_connect(client));
    CHECK(wait_event(&r, UBG_EVENT_READY, NULL, 5000));
    char command[8192];
    int n = snprintf(command, sizeof command, "{\"cmd\":\"send_all\",\"t\":\"BIG\",\"d\":{\"blob\":\"");
    memset(command + n, 'x', 6000);
    snprintf(command + n + 6000, sizeof command - (size_t)n - 6000, "\"}}");
    free(devserver_command(&gw, command));
    const recorded_event *closed = wait_event(&r, UBG_EVENT_CLOSED, NULL, 3000);
    CHECK_MSG(closed && closed->code == 1009 && closed->reconnect, "expected a 1009 close");
    CHECK(closed->message && strstr(closed->message, "4096"));
    CHECK(count_events(&r, UBG_EVENT_DISPATCH, "BIG") == 0);
    CHECK(wait_event(&r, UBG_EVENT_READY, NULL, 5000)); /* and it carries on */
    CHECK_OK(ubg_client_free(client));
    devserver_stop(&gw);
    recorder_destroy(&r);
}

static void test_a_slow_consumer_is_back_pressured_and_loses_nothing(void) {
    devserver gw;
    devserver_start(&gw, "--heartbeat 200 --heartbeat-grace 2000 --key dev-key");
    char url[512];
    devserver_url(&gw, "v=1", url, sizeof url);
    ubg_client_t client = make_client(NULL, url, "dev-key", NULL, NULL);
    CHECK_OK(ubg_client_set_limits(client, 0, 0, 16));
    CHECK_OK(ubg_client_connect(client));
    ubg_event_t event;
    event.size = sizeof event;
    int ready = 0;
    while (!ready) {
        CHECK_OK(ubg_client_next_event(client, 5000, &event));
        ready = event.type == UBG_EVENT_READY;
    }
    enum { N = 300 };
    for (int i = 0; i < N; i++) {
        char command[128];
        snprintf(command, sizeof command, "{\"cmd\":\"send_all\",\"t\":\"SEQ\",\"d\":{\"n\":%d}}", i);
        free(devserver_command(&gw, command));
    }
    /* The consumer sleeps: the queue fills, the client stops reading. */
    ubg_stats_t stats;
    stats.size = sizeof stats;
    int64_t filled = now_ms() + 10000;
    do {
        sleep_ms(50);
        CHECK_OK(ubg_client_get_stats(client, &stats));
    } while (stats.queue_full_count == 0 && now_ms() < filled);
    CHECK_MSG(stats.queue_full_count >= 1, "the queue never filled");
    CHECK_MSG(stats.queued_events <= 64, "%llu events queued past a limit of 16", (unsigned long long)stats.queued_events);
    int next = 0;
    int64_t deadline = now_ms() + 10000;
    while (next < N && now_ms() < deadline) {
        if (ubg_client_next_event(client, 1000, &event) != UBG_OK) continue;
        if (event.type != UBG_EVENT_DISPATCH || strcmp(event.name, "SEQ") != 0) continue;
        char want[32];
        snprintf(want, sizeof want, "{\"n\":%d}", next);
        CHECK_MSG(strcmp(event.data, want) == 0, "expected %s, got %s", want, event.data);
        next++;
    }
    CHECK_MSG(next == N, "received %d of %d events", next, N);
    CHECK_OK(ubg_client_get_stats(client, &stats));
    CHECK(stats.reconnects == 0); /* paused reading did not look like a zombie */
    CHECK_OK(ubg_client_free(client));
    devserver_stop(&gw);
}

const test_case security_tests[] = {
    {"security: the key never appears in logs, errors or stats", test_the_key_never_appears_in_logs_errors_or_stats, 30},
    {"security: the insecure opt-out warns on every connect, by default", test_insecure_opt_out_warns_on_every_connect, 30},
    {"security: a client-bug close (4005) is reported by default", test_a_client_bug_close_is_reported_by_default, 30},
    {"security: a message over the limit is reported, the connection renewed",
     test_a_message_over_the_limit_is_reported_and_the_connection_renewed, 30},
    {"security: a slow consumer is back-pressured and loses nothing", test_a_slow_consumer_is_back_pressured_and_loses_nothing, 60},
};
const size_t security_test_count = sizeof security_tests / sizeof security_tests[0];
