/* ubg_bench: this library from C, in callback mode (default) or with the pull API (--pull).
 *
 * Every DISPATCH is read as a C bot would: the event name is compared, and d (event->data) is
 * parsed with cJSON, the JSON library the baseline and libwebsockets clients use, to take
 * d.guilds of every GLOBAL_GUILD_COUNT. With --hand-scan it finds the member with
 * bench_json_member() (bench_common.h), a small scan of d's top-level members that relies on
 * the library having validated the message: an extra row of the results, not the main one.
 * Count and sum go back to the server in bench_result, which checks them.
 *
 * Modes (bench_common.h): stream; latency (bench_ping sent with ubg_client_send(), the
 * bench_pong DISPATCH timed: the same application-level round trip every client measures,
 * since the library sends its heartbeats by itself); idle and scale (--conns clients on the
 * library's default loop: one I/O thread; the library heartbeats by itself at the interval of
 * Hello). The compression comes from the URL (compression=zlib): the library decodes both
 * zlib styles by itself, so --zlib is ignored. */
#include "bench_common.h"

#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "utilbot_gateway.h"

static bench_opts_t o;
static uint64_t count, sum, pongs, pong_sum, ping_sent_ns;
static uint64_t *rtt;
static int ended;
static atomic_int failed;
static sem_t done;
static atomic_long ready_clients, final_clients;

static void check(ubg_client_t c, ubg_result_t rc, const char *what) {
    if (rc != UBG_OK) {
        fprintf(stderr, "ubg_bench: %s: %s: %s\n", what, ubg_result_name(rc), ubg_client_last_error(c));
        exit(1);
    }
}

static void send_ping(ubg_client_t c, uint64_t seq) {
    char d[64];
    snprintf(d, sizeof d, "{\"seq\":%llu}", (unsigned long long)seq);
    ping_sent_ns = bench_now_ns();
    check(c, ubg_client_send(c, "bench_ping", d), "send bench_ping");
}

static void send_result(ubg_client_t c, uint64_t n, uint64_t s) {
    char d[128];
    snprintf(d, sizeof d, "{\"count\":%llu,\"sum\":%llu}", (unsigned long long)n, (unsigned long long)s);
    check(c, ubg_client_send(c, "bench_result", d), "send bench_result");
    check(c, ubg_client_close(c, 1000), "close");
    ended = 1;
}

/* The unsigned integer member `key` of the event's d; -1 when there is none. */
static int64_t d_member(const ubg_event_t *ev, const char *key) {
    if (o.hand_scan) return bench_json_uint(bench_json_member(ev->data, ev->data_len, key), ev->data + ev->data_len);
    cJSON *d = cJSON_ParseWithLength(ev->data, ev->data_len);
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(d, key);
    int64_t result = cJSON_IsNumber(value) && value->valuedouble >= 0 ? (int64_t)value->valuedouble : -1;
    cJSON_Delete(d);
    return result;
}

/* Handles one event (either mode). Returns 1 when the client reached a final state. */
static int handle(ubg_client_t c, const ubg_event_t *ev) {
    switch (ev->type) {
    case UBG_EVENT_DISPATCH: {
        const char *name = ev->name;
        if (strcmp(name, "GLOBAL_GUILD_COUNT") == 0) {
            int64_t g = d_member(ev, "guilds");
            if (g < 0) {
                fprintf(stderr, "ubg_bench: no guilds in %.*s\n", (int)ev->data_len, ev->data);
                exit(1);
            }
            count++;
            sum += (uint64_t)g;
        } else if (strcmp(name, "bench_pong") == 0) {
            uint64_t now = bench_now_ns();
            int64_t seq = d_member(ev, "seq");
            rtt[pongs] = now - ping_sent_ns;
            pongs++;
            pong_sum += (uint64_t)seq;
            if ((long)pongs < o.n) send_ping(c, pongs);
            else send_result(c, pongs, pong_sum);
        } else if (strcmp(name, "BENCH_END") == 0) {
            send_result(c, count, sum);
        }
        break;
    }
    case UBG_EVENT_READY:
        atomic_fetch_add(&ready_clients, 1);
        if (o.mode == MODE_LATENCY) send_ping(c, 0);
        break;
    case UBG_EVENT_ERROR:
        fprintf(stderr, "ubg_bench: error %d: %s\n", ev->code, ev->message ? ev->message : "");
        failed = 1;
        break;
    case UBG_EVENT_CLOSED:
        if (ev->reconnect) {
            fprintf(stderr, "ubg_bench: connection closed (%d, %s), reconnecting: the run is void\n", ev->code,
                    ev->message ? ev->message : "");
            failed = 1;
        }
        break;
    case UBG_EVENT_FATAL:
        fprintf(stderr, "ubg_bench: fatal: %s\n", ev->message ? ev->message : "");
        failed = 1;
        break;
    case UBG_EVENT_STATE:
        if (ev->state == UBG_STATE_CLOSED || ev->state == UBG_STATE_FAILED) return 1;
        break;
    default:
        break;
    }
    return 0;
}

static void on_event(ubg_client_t c, const ubg_event_t *ev, void *user) {
    (void)user;
    if (handle(c, ev)) {
        atomic_fetch_add(&final_clients, 1);
        sem_post(&done);
    }
}

static ubg_client_t make_client(void) {
    ubg_client_t c;
    ubg_result_t rc = ubg_client_create(NULL, "bench-key", &c);
    if (rc != UBG_OK) {
        fprintf(stderr, "ubg_bench: create: %s\n", ubg_result_name(rc));
        exit(1);
    }
    check(c, ubg_client_set_url(c, o.url), "set_url");
    if (o.ca) check(c, ubg_client_set_tls_ca(c, o.ca, NULL), "set_tls_ca");
    if (!o.pull) check(c, ubg_client_set_event_callback(c, on_event, NULL), "set_event_callback");
    return c;
}

static int run_single(void) {
    if (o.mode == MODE_LATENCY) rtt = calloc((size_t)o.n, sizeof *rtt);
    ubg_client_t c = make_client();
    check(c, ubg_client_connect(c), "connect");
    if (o.pull) {
        /* Batched: one call takes every waiting event, up to 64. */
        ubg_event_t evs[64];
        evs[0].size = sizeof evs[0];
        for (int stop = 0; !stop;) {
            size_t k = 0;
            ubg_result_t rc = ubg_client_next_events(c, -1, evs, 64, &k);
            if (rc == UBG_ECLOSED) break;
            check(c, rc, "next_events");
            for (size_t i = 0; i < k && !stop; i++) stop = handle(c, &evs[i]);
        }
    } else {
        sem_wait(&done);
    }
    ubg_client_free(c);
    if (!ended || failed) {
        fprintf(stderr, "ubg_bench: the run did not complete cleanly\n");
        return 1;
    }
    if (o.mode == MODE_LATENCY) bench_print_latency(rtt, (long)pongs, pong_sum);
    else printf("{\"count\":%llu,\"sum\":%llu}\n", (unsigned long long)count, (unsigned long long)sum);
    return 0;
}

/* Pull mode with many clients: one epoll over their event descriptors, drained on this thread. */
static void pull_many(ubg_client_t *cs, long n, int ep, uint64_t until_ns, long want_ready) {
    struct epoll_event evs[256];
    ubg_event_t batch[16];
    batch[0].size = sizeof batch[0];
    for (;;) {
        uint64_t now = bench_now_ns();
        if (want_ready ? atomic_load(&ready_clients) >= want_ready || failed : now >= until_ns) return;
        int timeout = want_ready ? 1000 : (int)((until_ns - now) / 1000000) + 1;
        int k = epoll_wait(ep, evs, 256, timeout);
        for (int i = 0; i < k; i++) {
            long idx = (long)evs[i].data.u64;
            size_t got = 0;
            while (ubg_client_next_events(cs[idx], 0, batch, 16, &got) == UBG_OK)
                for (size_t j = 0; j < got; j++) handle(cs[idx], &batch[j]);
        }
    }
    (void)n;
}

static int run_many(void) {
    long n = o.conns;
    ubg_client_t *cs = calloc((size_t)n, sizeof *cs);
    /* Start the default loop before the baseline RSS is read. */
    ubg_client_t warm = make_client();
    ubg_client_free(warm);
    usleep(100000);
    long rss0 = bench_rss_kb();
    int ep = o.pull ? epoll_create1(0) : -1;
    for (long i = 0; i < n; i++) {
        cs[i] = make_client();
        if (o.pull) {
            int32_t fd;
            check(cs[i], ubg_client_get_event_fd(cs[i], &fd), "get_event_fd");
            struct epoll_event e = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
        }
        check(cs[i], ubg_client_connect(cs[i]), "connect");
    }
    uint64_t deadline = bench_now_ns() + 120ull * 1000000000ull;
    if (o.pull) pull_many(cs, n, ep, 0, n);
    else
        while (atomic_load(&ready_clients) < n && bench_now_ns() < deadline && !failed) usleep(10000);
    if (atomic_load(&ready_clients) < n) {
        fprintf(stderr, "ubg_bench: only %ld of %ld clients ready\n", atomic_load(&ready_clients), n);
        for (long i = 0, shown = 0; i < n && shown < 10; i++) {
            ubg_stats_t st = {.size = sizeof st};
            ubg_client_get_stats(cs[i], &st);
            if (st.state != UBG_STATE_READY) {
                fprintf(stderr, "  client %ld: %s, %llu messages in, %llu reconnects\n", i, ubg_state_name(st.state),
                        (unsigned long long)st.messages_in, (unsigned long long)st.reconnects);
                shown++;
            }
        }
        /* Free every client before exiting: returning from main with live clients let exit()
         * run while the loop thread was still in callbacks (it crashed once, SIGSEGV). */
        for (long i = 0; i < n; i++) ubg_client_free(cs[i]);
        return 1;
    }
    printf("{\"ready\":%ld,\"rss0_kb\":%ld,\"rss_kb\":%ld}\n", n, rss0, bench_rss_kb());
    fflush(stdout);
    double cpu0 = bench_cpu_secs();
    uint64_t t0 = bench_now_ns();
    if (o.pull) pull_many(cs, n, ep, t0 + (uint64_t)(o.secs * 1e9), 0);
    else usleep((useconds_t)(o.secs * 1e6));
    double cpu = bench_cpu_secs() - cpu0;
    double wall = (bench_now_ns() - t0) / 1e9;
    long rss = bench_rss_kb();
    uint64_t msgs_in = 0, reconnects = 0;
    for (long i = 0; i < n; i++) {
        ubg_stats_t st = {.size = sizeof st};
        ubg_client_get_stats(cs[i], &st);
        msgs_in += st.messages_in;
        reconnects += st.reconnects;
    }
    printf("{\"conns\":%ld,\"rss0_kb\":%ld,\"rss_kb\":%ld,\"cpu_secs\":%.4f,\"wall_secs\":%.4f,\"messages_in\":%llu,"
           "\"reconnects\":%llu}\n",
           n, rss0, rss, cpu, wall, (unsigned long long)msgs_in, (unsigned long long)reconnects);
    fflush(stdout);
    for (long i = 0; i < n; i++) ubg_client_free(cs[i]);
    return failed || reconnects ? 1 : 0;
}

int main(int argc, char **argv) {
    bench_parse(&o, argc, argv);
    sem_init(&done, 0, 0);
    if (o.mode == MODE_IDLE || o.mode == MODE_SCALE) return run_many();
    return run_single();
}
