// Losses with every option against PyTorch (Fixtures/nn_losses.json, written by
// tools/golden/generate_nn.py): value and gradient; central-difference gradient checks of each
// option. Tolerance: docs/architecture.md#numerics-contract (losses rtol 1e-5, atol 1e-6).
import EmberTestSupport
import EmberCore
@testable import EmberNN
import Foundation
import XCTest

final class LossGoldenTests: XCTestCase {
    var cases: [Case] = []

    override func setUpWithError() throws {
        cases = try Case(try Fixture.load("nn_losses").root).cases("cases")
    }

    /// The expected loss; PyTorch's NaN is written as the string "nan".
    func expectedLoss(_ c: Case) throws -> Float? {
        if let s = try c.any("loss") as? String {
            XCTAssertEqual(s, "nan")
            return nil
        }
        return try c.float("loss")
    }

    func check(_ kind: String, minimum: Int) throws {
        let selected = try cases.filter { try $0.string("kind") == kind }
        XCTAssertGreaterThanOrEqual(selected.count, minimum, kind)
        for c in selected {
            let name = try c.string("name")
            let loss = try fixtureLossFunction(c)
            let output = Variable(try c.tensor("output"), requiresGrad: true)
            let target = try c.tensor("target")
            let value = try loss(output, target)
            XCTAssertEqual(value.shape, [], name)
            if let expected = try expectedLoss(c) {
                assertClose(value.value, Tensor.scalar(expected), .reduction, "\(name): value")
            } else {
                XCTAssertTrue(value.value.data[0].isNaN, "\(name): NaN as in PyTorch, got \(value.value.data[0])")
            }
            try value.backward()
            assertClose(output.grad, try c.tensor("grad"), .reduction, "\(name): d/d output")
            // Default options through the Loss enum give the same value.
            if loss == LossFunction(loss.kind) {
                let viaEnum = try loss.kind(Variable(output.value), target)
                XCTAssertTrue(viaEnum.value == value.value, name)
            }
        }
    }

    func testMSELoss() throws { try check("mse", minimum: 3) }

    func testL1Loss() throws { try check("l1", minimum: 3) }

    /// Class weights (weighted mean), ignore_index (PyTorch's -100 and a class index), sum, and a
    /// batch whose rows are all ignored: NaN for the mean (0/0, as in PyTorch), 0 for the sum, and
    /// a zero gradient either way.
    func testCrossEntropyLoss() throws { try check("cross_entropy", minimum: 12) }

    /// pos_weight as one value and per column, sum, and logits of ±50 (where a naive
    /// log(sigmoid(x)) overflows or loses everything).
    func testBCEWithLogitsLoss() throws { try check("bce_with_logits", minimum: 8) }

    /// Central differences (float32, step 1e-2) for every fixture case with a finite loss.
    func testEveryLossOptionPassesGradientCheck() throws {
        var checked = 0, skipped = 0
        for c in cases {
            guard try expectedLoss(c) != nil else {
                skipped += 1  // NaN (all rows ignored): its gradient, zero, is compared with PyTorch's above
                continue
            }
            let name = try c.string("name")
            let loss = try fixtureLossFunction(c)
            let target = try c.tensor("target")
            try gradientCheck([try c.tensor("output")], name) { v in try loss(v[0], target) }
            checked += 1
        }
        XCTAssertEqual(skipped, 2)
        XCTAssertEqual(checked, cases.count - 2)
        XCTAssertGreaterThanOrEqual(checked, 24)
    }

    /// Only the kept rows receive a gradient; a class weight scales its rows' gradients.
    func testIgnoredRowsGetNoGradient() throws {
        let logits = try Tensor(shape: [3, 3], data: [0.2, -1, 0.5, 1, 2, -0.5, 0.3, 0.1, -0.2])
        let target = try Tensor(shape: [3], data: [2, -100, 0])
        let out = Variable(logits, requiresGrad: true)
        try LossFunction(.crossEntropy, ignoreIndex: -100)(out, target).backward()
        let g = try XCTUnwrap(out.grad).data
        XCTAssertEqual(Array(g[3..<6]), [0, 0, 0])
        XCTAssertTrue(g[0..<3].contains { $0 != 0 } && g[6..<9].contains { $0 != 0 })
    }

    /// NOTE (deliberate differences from PyTorch): Ember has no default ignore_index (PyTorch's is
    /// -100), so a target of -100 is an error unless ignore_index is set; targets of BCE with
    /// logits must lie in [0, 1] (PyTorch does not check); class weights and pos_weight must have
    /// one entry per class / column (or one pos_weight).
    func testLossOptionErrors() throws {
        let logits = Variable(try Tensor(shape: [2, 3], repeating: 0))
        assertEmberError(.invalidArgument, ["[cross_entropy]", "target 1 is -100.0, expected a class index in 0..<3"]) {
            try LossFunction(.crossEntropy)(logits, try Tensor(shape: [2], data: [0, -100]))
        }
        assertEmberError(.shapeMismatch, ["[cross_entropy]", "class weights have 2 entries; expected one per class (3)"]) {
            try LossFunction(.crossEntropy, classWeights: [1, 2])(logits, try Tensor(shape: [2], data: [0, 1]))
        }
        assertEmberError(.shapeMismatch, ["[bce_with_logits]", "pos_weight has 2 entries; expected 1 or one per output column (3)"]) {
            try LossFunction(.bceWithLogits, posWeight: [1, 2])(logits, try Tensor(shape: [2, 3], repeating: 1))
        }
        assertEmberError(.invalidArgument, ["[bce_with_logits]", "target 0 is -0.5"]) {
            try LossFunction(.bceWithLogits)(logits, try Tensor(shape: [2, 3], data: [-0.5, 0, 0, 1, 1, 1]))
        }
        assertEmberError(.invalidArgument, ["[l1_loss]", "empty batch"]) {
            try LossFunction(.l1, reduction: .sum)(Variable(try Tensor.zeros([0])), try Tensor.zeros([0]))
        }
    }
}

/// The Ember loss a fixture case describes (PyTorch's option names; absent options keep the
/// defaults). Shared with LossExtraGoldenTests.
func fixtureLossFunction(_ c: Case) throws -> LossFunction {
    let kind = try c.string("kind")
    guard let loss = Loss(rawValue: kind) else { throw FixtureError.malformed("loss kind \(kind)") }
    guard let reduction = Reduction(rawValue: try c.string("reduction")) else { throw FixtureError.malformed("reduction") }
    func floats(_ key: String) throws -> [Float]? {
        guard c.dict[key] != nil else { return nil }
        guard let a = try c.any(key) as? [NSNumber] else { throw FixtureError.malformed(key) }
        return a.map(\.floatValue)
    }
    func float(_ key: String, _ fallback: Float) throws -> Float { c.dict[key] == nil ? fallback : try c.float(key) }
    var f = LossFunction(loss, reduction: reduction, classWeights: try floats("class_weights"),
                         ignoreIndex: c.dict["ignore_index"] == nil ? nil : try c.int("ignore_index"),
                         posWeight: try floats("pos_weight"), labelSmoothing: try float("label_smoothing", 0),
                         gamma: try float("gamma", 2), alpha: try float("alpha", 0.25))
    f.delta = try float(loss == .smoothL1 ? "beta" : "delta", 1)
    if c.dict["log_input"] != nil { f.logInput = try c.bool("log_input") }
    if c.dict["full"] != nil { f.full = try c.bool("full") }
    f.quantiles = try floats("quantiles") ?? []
    return f
}
