import EmberTestSupport
import Foundation
import XCTest

@testable import EmberCore
@testable import EmberNN

/// Reads a file written by Python's `safetensors` library (tools/golden/safetensors_interop.py)
/// and compares its tensors with the JSON copy of the same values.
final class SafetensorsInteropTests: XCTestCase {
    func testReadsFileWrittenByPythonSafetensors() throws {
        let dir = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        let bytes = [UInt8](try Data(contentsOf: dir.appendingPathComponent("torch_written.safetensors")))
        let expected = try JSONSerialization.jsonObject(
            with: Data(contentsOf: dir.appendingPathComponent("torch_written.json"))) as! [String: Any]
        let (tensors, metadata) = try Safetensors.decode(bytes)
        XCTAssertEqual(metadata["producer"], "safetensors_interop.py")
        let want = expected["tensors"] as! [String: [String: Any]]
        XCTAssertEqual(Set(tensors.keys), Set(want.keys))
        for (name, entry) in want {
            let t = try XCTUnwrap(tensors[name])
            XCTAssertEqual(t.shape, entry["shape"] as! [Int], name)
            let data = (entry["data"] as! [Double]).map(Float.init)
            XCTAssertEqual(t.data, data, name)  // exact: the same float32 bits
        }
    }

    func testWrittenHeaderIsAlignedAndContiguous() throws {
        let t = try Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])
        let bytes = Safetensors.encode(tensors: [("a", t), ("b", Tensor.scalar(7))], metadata: [("k", "v")])
        var len = 0
        for k in 0..<8 { len |= Int(bytes[k]) << (8 * k) }
        XCTAssertEqual(len % 8, 0, "header padded to 8 bytes")
        XCTAssertEqual(bytes.count, 8 + len + 7 * 4, "data is contiguous")
        let header = try JSONValue.parse(Array(bytes[8..<(8 + len)]))
        XCTAssertEqual(header["a"]?["data_offsets"], .array([.number(0), .number(24)]))
        XCTAssertEqual(header["b"]?["data_offsets"], .array([.number(24), .number(28)]))
        XCTAssertEqual(header["__metadata__"]?["k"], .string("v"))
    }
}
