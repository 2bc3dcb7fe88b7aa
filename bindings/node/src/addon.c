/* The Node.js addon (Node-API, ABI-stable across Node versions) over the C library. No
 * JavaScript ever runs on a library thread: the client is in pull mode, libuv watches its event
 * descriptor (uv_poll) on Node's own loop, and each wake-up drains the queue with one batched
 * pull and hands the events to JavaScript as an array of plain objects. index.js builds the
 * idiomatic API (EventEmitter, async iteration, promises) on these few functions. */
#define _GNU_SOURCE
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "utilbot_gateway.h"

#define BATCH 256

typedef struct {
    ubg_client_t client;
    napi_env env;
    napi_ref on_events; /* the JavaScript function that receives each batch */
    napi_async_context async_context;
    uv_poll_t poll;
    int polling;   /* uv_poll_init done, the handle not closed yet */
    int finished;  /* no event will come again */
    int freed;     /* ubg_client_free done */
    int finalized; /* JavaScript let go of the handle: the box goes once libuv has too */
    ubg_event_t events[BATCH];
} client_box;

#define CHECK_NAPI(env, call)                                                                      \
    do {                                                                                           \
        if ((call) != napi_ok) {                                                                   \
            napi_throw_error((env), NULL, "Node-API call failed: " #call);                         \
            return NULL;                                                                           \
        }                                                                                          \
    } while (0)

/* Throws an Error with `code` (the result's name) and the library's message. */
static napi_value throw_result(napi_env env, ubg_result_t rc, ubg_client_t client) {
    const char *message = client ? ubg_client_last_error(client) : "";
    if (!message || !*message) message = ubg_result_string(rc);
    napi_throw_error(env, ubg_result_name(rc), message);
    return NULL;
}

static client_box *unwrap(napi_env env, napi_value value) {
    client_box *box = NULL;
    if (napi_get_value_external(env, value, (void **)&box) != napi_ok || !box) {
        napi_throw_type_error(env, NULL, "not a client handle");
        return NULL;
    }
    if (box->freed) {
        napi_throw_error(env, "UBG_EHANDLE", "the client was freed");
        return NULL;
    }
    return box;
}

/* The call's arguments (up to `count`, missing ones undefined) and the client of the first;
 * NULL with a JavaScript exception pending when it is not a live client. */
static client_box *client_call(napi_env env, napi_callback_info info, size_t count, napi_value *argv) {
    size_t argc = count;
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
        napi_throw_error(env, NULL, "Node-API call failed: napi_get_cb_info");
        return NULL;
    }
    return unwrap(env, argv[0]);
}

/* A result of the library as JavaScript: undefined, or the error thrown. */
static napi_value result(napi_env env, ubg_result_t rc, client_box *box) {
    return rc == UBG_OK ? NULL : throw_result(env, rc, box->client);
}

/* A string argument as a malloc'd NUL-terminated copy (NULL for undefined/null). */
static char *string_arg(napi_env env, napi_value value, int *failed) {
    napi_valuetype type;
    napi_typeof(env, value, &type);
    if (type == napi_undefined || type == napi_null) return NULL;
    size_t length = 0;
    if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) {
        napi_throw_type_error(env, NULL, "expected a string");
        *failed = 1;
        return NULL;
    }
    char *text = malloc(length + 1);
    napi_get_value_string_utf8(env, value, text, length + 1, &length);
    return text;
}

static void set_string(napi_env env, napi_value object, const char *key, const char *text, size_t length) {
    napi_value value;
    if (text) {
        napi_create_string_utf8(env, text, length, &value);
    } else {
        napi_get_null(env, &value);
    }
    napi_set_named_property(env, object, key, value);
}

static void set_int(napi_env env, napi_value object, const char *key, int64_t number) {
    napi_value value;
    napi_create_int64(env, number, &value);
    napi_set_named_property(env, object, key, value);
}

static void set_bool(napi_env env, napi_value object, const char *key, int flag) {
    napi_value value;
    napi_get_boolean(env, flag != 0, &value);
    napi_set_named_property(env, object, key, value);
}

static napi_value event_object(napi_env env, const ubg_event_t *e) {
    napi_value object;
    napi_create_object(env, &object);
    set_int(env, object, "type", e->type);
    set_int(env, object, "state", e->state);
    set_string(env, object, "name", e->name, e->name ? strlen(e->name) : 0);
    set_string(env, object, "data", e->data, e->data_len);
    set_string(env, object, "message", e->message, e->message ? strlen(e->message) : 0);
    set_int(env, object, "code", e->code);
    set_bool(env, object, "hasCode", e->has_code);
    set_bool(env, object, "local", e->local);
    set_bool(env, object, "reconnect", e->reconnect);
    set_int(env, object, "httpStatus", e->http_status);
    set_string(env, object, "result", ubg_result_name(e->result), strlen(ubg_result_name(e->result)));
    return object;
}

static void stop_polling(client_box *box) {
    if (box->polling) {
        uv_poll_stop(&box->poll);
        uv_unref((uv_handle_t *)&box->poll);
    }
}

/* Drains the queue (batched pulls, without waiting) and calls JavaScript with each batch; a
 * batch with `finished` set is the last (it may be empty). */
static void drain(client_box *box) {
    napi_env env = box->env;
    for (;;) {
        if (box->freed || box->finished) return;
        size_t count = 0;
        box->events[0].size = sizeof(ubg_event_t);
        ubg_result_t rc = ubg_client_next_events(box->client, 0, box->events, BATCH, &count);
        if (rc == UBG_ETIMEOUT) return;
        if (rc == UBG_ECLOSED) {
            box->finished = 1;
            stop_polling(box);
        } else if (rc != UBG_OK) {
            return;
        }
        napi_handle_scope scope;
        napi_open_handle_scope(env, &scope);
        napi_value array, finished, callback, resource, result;
        napi_create_array_with_length(env, count, &array);
        for (size_t i = 0; i < count; i++) napi_set_element(env, array, (uint32_t)i, event_object(env, &box->events[i]));
        napi_get_boolean(env, box->finished != 0, &finished);
        napi_value argv[2] = {array, finished};
        napi_get_reference_value(env, box->on_events, &callback);
        napi_get_global(env, &resource);
        /* make_callback runs the microtasks after it, as Node does for its own I/O. */
        napi_make_callback(env, box->async_context, resource, callback, 2, argv, &result);
        napi_close_handle_scope(env, scope);
        /* Again until the queue is empty (ETIMEOUT) or done (ECLOSED): after the final event the
         * descriptor is not readable, and only this call says that no event will come again. */
    }
}

static void on_readable(uv_poll_t *handle, int status, int events) {
    (void)status;
    (void)events;
    drain((client_box *)handle->data);
}

static void poll_closed(uv_handle_t *handle) {
    client_box *box = handle->data;
    box->polling = 0;
    if (box->finalized) free(box);
}

/* Frees the library's client (no event after it). The poll handle is closed first: the client
 * closes its descriptor, and libuv must not watch a descriptor number that a new client may be
 * given next. Safe to call twice (free, then the finalizer). */
static void release(napi_env env, client_box *box) {
    if (box->freed) return;
    box->freed = 1;
    if (box->polling) {
        uv_poll_stop(&box->poll);
        uv_close((uv_handle_t *)&box->poll, poll_closed);
    }
    ubg_client_free(box->client);
    if (box->on_events) napi_delete_reference(env, box->on_events);
    box->on_events = NULL;
    napi_async_destroy(env, box->async_context);
}

static void finalize(napi_env env, void *data, void *hint) {
    (void)hint;
    client_box *box = data;
    release(env, box);
    box->finalized = 1;
    if (!box->polling) free(box); /* else poll_closed frees it */
}

/* create(key, onEvents) -> handle */
static napi_value create(napi_env env, napi_callback_info info) {
    size_t argc = 2;
    napi_value argv[2];
    CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    int failed = 0;
    char *key = string_arg(env, argv[0], &failed);
    if (failed) return NULL;
    client_box *box = calloc(1, sizeof *box);
    ubg_result_t rc = ubg_client_create(NULL, key ? key : "", &box->client);
    free(key);
    if (rc != UBG_OK) {
        free(box);
        napi_throw_error(env, ubg_result_name(rc), "the key must be a non-empty string");
        return NULL;
    }
    box->env = env;
    napi_create_reference(env, argv[1], 1, &box->on_events);
    napi_value name;
    napi_create_string_utf8(env, "utilbot-gateway", NAPI_AUTO_LENGTH, &name);
    napi_async_init(env, NULL, name, &box->async_context);
    napi_value handle;
    CHECK_NAPI(env, napi_create_external(env, box, finalize, NULL, &handle));
    return handle;
}

/* set(handle, name, a, b, c): one setter of the C API, by name. */
static napi_value set(napi_env env, napi_callback_info info) {
    napi_value argv[5];
    client_box *box = client_call(env, info, 5, argv);
    if (!box) return NULL;
    char what[32] = "";
    size_t length = 0;
    napi_get_value_string_utf8(env, argv[1], what, sizeof what, &length);
    int failed = 0;
    ubg_result_t rc;
    if (strcmp(what, "url") == 0 || strcmp(what, "proxy") == 0 || strcmp(what, "type") == 0 || strcmp(what, "ca") == 0) {
        char *text = string_arg(env, argv[2], &failed);
        if (failed) return NULL;
        if (strcmp(what, "url") == 0) rc = ubg_client_set_url(box->client, text);
        else if (strcmp(what, "proxy") == 0) rc = ubg_client_set_proxy(box->client, text);
        else if (strcmp(what, "type") == 0) rc = ubg_client_set_identity(box->client, text, NULL);
        else rc = ubg_client_set_tls_ca(box->client, text, NULL);
        free(text);
    } else {
        int64_t a = 0, b = 0, c = 0;
        napi_get_value_int64(env, argv[2], &a);
        napi_get_value_int64(env, argv[3], &b); /* undefined leaves 0 */
        napi_get_value_int64(env, argv[4], &c);
        if (strcmp(what, "compression") == 0) rc = ubg_client_set_compression(box->client, (int32_t)a);
        else if (strcmp(what, "proxyFromEnv") == 0) rc = ubg_client_set_proxy_from_env(box->client, (int32_t)a);
        else if (strcmp(what, "reconnect") == 0) rc = ubg_client_set_reconnect(box->client, (uint32_t)a, (uint32_t)b);
        else if (strcmp(what, "timeouts") == 0)
            rc = ubg_client_set_timeouts(box->client, (uint32_t)a, (uint32_t)b, (uint32_t)c);
        else if (strcmp(what, "limits") == 0)
            rc = ubg_client_set_limits(box->client, (size_t)a, (size_t)b, (size_t)c);
        else if (strcmp(what, "logLevel") == 0) rc = ubg_client_set_log_level(box->client, (ubg_log_level_t)a);
        else {
            napi_throw_error(env, "UBG_EINVAL", "unknown setting");
            return NULL;
        }
    }
    return result(env, rc, box);
}

/* connect(handle): connects and starts watching the event descriptor on Node's loop. */
static napi_value connect_client(napi_env env, napi_callback_info info) {
    napi_value argv[1];
    client_box *box = client_call(env, info, 1, argv);
    if (!box) return NULL;
    int32_t fd = -1;
    ubg_result_t rc = ubg_client_get_event_fd(box->client, &fd);
    if (rc == UBG_OK) rc = ubg_client_connect(box->client);
    if (rc != UBG_OK) return throw_result(env, rc, box->client);
    uv_loop_t *loop = NULL;
    CHECK_NAPI(env, napi_get_uv_event_loop(env, &loop));
    if (uv_poll_init(loop, &box->poll, fd) != 0) {
        napi_throw_error(env, "UBG_EIO", "uv_poll_init failed on the event descriptor");
        return NULL;
    }
    box->poll.data = box;
    box->polling = 1;
    uv_poll_start(&box->poll, UV_READABLE, on_readable);
    return NULL;
}

/* send(handle, name, json or null) */
static napi_value send_event(napi_env env, napi_callback_info info) {
    napi_value argv[3];
    client_box *box = client_call(env, info, 3, argv);
    if (!box) return NULL;
    int failed = 0;
    char *name = string_arg(env, argv[1], &failed);
    char *data = failed ? NULL : string_arg(env, argv[2], &failed);
    ubg_result_t rc = failed ? UBG_OK : ubg_client_send(box->client, name, data);
    free(name);
    free(data);
    if (failed) return NULL;
    return result(env, rc, box);
}

/* close(handle, code) */
static napi_value close_client(napi_env env, napi_callback_info info) {
    napi_value argv[2];
    client_box *box = client_call(env, info, 2, argv);
    if (!box) return NULL;
    int32_t code = 1000;
    napi_get_value_int32(env, argv[1], &code);
    ubg_result_t rc = ubg_client_close(box->client, code);
    return result(env, rc, box);
}

/* free(handle): no event after it; idempotent. */
static napi_value free_client(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value argv[1];
    CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    client_box *box = NULL;
    if (napi_get_value_external(env, argv[0], (void **)&box) == napi_ok && box) release(env, box);
    return NULL;
}

/* state(handle) -> number */
static napi_value state(napi_env env, napi_callback_info info) {
    napi_value argv[1];
    client_box *box = client_call(env, info, 1, argv);
    if (!box) return NULL;
    ubg_state_t s;
    ubg_result_t rc = ubg_client_get_state(box->client, &s);
    if (rc != UBG_OK) return throw_result(env, rc, box->client);
    napi_value value;
    napi_create_int32(env, (int32_t)s, &value);
    return value;
}

/* stats(handle) -> object */
static napi_value stats(napi_env env, napi_callback_info info) {
    napi_value argv[1];
    client_box *box = client_call(env, info, 1, argv);
    if (!box) return NULL;
    ubg_stats_t s;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    ubg_result_t rc = ubg_client_get_stats(box->client, &s);
    if (rc != UBG_OK) return throw_result(env, rc, box->client);
    napi_value object;
    napi_create_object(env, &object);
    set_int(env, object, "state", s.state);
    set_int(env, object, "messagesIn", (int64_t)s.messages_in);
    set_int(env, object, "messagesOut", (int64_t)s.messages_out);
    set_int(env, object, "bytesIn", (int64_t)s.bytes_in);
    set_int(env, object, "bytesOut", (int64_t)s.bytes_out);
    set_int(env, object, "reconnects", (int64_t)s.reconnects);
    set_int(env, object, "lastLatencyUs", s.last_latency_us);
    set_int(env, object, "averageLatencyUs", s.average_latency_us);
    set_int(env, object, "queuedEvents", (int64_t)s.queued_events);
    set_int(env, object, "queueFullCount", (int64_t)s.queue_full_count);
    set_int(env, object, "sendsFailed", (int64_t)s.sends_failed);
    return object;
}

/* pause(handle, paused): stops (or resumes) taking events from the library. While paused the
 * library's bounded queue fills and it stops reading from the gateway: back-pressure, nothing
 * lost. */
static napi_value pause_client(napi_env env, napi_callback_info info) {
    napi_value argv[2];
    client_box *box = client_call(env, info, 2, argv);
    if (!box) return NULL;
    bool paused = false;
    napi_get_value_bool(env, argv[1], &paused);
    if (!box->polling || box->finished) return NULL;
    if (paused) {
        uv_poll_stop(&box->poll);
    } else {
        uv_poll_start(&box->poll, UV_READABLE, on_readable);
        drain(box);
    }
    return NULL;
}

static napi_value version(napi_env env, napi_callback_info info) {
    (void)info;
    napi_value value;
    napi_create_string_utf8(env, ubg_version(), NAPI_AUTO_LENGTH, &value);
    return value;
}

static napi_value init(napi_env env, napi_value exports) {
    napi_property_descriptor functions[] = {
        {"create", NULL, create, NULL, NULL, NULL, napi_default, NULL},
        {"set", NULL, set, NULL, NULL, NULL, napi_default, NULL},
        {"connect", NULL, connect_client, NULL, NULL, NULL, napi_default, NULL},
        {"send", NULL, send_event, NULL, NULL, NULL, napi_default, NULL},
        {"close", NULL, close_client, NULL, NULL, NULL, napi_default, NULL},
        {"free", NULL, free_client, NULL, NULL, NULL, napi_default, NULL},
        {"pause", NULL, pause_client, NULL, NULL, NULL, napi_default, NULL},
        {"state", NULL, state, NULL, NULL, NULL, napi_default, NULL},
        {"stats", NULL, stats, NULL, NULL, NULL, napi_default, NULL},
        {"version", NULL, version, NULL, NULL, NULL, napi_default, NULL},
    };
    napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions);
    return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
