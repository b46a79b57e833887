import EmberCore
@testable import EmberNN
import EmberTestSupport
import XCTest

/// Image transforms of a model's image input: validated against the network, applied per batch
/// (random ones in training only), reproducible from the seed, stored in the model file.
final class ModelTransformsTests: XCTestCase {
    let augment: [ImageTransform] = [
        .centerCrop(height: 12, width: 12),
        .randomCrop(RandomCropOptions(height: 12, width: 12, padding: ImagePadding(2))),
        .randomHorizontalFlip(p: 0.5),
        .normalize(mean: [0.5], std: [0.25]),
    ]

    /// 32 grey 16×16 images as bytes; class 1 is brighter in the centre.
    func data() throws -> Dataset {
        var rng = RandomGenerator(seed: 5)
        var bytes = [UInt8](repeating: 0, count: 32 * 256), y = [Float](repeating: 0, count: 32)
        for i in 0..<32 {
            y[i] = Float(i % 2)
            for j in 0..<256 { bytes[i * 256 + j] = UInt8(rng.next() % 80) + (i % 2 == 1 && (j / 16) % 16 >= 6 && j % 16 >= 6 && (j / 16) < 10 && j % 16 < 10 ? 150 : 0) }
        }
        return try Dataset(inputs: [:], sources: ["image": try ByteSource(bytes: bytes, count: 32, sampleShape: [1, 16, 16])],
                           target: try Tensor(shape: [32], data: y))
    }

    func model(seed: UInt64 = 3) throws -> Model {
        let m = try Model(spec: try Architectures.lenet(imageShape: [1, 12, 12]), task: .binary, seed: seed)
        try m.setInputTransforms(["image": try InputTransforms(dataShape: [1, 16, 16], pipeline: try ImageTransformPipeline(transforms: augment))])
        return m
    }

    func train(_ m: Model) throws {
        var config = TrainerConfig()
        config.batchSize = 8
        try Trainer(model: m, config: config).fit(try data(), epochs: 3)
    }

    func testAugmentedTrainingIsReproducibleAndPredictionIsDeterministic() throws {
        let a = try model(), b = try model()
        try train(a)
        try train(b)
        XCTAssertEqual(a.snapshotWeights(), b.snapshotWeights(), "same seed, same augmented batches")
        // Without the random transforms the weights differ: augmentation did something.
        let plain = try Model(spec: try Architectures.lenet(imageShape: [1, 12, 12]), task: .binary, seed: 3)
        try plain.setInputTransforms(["image": try InputTransforms(dataShape: [1, 16, 16],
            pipeline: try ImageTransformPipeline(transforms: [augment[0], augment[3]]))])
        try train(plain)
        XCTAssertNotEqual(a.snapshotWeights(), plain.snapshotWeights())
        // Prediction applies the deterministic transforms only: twice the same.
        let d = try data()
        XCTAssertEqual(try a.logits(d).data, try a.logits(d).data)
    }

    func testTransformsAreStoredInTheModelFile() throws {
        let a = try model()
        try train(a)
        let b = try Model(serialized: a.serialized())
        XCTAssertEqual(b.inputTransforms, a.inputTransforms)
        XCTAssertEqual(try b.logits(try data()).data, try a.logits(try data()).data)
    }

    func testDataShapeAndNetworkShapeAreChecked() throws {
        let m = try model()
        let wrong = try Dataset(inputs: ["image": try Tensor(shape: [2, 1, 12, 12], repeating: 0)])
        XCTAssertThrowsError(try m.logits(wrong)) {
            XCTAssertTrue("\($0)".contains("input 'image' has shape [2, 1, 12, 12]; expected [n, 1, 16, 16]"), "\($0)")
        }
        let crop10 = try ImageTransformPipeline(transforms: [.centerCrop(height: 10, width: 10)])
        XCTAssertThrowsError(try m.setInputTransforms(["image": try InputTransforms(dataShape: [1, 16, 16], pipeline: crop10)])) {
            XCTAssertTrue("\($0)".contains("make images of [1, 10, 10] from [1, 16, 16]; the network reads [1, 12, 12]"), "\($0)")
        }
        XCTAssertThrowsError(try m.setInputTransforms(["num": try InputTransforms(dataShape: [1, 16, 16], pipeline: crop10)])) {
            XCTAssertTrue("\($0)".contains("'num' is not an image input of the network (its image inputs: image)"), "\($0)")
        }
        XCTAssertThrowsError(try InputTransforms(dataShape: [1, 4, 4], pipeline: try ImageTransformPipeline(transforms: [
            .randomCrop(RandomCropOptions(height: 12, width: 12))]))) {
            XCTAssertTrue("\($0)".contains("random_crop"), "\($0)")
        }
    }
}
