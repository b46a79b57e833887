// Huber, smooth L1, label smoothing (cross-entropy and BCE), softmax and sigmoid focal losses,
// the quantile loss and multilabel BCE against PyTorch (Fixtures/nn_losses_extra.json, written by tools/golden/generate_losses.py):
// value and gradient, and central-difference gradient checks. Tolerance:
// docs/architecture.md#numerics-contract (losses rtol 1e-5, atol 1e-6).
import EmberTestSupport
import EmberCore
@testable import EmberNN
import Foundation
import XCTest

final class LossExtraGoldenTests: XCTestCase {
    var cases: [Case] = []

    override func setUpWithError() throws {
        cases = try Case(try Fixture.load("nn_losses_extra").root).cases("cases")
    }

    func check(_ kind: String, minimum: Int, named prefix: String = "") throws {
        let selected = try cases.filter { try $0.string("kind") == kind && $0.string("name").hasPrefix(prefix) }
        XCTAssertGreaterThanOrEqual(selected.count, minimum, kind)
        for c in selected {
            let name = try c.string("name")
            let loss = try fixtureLossFunction(c)
            let output = Variable(try c.tensor("output"), requiresGrad: true)
            let target = try c.tensor("target")
            let value = try loss(output, target)
            assertClose(value.value, Tensor.scalar(try c.float("loss")), .reduction, "\(name): value")
            try value.backward()
            assertClose(output.grad, try c.tensor("grad"), .reduction, "\(name): d/d output")
            try gradientCheck([try c.tensor("output")], name) { v in try loss(v[0], target) }
        }
    }

    func testHuberLoss() throws { try check("huber", minimum: 6) }

    /// beta = 0 is the L1 loss, as in PyTorch.
    func testSmoothL1Loss() throws { try check("smooth_l1", minimum: 6) }

    /// With class weights (the smoothing term weighted per class), ignore_index and sum.
    func testCrossEntropyWithLabelSmoothing() throws { try check("cross_entropy", minimum: 6) }

    /// Two-class label smoothing on one logit: targets y (1 - ε) + ε / 2, also with pos_weight.
    func testBCEWithLabelSmoothing() throws { try check("bce_with_logits", minimum: 3) }

    /// gamma 0 equals cross-entropy; class weights; confident rows (p_y near 1, where (1-p)^(γ-1) is large).
    func testFocalLoss() throws {
        try check("focal", minimum: 7)
        let c = try XCTUnwrap(cases.first { try $0.string("name") == "focal_gamma0.0" })
        let logits = try c.tensor("output"), target = try c.tensor("target")
        let focal = try LossFunction(.focal, gamma: 0)(Variable(logits), target)
        let ce = try LossFunction(.crossEntropy)(Variable(logits), target)
        XCTAssertEqual(focal.value.data[0], ce.value.data[0], accuracy: 1e-6)
    }

    /// PyTorch's poisson_nll_loss: log-rate and rate outputs, Stirling's term, mean and sum.
    func testPoissonNLLLoss() throws {
        try check("poisson_nll", minimum: 8)
        var f = LossFunction(.poissonNLL)
        f.logInput = true
        assertEmberError(.invalidArgument, ["[poisson_nll_loss]", "target 1 is -1.0, expected a count >= 0"]) {
            try f(Variable(try Tensor(shape: [2, 1], data: [0, 0])), try Tensor(shape: [2], data: [1, -1]))
        }
    }

    /// A model with the exp output link predicts rates: exp of the network's output.
    func testExpOutputLinkPredictsRates() throws {
        let model = try Model(spec: try Architectures.mlp(TabularInputs(numeric: 1), neurons: []), task: .regression,
                              standardizeTarget: false, seed: 1)
        let x = try Tensor(shape: [3, 1], data: [0.5, -1, 2])
        let raw = try model.predict(try Dataset(x: x))
        model.outputLink = .exp
        let rates = try model.predict(try Dataset(x: x))
        for (r, z) in zip(rates.data, raw.data) { XCTAssertEqual(r, expf(z), accuracy: 1e-6) }
        let copy = try Model(serialized: model.serialized())
        XCTAssertEqual(copy.outputLink, .exp, "stored in the model file")
        let standardized = try Model(spec: try Architectures.mlp(TabularInputs(numeric: 1), neurons: []), task: .regression, seed: 1)
        standardized.outputLink = .exp
        XCTAssertEqual(standardized.outputLink, .identity, "a standardised target keeps the identity link")
    }

    /// The quantile (pinball) loss of several levels at once against torch ops: 1, 3 and 4 levels,
    /// mean and sum, and outputs equal to their target (gradient 0.5 - q, as torch.maximum's).
    func testQuantileLoss() throws {
        try check("quantile", minimum: 4)
        let out = Variable(try Tensor(shape: [2, 2], data: [0, 1, 2, 3]))
        let y = try Tensor(shape: [2], data: [1, 1])
        assertEmberError(.invalidArgument, ["[quantile_loss]", "no quantile levels are set"]) { try LossFunction(.quantile)(out, y) }
        var f = LossFunction(.quantile)
        f.quantiles = [0.5, 1]
        assertEmberError(.invalidArgument, ["[quantile_loss]", "quantile level 1 is 1.0; expected a level in (0, 1)"]) { try f(out, y) }
        f.quantiles = [0.1, 0.5, 0.9]
        assertEmberError(.shapeMismatch, ["[quantile_loss]", "expected an output [batch, 3] (one column per quantile level), got [2, 2]"]) { try f(out, y) }
        f.quantiles = [0.1, 0.9]
        assertEmberError(.shapeMismatch, ["[quantile_loss]", "expected one target per row (2), got 3"]) {
            try f(out, try Tensor(shape: [3], data: [1, 1, 1]))
        }
    }

    /// Multilabel BCE: logits [n, K] against 0/1 targets [n, K], nn.BCEWithLogitsLoss with one
    /// pos_weight per label (mean and sum) and without.
    func testMultilabelBCE() throws { try check("bce_with_logits", minimum: 3, named: "bce_multilabel") }

    /// torchvision's sigmoid_focal_loss: gamma, alpha (and none), soft targets, sum.
    func testSigmoidFocalLoss() throws { try check("sigmoid_focal", minimum: 5) }

    func testOptionErrors() throws {
        let out = Variable(try Tensor(shape: [2, 1], data: [0.5, -1]))
        let t = try Tensor(shape: [2, 1], data: [1, 0])
        assertEmberError(.invalidArgument, ["[huber_loss]", "delta must be a finite number > 0, got 0.0"]) {
            try LossFunction(.huber, delta: 0)(out, t)
        }
        assertEmberError(.invalidArgument, ["[sigmoid_focal]", "gamma must be a finite number >= 0, got -1.0"]) {
            try LossFunction(.sigmoidFocal, gamma: -1)(out, t)
        }
        assertEmberError(.invalidArgument, ["[bce_with_logits]", "label_smoothing must be in [0, 1], got 1.5"]) {
            try LossFunction(.bceWithLogits, labelSmoothing: 1.5)(out, t)
        }
        assertEmberError(.invalidArgument, ["[focal]", "target 1 is 3.0, expected a class index in 0..<2"]) {
            try LossFunction(.focal)(Variable(try Tensor(shape: [2, 2], repeating: 0)), try Tensor(shape: [2], data: [0, 3]))
        }
    }

    /// The trainer trains with the new losses (through the tape, not the compiled step).
    func testTrainerTrainsWithEveryNewLoss() throws {
        let x = try Tensor(shape: [8, 2], data: (0..<16).map { Float($0 % 5) / 4 - 0.5 })
        let ramp: [Float] = (0..<8).map { Float($0) / 8 }
        let two: [Float] = (0..<8).map { Float($0 % 2) }
        let three: [Float] = (0..<8).map { Float($0 % 3) }
        let runs: [(TaskKind, LossFunction, [Float])] = [
            (.regression, LossFunction(.huber, delta: 0.5), ramp),
            (.regression, LossFunction(.smoothL1, delta: 0.2), ramp),
            (.regression, LossFunction(.poissonNLL), ramp.map { $0 * 8 }),
            (.binary, LossFunction(.sigmoidFocal), two),
            (.binary, LossFunction(.bceWithLogits, labelSmoothing: 0.1), two),
            (.multiclass(classes: 3), LossFunction(.focal, gamma: 1), three),
            (.multiclass(classes: 3), LossFunction(.crossEntropy, labelSmoothing: 0.2), three),
        ]
        for (task, loss, y) in runs {
            let model = try Model(spec: try Architectures.mlp(TabularInputs(numeric: 2), neurons: [8]), task: task,
                                  standardizeTarget: loss.kind != .poissonNLL, seed: 1)  // counts stay counts
            var config = TrainerConfig()
            config.batchSize = 4
            config.loss = loss
            config.optimizer = .adam(lr: 0.05)
            let records = try Trainer(model: model, config: config).fit(try Dataset(x: x, y: try Tensor(shape: [8], data: y)), epochs: 30)
            let first = try XCTUnwrap(records.first?.trainLoss), last = try XCTUnwrap(records.last?.trainLoss)
            XCTAssertLessThan(last, first, "\(loss.kind.rawValue) trains")
        }
    }
}
