// multiHeadSelfAttention, the fused attention op: central-difference gradient checks (float32,
// step 1e-2, rtol 1e-2, atol 1e-3, as OpGradientCheckTests), agreement with the same attention
// composed of separate ops (slice, reshape, permute, matmul, softmax, dropout with the same mask),
// at one and two threads, with both kernel sets, and its errors; the last-queries form against the
// full op; the vectorised row softmax against Tensor.softmax (glibc expf); the fused ReGLU against
// slices, relu and a product.
import CEmberKernels
@testable import EmberCore
import EmberTestSupport
import XCTest

final class AttentionOpTests: XCTestCase {
    /// The same attention from separate tape ops, as MultiheadAttention computed it before the
    /// fused op: the mask is drawn from `rng` in the same order.
    private func composed(_ qkv: Variable, heads h: Int, dropout p: Float, rng: inout RandomGenerator) throws -> Variable {
        let s = qkv.shape, b = s[0], t = s[1], d = s[2] / 3, dh = d / h
        func part(_ i: Int) throws -> Variable {
            let x = try slice(qkv, axis: 2, start: i * d, end: (i + 1) * d)
            return try permute(try reshape(x, [b, t, h, dh]), [0, 2, 1, 3])
        }
        let q = try part(0), k = try part(1), v = try part(2)
        var w = try softmax(unary(try matmul(q, k, transposeB: true), .mulScalar(1 / Float(dh).squareRoot())), axis: -1)
        if p > 0 { w = try dropout(w, p: p, rng: &rng) }
        return try reshape(try permute(try matmul(w, v), [0, 2, 1, 3]), [b, t, d])
    }

    func testGradientsMatchCentralDifferences() throws {
        var rng = RandomGenerator(seed: 11)
        for (shape, heads, p) in [([2, 3, 12], 2, Float(0)), ([1, 4, 6], 1, 0), ([2, 3, 12], 4, 0.3)] {
            let x = randomTensor(shape, &rng, -1.5, 1.5)
            let out = [shape[0], shape[1], shape[2] / 3]
            try gradientCheck([x], seed: randomTensor(out, &rng), "attention \(shape) heads \(heads) dropout \(p)") { v in
                var maskRNG = RandomGenerator(seed: 5)  // the same mask on every call
                return try multiHeadSelfAttention(v[0], heads: heads, dropout: p, rng: &maskRNG)
            }
        }
    }

    /// Runs `body` at each (threads, kernels), restoring the engine's settings afterwards.
    private func forEachSetting(_ settings: [(Int, BLAS.Kernels)], _ body: (Int, BLAS.Kernels) throws -> Void) throws {
        let saved = (Parallel.numThreads, BLAS.kernels)
        defer {
            try? Engine.setNumThreads(saved.0)
            BLAS.kernels = saved.1
        }
        for (threads, kernels) in settings {
            try Engine.setNumThreads(threads)
            BLAS.kernels = kernels
            try body(threads, kernels)
        }
    }

    func testMatchesComposedOps() throws {
        var rng = RandomGenerator(seed: 3)
        try forEachSetting([(1, .openBLAS), (2, .openBLAS), (2, .ember)]) { threads, kernels in
            for (shape, heads, p) in [([3, 7, 24], 4, Float(0)), ([5, 9, 48], 8, 0.2), ([2, 1, 3], 1, 0.5)] {
                let what = "\(shape) heads \(heads) dropout \(p), \(threads) threads, \(kernels)"
                let x = randomTensor(shape, &rng, -2, 2)
                let seed = randomTensor([shape[0], shape[1], shape[2] / 3], &rng)
                var r1 = RandomGenerator(seed: 9), r2 = r1
                let a = Variable(x, requiresGrad: true), b = Variable(x, requiresGrad: true)
                let fused = try multiHeadSelfAttention(a, heads: heads, dropout: p, rng: &r1)
                let reference = try composed(b, heads: heads, dropout: p, rng: &r2)
                XCTAssertEqual(r1, r2, "\(what): the mask draws as many numbers")
                assertClose(fused.value, reference.value, .reduction, "forward \(what)")
                try fused.backward(seed: seed)
                try reference.backward(seed: seed)
                assertClose(a.grad, try XCTUnwrap(b.grad), .reduction, "gradient \(what)")
            }
        }
    }

    /// Only the last `queries` tokens attend: the last rows of the full op, the same random
    /// stream, and the gradient of the full op seeded with zeros in the other rows.
    func testLastQueriesMatchTheFullOp() throws {
        var rng = RandomGenerator(seed: 21)
        try forEachSetting([(1, .openBLAS), (2, .ember)]) { threads, kernels in
            for (shape, heads, p, nq) in [([3, 7, 24], 4, Float(0), 1), ([5, 9, 48], 8, 0.2, 1), ([2, 6, 12], 2, 0.5, 3),
                                          ([2, 4, 6], 1, 0.3, 4), ([1, 1, 3], 1, 0, 1)] {
                let what = "\(shape) heads \(heads) dropout \(p) queries \(nq), \(threads) threads, \(kernels)"
                let b = shape[0], t = shape[1], d = shape[2] / 3
                let x = randomTensor(shape, &rng, -2, 2)
                let seed = randomTensor([b, nq, d], &rng)
                // The full op's seed: zeros, then `seed` in the last nq rows of each sample.
                let fullSeed = try Tensor(shape: [b, t, d], data: (0..<(b * t * d)).map { i in
                    let (sample, rest) = i.quotientAndRemainder(dividingBy: t * d)
                    let row = rest / d
                    return row < t - nq ? 0 : seed.data[(sample * nq + row - (t - nq)) * d + rest % d]
                })
                var r1 = RandomGenerator(seed: 9), r2 = r1
                let a = Variable(x, requiresGrad: true), full = Variable(x, requiresGrad: true)
                let last = try multiHeadSelfAttention(a, heads: heads, dropout: p, queries: nq, rng: &r1)
                let reference = try multiHeadSelfAttention(full, heads: heads, dropout: p, rng: &r2)
                XCTAssertEqual(r1, r2, "\(what): the mask draws as many numbers")
                XCTAssertEqual(last.shape, [b, nq, d], what)
                assertClose(last.value, try reference.value.sliced(axis: 1, start: t - nq, end: t), .reduction, "forward \(what)")
                try last.backward(seed: seed)
                try reference.backward(seed: fullSeed)
                assertClose(a.grad, try XCTUnwrap(full.grad), .reduction, "gradient \(what)")
            }
        }
    }

    /// Queries given apart from the keys and values: the packed op's last-queries result and
    /// gradients, and its random stream.
    func testSeparateLastQueriesMatchThePackedOp() throws {
        var rng = RandomGenerator(seed: 23)
        for (shape, heads, p, nq) in [([3, 7, 24], 4, Float(0), 1), ([5, 9, 48], 8, 0.2, 1), ([2, 6, 12], 2, 0.5, 3),
                                      ([2, 4, 6], 1, 0.3, 4)] {
            let what = "\(shape) heads \(heads) dropout \(p) queries \(nq)"
            let b = shape[0], t = shape[1], d = shape[2] / 3
            let x = randomTensor(shape, &rng, -2, 2)
            let seed = randomTensor([b, nq, d], &rng)
            let q = try x.sliced(axis: 1, start: t - nq, end: t).sliced(axis: 2, start: 0, end: d)
            let kv = try x.sliced(axis: 2, start: d, end: 3 * d)
            var r1 = RandomGenerator(seed: 4), r2 = r1
            let packed = Variable(x, requiresGrad: true), qv = Variable(q, requiresGrad: true), kvv = Variable(kv, requiresGrad: true)
            let reference = try multiHeadSelfAttention(packed, heads: heads, dropout: p, queries: nq, rng: &r1)
            let split = try multiHeadAttention(lastQueries: qv, keysValues: kvv, heads: heads, dropout: p, rng: &r2)
            XCTAssertEqual(r1, r2, what)
            assertClose(split.value, reference.value, .reduction, "forward \(what)")
            try reference.backward(seed: seed)
            try split.backward(seed: seed)
            let g = try XCTUnwrap(packed.grad)
            assertClose(qv.grad, try g.sliced(axis: 1, start: t - nq, end: t).sliced(axis: 2, start: 0, end: d), .reduction, "dq \(what)")
            assertClose(kvv.grad, try g.sliced(axis: 2, start: d, end: 3 * d), .reduction, "dkv \(what)")
        }
        let q = Variable(try Tensor.zeros([2, 1, 4])), kv = Variable(try Tensor.zeros([2, 3, 8]))
        assertEmberError(.shapeMismatch, ["attention", "[batch, n, d]", "[2, 1, 4] and [2, 3, 6]"]) {
            _ = try multiHeadAttention(lastQueries: q, keysValues: Variable(try Tensor.zeros([2, 3, 6])), heads: 2, rng: &rng)
        }
        assertEmberError(.shapeMismatch, ["attention", "1 <= n <= tokens"]) {
            _ = try multiHeadAttention(lastQueries: Variable(try Tensor.zeros([2, 4, 4])), keysValues: kv, heads: 2, rng: &rng)
        }
        assertEmberError(.shapeMismatch, ["attention", "divisible by 3 heads"]) {
            _ = try multiHeadAttention(lastQueries: q, keysValues: kv, heads: 3, rng: &rng)
        }
        assertEmberError(.invalidArgument, ["attention", "dropout"]) {
            _ = try multiHeadAttention(lastQueries: q, keysValues: kv, heads: 2, dropout: -0.1, rng: &rng)
        }
        XCTAssertEqual(try multiHeadAttention(lastQueries: Variable(try Tensor.zeros([0, 1, 4])),
                                              keysValues: Variable(try Tensor.zeros([0, 3, 8])), heads: 2, rng: &rng).shape, [0, 1, 4])
    }

    func testLastQueryGradientsMatchCentralDifferences() throws {
        var rng = RandomGenerator(seed: 13)
        for (shape, heads, p) in [([2, 3, 12], 2, Float(0)), ([2, 4, 12], 4, 0.3)] {
            let x = randomTensor(shape, &rng, -1.5, 1.5)
            try gradientCheck([x], seed: randomTensor([shape[0], 1, shape[2] / 3], &rng), "last query \(shape) heads \(heads) dropout \(p)") { v in
                var maskRNG = RandomGenerator(seed: 5)
                return try multiHeadSelfAttention(v[0], heads: heads, dropout: p, queries: 1, rng: &maskRNG)
            }
        }
    }

    /// The fused ReGLU gives the bits of a · relu(b) built from slices, forward and backward
    /// (values at relu's kink included).
    func testReGLUMatchesSlicesReluAndProduct() throws {
        var rng = RandomGenerator(seed: 17)
        for shape in [[4, 10], [2, 3, 6], [1, 2]] {
            var x = randomTensor(shape, &rng, -2, 2)
            x.withUnsafeMutableBufferPointer { p in
                for i in stride(from: 0, to: p.count, by: 3) { p[i] = 0 }
            }
            let h = shape[shape.count - 1] / 2
            var outShape = shape
            outShape[shape.count - 1] = h
            let seed = randomTensor(outShape, &rng)
            let a = Variable(x, requiresGrad: true), b = Variable(x, requiresGrad: true)
            let fused = try reglu(a)
            let reference = try binary(try slice(b, axis: -1, start: 0, end: h), relu(try slice(b, axis: -1, start: h, end: 2 * h)), .mul)
            XCTAssertEqual(fused.shape, outShape)
            XCTAssertEqual(fused.value.data.map(\.bitPattern), reference.value.data.map(\.bitPattern), "forward \(shape)")
            try fused.backward(seed: seed)
            try reference.backward(seed: seed)
            XCTAssertEqual(try XCTUnwrap(a.grad).data.map(\.bitPattern), try XCTUnwrap(b.grad).data.map(\.bitPattern), "gradient \(shape)")
        }
        XCTAssertEqual(try reglu(Variable(try Tensor.zeros([3, 0, 8]))).shape, [3, 0, 4])
        assertEmberError(.shapeMismatch, ["reglu", "even", "[2, 3]"]) { _ = try reglu(Variable(try Tensor.zeros([2, 3]))) }
        assertEmberError(.shapeMismatch, ["reglu", "even"]) { _ = try reglu(Variable(Tensor.scalar(1))) }
    }

    func testRejectsBadShapesAndDropout() throws {
        var rng = RandomGenerator(seed: 1)
        let x = Variable(try Tensor.zeros([2, 3, 12]))
        assertEmberError(.shapeMismatch, ["attention", "3·d"]) { _ = try multiHeadSelfAttention(x, heads: 5, rng: &rng) }
        assertEmberError(.shapeMismatch, ["attention"]) {
            _ = try multiHeadSelfAttention(Variable(try Tensor.zeros([2, 3, 10])), heads: 1, rng: &rng)
        }
        assertEmberError(.invalidArgument, ["dropout"]) { _ = try multiHeadSelfAttention(x, heads: 2, dropout: 1, rng: &rng) }
        for bad in [0, 4, -1] {
            assertEmberError(.invalidArgument, ["attention", "queries must be in 1...3", "got \(bad)"]) {
                _ = try multiHeadSelfAttention(x, heads: 2, queries: bad, rng: &rng)
            }
        }
    }

    func testDropoutMaskIsUnchangedByTheBranchFreeDraw() throws {
        // dropoutMask compares integers; the values must be those of rng.uniform() < 1 - p.
        for p: Float in [0.1, 0.2, 0.5, 1.0 / 3.0] {
            var a = RandomGenerator(seed: 42), b = a
            let mask = try dropoutMask([1000], p: p, rng: &a)
            let keep = 1 - p, scale = 1 / keep
            let md = mask.data
            for i in 0..<1000 { XCTAssertEqual(md[i], b.uniform() < keep ? scale : 0, "p \(p) element \(i)") }
            XCTAssertEqual(a, b)
        }
    }
    func testVectorisedRowSoftmaxMatchesTensorSoftmax() throws {
        var rng = RandomGenerator(seed: 8)
        for cols in [1, 5, 15, 16, 17, 33, 58, 200] {
            var x = randomTensor([4, cols], &rng, -30, 30)
            x.withUnsafeMutableBufferPointer { p in
                // One -inf entry (weight 0; not a whole row, whose softmax is NaN), and a value
                // whose exp underflows.
                if cols > 1 { p[0] = -.infinity }
                if cols > 2 { p[cols + 1] = -200 }
            }
            let expected = try x.softmax(axis: -1, log: false)
            var y = x
            y.withUnsafeMutableBufferPointer { p in cember_softmax_rows(p.baseAddress, 4, Int64(cols)) }
            assertClose(y, expected, Tolerance(rtol: 2e-6, atol: 1e-30), "softmax rows of \(cols)")
            // The backward kernel against g = w · (g - Σ g·w) in Double.
            let w = expected, g0 = randomTensor([4, cols], &rng)
            var g = g0
            w.withUnsafeBufferPointer { pw in
                g.withUnsafeMutableBufferPointer { pg in cember_softmax_backward_rows(pw.baseAddress, pg.baseAddress, 4, Int64(cols)) }
            }
            let wd = w.data.map(Double.init), gd = g0.data.map(Double.init)
            var reference = [Float](repeating: 0, count: 4 * cols)
            for r in 0..<4 {
                let dot = (0..<cols).reduce(0.0) { $0 + gd[r * cols + $1] * wd[r * cols + $1] }
                for c in 0..<cols { reference[r * cols + c] = Float(wd[r * cols + c] * (gd[r * cols + c] - dot)) }
            }
            assertClose(g, try Tensor(shape: [4, cols], data: reference), .reduction, "softmax backward rows of \(cols)")
        }
    }
    /// Every instruction-set variant of the row softmax kernels gives the same bits.
    func testRowSoftmaxVariantsGiveTheSameBits() throws {
        defer { _ = cember_kernels_force_isa(-1) }
        var rng = RandomGenerator(seed: 12)
        let x = randomTensor([6, 37], &rng, -20, 20), g0 = randomTensor([6, 37], &rng)
        var results: [[Float]] = []
        for isa in 0...Int(cember_cpu_isa()) {
            _ = cember_kernels_force_isa(Int32(isa))
            var y = x, g = g0
            y.withUnsafeMutableBufferPointer { p in cember_softmax_rows(p.baseAddress, 6, 37) }
            y.withUnsafeBufferPointer { pw in
                g.withUnsafeMutableBufferPointer { pg in cember_softmax_backward_rows(pw.baseAddress, pg.baseAddress, 6, 37) }
            }
            results.append(y.data + g.data)
        }
        for r in results.dropFirst() { XCTAssertEqual(r.map(\.bitPattern), results[0].map(\.bitPattern)) }
    }
}
