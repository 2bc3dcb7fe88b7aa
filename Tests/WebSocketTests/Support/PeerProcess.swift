import Foundation

/// The Python `websockets` server of Tests/Peers/websocket_peer.py, started once per test run
/// and shared. It exits when this process does (its stdin closes).
struct Peer: Sendable {
    let ws: UInt16
    let wss: UInt16
    let wssWrongHost: UInt16
    let caFile: String

    static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.path
    }()

    static let python: String = {
        if let configured = ProcessInfo.processInfo.environment["UBG_PYTHON"] { return configured }
        return repositoryRoot + "/.venv/bin/python3"
    }()

    /// The shared peer, started on first use. Without it no integration test can run, so a
    /// missing peer (a fresh clone before `make bootstrap`) stops the whole run at once with one
    /// line saying what to do, instead of failing every test with the same message.
    static let shared: Peer = {
        switch start() {
        case .success(let peer):
            return peer
        case .failure(let error):
            FileHandle.standardError.write(
                Data("integration tests: \(error); run `make bootstrap` first (it installs the Python peer)\n".utf8))
            exit(2)
        }
    }()

    static func get() throws -> Peer { shared }

    private nonisolated(unsafe) static var process: Process?
    private nonisolated(unsafe) static var stdinPipe: Pipe?

    private static func start() -> Result<Peer, PeerError> {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            return .failure(PeerError(message: "no Python at \(python)"))
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [repositoryRoot + "/Tests/Peers/websocket_peer.py"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        do {
            try process.run()
        } catch {
            return .failure(PeerError(message: "could not start the WebSocket peer: \(error)"))
        }
        self.process = process
        self.stdinPipe = input
        var line = Data()
        let handle = output.fileHandleForReading
        while true {
            let byte = handle.readData(ofLength: 1)
            if byte.isEmpty {
                return .failure(PeerError(message: "the WebSocket peer exited before printing its ports"))
            }
            if byte.first == UInt8(ascii: "\n") { break }
            line.append(byte)
        }
        struct Announcement: Decodable {
            let ws: UInt16
            let wss: UInt16
            let wss_wrong_host: UInt16
            let ca: String
        }
        do {
            let a = try JSONDecoder().decode(Announcement.self, from: line)
            return .success(Peer(ws: a.ws, wss: a.wss, wssWrongHost: a.wss_wrong_host, caFile: a.ca))
        } catch {
            return .failure(
                PeerError(message: "unreadable peer announcement \(String(decoding: line, as: UTF8.self)): \(error)"))
        }
    }
}

struct PeerError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
