// Quantile regression (several quantile levels at once) and multilabel models: training,
// predictions, measures, model files and errors. The losses themselves are checked against
// PyTorch in LossExtraGoldenTests.
import EmberCore
@testable import EmberNN
import EmberTestSupport
import Foundation
import XCTest

final class QuantileMultilabelTests: XCTestCase {
    /// x uniform in [-1, 1], y = 100 (2 x + u) + 50 with u uniform in [-1, 1]: the level-q quantile
    /// of y given x is 100 (2 x + 2 q - 1) + 50.
    func noisyLine(_ n: Int, seed: UInt64) throws -> (Tensor, Tensor) {
        var rng = RandomGenerator(seed: seed)
        let x = try Tensor.uniform([n, 1], low: -1, high: 1, rng: &rng)
        let u = try Tensor.uniform([n], low: -1, high: 1, rng: &rng)
        return (x, try Tensor(shape: [n], data: (0..<n).map { 100 * (2 * x.data[$0] + u.data[$0]) + 50 }))
    }

    func quantileModel(_ levels: [Float], standardizeTarget: Bool = true, seed: UInt64 = 1) throws -> Model {
        try Model(spec: try Architectures.mlp(TabularInputs(numeric: 1), neurons: [16]), task: .quantileRegression(quantiles: levels),
                  standardizeTarget: standardizeTarget, seed: seed)
    }

    /// The fitted quantiles cover the shares of the target their levels say, on the target's
    /// scale (the standardisation of the one target applies to every output), and are sorted.
    func testQuantileRegressionLearnsTheQuantiles() throws {
        let (x, y) = try noisyLine(2000, seed: 5)
        let model = try quantileModel([0.1, 0.5, 0.9])
        XCTAssertEqual(model.network.outputShape, [3], "one output per level")
        var config = TrainerConfig()
        config.batchSize = 64
        config.optimizer = .adam(lr: 0.02)
        config.measuresTrain = [.mae]
        let trainer = try Trainer(model: model, config: config)
        XCTAssertEqual(trainer.loss.kind, .quantile, "the task's default loss")
        XCTAssertEqual(trainer.loss.quantiles, [0.1, 0.5, 0.9], "with the model's levels")
        XCTAssertNil(trainer.chainPlan, "quantile models train through the tape")
        let records = try trainer.fit(try Dataset(x: x, y: y), epochs: 80)
        XCTAssertLessThan(try XCTUnwrap(records.last?.trainLoss), try XCTUnwrap(records.first?.trainLoss))
        XCTAssertNotNil(records.last?.trainMetrics["mae"], "regression measures score the median column")
        let (xt, yt) = try noisyLine(2000, seed: 6)
        let p = try model.predict(try Dataset(x: xt))
        XCTAssertEqual(p.shape, [2000, 3])
        for (j, q) in [0.1, 0.5, 0.9].enumerated() {
            let below = (0..<2000).filter { yt.data[$0] < p.data[3 * $0 + j] }.count
            XCTAssertEqual(Double(below) / 2000, q, accuracy: 0.05, "share below the level-\(q) quantile")
        }
        // The median against the truth 100 · 2x + 50 (the noise's range is ±100).
        var err: Float = 0
        for i in 0..<2000 { err += abs(p.data[3 * i + 1] - (200 * xt.data[i] + 50)) }
        XCTAssertLessThan(err / 2000, 15)
        for i in 0..<2000 { XCTAssertLessThanOrEqual(p.data[3 * i], p.data[3 * i + 1]); XCTAssertLessThanOrEqual(p.data[3 * i + 1], p.data[3 * i + 2]) }
    }

    /// Predictions are the raw outputs on the target's scale, sorted within each row (an untrained
    /// network's outputs cross).
    func testQuantilePredictionsAreSortedRawOutputs() throws {
        let (x, y) = try noisyLine(200, seed: 2)
        let model = try quantileModel([0.2, 0.5, 0.8], seed: 4)
        try model.fitScaling(try Dataset(x: x, y: y))
        let s = model.targetScaling
        XCTAssertNotEqual(s.scale[0], 1)
        let z = try model.logits(try Dataset(x: x)), p = try model.predict(try Dataset(x: x))
        var crossing = 0
        for i in 0..<200 {
            let raw = (0..<3).map { z.data[3 * i + $0] * s.scale[0] + s.mean[0] }
            if raw != raw.sorted() { crossing += 1 }
            XCTAssertEqual(Array(p.data[(3 * i)..<(3 * i + 3)]), raw.sorted(), "row \(i)")
        }
        XCTAssertGreaterThan(crossing, 0, "the check needs crossing rows")
    }

    func testResponseColumn() {
        XCTAssertEqual(TaskKind.quantileRegression(quantiles: [0.1, 0.5, 0.9]).responseColumn, 1)
        XCTAssertEqual(TaskKind.quantileRegression(quantiles: [0.5, 0.9]).responseColumn, 0, "0.5 when present")
        XCTAssertEqual(TaskKind.quantileRegression(quantiles: [0.1, 0.3, 0.7, 0.9]).responseColumn, 1, "else the lower middle")
        XCTAssertEqual(TaskKind.quantileRegression(quantiles: [0.1, 0.3, 0.6]).responseColumn, 1)
        XCTAssertEqual(TaskKind.quantileRegression(quantiles: [0.9]).responseColumn, 0)
        XCTAssertEqual(TaskKind.regression.responseColumn, 0)
    }

    /// Three labels of two features; one weight per label.
    func labels(_ n: Int, seed: UInt64) throws -> (Tensor, Tensor) {
        var rng = RandomGenerator(seed: seed)
        let x = try Tensor.uniform([n, 2], low: -1, high: 1, rng: &rng)
        var y: [Float] = []
        for i in 0..<n {
            let a = x.data[2 * i], b = x.data[2 * i + 1]
            y += [a > 0 ? 1 : 0, b > 0.3 ? 1 : 0, a + b > 0 ? 1 : 0]
        }
        return (x, try Tensor(shape: [n, 3], data: y))
    }

    func testMultilabelTrainsWithPosWeightAndHammingAccuracy() throws {
        let (x, y) = try labels(400, seed: 3)
        let (xv, yv) = try labels(200, seed: 4)
        let model = try Model(spec: try Architectures.mlp(TabularInputs(numeric: 2), neurons: [32]), task: .multilabel(labels: 3),
                              classNames: ["a", "b", "c"], seed: 2)
        var config = TrainerConfig()
        config.batchSize = 32
        config.optimizer = .adam(lr: 0.02)
        config.loss = LossFunction(.bceWithLogits, posWeight: [1, 2, 1])
        config.measuresValid = [.hammingAccuracy]
        let trainer = try Trainer(model: model, config: config)
        XCTAssertNil(trainer.chainPlan, "multilabel models train through the tape")
        let records = try trainer.fit(try Dataset(x: x, y: y), valid: try Dataset(x: xv, y: yv), epochs: 40)
        let hamming = try XCTUnwrap(records.last?.validMetrics["hamming_accuracy"])
        XCTAssertGreaterThan(hamming, 0.93)
        let p = try model.predict(try Dataset(x: xv))
        XCTAssertEqual(p.shape, [200, 3])
        XCTAssertTrue(p.data.allSatisfy { $0 >= 0 && $0 <= 1 }, "probabilities")
        let z = try model.logits(try Dataset(x: xv))
        for i in 0..<600 { XCTAssertEqual(p.data[i], sigmoid(z.data[i]), accuracy: 1e-7) }
        // Hamming accuracy by hand: the share of (row, label) pairs on the truth's side of 0.5.
        let correct = (0..<600).filter { (p.data[$0] >= 0.5) == (yv.data[$0] == 1) }.count
        XCTAssertEqual(try Metric.hammingAccuracy.score(p, yv, task: model.task), Double(correct) / 600, accuracy: 1e-12)
    }

    /// The task, its levels or label count, the target scaling and the weights survive the file.
    func testModelFilesKeepTheTask() throws {
        let (x, y) = try noisyLine(50, seed: 8)
        let q = try quantileModel([0.05, 0.5, 0.95])
        var config = TrainerConfig()
        config.batchSize = 10
        try Trainer(model: q, config: config).fit(try Dataset(x: x, y: y), epochs: 2)
        let qCopy = try Model(serialized: q.serialized())
        XCTAssertEqual(qCopy.task, .quantileRegression(quantiles: [0.05, 0.5, 0.95]))
        XCTAssertEqual(qCopy.targetScaling, q.targetScaling)
        XCTAssertEqual(try qCopy.predict(try Dataset(x: x)).data, try q.predict(try Dataset(x: x)).data)

        let (xm, ym) = try labels(20, seed: 1)
        let m = try Model(spec: try Architectures.mlp(TabularInputs(numeric: 2), neurons: [4]), task: .multilabel(labels: 3),
                          classNames: ["a", "b", "c"], seed: 3)
        try Trainer(model: m, config: config).fit(try Dataset(x: xm, y: ym), epochs: 1)
        let mCopy = try Model(serialized: m.serialized())
        XCTAssertEqual(mCopy.task, .multilabel(labels: 3))
        XCTAssertEqual(mCopy.classNames, ["a", "b", "c"])
        XCTAssertEqual(try mCopy.predict(try Dataset(x: xm)).data, try m.predict(try Dataset(x: xm)).data)

        // The levels are in the model metadata; levels that are not increasing make a corrupt file.
        let (tensors, metadata) = try Safetensors.decode(q.serialized())
        let meta = try JSONValue.parse(try XCTUnwrap(metadata["ember.model"]))
        XCTAssertEqual(meta["task"]?.stringValue, "quantile_regression")
        XCTAssertEqual(meta["quantiles"]?.arrayValue?.compactMap(\.numberValue).map(Float.init), [0.05, 0.5, 0.95])
        var edited = metadata
        edited["ember.model"] = meta.text.replacingOccurrences(of: "\"quantiles\":[", with: "\"quantiles\":[0.7,")
        XCTAssertNotEqual(edited["ember.model"], metadata["ember.model"])
        assertEmberError(.corruptData, ["[model] task 'quantile_regression': [quantiles] levels must be strictly increasing"]) {
            _ = try Model(tensors: tensors, metadata: edited)
        }
    }

    func testErrorsNameTheArgument() throws {
        let spec = try Architectures.mlp(TabularInputs(numeric: 1), neurons: [])
        assertEmberError(.invalidArgument, ["[quantiles] levels must be strictly increasing (sorted, without repeats); level 1 (0-based) is 0.5 after 0.5"]) {
            _ = try Model(spec: spec, task: .quantileRegression(quantiles: [0.5, 0.5]), seed: 1)
        }
        assertEmberError(.invalidArgument, ["[quantiles] levels must be strictly increasing", "level 1 (0-based) is 0.1 after 0.9"]) {
            _ = try Model(spec: spec, task: .quantileRegression(quantiles: [0.9, 0.1]), seed: 1)
        }
        assertEmberError(.invalidArgument, ["[quantiles] level 1 (0-based) is 1.0; quantile levels must lie in (0, 1)"]) {
            _ = try Model(spec: spec, task: .quantileRegression(quantiles: [0.5, 1]), seed: 1)
        }
        assertEmberError(.invalidArgument, ["[quantiles] needs at least one quantile level"]) {
            _ = try Model(spec: spec, task: .quantileRegression(quantiles: []), seed: 1)
        }
        assertEmberError(.invalidArgument, ["[labels] a multilabel task needs at least 2 labels, got 1 (one label is a binary task)"]) {
            _ = try Model(spec: spec, task: .multilabel(labels: 1), seed: 1)
        }
        let m = try Model(spec: spec, task: .multilabel(labels: 2), seed: 1)
        let x = try Tensor(shape: [2, 1], data: [0, 1])
        let trainer = try Trainer(model: m, config: TrainerConfig())
        assertEmberError(.invalidArgument, ["[fit] target row 1, label 0 (0-based) is 2.0; expected 0 or 1"]) {
            try trainer.fit(try Dataset(x: x, y: try Tensor(shape: [2, 2], data: [1, 0, 2, 1])), epochs: 1)
        }
        assertEmberError(.shapeMismatch, ["[fit] the target has 2 values; a multilabel model needs 2 per row (2 rows)"]) {
            try trainer.fit(try Dataset(x: x, y: try Tensor(shape: [2], data: [1, 0])), epochs: 1)
        }
        assertEmberError(.invalidArgument, ["[mse] is a regression measure; the model is a multilabel model"]) {
            _ = try Metric.mse.score(try Tensor(shape: [2, 2], repeating: 0.5), try Tensor(shape: [2, 2], repeating: 1), task: m.task)
        }
        assertEmberError(.invalidArgument, ["[hamming_accuracy] is a multilabel measure; the model is a quantile_regression model"]) {
            _ = try Metric.hammingAccuracy.score(try Tensor(shape: [2, 1], repeating: 0.5), try Tensor(shape: [2], repeating: 1),
                                                 task: .quantileRegression(quantiles: [0.5]))
        }
    }
}
