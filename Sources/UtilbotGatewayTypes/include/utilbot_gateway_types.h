/* The C types of the Utilbot Gateway client ABI: handles, enums, callbacks and structs.
 * The Swift sources import this header; scripts/gen-header.py copies it into
 * include/utilbot_gateway.h. Keep it C99 and C++ clean. */
#ifndef UTILBOT_GATEWAY_TYPES_H
#define UTILBOT_GATEWAY_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* The library's version: the one place it is written. The Swift library (ubg_version()), the
 * Python package, the SONAME, the pkg-config and CMake files all take it from here. The ABI of
 * a major version only grows: a program built against X.Y runs with any X.Z, Z >= Y. */
#define UBG_VERSION_MAJOR 0
#define UBG_VERSION_MINOR 1
#define UBG_VERSION_PATCH 0
#define UBG_VERSION_STRING "0.1.0"
/** (major << 16) | (minor << 8) | patch, for comparisons in #if. */
#define UBG_VERSION_NUMBER ((UBG_VERSION_MAJOR << 16) | (UBG_VERSION_MINOR << 8) | UBG_VERSION_PATCH)

/** An event loop: one I/O thread that many clients can share. */
typedef struct ubg_loop_s *ubg_loop_t;

/** A gateway client: one bot connection (one shard), with its reconnects. */
typedef struct ubg_client_s *ubg_client_t;

/** Result codes. Every function that can fail returns one; ubg_result_name() and
 *  ubg_result_string() describe it, and the handle's last error message says more. */
typedef enum ubg_result {
    UBG_OK = 0,             /**< success */
    UBG_EINVAL = 1,         /**< an argument is invalid (NULL, out of range, not JSON, ...) */
    UBG_ESTATE = 2,         /**< the call is not allowed in the current state */
    /* 3 is not used (it was UBG_EUNSUPPORTED, which nothing returned). */
    UBG_ERESOLVE = 10,      /**< the host name could not be resolved */
    UBG_ECONNECT = 11,      /**< the TCP connection failed */
    UBG_ETIMEOUT = 12,      /**< a timeout expired (also: no event within the wait) */
    UBG_ETLS = 13,          /**< TLS failed (for example certificate verification) */
    UBG_EHANDSHAKE = 14,    /**< the WebSocket upgrade was refused or malformed */
    UBG_EPROTOCOL = 15,     /**< the server broke the WebSocket protocol */
    UBG_ETOOLARGE = 16,     /**< a message exceeded a size limit */
    UBG_EUTF8 = 17,         /**< a text message was not valid UTF-8 */
    UBG_EJSON = 18,         /**< invalid JSON */
    UBG_EDECOMPRESS = 19,   /**< corrupt zlib data */
    UBG_ECLOSED = 20,       /**< the client is closed (or no more events will come) */
    UBG_EIO = 21,           /**< an operating system call failed */
    UBG_EQUEUEFULL = 22,    /**< a bounded queue is full; try again later */
    UBG_EREFUSED = 23,      /**< the gateway refused the client for good (4000, 4001, 4007) */
    UBG_EHANDLE = 24,       /**< NULL, unknown or already freed handle */
    UBG_EPROXY = 25         /**< the proxy refused or broke the tunnel to the gateway */
} ubg_result_t;

/** The state of a client. */
typedef enum ubg_state {
    UBG_STATE_IDLE = 0,         /**< created, not connected yet */
    UBG_STATE_CONNECTING = 1,   /**< opening the connection or waiting for Hello */
    UBG_STATE_IDENTIFYING = 2,  /**< heartbeating, Identify sent */
    UBG_STATE_READY = 3,        /**< identified: events flow, sends go out at once */
    UBG_STATE_RECONNECTING = 4, /**< waiting out the backoff before the next attempt */
    UBG_STATE_CLOSING = 5,      /**< closing at the host's request */
    UBG_STATE_CLOSED = 6,       /**< closed by the host (final) */
    UBG_STATE_FAILED = 7        /**< refused by the gateway for good (final) */
} ubg_state_t;

/** Kinds of event a client reports. */
typedef enum ubg_event_type {
    UBG_EVENT_READY = 1,    /**< identified (bot_connect_success); a DISPATCH of it follows */
    UBG_EVENT_DISPATCH = 2, /**< an op 0 event: name and data */
    UBG_EVENT_ERROR = 3,    /**< an op -1 error from the gateway, or a local problem (local = 1) */
    UBG_EVENT_CLOSED = 4,   /**< a connection or a connection attempt ended */
    UBG_EVENT_FATAL = 5,    /**< the client gave up for good; no events follow but STATE */
    UBG_EVENT_STATE = 6,    /**< the state changed */
    UBG_EVENT_LOG = 7       /**< a log line, at or above the client's log level */
} ubg_event_type_t;

/** Log levels, most severe first. */
typedef enum ubg_log_level {
    UBG_LOG_NONE = 0,
    UBG_LOG_ERROR = 1,
    UBG_LOG_WARNING = 2,
    UBG_LOG_INFO = 3,
    UBG_LOG_DEBUG = 4
} ubg_log_level_t;

/** One event. Every pointer is owned by the library: in a callback it is valid until the
 *  callback returns; from ubg_client_next_event() or ubg_client_next_events() until the next
 *  pull on that client (or ubg_client_free()). Strings are NUL-terminated UTF-8. New fields
 *  are only ever added at the end; `size` says how many bytes the library filled. */
typedef struct ubg_event {
    size_t size;              /**< sizeof(ubg_event_t) of the library that filled it */
    ubg_event_type_t type;
    const char *name;         /**< DISPATCH: the event name (t); otherwise NULL */
    const char *data;         /**< DISPATCH, ERROR: the raw JSON of d; NULL when absent */
    size_t data_len;          /**< length of data in bytes, without the NUL */
    int32_t code;             /**< ERROR: e; CLOSED, FATAL: close code; LOG: the level */
    int32_t has_code;         /**< ERROR: 1 when the gateway sent e */
    const char *message;      /**< ERROR: m or the library's message; CLOSED: reason or error;
                                   FATAL, LOG: the text; otherwise NULL */
    int32_t local;            /**< ERROR, CLOSED: 1 when the library found the problem itself */
    int32_t reconnect;        /**< CLOSED: 1 when a new attempt follows */
    int32_t http_status;      /**< CLOSED: HTTP status of a refused upgrade, else 0 */
    ubg_state_t state;        /**< STATE: the new state; other events: the state when it happened */
    ubg_result_t result;      /**< ERROR (local), CLOSED: the kind of local problem, else UBG_OK */
} ubg_event_t;

/** Statistics. Set `size` to sizeof(ubg_stats_t) before ubg_client_get_stats(). */
typedef struct ubg_stats {
    size_t size;
    ubg_state_t state;
    uint64_t messages_in;      /**< WebSocket messages received */
    uint64_t messages_out;     /**< WebSocket messages sent (heartbeats and identify included) */
    uint64_t bytes_in;         /**< payload bytes received, before decompression */
    uint64_t bytes_out;        /**< payload bytes sent */
    uint64_t reconnects;       /**< connection attempts after the first */
    int64_t last_latency_us;   /**< last heartbeat round trip, -1 until measured */
    int64_t average_latency_us;/**< mean heartbeat round trip, -1 until measured */
    uint64_t queued_events;    /**< events waiting in the pull queue */
    uint64_t queue_full_count; /**< times the pull queue filled and reading paused */
    uint64_t sends_failed;     /**< sent events not delivered (each also an ERROR event) */
} ubg_stats_t;

/** Receives every event of a client (callback mode), on the loop thread. `user_data` is what
 *  was given to ubg_client_set_event_callback(). Calling any ubg_ function from it is allowed,
 *  ubg_client_free() of this client included (the free takes effect when it returns). */
typedef void (*ubg_event_cb)(ubg_client_t client, const ubg_event_t *event, void *user_data);

#endif /* UTILBOT_GATEWAY_TYPES_H */
