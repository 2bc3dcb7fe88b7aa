/* The soak: 200 clients on one loop against a dev gateway that injects faults at random, for
 * UBG_SOAK_SECONDS (default 20; `make soak` runs 600). At the end every client recovered, no
 * stamped event is missing within any connection, every accepted send was received by the
 * gateway or reported as not delivered, file descriptors are back to their count, and resident
 * memory grew by at most the stated bound between the first and the last sample. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define CLIENTS 200
/* Resident memory may grow by at most this between the first sample (after warm-up) and the
 * last: allocator slack and caches, not a leak that grows with time. */
#define RSS_BOUND_KB (16 * 1024)

typedef struct {
    pthread_mutex_t lock;
    long next_seq;      /* expected seq of the next stamped event on this connection; -1: none yet */
    long gaps;
    long stamped;
    long connects;
    int ready;
    int final;
} soak_client;

static long parse_seq(const char *data) {
    const char *at = data ? strstr(data, "\"seq\":") : NULL;
    return at ? strtol(at + 6, NULL, 10) : -1;
}

static void on_soak_event(ubg_client_t client, const ubg_event_t *event, void *user_data) {
    (void)client;
    soak_client *c = user_data;
    pthread_mutex_lock(&c->lock);
    switch (event->type) {
    case UBG_EVENT_DISPATCH: {
        long seq = parse_seq(event->data);
        if (strcmp(event->name, "bot_connect_success") == 0) {
            c->connects++;
            c->next_seq = 0; /* a new connection: its stamps start again */
        }
        if (seq >= 0) {
            c->stamped++;
            if (seq != c->next_seq) c->gaps++;
            c->next_seq = seq + 1;
        }
        break;
    }
    case UBG_EVENT_READY: c->ready = 1; break;
    case UBG_EVENT_CLOSED: c->ready = 0; break;
    case UBG_EVENT_STATE:
        if (event->state == UBG_STATE_CLOSED || event->state == UBG_STATE_FAILED) c->final = 1;
        break;
    default: break;
    }
    pthread_mutex_unlock(&c->lock);
}

static int count_fds(void) {
    int n = 0;
    DIR *dir = opendir("/proc/self/fd");
    for (struct dirent *e; dir && (e = readdir(dir));) n += e->d_name[0] != '.';
    if (dir) closedir(dir);
    return n;
}

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kb;
}

static void test_soak(void) {
    const char *env = getenv("UBG_SOAK_SECONDS");
    int seconds = env ? atoi(env) : 20;
    if (seconds < 5) seconds = 5;
    devserver gw;
    devserver_start(&gw, "--heartbeat 1000 --stamp --key dev-key");
    int fds_before = count_fds();
    ubg_loop_t loop;
    CHECK_OK(ubg_loop_create(&loop));
    static soak_client state[CLIENTS];
    ubg_client_t clients[CLIENTS];
    long accepted[CLIENTS] = {0};
    char url[512];
    devserver_url(&gw, "v=1", url, sizeof url);
    for (int i = 0; i < CLIENTS; i++) {
        memset(&state[i], 0, sizeof state[i]);
        pthread_mutex_init(&state[i].lock, NULL);
        state[i].next_seq = -1;
        CHECK_OK(ubg_client_create(loop, "dev-key", &clients[i]));
        CHECK_OK(ubg_client_set_url(clients[i], url));
        CHECK_OK(ubg_client_set_reconnect(clients[i], 100, 2000));
        CHECK_OK(ubg_client_set_limits(clients[i], 0, 100000, 0));
        CHECK_OK(ubg_client_set_event_callback(clients[i], on_soak_event, &state[i]));
        CHECK_OK(ubg_client_connect(clients[i]));
    }
    int64_t start = now_ms(), end = start + seconds * 1000L;
    int64_t first_sample_at = start + (seconds >= 120 ? 60000 : seconds * 250L);
    long rss_first = -1, faults = 0, broadcasts = 0;
    int tick = 0;
    while (now_ms() < end) {
        sleep_ms(100);
        tick++;
        for (int i = 0; i < CLIENTS; i++) {
            char data[64];
            snprintf(data, sizeof data, "{\"c\":%d,\"k\":%ld}", i, accepted[i]);
            ubg_result_t rc = ubg_client_send(clients[i], "soak", data);
            if (rc == UBG_OK) accepted[i]++;
            else CHECK_MSG(rc == UBG_EQUEUEFULL, "send refused with %s", ubg_result_name(rc));
        }
        free(devserver_command(&gw, "{\"cmd\":\"send_all\",\"t\":\"TICK\",\"d\":{}}"));
        broadcasts++;
        if (tick % 20 == 0) { /* every 2 s: close a tenth of the connections with a random code */
            free(devserver_command(&gw, "{\"cmd\":\"close_some\",\"fraction\":0.1,\"codes\":[1000,4006,4002,4005,1011]}"));
            faults++;
        }
        if (tick % 50 == 25) { free(devserver_command(&gw, "{\"cmd\":\"stop_acks\"}")); faults++; }
        if (tick % 50 == 40) free(devserver_command(&gw, "{\"cmd\":\"resume_acks\"}"));
        if (rss_first < 0 && now_ms() >= first_sample_at) rss_first = rss_kb();
    }
    free(devserver_command(&gw, "{\"cmd\":\"resume_acks\"}"));
    /* Every client recovers. */
    int64_t deadline = now_ms() + 20000;
    int recovered = 0;
    while (now_ms() < deadline) {
        recovered = 0;
        for (int i = 0; i < CLIENTS; i++) {
            pthread_mutex_lock(&state[i].lock);
            recovered += state[i].ready;
            pthread_mutex_unlock(&state[i].lock);
        }
        if (recovered == CLIENTS) break;
        sleep_ms(100);
    }
    CHECK_MSG(recovered == CLIENTS, "%d of %d clients recovered", recovered, CLIENTS);
    long rss_last = rss_kb();
    /* Close everything, then account for every send. */
    for (int i = 0; i < CLIENTS; i++) CHECK_OK(ubg_client_close(clients[i], 1000));
    deadline = now_ms() + 20000;
    for (int i = 0; i < CLIENTS; i++) {
        for (;;) {
            pthread_mutex_lock(&state[i].lock);
            int done = state[i].final;
            pthread_mutex_unlock(&state[i].lock);
            if (done) break;
            CHECK_MSG(now_ms() < deadline, "client %d never closed", i);
            sleep_ms(10);
        }
    }
    long total_accepted = 0, total_failed = 0, gaps = 0, stamped = 0, connects = 0;
    for (int i = 0; i < CLIENTS; i++) {
        ubg_stats_t stats;
        stats.size = sizeof stats;
        CHECK_OK(ubg_client_get_stats(clients[i], &stats));
        total_accepted += accepted[i];
        total_failed += (long)stats.sends_failed;
        gaps += state[i].gaps;
        stamped += state[i].stamped;
        connects += state[i].connects;
        CHECK_OK(ubg_client_free(clients[i]));
    }
    long received = 0;
    char *stats = devserver_command(&gw, "{\"cmd\":\"stats\"}");
    json_number(stats, "soak", &received);
    free(stats);
    CHECK_OK(ubg_loop_free(loop));
    sleep_ms(200);
    int fds_after = count_fds();
    printf("  soak: %d clients, %d s, %ld faults injected, %ld connects, %ld stamped events checked, %ld gaps;\n"
           "        %ld sends accepted, %ld received by the gateway, %ld reported undelivered;\n"
           "        fds %d -> %d; RSS %ld kB -> %ld kB\n",
           CLIENTS, seconds, faults, connects, stamped, gaps, total_accepted, received, total_failed, fds_before,
           fds_after, rss_first, rss_last);
    CHECK_MSG(gaps == 0, "%ld gaps in stamped sequences", gaps);
    CHECK(stamped >= broadcasts);
    CHECK_MSG(received <= total_accepted, "the gateway got %ld of %ld", received, total_accepted);
    CHECK_MSG(received + total_failed >= total_accepted, "%ld sends neither received nor reported",
              total_accepted - received - total_failed);
    CHECK_MSG(fds_after == fds_before, "file descriptors %d -> %d", fds_before, fds_after);
    CHECK_MSG(rss_first > 0 && rss_last - rss_first <= RSS_BOUND_KB, "RSS grew from %ld to %ld kB", rss_first, rss_last);
    devserver_stop(&gw);
}

const test_case soak_tests[] = {
    {"soak: 200 clients on one loop under random faults", test_soak, 900},
};
const size_t soak_test_count = sizeof soak_tests / sizeof soak_tests[0];
