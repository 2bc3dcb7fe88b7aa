/* A minimal blocking WebSocket client transport for the hand-written C clients (baseline.c,
 * discard.c): a blocking TCP socket, or OpenSSL on it, reads of at most 64 KiB, frame parsing
 * with no UTF-8 check, masked client frames. Header-only. */
#ifndef WS_RAW_H
#define WS_RAW_H

#include "bench_common.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define WS_READ_CHUNK 65536

typedef struct {
    int fd;
    SSL *ssl;
} wsr_conn_t;

static SSL_CTX *wsr_ssl_ctx;

static void wsr_die(const char *what) {
    fprintf(stderr, "ws_raw: %s: %s\n", what, errno ? strerror(errno) : "failed");
    ERR_print_errors_fp(stderr);
    exit(1);
}

static void wsr_init_tls(const bench_opts_t *o) {
    if (!o->tls || wsr_ssl_ctx) return;
    wsr_ssl_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(wsr_ssl_ctx, SSL_VERIFY_PEER, NULL);
    if (o->ca ? SSL_CTX_load_verify_locations(wsr_ssl_ctx, o->ca, NULL) != 1
              : SSL_CTX_set_default_verify_paths(wsr_ssl_ctx) != 1)
        wsr_die("loading the CA");
}

/* Connects (TCP, TLS when wss, TCP_NODELAY). Exits on failure. */
static void wsr_connect(wsr_conn_t *c, const bench_opts_t *o) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    char port[16];
    snprintf(port, sizeof port, "%d", o->port);
    if (getaddrinfo(o->host, port, &hints, &ai) != 0) wsr_die("getaddrinfo");
    c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) wsr_die("socket");
    if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) < 0) wsr_die("connect");
    freeaddrinfo(ai);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->ssl = NULL;
    if (o->tls) {
        wsr_init_tls(o);
        c->ssl = SSL_new(wsr_ssl_ctx);
        SSL_set_fd(c->ssl, c->fd);
        SSL_set_tlsext_host_name(c->ssl, o->host);
        SSL_set1_host(c->ssl, o->host);
        if (SSL_connect(c->ssl) != 1) wsr_die("TLS handshake");
    }
}

static ssize_t wsr_read(wsr_conn_t *c, void *p, size_t n) {
    if (n > WS_READ_CHUNK) n = WS_READ_CHUNK;
    if (c->ssl) {
        int r = SSL_read(c->ssl, p, (int)n);
        return r > 0 ? r : (SSL_get_error(c->ssl, r) == SSL_ERROR_ZERO_RETURN ? 0 : -1);
    }
    ssize_t r;
    do r = read(c->fd, p, n);
    while (r < 0 && errno == EINTR);
    return r;
}

static void wsr_write_all(wsr_conn_t *c, const void *p, size_t n) {
    const uint8_t *b = p;
    while (n) {
        ssize_t w;
        if (c->ssl) {
            int r = SSL_write(c->ssl, b, (int)n);
            w = r > 0 ? r : -1;
        } else {
            w = write(c->fd, b, n);
            if (w < 0 && errno == EINTR) continue;
        }
        if (w <= 0) wsr_die("write");
        b += w;
        n -= (size_t)w;
    }
}

static uint32_t wsr_rand_state = 0x9e3779b9u;
static uint32_t wsr_rand(void) { /* xorshift32: a mask key per frame, cheap */
    uint32_t x = wsr_rand_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return wsr_rand_state = x;
}

/* Sends one masked frame (opcode 1 text, 8 close). */
static void wsr_send(wsr_conn_t *c, int opcode, const void *payload, size_t n) {
    uint8_t stackbuf[512], *f = n + 14 <= sizeof stackbuf ? stackbuf : malloc(n + 14);
    size_t hl;
    f[0] = (uint8_t)(0x80 | opcode);
    if (n < 126) {
        f[1] = (uint8_t)(0x80 | n);
        hl = 2;
    } else if (n < 65536) {
        f[1] = 0x80 | 126;
        f[2] = (uint8_t)(n >> 8);
        f[3] = (uint8_t)n;
        hl = 4;
    } else {
        f[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++) f[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    uint32_t m = wsr_rand();
    memcpy(f + hl, &m, 4);
    const uint8_t *mk = f + hl, *src = payload;
    for (size_t i = 0; i < n; i++) f[hl + 4 + i] = src[i] ^ mk[i & 3];
    wsr_write_all(c, f, hl + 4 + n);
    if (f != stackbuf) free(f);
}

static void wsr_send_text(wsr_conn_t *c, const char *s) { wsr_send(c, 1, s, strlen(s)); }

static int wsr_upgrade_request(const bench_opts_t *o, char *req, size_t cap) {
    return snprintf(req, cap,
                    "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                    o->path, o->host, o->port);
}

/* The read buffer: reads of at most 64 KiB; it grows only when one frame is larger. */
typedef struct {
    uint8_t *p;
    size_t cap, start, end;
} wsr_buf_t;

static void wsr_buf_init(wsr_buf_t *b, size_t cap) {
    b->p = malloc(cap);
    b->cap = cap;
    b->start = b->end = 0;
}

/* Makes room for at least `need` bytes of one frame starting at b->start. */
static void wsr_buf_room(wsr_buf_t *b, size_t need) {
    if (b->start > 0 && (b->cap - b->start < need || b->end == b->start || b->cap - b->end < 4096)) {
        memmove(b->p, b->p + b->start, b->end - b->start);
        b->end -= b->start;
        b->start = 0;
    }
    if (b->cap < need) {
        b->p = realloc(b->p, need);
        b->cap = need;
    }
}

/* Reads once more into the buffer; 0 on EOF. */
static ssize_t wsr_fill(wsr_conn_t *c, wsr_buf_t *b, size_t need) {
    wsr_buf_room(b, need > 4096 ? need : 4096);
    ssize_t r = wsr_read(c, b->p + b->end, b->cap - b->end);
    if (r > 0) b->end += (size_t)r;
    return r;
}

/* Reads the upgrade response into b; checks 101; returns the header length consumed; copies
 * the value of X-Bench-Bytes into *bench_bytes when present. */
static size_t wsr_read_upgrade(wsr_conn_t *c, wsr_buf_t *b, long long *bench_bytes) {
    for (;;) {
        uint8_t *e = b->end > b->start ? memmem(b->p + b->start, b->end - b->start, "\r\n\r\n", 4) : NULL;
        if (e) {
            size_t hl = (size_t)(e - (b->p + b->start)) + 4;
            if (b->end - b->start < 12 || memcmp(b->p + b->start + 9, "101", 3) != 0) {
                fprintf(stderr, "upgrade refused: %.*s\n", (int)hl, b->p + b->start);
                exit(1);
            }
            if (bench_bytes) {
                uint8_t *x = memmem(b->p + b->start, hl, "X-Bench-Bytes: ", 15);
                *bench_bytes = x ? atoll((const char *)x + 15) : -1;
            }
            b->start += hl;
            return hl;
        }
        if (wsr_fill(c, b, 4096) <= 0) wsr_die("reading the upgrade response");
    }
}

/* The next complete frame already in the buffer, without reading: returns its opcode, the
 * payload and its length (valid until the buffer changes), or -2 when the frame is not complete
 * yet (*need: the bytes of the whole frame, or 16 when even its header is incomplete).
 * Fragmented messages are not supported (the gateway never fragments): they are an error. */
static int wsr_parse_frame(wsr_buf_t *b, uint8_t **payload, size_t *len, size_t *need) {
    size_t avail = b->end - b->start;
    uint8_t *p = b->p + b->start;
    *need = 16;
    if (avail < 2) return -2;
    uint64_t n = p[1] & 0x7f;
    size_t hl = 2;
    if (n == 126) {
        hl = 4;
        if (avail < 4) return -2;
        n = ((uint64_t)p[2] << 8) | p[3];
    } else if (n == 127) {
        hl = 10;
        if (avail < 10) return -2;
        n = 0;
        for (int i = 0; i < 8; i++) n = (n << 8) | p[2 + i];
    }
    if (avail < hl + n) {
        *need = hl + (size_t)n;
        return -2;
    }
    if (!(p[0] & 0x80) || (p[0] & 0x0f) == 0) {
        fprintf(stderr, "ws_raw: fragmented message: not supported\n");
        exit(1);
    }
    *payload = p + hl;
    *len = (size_t)n;
    b->start += hl + (size_t)n;
    return p[0] & 0x0f;
}

/* The next complete frame, reading as needed; -1 on EOF or error. */
static int wsr_next_frame(wsr_conn_t *c, wsr_buf_t *b, uint8_t **payload, size_t *len) {
    for (;;) {
        size_t need;
        int op = wsr_parse_frame(b, payload, len, &need);
        if (op != -2) return op;
        if (wsr_fill(c, b, need) <= 0) return -1;
    }
}

#endif
