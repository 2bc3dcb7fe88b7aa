import Testing
import UtilbotGateway

@Suite struct TLSContextSharingTests {
    @Test func clientsWithTheSameSettingsShareOneContextWhileItLives() throws {
        let insecure = TLSConfiguration(insecureSkipVerify: true)
        let first = try TLSContext.shared(insecure)
        #expect(try TLSContext.shared(insecure) === first)
        #expect(try TLSContext.shared(TLSConfiguration()) !== first)
        weak var released: TLSContext?
        do {
            let other = try TLSContext.shared(TLSConfiguration(caFile: nil, caDirectory: "/", insecureSkipVerify: true))
            released = other
            #expect(other !== first)
        }
        #expect(released == nil)  // nobody keeps a context alive but its clients
    }

    @Test func aMissingCAFileIsAnErrorEveryTimeNotACachedContext() {
        let missing = TLSConfiguration(caFile: "/nonexistent/ca.pem")
        for _ in 0..<2 {
            #expect(throws: GatewayError.self) { try TLSContext.shared(missing) }
        }
    }
}
