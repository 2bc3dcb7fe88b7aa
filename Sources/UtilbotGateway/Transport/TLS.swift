import COpenSSL
import Glibc

/// How a client verifies the server. Verification of the chain and of the host name is on by
/// default; turning it off is possible only through the loudly named `insecureSkipVerify`.
package struct TLSConfiguration: Sendable, Hashable {
    /// A PEM file of trusted CA certificates; nil uses the system trust store.
    package var caFile: String?
    /// A directory of hashed CA certificates (c_rehash layout); nil uses the system trust store.
    package var caDirectory: String?
    /// Accept any certificate for any host. For local development only.
    package var insecureSkipVerify = false

    package init(caFile: String? = nil, caDirectory: String? = nil, insecureSkipVerify: Bool = false) {
        self.caFile = caFile
        self.caDirectory = caDirectory
        self.insecureSkipVerify = insecureSkipVerify
    }
}

/// An OpenSSL client context: TLS 1.2 or newer, peer verification on unless disabled. Safe to
/// share between connections and threads once made.
package final class TLSContext: @unchecked Sendable {
    let context: OpaquePointer

    private final class WeakContext: @unchecked Sendable {
        weak var context: TLSContext?
        init(_ context: TLSContext) { self.context = context }
    }

    private static let live = Locked<[TLSConfiguration: WeakContext]>([:])

    /// The context for `configuration`, shared by every client made with the same settings
    /// while any of them lives: a context with its trust store costs tens of kilobytes, which
    /// 10,000 shards must not pay each. The CA file is read when the first of them is made.
    package static func shared(_ configuration: TLSConfiguration) throws(GatewayError) -> TLSContext {
        try live.withLock { (contexts: inout [TLSConfiguration: WeakContext]) throws(GatewayError) -> TLSContext in
            if let existing = contexts[configuration]?.context { return existing }
            let made = try TLSContext(configuration)
            contexts = contexts.filter { $0.value.context != nil }
            contexts[configuration] = WeakContext(made)
            return made
        }
    }
    package let configuration: TLSConfiguration

    package init(_ configuration: TLSConfiguration) throws(GatewayError) {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else {
            throw GatewayError(.tls, "could not create a TLS context: \(TLSError.drain())")
        }
        context = ctx
        self.configuration = configuration
        guard ubg_ssl_ctx_set_min_tls12(ctx) == 1 else {
            throw GatewayError(.tls, "could not require TLS 1.2: \(TLSError.drain())")
        }
        // RELEASE_BUFFERS: an idle session gives its 16 KiB record buffers back.
        _ = ubg_ssl_ctx_set_mode(
            ctx, Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS))
        if configuration.insecureSkipVerify {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
            return
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        if configuration.caFile != nil || configuration.caDirectory != nil {
            guard SSL_CTX_load_verify_locations(ctx, configuration.caFile, configuration.caDirectory) == 1 else {
                let what = [configuration.caFile, configuration.caDirectory].compactMap { $0 }.joined(separator: ", ")
                throw GatewayError(.tls, "could not load CA certificates from \(what): \(TLSError.drain())")
            }
        } else if SSL_CTX_set_default_verify_paths(ctx) != 1 {
            throw GatewayError(.tls, "could not load the system trust store: \(TLSError.drain())")
        }
    }

    deinit { SSL_CTX_free(context) }
}

/// One TLS client session over memory BIOs: the connection moves ciphertext between the socket
/// and these buffers itself, so sends use MSG_NOSIGNAL (no SIGPIPE in the host) and the same
/// read path serves plain and TLS sockets.
package final class TLSSession {
    private let ssl: OpaquePointer
    private let network: OpaquePointer  // ciphertext from the socket, read by OpenSSL
    private let outgoing: OpaquePointer  // ciphertext written by OpenSSL, for the socket
    private let context: TLSContext
    package private(set) var handshakeDone = false

    package enum Progress: Equatable {
        case done
        case wantsMoreInput
        case closed
    }

    package init(context: TLSContext, host: String) throws(GatewayError) {
        let ssl = SSL_new(context.context)
        let rbio = BIO_new(BIO_s_mem())
        let wbio = BIO_new(BIO_s_mem())
        guard let ssl, let rbio, let wbio else {
            if let ssl { SSL_free(ssl) }
            if let rbio { BIO_free(rbio) }
            if let wbio { BIO_free(wbio) }
            throw GatewayError(.tls, "could not create a TLS session: \(TLSError.drain())")
        }
        self.ssl = ssl
        self.network = rbio
        self.outgoing = wbio
        self.context = context
        _ = ubg_bio_set_mem_eof_return(rbio, -1)
        SSL_set_bio(ssl, rbio, wbio)
        SSL_set_connect_state(ssl)
        let isIPAddress = Self.isIPAddress(host)
        if !isIPAddress {
            _ = ubg_ssl_set_sni(ssl, host)
        }
        if !context.configuration.insecureSkipVerify {
            let param = SSL_get0_param(ssl)
            let ok = isIPAddress ? X509_VERIFY_PARAM_set1_ip_asc(param, host) : SSL_set1_host(ssl, host)
            guard ok == 1 else {
                throw GatewayError(.tls, "could not set up host name verification for '\(host)': \(TLSError.drain())")
            }
        }
    }

    deinit { SSL_free(ssl) }  // frees both BIOs

    /// Ciphertext received from the socket.
    package func receiveCiphertext(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        _ = BIO_write(network, base, Int32(bytes.count))
    }

    /// Appends ciphertext OpenSSL wants sent to `output`.
    package func takeCiphertext(into output: inout CompactingQueue<UInt8>) {
        let pending = Int(BIO_ctrl_pending(outgoing))
        guard pending > 0 else { return }
        output.append(upTo: pending) { Int(BIO_read(outgoing, $0.baseAddress, Int32($0.count))) }
    }

    package func handshake(host: String) throws(GatewayError) -> Progress {
        ERR_clear_error()
        let rc = SSL_do_handshake(ssl)
        if rc == 1 {
            handshakeDone = true
            return .done
        }
        let error = SSL_get_error(ssl, rc)
        switch error {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .wantsMoreInput
        case SSL_ERROR_ZERO_RETURN:
            return .closed
        default:
            throw GatewayError(.tls, "TLS handshake with '\(host)' failed: \(describeFailure())")
        }
    }

    /// Decrypts into `buffer`; returns the byte count, 0 when more input is needed, nil when the
    /// peer sent close_notify.
    package func read(into buffer: UnsafeMutableRawBufferPointer) throws(GatewayError) -> Int? {
        ERR_clear_error()
        let rc = SSL_read(ssl, buffer.baseAddress, Int32(buffer.count))
        if rc > 0 { return Int(rc) }
        let error = SSL_get_error(ssl, rc)
        switch error {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return 0
        case SSL_ERROR_ZERO_RETURN: return nil
        default: throw GatewayError(.tls, "TLS read failed: \(describeFailure())")
        }
    }

    /// Encrypts all of `bytes` (memory BIOs never push back).
    package func write(_ bytes: UnsafeRawBufferPointer) throws(GatewayError) {
        var offset = 0
        while offset < bytes.count {
            ERR_clear_error()
            let rc = SSL_write(ssl, bytes.baseAddress! + offset, Int32(min(bytes.count - offset, 1 << 30)))
            guard rc > 0 else { throw GatewayError(.tls, "TLS write failed: \(describeFailure())") }
            offset += Int(rc)
        }
    }

    /// The negotiated protocol version, e.g. "TLSv1.3".
    package var protocolVersion: String { String(cString: SSL_get_version(ssl)) }

    private func describeFailure() -> String {
        let verify = SSL_get_verify_result(ssl)
        if verify != X509_V_OK {
            let reason = String(cString: X509_verify_cert_error_string(verify))
            return "certificate verification failed: \(reason)"
        }
        return TLSError.drain()
    }

    private static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}

enum TLSError {
    /// OpenSSL's queued error reasons for this thread, oldest first, then clears them.
    static func drain() -> String {
        var reasons: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            reasons.append(String(cChars: buffer))
        }
        return reasons.isEmpty ? "unknown TLS error" : reasons.joined(separator: "; ")
    }
}
