import EmberCore
@testable import EmberNN
import XCTest

/// Network summaries (`GraphNetwork.summary()`) and gradient × input attributions
/// (`Model.attributions`), the latter against central finite differences of the model's output.
final class SummaryAttributionTests: XCTestCase {
    func testSummaryCountsShapesParametersFlopsAndMemory() throws {
        let model = try Model(spec: try Architectures.mlp(TabularInputs(numeric: 4), neurons: [8, 5]), task: .multiclass(classes: 3), seed: 1)
        let s = model.network.summary()
        XCTAssertEqual(s.map(\.op), ["linear", "relu", "linear", "relu", "head"])
        XCTAssertEqual(s.map(\.outputShape), [[8], [8], [5], [5], [3]])
        XCTAssertEqual(s.map(\.trainableParameters), [40, 0, 45, 0, 18])
        XCTAssertEqual(s.map(\.flopsPerSample), [64, 8, 80, 5, 30])
        XCTAssertEqual(s.map(\.activationBytesPerSample), [32, 32, 20, 20, 12])
        XCTAssertEqual(model.network.freeze(matching: "linear_0.*"), 2)
        XCTAssertEqual(model.network.summary()[0].frozenParameters, 40)
        XCTAssertEqual(model.network.summary()[0].trainableParameters, 0)
        // A convolution: 2 × (in × kh × kw) per output element.
        let lenet = try Model(spec: try Architectures.lenet(imageShape: [1, 28, 28]), task: .multiclass(classes: 10), seed: 1)
        let conv = try XCTUnwrap(lenet.network.summary().first { $0.op == "conv2d" })
        let perChannel = (conv.trainableParameters - conv.outputShape[0]) / conv.outputShape[0]
        XCTAssertEqual(conv.flopsPerSample, 2 * perChannel * conv.outputShape.reduce(1, *))
    }

    func testAttributionsAreGradientTimesInputByFiniteDifferences() throws {
        var rng = RandomGenerator(seed: 7)
        let x = try Tensor.uniform([12, 3], low: -1, high: 1, rng: &rng)
        let y = try Tensor(shape: [12], data: (0..<12).map { Float($0 % 3) })
        let spec = try Architectures.mlp(TabularInputs(numeric: 3), neurons: [6], activation: .tanh)
        let model = try Model(spec: spec, task: .multiclass(classes: 3), standardize: ["num": [true, true, true]], seed: 2)
        var config = TrainerConfig()
        config.optimizer = .adam(lr: 0.05)
        try Trainer(model: model, config: config).fit(try Dataset(x: x, y: y), epochs: 5)
        let gradsBefore = model.network.parameters.map { $0.grad?.data }
        let rows = [0, 5]
        let sub = try Tensor(shape: [2, 3], data: rows.flatMap { r in (0..<3).map { x.data[r * 3 + $0] } })
        let a = try model.attributions(try Dataset(x: sub), input: "num", outputs: [2, 1], batchSize: 1)
        XCTAssertEqual(a.shape, [2, 3])
        let scaling = try XCTUnwrap(model.inputScaling["num"])
        let h: Float = 1e-2
        for (i, r) in rows.enumerated() {
            for j in 0..<3 {
                var up = (0..<3).map { x.data[r * 3 + $0] }, down = up
                up[j] += h
                down[j] -= h
                let zu = try model.logits(try Dataset(x: try Tensor(shape: [1, 3], data: up))).data[[2, 1][i]]
                let zd = try model.logits(try Dataset(x: try Tensor(shape: [1, 3], data: down))).data[[2, 1][i]]
                let expected = (zu - zd) / (2 * h) * (x.data[r * 3 + j] - scaling.mean[j])
                XCTAssertEqual(a.data[i * 3 + j], expected, accuracy: 2e-3, "row \(r), column \(j)")
            }
        }
        // Parameters' gradients are left as they were.
        XCTAssertEqual(model.network.parameters.map { $0.grad?.data }, gradsBefore)
        XCTAssertThrowsError(try model.attributions(try Dataset(x: sub), input: "num", outputs: [3])) { error in
            XCTAssertTrue("\(error)".contains("the network has 3 output(s)"), "\(error)")
        }
        XCTAssertThrowsError(try model.attributions(try Dataset(x: sub), input: "image", outputs: [0])) { error in
            XCTAssertTrue("\(error)".contains("no input 'image'"), "\(error)")
        }
        XCTAssertThrowsError(try model.attributions(try Dataset(x: sub), input: "num", outputs: [0, 1, 2])) { error in
            XCTAssertTrue("\(error)".contains("needs 1 or 2 output columns"), "\(error)")
        }
    }
}
