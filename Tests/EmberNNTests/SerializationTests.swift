// JSONValue and Safetensors: round trips, and malformed or corrupt bytes throw (never trap).
import EmberTestSupport
import EmberCore
@testable import EmberNN
import Foundation
import XCTest

final class JSONTests: XCTestCase {
    let sample: JSONValue = .object([
        ("z-first", .number(1)),
        ("a", .array([.null, .bool(true), .bool(false), .number(-0.1), .number(3.25), .number(1e-5),
                      .number(1.5e300), .number(-7), .number(9_007_199_254_740_992)])),
        ("text", .string("quote \" backslash \\ newline \n tab \t cr \r ctrl \u{01} é 😀 /")),
        ("nested", .object([("empty_array", .array([])), ("empty_object", .object([])), ("s", .string(""))])),
    ])

    func testWriteParseRoundTrip() throws {
        let text = sample.text
        let back = try JSONValue.parse(text)
        XCTAssertEqual(back, sample)
        XCTAssertEqual(back.text, text, "writing is deterministic")
        // Objects keep their key order.
        guard case let .object(members) = back else { return XCTFail("not an object") }
        XCTAssertEqual(members.map(\.0), ["z-first", "a", "text", "nested"])
        // Foundation reads what we write.
        let viaFoundation = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        XCTAssertEqual(viaFoundation?["text"] as? String, sample["text"]?.stringValue)
    }

    func testWriterOutput() {
        XCTAssertEqual(JSONValue.array([.number(1), .number(2.5), .null, .bool(true)]).text, "[1,2.5,null,true]")
        XCTAssertEqual(JSONValue.string("a\"b\u{1f}").text, "\"a\\\"b\\u001f\"")
        XCTAssertEqual(JSONValue.object([("k", .string("v"))]).text, "{\"k\":\"v\"}")
        // Non-finite numbers have no JSON spelling.
        XCTAssertEqual(JSONValue.number(.infinity).text, "null")
    }

    func testParseStandardJSON() throws {
        let v = try JSONValue.parse(" {\"a\" : [1, 2.5e2, -3E-1, true, null],\n\t\"b\": \"\\u00e9\\ud83d\\ude00\\/\\b\\f\"} ")
        XCTAssertEqual(v["a"], .array([.number(1), .number(250), .number(-0.3), .bool(true), .null]))
        XCTAssertEqual(v["b"]?.stringValue, "é😀/\u{08}\u{0C}")
        XCTAssertNil(v["missing"])
        XCTAssertEqual(v["a"]?.arrayValue?.first?.intValue, 1)
        XCTAssertNil(JSONValue.number(2.5).intValue)
        XCTAssertNil(JSONValue.number(1e300).intValue)
    }

    func testMalformedInputThrows() {
        let cases: [(String, String)] = [
            ("", "unexpected end of input"),
            ("{", "expected a string key"),
            ("{\"a\" 1}", "expected ':'"),
            ("{\"a\": 1", "unterminated object"),
            ("{\"a\": 1 \"b\": 2}", "expected ',' or '}'"),
            ("[1, 2", "unterminated array"),
            ("[1 2]", "expected ',' or ']'"),
            ("[1,]", "invalid number"),
            ("tru", "invalid literal"),
            ("nul", "invalid literal"),
            ("\"abc", "unterminated string"),
            ("\"a\\qb\"", "invalid escape"),
            ("\"\\u12\"", "invalid \\u escape"),
            ("\"\\ud83d\"", "unpaired surrogate"),
            ("\"\\udc00\"", "invalid code point"),
            ("1 2", "unexpected trailing characters"),
            ("-", "invalid number"),
            ("1.2.3", "invalid number"),
            (String(repeating: "[", count: 300) + String(repeating: "]", count: 300), "nesting too deep"),
        ]
        for (text, fragment) in cases {
            assertEmberError(.corruptData, ["[json]", fragment, "at byte"]) { try JSONValue.parse(text) }
        }
        // Invalid UTF-8 inside a string.
        assertEmberError(.corruptData, ["[json]", "invalid UTF-8"]) { try JSONValue.parse([0x22, 0xFF, 0xFE, 0x22]) }
        // The byte offset points at the problem.
        assertEmberError(.corruptData, ["at byte 3"]) { try JSONValue.parse("[1 2]") }
    }
}

final class SafetensorsTests: XCTestCase {
    func tensors() throws -> [(String, Tensor)] {
        [("w", try Tensor(shape: [2, 3], data: [1, -2, 3.5, .leastNonzeroMagnitude, -0.0, .greatestFiniteMagnitude])),
         ("b", try Tensor(shape: [3], data: [0.1, 0.2, 0.3])),
         ("s", Tensor.scalar(42)),
         ("empty", try Tensor(shape: [0, 4], data: []))]
    }

    func testRoundTrip() throws {
        let input = try tensors()
        let bytes = Safetensors.encode(tensors: input, metadata: [("ember", "{\"x\":1}"), ("note", "é")])
        // Layout: 8-byte little-endian header length, header padded to a multiple of 8.
        var len = 0
        for k in 0..<8 { len |= Int(bytes[k]) << (8 * k) }
        XCTAssertEqual(len % 8, 0)
        XCTAssertEqual(bytes.count, 8 + len + 4 * (6 + 3 + 1))
        let header = try JSONValue.parse(Array(bytes[8..<(8 + len)]))
        XCTAssertEqual(header["w"]?["dtype"]?.stringValue, "F32")
        XCTAssertEqual(header["w"]?["data_offsets"], .array([.number(0), .number(24)]))
        let (out, meta) = try Safetensors.decode(bytes)
        XCTAssertEqual(meta, ["ember": "{\"x\":1}", "note": "é"])
        XCTAssertEqual(Set(out.keys), Set(input.map(\.0)))
        for (name, t) in input {
            XCTAssertEqual(out[name]?.shape, t.shape, name)
            XCTAssertEqual(out[name]?.data.map(\.bitPattern), t.data.map(\.bitPattern), "\(name) bit-exact")
        }
    }

    /// Rewrites the header of a valid file (keeping the length field consistent).
    func withHeader(_ bytes: [UInt8], _ edit: (String) -> String) -> [UInt8] {
        var len = 0
        for k in 0..<8 { len |= Int(bytes[k]) << (8 * k) }
        let header = edit(String(decoding: bytes[8..<(8 + len)], as: UTF8.self))
        let hb = Array(header.utf8)
        var out = [UInt8]()
        for k in 0..<8 { out.append(UInt8((hb.count >> (8 * k)) & 0xFF)) }
        return out + hb + bytes[(8 + len)...]
    }

    func testCorruptBytesThrow() throws {
        let good = Safetensors.encode(tensors: try tensors(), metadata: [])
        XCTAssertNoThrow(try Safetensors.decode(good))
        assertEmberError(.corruptData, ["[safetensors]", "need at least 8 bytes, got 5"]) {
            try Safetensors.decode(Array(good.prefix(5)))
        }
        // Truncated inside the header.
        assertEmberError(.corruptData, ["[safetensors]", "header length"]) { try Safetensors.decode(Array(good.prefix(20))) }
        // Truncated data: the last tensor's offsets run past the end.
        assertEmberError(.corruptData, ["[safetensors]", "offsets", "do not fit"]) {
            try Safetensors.decode(Array(good.dropLast(3)))
        }
        // Header length larger than the file.
        var tooLong = good
        tooLong[6] = 0x01
        assertEmberError(.corruptData, ["[safetensors]", "header length", "exceeds"]) { try Safetensors.decode(tooLong) }
        var huge = good
        for k in 0..<8 { huge[k] = 0xFF }
        assertEmberError(.corruptData, ["[safetensors]", "header length 18446744073709551615"]) { try Safetensors.decode(huge) }
        // Offsets out of range or inconsistent with the shape.
        let outOfRange = withHeader(good) { $0.replacingOccurrences(of: "\"data_offsets\":[0,24]", with: "\"data_offsets\":[0,4000]") }
        XCTAssertNotEqual(outOfRange, good)
        assertEmberError(.corruptData, ["[safetensors]", "tensor 'w'", "[0, 4000]"]) { try Safetensors.decode(outOfRange) }
        let wrongSize = withHeader(good) { $0.replacingOccurrences(of: "\"data_offsets\":[0,24]", with: "\"data_offsets\":[0,20]") }
        assertEmberError(.corruptData, ["[safetensors]", "tensor 'w'", "[0, 20]"]) { try Safetensors.decode(wrongSize) }
        let negative = withHeader(good) { $0.replacingOccurrences(of: "\"data_offsets\":[0,24]", with: "\"data_offsets\":[-4,20]") }
        assertEmberError(.corruptData, ["[safetensors]", "tensor 'w'"]) { try Safetensors.decode(negative) }
        // Unsupported dtype, malformed entries, header not an object, broken JSON.
        let complex = withHeader(good) { $0.replacingOccurrences(of: "\"F32\"", with: "\"C64\"") }
        assertEmberError(.corruptData, ["[safetensors]", "dtype C64; expected a float or integer dtype"]) { try Safetensors.decode(complex) }
        // A wider dtype needs more bytes: F64 with F32's offsets does not fit.
        let f64 = withHeader(good) { $0.replacingOccurrences(of: "\"F32\"", with: "\"F64\"") }
        assertEmberError(.corruptData, ["[safetensors]", "tensor 'w'", "[0, 24]"]) { try Safetensors.decode(f64) }
        let noShape = withHeader(good) { $0.replacingOccurrences(of: "\"shape\"", with: "\"shap\"") }
        assertEmberError(.corruptData, ["[safetensors]", "malformed entry"]) { try Safetensors.decode(noShape) }
        let negDim = withHeader(good) { $0.replacingOccurrences(of: "\"shape\":[2,3]", with: "\"shape\":[-2,3]") }
        assertEmberError(.corruptData, ["[safetensors]", "invalid shape"]) { try Safetensors.decode(negDim) }
        assertEmberError(.corruptData, ["[safetensors]", "not a JSON object"]) {
            try Safetensors.decode(withHeader(good) { _ in "[1,2]   " })
        }
        assertEmberError(.corruptData, ["[json]"]) { try Safetensors.decode(withHeader(good) { String($0.dropLast(12)) }) }
        assertEmberError(.corruptData, ["[safetensors]", "metadata 'k' is not a string"]) {
            try Safetensors.decode(withHeader(good) { $0.replacingOccurrences(of: "\"__metadata__\":{}", with: "\"__metadata__\":{\"k\":1}") })
        }
    }

    /// A shape whose byte size overflows Int must be rejected, not trap.
    func testHugeShapesThrowInsteadOfTrapping() throws {
        let good = Safetensors.encode(tensors: [("w", try Tensor(shape: [2, 3], repeating: 1))], metadata: [])
        // 3·10¹⁸ elements: the element count fits Int, its byte size (×4) does not.
        let overflowBytes = withHeader(good) { $0.replacingOccurrences(of: "\"shape\":[2,3]", with: "\"shape\":[3000000000,1000000000]") }
        assertEmberError(.corruptData, ["[safetensors]", "tensor 'w'"]) { try Safetensors.decode(overflowBytes) }
        // The element count itself overflows.
        let overflowCount = withHeader(good) { $0.replacingOccurrences(of: "\"shape\":[2,3]", with: "\"shape\":[4000000000000000,4000000000000000]") }
        assertEmberError(.overflow, ["[safetensors]", "too many elements"]) { try Safetensors.decode(overflowCount) }
    }
}
