/* lws_bench: libwebsockets (Debian's libwebsockets-dev, 4.1) as a gateway client.
 *
 * One lws context, its own event loop (lws_service); a protocol with a 64 KiB rx buffer; a
 * message is reassembled from lws's fragments, inflated with libz when binary (per message or
 * as one stream, --zlib), and parsed with cJSON like the baseline's: op, t, d.guilds. Outgoing
 * messages wait in a small per-connection queue until lws says the connection is writable.
 * Modes (bench_common.h): stream, latency, idle and scale (--conns connections on the one
 * context; every connection heartbeats at the interval of Hello). */
#include "bench_common.h"

#include <cjson/cJSON.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <zlib.h>

static bench_opts_t o;
static struct lws_context *ctx;
static int interrupted, failed;
static long ready_conns, closed_conns;
static uint64_t total_acks;
static long beat_ms;
static uint64_t beats;
static atomic_int beat_due, stop_due;
static void beat_all(void);

#define OUTQ 8
typedef struct pss {
    struct lws *wsi;
    uint8_t *msg;
    size_t msg_len, msg_cap;
    char *out[OUTQ]; /* queued JSON texts */
    int out_head, out_n;
    int closing, ready, done;
    z_stream z;
    int z_init;
    uint8_t *zout;
    size_t zout_cap;
    /* single-connection counters */
    uint64_t count, sum, pongs, pong_sum, ping_ns, acks;
    long hb_ms;
    struct pss *next;
} pss_t;

static pss_t *all; /* every connection (idle/scale heartbeats) */
static uint64_t *rtt;
static pss_t *single_pss;

static void queue(pss_t *p, const char *text) {
    if (p->out_n == OUTQ) {
        fprintf(stderr, "lws_bench: send queue full\n");
        exit(1);
    }
    p->out[(p->out_head + p->out_n) % OUTQ] = strdup(text);
    p->out_n++;
    lws_callback_on_writable(p->wsi);
}

static void send_ping(pss_t *p, uint64_t seq) {
    char m[96];
    snprintf(m, sizeof m, "{\"op\":1,\"t\":\"bench_ping\",\"d\":{\"seq\":%llu}}", (unsigned long long)seq);
    p->ping_ns = bench_now_ns();
    queue(p, m);
}

static void send_result(pss_t *p, uint64_t n, uint64_t s) {
    char m[160];
    snprintf(m, sizeof m, "{\"op\":1,\"t\":\"bench_result\",\"d\":{\"count\":%llu,\"sum\":%llu}}",
             (unsigned long long)n, (unsigned long long)s);
    queue(p, m);
    p->done = 1;
    p->closing = 1;
}

static const char *inflate_msg(pss_t *p, const uint8_t *in, size_t n, size_t *outlen) {
    if (!p->z_init) {
        inflateInit(&p->z);
        p->z_init = 1;
    }
    if (o.zlib == ZL_MSG) inflateReset(&p->z);
    p->z.next_in = (Bytef *)in;
    p->z.avail_in = (uInt)n;
    size_t len = 0;
    for (;;) {
        if (p->zout_cap - len < 4096) {
            p->zout_cap = p->zout_cap ? p->zout_cap * 2 : 262144;
            p->zout = realloc(p->zout, p->zout_cap);
        }
        p->z.next_out = p->zout + len;
        p->z.avail_out = (uInt)(p->zout_cap - len);
        int rc = inflate(&p->z, Z_SYNC_FLUSH);
        len = p->zout_cap - p->z.avail_out;
        if (rc == Z_STREAM_END) break;
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            fprintf(stderr, "lws_bench: inflate: %d\n", rc);
            exit(1);
        }
        if (p->z.avail_in == 0 && p->z.avail_out != 0) break;
    }
    *outlen = len;
    return (const char *)p->zout;
}

static void on_message(pss_t *p, const char *json, size_t n) {
    cJSON *root = cJSON_ParseWithLength(json, n);
    if (!root) {
        fprintf(stderr, "lws_bench: invalid JSON\n");
        exit(1);
    }
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(root, "op");
    int opv = cJSON_IsNumber(op) ? op->valueint : -100;
    if (opv == 0) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "t");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "d");
        const char *name = cJSON_IsString(t) ? t->valuestring : "";
        if (strcmp(name, "GLOBAL_GUILD_COUNT") == 0) {
            p->count++;
            p->sum += (uint64_t)cJSON_GetObjectItemCaseSensitive(d, "guilds")->valuedouble;
        } else if (strcmp(name, "bench_pong") == 0) {
            uint64_t now = bench_now_ns();
            rtt[p->pongs] = now - p->ping_ns;
            p->pongs++;
            p->pong_sum += (uint64_t)cJSON_GetObjectItemCaseSensitive(d, "seq")->valuedouble;
            if ((long)p->pongs < o.n) send_ping(p, p->pongs);
            else send_result(p, p->pongs, p->pong_sum);
        } else if (strcmp(name, "bot_connect_success") == 0) {
            p->ready = 1;
            ready_conns++;
            if (o.mode == MODE_LATENCY) send_ping(p, 0);
        } else if (strcmp(name, "BENCH_END") == 0) {
            send_result(p, p->count, p->sum);
        }
    } else if (opv == 11) {
        p->acks++;
        total_acks++;
    } else if (opv == 5) {
        const cJSON *hb = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "d"), "heartbeat");
        if (cJSON_IsNumber(hb)) p->hb_ms = hb->valueint;
        queue(p, "{\"op\":10}");
        queue(p, "{\"op\":1,\"t\":\"identify\",\"d\":{\"type\":\"bot\",\"key\":\"bench-key\"}}");
    }
    cJSON_Delete(root);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    pss_t *p = user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        fprintf(stderr, "lws_bench: connection error: %s\n", in ? (const char *)in : "?");
        failed = 1;
        interrupted = 1;
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        p->wsi = wsi;
        p->hb_ms = 45000;
        p->next = all;
        all = p;
        if (o.mode == MODE_STREAM || o.mode == MODE_LATENCY) single_pss = p;
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE: {
        int binary = lws_frame_is_binary(wsi);
        int complete = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);
        const uint8_t *data = in;
        size_t n = len;
        if (!complete || p->msg_len) { /* reassemble */
            if (p->msg_len + len > p->msg_cap) {
                p->msg_cap = (p->msg_len + len) * 2;
                p->msg = realloc(p->msg, p->msg_cap);
            }
            memcpy(p->msg + p->msg_len, in, len);
            p->msg_len += len;
            if (!complete) break;
            data = p->msg;
            n = p->msg_len;
        }
        if (binary) {
            size_t jn;
            const char *json = inflate_msg(p, data, n, &jn);
            on_message(p, json, jn);
        } else {
            on_message(p, (const char *)data, n);
        }
        p->msg_len = 0;
        break;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
        if (p->out_n) {
            char *m = p->out[p->out_head];
            size_t ml = strlen(m);
            uint8_t stackbuf[LWS_PRE + 256];
            uint8_t *buf = ml <= 256 ? stackbuf : malloc(LWS_PRE + ml);
            memcpy(buf + LWS_PRE, m, ml);
            int w = lws_write(wsi, buf + LWS_PRE, ml, LWS_WRITE_TEXT);
            if (buf != stackbuf) free(buf);
            free(m);
            p->out_head = (p->out_head + 1) % OUTQ;
            p->out_n--;
            if (w < (int)ml) return -1;
            if (p->out_n || p->closing) lws_callback_on_writable(wsi);
            break;
        }
        if (p->closing) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
            return -1;
        }
        break;
    }
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (atomic_exchange(&beat_due, 0)) beat_all();
        if (atomic_load(&stop_due)) interrupted = 1;
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        closed_conns++;
        if (o.mode == MODE_STREAM || o.mode == MODE_LATENCY) interrupted = 1;
        else if (!interrupted) {
            fprintf(stderr, "lws_bench: a connection closed\n");
            failed = 1;
            interrupted = 1;
        }
        break;
    default:
        break;
    }
    return 0;
}

static struct lws_protocols protocols[] = {
    {"gateway", callback, sizeof(pss_t), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static struct lws *connect_one(void) {
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = ctx;
    ci.address = o.host;
    ci.port = o.port;
    ci.path = o.path;
    ci.host = o.host;
    ci.origin = o.host;
    ci.ssl_connection = o.tls ? LCCSCF_USE_SSL : 0;
    ci.protocol = NULL;
    ci.local_protocol_name = "gateway";
    struct lws *wsi = lws_client_connect_via_info(&ci);
    if (!wsi) {
        fprintf(stderr, "lws_bench: lws_client_connect_via_info failed\n");
        exit(1);
    }
    return wsi;
}

/* idle/scale timing: lws 4.1's scheduler (lws_sul) did not wake an idle loop here (the wait
 * ran to its 30 s cap), so a timer thread marks what is due and wakes the loop with
 * lws_cancel_service(), the documented cross-thread wake-up; the loop thread does the work in
 * LWS_CALLBACK_EVENT_WAIT_CANCELLED. */
static void beat_all(void) {
    for (pss_t *p = all; p; p = p->next) {
        queue(p, "{\"op\":10}");
        beats++;
    }
}

static void *timer_thread(void *arg) {
    (void)arg;
    uint64_t t0 = bench_now_ns(), end = t0 + (uint64_t)(o.secs * 1e9), next = t0 + (uint64_t)beat_ms * 1000000ull;
    for (;;) {
        uint64_t now = bench_now_ns();
        uint64_t wake = next < end ? next : end;
        if (wake > now) {
            struct timespec ts = {(time_t)((wake - now) / 1000000000ull), (long)((wake - now) % 1000000000ull)};
            nanosleep(&ts, NULL);
        }
        now = bench_now_ns();
        if (now >= end) {
            atomic_store(&stop_due, 1);
            lws_cancel_service(ctx);
            return NULL;
        }
        if (now >= next) {
            atomic_store(&beat_due, 1);
            lws_cancel_service(ctx);
            next += (uint64_t)beat_ms * 1000000ull;
        }
    }
}

int main(int argc, char **argv) {
    bench_parse(&o, argc, argv);
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.options = o.tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0;
    info.client_ssl_ca_filepath = o.ca;
    info.fd_limit_per_thread = (unsigned int)(o.conns + 64);
    info.timeout_secs = 120;
    long rss0 = bench_rss_kb();
    ctx = lws_create_context(&info);
    if (!ctx) {
        fprintf(stderr, "lws_bench: lws_create_context failed\n");
        return 1;
    }
    if (o.mode == MODE_STREAM || o.mode == MODE_LATENCY) {
        if (o.mode == MODE_LATENCY) rtt = calloc((size_t)o.n, sizeof *rtt);
        connect_one();
        while (!interrupted && lws_service(ctx, 0) >= 0) {
        }
        pss_t *p = single_pss;
        int ok = p && p->done && !failed;
        if (ok && o.mode == MODE_LATENCY) bench_print_latency(rtt, (long)p->pongs, p->pong_sum);
        else if (ok) printf("{\"count\":%llu,\"sum\":%llu}\n", (unsigned long long)p->count, (unsigned long long)p->sum);
        lws_context_destroy(ctx);
        if (!ok) fprintf(stderr, "lws_bench: the run did not complete\n");
        return ok ? 0 : 1;
    }
    /* idle / scale: rss0 is taken after the context exists */
    rss0 = bench_rss_kb();
    for (long i = 0; i < o.conns; i++) connect_one();
    uint64_t deadline = bench_now_ns() + 120ull * 1000000000ull;
    while (!interrupted && ready_conns < o.conns && bench_now_ns() < deadline) lws_service(ctx, 0);
    if (ready_conns < o.conns) {
        fprintf(stderr, "lws_bench: only %ld of %ld connections ready\n", ready_conns, o.conns);
        return 1;
    }
    printf("{\"ready\":%ld,\"rss0_kb\":%ld,\"rss_kb\":%ld}\n", ready_conns, rss0, bench_rss_kb());
    fflush(stdout);
    double cpu0 = bench_cpu_secs();
    uint64_t t0 = bench_now_ns();
    beat_ms = all ? all->hb_ms : 1000;
    pthread_t timer;
    pthread_create(&timer, NULL, timer_thread, NULL);
    while (!interrupted && lws_service(ctx, 0) >= 0) {
    }
    double cpu = bench_cpu_secs() - cpu0;
    double wall = (bench_now_ns() - t0) / 1e9;
    printf("{\"conns\":%ld,\"rss0_kb\":%ld,\"rss_kb\":%ld,\"cpu_secs\":%.4f,\"wall_secs\":%.4f,\"beats\":%llu,"
           "\"acks\":%llu}\n",
           o.conns, rss0, bench_rss_kb(), cpu, wall, (unsigned long long)beats, (unsigned long long)total_acks);
    fflush(stdout);
    return failed ? 1 : 0;
}
