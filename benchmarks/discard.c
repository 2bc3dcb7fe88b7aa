/* discard: reads and discards the load server's bytes, parsing nothing. It shows how fast the
 * server (with the kernel's loopback and, for wss, TLS) can deliver a workload: every real
 * client is measured against the same server, so the server is not the bottleneck as long as
 * discard is clearly faster than the fastest client.
 *
 * It sends the upgrade request and the identify frame at once, reads the 101 response (its
 * X-Bench-Bytes header says how many bytes follow: Hello, bot_connect_success and the whole
 * stream up to BENCH_END), reads that many bytes into a 64 KiB buffer, then sends
 * bench_result {"discard":1} (the server times it from identify to there, as for every client)
 * and closes. Output: {"bytes":N,"secs":S} with its own timing. */
#include "ws_raw.h"

int main(int argc, char **argv) {
    bench_opts_t o;
    bench_parse(&o, argc, argv);
    wsr_conn_t c;
    wsr_connect(&c, &o);
    char req[2048];
    int n = wsr_upgrade_request(&o, req, sizeof req);
    wsr_write_all(&c, req, (size_t)n);
    uint64_t t0 = bench_now_ns();
    wsr_send_text(&c, "{\"op\":1,\"t\":\"identify\",\"d\":{\"type\":\"bot\",\"key\":\"bench-key\"}}");
    wsr_buf_t b;
    wsr_buf_init(&b, WS_READ_CHUNK);
    long long expect = -1;
    wsr_read_upgrade(&c, &b, &expect);
    if (expect < 0) {
        fprintf(stderr, "discard: the server sent no X-Bench-Bytes\n");
        return 1;
    }
    long long got = (long long)(b.end - b.start);
    while (got < expect) {
        ssize_t r = wsr_read(&c, b.p, WS_READ_CHUNK);
        if (r <= 0) {
            fprintf(stderr, "discard: connection ended after %lld of %lld bytes\n", got, expect);
            return 1;
        }
        got += r;
    }
    uint64_t t1 = bench_now_ns();
    wsr_send_text(&c, "{\"op\":1,\"t\":\"bench_result\",\"d\":{\"discard\":1}}");
    wsr_send(&c, 8, "\x03\xe8", 2);
    while (wsr_read(&c, b.p, WS_READ_CHUNK) > 0) {
    }
    printf("{\"bytes\":%lld,\"secs\":%.6f}\n", got, (t1 - t0) / 1e9);
    return got == expect ? 0 : 1;
}
