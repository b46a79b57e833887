// Loss gradient checks (central differences, float32) and loss argument errors.
import EmberTestSupport
import EmberCore
@testable import EmberNN
import XCTest

final class LossTests: XCTestCase {
    var rng = RandomGenerator(seed: 77)

    func testMSEGradient() throws {
        let out = randomTensor([6, 1], &rng, -2, 2)
        let target = randomTensor([6], &rng, -2, 2)
        try gradientCheck([out], "mse_loss") { v in try mseLoss(v[0], target) }
    }

    func testCrossEntropyGradient() throws {
        let out = randomTensor([5, 4], &rng, -3, 3)
        let target = try Tensor(shape: [5], data: [0, 3, 2, 1, 3])
        try gradientCheck([out], "cross_entropy") { v in try crossEntropyLoss(v[0], target) }
    }

    func testBCEWithLogitsGradient() throws {
        let out = randomTensor([6, 1], &rng, -4, 4)
        let target = try Tensor(shape: [6], data: [1, 0, 0, 1, 0.3, 0.8])
        try gradientCheck([out], "bce_with_logits") { v in try bceWithLogitsLoss(v[0], target) }
    }

    /// Losses chained after a linear layer: the gradient reaches weights and inputs.
    func testLossThroughLinearGradient() throws {
        let x = randomTensor([4, 3], &rng), w = randomTensor([2, 3], &rng), b = randomTensor([2], &rng)
        let target = try Tensor(shape: [4], data: [1, 0, 1, 1])
        try gradientCheck([x, w, b], "cross_entropy(linear)") { v in
            try crossEntropyLoss(try linear(v[0], weight: v[1], bias: v[2]), target)
        }
    }

    func testLossArgumentErrors() throws {
        let one = Variable(try Tensor(shape: [3, 1], data: [0.1, 0.2, 0.3]))
        let two = Variable(try Tensor(shape: [3, 2], repeating: 0))
        assertEmberError(.shapeMismatch, ["[mse_loss]", "output [3, 2] has 6 elements but the target [3] has 3"]) {
            try mseLoss(two, try Tensor(shape: [3], repeating: 0))
        }
        assertEmberError(.shapeMismatch, ["[mse_loss]", "output [3, 1] has 3 elements but the target [4] has 4"]) {
            try mseLoss(one, try Tensor(shape: [4], repeating: 0))
        }
        assertEmberError(.shapeMismatch, ["[cross_entropy]", "rank 2", "[6]"]) {
            try crossEntropyLoss(Variable(try Tensor(shape: [6], repeating: 0)), try Tensor(shape: [6], repeating: 0))
        }
        assertEmberError(.invalidArgument, ["[cross_entropy]", "target 1 is 2.0, expected a class index in 0..<2"]) {
            try crossEntropyLoss(two, try Tensor(shape: [3], data: [0, 2, 1]))
        }
        assertEmberError(.invalidArgument, ["[cross_entropy]", "target 0 is 0.5"]) {
            try crossEntropyLoss(two, try Tensor(shape: [3], data: [0.5, 1, 1]))
        }
        assertEmberError(.invalidArgument, ["[bce_with_logits]", "target 2 is 1.5, expected a value in [0, 1]"]) {
            try bceWithLogitsLoss(one, try Tensor(shape: [3], data: [0, 1, 1.5]))
        }
        assertEmberError(.invalidArgument, ["[mse_loss]", "empty batch"]) {
            try mseLoss(Variable(try Tensor(shape: [0, 1], repeating: 0)), try Tensor(shape: [0], repeating: 0))
        }
    }

    func testSigmoidIsStableAndSymmetric() {
        for x: Float in [-100, -20, -1, 0, 0.5, 20, 100] {
            let s = sigmoid(x)
            XCTAssertTrue(s.isFinite && s >= 0 && s <= 1, "sigmoid(\(x))")
            XCTAssertEqual(s + sigmoid(-x), 1, accuracy: 1e-6)
        }
        XCTAssertEqual(sigmoid(0), 0.5)
        XCTAssertGreaterThan(sigmoid(-100), 0, "no underflow to 0 at -100")
    }
}
