/* ubg_ready: the time from dlopen() of the library to a connected, identified client (the
 * READY event), in a fresh process: loading and relocating the .so, starting the default loop,
 * TCP connect, (TLS,) the upgrade, Hello, identify and bot_connect_success.
 * Usage: ubg_ready LIBRARY.so --url URL [--ca FILE]. Prints {"ready_us":N,"dlopen_us":N}. */
#include "bench_common.h"

#include <dlfcn.h>
#include <semaphore.h>
#include <unistd.h>

#include "utilbot_gateway.h"

static sem_t ready;
static int failed;

static void on_event(ubg_client_t c, const ubg_event_t *ev, void *user) {
    (void)c;
    (void)user;
    if (ev->type == UBG_EVENT_READY) sem_post(&ready);
    if (ev->type == UBG_EVENT_CLOSED || ev->type == UBG_EVENT_FATAL) {
        fprintf(stderr, "ubg_ready: %s\n", ev->message ? ev->message : "closed");
        failed = 1;
        sem_post(&ready);
    }
}

#define LOAD(name) typeof(&name) p_##name = (typeof(&name))dlsym(lib, #name)

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    bench_opts_t o;
    bench_parse(&o, argc - 1, argv + 1);
    sem_init(&ready, 0, 0);
    uint64_t t0 = bench_now_ns();
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "ubg_ready: %s\n", dlerror());
        return 1;
    }
    uint64_t t1 = bench_now_ns();
    LOAD(ubg_client_create);
    LOAD(ubg_client_set_url);
    LOAD(ubg_client_set_tls_ca);
    LOAD(ubg_client_set_event_callback);
    LOAD(ubg_client_connect);
    if (!p_ubg_client_create || !p_ubg_client_set_url || !p_ubg_client_set_tls_ca ||
        !p_ubg_client_set_event_callback || !p_ubg_client_connect) {
        fprintf(stderr, "ubg_ready: a symbol is missing\n");
        return 1;
    }
    ubg_client_t c;
    if (p_ubg_client_create(NULL, "bench-key", &c) != UBG_OK || p_ubg_client_set_url(c, o.url) != UBG_OK ||
        (o.ca && p_ubg_client_set_tls_ca(c, o.ca, NULL) != UBG_OK) ||
        p_ubg_client_set_event_callback(c, on_event, NULL) != UBG_OK || p_ubg_client_connect(c) != UBG_OK) {
        fprintf(stderr, "ubg_ready: setting up the client failed\n");
        return 1;
    }
    sem_wait(&ready);
    uint64_t t2 = bench_now_ns();
    if (failed) return 1;
    printf("{\"ready_us\":%.1f,\"dlopen_us\":%.1f}\n", (t2 - t0) / 1e3, (t1 - t0) / 1e3);
    fflush(stdout);
    _exit(0); /* the measurement is done; skip the teardown */
}
