/* baseline: the near-the-limit C client every figure is compared with. Hand-written and
 * minimal: a blocking socket (or OpenSSL on it) read 64 KiB at a time, frame parsing without
 * UTF-8 checks (ws_raw.h), zlib (libz) per message or as one stream, and every message parsed
 * with cJSON (Debian's libcjson): op, t, and d.guilds of every GLOBAL_GUILD_COUNT.
 *
 * It follows the protocol: on Hello it sends a heartbeat and identify; ACKs are counted. In
 * the stream workloads (shorter than the 45 s interval the server announces) that first
 * heartbeat is the only one; idle and scale beat every interval.
 *
 * Modes (bench_common.h): stream, latency (sequential bench_ping/bench_pong round trips), idle
 * and scale (--conns connections set up one after the other with blocking calls, then served
 * from one epoll loop: one 64 KiB read buffer for all, a connection keeps only the bytes of a
 * frame that was cut in two). */
#include "ws_raw.h"

#include <cjson/cJSON.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <zlib.h>

static bench_opts_t o;

typedef struct {
    wsr_conn_t c;
    uint8_t *left; /* multi-connection modes: the start of a frame cut in two */
    size_t left_len;
    int ready, closed;
    z_stream z; /* zlib: each connection its own stream (its window is the server's context) */
    int z_ready;
} conn_t;

/* The state of the single-connection modes and the counters of all. */
static uint64_t count, sum, acks, pongs, pong_sum;
static long hb_ms = 45000;
static int got_hello, ended;
static uint64_t *rtt;
static uint64_t ping_sent_ns;

static uint8_t *zout;
static size_t zout_cap;

/* Inflates one binary message; returns the JSON text (zout) and its length. */
static const char *inflate_msg(conn_t *c, const uint8_t *p, size_t n, size_t *outlen) {
    z_stream *zs = &c->z;
    if (!c->z_ready) {
        if (inflateInit(zs) != Z_OK) {
            fprintf(stderr, "baseline: inflateInit failed\n");
            exit(1);
        }
        c->z_ready = 1;
    } else if (o.zlib == ZL_MSG) {
        inflateReset(zs);
    }
    zs->next_in = (Bytef *)p;
    zs->avail_in = (uInt)n;
    size_t len = 0;
    for (;;) {
        if (zout_cap - len < 4096) {
            zout_cap = zout_cap ? zout_cap * 2 : 262144;
            zout = realloc(zout, zout_cap);
        }
        zs->next_out = zout + len;
        zs->avail_out = (uInt)(zout_cap - len);
        int rc = inflate(zs, Z_SYNC_FLUSH);
        len = zout_cap - zs->avail_out;
        if (rc == Z_STREAM_END) break;
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            fprintf(stderr, "baseline: inflate: %d %s\n", rc, zs->msg ? zs->msg : "");
            exit(1);
        }
        if (zs->avail_in == 0 && zs->avail_out != 0) break;
    }
    *outlen = len;
    return (const char *)zout;
}

static void send_ping(conn_t *c, uint64_t seq) {
    char m[96];
    snprintf(m, sizeof m, "{\"op\":1,\"t\":\"bench_ping\",\"d\":{\"seq\":%llu}}", (unsigned long long)seq);
    ping_sent_ns = bench_now_ns();
    wsr_send_text(&c->c, m);
}

static void send_result(conn_t *c, uint64_t n, uint64_t s) {
    char m[160];
    snprintf(m, sizeof m, "{\"op\":1,\"t\":\"bench_result\",\"d\":{\"count\":%llu,\"sum\":%llu}}",
             (unsigned long long)n, (unsigned long long)s);
    wsr_send_text(&c->c, m);
    wsr_send(&c->c, 8, "\x03\xe8", 2); /* close 1000 */
    ended = 1;
}

/* Handles one complete message. */
static void on_message(conn_t *c, int opcode, const uint8_t *p, size_t n) {
    const char *json = (const char *)p;
    size_t jn = n;
    if (opcode == 2) json = inflate_msg(c, p, n, &jn);
    else if (opcode == 8) {
        c->closed = 1;
        return;
    } else if (opcode == 9) {
        wsr_send(&c->c, 10, p, n);
        return;
    } else if (opcode != 1) return;

    cJSON *root = cJSON_ParseWithLength(json, jn);
    if (!root) {
        fprintf(stderr, "baseline: invalid JSON: %.*s\n", (int)(jn > 200 ? 200 : jn), json);
        exit(1);
    }
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(root, "op");
    int opv = cJSON_IsNumber(op) ? op->valueint : -100;
    if (opv == 0) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "t");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "d");
        const char *name = cJSON_IsString(t) ? t->valuestring : "";
        if (strcmp(name, "GLOBAL_GUILD_COUNT") == 0) {
            const cJSON *g = cJSON_GetObjectItemCaseSensitive(d, "guilds");
            count++;
            sum += (uint64_t)g->valuedouble;
        } else if (strcmp(name, "bench_pong") == 0) {
            uint64_t now = bench_now_ns();
            uint64_t seq = (uint64_t)cJSON_GetObjectItemCaseSensitive(d, "seq")->valuedouble;
            rtt[pongs] = now - ping_sent_ns;
            pongs++;
            pong_sum += seq;
            if ((long)pongs < o.n) send_ping(c, pongs);
            else send_result(c, pongs, pong_sum);
        } else if (strcmp(name, "bot_connect_success") == 0) {
            c->ready = 1;
            if (o.mode == MODE_LATENCY) send_ping(c, 0);
        } else if (strcmp(name, "BENCH_END") == 0) {
            send_result(c, count, sum);
        }
    } else if (opv == 11) {
        acks++;
    } else if (opv == 5) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "d");
        const cJSON *hb = cJSON_GetObjectItemCaseSensitive(d, "heartbeat");
        if (cJSON_IsNumber(hb)) hb_ms = hb->valueint;
        got_hello = 1;
        wsr_send_text(&c->c, "{\"op\":10}");
        wsr_send_text(&c->c, "{\"op\":1,\"t\":\"identify\",\"d\":{\"type\":\"bot\",\"key\":\"bench-key\"}}");
    }
    cJSON_Delete(root);
}

static int run_single(void) {
    conn_t c = {0};
    wsr_connect(&c.c, &o);
    if (o.mode == MODE_LATENCY) rtt = calloc((size_t)o.n, sizeof *rtt);
    char req[2048];
    int n = wsr_upgrade_request(&o, req, sizeof req);
    wsr_write_all(&c.c, req, (size_t)n);
    wsr_buf_t b;
    wsr_buf_init(&b, WS_READ_CHUNK + 16);
    wsr_read_upgrade(&c.c, &b, NULL);
    while (!c.closed) {
        uint8_t *p;
        size_t len;
        int opcode = wsr_next_frame(&c.c, &b, &p, &len);
        if (opcode < 0) break;
        on_message(&c, opcode, p, len);
    }
    if (!ended) {
        fprintf(stderr, "baseline: the connection ended before the workload did\n");
        return 1;
    }
    if (o.mode == MODE_LATENCY) bench_print_latency(rtt, (long)pongs, pong_sum);
    else printf("{\"count\":%llu,\"sum\":%llu}\n", (unsigned long long)count, (unsigned long long)sum);
    return 0;
}

/* ---- idle and scale: many connections on one epoll loop */

static wsr_buf_t shared; /* the one read buffer */

/* Parses the complete frames in `shared` for connection c and keeps a cut frame's bytes. */
static void drain_shared(conn_t *c) {
    for (;;) {
        uint8_t *p;
        size_t len, need;
        int opcode = wsr_parse_frame(&shared, &p, &len, &need);
        if (opcode == -2) break;
        on_message(c, opcode, p, len);
    }
    free(c->left);
    c->left = NULL;
    c->left_len = shared.end - shared.start;
    if (c->left_len) {
        c->left = malloc(c->left_len);
        memcpy(c->left, shared.p + shared.start, c->left_len);
    }
}

/* One read for c into the shared buffer (after its kept bytes); 0 on EOF. */
static ssize_t read_into_shared(conn_t *c) {
    shared.start = shared.end = 0;
    if (c->left_len) {
        if (shared.cap < c->left_len + WS_READ_CHUNK) {
            shared.p = realloc(shared.p, c->left_len + WS_READ_CHUNK);
            shared.cap = c->left_len + WS_READ_CHUNK;
        }
        memcpy(shared.p, c->left, c->left_len);
        shared.end = c->left_len;
    }
    ssize_t r = wsr_read(&c->c, shared.p + shared.end, shared.cap - shared.end);
    if (r > 0) shared.end += (size_t)r;
    return r;
}

static int run_many(void) {
    long n = o.conns;
    conn_t *conns = calloc((size_t)n, sizeof *conns);
    wsr_buf_init(&shared, WS_READ_CHUNK);
    if (o.tls) wsr_init_tls(&o);
    long rss0 = bench_rss_kb();
    char req[2048];
    int rl = wsr_upgrade_request(&o, req, sizeof req);
    for (long i = 0; i < n; i++) {
        conn_t *c = &conns[i];
        wsr_connect(&c->c, &o);
        wsr_write_all(&c->c, req, (size_t)rl);
        shared.start = shared.end = 0;
        wsr_read_upgrade(&c->c, &shared, NULL);
        drain_shared(c);
        while (!c->ready) {
            if (read_into_shared(c) <= 0) {
                fprintf(stderr, "baseline: connection %ld ended during setup\n", i);
                return 1;
            }
            drain_shared(c);
        }
    }
    int ep = epoll_create1(0);
    for (long i = 0; i < n; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].c.fd, &ev);
    }
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec its = {.it_interval = {hb_ms / 1000, (hb_ms % 1000) * 1000000},
                             .it_value = {hb_ms / 1000, (hb_ms % 1000) * 1000000}};
    timerfd_settime(tfd, 0, &its, NULL);
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);

    long rss_ready = bench_rss_kb();
    printf("{\"ready\":%ld,\"rss0_kb\":%ld,\"rss_kb\":%ld}\n", n, rss0, rss_ready);
    fflush(stdout);
    double cpu0 = bench_cpu_secs();
    uint64_t t0 = bench_now_ns(), end = t0 + (uint64_t)(o.secs * 1e9);
    uint64_t beats = 0;
    struct epoll_event evs[256];
    for (;;) {
        uint64_t now = bench_now_ns();
        if (now >= end) break;
        int k = epoll_wait(ep, evs, 256, (int)((end - now) / 1000000) + 1);
        for (int i = 0; i < k; i++) {
            conn_t *c = evs[i].data.ptr;
            if (!c) {
                uint64_t ticks;
                if (read(tfd, &ticks, sizeof ticks) != sizeof ticks) continue;
                for (long j = 0; j < n; j++) wsr_send_text(&conns[j].c, "{\"op\":10}");
                beats += (uint64_t)n;
                continue;
            }
            if (read_into_shared(c) <= 0) {
                fprintf(stderr, "baseline: a connection ended\n");
                return 1;
            }
            drain_shared(c);
        }
    }
    double cpu = bench_cpu_secs() - cpu0;
    double wall = (bench_now_ns() - t0) / 1e9;
    printf("{\"conns\":%ld,\"rss0_kb\":%ld,\"rss_kb\":%ld,\"cpu_secs\":%.4f,\"wall_secs\":%.4f,\"beats\":%llu,"
           "\"acks\":%llu}\n",
           n, rss0, bench_rss_kb(), cpu, wall, (unsigned long long)beats, (unsigned long long)acks);
    return 0;
}

int main(int argc, char **argv) {
    bench_parse(&o, argc, argv);
    if (o.mode == MODE_IDLE || o.mode == MODE_SCALE) return run_many();
    return run_single();
}
