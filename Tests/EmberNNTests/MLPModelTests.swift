// MLPModel: model-file round trip, determinism, convergence (XOR, linear regression), errors.
import EmberTestSupport
import EmberCore
@testable import EmberNN
import Foundation
import XCTest

final class MLPModelTests: XCTestCase {
    /// n rows of `inputs` uniform columns in [-1, 1) from the engine RNG.
    func uniformRows(_ n: Int, _ inputs: Int, seed: UInt64) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        return try! Tensor(shape: [n, inputs], data: (0..<(n * inputs)).map { _ in rng.uniform(-1, 1) })
    }

    func bits(_ model: MLPModel) -> [[UInt32]] { model.parameters.map { $0.value.data.map(\.bitPattern) } }

    // MARK: Model files

    func testSerializeDeserializeGivesIdenticalModel() throws {
        let x = uniformRows(40, 3, seed: 1)
        let y = try Tensor(shape: [40], data: (0..<40).map { i in 3 * x.data[3 * i] - x.data[3 * i + 2] + 10 })
        let spec = MLPSpec(task: .regression, inputs: 3, neurons: [6, 4], dropout: 0.2,
                           standardize: [true, false, true])
        let model = try MLPModel(spec: spec, seed: 9)
        try model.setTrainingOptions(TrainingOptions(batchSize: 8, optimizer: .adam(lr: 0.01)))
        try model.fit(x: x, y: y, epochs: 3)
        XCTAssertEqual(model.history.count, 3)
        XCTAssertNotEqual(model.targetScaling, .identity(1), "the target scaling is part of what is stored")

        let bytes = model.serialized()
        let back = try MLPModel(serialized: bytes)
        XCTAssertEqual(back.spec, model.spec)
        XCTAssertEqual(back.history, model.history)
        XCTAssertEqual(back.isFitted, true)
        XCTAssertEqual(back.rng, model.rng)
        XCTAssertEqual(back.inputScaling, model.inputScaling)
        XCTAssertEqual(back.targetScaling, model.targetScaling)
        XCTAssertEqual(bits(back), bits(model))
        let xt = uniformRows(17, 3, seed: 2)
        XCTAssertEqual(try back.predict(x: xt).data.map(\.bitPattern), try model.predict(x: xt).data.map(\.bitPattern))
        XCTAssertEqual(back.serialized(), bytes, "writing the loaded model gives the same bytes")
    }

    func testSerializeRoundTripForClassifiers() throws {
        for task in [TaskKind.binary, .multiclass(classes: 3)] {
            let model = try MLPModel(spec: MLPSpec(task: task, inputs: 2, neurons: [4]), seed: 5)
            let back = try MLPModel(serialized: model.serialized())
            XCTAssertEqual(back.spec, model.spec)
            XCTAssertFalse(back.isFitted)
            let x = uniformRows(5, 2, seed: 3)
            let p = try back.predict(x: x)
            XCTAssertEqual(p, try model.predict(x: x))
            XCTAssertEqual(p.shape, [5, task.predictionColumns])
            for r in 0..<5 {
                let rowSum = (0..<task.predictionColumns).reduce(Float(0)) { $0 + p.data[r * task.predictionColumns + $1] }
                XCTAssertEqual(rowSum, 1, accuracy: 1e-6, "probabilities sum to 1")
            }
        }
    }

    func testCorruptModelFilesThrow() throws {
        let model = try MLPModel(spec: MLPSpec(task: .binary, inputs: 2, neurons: [3]), seed: 1)
        let bytes = model.serialized()
        assertEmberError(.corruptData, ["[safetensors]"]) { try MLPModel(serialized: Array(bytes.prefix(bytes.count - 4))) }
        assertEmberError(.corruptData, ["[safetensors]"]) { try MLPModel(serialized: [1, 2, 3]) }
        let plain = Safetensors.encode(tensors: [("w", Tensor.scalar(1))], metadata: [])
        assertEmberError(.corruptData, ["[model]", "not an Ember model"]) { try MLPModel(serialized: plain) }
        func edited(_ from: String, _ to: String) throws -> [UInt8] {
            let (tensors, meta) = try Safetensors.decode(bytes)
            let text = meta["ember"]!
            XCTAssertTrue(text.contains(from), "metadata contains \(from)")
            let names = model.parameters.map(\.name) + ["input.mean", "input.scale", "target.mean", "target.scale"]
            return Safetensors.encode(tensors: names.map { ($0, tensors[$0]!) },
                                      metadata: [("ember", text.replacingOccurrences(of: from, with: to))])
        }
        XCTAssertNoThrow(try MLPModel(serialized: try edited("\"version\":1", "\"version\":1")))
        assertEmberError(.corruptData, ["[model]", "unsupported model file version"]) {
            try MLPModel(serialized: try edited("\"version\":1", "\"version\":2"))
        }
        assertEmberError(.corruptData, ["[model]", "unknown format 'other'"]) {
            try MLPModel(serialized: try edited("\"ember.mlp\"", "\"other\""))
        }
        assertEmberError(.corruptData, ["[model]", "unknown task 'ranking'"]) {
            try MLPModel(serialized: try edited("\"binary\"", "\"ranking\""))
        }
        assertEmberError(.corruptData, ["[model]", "'neurons'"]) {
            try MLPModel(serialized: try edited("\"neurons\":[3]", "\"neurons\":[\"3\"]"))
        }
        // Architecture and stored tensors disagree.
        assertEmberError(.corruptData, ["[model]", "layers.0.weight", "[3, 2]"]) {
            try MLPModel(serialized: try edited("\"neurons\":[3]", "\"neurons\":[5]"))
        }
    }

    // MARK: Determinism

    func trainedModel(seed: UInt64, slices: [Int]) throws -> MLPModel {
        let x = uniformRows(23, 4, seed: 100)
        let y = try Tensor(shape: [23], data: (0..<23).map { Float($0 % 3) })
        let spec = MLPSpec(task: .multiclass(classes: 3), inputs: 4, neurons: [8, 8], dropout: 0.3)
        let model = try MLPModel(spec: spec, seed: seed)
        try model.setTrainingOptions(TrainingOptions(batchSize: 5, shuffle: true, optimizer: .adam(lr: 0.01)))
        for epochs in slices { try model.fit(x: x, y: y, epochs: epochs) }
        return model
    }

    /// Same seed and data → bit-identical parameters (shuffling and dropout use the engine RNG).
    func testSameSeedGivesBitIdenticalParameters() throws {
        let a = try trainedModel(seed: 42, slices: [6])
        let b = try trainedModel(seed: 42, slices: [6])
        XCTAssertEqual(bits(a), bits(b))
        XCTAssertEqual(a.history, b.history)
        XCTAssertEqual(a.rng, b.rng)
        let c = try trainedModel(seed: 43, slices: [6])
        XCTAssertNotEqual(bits(a), bits(c))
        // Training moved the weights away from their initial values.
        XCTAssertNotEqual(bits(a), bits(try MLPModel(spec: a.spec, seed: 42)))
    }

    /// Training in slices continues the optimizer state and RNG: 2 + 4 epochs == 6 epochs.
    func testTrainingInSlicesEqualsOneCall() throws {
        let whole = try trainedModel(seed: 7, slices: [6])
        let sliced = try trainedModel(seed: 7, slices: [2, 4])
        XCTAssertEqual(bits(sliced), bits(whole))
        XCTAssertEqual(sliced.history, whole.history)
    }

    // MARK: Convergence

    func testXORReachesFullTrainingAccuracy() throws {
        let x = try Tensor(shape: [4, 2], data: [0, 0, 0, 1, 1, 0, 1, 1])
        let y = try Tensor(shape: [4], data: [0, 1, 1, 0])
        let model = try MLPModel(spec: MLPSpec(task: .binary, inputs: 2, neurons: [16]), seed: 3)
        try model.setTrainingOptions(TrainingOptions(batchSize: 4, optimizer: .adam(lr: 0.05)))
        let losses = try model.fit(x: x, y: y, epochs: 400)
        XCTAssertLessThan(losses.last!, 0.1 * losses.first!, "loss falls")
        let p = try model.predict(x: x)
        XCTAssertEqual(p.shape, [4, 2])
        for i in 0..<4 {
            // Column 0 is the positive class (y = 1).
            let predicted: Float = p.data[2 * i] > 0.5 ? 1 : 0
            XCTAssertEqual(predicted, y.data[i], "row \(i): p(positive) = \(p.data[2 * i])")
        }
    }

    func testLinearRegressionReachesSmallRMSE() throws {
        let n = 256
        let x = uniformRows(n, 2, seed: 11)
        let y = try Tensor(shape: [n], data: (0..<n).map { 2 * x.data[2 * $0] - 3 * x.data[2 * $0 + 1] + 1 })
        for neurons in [[], [16]] {
            let model = try MLPModel(spec: MLPSpec(task: .regression, inputs: 2, neurons: neurons), seed: 5)
            try model.setTrainingOptions(TrainingOptions(batchSize: 32, optimizer: .adam(lr: 0.02)))
            try model.fit(x: x, y: y, epochs: 150)
            let p = try model.predict(x: x)
            var se = 0.0
            for i in 0..<n { se += pow(Double(p.data[i] - y.data[i]), 2) }
            let rmse = (se / Double(n)).squareRoot()
            XCTAssertLessThan(rmse, 0.05, "neurons \(neurons)")
        }
    }

    // MARK: Errors

    func testFitAndPredictErrors() throws {
        let model = try MLPModel(spec: MLPSpec(task: .multiclass(classes: 3), inputs: 2, neurons: [4]), seed: 1)
        let x = try Tensor(shape: [3, 2], repeating: 0)
        assertEmberError(.shapeMismatch, ["[predict]", "expected x of shape [n, 2], got [3, 3]"]) {
            try model.predict(x: try Tensor(shape: [3, 3], repeating: 0))
        }
        assertEmberError(.shapeMismatch, ["[fit]", "x has 3 rows but y has 2 values"]) {
            try model.fit(x: x, y: try Tensor(shape: [2], repeating: 0), epochs: 1)
        }
        assertEmberError(.invalidArgument, ["[fit]", "y[1] is 3.0; expected a class index in 0..<3"]) {
            try model.fit(x: x, y: try Tensor(shape: [3], data: [0, 3, 1]), epochs: 1)
        }
        assertEmberError(.invalidArgument, ["[fit]", "non-finite value at row 1, column 0"]) {
            try model.fit(x: try Tensor(shape: [3, 2], data: [0, 0, .nan, 0, 0, 0]), y: try Tensor(shape: [3], repeating: 0), epochs: 1)
        }
        assertEmberError(.invalidArgument, ["[batch_size]", "got 0"]) {
            try model.setTrainingOptions(TrainingOptions(batchSize: 0))
        }
        assertEmberError(.invalidArgument, ["[mlp]", "2...1048576 classes, got 1"]) {
            try MLPModel(spec: MLPSpec(task: .multiclass(classes: 1), inputs: 2), seed: 1)
        }
        assertEmberError(.shapeMismatch, ["[mlp]", "standardize has 1 entries"]) {
            try MLPModel(spec: MLPSpec(task: .binary, inputs: 2, standardize: [true]), seed: 1)
        }
        XCTAssertFalse(model.isFitted, "failed fits leave the model unfitted")
    }

    func testDivergedHistoryStillLoads() throws {
        let model = try MLPModel(spec: MLPSpec(task: .regression, inputs: 2, neurons: [3]), seed: 1)
        model.history = [0.5, .infinity, .nan]
        let back = try MLPModel(serialized: model.serialized())
        XCTAssertEqual(back.history.count, 3)
        XCTAssertEqual(back.history[0], 0.5)
        XCTAssertTrue(back.history[1].isNaN, "JSON has no inf: non-finite losses come back as NaN")
        XCTAssertTrue(back.history[2].isNaN)
    }

    func testOversizedNetworkIsAnErrorNotACrash() {
        XCTAssertThrowsError(try MLPModel(spec: MLPSpec(task: .regression, inputs: 1 << 20, neurons: [1 << 20]), seed: 1)) {
            XCTAssertTrue(String(describing: $0).contains("the limit is"), "\($0)")
        }
    }
}
