/* A minimal Utilbot bot: connect, identify, report servers, print events, close.
 * Build: cc bot.c -I../../include -L../../.build/release -lutilbot_gateway
 * Run:   ./bot wss://gateway.utilbot.co/ YOUR_KEY [CA_FILE] */
#include <semaphore.h>
#include <stdio.h>
#include <string.h>

#include "utilbot_gateway.h"

static sem_t done; /* posted when the client reaches a final state */

/* Runs on the library's loop thread for every event of the client. */
static void on_event(ubg_client_t client, const ubg_event_t *event, void *user_data) {
    (void)user_data;
    switch (event->type) {
    case UBG_EVENT_READY:
        printf("ready: identified with the gateway\n");
        /* Report this shard's numbers; the gateway answers every bot with the global sums. */
        ubg_client_send(client, "send_servers", "{\"guilds\":42,\"guildMembers\":1337,\"cachedGuildMembers\":512}");
        break;
    case UBG_EVENT_DISPATCH:
        printf("event %s: %s\n", event->name, event->data ? event->data : "null");
        if (strcmp(event->name, "GLOBAL_GUILD_COUNT") == 0)
            ubg_client_close(client, 1000); /* the demo is over */
        break;
    case UBG_EVENT_ERROR:
        printf("error %d: %s\n", event->code, event->message ? event->message : "");
        break;
    case UBG_EVENT_CLOSED:
        printf("closed with %d%s\n", event->code, event->reconnect ? ", reconnecting" : "");
        break;
    case UBG_EVENT_FATAL:
        printf("fatal: %s\n", event->message);
        break;
    case UBG_EVENT_STATE:
        if (event->state == UBG_STATE_CLOSED || event->state == UBG_STATE_FAILED) sem_post(&done);
        break;
    default:
        break;
    }
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s URL KEY [CA_FILE]\n", argv[0]);
        return 2;
    }
    sem_init(&done, 0, 0);
    ubg_client_t client;
    if (ubg_client_create(NULL, argv[2], &client) != UBG_OK) return 1;
    ubg_result_t rc = ubg_client_set_url(client, argv[1]);
    if (rc == UBG_OK && argc > 3) rc = ubg_client_set_tls_ca(client, argv[3], NULL);
    if (rc == UBG_OK) rc = ubg_client_set_event_callback(client, on_event, NULL);
    if (rc == UBG_OK) rc = ubg_client_connect(client);
    if (rc != UBG_OK) {
        fprintf(stderr, "%s: %s\n", ubg_result_name(rc), ubg_client_last_error(client));
        ubg_client_free(client);
        return 1;
    }
    sem_wait(&done);
    ubg_state_t state;
    ubg_client_get_state(client, &state);
    ubg_client_free(client);
    return state == UBG_STATE_CLOSED ? 0 : 1;
}
