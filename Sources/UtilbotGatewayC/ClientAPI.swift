import Glibc
import UtilbotGateway
import UtilbotGatewayTypes

/// Runs `body` on the client behind `handle`, turning a thrown error into its result code and
/// the client's last error message.
private func withClient(
    _ handle: ubg_client_t?, _ body: (ClientHandle) throws(GatewayError) -> Void
) -> ubg_result_t {
    guard let client = ClientHandle.registry.lookup(handle) else { return UBG_EHANDLE }
    do throws(GatewayError) {
        if client.loopObject.isOrphaned { throw ForkGeneration.refusal }
        try body(client)
        return UBG_OK
    } catch {
        client.lastError.set(error.message)
        return error.code.result
    }
}

private func required(_ pointer: UnsafePointer<CChar>?, _ what: String) throws(GatewayError) -> String {
    guard let text = try swiftString(pointer, what) else { throw GatewayError(.invalidArgument, "\(what) is NULL") }
    return text
}

// MARK: Lifetime

/// Creates a client: one bot connection (one shard) that reconnects by itself. It does nothing
/// until ubg_client_connect(); set it up first with the ubg_client_set_ functions.
///
/// - `loop`: the loop to run on, or NULL for the process-wide default loop (started on first
///   use, never stopped).
/// - `key`: the bot's gateway key, NUL-terminated UTF-8, copied. It is never logged, never put
///   in an error message and never in statistics.
/// - `out_client`: receives the client; unchanged on failure. Must not be NULL.
/// - Returns UBG_OK, UBG_EINVAL (key or out_client NULL, key empty or not UTF-8), UBG_EHANDLE (loop
///   is not NULL and not a live loop), UBG_ESTATE (a loop made before fork(), in the parent),
///   UBG_EIO (no resources).
/// - Thread-safe. Free the client with ubg_client_free().
@c public func ubg_client_create(
    _ loop: ubg_loop_t?, _ key: UnsafePointer<CChar>?, _ out_client: UnsafeMutablePointer<ubg_client_t?>?
) -> ubg_result_t {
    guard let out_client else { return UBG_EINVAL }
    do {
        let keyText = try required(key, "the key")
        guard !keyText.isEmpty else { return UBG_EINVAL }
        let loopObject: LoopObject
        if loop == nil {
            loopObject = try LoopObject.defaultLoop()
        } else {
            guard let found = LoopObject.registry.lookup(loop) else { return UBG_EHANDLE }
            guard !found.isOrphaned else { return UBG_ESTATE }  // made before fork(), in the parent
            loopObject = found
        }
        out_client.pointee = try ClientHandle(loop: loopObject, key: keyText).register()
        return UBG_OK
    } catch {
        return error.code.result
    }
}

/// Frees a client: closes its connection at once (without waiting for the gateway) and releases
/// everything it owns. No callback starts after this returns; called from one of the client's
/// own callbacks, it takes effect when that callback returns. A thread blocked in
/// ubg_client_next_event() on it returns UBG_ECLOSED. Pointers from its events and its last
/// error die with it. For a clean goodbye, ubg_client_close() first and wait for the CLOSED
/// state.
///
/// - `client`: NULL is a harmless no-op.
/// - Returns UBG_OK, UBG_EHANDLE for an unknown or already freed handle (a double free is
///   detected, not a crash), or UBG_ESTATE in the child of a fork() for a client made before it
///   (its loop has no thread there: nothing is waited for, its memory stays with the process).
/// - Thread-safe.
@c public func ubg_client_free(_ client: ubg_client_t?) -> ubg_result_t {
    guard let client else { return UBG_OK }
    if let object = ClientHandle.registry.lookup(client), object.loopObject.isOrphaned {
        // Its loop has no thread in this process: nothing can be waited for, nothing is freed.
        object.lastError.set(ForkGeneration.refusal.message)
        return UBG_ESTATE
    }
    guard let object = ClientHandle.registry.remove(client) else { return UBG_EHANDLE }
    object.free()
    return UBG_OK
}

/// The message of the last failed call on this client: what was wrong and why, for example
/// "invalid JSON at byte 7: expected a value". Owned by the client: valid until the client is
/// freed; its text changes with the next failure on this client. Empty before any failure.
///
/// - `client`: NULL or an unknown handle gives a static message saying so.
/// - Thread-safe (with several threads failing on one client, the text is the latest one's).
@c public func ubg_client_last_error(_ client: ubg_client_t?) -> UnsafePointer<CChar> {
    guard let object = ClientHandle.registry.lookup(client) else {
        return constantStrings.pointer("NULL, unknown or already freed client handle")
    }
    return UnsafePointer(object.lastError.pointer)
}

// MARK: Settings (before ubg_client_connect)

/// Sets the gateway URL (default "wss://gateway.utilbot.co/?v=1"). Used as given, path and
/// query included; a query without `v` gets `v=1`; `compression=zlib` in the query turns
/// compression on. ws:// and wss:// are accepted.
///
/// - Returns UBG_OK, UBG_EINVAL (NULL, not UTF-8, not a ws/wss URL; the message says why),
///   UBG_ESTATE (already connected), UBG_EHANDLE.
/// - Thread-safe; only before ubg_client_connect(). The string is copied.
@c public func ubg_client_set_url(_ client: ubg_client_t?, _ url: UnsafePointer<CChar>?) -> ubg_result_t {
    withClient(client) { object throws(GatewayError) in
        let text = try required(url, "the URL")
        let compression = object.options.compression
        _ = try GatewayURL(text, compression: compression)
        try object.configure { $0.options.url = text }
    }
}

/// Sends the connection through a proxy: `http://[user:password@]host[:port]` (HTTP CONNECT,
/// Basic credentials), `https://...` (the same inside TLS with the proxy, verified with the
/// client's CA settings), `socks5://...` (SOCKS5; this client resolves the gateway's name) or
/// `socks5h://...` (the proxy resolves it), with percent-encoded credentials. The port defaults to
/// 80 for http, 443 for https and 1080 for SOCKS. TLS to the gateway runs inside the tunnel,
/// checked against the gateway's name. NULL or "" removes it; then the environment decides (see
/// ubg_client_set_proxy_from_env()). Credentials never appear in messages or statistics.
///
/// - Returns UBG_OK, UBG_EINVAL (not a proxy URL this library speaks; the message says why),
///   UBG_ESTATE (already connected), UBG_EHANDLE.
/// - Thread-safe; only before ubg_client_connect(). The string is copied.
@c public func ubg_client_set_proxy(_ client: ubg_client_t?, _ url: UnsafePointer<CChar>?) -> ubg_result_t {
    withClient(client) { object throws(GatewayError) in
        let text = try swiftString(url, "the proxy URL")
        let proxy = try text.flatMap { t throws(GatewayError) in t.isEmpty ? nil : try ProxyURL(parsing: t) }
        try object.configure { $0.options.webSocket.proxy = proxy }
    }
}

/// Whether the environment chooses the proxy when none was set with ubg_client_set_proxy()
/// (1, the default) or not (0: a direct connection). Read as curl reads it, at every connection
/// attempt: `https_proxy` (wss) or `http_proxy` (ws), then `all_proxy`, each lowercase first;
/// `no_proxy` lists hosts, domains, addresses and CIDR ranges to reach directly (`*`: all).
///
/// - Returns UBG_OK, UBG_EINVAL (not 0 or 1), UBG_ESTATE (already connected), UBG_EHANDLE.
/// - Thread-safe; only before ubg_client_connect().
@c public func ubg_client_set_proxy_from_env(_ client: ubg_client_t?, _ enabled: Int32) -> ubg_result_t {
    withClient(client) { object throws(GatewayError) in
        guard enabled == 0 || enabled == 1 else { throw GatewayError(.invalidArgument, "enabled must be 0 or 1") }
        try object.configure { $0.options.webSocket.proxyFromEnvironment = enabled == 1 }
    }
}

/// Sets who the client identifies as: `type` (NULL keeps the current one, default "bot") and
/// `key` (NULL keeps the one given to ubg_client_create()). Both are copied.
///
/// - Returns UBG_OK, UBG_EINVAL (empty or not UTF-8), UBG_ESTATE (already connected),
///   UBG_EHANDLE.
/// - Thread-safe; only before ubg_client_connect().
@c public func ubg_client_set_identity(
    _ client: ubg_client_t?, _ type: UnsafePointer<CChar>?, _ key: UnsafePointer<CChar>?
) -> ubg_result_t {
    withClient(client) { object throws(GatewayError) in
        let typeText = try swiftString(type, "the type")
        let keyText = try swiftString(key, "the key")
        if typeText?.isEmpty == true || keyText?.isEmpty == true {
            throw GatewayError(.invalidArgument, "the type and the key must not be empty")
        }
        try object.configure { settings in
            if let typeText { settings.options.session.identifyType = typeText }
            if let keyText { settings.options.session.key = keyText }
        }
    }
}

/// Asks the gateway for zlib compression (1) or not (0, the default). Both zlib styles (one
/// stream per message, or one stream per connection with sync flushes) are decoded.
///
/// - Returns UBG_OK, UBG_EINVAL (not 0 or 1), UBG_ESTATE (already connected), UBG_EHANDLE.
/// - Thread-safe; only before ubg_client_connect().
@c public func ubg_client_set_compression(_ client: ubg_client_t?, _ enabled: Int32) -> ubg_result_t {
    withClient(client) { object throws(GatewayError) in
        guard enabled == 0 || enabled == 1 else { throw GatewayError(.invalidArgument, "compression must be 0 or 1") }
        try object.configure { $0.options.compression = enabled == 1 }
    }
}

/// Trusts the CA certificates in `ca_file` (PEM) and/or `ca_dir` (hashed directory) instead of
/// the system trust store. NULL for both restores the system store. Paths are copied; the
/// files are read at ubg_client_connect(), which fails with UBG_ETLS if they cannot be loaded.
/// Clients with the same TLS settings share one TLS context (and its loaded certificates) while
/// any of them lives: a changed file is read again once they are all freed.
///
/// - Returns UBG_OK, UBG_EINVAL (not UTF-8), UBG_ESTATE (already connected), UBG_EHANDLE.
/// - Thread-safe; only before ubg_client_connect().
@c public func ubg_client_set_tls_ca(
    _ client: ubg_client_t?, _ ca_file: UnsafePointer<CChar>?, _ ca_dir: UnsafePointer<CChar>?
) -> ubg_result_t {
    withClient(client) { object throws(GatewayError) in
        let file = try swiftString(ca_file, "the CA file")
        let dir = try swiftString(ca_dir, "the CA directory")
        try object.configure {
            $0.options.webSocket.tls.caFile = file
            $0.options.webSocket.tls.caDirectory = dir
        }
    }
}

/// INSECURE: with 1, accepts any server certificate for any host name. For a local
/// development gateway only; every connect then logs a warning. 0 (the default) verifies the
/// chain and the host name.
///
/// - Returns UBG_OK, UBG_EINVAL (not 0 or 1), UBG_ESTATE (already connected), UBG_EHANDLE.
/// - Thread-safe; only before ubg_client_connect().
@c public func ubg_client_set_tls_insecure_skip_verify(_ client: ubg_client_t?, _ insecure: Int32) -> ubg_result_t {
    withClient(client) { object throws(GatewayError) in
        guard insecure == 0 || insecure == 1 else { throw GatewayError(.invalidArgument, "insecure must be 0 or 1") }
        try object.configure { $0.options.webSocket.tls.insecureSkipVerify = insecure == 1 }
    }
}

/// Sets the reconnect backoff: the n-th delay is uniform in [0, min(max_ms, base_ms * 2^n)]
/// (exponential backoff with full jitter), reset once a session proves itself (its first
/// heartbeat ACK after identify), so a gateway that accepts and then closes gets no storm.
/// Defaults: 1000 and 60000 ms.
///
/// - Returns UBG_OK, UBG_EINVAL (base_ms 0 or above max_ms), UBG_ESTATE, UBG_EHANDLE.
/// - Thread-safe; only before ubg_client_connect().
@c public func ubg_client_set_reconnect(_ client: ubg_client_t?, _ base_ms: UInt32, _ max_ms: UInt32) -> ubg_result_t {
    withClient(client) { object throws(GatewayError) in
        guard base_ms > 0, base_ms <= max_ms else {
            throw GatewayError(.invalidArgument, "the backoff needs 0 < base_ms <= max_ms")
        }
        try object.configure {
            $0.options.session.backoffBaseNanoseconds = UInt64(base_ms) * 1_000_000
            $0.options.session.backoffCapNanoseconds = UInt64(max_ms) * 1_000_000
        }
    }
}

/// Sets timeouts in milliseconds; 0 keeps the current value. `connect_ms`: DNS, TCP, TLS and
/// the upgrade together (default 15000). `hello_ms`: from the upgrade to Hello (default
/// 20000). `close_ms`: how long a closing handshake may take (default 5000).
///
/// - Returns UBG_OK, UBG_ESTATE (already connected), UBG_EHANDLE.
/// - Thread-safe; only before ubg_client_connect().
@c public func ubg_client_set_timeouts(
    _ client: ubg_client_t?, _ connect_ms: UInt32, _ hello_ms: UInt32, _ close_ms: UInt32
) -> ubg_result_t {
    withClient(client) { object throws(GatewayError) in
        try object.configure {
            if connect_ms > 0 {
                $0.options.webSocket.openTimeoutNanoseconds = UInt64(connect_ms) * 1_000_000
                $0.options.webSocket.connectAttemptTimeoutNanoseconds = min(
                    UInt64(connect_ms) * 1_000_000, $0.options.webSocket.connectAttemptTimeoutNanoseconds)
            }
            if hello_ms > 0 { $0.options.session.helloTimeoutNanoseconds = UInt64(hello_ms) * 1_000_000 }
            if close_ms > 0 { $0.options.webSocket.closeTimeoutNanoseconds = UInt64(close_ms) * 1_000_000 }
        }
    }
}

/// Sets limits; 0 keeps the current value. `max_message_bytes`: the largest message accepted,
/// after decompression (default 4 MiB; larger ones are reported and the connection is
/// renewed). `max_queued_sends`: sends waiting for the session to be ready (default 1000; more
/// give UBG_EQUEUEFULL). `max_queued_events`: events waiting in the pull queue before the
/// client stops reading from the gateway until the host catches up (default 4096).
///
/// - Returns UBG_OK, UBG_EINVAL (max_message_bytes under 1024), UBG_ESTATE, UBG_EHANDLE.
/// - Thread-safe; only before ubg_client_connect().
@c public func ubg_client_set_limits(
    _ client: ubg_client_t?, _ max_message_bytes: UInt, _ max_queued_sends: UInt, _ max_queued_events: UInt
) -> ubg_result_t {
    withClient(client) { object throws(GatewayError) in
        let limit = UInt(Int32.max)
        guard max_message_bytes == 0 || (1024...limit).contains(max_message_bytes),
            max_queued_sends <= limit, max_queued_events <= limit
        else {
            throw GatewayError(
                .invalidArgument, "limits must be 0 (unchanged) or 1024..2^31-1 bytes, up to 2^31-1 items")
        }
        try object.configure {
            if max_message_bytes > 0 { $0.options.webSocket.maxMessageSize = Int(max_message_bytes) }
            if max_queued_sends > 0 { $0.options.session.maxQueuedMessages = Int(max_queued_sends) }
        }
        if max_queued_events > 0 { object.queue.setCapacity(Int(max_queued_events)) }
    }
}

/// Sets byte bounds; 0 keeps the current value. `max_queued_send_bytes`: the bytes of sends
/// waiting for the session to be ready (default 1 MiB; more give UBG_EQUEUEFULL).
/// `max_queued_event_bytes`: the bytes of events in the pull queue (names, data and messages, plus
/// 64 bytes an event) at which the client stops reading from the gateway until the host catches
/// up, as it does at `max_queued_events` (default 8 MiB; an event larger than this still comes
/// through, alone).
///
/// - Returns UBG_OK, UBG_EINVAL (a bound under 1024 or above 2^31-1), UBG_ESTATE, UBG_EHANDLE.
/// - Thread-safe; only before ubg_client_connect().
@c public func ubg_client_set_queue_bytes(
    _ client: ubg_client_t?, _ max_queued_send_bytes: UInt, _ max_queued_event_bytes: UInt
) -> ubg_result_t {
    withClient(client) { object throws(GatewayError) in
        let bounds = UInt(1024)...UInt(Int32.max)
        guard max_queued_send_bytes == 0 || bounds.contains(max_queued_send_bytes),
            max_queued_event_bytes == 0 || bounds.contains(max_queued_event_bytes)
        else {
            throw GatewayError(.invalidArgument, "byte bounds must be 0 (unchanged) or 1024..2^31-1")
        }
        try object.configure {
            if max_queued_send_bytes > 0 { $0.options.session.maxQueuedBytes = Int(max_queued_send_bytes) }
        }
        if max_queued_event_bytes > 0 { object.queue.setMaxBytes(Int(max_queued_event_bytes)) }
    }
}

/// Sets how long the session waits for `bot_connect_success` after sending Identify, in
/// milliseconds (default 30000; 0 keeps the current value). Without it the attempt ends like one
/// without Hello (CLOSED with UBG_ETIMEOUT, then a reconnect with backoff); sends waiting for
/// ready stay queued for the next attempt. The wait stops while reading is paused for a slow
/// host.
///
/// - Returns UBG_OK, UBG_ESTATE (already connected), UBG_EHANDLE.
/// - Thread-safe; only before ubg_client_connect().
@c public func ubg_client_set_ready_timeout(_ client: ubg_client_t?, _ ready_ms: UInt32) -> ubg_result_t {
    withClient(client) { object throws(GatewayError) in
        try object.configure {
            if ready_ms > 0 { $0.options.session.readyTimeoutNanoseconds = UInt64(ready_ms) * 1_000_000 }
        }
    }
}

/// Chooses callback mode: every event is passed to `callback` on the loop thread, with
/// `user_data` (never touched by the library). Events then never reach the pull queue. NULL
/// returns to pull mode (the default). The event and its strings are valid until the callback
/// returns. The callback may call any ubg_ function, ubg_client_free() of this client
/// included; it must not block for long: every client on the loop waits for it.
///
/// - Returns UBG_OK, UBG_ESTATE (already connected), UBG_EHANDLE.
/// - Thread-safe; only before ubg_client_connect().
@c public func ubg_client_set_event_callback(
    _ client: ubg_client_t?, _ callback: ubg_event_cb?, _ user_data: UnsafeMutableRawPointer?
) -> ubg_result_t {
    withClient(client) { object throws(GatewayError) in
        try object.configure {
            $0.callback = callback
            $0.userData = user_data
        }
    }
}

/// Reports log lines up to `level` as UBG_EVENT_LOG events. The default, UBG_LOG_WARNING, lets
/// through what a host must not miss: warnings (TLS verification turned off, a silent or zombie
/// gateway) and errors (a close the gateway blames on the client, 4002-4005; a refusal).
/// UBG_LOG_NONE silences them. The key never appears in a log line.
///
/// - Returns UBG_OK, UBG_EINVAL (not a ubg_log_level_t), UBG_ESTATE, UBG_EHANDLE.
/// - Thread-safe; only before ubg_client_connect().
@c public func ubg_client_set_log_level(_ client: ubg_client_t?, _ level: ubg_log_level_t) -> ubg_result_t {
    withClient(client) { object throws(GatewayError) in
        guard level.rawValue <= UBG_LOG_DEBUG.rawValue else {
            throw GatewayError(.invalidArgument, "unknown log level \(level.rawValue)")
        }
        try object.configure { $0.logLevel = Int32(level.rawValue) }
    }
}

// MARK: Running

/// Starts the client: it connects, heartbeats, identifies, and from then on reconnects by
/// itself (with backoff) until ubg_client_close(), ubg_client_free() or a fatal gateway error
/// (4000, 4001, 4007). Returns at once; progress arrives as events.
///
/// - Returns UBG_OK, UBG_ESTATE (already connected), UBG_EINVAL (a bad URL), UBG_ETLS (the CA
///   file or directory cannot be loaded), UBG_EHANDLE.
/// - Thread-safe; once per client.
@c public func ubg_client_connect(_ client: ubg_client_t?) -> ubg_result_t {
    withClient(client) { object throws(GatewayError) in try object.connect() }
}

/// Sends an event (op 1) named `name` with `data` as its `d`. The data is checked to be JSON
/// first (the gateway drops anything else silently). Before the session is ready the event
/// waits in a bounded queue and goes out, in order, right after identify; if it never can (a
/// fatal error, ubg_client_close()), an ERROR event says how many were not delivered.
///
/// - `name`: NUL-terminated UTF-8, not empty, not "identify" (the library sends that).
/// - `data`: a NUL-terminated JSON object, or NULL for no `d`. Both are copied.
/// - Returns UBG_OK, UBG_EINVAL (NULL or empty name, "identify", data not an object),
///   UBG_EJSON (data is not JSON; the message says where), UBG_EQUEUEFULL (the queue or the
///   send buffer is full: try again later), UBG_ESTATE (not connected yet), UBG_ECLOSED
///   (closed), UBG_EREFUSED (the gateway refused the client for good), UBG_EHANDLE.
/// - Thread-safe, also from callbacks.
@c public func ubg_client_send(
    _ client: ubg_client_t?, _ name: UnsafePointer<CChar>?, _ data: UnsafePointer<CChar>?
) -> ubg_result_t {
    withClient(client) { object throws(GatewayError) in
        let nameText = try required(name, "the event name")
        var bytes: [UInt8]?
        if let data {
            bytes = Array(UnsafeRawBufferPointer(start: data, count: strlen(data)))
        }
        try object.send(name: nameText, data: bytes)
    }
}

/// Closes for good: sends a close frame with `code` (1000, or 3000-4999), waits for the
/// gateway's answer (up to the close timeout) and ends in UBG_STATE_CLOSED, reported as
/// CLOSED and STATE events. Queued sends that never went out are reported.
///
/// - Returns UBG_OK, UBG_EINVAL (a code that may not be sent), UBG_ESTATE (never connected),
///   UBG_EHANDLE. Closing twice is harmless.
/// - Thread-safe, also from callbacks.
@c public func ubg_client_close(_ client: ubg_client_t?, _ code: Int32) -> ubg_result_t {
    withClient(client) { object throws(GatewayError) in
        guard let wire = UInt16(exactly: code), wire == 1000 || (3000...4999).contains(wire) else {
            throw GatewayError(.invalidArgument, "close code \(code) may not be sent: use 1000 or 3000-4999")
        }
        try object.close(code: wire)
    }
}

/// Reads the client's state into `out`.
///
/// - Returns UBG_OK, UBG_EINVAL (out_state is NULL), UBG_EHANDLE.
/// - Thread-safe; the state may change right after.
@c public func ubg_client_get_state(_ client: ubg_client_t?, _ out_state: UnsafeMutablePointer<ubg_state_t>?)
    -> ubg_result_t
{
    withClient(client) { object throws(GatewayError) in
        guard let out_state else { throw GatewayError(.invalidArgument, "out_state is NULL") }
        out_state.pointee = ubg_state_t(rawValue: UInt32(object.statistics.state.rawValue))
    }
}

/// Fills `stats` (set `stats->size = sizeof(ubg_stats_t)` first; a smaller size from an older
/// header gets only the fields that fit).
///
/// - Returns UBG_OK, UBG_EINVAL (stats NULL or its size too small), UBG_EHANDLE.
/// - Thread-safe.
@c public func ubg_client_get_stats(_ client: ubg_client_t?, _ stats: UnsafeMutablePointer<ubg_stats_t>?)
    -> ubg_result_t
{
    withClient(client) { object throws(GatewayError) in
        guard let stats else { throw GatewayError(.invalidArgument, "stats is NULL") }
        let size = stats.pointee.size
        guard size >= MemoryLayout<size_t>.size + MemoryLayout<ubg_state_t>.size else {
            throw GatewayError(.invalidArgument, "stats->size must be set to sizeof(ubg_stats_t)")
        }
        let s = object.statistics
        var filled = ubg_stats_t()
        filled.size = min(size, MemoryLayout<ubg_stats_t>.size)
        filled.state = ubg_state_t(rawValue: UInt32(s.state.rawValue))
        filled.messages_in = s.messagesIn
        filled.messages_out = s.messagesOut
        filled.bytes_in = s.bytesIn
        filled.bytes_out = s.bytesOut
        filled.reconnects = s.reconnects
        filled.last_latency_us = s.lastLatencyNanoseconds.map { Int64($0 / 1000) } ?? -1
        filled.average_latency_us = s.averageLatencyNanoseconds.map { Int64($0 / 1000) } ?? -1
        filled.queued_events = UInt64(object.queue.count)
        filled.queue_full_count = object.queue.fullCount
        filled.sends_failed = s.sendsFailed
        let count = filled.size
        withUnsafeBytes(of: filled) { source in
            UnsafeMutableRawPointer(stats).copyMemory(from: source.baseAddress!, byteCount: count)
        }
    }
}

// MARK: Pull API

/// Takes the oldest event (pull mode), waiting up to `timeout_ms` milliseconds for one (0:
/// do not wait; -1: wait forever). Set `event->size = sizeof(ubg_event_t)` first (once is
/// enough: the library keeps it). The event and its strings are valid until the next call of
/// this function on the client, or until ubg_client_free(). Call it from one thread at a time
/// per client. While events wait, the descriptor of ubg_client_get_event_fd() is readable.
///
/// - Returns UBG_OK (`event` filled), UBG_ETIMEOUT (nothing within the timeout), UBG_ECLOSED
///   (the client reached CLOSED or FAILED, or was freed, and every event was taken),
///   UBG_ESTATE (callback mode), UBG_EINVAL (event NULL or its size unset), UBG_EHANDLE.
/// - Thread-safe; blocks only the calling thread.
@c public func ubg_client_next_event(
    _ client: ubg_client_t?, _ timeout_ms: Int32, _ event: UnsafeMutablePointer<ubg_event_t>?
) -> ubg_result_t {
    guard let object = ClientHandle.registry.lookup(client) else { return UBG_EHANDLE }
    var count: UInt = 0
    return pull(object, timeout_ms, event, 1, &count)
}

/// Takes up to `capacity` of the oldest events at once (pull mode), waiting up to `timeout_ms`
/// milliseconds for the first (0: do not wait; -1: wait forever): one call moves a burst of
/// events, for hosts whose every call is costly (Python's ctypes). `events` is an array of
/// `capacity` structs; set `events[0].size = sizeof(ubg_event_t)` first: the array's stride is
/// taken from it, so an older, smaller header's array works too. `*out_count` receives how many
/// were filled (at least 1 on UBG_OK, else 0). The events and their strings are valid until the
/// next ubg_client_next_event() or ubg_client_next_events() call on the client, or until
/// ubg_client_free(); events of the same name may share one `name` pointer. Call it from one
/// thread at a time per client.
///
/// - Returns UBG_OK, UBG_ETIMEOUT (nothing within the timeout), UBG_ECLOSED (the client reached
///   CLOSED or FAILED, or was freed, and every event was taken), UBG_ESTATE (callback mode),
///   UBG_EINVAL (events or out_count NULL, capacity 0, or events[0].size unset or implausible:
///   more than 4 * sizeof(ubg_event_t)), UBG_EHANDLE.
/// - Thread-safe; blocks only the calling thread.
@c public func ubg_client_next_events(
    _ client: ubg_client_t?, _ timeout_ms: Int32, _ events: UnsafeMutablePointer<ubg_event_t>?, _ capacity: UInt,
    _ out_count: UnsafeMutablePointer<UInt>?
) -> ubg_result_t {
    guard let object = ClientHandle.registry.lookup(client) else { return UBG_EHANDLE }
    guard let out_count else {
        object.lastError.set("out_count is NULL")
        return UBG_EINVAL
    }
    out_count.pointee = 0
    guard capacity > 0 else {
        object.lastError.set("capacity must be at least 1")
        return UBG_EINVAL
    }
    return pull(object, timeout_ms, events, capacity, out_count)
}

private func pull(
    _ object: ClientHandle, _ timeoutMilliseconds: Int32, _ events: UnsafeMutablePointer<ubg_event_t>?,
    _ capacity: UInt, _ outCount: UnsafeMutablePointer<UInt>
) -> ubg_result_t {
    if object.loopObject.isOrphaned {
        object.lastError.set(ForkGeneration.refusal.message)
        return UBG_ESTATE
    }
    guard let events else {
        object.lastError.set("the event pointer is NULL")
        return UBG_EINVAL
    }
    // The caller's structs may come from an older, smaller header: fill only what they have.
    let stride = events.pointee.size
    // Bounded both ways: the stride decides where every event of the array is written, so an
    // unset (garbage) size must not send writes past the caller's array.
    let smallest = MemoryLayout<ubg_event_t>.offset(of: \.result)! + MemoryLayout<ubg_result_t>.size
    guard stride >= smallest && stride <= 4 * MemoryLayout<ubg_event_t>.size else {
        object.lastError.set("event->size must be set to sizeof(ubg_event_t)")
        return UBG_EINVAL
    }
    guard !object.usesCallback else {
        object.lastError.set("this client delivers events to its callback; there is nothing to pull")
        return UBG_ESTATE
    }
    let copied = min(stride, MemoryLayout<ubg_event_t>.size)
    let base = UnsafeMutableRawPointer(events)
    let result = object.nextEvents(maxCount: Int(clamping: capacity), timeoutMilliseconds: timeoutMilliseconds) {
        index, record in
        var filled = ubg_event_t()
        record.fill(&filled)
        filled.size = copied
        withUnsafeBytes(of: filled) {
            (base + index * stride).copyMemory(from: $0.baseAddress!, byteCount: copied)
        }
    }
    switch result {
    case .events(let count):
        outCount.pointee = UInt(count)
        return UBG_OK
    case .timedOut: return UBG_ETIMEOUT
    case .closed: return UBG_ECLOSED
    }
}

/// A file descriptor that is readable while events wait in the pull queue, for epoll, poll,
/// libuv or asyncio. Only wait on it for readability; do not read, write or close it (the
/// client owns it and closes it in ubg_client_free()). It is made on the first call: a client
/// whose host never asks costs no descriptor.
///
/// - Returns UBG_OK, UBG_EINVAL (out_fd NULL), UBG_EIO (no descriptor left), UBG_EHANDLE.
/// - Thread-safe.
@c public func ubg_client_get_event_fd(_ client: ubg_client_t?, _ out_fd: UnsafeMutablePointer<Int32>?) -> ubg_result_t
{
    withClient(client) { object throws(GatewayError) in
        guard let out_fd else { throw GatewayError(.invalidArgument, "out_fd is NULL") }
        out_fd.pointee = try object.queue.eventFD()
    }
}
