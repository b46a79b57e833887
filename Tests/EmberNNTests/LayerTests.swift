// Linear initialisation (statistically: PyTorch's RNG cannot be matched), MLP structure,
// and optimizer configuration errors.
import EmberTestSupport
import EmberCore
@testable import EmberNN
import Foundation
import XCTest

final class LayerTests: XCTestCase {
    /// Weights and bias uniform in ±1/√in: inside the bound, mean ≈ 0, variance ≈ bound²/3.
    func testLinearLayerInitialisationStatistics() throws {
        var rng = RandomGenerator(seed: 31)
        for (inF, outF) in [(64, 256), (10, 2000)] {
            let layer = try Linear(inF, outF, rng: &rng)
            layer.assignNames(prefix: "fc")
            let bias = try XCTUnwrap(layer.bias)
            XCTAssertEqual(layer.weight.name, "fc.weight")
            XCTAssertEqual(bias.name, "fc.bias")
            XCTAssertEqual(layer.weight.value.shape, [outF, inF])
            XCTAssertEqual(bias.value.shape, [outF])
            let bound = 1 / Double(inF).squareRoot()
            let w = layer.weight.value.data.map(Double.init)
            let n = Double(w.count)
            XCTAssertTrue(w.allSatisfy { abs($0) <= bound }, "weights within ±1/sqrt(\(inF))")
            XCTAssertTrue(bias.value.data.allSatisfy { abs(Double($0)) <= bound }, "bias within the bound")
            let mean = w.reduce(0, +) / n
            let variance = w.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / (n - 1)
            let expectedVariance = bound * bound / 3
            // sd of the mean = sqrt(b²/3 / n); allow 5 sd. Variance of a uniform's sample variance:
            // (b⁴/5 - b⁴/9)/n = 4b⁴/(45 n); allow 5 sd.
            XCTAssertEqual(mean, 0, accuracy: 5 * (expectedVariance / n).squareRoot(), "weight mean")
            XCTAssertEqual(variance, expectedVariance,
                           accuracy: 5 * (4 * pow(bound, 4) / (45 * n)).squareRoot(), "weight variance")
            // The support is used: near both ends of the interval, not a narrower distribution.
            XCTAssertGreaterThan(w.max()!, 0.99 * bound)
            XCTAssertLessThan(w.min()!, -0.99 * bound)
            // Bias and weights are not all the same stream value repeated.
            XCTAssertGreaterThan(Set(bias.value.data).count, outF / 2)
        }
    }

    func testLinearLayerIsDeterministicPerSeed() throws {
        var a = RandomGenerator(seed: 1), b = RandomGenerator(seed: 1), c = RandomGenerator(seed: 2)
        let la = try Linear(3, 4, rng: &a)
        let lb = try Linear(3, 4, rng: &b)
        let lc = try Linear(3, 4, rng: &c)
        XCTAssertEqual(la.weight.value, lb.weight.value)
        XCTAssertEqual(la.bias?.value, lb.bias?.value)
        XCTAssertNotEqual(la.weight.value, lc.weight.value)
    }

    func testLinearLayerErrors() throws {
        var rng = RandomGenerator(seed: 1)
        assertEmberError(.invalidArgument, ["[linear]", "got 0 and 3"]) {
            try Linear(0, 3, rng: &rng)
        }
        let layer = try? Linear(3, 4, rng: &rng)
        let net = Sequential([try Dropout(0.1), try XCTUnwrap(layer)])
        net.assignNames(prefix: "blocks")
        var ctx = ForwardContext(training: false)
        assertEmberError(.shapeMismatch, ["[linear 'blocks.1']", "expected input with 3 features, got 5", "[2, 5]"]) {
            try net(Variable(try Tensor.zeros([2, 5])), &ctx)
        }
    }

    func testMLPStructureAndForward() throws {
        var rng = RandomGenerator(seed: 4)
        let net = try MLP(inputs: 3, neurons: [8, 6], outputs: 2, dropout: 0.5, rng: &rng)
        XCTAssertEqual(net.parameters.map(\.name), ["layers.0.weight", "layers.0.bias", "layers.1.weight",
                                                    "layers.1.bias", "layers.2.weight", "layers.2.bias"])
        XCTAssertEqual(net.parameters.map(\.value.shape), [[8, 3], [8], [6, 8], [6], [2, 6], [2]])
        let x = Variable(try Tensor(shape: [5, 3], data: (0..<15).map { Float($0) / 7 - 1 }))
        // Evaluation mode is deterministic and draws nothing from the RNG.
        let before = rng
        let e1 = try net(x, training: false, rng: &rng).value
        let e2 = try net(x, training: false, rng: &rng).value
        XCTAssertEqual(e1, e2)
        XCTAssertEqual(rng, before)
        XCTAssertEqual(e1.shape, [5, 2])
        // Training mode applies dropout (draws from the RNG, changes the output).
        let t1 = try net(x, training: true, rng: &rng).value
        XCTAssertNotEqual(rng, before)
        XCTAssertNotEqual(t1, e1)
        // A linear model (no hidden layers) is one layer.
        let lin = try MLP(inputs: 3, neurons: [], outputs: 1, dropout: 0, rng: &rng)
        XCTAssertEqual(lin.layers.count, 1)
        assertEmberError(.invalidArgument, ["[mlp]", "dropout", "got 1.0"]) {
            try MLP(inputs: 3, neurons: [4], outputs: 1, dropout: 1, rng: &rng)
        }
    }

    func testOptimizerConfigErrors() {
        assertEmberError(.invalidArgument, ["[opt.lr]", "got -1.0"]) { try OptimizerConfig.sgd(lr: -1).make([]) }
        assertEmberError(.invalidArgument, ["[opt.lr]", "must be finite, got nan"]) { try OptimizerConfig.adam(lr: .nan).make([]) }
        assertEmberError(.invalidArgument, ["[opt.weight_decay]", "got -0.1"]) {
            try OptimizerConfig.adamw(weightDecay: -0.1).make([])
        }
        assertEmberError(.invalidArgument, ["[sgd]", "nesterov needs momentum > 0 and dampening = 0"]) {
            try OptimizerConfig.sgd(lr: 0.1, nesterov: true).make([])
        }
        assertEmberError(.invalidArgument, ["[opt.momentum]", "must be >= 0, got -0.5"]) {
            try OptimizerConfig.sgd(lr: 0.1, momentum: -0.5).make([])
        }
        assertEmberError(.invalidArgument, ["[opt.beta2]", "must be in [0, 1), got 1.0"]) {
            try OptimizerConfig.adam(beta2: 1).make([])
        }
        assertEmberError(.invalidArgument, ["[opt.eps]", "must be >= 0"]) { try OptimizerConfig.adamw(eps: -1).make([]) }
        assertEmberError(.invalidArgument, ["[rmsprop]", "unknown hyperparameter 'beta1'"]) {
            try OptimizerConfig(.rmsprop, ["beta1": 0.9]).make([])
        }
        assertEmberError(.invalidArgument, ["[opt.amsgrad]", "must be 0 or 1"]) {
            try OptimizerConfig(.adam, ["amsgrad": 2]).make([])
        }
    }
}
