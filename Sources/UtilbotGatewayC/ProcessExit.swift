import COpenSSL
import Glibc
import UtilbotGateway

/// What the library does once per process, before its first loop starts, so that a process may
/// exit (return from main, Python's interpreter exit) while events still flow:
/// - OpenSSL is initialised without its atexit cleanup, which would free its global state under a
///   loop thread still reading TLS records (when the host initialised OpenSSL first, its cleanup
///   was registered first and so runs after ours);
/// - an atexit handler stops every loop of this process first (after the callback under way, at
///   most a second each), so no callback runs and no socket is touched while the process tears
///   down its libraries.
enum ProcessExit {
    static let prepared: Bool = {
        OPENSSL_init_ssl(UInt64(OPENSSL_INIT_NO_ATEXIT | OPENSSL_INIT_LOAD_SSL_STRINGS), nil)
        atexit {
            var loops = LoopObject.registry.all()
            if let fallback = LoopObject.currentDefaultLoop { loops.append(fallback) }
            for object in loops where !object.isOrphaned {
                object.loop.closeForExit(waitingAtMost: 1_000_000_000)
            }
        }
        return true
    }()
}
