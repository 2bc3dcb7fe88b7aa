import Foundation

/// The dev gateway (bindings/python/utilbot_gateway/devserver) as a subprocess, one per test.
/// A missing Python stops the run at once with one line naming `make bootstrap`.
final class DevGateway: @unchecked Sendable {
    let url: String
    private let process: Process
    private let input: Pipe

    static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// Checked once (a static is initialised by one thread while the others wait), so tests
    /// starting in parallel print the line once before the run stops.
    static let python: String = {
        let python =
            ProcessInfo.processInfo.environment["UBG_PYTHON"] ?? DevGateway.repositoryRoot + "/.venv/bin/python3"
        guard FileManager.default.isExecutableFile(atPath: python) else {
            FileHandle.standardError.write(
                Data("gateway tests: no Python at \(python); run `make bootstrap` first\n".utf8))
            exit(2)
        }
        return python
    }()

    init(_ arguments: [String]) {
        let python = DevGateway.python
        process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-m", "utilbot_gateway.devserver"] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONPATH"] = DevGateway.repositoryRoot + "/bindings/python"
        process.environment = environment
        input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        do {
            try process.run()
        } catch {
            FileHandle.standardError.write(Data("gateway tests: cannot start the dev gateway: \(error)\n".utf8))
            exit(2)
        }
        var line = Data()
        while true {
            let byte = output.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte.first == UInt8(ascii: "\n") { break }
            line.append(byte)
        }
        struct Announcement: Decodable { let url: String }
        url = (try? JSONDecoder().decode(Announcement.self, from: line).url) ?? "ws://127.0.0.1:1/"
    }

    deinit {
        try? input.fileHandleForWriting.close()  // end of stdin: the gateway exits
        process.waitUntilExit()
    }
}
