// utilbot-gateway: a command-line client on the library's C API, for people debugging a bot
// and for scripted tests. Events go to stdout as JSON lines; JSON lines on stdin send events.
import Glibc
import UtilbotGateway
import UtilbotGatewayC
import UtilbotGatewayTypes

let usage = """
    usage: utilbot-gateway connect [--key-file FILE] [--url URL] [--type TYPE] [--compression zlib]
                                   [--ca CAFILE] [--insecure] [--proxy URL | --no-proxy]
                                   [--log-level none|error|warning|info|debug]

    The key: --key-file FILE (its first line), else the UTILBOT_GATEWAY_KEY environment variable.
    --key KEY also works but puts the key on the command line, which every user of this machine
    can read (/proc/PID/cmdline, ps): use it only where nobody else logs in.

    The proxy: --proxy http://[user:pass@]host:port, https://..., socks5://... or socks5h://...;
    without it the environment decides (https_proxy, http_proxy, all_proxy, no_proxy, as curl
    reads them); --no-proxy connects directly whatever the environment says.

    Prints one JSON object per line on stdout:
      {"kind":"ready"}                                  identified (bot_connect_success)
      {"kind":"event","t":NAME,"d":DATA}                every op 0 event (d null when absent)
      {"kind":"error","e":CODE,"m":MSG}                 an op -1 error from the gateway
      {"kind":"error","e":null,"m":MSG,"local":true}    a problem the library found itself
      {"kind":"closed","code":CODE,"reconnect":BOOL}    a connection or attempt ended
                                                        (+ "reason", "http_status" when known)
      {"kind":"fatal","code":CODE}                      gave up for good; exits with status 2
    Reads JSON lines on stdin:
      {"send":{"t":NAME,"d":DATA}}                      sends an event
      {"quit":true}                                     closes with 1000, prints closed, exits 0
    Logs go to stderr. SIGINT and SIGTERM close with 1000 and exit 0.
    """

/// Serialises output lines from the loop thread and the stdin thread.
let outputLock = Locked<Void>(())

func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    outputLock.withLock { _ in
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 { return }
            offset += n
        }
    }
}

func log(_ message: String) {
    writeAll(2, Array("utilbot-gateway: \(message)\n".utf8))
}

func fail(_ message: String, status: Int32 = 1) -> Never {
    log(message)
    exit(status)
}

struct Arguments {
    var url = GatewayURL.defaultURL
    var key: String?
    var type = "bot"
    var compression = false
    var ca: String?
    var insecure = false
    var proxy: String?
    var proxyFromEnvironment = true
    var logLevel = UBG_LOG_INFO

    init(_ argv: [String]) {
        guard argv.first == "connect" else {
            if argv.first == "--help" || argv.first == "-h" {
                print(usage)
                exit(0)
            }
            fail("expected the 'connect' command\n\(usage)")
        }
        var rest = argv.dropFirst()
        func value(_ flag: String) -> String {
            guard let v = rest.popFirst() else { fail("\(flag) needs a value") }
            return v
        }
        while let flag = rest.popFirst() {
            switch flag {
            case "--url": url = value(flag)
            case "--key": key = value(flag)
            case "--key-file": key = readKey(from: value(flag))
            case "--type": type = value(flag)
            case "--compression":
                let v = value(flag)
                guard v == "zlib" else { fail("--compression takes only zlib") }
                compression = true
            case "--ca": ca = value(flag)
            case "--insecure": insecure = true
            case "--proxy": proxy = value(flag)
            case "--no-proxy": proxyFromEnvironment = false
            case "--log-level":
                let levels = [
                    "none": UBG_LOG_NONE, "error": UBG_LOG_ERROR, "warning": UBG_LOG_WARNING,
                    "info": UBG_LOG_INFO, "debug": UBG_LOG_DEBUG,
                ]
                guard let level = levels[value(flag)] else { fail("unknown log level") }
                logLevel = level
            case "-h", "--help":
                print(usage)
                exit(0)
            default: fail("unknown option \(flag)\n\(usage)")
            }
        }
        if key == nil, let fromEnvironment = getenv("UTILBOT_GATEWAY_KEY") {
            key = String(cString: fromEnvironment)
        }
        guard let key, !key.isEmpty else {
            fail("no key: use --key-file FILE or set UTILBOT_GATEWAY_KEY\n\(usage)")
        }
    }
}

/// The first line of `path`, without its line ending.
func readKey(from path: String) -> String {
    guard let file = fopen(path, "r") else {
        fail("cannot read the key file \(path): \(String(cString: strerror(errno)))")
    }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    while bytes.count < 65536 {
        let c = fgetc(file)
        if c == EOF || c == 0x0A { break }
        bytes.append(UInt8(c))
    }
    if bytes.last == 0x0D { bytes.removeLast() }
    guard !bytes.isEmpty else { fail("the key file \(path) is empty") }
    return String(decoding: bytes, as: UTF8.self)
}

/// Writes one JSON line to stdout at once (events come from the loop thread, replies from the
/// stdin thread: stdio's lock keeps lines whole).
func emit(_ build: (inout JSONWriter) -> Void) {
    var writer = JSONWriter()
    writer.beginObject()
    build(&writer)
    writer.endObject()
    var line = writer.bytes
    line.append(UInt8(ascii: "\n"))
    writeAll(1, line)
}

func text(_ pointer: UnsafePointer<CChar>?) -> String? {
    pointer.map { String(cString: $0) }
}

final class Exit: @unchecked Sendable {
    let semaphore = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
    var status: Int32 = 0
    init() { sem_init(semaphore, 0, 0) }
    func finish(_ code: Int32) {
        status = code
        sem_post(semaphore)
    }
}

let exitSignal = Exit()

let onEvent: ubg_event_cb = { _, event, _ in
    guard let event = event?.pointee else { return }
    switch event.type {
    case UBG_EVENT_READY:
        emit {
            $0.key("kind"); $0.string("ready")
        }
    case UBG_EVENT_DISPATCH:
        emit { w in
            w.key("kind"); w.string("event")
            w.key("t"); w.string(text(event.name) ?? "")
            w.key("d")
            if let data = event.data {
                w.raw(UnsafeRawBufferPointer(start: data, count: event.data_len))
            } else {
                w.null()
            }
        }
    case UBG_EVENT_ERROR:
        emit { w in
            w.key("kind"); w.string("error")
            w.key("e")
            if event.has_code != 0 { w.int(Int(event.code)) } else { w.null() }
            w.key("m")
            if let m = text(event.message) { w.string(m) } else { w.null() }
            if event.local != 0 {
                w.key("local"); w.bool(true)
            }
        }
    case UBG_EVENT_CLOSED:
        emit { w in
            w.key("kind"); w.string("closed")
            w.key("code"); w.int(Int(event.code))
            w.key("reconnect"); w.bool(event.reconnect != 0)
            if let m = text(event.message), !m.isEmpty {
                w.key("reason"); w.string(m)
            }
            if event.http_status != 0 {
                w.key("http_status"); w.int(Int(event.http_status))
            }
        }
    case UBG_EVENT_FATAL:
        emit {
            $0.key("kind"); $0.string("fatal"); $0.key("code"); $0.int(Int(event.code))
        }
        exitSignal.finish(2)
    case UBG_EVENT_STATE:
        if event.state == UBG_STATE_CLOSED { exitSignal.finish(0) }
    case UBG_EVENT_LOG:
        let names = [1: "error", 2: "warning", 3: "info", 4: "debug"]
        log("\(names[Int(event.code)] ?? "log"): \(text(event.message) ?? "")")
    default:
        break
    }
}

let arguments = Arguments(Array(CommandLine.arguments.dropFirst()))

// Signals are taken by a thread of ours with sigwait, not by handlers: block them before any
// other thread (the loop's) starts, so every thread inherits the mask.
var signals = sigset_t()
sigemptyset(&signals)
sigaddset(&signals, SIGINT)
sigaddset(&signals, SIGTERM)
pthread_sigmask(SIG_BLOCK, &signals, nil)

var client: ubg_client_t?
@MainActor func check(_ result: ubg_result_t, _ what: String) {
    guard result != UBG_OK else { return }
    fail("\(what): \(String(cString: ubg_result_name(result))): \(String(cString: ubg_client_last_error(client)))")
}
check(ubg_client_create(nil, arguments.key, &client), "creating the client")
check(ubg_client_set_url(client, arguments.url), "--url")
check(ubg_client_set_identity(client, arguments.type, nil), "--type")
check(ubg_client_set_compression(client, arguments.compression ? 1 : 0), "--compression")
if let ca = arguments.ca { check(ubg_client_set_tls_ca(client, ca, nil), "--ca") }
if arguments.insecure { check(ubg_client_set_tls_insecure_skip_verify(client, 1), "--insecure") }
if let proxy = arguments.proxy { check(ubg_client_set_proxy(client, proxy), "--proxy") }
check(ubg_client_set_proxy_from_env(client, arguments.proxyFromEnvironment ? 1 : 0), "--no-proxy")
check(ubg_client_set_log_level(client, arguments.logLevel), "--log-level")
check(ubg_client_set_event_callback(client, onEvent, nil), "the event callback")
check(ubg_client_connect(client), "connecting")

final class ClientBox: @unchecked Sendable {
    let client: ubg_client_t?
    init(_ client: ubg_client_t?) { self.client = client }
}
let box = ClientBox(client)

/// Reads commands from stdin until EOF (then the client keeps running until a signal).
func readCommands(_ box: ClientBox) {
    while let line = readLine(strippingNewline: true) {
        let bytes = Array(line.utf8)
        guard !bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) else { continue }
        do throws(GatewayError) {
            try JSONScanner.validate(bytes)
        } catch {
            log("ignored a stdin line that is not JSON: \(error.message)")
            continue
        }
        if JSONObjectReader.raw("quit", in: bytes[...]) == Array("true".utf8)[...] {
            _ = ubg_client_close(box.client, 1000)
            return
        }
        guard let send = JSONObjectReader.raw("send", in: bytes[...]),
            let name = JSONObjectReader.string("t", in: send)
        else {
            log("ignored a stdin line: expected {\"send\":{\"t\":...,\"d\":...}} or {\"quit\":true}")
            continue
        }
        var data = JSONObjectReader.raw("d", in: send).map { Array($0) }
        data?.append(0)
        let result: ubg_result_t =
            data.map { d in
                d.withUnsafeBufferPointer { buffer in
                    buffer.withMemoryRebound(to: CChar.self) { ubg_client_send(box.client, name, $0.baseAddress) }
                }
            } ?? ubg_client_send(box.client, name, nil)
        if result != UBG_OK {
            emit { w in
                w.key("kind"); w.string("error")
                w.key("e"); w.null()
                w.key("m"); w.string(String(cString: ubg_client_last_error(box.client)))
                w.key("local"); w.bool(true)
            }
        }
    }
}

func startThread(_ body: @escaping @Sendable () -> Void) {
    final class Body: @unchecked Sendable {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }
    var tid = pthread_t()
    let context = Unmanaged.passRetained(Body(body)).toOpaque()
    pthread_create(
        &tid, nil,
        { raw in
            Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, context)
    pthread_detach(tid)
}

startThread { readCommands(box) }
startThread {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    sigaddset(&set, SIGTERM)
    var received: Int32 = 0
    sigwait(&set, &received)
    _ = ubg_client_close(box.client, 1000)
}

while sem_wait(exitSignal.semaphore) != 0 {}
_ = ubg_client_free(client)
exit(exitSignal.status)
