// Losses, optimizer steps and a whole MLP training step against PyTorch (Fixtures/nn.json,
// written by tools/golden/generate.py). Tolerances: docs/architecture.md#numerics-contract.
import EmberTestSupport
import EmberCore
@testable import EmberNN
import Foundation
import XCTest

/// Builds the optimizer configuration a fixture describes (PyTorch's hyperparameter names).
func optimizerConfig(_ c: Case) throws -> OptimizerConfig {
    switch try c.string("kind") {
    case "sgd":
        return .sgd(lr: try c.double("lr"), momentum: try c.double("momentum"), dampening: try c.double("dampening"),
                    weightDecay: try c.double("weight_decay"), nesterov: try c.bool("nesterov"))
    case "adam":
        return .adam(lr: try c.double("lr"), beta1: try c.double("beta1"), beta2: try c.double("beta2"),
                     eps: try c.double("eps"), weightDecay: try c.double("weight_decay"))
    case "adamw":
        return .adamw(lr: try c.double("lr"), beta1: try c.double("beta1"), beta2: try c.double("beta2"),
                      eps: try c.double("eps"), weightDecay: try c.double("weight_decay"))
    case let other:
        throw FixtureError.malformed("optimizer kind \(other)")
    }
}

final class GoldenNNTests: XCTestCase {
    var fixture: Fixture!

    override func setUpWithError() throws {
        fixture = try Fixture.load("nn")
    }

    // MARK: Losses

    func checkLoss(_ kind: String, _ fn: (Variable, Tensor) throws -> Variable, viaEnum loss: Loss) throws {
        let cases = try Case(fixture.root["losses"]).cases(kind)
        XCTAssertGreaterThanOrEqual(cases.count, 2, kind)
        for c in cases {
            let name = "\(kind)[\(try c.string("name"))]"
            let target = try c.tensor("target")
            let out = Variable(try c.tensor("output"), requiresGrad: true)
            let l = try fn(out, target)
            XCTAssertEqual(l.shape, [], name)
            XCTAssertTrue(l.value.data[0].isFinite, name)
            assertClose(l.value, try c.tensor("loss"), .reduction, "\(name) value")
            try l.backward()
            assertClose(out.grad, try c.tensor("grad"), .reduction, "\(name) d/d output")
            // The Loss enum dispatches to the same function.
            let viaEnum = try loss(Variable(out.value), target)
            XCTAssertEqual(viaEnum.value, l.value, name)
        }
    }

    func testMSELoss() throws { try checkLoss("mse", mseLoss, viaEnum: .mse) }

    func testCrossEntropyLoss() throws { try checkLoss("cross_entropy", crossEntropyLoss, viaEnum: .crossEntropy) }

    func testBCEWithLogitsLoss() throws { try checkLoss("bce_with_logits", bceWithLogitsLoss, viaEnum: .bceWithLogits) }

    // MARK: Optimizers

    func testOptimizerStepsMatchTorch() throws {
        let cases = try Case(fixture.root).cases("optimizers")
        XCTAssertEqual(Set(try cases.map { try $0.string("name") }),
                       ["sgd", "sgd_momentum_wd", "sgd_nesterov", "adam", "adam_wd", "adamw"])
        for c in cases {
            let name = try c.string("name")
            let specs = try c.cases("params")
            let params = try specs.map { Parameter(try $0.tensor("value"), name: try $0.string("name")) }
            let optimizer = try optimizerConfig(try Case(c.any("config"))).make(params)
            let grads = try specs.map { s -> [Tensor] in
                guard let a = try s.any("grads") as? [Any] else { throw FixtureError.malformed("grads") }
                return try a.map(tensorFrom)
            }
            let after = try specs.map { s -> [Tensor] in
                guard let a = try s.any("after") as? [Any] else { throw FixtureError.malformed("after") }
                return try a.map(tensorFrom)
            }
            for step in 0..<5 {
                for (i, p) in params.enumerated() { p.variable.grad = grads[i][step] }
                try optimizer.step()
                for (i, p) in params.enumerated() {
                    // The update moved the parameter (so the comparison below is not vacuous).
                    XCTAssertNotEqual(p.value, step == 0 ? try specs[i].tensor("value") : after[i][step - 1])
                    assertClose(p.value, after[i][step], .optimizer, "\(name) \(p.name) after step \(step + 1)")
                }
            }
        }
    }

    /// A parameter without a gradient is left alone (and gets no optimizer state).
    func testOptimizerSkipsParametersWithoutGradient() throws {
        for config in [OptimizerConfig.sgd(lr: 0.1, momentum: 0.9), .adam(), .adamw()] {
            let p = Parameter(try Tensor(shape: [2], data: [1, 2]), name: "p")
            let q = Parameter(try Tensor(shape: [2], data: [3, 4]), name: "q")
            q.variable.grad = try Tensor(shape: [2], data: [1, 1])
            try config.make([p, q]).step()
            XCTAssertEqual(p.value.data, [1, 2], "\(config)")
            XCTAssertNotEqual(q.value.data, [3, 4], "\(config)")
        }
    }

    // MARK: A whole training step

    func testMLPTrainingStepMatchesTorch() throws {
        let m = try Case(fixture.root["mlp_step"])
        let x = try m.tensor("x"), y = try m.tensor("y")
        let initial = try Case(m.any("initial"))
        let steps = try m.cases("steps")
        XCTAssertEqual(try steps.map { try $0.string("optimizer") }, ["sgd", "adam"])
        for s in steps {
            let name = try s.string("optimizer")
            var rng = RandomGenerator(seed: 0)
            let network = try MLP(inputs: 3, neurons: [5], outputs: try m.int("classes"), dropout: 0, rng: &rng)
            XCTAssertEqual(network.parameters.map(\.name),
                           ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"])
            for p in network.parameters {
                let t = try initial.tensor(p.name)
                XCTAssertEqual(t.shape, p.value.shape, "\(p.name) has nn.Linear's shape")
                p.value = t
            }
            let optimizer = try optimizerConfig(try Case(s.any("config"))).make(network.parameters)
            let logits = try network(Variable(x), training: false, rng: &rng)
            assertClose(logits.value, try s.tensor("logits"), .reduction, "\(name): logits")
            let loss = try crossEntropyLoss(logits, y)
            assertClose(loss.value, try s.tensor("loss"), .reduction, "\(name): loss")
            try loss.backward()
            let grads = try Case(s.any("grads")), after = try Case(s.any("after"))
            for p in network.parameters {
                assertClose(p.variable.grad, try grads.tensor(p.name), .reduction, "\(name): grad \(p.name)")
            }
            try optimizer.step()
            for p in network.parameters {
                XCTAssertNotEqual(p.value, try initial.tensor(p.name), "\(name): \(p.name) moved")
                assertClose(p.value, try after.tensor(p.name), .optimizer, "\(name): \(p.name) after the step")
            }
        }
    }
}
