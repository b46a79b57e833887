// Ember's own matrix-product kernels (cember_sgemm, CEmberKernels/gemm.c): every instruction-set
// variant against a Double-accumulated reference and against OpenBLAS (through BLAS.gemm with
// kernels = .openBLAS), all four transpose cases, edge sizes around the tiles (1, 3, 15, 16, 17, 31,
// 33, 100, 257), MLP shapes, alpha ≠ 1, beta ∈ {0 over NaN, 1, 0.5}, leading dimensions larger
// than the rows; bit-identical results at one and two threads; and a short training run with
// Ember's kernels against one with OpenBLAS's.
//
// Tolerances. A float32 sum of k products, added in any order, is off from the exact value by at most
// about k·ε·Σ|products| (ε = 2⁻²⁴) and typically by √k·ε·Σ|products| (rounding errors of random
// sign). The check is |C - reference| <= 1e-6·√k·(|alpha|·Σ_l |A(i,l)·B(l,j)| + |beta·C₀|) + 1e-7:
// the matmul rtol 1e-5 of docs/architecture.md#numerics-contract expressed per term of the sum
// (scaled by √k because the error of a sum grows with its length, and taken against Σ|products|
// because the result itself may cancel to near zero), ~17√k ε. Against OpenBLAS, whose error has the
// same bound, twice that.
import CEmberKernels
@testable import EmberCore
import EmberTestSupport
import Synchronization
import XCTest

final class GemmKernelTests: XCTestCase {
    var rng = RandomGenerator(seed: 11)

    /// One product's operands, stored with leading dimensions `pad` larger than needed.
    struct Problem {
        let transA: Bool, transB: Bool, m: Int, n: Int, k: Int, pad: Int
        let lda: Int, ldb: Int, ldc: Int
        let a: [Float], b: [Float], c0: [Float]

        init(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, pad: Int, rng: inout RandomGenerator) {
            self.transA = transA
            self.transB = transB
            self.m = m
            self.n = n
            self.k = k
            self.pad = pad
            lda = (transA ? m : k) + pad
            ldb = (transB ? k : n) + pad
            ldc = n + pad
            a = (0..<((transA ? k : m) * lda)).map { _ in rng.uniform(-1, 1) }
            b = (0..<((transB ? n : k) * ldb)).map { _ in rng.uniform(-1, 1) }
            c0 = (0..<(m * ldc)).map { _ in rng.uniform(-1, 1) }
        }

        func opA(_ i: Int, _ l: Int) -> Float { transA ? a[l * lda + i] : a[i * lda + l] }
        func opB(_ l: Int, _ j: Int) -> Float { transB ? b[j * ldb + l] : b[l * ldb + j] }

        /// The Double-accumulated product and, per element, the scale of its rounding error bound.
        func reference(alpha: Float, beta: Float) -> (value: [Double], scale: [Double]) {
            var value = [Double](repeating: 0, count: m * n), scale = value
            for i in 0..<m {
                for j in 0..<n {
                    var s = 0.0, s1 = 0.0
                    for l in 0..<k {
                        let p = Double(opA(i, l)) * Double(opB(l, j))
                        s += p
                        s1 += abs(p)
                    }
                    let old = beta == 0 ? 0 : Double(beta) * Double(c0[i * ldc + j])
                    value[i * n + j] = Double(alpha) * s + old
                    scale[i * n + j] = abs(Double(alpha)) * s1 + abs(old)
                }
            }
            return (value, scale)
        }

        /// cember_sgemm on a copy of C0 (NaN in C when beta is 0, which must not propagate).
        func ember(alpha: Float, beta: Float) -> [Float] {
            var c = beta == 0 ? [Float](repeating: .nan, count: c0.count) : c0
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer { pc in
                        cember_sgemm(transA ? 1 : 0, transB ? 1 : 0, Int64(m), Int64(n), Int64(k), alpha,
                                     pa.baseAddress, Int64(lda), pb.baseAddress, Int64(ldb), beta, pc.baseAddress,
                                     Int64(ldc))
                    }
                }
            }
            return c
        }

        /// BLAS.gemm with the given kernels on C0 (packed to leading dimension n), the operands
        /// repacked without padding (BLAS.gemm takes minimal leading dimensions).
        func blas(_ kernels: BLAS.Kernels, alpha: Float, beta: Float, split: BLAS.Split = .automatic) throws -> [Float] {
            let saved = BLAS.kernels
            BLAS.kernels = kernels
            defer { BLAS.kernels = saved }
            let (ra, ca) = transA ? (k, m) : (m, k), (rb, cb) = transB ? (n, k) : (k, n)
            let ta = (0..<ra).flatMap { r in a[(r * lda)..<(r * lda + ca)] }
            let tb = (0..<rb).flatMap { r in b[(r * ldb)..<(r * ldb + cb)] }
            var c = (0..<m).flatMap { i in beta == 0 ? Array(repeating: Float.nan, count: n) : Array(c0[(i * ldc)..<(i * ldc + n)]) }
            try ta.withUnsafeBufferPointer { pa in
                try tb.withUnsafeBufferPointer { pb in
                    try c.withUnsafeMutableBufferPointer { pc in
                        guard let pa = pa.baseAddress, let pb = pb.baseAddress, let pc = pc.baseAddress else { return }
                        try BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: pa, b: pb,
                                      beta: beta, c: pc, split: split)
                    }
                }
            }
            return c
        }

        var name: String { "\(m)×\(k)·\(k)×\(n) transA \(transA) transB \(transB)" }
    }

    /// The shapes (m, n, k): every edge size in each role, and MLP/CNN products.
    static let shapes: [(Int, Int, Int)] = {
        let sizes = [1, 3, 15, 16, 17, 31, 33, 100, 257]
        var s = sizes.flatMap { [($0, $0, $0), ($0, 17, 100), (31, $0, 16), (16, 33, $0)] }
        // MLP 1000-100, batch 32: forward, weight gradient, input gradient; 400-400; 784-256, batch 128.
        s += [(32, 100, 1000), (100, 1000, 32), (32, 1000, 100), (32, 400, 400), (128, 256, 784), (256, 784, 128)]
        // Beyond one block of C columns (2048) and of k (256) together.
        s += [(3, 2100, 600)]
        return s
    }()

    static let transposes = [(false, false), (false, true), (true, false), (true, true)]

    /// Instruction-set caps to test: every variant this CPU runs (2 AVX-512, 1 AVX2, 0 baseline).
    static var isaLevels: [Int32] { Array((0...max(cember_cpu_isa(), 0)).reversed()) }

    func testEveryVariantAgainstDoubleReferenceAndOpenBLAS() throws {
        defer { _ = cember_kernels_force_isa(-1) }
        var checked = 0
        for (index, (m, n, k)) in Self.shapes.enumerated() {
            for (tA, tB) in Self.transposes {
                let p = Problem(transA: tA, transB: tB, m: m, n: n, k: k, pad: 1 + index % 3, rng: &rng)
                // Beta cycles through 0 (C full of NaN), 1 and 0.5 over the shapes; alpha is never 1.
                for (alpha, beta) in [(Float(1.5), Float([0, 1, 0.5][index % 3])), (-0.75, 0)] {
                    let (ref, scale) = p.reference(alpha: alpha, beta: beta)
                    let blas = try p.blas(.openBLAS, alpha: alpha, beta: beta)
                    let bound = { (e: Int) in 1e-6 * Double(k).squareRoot() * scale[e] + 1e-7 }
                    for isa in Self.isaLevels {
                        _ = cember_kernels_force_isa(isa)
                        let c = p.ember(alpha: alpha, beta: beta)
                        var failures = 0
                        for i in 0..<m {
                            for j in 0..<n where failures < 3 {
                                let e = i * n + j, got = Double(c[i * p.ldc + j])
                                if !(abs(got - ref[e]) <= bound(e)) || !(abs(got - Double(blas[e])) <= 2 * bound(e)) {
                                    failures += 1
                                    XCTFail("\(p.name) alpha \(alpha) beta \(beta) isa \(isa): C[\(i)][\(j)] = \(got), "
                                            + "reference \(ref[e]), OpenBLAS \(blas[e]), bound \(bound(e))")
                                }
                            }
                            // The padding between rows of C is untouched.
                            for j in n..<p.ldc where i * p.ldc + j < c.count {
                                let before = beta == 0 ? Float.nan : p.c0[i * p.ldc + j]
                                XCTAssertEqual(c[i * p.ldc + j].bitPattern, before.bitPattern, "\(p.name): padding written")
                            }
                        }
                        checked += 1
                    }
                }
            }
        }
        XCTAssertEqual(checked, Self.shapes.count * 4 * 2 * Self.isaLevels.count)
    }

    /// The AVX-512 and AVX2 variants both use FMA in the same order: identical bits.
    func testAVX512AndAVX2VariantsGiveTheSameBits() throws {
        guard cember_cpu_isa() >= 2 else { throw XCTSkip("needs an AVX-512 CPU") }
        defer { _ = cember_kernels_force_isa(-1) }
        for (m, n, k) in [(32, 100, 1000), (33, 257, 31), (100, 1000, 32), (17, 15, 600)] {
            for (tA, tB) in Self.transposes {
                let p = Problem(transA: tA, transB: tB, m: m, n: n, k: k, pad: 2, rng: &rng)
                _ = cember_kernels_force_isa(2)
                let wide = p.ember(alpha: 0.5, beta: 0.5)
                _ = cember_kernels_force_isa(1)
                XCTAssertEqual(p.ember(alpha: 0.5, beta: 0.5).map(\.bitPattern), wide.map(\.bitPattern), p.name)
            }
        }
    }

    /// With beta = 0 C is never read; alpha = 0 and k = 0 leave beta·C without reading A or B.
    func testDegenerateCases() {
        var c: [Float] = [.nan, .nan, 2, 4]
        let a: [Float] = [.nan, .nan], b: [Float] = [.nan, .nan]
        cember_sgemm(0, 0, 2, 2, 1, 0, a, 1, b, 2, 0, &c, 2)
        XCTAssertEqual(c, [0, 0, 0, 0])
        c = [1, 2, 3, 4]
        cember_sgemm(0, 0, 2, 2, 0, 1, a, 1, b, 2, 0.5, &c, 2)
        XCTAssertEqual(c, [0.5, 1, 1.5, 2])
        cember_sgemm(1, 1, 0, 2, 3, 1, a, 1, b, 2, 0.5, &c, 2)
        XCTAssertEqual(c, [0.5, 1, 1.5, 2])
    }

    /// BLAS.gemm with Ember's kernels splits large products over threads; the bits do not change.
    func testResultsDoNotDependOnTheThreadCount() throws {
        let threads = Engine.numThreads
        defer { try? Engine.setNumThreads(threads) }
        // Split by columns (n >= m) and by rows (m > n), in all four transpose cases.
        for (m, n, k) in [(32, 1000, 100), (100, 1000, 32), (1000, 64, 64), (257, 257, 257)] {
            for (tA, tB) in Self.transposes {
                let p = Problem(transA: tA, transB: tB, m: m, n: n, k: k, pad: 0, rng: &rng)
                XCTAssertGreaterThanOrEqual(m * n * k, BLAS.splitWork, "the product must be large enough to split")
                try Engine.setNumThreads(1)
                let one = try p.blas(.ember, alpha: 1.25, beta: 0.5)
                try Engine.setNumThreads(2)
                let two = try p.blas(.ember, alpha: 1.25, beta: 0.5)
                XCTAssertEqual(one.map(\.bitPattern), two.map(\.bitPattern), p.name)
            }
        }
    }

    /// k is summed in blocks of equal size (a multiple of 16, at most 256; the last one shorter):
    /// the boundaries `Split.depth` cuts at.
    func testDepthBlocks() {
        for (k, block) in [(1, 1), (200, 200), (256, 256), (257, 144), (400, 208), (512, 256), (769, 208), (1000, 256)] {
            XCTAssertEqual(cember_sgemm_depth_block(Int64(k)), Int64(block), "k = \(k)")
        }
        XCTAssertTrue(BLAS.depthBlocks(k: 400) == (208, 2) && BLAS.depthBlocks(k: 1000) == (256, 4))
        XCTAssertEqual(BLAS.depthScratchCount(m: 32, n: 100, k: 400), 32 * 100, "one block beyond the first")
        XCTAssertEqual(BLAS.depthScratchCount(m: 32, n: 100, k: 1000), 3 * 32 * 100)
        XCTAssertEqual(BLAS.depthScratchCount(m: 32, n: 100, k: 256), 0, "one block: nothing to cut")
    }

    /// `Split.depth` (k cut at block boundaries over the threads, the blocks added in order) and
    /// `Split.rows` give the bits of the uncut product with Ember's kernels, in the four transpose
    /// cases, at two and three threads. The depth split writes its scratch exactly when k has two
    /// blocks or more and the product is large enough; with too small a scratch, alpha other than 1
    /// or OpenBLAS's kernels it is not used (the product cut as `.automatic`).
    func testDepthAndRowSplitsGiveTheBitsOfTheWholeProduct() throws {
        let threads = Engine.numThreads
        defer { try? Engine.setNumThreads(threads) }
        var cut = 0
        for (m, n, k) in [(32, 400, 400), (1, 1100, 1000), (64, 300, 513), (48, 200, 300), (32, 200, 200)] {
            for (tA, tB) in Self.transposes {
                let p = Problem(transA: tA, transB: tB, m: m, n: n, k: k, pad: 0, rng: &rng)
                try Engine.setNumThreads(1)
                let whole = try p.blas(.ember, alpha: 1, beta: 0).map(\.bitPattern)
                let count = BLAS.depthScratchCount(m: m, n: n, k: k)
                let cuts = k > 256 && m * n * k >= BLAS.splitWork
                for t in [2, 3] {
                    try Engine.setNumThreads(t)
                    for (kernels, size, alpha) in [(BLAS.Kernels.byShape, count, Float(1)), (.ember, count, 1),
                                                   (.ember, count - 1, 1), (.ember, count, 0.5), (.openBLAS, count, 1)] {
                        var scratch = [Float](repeating: .nan, count: max(count, 1))
                        let got = try scratch.withUnsafeMutableBufferPointer { s in
                            try p.blas(kernels, alpha: alpha, beta: 0,
                                       split: .depth(scratch: s.baseAddress.unsafelyUnwrapped, count: size))
                        }
                        let used = cuts && size == count && alpha == 1 && kernels != .openBLAS
                        XCTAssertEqual(scratch.contains { !$0.isNaN }, used, "\(p.name), \(t) threads, \(kernels) scratch \(size) alpha \(alpha)")
                        if kernels != .openBLAS && alpha == 1 {
                            XCTAssertEqual(got.map(\.bitPattern), whole, "\(p.name), \(t) threads, \(kernels) scratch \(size)")
                        }
                        if used { cut += 1 }
                    }
                    XCTAssertEqual(try p.blas(.ember, alpha: 1, beta: 0, split: .rows).map(\.bitPattern), whole,
                                   "\(p.name), \(t) threads, rows")
                }
            }
        }
        XCTAssertEqual(cut, 4 * 4 * 2 * 2, "four shapes cut along k, four transpose cases, two thread counts, two kernel settings")
    }

    /// The pool measures the round trip of a cache line between two of its threads: a value with
    /// two threads (well below a millisecond), none with one; a forced value stands in for tests.
    func testThePoolMeasuresTheRoundTripBetweenItsThreads() throws {
        let threads = Engine.numThreads
        defer { try? Engine.setNumThreads(threads) }
        try Engine.setNumThreads(1)
        XCTAssertNil(Parallel.roundTripNanoseconds)
        XCTAssertFalse(Parallel.threadsOnTwoDies)
        try Engine.setNumThreads(2)
        let ns = try XCTUnwrap(Parallel.roundTripNanoseconds, "two threads: the pool measures a round trip")
        XCTAssertTrue((1..<1_000_000).contains(ns), "\(ns) ns")
        Parallel.forceRoundTrip(400)
        defer { Parallel.forceRoundTrip(nil) }
        XCTAssertEqual(Parallel.roundTripNanoseconds, 400)
        XCTAssertTrue(Parallel.threadsOnTwoDies)
        Parallel.forceRoundTrip(60)
        XCTAssertFalse(Parallel.threadsOnTwoDies)
    }

    /// Sysfs's cache sizes ("32768K") are read with their unit; values that are not sizes, or too
    /// large for a byte count, are none. The last-level cache is at least an L2's 64 KiB and, where
    /// sysfs has an L3, at least as large as CPU 0's L2 (the highest level is taken).
    func testCacheSizesFromSysfs() {
        XCTAssertEqual(Engine.cacheSizeBytes("32768K"), 32 << 20)
        XCTAssertEqual(Engine.cacheSizeBytes("1M"), 1 << 20)
        XCTAssertEqual(Engine.cacheSizeBytes("512"), 512)
        for bad in ["", "12X", "K", "-5K", "0", "99999999999999999G"] { XCTAssertNil(Engine.cacheSizeBytes(bad), bad) }
        XCTAssertGreaterThanOrEqual(Engine.lastLevelCacheBytes, 64 << 10)
        if let l2 = MemoryBudget.readText("/sys/devices/system/cpu/cpu0/cache/index2/size")?.split(separator: "\n").first
            .flatMap({ Engine.cacheSizeBytes(String($0)) }) {
            XCTAssertGreaterThanOrEqual(Engine.lastLevelCacheBytes, l2)
        }
    }

    /// `Parallel.serially` runs its body with one thread (nested too) and restores the count.
    func testSeriallyRunsOnOneThread() throws {
        let threads = Engine.numThreads
        defer { try? Engine.setNumThreads(threads) }
        try Engine.setNumThreads(2)
        let inner = Parallel.serially { (Parallel.numThreads, Parallel.serially { Parallel.numThreads }, Parallel.numThreads) }
        XCTAssertTrue(inner == (1, 1, 1), "\(inner)")
        XCTAssertEqual(Parallel.numThreads, 2)
        XCTAssertNil(Parallel.serially { Parallel.roundTripNanoseconds }, "one thread: no round trip")
    }

    /// With the pool's threads on two dies, a product is split only where each thread gets at least
    /// `BLAS.farPanel` columns (or rows) or blocks of k: 300 columns stay whole, 400 are split, and
    /// k = 257 (blocks of 144) is not cut. Visible in how many panels `columnsDone` reports; the
    /// bits are the same either way.
    func testThreadsOnTwoDiesSplitOnlyWideProducts() throws {
        let threads = Engine.numThreads
        defer {
            try? Engine.setNumThreads(threads)
            Parallel.forceRoundTrip(nil)
        }
        try Engine.setNumThreads(2)
        for (m, n, k, split, near, far) in [(32, 300, 200, false, 2, 1), (32, 400, 400, false, 2, 2), (32, 300, 257, true, 2, 1),
                                            (32, 300, 400, true, 2, 1)] {
            let p = Problem(transA: false, transB: false, m: m, n: n, k: k, pad: 0, rng: &rng)
            var results: [[UInt32]] = [], panels: [Int] = [], cut: [Bool] = []
            for ns in [60, 400] {
                Parallel.forceRoundTrip(ns)
                var scratch = [Float](repeating: .nan, count: max(BLAS.depthScratchCount(m: m, n: n, k: k), 1))
                let count = split ? BLAS.depthScratchCount(m: m, n: n, k: k) : 0
                var c = [Float](repeating: .nan, count: m * n)
                let calls = Atomic<Int>(0)
                try scratch.withUnsafeMutableBufferPointer { s in
                    try BLAS.gemm(transA: false, transB: false, m: m, n: n, k: k, a: p.a, b: p.b, c: &c,
                                  split: split ? .depth(scratch: s.baseAddress.unsafelyUnwrapped, count: count) : .automatic) { _, _ in
                        calls.add(1, ordering: .relaxed)
                    }
                }
                results.append(c.map(\.bitPattern))
                panels.append(calls.load(ordering: .relaxed))
                cut.append(scratch.contains { !$0.isNaN })
            }
            XCTAssertEqual(panels, [near, far], "\(m)×\(k)·\(k)×\(n): panels on one die and on two")
            XCTAssertEqual(results[0], results[1], "\(m)×\(k)·\(k)×\(n): the same bits")
            XCTAssertEqual(cut, [split, split && k == 400], "\(m)×\(k)·\(k)×\(n): cut along k")
        }
    }

    /// OpenBLAS's bits depend on how a product is cut, so its products are cut into as many panels
    /// as the engine's threads wherever they run: on one die, on two (where Ember's own products
    /// of these widths stay whole) and inside a serial region (a training step of narrow layers
    /// runs serially on two dies) alike, with the same bits.
    func testOpenBLASProductsAreCutTheSameWayWhereverTheyRun() throws {
        let threads = Engine.numThreads, kernels = BLAS.kernels
        defer {
            try? Engine.setNumThreads(threads)
            BLAS.kernels = kernels
            Parallel.forceRoundTrip(nil)
        }
        try Engine.setNumThreads(2)
        BLAS.kernels = .openBLAS
        for (m, n, k) in [(128, 300, 200), (96, 256, 256), (200, 200, 100)] {
            let p = Problem(transA: false, transB: true, m: m, n: n, k: k, pad: 0, rng: &rng)
            var results: [[UInt32]] = [], panels: [Int] = []
            for (ns, serial) in [(60, false), (400, false), (60, true), (400, true)] {
                Parallel.forceRoundTrip(ns)
                var c = [Float](repeating: .nan, count: m * n)
                let calls = Atomic<Int>(0)
                func product() throws {
                    try BLAS.gemm(transA: false, transB: true, m: m, n: n, k: k, a: p.a, b: p.b, c: &c) { _, _ in
                        calls.add(1, ordering: .relaxed)
                    }
                }
                if serial { try Parallel.serially { try product() } } else { try product() }
                results.append(c.map(\.bitPattern))
                panels.append(calls.load(ordering: .relaxed))
            }
            XCTAssertEqual(panels, [2, 2, 2, 2], "\(m)×\(k)·\(k)×\(n): panels on one die, on two, serially on each")
            for r in results.dropFirst() { XCTAssertEqual(r, results[0], "\(m)×\(k)·\(k)×\(n): the same bits") }
            XCTAssertFalse(results[0].contains { Float(bitPattern: $0).isNaN }, "every element written")
        }
    }

    /// Every path of cember_sgemm (both operands packed; op(B) packed and op(A) as by shape, which
    /// reads it in place without trans_a on AVX2 and the baseline; op(B) read in place; Cᵀ computed
    /// with op(B) read in place) gives the same bits, in every instruction-set variant, for row counts
    /// around the tiles and k across a block boundary (256), with padded leading dimensions.
    func testEveryRouteGivesTheSameBits() {
        defer {
            _ = cember_kernels_force_isa(-1)
            _ = cember_gemm_force_route(-1)
        }
        var compared = 0
        // With transB and at most 4 columns (5 × 1 × 600, 100 × 3 × 300, 37 × 2 × 70), route 2 on
        // AVX2 is head_avx2.
        for (index, (m, n, k)) in [(1, 17, 3), (13, 100, 31), (32, 400, 300), (33, 15, 257), (64, 33, 16), (5, 1, 600),
                                   (100, 40, 20), (100, 3, 300), (37, 2, 70)].enumerated() {
            for (tA, tB) in Self.transposes {
                let p = Problem(transA: tA, transB: tB, m: m, n: n, k: k, pad: index % 3, rng: &rng)
                for isa in Self.isaLevels {
                    _ = cember_kernels_force_isa(isa)
                    _ = cember_gemm_force_route(3)
                    let packed = p.ember(alpha: 0.75, beta: index % 2 == 0 ? 0 : 0.5)
                    for route: Int32 in [0, 1, 2, -1] {
                        _ = cember_gemm_force_route(route)
                        XCTAssertEqual(p.ember(alpha: 0.75, beta: index % 2 == 0 ? 0 : 0.5).map(\.bitPattern),
                                       packed.map(\.bitPattern), "\(p.name) isa \(isa) route \(route)")
                        compared += 1
                    }
                }
            }
        }
        XCTAssertEqual(compared, 9 * 4 * Self.isaLevels.count * 4)
    }

    /// The paths that read op(B) or op(A) in place read none of the memory after it: it ends at a page
    /// whose successor is inaccessible (a read there would crash the test), for row ends that
    /// are not whole vectors, in every instruction-set variant.
    func testInPlaceReadsStopAtTheOperandsEnd() throws {
        // Room for the largest operand below (67 × 300 floats), then the inaccessible page.
        let page = Int(sysconf(Int32(_SC_PAGESIZE))), room = (67 * 300 * 4 + page - 1) / page * page
        guard let base = mmap(nil, room + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              base != MAP_FAILED else { throw XCTSkip("mmap failed") }
        defer { munmap(base, room + page) }
        XCTAssertEqual(mprotect(base + room, page, PROT_NONE), 0)
        defer {
            _ = cember_kernels_force_isa(-1)
            _ = cember_gemm_force_route(-1)
        }
        // op(B) at the end, read in place by its paths (route 1 without trans_b, 2 with it); then
        // op(A) at the end (no trans_a: read in place on AVX2 and the baseline), its last row tile
        // short, through the packed path (many rows, route 0) and with op(B) in place (few rows).
        let cases: [(m: Int, n: Int, k: Int, tB: Bool, route: Int32, aAtEnd: Bool)] = [
            (7, 21, 19, false, 1, false), (7, 21, 19, true, 2, false), (32, 45, 40, false, 1, false),
            (3, 13, 300, true, 2, false),
            (7, 21, 19, false, 1, true), (70, 13, 33, false, 0, true), (3, 40, 300, false, 1, true),
            (67, 5, 300, false, 0, true),
        ]
        for (m, n, k, tB, route, aAtEnd) in cases {
            let p = Problem(transA: false, transB: tB, m: m, n: n, k: k, pad: 0, rng: &rng)
            let (ref, scale) = p.reference(alpha: 1, beta: 0)
            let operand = aAtEnd ? p.a : p.b
            let start = (base + room).assumingMemoryBound(to: Float.self) - operand.count
            XCTAssertLessThanOrEqual(operand.count * 4, room)
            start.update(from: operand, count: operand.count)
            for isa in Self.isaLevels {
                _ = cember_kernels_force_isa(isa)
                _ = cember_gemm_force_route(route)
                var c = [Float](repeating: .nan, count: m * p.ldc)
                (aAtEnd ? p.b : p.a).withUnsafeBufferPointer { other in
                    c.withUnsafeMutableBufferPointer { pc in
                        cember_sgemm(0, tB ? 1 : 0, Int64(m), Int64(n), Int64(k), 1,
                                     aAtEnd ? UnsafePointer(start) : other.baseAddress, Int64(p.lda),
                                     aAtEnd ? other.baseAddress : UnsafePointer(start), Int64(p.ldb), 0,
                                     pc.baseAddress, Int64(p.ldc))
                    }
                }
                for e in 0..<(m * n) where !(abs(Double(c[e / n * p.ldc + e % n]) - ref[e]) <= 1e-6 * Double(k).squareRoot() * scale[e] + 1e-7) {
                    XCTFail("\(p.name) \(aAtEnd ? "A" : "B") at the end, isa \(isa): C[\(e / n)][\(e % n)] = "
                            + "\(c[e / n * p.ldc + e % n]), reference \(ref[e])")
                    break
                }
            }
        }
    }

    /// cember_sgemm_bias_relu gives the bits of copying the bias into every row, cember_sgemm with
    /// alpha 1 and beta 1, then the ReLU (x > 0 ? x : 0): on every path and in every instruction-set
    /// variant, with k across a block boundary, without a bias, with k = 0, and with values that
    /// the ReLU maps (negatives, -0, NaN).
    func testBiasAndReLUEpilogueGivesTheBitsOfTheSeparatePasses() {
        defer {
            _ = cember_kernels_force_isa(-1)
            _ = cember_gemm_force_route(-1)
        }
        // (45, 3, 300) and (70, 1, 20): heads (at most 4 columns), through head_avx2 on AVX2.
        for (m, n, k) in [(32, 40, 300), (70, 5, 20), (3, 100, 13), (200, 33, 64), (9, 7, 0), (45, 3, 300), (70, 1, 20)] {
            let p = Problem(transA: false, transB: true, m: m, n: n, k: k, pad: 0, rng: &rng)
            var bias = (0..<n).map { _ in rng.uniform(-1, 1) }
            bias[0] = .nan
            if n > 2 { bias[1] = -0.0 }
            for isa in Self.isaLevels {
                _ = cember_kernels_force_isa(isa)
                for route: Int32 in [-1, 0, 2] {
                    _ = cember_gemm_force_route(route)
                    for (withBias, relu) in [(true, true), (true, false), (false, true)] {
                        var expected = [Float](repeating: .nan, count: m * n)
                        if withBias { for r in 0..<m { for j in 0..<n { expected[r * n + j] = bias[j] } } }
                        p.a.withUnsafeBufferPointer { pa in
                            p.b.withUnsafeBufferPointer { pb in
                                cember_sgemm(0, 1, Int64(m), Int64(n), Int64(k), 1, pa.baseAddress, Int64(max(p.lda, 1)),
                                             pb.baseAddress, Int64(max(p.ldb, 1)), withBias ? 1 : 0, &expected, Int64(n))
                            }
                        }
                        if relu { expected = expected.map { $0 > 0 ? $0 : 0 } }
                        var got = [Float](repeating: .nan, count: m * n)
                        p.a.withUnsafeBufferPointer { pa in
                            p.b.withUnsafeBufferPointer { pb in
                                bias.withUnsafeBufferPointer { pbias in
                                    cember_sgemm_bias_relu(0, 1, Int64(m), Int64(n), Int64(k), pa.baseAddress, Int64(max(p.lda, 1)),
                                                           pb.baseAddress, Int64(max(p.ldb, 1)), withBias ? pbias.baseAddress : nil,
                                                           relu ? 1 : 0, &got, Int64(n))
                                }
                            }
                        }
                        XCTAssertEqual(got.map(\.bitPattern), expected.map(\.bitPattern),
                                       "\(p.name) isa \(isa) route \(route) bias \(withBias) relu \(relu)")
                    }
                }
            }
        }
    }

    /// cember_sgemm_from (beta·C read from another matrix, C_in) gives the bits of copying C_in into
    /// C and calling cember_sgemm: on every path and in every instruction-set variant, for a weight
    /// gradient's shape, heads, k across a block boundary, k = 0 and alpha = 0; C_in is not
    /// changed, and with beta 0 not read (NaN in it does not propagate).
    func testProductFromAnotherInputGivesTheBitsOfCopyingItIntoC() {
        defer {
            _ = cember_kernels_force_isa(-1)
            _ = cember_gemm_force_route(-1)
        }
        var compared = 0
        for (index, (m, n, k)) in [(100, 400, 32), (32, 40, 300), (70, 5, 20), (45, 3, 300), (9, 7, 0), (3, 100, 13)].enumerated() {
            for (tA, tB) in Self.transposes {
                let p = Problem(transA: tA, transB: tB, m: m, n: n, k: k, pad: index % 2, rng: &rng)
                for isa in Self.isaLevels {
                    _ = cember_kernels_force_isa(isa)
                    for route: Int32 in [-1, 0, 1, 2, 3] {
                        _ = cember_gemm_force_route(route)
                        for (alpha, beta): (Float, Float) in [(0.75, 1), (-0.5, 0.5), (0.75, 0), (0, 0.5)] {
                            var expected = p.c0
                            p.a.withUnsafeBufferPointer { pa in
                                p.b.withUnsafeBufferPointer { pb in
                                    cember_sgemm(tA ? 1 : 0, tB ? 1 : 0, Int64(m), Int64(n), Int64(k), alpha, pa.baseAddress,
                                                 Int64(max(p.lda, 1)), pb.baseAddress, Int64(max(p.ldb, 1)), beta, &expected,
                                                 Int64(p.ldc))
                                }
                            }
                            let input = beta == 0 ? [Float](repeating: .nan, count: p.c0.count) : p.c0
                            let inputBits = input.map(\.bitPattern)
                            var got = [Float](repeating: .nan, count: p.c0.count)
                            p.a.withUnsafeBufferPointer { pa in
                                p.b.withUnsafeBufferPointer { pb in
                                    cember_sgemm_from(tA ? 1 : 0, tB ? 1 : 0, Int64(m), Int64(n), Int64(k), alpha, pa.baseAddress,
                                                      Int64(max(p.lda, 1)), pb.baseAddress, Int64(max(p.ldb, 1)), beta, input,
                                                      &got, Int64(p.ldc))
                                }
                            }
                            // C's m × n elements as with C_in copied in; the padding keeps its NaN.
                            for i in 0..<m {
                                for j in 0..<n where got[i * p.ldc + j].bitPattern != expected[i * p.ldc + j].bitPattern {
                                    XCTFail("\(p.name) isa \(isa) route \(route) alpha \(alpha) beta \(beta): C[\(i)][\(j)] = "
                                            + "\(got[i * p.ldc + j]), with C_in copied into C \(expected[i * p.ldc + j])")
                                    break
                                }
                                XCTAssertTrue(got[(i * p.ldc + n)..<(i * p.ldc + p.ldc)].allSatisfy(\.isNaN), "\(p.name): row \(i)'s padding")
                            }
                            XCTAssertEqual(input.map(\.bitPattern), inputBits, "C_in unchanged")
                            compared += 1
                        }
                    }
                }
            }
        }
        XCTAssertEqual(compared, 6 * 4 * Self.isaLevels.count * 5 * 4)
    }

    /// `BLAS.gemm` with `cIn` gives the bits of copying C_in into C and calling it with C, with
    /// OpenBLAS's kernels, Ember's and by shape, at one and two threads, split by default and into
    /// panels of rows (a weight gradient's shape, large enough to be split, and a forward
    /// product's); C_in does not change.
    func testGemmFromAnotherInputMatchesCopyingItIntoC() throws {
        let saved = (BLAS.kernels, Engine.numThreads)
        defer {
            BLAS.kernels = saved.0
            try? Engine.setNumThreads(saved.1)
        }
        for (tA, m, n, k) in [(true, 400, 1000, 32), (false, 32, 400, 400), (true, 30, 20, 10)] {
            let p = Problem(transA: tA, transB: false, m: m, n: n, k: k, pad: 0, rng: &rng)
            let inputBits = p.c0.map(\.bitPattern)
            for kernels: BLAS.Kernels in [.openBLAS, .ember, .byShape] {
                for (threads, split) in [(1, BLAS.Split.automatic), (2, .automatic), (2, .rows)] {
                    try Engine.setNumThreads(threads)
                    let expected = try p.blas(kernels, alpha: -0.25, beta: 1, split: split)
                    BLAS.kernels = kernels
                    var got = [Float](repeating: .nan, count: m * n)
                    try p.a.withUnsafeBufferPointer { pa in
                        try p.b.withUnsafeBufferPointer { pb in
                            try p.c0.withUnsafeBufferPointer { pin in
                                try got.withUnsafeMutableBufferPointer { pc in
                                    guard let pa = pa.baseAddress, let pb = pb.baseAddress, let pin = pin.baseAddress,
                                          let pc = pc.baseAddress else { return }
                                    try BLAS.gemm(transA: tA, transB: false, m: m, n: n, k: k, alpha: -0.25, a: pa, b: pb,
                                                  beta: 1, c: pc, cIn: pin, split: split)
                                }
                            }
                        }
                    }
                    BLAS.kernels = saved.0
                    XCTAssertEqual(got.map(\.bitPattern), expected.map(\.bitPattern), "\(p.name) \(kernels) \(threads) threads \(split)")
                    XCTAssertEqual(p.c0.map(\.bitPattern), inputBits, "C_in unchanged")
                }
            }
        }
    }

    /// `BLAS.linearForward` gives the bits of the bias copied in, `BLAS.gemm` with beta 1 and the
    /// ReLU when the kernels are Ember's, and the same steps with OpenBLAS's kernels when those are
    /// set; at one and two threads (the product split into column panels).
    func testLinearForwardMatchesTheSeparatePasses() throws {
        let saved = (BLAS.kernels, Engine.numThreads)
        defer {
            BLAS.kernels = saved.0
            try? Engine.setNumThreads(saved.1)
        }
        let (m, n, k) = (150, 130, 70)
        let x = (0..<(m * k)).map { _ in rng.uniform(-1, 1) }, w = (0..<(n * k)).map { _ in rng.uniform(-1, 1) }
        let bias = (0..<n).map { _ in rng.uniform(-1, 1) }
        // asGemm: the bits of the separate passes with gemm's own choice (by shape: OpenBLAS for
        // 150 rows, Ember's kernels for 40).
        for (kernels, asGemm, rows) in [(BLAS.Kernels.ember, false, m), (.openBLAS, false, m), (.byShape, true, m),
                                        (.byShape, true, 40), (.ember, true, m), (.openBLAS, true, m)] {
            BLAS.kernels = kernels
            for threads in [1, 2] {
                // At the same thread count: OpenBLAS's bits may depend on the column panels (they
                // do with its Haswell kernels on an AMD EPYC Zen 3).
                try Engine.setNumThreads(threads)
                var expected = (0..<rows).flatMap { _ in bias }
                try BLAS.gemm(transA: false, transB: true, m: rows, n: n, k: k, a: x, b: w, beta: 1, c: &expected)
                expected = expected.map { $0 > 0 ? $0 : 0 }
                var got = [Float](repeating: .nan, count: rows * n)
                try got.withUnsafeMutableBufferPointer { c in
                    try BLAS.linearForward(m: rows, n: n, k: k, x: x, weight: w, bias: bias, relu: true,
                                           c: c.baseAddress.unsafelyUnwrapped, asGemm: asGemm)
                }
                XCTAssertEqual(got.map(\.bitPattern), expected.map(\.bitPattern), "\(kernels), asGemm \(asGemm), \(rows) rows, \(threads) threads")
            }
        }
    }

    /// `.byShape` runs Ember's kernels for at most `BLAS.smallRows` rows of C and, where AVX2 is the
    /// widest instruction set, for a depth of at most `BLAS.smallRows` (a weight gradient) and for
    /// products without transA whose depth or columns are at most `BLAS.inPlaceLimit` (op(A) read in
    /// place); OpenBLAS's for the others: its results are those of the one or the other, bit for bit. Both
    /// instruction-set levels are checked (the AVX2 one by capping Ember's kernels on an AVX-512 CPU).
    func testByShapeTakesEmberKernelsForFewRowsAndOnAVX2ForShallowOrInPlaceProducts() throws {
        let saved = BLAS.kernels
        defer {
            BLAS.kernels = saved
            cember_kernels_force_isa(-1)
        }
        let shapes = [(32, 200, 1000, false, true), (64, 30, 70, false, true), (65, 30, 70, false, true),
                      (400, 400, 32, false, false), (400, 1000, 32, true, false), (300, 200, 64, true, false),
                      (300, 200, 65, true, false), (1, 100, 300, false, true), (4, 100, 300, false, false),
                      (300, 300, 300, false, false), (300, 200, 300, false, false), (300, 300, 256, false, true),
                      (300, 300, 257, false, true)]
        var levels = [Int32(cember_cpu_isa())]
        if levels[0] == 2 { levels.append(1) }
        for level in levels {
            cember_kernels_force_isa(level)
            var emberCount = 0
            for (m, n, k, tA, tB) in shapes {
                let inPlace = !tA && (k <= BLAS.inPlaceLimit || n <= BLAS.inPlaceLimit)
                let ember = m <= BLAS.smallRows || (level == 1 && (k <= BLAS.smallRows || inPlace))
                BLAS.kernels = .byShape
                XCTAssertEqual(BLAS.usesEmber(rows: m, columns: n, depth: k, transA: tA), ember,
                               "\(m) × \(n) × \(k), transA \(tA), level \(level)")
                if ember { emberCount += 1 }
                let p = Problem(transA: tA, transB: tB, m: m, n: n, k: k, pad: 0, rng: &rng)
                let expected = try p.blas(ember ? .ember : .openBLAS, alpha: 1, beta: 0)
                XCTAssertEqual(try p.blas(.byShape, alpha: 1, beta: 0).map(\.bitPattern), expected.map(\.bitPattern),
                               "\(p.name), level \(level)")
            }
            XCTAssertEqual(emberCount, level == 1 ? 10 : 4, "level \(level)")
        }
    }

    /// The default follows the advice: Ember's kernels when OpenBLAS has fallen back, else by shape.
    func testDefaultKernelsFollowTheCoreAdvice() {
        XCTAssertEqual(BLAS.defaultKernels, BLAS.coreAdvice == nil ? .byShape : .ember)
        let saved = BLAS.kernels
        defer { BLAS.kernels = saved }
        for kernels in BLAS.Kernels.allCases {
            BLAS.kernels = kernels
            XCTAssertEqual(BLAS.kernels, kernels)
        }
    }

    /// A short training run (MLP 20-64-32-1, plain SGD, 30 steps on one batch) with Ember's kernels
    /// ends with the weights of the same run with OpenBLAS's, within the rtol 1e-5 / atol 1e-6 for
    /// matrix products of docs/architecture.md#numerics-contract, loosened ×10 because 30 steps
    /// compound the last-bit differences of ~270 products (each step's update is small: lr 0.01 on
    /// weights of order 0.3).
    func testTrainingWithEmberKernelsMatchesOpenBLAS() throws {
        let x = randomTensor([32, 20], &rng), target = randomTensor([32, 1], &rng)
        let initial = [randomTensor([64, 20], &rng, -0.3, 0.3), randomTensor([64], &rng, -0.1, 0.1),
                       randomTensor([32, 64], &rng, -0.3, 0.3), randomTensor([32], &rng, -0.1, 0.1),
                       randomTensor([1, 32], &rng, -0.3, 0.3), randomTensor([1], &rng, -0.1, 0.1)]
        let saved = BLAS.kernels
        defer { BLAS.kernels = saved }
        var results: [[Tensor]] = []
        for kernels in [BLAS.Kernels.openBLAS, .ember] {
            BLAS.kernels = kernels
            var params = initial
            for _ in 0..<30 {
                let vars = params.map { Variable($0, requiresGrad: true) }
                var h = Variable(x)
                for layer in 0..<3 {
                    h = try linear(h, weight: vars[2 * layer], bias: vars[2 * layer + 1])
                    if layer < 2 { h = relu(h) }
                }
                let diff = try h - Variable(target)
                try sum(try diff * diff).backward()
                params = try zip(params, vars).map { p, v in
                    let g = try XCTUnwrap(v.grad)
                    return try Tensor(shape: p.shape, data: zip(p.data, g.data).map { $0 - 0.01 * $1 })
                }
            }
            results.append(params)
        }
        for (i, (e, o)) in zip(results[1], results[0]).enumerated() {
            assertClose(e, o, Tolerance(rtol: 1e-4, atol: 1e-5), "parameter \(i) after 30 steps")
        }
    }

    /// gemmStrided reads and writes through its leading dimensions: a product into the middle
    /// columns of a wider C equals gemm's contiguous result and leaves the other columns alone,
    /// also for an empty inner dimension (C = beta · C); too-short leading dimensions throw.
    func testStridedProductsUseTheLeadingDimensions() throws {
        let m = 3, n = 4, k = 5, ldc = 7
        let a: [Float] = (0..<(m * k)).map { Float($0 % 7) - 3 }, b: [Float] = (0..<(k * n)).map { Float($0 % 5) - 2 }
        var expected = [Float](repeating: 0, count: m * n)
        try BLAS.gemm(transA: false, transB: false, m: m, n: n, k: k, a: a, b: b, c: &expected)
        for kernels in BLAS.Kernels.allCases {
            let saved = BLAS.kernels
            defer { BLAS.kernels = saved }
            BLAS.kernels = kernels
            var c = [Float](repeating: 9, count: m * ldc)
            try c.withUnsafeMutableBufferPointer { out in
                try BLAS.gemmStrided(transA: false, transB: false, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n,
                                     c: out.baseAddress.unsafelyUnwrapped + 1, ldc: ldc)
            }
            for i in 0..<m {
                XCTAssertEqual(Array(c[(i * ldc + 1)..<(i * ldc + 1 + n)]), Array(expected[(i * n)..<(i * n + n)]), "\(kernels) row \(i)")
                XCTAssertEqual([c[i * ldc]] + c[(i * ldc + 1 + n)..<(i * ldc + ldc)], [9, 9, 9], "\(kernels) row \(i): padding untouched")
            }
            var d = [Float](repeating: 2, count: m * ldc)
            try d.withUnsafeMutableBufferPointer { out in
                try BLAS.gemmStrided(transA: false, transB: false, m: m, n: n, k: 0, a: a, lda: 1, b: b, ldb: n,
                                     beta: 0.5, c: out.baseAddress.unsafelyUnwrapped, ldc: ldc)
            }
            for i in 0..<m {
                XCTAssertEqual(Array(d[(i * ldc)..<(i * ldc + n)]), [1, 1, 1, 1], "\(kernels) k = 0: C = beta · C")
                XCTAssertEqual(Array(d[(i * ldc + n)..<(i * ldc + ldc)]), [2, 2, 2], "\(kernels) k = 0: padding untouched")
            }
        }
        var unused = [Float](repeating: 0, count: m * n)
        XCTAssertThrowsError(try BLAS.gemmStrided(transA: false, transB: false, m: m, n: n, k: k, a: a, lda: k - 1, b: b,
                                                  ldb: n, c: &unused, ldc: n)) { error in
            XCTAssertTrue("\(error)".contains("leading dimensions"), "\(error)")
        }
    }
}

