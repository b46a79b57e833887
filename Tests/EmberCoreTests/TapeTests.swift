// The reverse-mode tape: accumulation over several consumers, backward's errors, no-grad mode.
@testable import EmberCore
import EmberTestSupport
import XCTest

final class TapeTests: XCTestCase {
    /// y = relu(x) is used twice by one op (as input and as weight of `linear`), then averaged:
    /// L = (1/n²) Σ_ij Σ_k y_ik y_jk = (1/n²) Σ_k (Σ_i y_ik)², so dL/dx_ik = (2/n²) Σ_j y_jk · [x_ik > 0].
    func testGradientAccumulatesOverTwoUses() throws {
        let xv = try Tensor(shape: [3, 2], data: [0.5, -1.0, 2.0, 0.25, -0.75, 1.5])
        let x = Variable(xv, requiresGrad: true)
        let y = relu(x)
        let loss = try mean(try linear(y, weight: y, bias: nil))
        try loss.backward()
        let n: Float = 3
        let yv = y.value.data
        let colSum = [yv[0] + yv[2] + yv[4], yv[1] + yv[3] + yv[5]]
        var expected = [Float](repeating: 0, count: 6)
        for i in 0..<3 {
            for k in 0..<2 where xv.data[i * 2 + k] > 0 { expected[i * 2 + k] = 2 / (n * n) * colSum[k] }
        }
        let expectedLoss = (colSum[0] * colSum[0] + colSum[1] * colSum[1]) / (n * n)
        assertClose(loss.value.scalarValue, expectedLoss, .reduction, "loss")
        assertClose(x.grad, try Tensor(shape: [3, 2], data: expected), .reduction, "dx summed over both uses")
        // Only one of the two uses would give half the gradient: make sure that is not what we got.
        XCTAssertNotEqual(x.grad?.data[0], expected[0] / 2)
    }

    /// A leaf used by two separate branches (a linear and a masked copy) that are joined later
    /// gets the sum of both branches' gradients.
    func testGradientSumsOverTwoBranches() throws {
        let x = try Tensor(shape: [2, 2], data: [1, 2, -3, 4])
        let w = try Tensor(shape: [1, 2], data: [0.5, -0.25])
        let ones = Variable(try Tensor(shape: [2, 1], data: [1, 1]))
        let mask = try Tensor(shape: [2, 2], data: [2, 2, 2, 2])
        let problems = try gradientMismatches([x, w]) { v in
            let a = try linear(v[0], weight: v[1], bias: nil)         // x·wᵀ, [2, 1]
            let b = try dropout(v[0], mask: mask)                       // 2x, [2, 2]
            let aw = try linear(a, weight: ones, bias: nil)             // [2, 2]
            return try mean(try linear(b, weight: aw, bias: nil))       // joins both branches of x
        }
        XCTAssertEqual(problems, [])
    }

    /// Gradients accumulate (+=) across backward calls until reset, as in PyTorch.
    func testGradientAccumulatesAcrossBackwardCalls() throws {
        let x = Variable(try Tensor(shape: [2], data: [1, 3]), requiresGrad: true)
        try mean(x).backward()
        XCTAssertEqual(x.grad?.data, [0.5, 0.5])
        try mean(x).backward()
        XCTAssertEqual(x.grad?.data, [1, 1])
        x.grad = nil
        try mean(x).backward(seed: .scalar(4))
        XCTAssertEqual(x.grad?.data, [2, 2])
    }

    func testBackwardOnNonScalarThrows() throws {
        let x = Variable(try Tensor(shape: [2, 3], repeating: 1), requiresGrad: true)
        let y = relu(x)
        assertEmberError(.invalidArgument, ["[backward]", "scalar", "[2, 3]"]) { try y.backward() }
        XCTAssertNil(x.grad, "a failed backward leaves gradients alone")
    }

    func testBackwardSeedShapeMismatchThrows() throws {
        let x = Variable(try Tensor(shape: [2, 3], repeating: 1), requiresGrad: true)
        let y = relu(x)
        assertEmberError(.shapeMismatch, ["[backward]", "[3, 2]", "[2, 3]"]) {
            try y.backward(seed: try Tensor(shape: [3, 2], repeating: 1))
        }
    }

    func testBackwardWithoutAnythingToDifferentiateThrows() throws {
        let c = try mean(Variable(try Tensor(shape: [2], data: [1, 2])))
        XCTAssertFalse(c.requiresGrad)
        assertEmberError(.invalidState, ["[backward]"]) { try c.backward() }
    }

    func testWithoutGradientsRecordsNothing() throws {
        let x = Variable(try Tensor(shape: [1, 2], data: [1, -1]), requiresGrad: true)
        XCTAssertTrue(GradientMode.isEnabled)
        let y = GradientMode.withoutGradients { relu(x) }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertTrue(GradientMode.isEnabled, "mode restored after the block")
        // Restored also when the block throws.
        struct Boom: Error {}
        XCTAssertThrowsError(try GradientMode.withoutGradients { throw Boom() })
        XCTAssertTrue(GradientMode.isEnabled)
        XCTAssertTrue(relu(x).requiresGrad)
    }
}
