/* loadserver: the benchmark's gateway. One thread, epoll, on loopback; ws or wss (OpenSSL).
 *
 * It speaks enough of the Utilbot Gateway protocol (../shared/protocol.md) for every client of
 * the suite: the WebSocket upgrade, Hello (op 5), an immediate ACK (op 11) for every heartbeat
 * (op 10), identify (op 1, t identify) answered with bot_connect_success (op 0), then the
 * workload, and a final `{"op":0,"t":"BENCH_END","d":{"count":N,"sum":S}}`. The client answers
 * with `{"op":1,"t":"bench_result","d":{"count":N,"sum":S}}` (what it parsed); the server checks
 * it against what it sent and prints one JSON line per result on stdout:
 *   {"result":{"conn":7,"ok":true,"count":..,"sum":..,"expected_count":..,"expected_sum":..,
 *              "secs":..,"discard":false}}
 * `secs` runs from the identify to the bench_result, so it is the same measure for every client
 * and leaves out process start-up.
 *
 * The server is never the bottleneck: every frame of the workload (Hello, bot_connect_success,
 * the events and BENCH_END, compressed ahead of time in the zlib workloads) is built once before
 * the first connection is accepted and then only written out (write() or SSL_write() of one
 * contiguous buffer). The discard client (discard.c) shows how fast that goes.
 *
 * Workloads (--workload):
 *   small    N events (--events, default 200000) of about 100 bytes:
 *            {"op":0,"t":"GLOBAL_GUILD_COUNT","d":{"guilds":G,"guildMembers":M,"cachedGuildMembers":C}}
 *   large    N events (default 2000) of about 64 KiB: the same d plus a "list" of guild objects
 *   latency  no stream: every {"op":1,"t":"bench_ping","d":{"seq":K}} is answered at once with
 *            {"op":0,"t":"bench_pong","d":{"seq":K}}; count and sum are of the pongs sent
 *   idle     nothing but Hello, identify and ACKs (--heartbeat, default 45000 ms)
 *   scale    the same, with a 1000 ms heartbeat by default; SIGUSR1 prints the counters
 * The checksum is the sum of d.guilds over the events (G varies from event to event).
 *
 * Compression (--zlib): none (text frames); msg (every message its own zlib stream); stream (one
 * zlib stream per connection, a Z_SYNC_FLUSH after every message). Compressed messages go as
 * binary frames, and only to clients that asked (compression=zlib in the URL's query). In stream
 * style every message the server makes on the fly (ACK, pong) and every prebuilt part starts
 * from a fresh raw-deflate state: since none refers back past its own start, the parts can be
 * interleaved freely (at frame boundaries) in one valid zlib stream; only Hello carries the zlib
 * header.
 *
 * Output on stdout, one JSON object per line: first {"listening":PORT,...} once the workload is
 * built; then the results; {"stats":{...}} on SIGUSR1. SIGTERM or SIGINT end it.
 *
 * The 101 response carries X-Bench-Bytes: the bytes that follow it (Hello, bot_connect_success
 * and the stream up to BENCH_END) for a client that sends no heartbeat, so the discard client
 * knows when it has everything without parsing anything.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <zlib.h>

/* ---------------------------------------------------------------- small helpers */

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadserver: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    uint8_t *p;
    size_t len, cap;
} buf_t;

static void buf_reserve(buf_t *b, size_t more) {
    if (b->len + more <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more) cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p) die("out of memory (%zu bytes)", cap);
    b->cap = cap;
}

static void buf_put(buf_t *b, const void *p, size_t n) {
    buf_reserve(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void buf_consume(buf_t *b, size_t n) {
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

/* ---------------------------------------------------------------- configuration */

enum workload { W_SMALL, W_LARGE, W_LATENCY, W_IDLE, W_SCALE };
enum zmode { Z_NONE, Z_MSG, Z_STREAM };

static enum workload workload = W_SMALL;
static enum zmode zmode = Z_NONE;
static long events = -1;
static long heartbeat_ms = -1;
static int port = 0;
static SSL_CTX *ssl_ctx;

/* ---------------------------------------------------------------- compression and frames */

/* Appends a server frame (FIN, unmasked) with the given opcode and payload. */
static void put_frame(buf_t *out, int opcode, const uint8_t *payload, size_t n) {
    uint8_t h[10];
    size_t hl;
    h[0] = (uint8_t)(0x80 | opcode);
    if (n < 126) {
        h[1] = (uint8_t)n;
        hl = 2;
    } else if (n < 65536) {
        h[1] = 126;
        h[2] = (uint8_t)(n >> 8);
        h[3] = (uint8_t)n;
        hl = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++) h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    buf_put(out, h, hl);
    buf_put(out, payload, n);
}

static z_stream zmsg;      /* zlib format, reset per message (msg style) */
static z_stream zraw;      /* raw deflate (stream style): reset at the start of every part */
static buf_t zscratch;

/* Compresses one message into zscratch (replacing its content). Stream style: raw deflate with
 * a sync flush; `first` prefixes the zlib header (the first message of a connection). */
static void compress_msg(const uint8_t *p, size_t n, int first, int continue_part) {
    zscratch.len = 0;
    z_stream *z = zmode == Z_MSG ? &zmsg : &zraw;
    if (zmode == Z_MSG) deflateReset(z);
    else if (!continue_part) deflateReset(z);
    if (zmode == Z_STREAM && first) {
        static const uint8_t hdr[2] = {0x78, 0x9c};
        buf_put(&zscratch, hdr, 2);
    }
    z->next_in = (Bytef *)p;
    z->avail_in = (uInt)n;
    int flush = zmode == Z_MSG ? Z_FINISH : Z_SYNC_FLUSH;
    for (;;) {
        buf_reserve(&zscratch, n / 2 + 1024);
        z->next_out = zscratch.p + zscratch.len;
        z->avail_out = (uInt)(zscratch.cap - zscratch.len);
        int rc = deflate(z, flush);
        zscratch.len = zscratch.cap - z->avail_out;
        if (rc == Z_STREAM_END) break;
        if (rc != Z_OK && rc != Z_BUF_ERROR) die("deflate: %d", rc);
        if (z->avail_in == 0 && z->avail_out != 0) break; /* sync flush done */
    }
}

/* Appends a message as a frame: text, or binary compressed when `z` (the client asked). In
 * stream style `continue_part` keeps the compressor's history (inside a prebuilt part). */
static void put_message(buf_t *out, const char *json, size_t n, int z, int first, int continue_part) {
    if (!z || zmode == Z_NONE) {
        put_frame(out, 1, (const uint8_t *)json, n);
        return;
    }
    compress_msg((const uint8_t *)json, n, first, continue_part);
    put_frame(out, 2, zscratch.p, zscratch.len);
}

/* ---------------------------------------------------------------- the prebuilt workload */

/* [0]: plain frames; [1]: compressed frames (when --zlib is not none). */
static buf_t hello_frames[2], bcs_frames[2], ack_frames[2], stream_frames[2];
static uint64_t expected_count, expected_sum, payload_bytes;

static uint64_t guilds_of(uint64_t i) { return 1000 + (i * 7919 + 13) % 900000; }

static void build_workload(void) {
    char hello[96];
    int hn = snprintf(hello, sizeof hello, "{\"op\":5,\"d\":{\"heartbeat\":%ld}}", heartbeat_ms);
    static const char bcs[] = "{\"op\":0,\"t\":\"bot_connect_success\",\"d\":{\"bot_id\":\"b3nch000b3nch000\"}}";
    static const char ack[] = "{\"op\":11}";
    int variants = zmode == Z_NONE ? 1 : 2;
    for (int z = 0; z < variants; z++) {
        put_message(&hello_frames[z], hello, (size_t)hn, z, 1, 0);
        put_message(&bcs_frames[z], bcs, sizeof bcs - 1, z, 0, 0);
        put_message(&ack_frames[z], ack, sizeof ack - 1, z, 0, 0);
    }
    if (workload != W_SMALL && workload != W_LARGE) return;

    /* The large events' list of guilds: one ~64 KiB array, the same in every event. */
    buf_t list = {0};
    if (workload == W_LARGE) {
        buf_put(&list, "[", 1);
        char item[160];
        for (int i = 0; list.len < 65536 - 220; i++) {
            int n = snprintf(item, sizeof item,
                             "%s{\"id\":\"%018llu\",\"name\":\"guild %06d\",\"members\":%d,\"online\":%d}",
                             i ? "," : "", 100000000000000000ULL + (unsigned long long)i * 7777, i,
                             (i * 37) % 50000, (i * 11) % 5000);
            buf_put(&list, item, (size_t)n);
        }
        buf_put(&list, "]", 1);
    }
    buf_t msg = {0};
    for (int z = 0; z < variants; z++) {
        buf_t *out = &stream_frames[z];
        buf_reserve(out, (size_t)events * (workload == W_LARGE ? 65600 : 120) / (z ? 3 : 1) + 4096);
        uint64_t sum = 0;
        for (long i = 0; i < events; i++) {
            uint64_t g = guilds_of((uint64_t)i);
            sum += g;
            msg.len = 0;
            char head[192];
            int n = snprintf(head, sizeof head,
                             "{\"op\":0,\"t\":\"GLOBAL_GUILD_COUNT\",\"d\":{\"guilds\":%llu,\"guildMembers\":%llu,"
                             "\"cachedGuildMembers\":%llu",
                             (unsigned long long)g, (unsigned long long)(g * 55 + (uint64_t)i % 1000),
                             (unsigned long long)(g * 32 + (uint64_t)i % 777));
            buf_put(&msg, head, (size_t)n);
            if (workload == W_LARGE) {
                buf_put(&msg, ",\"list\":", 8);
                buf_put(&msg, list.p, list.len);
            }
            buf_put(&msg, "}}", 2);
            if (z == 0) payload_bytes += msg.len;
            put_message(out, (const char *)msg.p, msg.len, z, 0, i > 0);
        }
        char end[128];
        int n = snprintf(end, sizeof end, "{\"op\":0,\"t\":\"BENCH_END\",\"d\":{\"count\":%ld,\"sum\":%llu}}", events,
                         (unsigned long long)sum);
        put_message(out, end, (size_t)n, z, 0, 1);
        expected_count = (uint64_t)events;
        expected_sum = sum;
    }
    free(list.p);
    free(msg.p);
}

/* ---------------------------------------------------------------- connections */

typedef struct seg {
    const uint8_t *p;
    size_t len;
    uint8_t *owned; /* freed when written */
    struct seg *next;
} seg_t;

enum cstate { C_TLS, C_HTTP, C_WS, C_CLOSING };

typedef struct conn {
    int fd;
    uint64_t id;
    SSL *ssl;
    enum cstate state;
    int z;          /* the client asked for compression */
    int identified;
    int want_out;   /* EPOLLOUT registered */
    buf_t in;       /* unparsed input */
    buf_t msg;      /* a fragmented message being reassembled */
    int msg_opcode;
    seg_t *head, *tail;
    double t_identify;
    uint64_t pongs, pong_sum;
} conn_t;

static int ep;
static uint64_t next_id = 1;
static struct {
    uint64_t accepted, open, identified, heartbeats, acks, results, failed;
} stats;

static void out_seg(conn_t *c, const uint8_t *p, size_t n, uint8_t *owned) {
    seg_t *s = malloc(sizeof *s);
    if (!s) die("out of memory");
    s->p = p;
    s->len = n;
    s->owned = owned;
    s->next = NULL;
    if (c->tail) c->tail->next = s;
    else c->head = s;
    c->tail = s;
}

static void out_copy(conn_t *c, const void *p, size_t n) {
    uint8_t *copy = malloc(n);
    if (!copy) die("out of memory");
    memcpy(copy, p, n);
    out_seg(c, copy, n, copy);
}

static void conn_free(conn_t *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->ssl) SSL_free(c->ssl);
    close(c->fd);
    while (c->head) {
        seg_t *s = c->head;
        c->head = s->next;
        free(s->owned);
        free(s);
    }
    free(c->in.p);
    free(c->msg.p);
    stats.open--;
    free(c);
}

static void set_out_interest(conn_t *c, int want) {
    if (c->want_out == want) return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want;
}

/* Writes what is queued; returns -1 when the connection is gone (freed). */
static int flush_out(conn_t *c) {
    while (c->head) {
        seg_t *s = c->head;
        ssize_t w;
        size_t chunk = s->len;
        if (c->ssl) {
            if (chunk > (1u << 20)) chunk = 1u << 20;
            ERR_clear_error();
            int r = SSL_write(c->ssl, s->p, (int)chunk);
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) break;
                conn_free(c);
                return -1;
            }
            w = r;
        } else {
            w = write(c->fd, s->p, chunk);
            if (w < 0) {
                if (errno == EAGAIN || errno == EINTR) break;
                conn_free(c);
                return -1;
            }
        }
        s->p += w;
        s->len -= (size_t)w;
        if (s->len == 0) {
            c->head = s->next;
            if (!c->head) c->tail = NULL;
            free(s->owned);
            free(s);
        }
    }
    if (!c->head && c->state == C_CLOSING) {
        conn_free(c);
        return -1;
    }
    set_out_interest(c, c->head != NULL);
    return 0;
}

/* ---------------------------------------------------------------- protocol */

/* Finds `"key":` in a JSON text and returns the position after the colon (and blanks). A scan,
 * not a parser: the server only reads its own benchmark messages. */
static const char *json_find(const char *s, size_t n, const char *key) {
    size_t kl = strlen(key);
    for (const char *p = s; p + kl + 3 <= s + n; p++) {
        if (*p == '"' && memcmp(p + 1, key, kl) == 0 && p[1 + kl] == '"') {
            const char *q = p + 2 + kl;
            while (q < s + n && (*q == ' ' || *q == '\t')) q++;
            if (q < s + n && *q == ':') {
                q++;
                while (q < s + n && (*q == ' ' || *q == '\t')) q++;
                return q;
            }
        }
    }
    return NULL;
}

static int json_u64(const char *s, size_t n, const char *key, uint64_t *out) {
    const char *p = json_find(s, n, key);
    if (!p || p >= s + n || *p < '0' || *p > '9') return 0;
    uint64_t v = 0;
    while (p < s + n && *p >= '0' && *p <= '9') v = v * 10 + (uint64_t)(*p++ - '0');
    *out = v;
    return 1;
}

static int json_str_is(const char *s, size_t n, const char *key, const char *want) {
    const char *p = json_find(s, n, key);
    size_t wl = strlen(want);
    return p && p + wl + 2 <= s + n && *p == '"' && memcmp(p + 1, want, wl) == 0 && p[1 + wl] == '"';
}

static void send_close(conn_t *c, int code) {
    uint8_t payload[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    buf_t f = {0};
    put_frame(&f, 8, payload, 2);
    out_seg(c, f.p, f.len, f.p);
    c->state = C_CLOSING;
}

static void on_text(conn_t *c, const char *m, size_t n) {
    uint64_t op;
    if (!json_u64(m, n, "op", &op)) {
        if (json_find(m, n, "op") && memcmp(json_find(m, n, "op"), "-", 1) == 0) return;
        fprintf(stderr, "loadserver: conn %llu: message without op: %.*s\n", (unsigned long long)c->id,
                (int)(n > 200 ? 200 : n), m);
        send_close(c, 4003);
        return;
    }
    if (op == 10) {
        stats.heartbeats++;
        stats.acks++;
        out_seg(c, ack_frames[c->z].p, ack_frames[c->z].len, NULL);
        return;
    }
    if (op != 1) {
        send_close(c, 4004);
        return;
    }
    if (json_str_is(m, n, "t", "identify")) {
        if (c->identified) return;
        if (!json_find(m, n, "key") || !json_str_is(m, n, "type", "bot")) {
            send_close(c, 4007);
            return;
        }
        c->identified = 1;
        stats.identified++;
        c->t_identify = now_s();
        out_seg(c, bcs_frames[c->z].p, bcs_frames[c->z].len, NULL);
        if (workload == W_SMALL || workload == W_LARGE)
            out_seg(c, stream_frames[c->z].p, stream_frames[c->z].len, NULL);
        return;
    }
    if (!c->identified) return; /* ignored before identify, as the gateway does */
    if (json_str_is(m, n, "t", "bench_ping")) {
        uint64_t seq = 0;
        json_u64(m, n, "seq", &seq);
        c->pongs++;
        c->pong_sum += seq;
        char pong[96];
        int pn = snprintf(pong, sizeof pong, "{\"op\":0,\"t\":\"bench_pong\",\"d\":{\"seq\":%llu}}",
                          (unsigned long long)seq);
        buf_t f = {0};
        put_message(&f, pong, (size_t)pn, c->z, 0, 0);
        out_seg(c, f.p, f.len, f.p);
        return;
    }
    if (json_str_is(m, n, "t", "bench_result")) {
        double secs = now_s() - c->t_identify;
        stats.results++;
        if (json_find(m, n, "discard")) {
            printf("{\"result\":{\"conn\":%llu,\"ok\":null,\"discard\":true,\"secs\":%.6f}}\n",
                   (unsigned long long)c->id, secs);
            fflush(stdout);
            return;
        }
        uint64_t count = 0, sum = 0;
        int have = json_u64(m, n, "count", &count) & json_u64(m, n, "sum", &sum);
        uint64_t ec = expected_count, es = expected_sum;
        if (workload == W_LATENCY) {
            ec = c->pongs;
            es = c->pong_sum;
        }
        int ok = have && count == ec && sum == es && ec > 0;
        if (!ok) stats.failed++;
        printf("{\"result\":{\"conn\":%llu,\"ok\":%s,\"discard\":false,\"count\":%llu,\"sum\":%llu,"
               "\"expected_count\":%llu,\"expected_sum\":%llu,\"secs\":%.6f}}\n",
               (unsigned long long)c->id, ok ? "true" : "false", (unsigned long long)count,
               (unsigned long long)sum, (unsigned long long)ec, (unsigned long long)es, secs);
        fflush(stdout);
        return;
    }
    /* Other client events (send_servers, ...) are accepted and ignored. */
}

/* Parses complete frames from c->in. */
static void on_frames(conn_t *c) {
    size_t off = 0;
    while (c->state == C_WS) {
        uint8_t *p = c->in.p + off;
        size_t avail = c->in.len - off;
        if (avail < 2) break;
        int fin = p[0] & 0x80, opcode = p[0] & 0x0f, masked = p[1] & 0x80;
        uint64_t len = p[1] & 0x7f;
        size_t hl = 2;
        if (len == 126) {
            if (avail < 4) break;
            len = ((uint64_t)p[2] << 8) | p[3];
            hl = 4;
        } else if (len == 127) {
            if (avail < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = (len << 8) | p[2 + i];
            hl = 10;
        }
        if (!masked || len > (64u << 20)) {
            send_close(c, 1002);
            break;
        }
        if (avail < hl + 4 + len) break;
        uint8_t *mask = p + hl, *data = p + hl + 4;
        for (uint64_t i = 0; i < len; i++) data[i] ^= mask[i & 3];
        off += hl + 4 + len;
        if (opcode == 8) { /* close: answer it and go */
            uint8_t code[2] = {0x03, 0xe8};
            buf_t f = {0};
            put_frame(&f, 8, len >= 2 ? data : code, 2);
            out_seg(c, f.p, f.len, f.p);
            c->state = C_CLOSING;
            break;
        }
        if (opcode == 9) { /* ping */
            buf_t f = {0};
            put_frame(&f, 10, data, (size_t)len);
            out_seg(c, f.p, f.len, f.p);
            continue;
        }
        if (opcode == 10) continue;
        if (opcode == 1 || opcode == 2) {
            if (fin) {
                on_text(c, (const char *)data, (size_t)len);
            } else {
                c->msg.len = 0;
                c->msg_opcode = opcode;
                buf_put(&c->msg, data, (size_t)len);
            }
        } else if (opcode == 0) {
            buf_put(&c->msg, data, (size_t)len);
            if (fin) {
                on_text(c, (const char *)c->msg.p, c->msg.len);
                c->msg.len = 0;
            }
        }
    }
    buf_consume(&c->in, off);
}

static void base64(const uint8_t *in, size_t n, char *out) {
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* Returns -1 when the connection is gone. */
static int on_http(conn_t *c) {
    uint8_t *end = memmem(c->in.p, c->in.len, "\r\n\r\n", 4);
    if (!end) {
        if (c->in.len > 16384) {
            conn_free(c);
            return -1;
        }
        return 0;
    }
    size_t hlen = (size_t)(end - c->in.p) + 4;
    char *req = strndup((const char *)c->in.p, hlen);
    const char *key = NULL;
    size_t keylen = 0;
    for (char *line = strstr(req, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
        char *h = line + 2;
        if (strncasecmp(h, "Sec-WebSocket-Key:", 18) == 0) {
            key = h + 18;
            while (*key == ' ') key++;
            const char *e = strstr(key, "\r\n");
            keylen = (size_t)(e - key);
            while (keylen && key[keylen - 1] == ' ') keylen--;
        }
    }
    char *first_line_end = strstr(req, "\r\n");
    *first_line_end = 0;
    c->z = zmode != Z_NONE && strstr(req, "compression=zlib") != NULL;
    if (!key || strncmp(req, "GET ", 4) != 0) {
        fprintf(stderr, "loadserver: bad upgrade request: %s\n", req);
        free(req);
        static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        out_seg(c, (const uint8_t *)bad, sizeof bad - 1, NULL);
        c->state = C_CLOSING;
        return 0;
    }
    if (zmode != Z_NONE && !c->z)
        fprintf(stderr, "loadserver: conn %llu did not ask for compression=zlib: sending text\n",
                (unsigned long long)c->id);
    char concat[128];
    snprintf(concat, sizeof concat, "%.*s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", (int)keylen, key);
    uint8_t digest[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)concat, strlen(concat), digest);
    char accept[64];
    base64(digest, sizeof digest, accept);
    free(req);
    size_t follow = hello_frames[c->z].len + bcs_frames[c->z].len +
                    (workload == W_SMALL || workload == W_LARGE ? stream_frames[c->z].len : 0);
    char resp[512];
    int rn = snprintf(resp, sizeof resp,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\nX-Bench-Bytes: %zu\r\n\r\n",
                      accept, follow);
    out_copy(c, resp, (size_t)rn);
    out_seg(c, hello_frames[c->z].p, hello_frames[c->z].len, NULL);
    buf_consume(&c->in, hlen);
    c->state = C_WS;
    on_frames(c);
    return 0;
}

/* Reads what is there; returns -1 when the connection is gone. */
static int on_readable(conn_t *c) {
    if (c->state == C_TLS) {
        ERR_clear_error();
        int r = SSL_accept(c->ssl);
        if (r <= 0) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
            conn_free(c);
            return -1;
        }
        c->state = C_HTTP;
    }
    for (;;) {
        buf_reserve(&c->in, 16384);
        ssize_t r;
        if (c->ssl) {
            ERR_clear_error();
            int n = SSL_read(c->ssl, c->in.p + c->in.len, (int)(c->in.cap - c->in.len));
            if (n <= 0) {
                int e = SSL_get_error(c->ssl, n);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
                conn_free(c);
                return -1;
            }
            r = n;
        } else {
            r = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;
            if (r <= 0) {
                conn_free(c);
                return -1;
            }
        }
        c->in.len += (size_t)r;
        if (c->state == C_HTTP) {
            if (on_http(c) < 0) return -1;
        } else if (c->state == C_WS) on_frames(c);
        else c->in.len = 0; /* closing: ignore */
        if (!c->ssl && (size_t)r < 16384) break;
    }
    return 0;
}

static void on_accept(int lfd) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                fprintf(stderr, "loadserver: accept: %s\n", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn_t *c = calloc(1, sizeof *c);
        if (!c) die("out of memory");
        c->fd = fd;
        c->id = next_id++;
        c->state = C_HTTP;
        if (ssl_ctx) {
            c->ssl = SSL_new(ssl_ctx);
            SSL_set_fd(c->ssl, fd);
            SSL_set_accept_state(c->ssl);
            c->state = C_TLS;
        }
        stats.accepted++;
        stats.open++;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
}

static void print_stats(void) {
    printf("{\"stats\":{\"accepted\":%llu,\"open\":%llu,\"identified\":%llu,\"heartbeats\":%llu,\"acks\":%llu,"
           "\"results\":%llu,\"failed\":%llu,\"time\":%.6f}}\n",
           (unsigned long long)stats.accepted, (unsigned long long)stats.open, (unsigned long long)stats.identified,
           (unsigned long long)stats.heartbeats, (unsigned long long)stats.acks, (unsigned long long)stats.results,
           (unsigned long long)stats.failed, now_s());
    fflush(stdout);
}

static void usage(void) {
    fprintf(stderr, "usage: loadserver --workload small|large|latency|idle|scale [--events N] [--zlib none|msg|stream]\n"
                    "                  [--heartbeat MS] [--port P] [--tls CERT KEY]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *cert = NULL, *key = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--workload") && i + 1 < argc) {
            const char *w = argv[++i];
            if (!strcmp(w, "small")) workload = W_SMALL;
            else if (!strcmp(w, "large")) workload = W_LARGE;
            else if (!strcmp(w, "latency")) workload = W_LATENCY;
            else if (!strcmp(w, "idle")) workload = W_IDLE;
            else if (!strcmp(w, "scale")) workload = W_SCALE;
            else usage();
        } else if (!strcmp(a, "--events") && i + 1 < argc) events = atol(argv[++i]);
        else if (!strcmp(a, "--heartbeat") && i + 1 < argc) heartbeat_ms = atol(argv[++i]);
        else if (!strcmp(a, "--port") && i + 1 < argc) port = atoi(argv[++i]);
        else if (!strcmp(a, "--zlib") && i + 1 < argc) {
            const char *z = argv[++i];
            if (!strcmp(z, "none")) zmode = Z_NONE;
            else if (!strcmp(z, "msg")) zmode = Z_MSG;
            else if (!strcmp(z, "stream")) zmode = Z_STREAM;
            else usage();
        } else if (!strcmp(a, "--tls") && i + 2 < argc) {
            cert = argv[++i];
            key = argv[++i];
        } else usage();
    }
    if (events < 0) events = workload == W_LARGE ? 2000 : 200000;
    if (heartbeat_ms < 0) heartbeat_ms = workload == W_SCALE ? 1000 : 45000;

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);

    if (cert) {
        ssl_ctx = SSL_CTX_new(TLS_server_method());
        if (!ssl_ctx || SSL_CTX_use_certificate_chain_file(ssl_ctx, cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(ssl_ctx, key, SSL_FILETYPE_PEM) != 1)
            die("cannot load the certificate %s / key %s", cert, key);
        SSL_CTX_set_mode(ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                      SSL_MODE_RELEASE_BUFFERS);
        SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION);
    }
    if (zmode == Z_MSG && deflateInit(&zmsg, Z_DEFAULT_COMPRESSION) != Z_OK) die("deflateInit");
    if (zmode == Z_STREAM && deflateInit2(&zraw, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        die("deflateInit2");

    double t0 = now_s();
    build_workload();
    double built = now_s() - t0;

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind: %s", strerror(errno));
    if (listen(lfd, 65535) < 0) die("listen: %s", strerror(errno));
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

    ep = epoll_create1(EPOLL_CLOEXEC);
    static int lmark, smark;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &lmark};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.ptr = &smark;
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);

    int zi = zmode == Z_NONE ? 0 : 1;
    printf("{\"listening\":%d,\"tls\":%s,\"events\":%llu,\"expected_sum\":%llu,\"payload_bytes\":%llu,"
           "\"wire_bytes\":%zu,\"build_secs\":%.3f}\n",
           ntohs(sa.sin_port), ssl_ctx ? "true" : "false", (unsigned long long)expected_count,
           (unsigned long long)expected_sum, (unsigned long long)payload_bytes, stream_frames[zi].len, built);
    fflush(stdout);

    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &lmark) {
                on_accept(lfd);
                continue;
            }
            if (p == &smark) {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) == sizeof si) {
                    if (si.ssi_signo == SIGUSR1) print_stats();
                    else {
                        print_stats();
                        return 0;
                    }
                }
                continue;
            }
            conn_t *c = p;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                if (on_readable(c) < 0) continue;
            }
            if (c->state == C_TLS) continue;
            flush_out(c);
        }
    }
}
