/* Concurrency stress, meant to run under ThreadSanitizer (make test-c-tsan) as well as plain:
 * many threads create, send on, close and free clients while the server forces reconnects. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define THREADS 16
#define ROUNDS 6

typedef struct {
    const char *url;
    int index;
    int sends_ok;
    int unexpected;
} worker;

static void tally_events(ubg_client_t client, const ubg_event_t *event, void *user_data) {
    (void)client;
    (void)event;
    int *count = user_data;
    __atomic_add_fetch(count, 1, __ATOMIC_RELAXED);
}

static void *churn(void *arg) {
    worker *w = arg;
    for (int round = 0; round < ROUNDS; round++) {
        ubg_client_t client = NULL;
        int events = 0;
        if (ubg_client_create(NULL, "dev-key", &client) != UBG_OK) { w->unexpected++; continue; }
        ubg_client_set_url(client, w->url);
        ubg_client_set_reconnect(client, 20, 100);
        if ((w->index + round) % 2 == 0) ubg_client_set_event_callback(client, tally_events, &events);
        if (ubg_client_connect(client) != UBG_OK) w->unexpected++;
        for (int i = 0; i < 50; i++) {
            ubg_result_t rc = ubg_client_send(client, "stress", "{\"n\":1}");
            if (rc == UBG_OK) w->sends_ok++;
            else if (rc != UBG_EQUEUEFULL) w->unexpected++;
            if (i % 10 == 0) {
                ubg_event_t event;
    event.size = sizeof event;
                ubg_client_next_event(client, 0, &event); /* pull mode, or UBG_ESTATE in callback mode */
                ubg_stats_t stats;
                stats.size = sizeof stats;
                ubg_client_get_stats(client, &stats);
                sleep_ms(2);
            }
        }
        if (round % 3 == 0) ubg_client_close(client, 1000);
        if (ubg_client_free(client) != UBG_OK) w->unexpected++;
        /* A freed handle is refused, from any thread, without a crash. */
        if (ubg_client_send(client, "stress", "{}") != UBG_EHANDLE) w->unexpected++;
    }
    return NULL;
}

static void test_sixteen_threads_create_send_close_free_under_forced_reconnects(void) {
    devserver gw;
    devserver_start(&gw, "--heartbeat 200 --heartbeat-grace 2000 --key dev-key");
    char url[512];
    devserver_url(&gw, "v=1", url, sizeof url);
    pthread_t threads[THREADS];
    worker workers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (worker){url, i, 0, 0};
        pthread_create(&threads[i], NULL, churn, &workers[i]);
    }
    for (int k = 0; k < 5; k++) {
        sleep_ms(60);
        free(devserver_command(&gw, "{\"cmd\":\"close_all\",\"code\":4006}"));
    }
    int sends = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        CHECK_MSG(workers[i].unexpected == 0, "worker %d saw %d unexpected results", i, workers[i].unexpected);
        sends += workers[i].sends_ok;
    }
    CHECK(sends > 0);
    devserver_stop(&gw);
}

/* One shared client hammered from many threads at once. */
typedef struct {
    ubg_client_t client;
    int failures;
} hammer;

static void *hammer_client(void *arg) {
    hammer *h = arg;
    for (int i = 0; i < 200; i++) {
        ubg_result_t rc = ubg_client_send(h->client, "hammer", "{\"i\":2}");
        if (rc != UBG_OK && rc != UBG_EQUEUEFULL) h->failures++;
        ubg_state_t state;
        if (ubg_client_get_state(h->client, &state) != UBG_OK) h->failures++;
        if (ubg_close_code_name(4001) == NULL) h->failures++;
    }
    return NULL;
}

static void test_one_client_shared_by_sixteen_threads(void) {
    devserver gw;
    devserver_start(&gw, "--heartbeat 200 --heartbeat-grace 2000 --key dev-key");
    recorder r;
    recorder_init(&r);
    char url[512];
    devserver_url(&gw, "v=1", url, sizeof url);
    ubg_client_t client = make_client(NULL, url, "dev-key", NULL, &r);
    CHECK_OK(ubg_client_set_limits(client, 0, 100000, 0));
    CHECK_OK(ubg_client_connect(client));
    pthread_t threads[THREADS];
    hammer h[THREADS];
    for (int i = 0; i < THREADS; i++) {
        h[i] = (hammer){client, 0};
        pthread_create(&threads[i], NULL, hammer_client, &h[i]);
    }
    free(devserver_command(&gw, "{\"cmd\":\"close_all\",\"code\":1000}"));
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        CHECK(h[i].failures == 0);
    }
    CHECK_OK(ubg_client_free(client));
    devserver_stop(&gw);
    recorder_destroy(&r);
}

const test_case stress_tests[] = {
    {"stress: 16 threads create, send, close, free under forced reconnects",
     test_sixteen_threads_create_send_close_free_under_forced_reconnects, 120},
    {"stress: one client shared by 16 threads", test_one_client_shared_by_sixteen_threads, 120},
};
const size_t stress_test_count = sizeof stress_tests / sizeof stress_tests[0];
