// Forward and backward of the EmberCore ops against PyTorch (Fixtures/core.json, written by
// tools/golden/generate.py). Tolerances: docs/architecture.md#numerics-contract.
@testable import EmberCore
import EmberTestSupport
import Foundation
import XCTest

final class GoldenCoreTests: XCTestCase {
    var fixture: Fixture!

    override func setUpWithError() throws {
        fixture = try Fixture.load("core")
    }

    func section(_ key: String) throws -> Case { try Case(fixture.root[key]) }
    func sections(_ key: String) throws -> [Case] { try Case(fixture.root).cases(key) }

    /// The fixture loader must hand the tests exactly PyTorch's float32 inputs.
    func testFixtureValuesAreExactFloat32() throws {
        let c = try section("float_bits_check")
        let values = try c.tensor("values")
        guard let bits = try c.any("bits") as? [NSNumber] else { throw FixtureError.malformed("bits") }
        XCTAssertEqual(values.count, bits.count)
        XCTAssertGreaterThan(values.count, 5)
        for (v, b) in zip(values.data, bits) {
            XCTAssertEqual(v.bitPattern, b.uint32Value, "value \(v)")
        }
    }

    func testLinearForwardAndBackward() throws {
        let cases = try sections("linear")
        XCTAssertEqual(cases.count, 2)
        for c in cases {
            let name = try c.string("name")
            let x = Variable(try c.tensor("x"), requiresGrad: true)
            let w = Variable(try c.tensor("weight"), requiresGrad: true)
            let b = try c.optionalTensor("bias").map { Variable($0, requiresGrad: true) }
            let y = try linear(x, weight: w, bias: b)
            assertClose(y.value, try c.tensor("y"), .reduction, "linear[\(name)] y")
            try y.backward(seed: try c.tensor("g"))
            assertClose(x.grad, try c.tensor("dx"), .reduction, "linear[\(name)] dx")
            assertClose(w.grad, try c.tensor("dweight"), .reduction, "linear[\(name)] dW")
            if let b {
                assertClose(b.grad, try c.tensor("dbias"), .reduction, "linear[\(name)] db")
            } else {
                XCTAssertNil(c.dict["dbias"])
            }
        }
    }

    /// Only the inputs that require a gradient receive one (a constant x gets none).
    func testLinearConstantInputGetsNoGradient() throws {
        let c = try sections("linear")[0]
        let x = Variable(try c.tensor("x"))
        let w = Variable(try c.tensor("weight"), requiresGrad: true)
        let b = Variable(try c.tensor("bias"), requiresGrad: true)
        let y = try linear(x, weight: w, bias: b)
        try y.backward(seed: try c.tensor("g"))
        XCTAssertNil(x.grad)
        assertClose(w.grad, try c.tensor("dweight"), .reduction, "dW with constant x")
        assertClose(b.grad, try c.tensor("dbias"), .reduction, "db with constant x")
    }

    func testReLU() throws {
        let c = try section("relu")
        let x = Variable(try c.tensor("x"), requiresGrad: true)
        let y = relu(x)
        assertClose(y.value, try c.tensor("y"), .elementwise, "relu y")
        try y.backward(seed: try c.tensor("g"))
        assertClose(x.grad, try c.tensor("dx"), .elementwise, "relu dx")
    }

    func testDropoutWithInjectedMask() throws {
        let c = try section("dropout")
        let p = try c.float("p")
        let mask = try c.tensor("mask")
        // The mask holds exactly 0 and 1/(1-p).
        let scale = 1 / (1 - p)
        XCTAssertTrue(mask.data.allSatisfy { $0 == 0 || $0 == scale })
        XCTAssertTrue(mask.data.contains(0) && mask.data.contains(scale))
        let x = Variable(try c.tensor("x"), requiresGrad: true)
        let y = try dropout(x, mask: mask)
        assertClose(y.value, try c.tensor("y"), .elementwise, "dropout y")
        try y.backward(seed: try c.tensor("g"))
        assertClose(x.grad, try c.tensor("dx"), .elementwise, "dropout dx")
    }

    func testMean() throws {
        let c = try section("mean")
        let x = Variable(try c.tensor("x"), requiresGrad: true)
        let y = try mean(x)
        XCTAssertEqual(y.shape, [])
        assertClose(y.value, try c.tensor("y"), .reduction, "mean y")
        try y.backward(seed: try c.tensor("seed"))
        assertClose(x.grad, try c.tensor("dx"), .reduction, "mean dx")
    }

    func testLogSoftmax() throws {
        let cases = try sections("log_softmax")
        XCTAssertEqual(cases.count, 2)
        for c in cases {
            let name = try c.string("name")
            let x = Variable(try c.tensor("x"), requiresGrad: true)
            let y = try logSoftmax(x)
            XCTAssertTrue(y.value.data.allSatisfy(\.isFinite), "log_softmax[\(name)] finite")
            assertClose(y.value, try c.tensor("y"), .reduction, "log_softmax[\(name)] y")
            try y.backward(seed: try c.tensor("g"))
            assertClose(x.grad, try c.tensor("dx"), .reduction, "log_softmax[\(name)] dx")
        }
    }

    func testGemmTransposeCombinations() throws {
        let cases = try sections("gemm")
        var combos = Set<[Bool]>()
        for c in cases {
            let ta = try c.bool("transA"), tb = try c.bool("transB")
            combos.insert([ta, tb])
            let m = try c.int("m"), n = try c.int("n"), k = try c.int("k")
            let a = try c.tensor("a"), b = try c.tensor("b")
            XCTAssertEqual(a.shape, ta ? [k, m] : [m, k])
            XCTAssertEqual(b.shape, tb ? [n, k] : [k, n])
            var out = try c.tensor("c0")
            try a.withUnsafeBufferPointer { pa in
                try b.withUnsafeBufferPointer { pb in
                    try out.withUnsafeMutableBufferPointer { pc in
                        try BLAS.gemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: try c.float("alpha"),
                                      a: pa.baseAddress!, b: pb.baseAddress!, beta: try c.float("beta"),
                                      c: pc.baseAddress!)
                    }
                }
            }
            assertClose(out, try c.tensor("c"), .reduction, "gemm transA=\(ta) transB=\(tb) alpha=\(try c.double("alpha"))")
        }
        XCTAssertEqual(combos.count, 4, "all four transpose combinations are covered")
    }

    /// Products large enough to be split over two threads (panels of C's columns, or rows when C
    /// is taller than wide), in every transpose combination and with alpha, beta, against sums in
    /// Double; the split is by whole 16-float panels, so uneven sizes leave a short last panel.
    func testSplitGemmMatchesDoubleSums() throws {
        let threads = Engine.numThreads
        try Engine.setNumThreads(2)
        defer { try? Engine.setNumThreads(threads) }
        var rng = RandomGenerator(seed: 3)
        for (m, n, k) in [(70, 301, 64), (303, 66, 64), (16, 4099, 17)] {
            XCTAssertGreaterThanOrEqual(m * n * k, BLAS.splitWork, "large enough to be split")
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = try Tensor.uniform(ta ? [k, m] : [m, k], low: -1, high: 1, rng: &rng)
                let b = try Tensor.uniform(tb ? [n, k] : [k, n], low: -1, high: 1, rng: &rng)
                let c0 = try Tensor.uniform([m, n], low: -1, high: 1, rng: &rng)
                let (alpha, beta): (Float, Float) = (0.5, -2)
                var expected = [Double](repeating: 0, count: m * n), scale = 0.0
                let av = a.data, bv = b.data, cv = c0.data
                for i in 0..<m {
                    for j in 0..<n {
                        var sum = 0.0
                        for l in 0..<k {
                            sum += Double(av[ta ? l * m + i : i * k + l]) * Double(bv[tb ? j * k + l : l * n + j])
                        }
                        expected[i * n + j] = Double(alpha) * sum + Double(beta) * Double(cv[i * n + j])
                        scale = Swift.max(scale, Swift.abs(expected[i * n + j]))
                    }
                }
                var out = c0
                try out.withUnsafeMutableBufferPointer { pc in
                    try BLAS.gemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: alpha, a: a.unsafeReadPointer,
                                  b: b.unsafeReadPointer, beta: beta, c: pc.baseAddress.unsafelyUnwrapped)
                }
                assertClose(out, try Tensor(shape: [m, n], data: expected.map { Float($0) }), Tolerance(rtol: 1e-5, atol: 1e-5 * scale),
                            "gemm \(m)×\(n)×\(k) transA=\(ta) transB=\(tb)")
            }
        }
    }

    /// A value feeding two different consumers that meet again: its gradient is the sum of both
    /// paths (PyTorch's value).
    func testFanOutGradientMatchesTorch() throws {
        let c = try section("fanout")
        let x = Variable(try c.tensor("x"), requiresGrad: true)
        let b = Variable(try c.tensor("bias"), requiresGrad: true)
        let h = relu(x)
        let r = relu(h)
        let a = try dropout(h, mask: try c.tensor("mask"))
        let loss = try mean(try linear(r, weight: a, bias: b))
        assertClose(loss.value, try c.tensor("loss"), .reduction, "fan-out loss")
        try loss.backward()
        assertClose(x.grad, try c.tensor("dx"), .reduction, "fan-out dx")
        assertClose(b.grad, try c.tensor("dbias"), .reduction, "fan-out db")
    }

    /// The engine RNG against an independent Python implementation of SplitMix64 + xoshiro256**.
    func testRandomGeneratorKnownAnswers() throws {
        let cases = try sections("rng")
        XCTAssertEqual(cases.count, 3)
        func words(_ c: Case, _ key: String) throws -> [UInt64] {
            guard let a = try c.any(key) as? [String] else { throw FixtureError.malformed(key) }
            return try a.map { guard let w = UInt64($0) else { throw FixtureError.malformed($0) }; return w }
        }
        for c in cases {
            guard let seed = UInt64(try c.string("seed")) else { throw FixtureError.malformed("seed") }
            var rng = RandomGenerator(seed: seed)
            let s = rng.state
            XCTAssertEqual([s.0, s.1, s.2, s.3], try words(c, "state"), "state after seeding with \(seed)")
            XCTAssertEqual((0..<6).map { _ in rng.next() }, try words(c, "next"), "next() for seed \(seed)")
            let uniforms = try c.tensor("uniform")
            XCTAssertEqual((0..<6).map { _ in rng.uniform() }, uniforms.data, "uniform() for seed \(seed)")
            guard let below = try c.any("below10") as? [Int], let perm = try c.any("permutation10") as? [Int] else {
                throw FixtureError.malformed("below10/permutation10")
            }
            XCTAssertEqual((0..<8).map { _ in rng.below(10) }, below, "below(10) for seed \(seed)")
            XCTAssertEqual(rng.permutation(10), perm, "permutation(10) for seed \(seed)")
        }
    }
}
