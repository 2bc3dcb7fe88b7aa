// Fuzz target: UTF8Validator, incremental vs one-shot vs the standard library.
//
// Input: byte 0 seeds the chunking; the rest is the text. Checks:
// - `UTF8Validator.isValid` (one-shot) agrees with `String(validating:as:)`;
// - feeding the text in chunks (empty chunks included) gives the same verdict, `feed` turns false
//   exactly when the input so far can no longer be valid UTF-8 and stays false afterwards;
// - after every chunk, `feed` is true iff the prefix can still be completed to valid UTF-8 (the standard
//   library decides, on the prefix extended by at most three continuation bytes), and `isComplete` iff
//   the prefix is valid as it is;
// - a JSON string holding the text validates iff the text is valid UTF-8 (when the text contains no
//   byte that JSON strings must escape).
import UtilbotGateway

/// Whether `prefix` can be extended to valid UTF-8. A proper prefix of a UTF-8 sequence is completed by
/// at most three continuation bytes; 0x80, 0x90 or 0xA0 fits the allowed range of every second byte
/// (E0: A0-BF, ED: 80-9F, F0: 90-BF, F4: 80-8F, others 80-BF) and 0x80-0xBF any later one.
private func canBeCompleted(_ prefix: ArraySlice<UInt8>) -> Bool {
    if swiftAcceptsUTF8(prefix) { return true }
    for fill: UInt8 in [0x80, 0x90, 0xA0] {
        var extended = Array(prefix)
        for _ in 1...3 {
            extended.append(fill)
            if swiftAcceptsUTF8(extended) { return true }
        }
    }
    return false
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = inputBytes(data, size)
    guard let seed = input.first else { return 0 }
    let text = Array(input.dropFirst())

    let oneShot = text.withUnsafeBytes { UTF8Validator.isValid($0) }
    let reference = swiftAcceptsUTF8(text)
    require(oneShot == reference, "isValid says \(oneShot), the standard library \(reference): \(show(text))")

    var validator = UTF8Validator()
    var failed = false
    var fed = 0
    // Check every prefix for short texts, only the verdicts for long ones (the reference is quadratic).
    let checkPrefixes = text.count <= 512
    for chunk in chunks(of: text, seed: seed, allowEmpty: true) {
        let ok = chunk.withUnsafeBytes { validator.feed($0) }
        fed += chunk.count
        if failed {
            require(!ok, "feed returned true again after it had returned false: \(show(text))")
            require(!validator.isComplete, "isComplete after a failure: \(show(text))")
            continue
        }
        if checkPrefixes {
            let prefix = text[..<fed]
            let expected = canBeCompleted(prefix)
            require(ok == expected, "feed says \(ok) after \(fed) bytes, expected \(expected): \(show(text))")
            if ok {
                let complete = swiftAcceptsUTF8(prefix)
                require(
                    validator.isComplete == complete,
                    "isComplete is \(validator.isComplete) after \(fed) bytes, expected \(complete): \(show(text))")
            }
        }
        failed = !ok
    }
    let incremental = !failed && validator.isComplete
    require(incremental == reference, "chunked validation says \(incremental), expected \(reference): \(show(text))")

    // Reset gives a fresh validator.
    validator.reset()
    let again = text.withUnsafeBytes { validator.feed($0) } && validator.isComplete
    require(again == reference, "validation after reset says \(again), expected \(reference)")

    // The JSON scanner's string check must agree where JSON allows the raw bytes.
    if !text.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
        let json = [UInt8(ascii: "\"")] + text + [UInt8(ascii: "\"")]
        let jsonOK: Bool
        do {
            try JSONScanner.validate(json)
            jsonOK = true
        } catch {
            jsonOK = false
        }
        require(jsonOK == reference, "JSONScanner says \(jsonOK) for the text as a string, expected \(reference)")
    }
    return 0
}
