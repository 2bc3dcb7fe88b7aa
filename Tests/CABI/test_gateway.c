/* End to end: the real .so against the dev gateway (Python websockets). The gateway allows
 * heartbeats 2 s of grace: under valgrind on a busy machine a beat can be late, and a 4006 would
 * be a second fault in a test about something else (the Python tests hold the client to the
 * schedule with no grace at all). */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define HEARTBEAT_MS 200
#define BASIC "--heartbeat 200 --heartbeat-grace 2000 --key dev-key"

static void test_identify_success(void) {
    devserver gw;
    devserver_start(&gw, BASIC);
    recorder r;
    recorder_init(&r);
    char url[512];
    devserver_url(&gw, "v=1", url, sizeof url);
    ubg_client_t client = make_client(NULL, url, "dev-key", NULL, &r);
    CHECK_OK(ubg_client_connect(client));
    CHECK_MSG(wait_event(&r, UBG_EVENT_READY, NULL, 5000), "never ready");
    const recorded_event *success = wait_event(&r, UBG_EVENT_DISPATCH, "bot_connect_success", 1000);
    CHECK(success && success->data && strstr(success->data, "bot_id"));
    ubg_state_t state;
    CHECK_OK(ubg_client_get_state(client, &state));
    CHECK(state == UBG_STATE_READY);
    /* A few heartbeats, all answered (waited for: a busy machine makes them later, not fewer). */
    ubg_stats_t stats;
    stats.size = sizeof stats;
    int64_t deadline = now_ms() + 10000;
    do {
        sleep_ms(50);
        CHECK_OK(ubg_client_get_stats(client, &stats));
    } while ((stats.messages_in < 3 || devserver_stat(&gw, "heartbeats_total") < 3) && now_ms() < deadline);
    CHECK_MSG(stats.last_latency_us >= 0 && stats.average_latency_us >= 0, "latency %lld", (long long)stats.last_latency_us);
    CHECK(stats.messages_out >= 4 && stats.messages_in >= 3 && stats.bytes_in > 0 && stats.bytes_out > 0);
    CHECK(stats.reconnects == 0);
    CHECK(devserver_stat(&gw, "heartbeats_total") >= 3);
    CHECK(devserver_stat(&gw, "identified") == 1);
    CHECK_OK(ubg_client_close(client, 1000));
    const recorded_event *closed = wait_event(&r, UBG_EVENT_CLOSED, NULL, 3000);
    CHECK(closed && closed->code == 1000 && !closed->reconnect);
    const recorded_event *final = NULL;
    while ((final = wait_event(&r, UBG_EVENT_STATE, NULL, 2000)) && final->state != UBG_STATE_CLOSED) {}
    CHECK(final != NULL);
    CHECK_OK(ubg_client_free(client));
    devserver_stop(&gw);
    recorder_destroy(&r);
}

static void expect_fatal(const char *query, const char *key, int code) {
    devserver gw;
    devserver_start(&gw, BASIC);
    recorder r;
    recorder_init(&r);
    char url[512];
    devserver_url(&gw, query, url, sizeof url);
    ubg_client_t client = make_client(NULL, url, key, NULL, &r);
    CHECK_OK(ubg_client_connect(client));
    const recorded_event *error = wait_event(&r, UBG_EVENT_ERROR, NULL, 5000);
    CHECK_MSG(error && error->has_code && error->code == code, "expected op -1 error %d", code);
    const recorded_event *fatal = wait_event(&r, UBG_EVENT_FATAL, NULL, 5000);
    CHECK_MSG(fatal && fatal->code == code, "expected fatal %d, got %d", code, fatal ? fatal->code : 0);
    sleep_ms(1000); /* far longer than the 50..400 ms backoff: no second attempt */
    CHECK_MSG(devserver_stat(&gw, "connects_total") == 1, "the client tried again after %d", code);
    ubg_state_t state;
    CHECK_OK(ubg_client_get_state(client, &state));
    CHECK(state == UBG_STATE_FAILED);
    CHECK_RC(ubg_client_send(client, "x", NULL), UBG_EREFUSED);
    CHECK_OK(ubg_client_free(client));
    devserver_stop(&gw);
    recorder_destroy(&r);
}

static void test_wrong_key_is_fatal_4001(void) { expect_fatal("v=1", "not-the-key", 4001); }
static void test_wrong_version_is_fatal_4000(void) { expect_fatal("v=2", "dev-key", 4000); }

static void test_acks_stop_reconnect_within_two_intervals(void) {
    devserver gw;
    devserver_start(&gw, BASIC);
    recorder r;
    recorder_init(&r);
    char url[512];
    devserver_url(&gw, "v=1&fault_no_ack_after=2", url, sizeof url);
    ubg_client_t client = make_client(NULL, url, "dev-key", NULL, &r);
    CHECK_OK(ubg_client_connect(client));
    const recorded_event *ready = wait_event(&r, UBG_EVENT_READY, NULL, 5000);
    CHECK(ready != NULL);
    const recorded_event *closed = wait_event(&r, UBG_EVENT_CLOSED, NULL, 5000);
    CHECK_MSG(closed != NULL, "the zombie was never detected");
    CHECK(closed->reconnect);
    CHECK(closed->message && strstr(closed->message, "zombie"));
    /* Beats at 0 and 200 ms are ACKed, the one at 400 is not: the zombie shows at 600 ms,
     * two intervals after ACKs stopped. */
    int64_t after = closed->at_ms - ready->at_ms;
    CHECK_MSG(after <= 4 * HEARTBEAT_MS + slack_ms(), "zombie detected after %lld ms", (long long)after);
    CHECK_MSG(wait_event(&r, UBG_EVENT_READY, NULL, 5000), "no reconnect after the zombie");
    CHECK_OK(ubg_client_free(client));
    devserver_stop(&gw);
    recorder_destroy(&r);
}

static void expect_reconnect_after(int code) {
    devserver gw;
    devserver_start(&gw, BASIC);
    recorder r;
    recorder_init(&r);
    char url[512];
    devserver_url(&gw, "v=1", url, sizeof url);
    ubg_client_t client = make_client(NULL, url, "dev-key", NULL, &r);
    CHECK_OK(ubg_client_connect(client));
    CHECK(wait_event(&r, UBG_EVENT_READY, NULL, 5000));
    char command[128];
    snprintf(command, sizeof command, "{\"cmd\":\"close_all\",\"code\":%d}", code);
    free(devserver_command(&gw, command));
    const recorded_event *closed = wait_event(&r, UBG_EVENT_CLOSED, NULL, 3000);
    CHECK_MSG(closed && closed->code == code && closed->reconnect, "expected a reconnecting close %d", code);
    const recorded_event *again = wait_event(&r, UBG_EVENT_READY, NULL, 5000);
    CHECK_MSG(again != NULL, "no reconnect after %d", code);
    /* Within the backoff ceiling, plus connecting and identifying. */
    CHECK_MSG(again->at_ms - closed->at_ms <= 400 + 500 + slack_ms(), "READY again %lld ms after CLOSED",
              (long long)(again->at_ms - closed->at_ms));
    CHECK(devserver_stat(&gw, "connects_total") == 2);
    ubg_stats_t stats;
    stats.size = sizeof stats;
    CHECK_OK(ubg_client_get_stats(client, &stats));
    CHECK(stats.reconnects == 1);
    CHECK_OK(ubg_client_free(client));
    devserver_stop(&gw);
    recorder_destroy(&r);
}

static void test_close_4006_reconnects(void) { expect_reconnect_after(4006); }
static void test_close_1000_reconnects(void) { expect_reconnect_after(1000); }

static void test_gateway_error_surfaces_with_its_message(void) {
    devserver gw;
    devserver_start(&gw, BASIC);
    recorder r;
    recorder_init(&r);
    char url[512];
    devserver_url(&gw, "v=1&fault_error=4005", url, sizeof url);
    ubg_client_t client = make_client(NULL, url, "dev-key", NULL, &r);
    CHECK_OK(ubg_client_connect(client));
    const recorded_event *error = wait_event(&r, UBG_EVENT_ERROR, NULL, 5000);
    CHECK(error && error->has_code && error->code == 4005 && !error->local);
    CHECK(error->message && strcmp(error->message, "Malformed data.") == 0);
    CHECK(error->data && strstr(error->data, "Injected error."));
    const recorded_event *closed = wait_event(&r, UBG_EVENT_CLOSED, NULL, 3000);
    CHECK(closed && closed->code == 4005 && closed->reconnect);
    CHECK_OK(ubg_client_free(client));
    devserver_stop(&gw);
    recorder_destroy(&r);
}

static void test_global_guild_count_after_send_servers(void) {
    devserver gw;
    devserver_start(&gw, BASIC);
    recorder a, b;
    recorder_init(&a);
    recorder_init(&b);
    char url[512];
    devserver_url(&gw, "v=1", url, sizeof url);
    ubg_client_t one = make_client(NULL, url, "dev-key", NULL, &a);
    ubg_client_t two = make_client(NULL, url, "dev-key", NULL, &b);
    CHECK_OK(ubg_client_connect(one));
    CHECK_OK(ubg_client_connect(two));
    CHECK(wait_event(&a, UBG_EVENT_READY, NULL, 5000) && wait_event(&b, UBG_EVENT_READY, NULL, 5000));
    CHECK_OK(ubg_client_send(one, "send_servers", "{\"guilds\":10,\"guildMembers\":100,\"cachedGuildMembers\":50}"));
    const recorded_event *count = wait_event(&b, UBG_EVENT_DISPATCH, "GLOBAL_GUILD_COUNT", 3000);
    CHECK(count && strstr(count->data, "\"guilds\":10"));
    CHECK_OK(ubg_client_send(two, "send_servers", "{\"guilds\":5,\"guildMembers\":7,\"cachedGuildMembers\":1}"));
    const recorded_event *sum = wait_event(&a, UBG_EVENT_DISPATCH, "GLOBAL_GUILD_COUNT", 3000);
    sum = wait_event(&a, UBG_EVENT_DISPATCH, "GLOBAL_GUILD_COUNT", 3000);
    CHECK_MSG(sum && strstr(sum->data, "\"guilds\":15") && strstr(sum->data, "\"guildMembers\":107") &&
              strstr(sum->data, "\"cachedGuildMembers\":51"), "sum: %s", sum ? sum->data : "none");
    CHECK_OK(ubg_client_free(one));
    CHECK_OK(ubg_client_free(two));
    devserver_stop(&gw);
    recorder_destroy(&a);
    recorder_destroy(&b);
}

static void zlib_style(const char *style) {
    devserver gw;
    devserver_start(&gw, BASIC " --echo");
    recorder r;
    recorder_init(&r);
    char query[128], url[512];
    snprintf(query, sizeof query, "v=1&zlib_style=%s", style);
    devserver_url(&gw, query, url, sizeof url);
    ubg_client_t client = make_client(NULL, url, "dev-key", NULL, &r);
    CHECK_OK(ubg_client_set_compression(client, 1));
    CHECK_OK(ubg_client_connect(client));
    CHECK_MSG(wait_event(&r, UBG_EVENT_READY, NULL, 5000), "not ready with zlib %s", style);
    for (int i = 0; i < 20; i++) {
        char data[64];
        snprintf(data, sizeof data, "{\"i\":%d,\"pad\":\"%s\"}", i, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        CHECK_OK(ubg_client_send(client, "probe", data));
    }
    for (int i = 0; i < 20; i++) {
        const recorded_event *echo = wait_event(&r, UBG_EVENT_DISPATCH, "ECHO", 3000);
        char want[32];
        snprintf(want, sizeof want, "\"i\":%d,", i);
        CHECK_MSG(echo && strstr(echo->data, want), "echo %d with zlib %s", i, style);
    }
    if (count_events(&r, UBG_EVENT_ERROR, NULL) != 0) {
        pthread_mutex_lock(&r.lock);
        for (size_t i = 0; i < r.count; i++)
            if (r.events[i]->type == UBG_EVENT_ERROR || r.events[i]->type == UBG_EVENT_CLOSED)
                fprintf(stderr, "    event %d code %d local %d: %s\n", (int)r.events[i]->type, r.events[i]->code,
                        r.events[i]->local, r.events[i]->message ? r.events[i]->message : "");
        pthread_mutex_unlock(&r.lock);
    }
    CHECK(count_events(&r, UBG_EVENT_ERROR, NULL) == 0);
    CHECK_OK(ubg_client_free(client));
    devserver_stop(&gw);
    recorder_destroy(&r);
}

static void test_zlib_stream_style(void) { zlib_style("stream"); }
static void test_zlib_message_style(void) { zlib_style("message"); }

static void test_wss_with_the_dev_ca_and_refused_without(void) {
    devserver gw;
    devserver_start(&gw, BASIC " --tls");
    CHECK(gw.ca[0] != 0);
    recorder r;
    recorder_init(&r);
    char url[512];
    devserver_url(&gw, "v=1", url, sizeof url);
    ubg_client_t trusted = make_client(NULL, url, "dev-key", gw.ca, &r);
    CHECK_OK(ubg_client_connect(trusted));
    CHECK_MSG(wait_event(&r, UBG_EVENT_READY, NULL, 5000), "not ready over wss with the dev CA");
    CHECK_OK(ubg_client_free(trusted));

    recorder u;
    recorder_init(&u);
    ubg_client_t untrusted = make_client(NULL, url, "dev-key", NULL, &u);
    CHECK_OK(ubg_client_connect(untrusted));
    const recorded_event *closed = wait_event(&u, UBG_EVENT_CLOSED, NULL, 5000);
    CHECK(closed && closed->code == 1006 && closed->local && closed->reconnect);
    CHECK_MSG(closed->message && strstr(closed->message, "certificate verification failed"), "%s",
              closed->message ? closed->message : "no message");
    CHECK(count_events(&u, UBG_EVENT_READY, NULL) == 0);
    CHECK_OK(ubg_client_free(untrusted));
    devserver_stop(&gw);
    recorder_destroy(&r);
    recorder_destroy(&u);
}

static void test_sends_before_ready_are_delivered_after_ready_in_order(void) {
    devserver gw;
    devserver_start(&gw, BASIC " --echo");
    recorder r;
    recorder_init(&r);
    char url[512];
    devserver_url(&gw, "v=1", url, sizeof url);
    ubg_client_t client = make_client(NULL, url, "dev-key", NULL, &r);
    CHECK_OK(ubg_client_connect(client));
    for (int i = 0; i < 5; i++) {
        char data[32];
        snprintf(data, sizeof data, "{\"n\":%d}", i);
        CHECK_OK(ubg_client_send(client, "early", data));
    }
    CHECK(wait_event(&r, UBG_EVENT_READY, NULL, 5000));
    for (int i = 0; i < 5; i++) {
        const recorded_event *echo = wait_event(&r, UBG_EVENT_DISPATCH, "ECHO", 3000);
        char want[32];
        snprintf(want, sizeof want, "{\"n\":%d}", i);
        CHECK_MSG(echo && strstr(echo->data, want), "early send %d missing or out of order", i);
    }
    CHECK_OK(ubg_client_free(client));
    devserver_stop(&gw);
    recorder_destroy(&r);
}

/* Frees its own client from inside the callback, on the first READY. */
typedef struct {
    ubg_client_t client;
    int freed;
    int after_free;
    pthread_mutex_t lock;
} self_free;

static void free_on_ready(ubg_client_t client, const ubg_event_t *event, void *user_data) {
    self_free *s = user_data;
    pthread_mutex_lock(&s->lock);
    if (s->freed) s->after_free++;
    if (event->type == UBG_EVENT_READY && !s->freed) {
        CHECK(client == s->client);
        CHECK_OK(ubg_client_free(client));
        CHECK_RC(ubg_client_send(client, "x", NULL), UBG_EHANDLE);
        s->freed = 1;
    }
    pthread_mutex_unlock(&s->lock);
}

static void test_free_from_inside_a_callback(void) {
    devserver gw;
    devserver_start(&gw, BASIC);
    char url[512];
    devserver_url(&gw, "v=1", url, sizeof url);
    self_free s = {0};
    pthread_mutex_init(&s.lock, NULL);
    CHECK_OK(ubg_client_create(NULL, "dev-key", &s.client));
    CHECK_OK(ubg_client_set_url(s.client, url));
    CHECK_OK(ubg_client_set_event_callback(s.client, free_on_ready, &s));
    CHECK_OK(ubg_client_connect(s.client));
    int64_t deadline = now_ms() + 5000;
    while (now_ms() < deadline) {
        pthread_mutex_lock(&s.lock);
        int done = s.freed;
        pthread_mutex_unlock(&s.lock);
        if (done) break;
        sleep_ms(10);
    }
    CHECK(s.freed);
    sleep_ms(3 * HEARTBEAT_MS);
    CHECK_MSG(s.after_free == 0, "%d callbacks after the free", s.after_free);
    /* The connection was dropped with the client. */
    CHECK(devserver_stat(&gw, "connections") == 0);
    devserver_stop(&gw);
}

typedef struct {
    ubg_client_t client;
    int sent;
    int refused_wrongly;
} sender;

static void *send_many(void *arg) {
    sender *s = arg;
    for (int i = 0; i < 300; i++) {
        ubg_result_t rc = ubg_client_send(s->client, "load", "{\"x\":1}");
        if (rc == UBG_OK) s->sent++;
        else if (rc != UBG_EQUEUEFULL) s->refused_wrongly++;
        if (i % 20 == 0) sleep_ms(5);
    }
    return NULL;
}

static void test_eight_threads_send_while_the_server_forces_reconnects(void) {
    devserver gw;
    devserver_start(&gw, BASIC);
    recorder r;
    recorder_init(&r);
    char url[512];
    devserver_url(&gw, "v=1", url, sizeof url);
    ubg_client_t client = make_client(NULL, url, "dev-key", NULL, &r);
    CHECK_OK(ubg_client_set_limits(client, 0, 100000, 0));
    CHECK_OK(ubg_client_connect(client));
    CHECK(wait_event(&r, UBG_EVENT_READY, NULL, 5000));
    pthread_t threads[8];
    sender senders[8];
    for (int i = 0; i < 8; i++) {
        senders[i] = (sender){client, 0, 0};
        pthread_create(&threads[i], NULL, send_many, &senders[i]);
    }
    for (int k = 0; k < 4; k++) {
        sleep_ms(100);
        free(devserver_command(&gw, "{\"cmd\":\"close_all\",\"code\":4006}"));
    }
    int sent = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(threads[i], NULL);
        CHECK(senders[i].refused_wrongly == 0);
        sent += senders[i].sent;
    }
    CHECK(sent > 0);
    /* Everything accepted is either received by the gateway or reported as undelivered. */
    CHECK(wait_event(&r, UBG_EVENT_READY, NULL, 5000) != NULL);
    long received = 0;
    int64_t deadline = now_ms() + 10000;
    while (received == 0 && now_ms() < deadline) {
        sleep_ms(100);
        char *stats = devserver_command(&gw, "{\"cmd\":\"stats\"}");
        json_number(stats, "load", &received);
        free(stats);
    }
    CHECK_MSG(received > 0, "the gateway received no load event");
    CHECK_MSG(received <= sent, "received %ld of %d", received, sent);
    CHECK(count_events(&r, UBG_EVENT_CLOSED, NULL) >= 1);
    CHECK_OK(ubg_client_free(client));
    devserver_stop(&gw);
    recorder_destroy(&r);
}

static void test_pull_api_and_its_fd(void) {
    devserver gw;
    devserver_start(&gw, BASIC);
    char url[512];
    devserver_url(&gw, "v=1", url, sizeof url);
    ubg_client_t client = make_client(NULL, url, "dev-key", NULL, NULL);
    CHECK_OK(ubg_client_set_log_level(client, UBG_LOG_INFO));
    int fd = -1;
    CHECK_OK(ubg_client_get_event_fd(client, &fd));
    struct pollfd p = {fd, POLLIN, 0};
    CHECK(poll(&p, 1, 0) == 0); /* nothing waits yet */
    CHECK_OK(ubg_client_connect(client));
    CHECK(poll(&p, 1, 5000) == 1 && (p.revents & POLLIN));
    ubg_event_t event;
    event.size = sizeof event;
    int ready = 0, logs = 0;
    int64_t deadline = now_ms() + 5000;
    while (!ready && now_ms() < deadline) {
        ubg_result_t rc = ubg_client_next_event(client, 1000, &event);
        if (rc == UBG_ETIMEOUT) continue;
        CHECK_OK(rc);
        CHECK(event.size == sizeof event);
        if (event.type == UBG_EVENT_LOG) {
            logs++;
            CHECK(event.message && !strstr(event.message, "dev-key")); /* the key is never logged */
        }
        if (event.type == UBG_EVENT_READY) ready = 1;
    }
    CHECK(ready && logs > 0);
    CHECK_OK(ubg_client_next_event(client, 1000, &event));
    CHECK(event.type == UBG_EVENT_DISPATCH && strcmp(event.name, "bot_connect_success") == 0);
    /* Drained: the fd is no longer readable and a zero wait times out. */
    while (ubg_client_next_event(client, 0, &event) == UBG_OK) {}
    p.revents = 0;
    CHECK(poll(&p, 1, 0) == 0);
    CHECK_RC(ubg_client_next_event(client, 50, &event), UBG_ETIMEOUT);
    CHECK_OK(ubg_client_close(client, 1000));
    ubg_result_t rc;
    int closed_state = 0;
    while ((rc = ubg_client_next_event(client, 3000, &event)) == UBG_OK)
        if (event.type == UBG_EVENT_STATE && event.state == UBG_STATE_CLOSED) closed_state = 1;
    CHECK_RC(rc, UBG_ECLOSED);
    CHECK(closed_state);
    CHECK_OK(ubg_client_free(client));
    devserver_stop(&gw);
}

/* 200 echoed events pulled in batches of up to 64: all arrive, in order, with intact strings
 * (each batch's strings stay valid until the next pull), and no batch is empty. */
static void test_pull_in_batches(void) {
    devserver gw;
    devserver_start(&gw, BASIC " --echo");
    char url[512];
    devserver_url(&gw, "v=1", url, sizeof url);
    ubg_client_t client = make_client(NULL, url, "dev-key", NULL, NULL);
    CHECK_OK(ubg_client_connect(client));
    enum { SENT = 200, BATCH = 64 };
    for (int i = 0; i < SENT; i++) {
        char data[32];
        snprintf(data, sizeof data, "{\"n\":%d}", i);
        CHECK_OK(ubg_client_send(client, "batch", data));
    }
    ubg_event_t events[BATCH];
    events[0].size = sizeof events[0];
    int next = 0, ready = 0, batches = 0;
    int64_t deadline = now_ms() + 10000;
    while (next < SENT && now_ms() < deadline) {
        size_t count = 99;
        ubg_result_t rc = ubg_client_next_events(client, 1000, events, BATCH, &count);
        if (rc == UBG_ETIMEOUT) {
            CHECK(count == 0);
            continue;
        }
        CHECK_OK(rc);
        CHECK(count >= 1 && count <= BATCH);
        batches++;
        for (size_t i = 0; i < count; i++) {
            CHECK(events[i].size == sizeof events[i]);
            if (events[i].type == UBG_EVENT_READY) ready = 1;
            if (events[i].type != UBG_EVENT_DISPATCH || strcmp(events[i].name, "ECHO") != 0) continue;
            char want[32];
            snprintf(want, sizeof want, "{\"n\":%d}", next);
            CHECK_MSG(strstr(events[i].data, want) && strlen(events[i].data) == events[i].data_len,
                      "echo %d missing, out of order or cut: %s", next, events[i].data);
            next++;
        }
    }
    CHECK_MSG(next == SENT, "pulled %d of %d echoes", next, SENT);
    CHECK(ready && batches < SENT); /* bursts came out many at a time */
    CHECK_OK(ubg_client_free(client));
    size_t count = 1;
    CHECK_RC(ubg_client_next_events(client, 0, events, BATCH, &count), UBG_EHANDLE);
    devserver_stop(&gw);
}

static void test_hundred_clients_on_one_loop(void) {
    devserver gw;
    devserver_start(&gw, "--heartbeat 1000 --key dev-key");
    ubg_loop_t loop;
    CHECK_OK(ubg_loop_create(&loop));
    enum { N = 100 };
    static recorder recorders[N];
    ubg_client_t clients[N];
    char url[512];
    devserver_url(&gw, "v=1", url, sizeof url);
    for (int i = 0; i < N; i++) {
        recorder_init(&recorders[i]);
        clients[i] = make_client(loop, url, "dev-key", NULL, &recorders[i]);
        CHECK_OK(ubg_client_connect(clients[i]));
    }
    for (int i = 0; i < N; i++) CHECK_MSG(wait_event(&recorders[i], UBG_EVENT_READY, NULL, 20000), "client %d not ready", i);
    CHECK(devserver_stat(&gw, "identified") == N);
    for (int i = 0; i < N; i++) CHECK_OK(ubg_client_free(clients[i]));
    CHECK_OK(ubg_loop_free(loop));
    devserver_stop(&gw);
}

const test_case gateway_tests[] = {
    {"gateway: identify success", test_identify_success, 30},
    {"gateway: wrong key is fatal 4001, no second attempt", test_wrong_key_is_fatal_4001, 30},
    {"gateway: wrong version is fatal 4000", test_wrong_version_is_fatal_4000, 30},
    {"gateway: ACKs stop -> reconnect within two intervals", test_acks_stop_reconnect_within_two_intervals, 30},
    {"gateway: close 4006 -> reconnect with backoff", test_close_4006_reconnects, 30},
    {"gateway: close 1000 -> reconnect with backoff", test_close_1000_reconnects, 30},
    {"gateway: op -1 error surfaced with its message", test_gateway_error_surfaces_with_its_message, 30},
    {"gateway: GLOBAL_GUILD_COUNT after send_servers", test_global_guild_count_after_send_servers, 30},
    {"gateway: zlib, one stream per connection", test_zlib_stream_style, 30},
    {"gateway: zlib, one stream per message", test_zlib_message_style, 30},
    {"gateway: wss with the dev CA, refused without", test_wss_with_the_dev_ca_and_refused_without, 30},
    {"gateway: sends before ready delivered after ready", test_sends_before_ready_are_delivered_after_ready_in_order, 30},
    {"gateway: free from inside a callback", test_free_from_inside_a_callback, 30},
    {"gateway: 8 threads send while the server forces reconnects", test_eight_threads_send_while_the_server_forces_reconnects, 60},
    {"gateway: pull API and its fd", test_pull_api_and_its_fd, 30},
    {"gateway: pull in batches", test_pull_in_batches, 30},
    {"gateway: 100 clients on one loop", test_hundred_clients_on_one_loop, 60},
};
const size_t gateway_test_count = sizeof gateway_tests / sizeof gateway_tests[0];
