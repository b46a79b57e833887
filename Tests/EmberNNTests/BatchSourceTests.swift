import EmberCore
@testable import EmberNN
import EmberTestSupport
import XCTest

/// Inputs produced per batch (`BatchSource`): bytes kept as bytes train exactly like their
/// widened `Float` tensor, and bad sources are refused with the argument named.
final class BatchSourceTests: XCTestCase {
    /// 40 grey 12×12 "images" as bytes; class 1 has a bright corner.
    func images() throws -> (bytes: [UInt8], y: Tensor) {
        var rng = RandomGenerator(seed: 3)
        var bytes = [UInt8](repeating: 0, count: 40 * 144), y = [Float](repeating: 0, count: 40)
        for i in 0..<40 {
            y[i] = Float(i % 2)
            for j in 0..<144 { bytes[i * 144 + j] = UInt8(rng.next() % 60) }
            if i % 2 == 1 { for j in [0, 1, 12, 13] { bytes[i * 144 + j] = 250 } }
        }
        return (bytes, try Tensor(shape: [40], data: y))
    }

    func testByteSourceGathersScaledRows() throws {
        let bytes: [UInt8] = Array(0..<12)
        let s = try ByteSource(bytes: bytes, count: 3, sampleShape: [1, 2, 2], scale: 0.5)
        let t = try s.gather([2, 0])
        XCTAssertEqual(t.shape, [2, 1, 2, 2])
        XCTAssertEqual(t.data, [4, 4.5, 5, 5.5, 0, 0.5, 1, 1.5])
        XCTAssertThrowsError(try s.gather([3])) { XCTAssertTrue("\($0)".contains("row 3 out of range 0..<3")) }
        XCTAssertThrowsError(try ByteSource(bytes: bytes, count: 4, sampleShape: [1, 2, 2])) {
            XCTAssertTrue("\($0)".contains("holds 12 bytes; 4 rows of [1, 2, 2] need 16"), "\($0)")
        }
        XCTAssertThrowsError(try ByteSource(bytes: bytes, count: 3, sampleShape: [0, 4]))
        XCTAssertThrowsError(try ByteSource(bytes: bytes, count: 3, sampleShape: [4], scale: .nan))
        // 1/255 divides, as torchvision's to_tensor: byte / 255 exactly (a product differs by an ulp for some bytes).
        let all = try ByteSource(bytes: Array(0...255), count: 256, sampleShape: [1]).gather(Array(0..<256))
        XCTAssertEqual(all.data, (0...255).map { Float($0) / 255 })
    }

    func testBytesTrainBitIdenticallyToTheirFloatTensor() throws {
        let (bytes, y) = try images()
        let floats = try Tensor(shape: [40, 1, 12, 12], data: bytes.map { Float($0) / 255 })
        let spec = try Architectures.lenet(imageShape: [1, 12, 12])
        func run(_ data: Dataset) throws -> (Tensor, [String: Tensor]) {
            let model = try Model(spec: spec, task: .binary, seed: 9)
            var config = TrainerConfig()
            config.batchSize = 8
            try Trainer(model: model, config: config).fit(data, epochs: 3)
            return (try model.logits(data), model.snapshotWeights())
        }
        let (a, wa) = try run(Dataset(inputs: [:], sources: ["image": try ByteSource(bytes: bytes, count: 40, sampleShape: [1, 12, 12])], target: y))
        let (b, wb) = try run(Dataset(inputs: ["image": floats], target: y))
        XCTAssertEqual(a.data, b.data)
        XCTAssertEqual(wa, wb)
    }

    func testDatasetRefusesMismatchedSources() throws {
        let s = try ByteSource(bytes: [UInt8](repeating: 1, count: 8), count: 2, sampleShape: [4])
        XCTAssertThrowsError(try Dataset(inputs: ["x": try Tensor(shape: [3, 1], repeating: 0)], sources: ["s": s])) {
            XCTAssertTrue("\($0)".contains("expected"), "\($0)")
        }
        XCTAssertThrowsError(try Dataset(inputs: ["s": try Tensor(shape: [2, 4], repeating: 0)], sources: ["s": s])) {
            XCTAssertTrue("\($0)".contains("both as a tensor and as a source"), "\($0)")
        }
        let spec = try Architectures.lenet(imageShape: [1, 12, 12])
        let model = try Model(spec: spec, task: .binary, seed: 1)
        let wrong = try ByteSource(bytes: [UInt8](repeating: 1, count: 2 * 121), count: 2, sampleShape: [1, 11, 11])
        XCTAssertThrowsError(try model.logits(Dataset(inputs: [:], sources: ["image": wrong]))) {
            XCTAssertTrue("\($0)".contains("input 'image' has shape [2, 1, 11, 11]; expected [n, 1, 12, 12]"), "\($0)")
        }
    }
}
