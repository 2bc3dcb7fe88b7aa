/* Returns from main while events flow: a client on the default loop, alive, mid-stream. Used by
 * the "exit" tests in test_promises.c, 50 runs each: the process must exit with status 0, never
 * crash in OpenSSL's or the runtime's exit-time cleanup.
 *
 * usage: exit-midstream URL CAFILE|"" EVENTS */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "utilbot_gateway.h"

static atomic_long seen;

static void on_event(ubg_client_t client, const ubg_event_t *event, void *user_data) {
    (void)client;
    (void)user_data;
    if (event->type == UBG_EVENT_DISPATCH) atomic_fetch_add(&seen, 1);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: exit-midstream URL CAFILE|\"\" EVENTS\n");
        return 2;
    }
    ubg_client_t client;
    if (ubg_client_create(NULL, "dev-key", &client) != UBG_OK) return 3;
    if (ubg_client_set_url(client, argv[1]) != UBG_OK) return 4;
    if (argv[2][0] && ubg_client_set_tls_ca(client, argv[2], NULL) != UBG_OK) return 5;
    if (ubg_client_set_compression(client, 1) != UBG_OK) return 6;
    if (ubg_client_set_event_callback(client, on_event, NULL) != UBG_OK) return 7;
    if (ubg_client_connect(client) != UBG_OK) return 8;
    long want = atol(argv[3]);
    struct timespec pause = {0, 200000};
    for (int waited = 0; atomic_load(&seen) < want; waited++) {
        if (waited > 100000) return 9; /* 20 s without the events */
        nanosleep(&pause, NULL);
    }
    return 0; /* the client is still connected and events keep coming */
}
