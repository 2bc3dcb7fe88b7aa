// A header-only C++17 wrapper of the Utilbot Gateway C API (include/utilbot_gateway.h):
// RAII handles (move-only), exceptions carrying the result code and the library's message,
// callbacks as std::function or pull with next_event(), std::string_view into the library's
// memory for as long as the C API keeps it valid. Link with -lutilbot_gateway (pkg-config:
// utilbot-gateway). The C header's thread and lifetime rules apply unchanged.
#ifndef UTILBOT_GATEWAY_HPP
#define UTILBOT_GATEWAY_HPP

#include <utilbot_gateway.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace utilbot {

/// A failed call: the result code (UBG_EINVAL...) and the library's message for it.
class Error : public std::runtime_error {
public:
    Error(ubg_result_t code, const std::string &message)
        : std::runtime_error(message), code_(code) {}
    ubg_result_t code() const noexcept { return code_; }
    /// "UBG_EINVAL"
    const char *name() const noexcept { return ubg_result_name(code_); }

private:
    ubg_result_t code_;
};

enum class EventType {
    ready = UBG_EVENT_READY,
    dispatch = UBG_EVENT_DISPATCH,
    error = UBG_EVENT_ERROR,
    closed = UBG_EVENT_CLOSED,
    fatal = UBG_EVENT_FATAL,
    state = UBG_EVENT_STATE,
    log = UBG_EVENT_LOG,
};

enum class State {
    idle = UBG_STATE_IDLE,
    connecting = UBG_STATE_CONNECTING,
    identifying = UBG_STATE_IDENTIFYING,
    ready = UBG_STATE_READY,
    reconnecting = UBG_STATE_RECONNECTING,
    closing = UBG_STATE_CLOSING,
    closed = UBG_STATE_CLOSED,
    failed = UBG_STATE_FAILED,
};

inline const char *to_string(State state) noexcept {
    return ubg_state_name(static_cast<ubg_state_t>(state));
}

/// One event. The string views point into the library's memory: in a callback they are valid
/// until it returns; from next_event() until the next pull on the same client (copy what you
/// keep). Empty views stand for the C API's NULL.
struct Event {
    EventType type;
    State state;
    std::string_view name;    ///< DISPATCH: the event name (t)
    std::string_view data;    ///< DISPATCH, ERROR: the raw JSON of d
    std::string_view message; ///< ERROR, CLOSED, FATAL, LOG: the text
    std::int32_t code;        ///< ERROR: e; CLOSED, FATAL: the close code; LOG: the level
    bool has_code;            ///< ERROR: whether the gateway sent e
    bool local;               ///< ERROR, CLOSED: the library found the problem itself
    bool reconnect;           ///< CLOSED: a new attempt follows
    std::int32_t http_status; ///< CLOSED: HTTP status of a refused upgrade, else 0
    ubg_result_t result;      ///< ERROR (local), CLOSED: the kind of local problem

    static Event from(const ubg_event_t &e) noexcept {
        auto view = [](const char *text) {
            return text ? std::string_view(text) : std::string_view();
        };
        return Event{static_cast<EventType>(e.type),
                     static_cast<State>(e.state),
                     view(e.name),
                     e.data ? std::string_view(e.data, e.data_len) : std::string_view(),
                     view(e.message),
                     e.code,
                     e.has_code != 0,
                     e.local != 0,
                     e.reconnect != 0,
                     e.http_status,
                     e.result};
    }
};

namespace detail {
inline void check(ubg_result_t rc, ubg_client_t client) {
    if (rc == UBG_OK) return;
    const char *message = client ? ubg_client_last_error(client) : "";
    const char *text = message && *message ? message : ubg_result_string(rc);
    throw Error(rc, std::string(ubg_result_name(rc)) + ": " + text);
}

inline std::int32_t milliseconds(std::chrono::milliseconds timeout) {
    if (timeout.count() < 0) return -1;
    return timeout.count() > INT32_MAX ? INT32_MAX : static_cast<std::int32_t>(timeout.count());
}
} // namespace detail

/// An event loop with its own I/O thread (most programs use the default loop instead). Free
/// every client on it before it goes.
class Loop {
public:
    Loop() { detail::check(ubg_loop_create(&loop_), nullptr); }
    ~Loop() {
        if (loop_) ubg_loop_free(loop_);
    }
    Loop(Loop &&other) noexcept : loop_(std::exchange(other.loop_, nullptr)) {}
    Loop &operator=(Loop &&other) noexcept {
        if (this != &other) {
            if (loop_) ubg_loop_free(loop_);
            loop_ = std::exchange(other.loop_, nullptr);
        }
        return *this;
    }
    Loop(const Loop &) = delete;
    Loop &operator=(const Loop &) = delete;

    ubg_loop_t get() const noexcept { return loop_; }

private:
    ubg_loop_t loop_ = nullptr;
};

/// One bot connection (one shard) that reconnects by itself. Set it up, then connect(); events
/// come to the handler given to on_event() (on the loop's thread) or from next_event().
class Client {
public:
    using Handler = std::function<void(const Event &)>;

    /// On the default loop, or on `loop` (which must outlive the client).
    explicit Client(const std::string &key, const Loop *loop = nullptr) {
        ubg_loop_t on = loop ? loop->get() : nullptr;
        detail::check(ubg_client_create(on, key.c_str(), &client_), nullptr);
    }
    ~Client() { reset(); }
    Client(Client &&other) noexcept
        : client_(std::exchange(other.client_, nullptr)), handler_(std::move(other.handler_)),
          finished_(other.finished_) {}
    Client &operator=(Client &&other) noexcept {
        if (this != &other) {
            reset();
            client_ = std::exchange(other.client_, nullptr);
            handler_ = std::move(other.handler_);
            finished_ = other.finished_;
        }
        return *this;
    }
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;

    // Settings (before connect()); each throws Error with the library's reason.
    Client &url(const std::string &url) { return call(ubg_client_set_url(client_, url.c_str())); }
    Client &identity(const std::string &type) {
        return call(ubg_client_set_identity(client_, type.c_str(), nullptr));
    }
    Client &compression(bool on) { return call(ubg_client_set_compression(client_, on ? 1 : 0)); }
    Client &tls_ca(const std::string &ca_file) {
        return call(ubg_client_set_tls_ca(client_, ca_file.c_str(), nullptr));
    }
    /// An http://, https://, socks5:// or socks5h:// proxy; "" removes it (then the
    /// environment decides).
    Client &proxy(const std::string &url) {
        return call(ubg_client_set_proxy(client_, url.c_str()));
    }
    Client &proxy_from_env(bool on) {
        return call(ubg_client_set_proxy_from_env(client_, on ? 1 : 0));
    }
    Client &reconnect(std::chrono::milliseconds base, std::chrono::milliseconds cap) {
        return call(ubg_client_set_reconnect(client_, static_cast<std::uint32_t>(base.count()),
                                             static_cast<std::uint32_t>(cap.count())));
    }
    Client &log_level(ubg_log_level_t level) {
        return call(ubg_client_set_log_level(client_, level));
    }
    Client &limits(std::size_t max_message_bytes, std::size_t max_queued_sends,
                   std::size_t max_queued_events) {
        return call(ubg_client_set_limits(client_, max_message_bytes, max_queued_sends,
                                          max_queued_events));
    }

    /// Callback mode: `handler` gets every event on the loop's thread. It must not throw: an
    /// exception cannot cross the C library, so one ends the program (std::terminate). Calling
    /// this client's functions from it is allowed.
    Client &on_event(Handler handler) {
        auto box = std::make_unique<Handler>(std::move(handler));
        call(ubg_client_set_event_callback(client_, &Client::trampoline, box.get()));
        handler_ = std::move(box);
        return *this;
    }

    void connect() { call(ubg_client_connect(client_)); }

    /// Sends an event; `data` is JSON text (an object), or empty for none.
    void send(const std::string &name, const std::string &data = std::string()) {
        call(ubg_client_send(client_, name.c_str(), data.empty() ? nullptr : data.c_str()));
    }

    /// Closes for good with `code`; CLOSED and the CLOSED state arrive as events.
    void close(std::int32_t code = 1000) { call(ubg_client_close(client_, code)); }

    /// Pull mode: the oldest event, waiting up to `timeout` (negative: forever). Empty on
    /// timeout, and once no event will come again (then finished() is true).
    std::optional<Event> next_event(std::chrono::milliseconds timeout) {
        ubg_event_t event{};
        event.size = sizeof event;
        ubg_result_t rc = ubg_client_next_event(client_, detail::milliseconds(timeout), &event);
        if (rc == UBG_ETIMEOUT) return std::nullopt;
        if (rc == UBG_ECLOSED) {
            finished_ = true;
            return std::nullopt;
        }
        detail::check(rc, client_);
        return Event::from(event);
    }

    /// Whether next_event() found that no event will come again.
    bool finished() const noexcept { return finished_; }

    State state() const {
        ubg_state_t state;
        detail::check(ubg_client_get_state(client_, &state), client_);
        return static_cast<State>(state);
    }

    ubg_stats_t stats() const {
        ubg_stats_t stats{};
        stats.size = sizeof stats;
        detail::check(ubg_client_get_stats(client_, &stats), client_);
        return stats;
    }

    /// A descriptor readable while events wait (pull mode): for poll, epoll or an event loop.
    int event_fd() const {
        std::int32_t fd = -1;
        detail::check(ubg_client_get_event_fd(client_, &fd), client_);
        return fd;
    }

    /// The C handle, for functions this wrapper does not cover.
    ubg_client_t get() const noexcept { return client_; }

private:
    Client &call(ubg_result_t rc) {
        detail::check(rc, client_);
        return *this;
    }

    void reset() noexcept {
        // After ubg_client_free() returns no callback runs: the handler can go.
        if (client_) ubg_client_free(client_);
        client_ = nullptr;
        handler_.reset();
    }

    static void trampoline(ubg_client_t, const ubg_event_t *event, void *user_data) noexcept {
        (*static_cast<Handler *>(user_data))(Event::from(*event));
    }

    ubg_client_t client_ = nullptr;
    std::unique_ptr<Handler> handler_;
    bool finished_ = false;
};

inline std::string version() { return ubg_version(); }

} // namespace utilbot

#endif
