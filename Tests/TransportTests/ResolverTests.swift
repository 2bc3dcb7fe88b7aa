import Glibc
import Synchronization
import Testing
import UtilbotGateway

@Suite struct ResolverTests {
    @Test func numericAddressesNeedNoLookup() throws {
        let v4 = try Resolver.lookup(host: "127.0.0.1", port: 80, numericOnly: true)
        #expect(v4.map(\.description) == ["127.0.0.1:80"])
        let v6 = try Resolver.lookup(host: "::1", port: 443, numericOnly: true)
        #expect(v6.map(\.description) == ["[::1]:443"])
    }

    @Test func localhostResolves() throws {
        let addresses = try Resolver.lookup(host: "localhost", port: 8080)
        #expect(!addresses.isEmpty)
        #expect(addresses.allSatisfy { $0.description.hasSuffix(":8080") })
    }

    @Test func unknownHostIsAResolveErrorNamingTheHost() {
        #expect(throws: GatewayError.self) { try Resolver.lookup(host: "no-such-host.invalid", port: 80) }
        do {
            _ = try Resolver.lookup(host: "no-such-host.invalid", port: 80)
        } catch {
            #expect(error.code == .resolve)
            #expect(error.message.contains("no-such-host.invalid"))
        }
    }

    @Test func asyncResolutionAnswersOnTheLoop() throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.close() }
        let answer = Latch<Bool>()
        Resolver.resolve(host: "localhost", port: 1, on: loop) { result in
            answer.set(loop.isCurrent && ((try? result.get())?.isEmpty == false))
        }
        #expect(answer.wait() == true)
    }
}
