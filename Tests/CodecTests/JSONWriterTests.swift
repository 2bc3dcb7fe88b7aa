import Testing
import UtilbotGateway

private func text(_ writer: JSONWriter) -> String {
    String(decoding: writer.bytes, as: UTF8.self)
}

private func written(_ build: (inout JSONWriter) -> Void) -> String {
    var writer = JSONWriter()
    build(&writer)
    return text(writer)
}

@Test func emptyContainers() {
    var object = JSONWriter()
    object.beginObject()
    object.endObject()
    #expect(text(object) == "{}")
    var array = JSONWriter()
    array.beginArray()
    array.endArray()
    #expect(text(array) == "[]")
    #expect(JSONWriter().bytes == [])
}

@Test func commasInObjectsAndArrays() {
    let output = written { w in
        w.beginObject()
        w.key("a")
        w.int(1)
        w.key("b")
        w.beginArray()
        w.int(1)
        w.string("x")
        w.bool(true)
        w.bool(false)
        w.null()
        w.beginObject()
        w.endObject()
        w.beginArray()
        w.endArray()
        w.beginObject()
        w.key("c")
        w.null()
        w.endObject()
        w.endArray()
        w.key("d")
        w.beginObject()
        w.endObject()
        w.key("e")
        w.string("")
        w.endObject()
    }
    #expect(output == #"{"a":1,"b":[1,"x",true,false,null,{},[],{"c":null}],"d":{},"e":""}"#)
    #expect(validationError(output) == nil)
}

@Test func topLevelScalars() {
    #expect(written { $0.int(0) } == "0")
    #expect(written { $0.string("s") } == #""s""#)
    #expect(written { $0.null() } == "null")
    #expect(written { $0.bool(true) } == "true")
}

@Test(
    arguments: [
        (0, "0"), (7, "7"), (-1, "-1"), (10, "10"), (1_234_567_890, "1234567890"), (-42, "-42"),
        (Int.max, "9223372036854775807"), (Int.min, "-9223372036854775808"),
    ] as [(Int, String)])
func integers(value: Int, expected: String) {
    #expect(written { $0.int(value) } == expected)
}

@Test func escapesEveryControlCharacter() {
    let expected = [
        #"\u0000"#, #"\u0001"#, #"\u0002"#, #"\u0003"#, #"\u0004"#, #"\u0005"#, #"\u0006"#, #"\u0007"#,
        #"\b"#, #"\t"#, #"\n"#, #"\u000b"#, #"\f"#, #"\r"#, #"\u000e"#, #"\u000f"#,
        #"\u0010"#, #"\u0011"#, #"\u0012"#, #"\u0013"#, #"\u0014"#, #"\u0015"#, #"\u0016"#, #"\u0017"#,
        #"\u0018"#, #"\u0019"#, #"\u001a"#, #"\u001b"#, #"\u001c"#, #"\u001d"#, #"\u001e"#, #"\u001f"#,
    ]
    for value in 0..<0x20 {
        let character = String(Character(Unicode.Scalar(UInt8(value))))
        #expect(written { $0.string(character) } == "\"" + expected[value] + "\"", "U+\(value)")
    }
}

@Test func escapesQuotesAndBackslashesOnly() {
    #expect(written { $0.string(#"say "hi" \ bye"#) } == #""say \"hi\" \\ bye""#)
    // '/', DEL, non-ASCII, U+2028 and emoji pass through as UTF-8.
    let plain = "a/b\u{7F} é 中 \u{2028} 😀 \u{10FFFF}"
    #expect(written { $0.string(plain) }.utf8.elementsEqual(Array("\"\(plain)\"".utf8)))
    #expect(written { $0.string("x\"\n\u{1}") } == #""x\"\n\u0001""#)
}

@Test func keysAreEscaped() {
    let output = written { w in
        w.beginObject()
        w.key("a\"b")
        w.int(1)
        w.key("\n")
        w.int(2)
        w.endObject()
    }
    #expect(output == #"{"a\"b":1,"\n":2}"#)
}

@Test func rawValuesAreInsertedAsIs() {
    let raw = Array(#"{"x":[1, 2 ,3]}"#.utf8)
    let output = raw.withUnsafeBytes { buffer in
        written { w in
            w.beginArray()
            w.raw(buffer)
            w.raw(buffer)
            w.int(4)
            w.endArray()
        }
    }
    #expect(output == #"[{"x":[1, 2 ,3]},{"x":[1, 2 ,3]},4]"#)
}

@Test func payloads() {
    #expect(String(decoding: JSONWriter.payload(op: 1, t: nil, d: nil), as: UTF8.self) == #"{"op":1}"#)
    #expect(
        String(decoding: JSONWriter.payload(op: -1, t: "A\"B", d: nil), as: UTF8.self) == #"{"op":-1,"t":"A\"B"}"#
    )
    let d = Array(#"{"token":"abc","n":[1,null]}"#.utf8)
    let withD = d.withUnsafeBytes { JSONWriter.payload(op: 2, t: nil, d: $0) }
    #expect(String(decoding: withD, as: UTF8.self) == #"{"op":2,"d":{"token":"abc","n":[1,null]}}"#)
    let full = d.withUnsafeBytes { JSONWriter.payload(op: 0, t: "IDENTIFY", d: $0) }
    #expect(String(decoding: full, as: UTF8.self) == #"{"op":0,"t":"IDENTIFY","d":{"token":"abc","n":[1,null]}}"#)
}

@Test func payloadScansBackWithTheSameD() throws {
    let d = Array(#"[1,"two",{"three":3.0e0}]"#.utf8)
    let payload = d.withUnsafeBytes { JSONWriter.payload(op: 42, t: "EVENT 😀", d: $0) }
    let result = try JSONScanner.scanEnvelope(payload)
    #expect(result.op == 42)
    #expect(result.t == "EVENT 😀")
    let range = try #require(result.d)
    #expect(Array(payload[range]) == d)
}
