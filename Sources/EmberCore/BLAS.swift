import CEmberKernels
import CEmberSupport
import COpenBLAS

/// The engine's window on BLAS (OpenBLAS): matrix products, the kernel core and threads.
///
/// This file is the only place in Ember that calls BLAS; it checks that every dimension fits
/// BLAS's 32-bit integers before the call. Matrix products run OpenBLAS's `sgemm` or Ember's own
/// kernels (`cember_sgemm`), as `kernels` says.
public enum BLAS {
    /// The kernels that run `gemm`'s matrix products.
    public enum Kernels: Int32, Sendable, CaseIterable {
        /// OpenBLAS's `cblas_sgemm`.
        case openBLAS = 0
        /// Ember's own packed, register-tiled kernels (`cember_sgemm` in CEmberKernels), with
        /// AVX-512, AVX2 + FMA and baseline variants chosen at run time. They match OpenBLAS's
        /// AVX-512 kernels in speed and are several times faster than its "Prescott" fallback.
        case ember = 1
        /// Ember's kernels for products with at most `smallRows` rows of C, OpenBLAS's for the
        /// others. With few rows (a batch of 32 through a layer: the forward product and the
        /// input gradient) Ember's kernels read the weight where it is, while OpenBLAS packs it
        /// first, which costs about as much as the product when the weight comes cold from L3.
        /// Measured on an AMD EPYC (Zen 4) in the width-400 MLP (a one-off C micro-benchmark; the
        /// step: `ember-bench mlp` with `BENCH_KERNELS=openblas|byshape`): forward and input-gradient
        /// products 13–25% faster; OpenBLAS stays faster for the weight gradient (k = 32). Where
        /// AVX2 is the widest instruction set, Ember's kernels also take shallow products and
        /// those whose op(A) they read in place (`usesEmber(rows:columns:depth:transA:)`).
        case byShape = 2
    }

    /// The rows of C up to which `byShape` runs Ember's kernels (`cember_sgemm` reads op(B) in
    /// place up to the same count).
    public static let smallRows = 64

    /// The kernels that run `gemm`'s matrix products, process-wide.
    ///
    /// Until set, `.ember` when OpenBLAS has fallen back to kernels that leave this CPU's vector
    /// units unused (`coreAdvice` is not `nil`), `.byShape` otherwise. Results of the two kernel
    /// families differ in the last bits (rounding of long sums), as those of two BLAS libraries do;
    /// each product's result depends only on its shape and operands.
    public static var kernels: Kernels {
        get { Kernels(rawValue: cember_gemm_kernels()) ?? defaultKernels }
        set { cember_set_gemm_kernels(newValue.rawValue) }
    }

    /// `kernels` until set (decided once: the OpenBLAS core and the CPU do not change).
    static let defaultKernels: Kernels = coreAdvice == nil ? .byShape : .ember

    /// The name of the kernel core OpenBLAS selected at start-up (e.g. "SkylakeX", "Prescott").
    ///
    /// Debian's OpenBLAS 0.3.21 does not recognise every CPU and may fall back to slow
    /// generic kernels unless `OPENBLAS_CORETYPE` is set before the process starts.
    public static var coreName: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// How to make matrix products faster when OpenBLAS runs kernels that leave this CPU's vector
    /// units unused, or `nil` when its kernels fit the CPU.
    ///
    /// Debian's OpenBLAS 0.3.21 does not recognise some newer CPUs and falls back to its
    /// "Prescott" (SSE3) kernels, several times slower than the AVX2 or AVX-512 ones. Only the
    /// environment variable `OPENBLAS_CORETYPE`, set before the process starts, changes that; the
    /// advice names the value to set. Ember's own kernels choose their instruction set by
    /// themselves.
    public static var coreAdvice: String? { coreAdvice(core: coreName, cpuISA: Int(cember_cpu_isa())) }

    /// OpenBLAS kernel cores (`openblas_get_corename()`, lower-cased) that use neither AVX2 nor AVX-512.
    static let coresWithoutAVX2: Set<String> = [
        "unknown", "katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn", "dunnington",
        "nehalem", "athlon", "opteron", "opteron(sse3)", "barcelona", "nano", "sandybridge", "bobcat", "bulldozer",
        "piledriver", "steamroller",
    ]

    /// The advice for OpenBLAS core `core` on a CPU whose best instruction set is `cpuISA`
    /// (2 AVX-512, 1 AVX2, 0 neither).
    static func coreAdvice(core: String, cpuISA: Int) -> String? {
        guard cpuISA >= 1, coresWithoutAVX2.contains(core.lowercased()) else { return nil }
        let (units, value) = cpuISA >= 2 ? ("AVX-512", "SkylakeX") : ("AVX2", "Haswell")
        return "OpenBLAS runs its '\(core)' kernels, which leave this CPU's \(units) units unused. Ember runs its "
            + "own matrix-product kernels instead, but everything else in this process that calls OpenBLAS (R's own "
            + "matrix products, for one) runs several times slower than it could. Set the environment variable "
            + "OPENBLAS_CORETYPE=\(value) before the process starts (for R, in ~/.Renviron or before starting R); "
            + "the BLAS core Ember reports then reads '\(value)'."
    }

    /// OpenBLAS's build configuration string.
    public static var config: String {
        guard let p = openblas_get_config() else { return "unknown" }
        return String(cString: p)
    }

    /// Number of threads OpenBLAS uses (1 once Ember's engine has started: see `Engine`).
    public static var numThreads: Int { Int(openblas_get_num_threads()) }

    /// Sets the number of threads OpenBLAS uses (at least 1). Ember keeps OpenBLAS at one thread
    /// and splits large products over its own threads; with more OpenBLAS threads, `gemm` leaves
    /// the splitting to OpenBLAS.
    public static func setNumThreads(_ n: Int) throws {
        guard n >= 1 && n <= 1024 else {
            throw EmberError.invalidArgument("num_threads", "expected an integer in 1...1024, got \(n)")
        }
        openblas_set_num_threads(Int32(n))
    }

    /// How `gemm` cuts a product over Ember's threads.
    ///
    /// Each thread keeps what it computes in its own caches. When a network's layers cut their
    /// weight the same way in every product of a step, no thread reads weight rows that another
    /// has just written. That matters when the threads sit on different dies of the CPU (chiplets
    /// that share no last-level cache, as two vCPUs of a virtual machine may): a cache line written
    /// by one die and read by the other crosses between them. A 12 × 400 MLP's SGD step at two
    /// threads so placed took 5.0–6.1 ms with the automatic cut against 3.7–4.3 ms with a weight's
    /// rows on one thread throughout, and 3.3–3.5 ms once the passes between the products followed
    /// the same panels (2.7–2.9 ms with both threads on one die).
    public enum Split {
        /// Panels of C's columns, or of its rows when C is taller than wide.
        case automatic
        /// Panels of C's rows: for a weight gradient (C is the weight's shape), the rows the
        /// forward product `x·Wᵀ` gave the same thread as its panels of output columns.
        case rows
        /// Blocks of k, the depth: for an input gradient `dY·W`, whose k runs over W's rows, each
        /// thread reads only its own rows of W. Every block after the first thread's goes to
        /// `scratch` (m × n floats per block), and the blocks are then added to C in order: with
        /// Ember's kernels the same bits as the whole product (`cember_sgemm_depth_block`). Used
        /// when Ember's kernels run the product, alpha is 1 and beta 0, k has at least two blocks
        /// and `scratch` holds `count` floats, enough; otherwise the product is cut as `.automatic`.
        case depth(scratch: UnsafeMutablePointer<Float>, count: Int)
    }

    /// The blocks Ember's kernels sum k in (`cember_sgemm_depth_block`): their size (the last one
    /// may be shorter) and count; `Split.depth` cuts k at their boundaries.
    public static func depthBlocks(k: Int) -> (size: Int, count: Int) {
        guard k > 0 else { return (0, 0) }
        let size = Int(cember_sgemm_depth_block(Int64(k)))
        return (size, (k + size - 1) / size)
    }

    /// The floats of scratch `Split.depth` needs for a product of m × n over depth k at most
    /// (0 when it would not cut k).
    public static func depthScratchCount(m: Int, n: Int, k: Int) -> Int {
        let blocks = depthBlocks(k: k).count
        return blocks > 1 ? (blocks - 1) * m * n : 0
    }

    /// C = alpha · op(A) · op(B) + beta · C for row-major matrices.
    ///
    /// `op(A)` is m×k, `op(B)` is k×n, C is m×n. With `transA`, A is stored k×m; with `transB`,
    /// B is stored n×k.
    ///
    /// OpenBLAS runs single-threaded (see `Engine`); a product of at least `splitWork`
    /// multiply-adds is cut over the threads of Ember's pool as `split` says, each part a
    /// single-threaded call: by default into panels of C's columns (or rows, when C is taller than
    /// wide). One pool does all the work: there are no OpenBLAS threads left spinning while
    /// Ember's threads run, and nothing nests. The calls go to OpenBLAS or to Ember's kernels as
    /// `kernels` says; with Ember's, the result does not depend on the number of threads or on
    /// `split`; with OpenBLAS's, it depends on the number of threads set (`Engine.setNumThreads`,
    /// how many panels) but not on where the panels run (see `inPanels`).
    ///
    /// `columnsDone(lo, size)` runs once for every panel of C's columns `lo..<lo + size` when it
    /// is final, on the thread that finished it, when the product is cut into column panels (or
    /// along k: its sums); otherwise once for all of C after the product. The caller's next pass
    /// over C (an activation's gradient) then reads what the same thread has just written.
    ///
    /// With `cIn` (an m×n matrix that is C itself or does not overlap it), beta·C is read from
    /// `cIn` instead: C = alpha · op(A) · op(B) + beta · C_in, the same bits as copying C_in into C
    /// first. Ember's kernels read C_in in their epilogue where they pack op(A) (a weight
    /// gradient's update: no copy) and copy it into C first on their other paths; with OpenBLAS
    /// each panel of C_in is copied into C before its product.
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, cIn: UnsafePointer<Float>? = nil, split: Split = .automatic,
        columnsDone: (_ lo: Int, _ size: Int) -> Void = { _, _ in }
    ) throws {
        guard Int32(exactly: m) != nil, Int32(exactly: n) != nil, Int32(exactly: k) != nil, m >= 0, n >= 0, k >= 0 else {
            throw EmberError(.overflow, "[matmul] dimensions m=\(m), n=\(n), k=\(k) must fit 32-bit BLAS integers")
        }
        if m == 0 || n == 0 { return }
        // C_in matters only where beta·C is read.
        let cIn = beta != 0 && cIn != UnsafePointer(c) ? cIn : nil
        if k == 0 {
            if let cIn { c.update(from: cIn, count: m * n) }
            scale(m: m, n: n, beta: beta, c: c, ldc: n)
            columnsDone(0, n)
            return
        }
        let lda = transA ? m : k, ldb = transB ? k : n, ember = usesEmber(rows: m, columns: n, depth: k, transA: transA)
        let sgemm = sgemmCall(ember: ember)
        /// One call for the panel of `rows` × `columns` of C at `offset` (row-major, rows n apart).
        func product(_ rows: Int, _ columns: Int, _ ap: UnsafePointer<Float>, _ bp: UnsafePointer<Float>, _ offset: Int) {
            guard let cIn else { return sgemm(transA, transB, rows, columns, k, alpha, ap, lda, bp, ldb, beta, c + offset, n) }
            if ember {
                cember_sgemm_from(transA ? 1 : 0, transB ? 1 : 0, Int64(rows), Int64(columns), Int64(k), alpha, ap,
                                  Int64(max(lda, 1)), bp, Int64(max(ldb, 1)), beta, cIn + offset, c + offset, Int64(n))
                return
            }
            for r in 0..<rows { (c + offset + r * n).update(from: cIn + offset + r * n, count: columns) }
            sgemm(transA, transB, rows, columns, k, alpha, ap, lda, bp, ldb, beta, c + offset, n)
        }
        if case let .depth(scratch, count) = split, alpha == 1, beta == 0,
           byDepth(transA: transA, transB: transB, m: m, n: n, k: k, a: a, b: b, c: c, scratch: scratch, count: count,
                   columnsDone: columnsDone) {
            return
        }
        var rows = false
        if case .rows = split { rows = true }
        let columnPanels = inPanels(m: m, n: n, k: k, ember: ember, rows: rows) { byColumns, lo, size in
            if size == (byColumns ? n : m) {
                product(m, n, a, b, 0)
            } else if byColumns {
                product(m, size, a, transB ? b + lo * k : b + lo, lo)
            } else {
                product(size, n, transA ? a + lo : a + lo * k, b, lo * n)
            }
            if byColumns { columnsDone(lo, size) }
        }
        if !columnPanels { columnsDone(0, n) }
    }

    /// `gemm` with k cut into blocks of `cember_sgemm_depth_block(k)` over Ember's threads (alpha 1,
    /// beta 0), or false (nothing done) when that does not apply: not Ember's kernels, fewer than
    /// two blocks or threads, too little work, or too little scratch. Thread t takes blocks
    /// `t·blocks/threads ..< (t+1)·blocks/threads`; the first thread's go straight into C (the
    /// first with beta 0, the others with beta 1, which is how the kernel adds a block), the others'
    /// each alone into scratch; then the scratch blocks are added to C in order, in panels of C's
    /// columns. Every element gets the kernel's own sequence of roundings: the same bits.
    private static func byDepth(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>,
                                b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
                                scratch: UnsafeMutablePointer<Float>, count: Int,
                                columnsDone: (Int, Int) -> Void) -> Bool {
        let (block, blocks) = depthBlocks(k: k), threads = Swift.min(Parallel.numThreads, blocks)
        guard usesEmber(rows: m, columns: n, depth: k, transA: transA), threads > 1, Double(m) * Double(n) * Double(k) >= Double(splitWork),
              count >= (blocks - 1) * m * n, block >= farPanel || !Parallel.threadsOnTwoDies else { return false }
        let lda = transA ? m : k, ldb = transB ? k : n, firstEnd = blocks / threads
        Parallel.forRange(threads, minChunk: 1) { first, end in
            for t in first..<end {
                for blk in (t * blocks / threads)..<((t + 1) * blocks / threads) {
                    let lo = blk * block, depth = Swift.min(block, k - lo)
                    let ap = transA ? a + lo * m : a + lo, bp = transB ? b + lo : b + lo * n
                    let out = blk < firstEnd ? c : scratch + (blk - 1) * m * n
                    emberSgemm(transA, transB, m, n, depth, 1, ap, lda, bp, ldb, blk > 0 && blk < firstEnd ? 1 : 0, out, n)
                }
            }
        }
        let columnPanels = inPanels(m: m, n: n, k: k, ember: true) { byColumns, lo, size in
            for blk in firstEnd..<blocks {
                let part = UnsafePointer(scratch + (blk - 1) * m * n)
                if byColumns {
                    for r in 0..<m {
                        let dst = c + r * n + lo, src = part + r * n + lo
                        for j in 0..<size { dst[j] += src[j] }
                    }
                } else {
                    let dst = c + lo * n, src = part + lo * n
                    for j in 0..<(size * n) { dst[j] += src[j] }
                }
            }
            if byColumns { columnsDone(lo, size) }
        }
        if !columnPanels { columnsDone(0, n) }
        return true
    }

    /// Runs `body(byColumns, lo, size)` for the panels of C [m, n] that a product of k
    /// multiply-adds per element is cut into over Ember's threads (columns `lo..<lo + size`, or
    /// rows when C is taller than wide or `rows` is true), or once for the whole of C (size = n,
    /// or m) when it is not cut: from `splitWork` multiply-adds, when the kernels are Ember's
    /// (`ember`) or OpenBLAS itself runs one thread. Returns whether `body` got panels of columns.
    ///
    /// Ember's kernels give the same bits however C is cut, so their products are cut for speed:
    /// one panel per thread the caller may use (one inside `Parallel.serially`),
    /// and across two dies (`Parallel.threadsOnTwoDies`) into panels of at least `farPanel`.
    /// OpenBLAS's bits depend on the cut, so its products are always cut into as many panels as
    /// `Engine.setNumThreads` asked for, whatever the topology measurement says; inside a serial
    /// region, or across two dies where a thread would get less than `farPanel`, one thread runs
    /// several of them.
    @discardableResult
    private static func inPanels(m: Int, n: Int, k: Int, ember: Bool, rows: Bool = false,
                                 _ body: (Bool, Int, Int) -> Void) -> Bool {
        let byColumns = !rows && n >= m, extent = byColumns ? n : m
        var panels = ember ? Parallel.numThreads : Parallel.requestedThreads
        if panels < 2 || Double(m) * Double(n) * Double(k) < Double(splitWork) || !(ember || numThreads == 1) {
            panels = 1
        } else if ember, Parallel.threadsOnTwoDies {
            // Across dies, only panels of at least `farPanel` (the round trip is measured only
            // where a product is split).
            panels = Swift.min(panels, extent / farPanel)
        }
        guard panels > 1 else {
            body(byColumns, 0, extent)
            return byColumns
        }
        // Panels of whole 16-float vectors.
        let panel = ((extent + panels - 1) / panels + 15) / 16 * 16
        let count = (extent + panel - 1) / panel
        // OpenBLAS's panels across dies: at least `farPanel` per thread.
        let perThread = !ember && Parallel.threadsOnTwoDies ? (farPanel + panel - 1) / panel : 1
        Parallel.forRange(count, minChunk: perThread) { first, end in
            for p in first..<end {
                let lo = p * panel
                body(byColumns, lo, Swift.min(panel, extent - lo))
            }
        }
        return byColumns
    }

    /// A layer's forward pass into C [m, n]: `C = relu?(x · Wᵀ + bias)` with x [m, k], W [n, k]
    /// and `bias` [n] (or nil), the ReLU (`x > 0 ? x : 0`) when `relu` is true.
    ///
    /// With Ember's kernels (`kernels` other than `.openBLAS`, for any m) the bias and the ReLU are
    /// applied as the product's tiles are stored (`cember_sgemm_bias_relu`): no pass to copy the
    /// bias into C and none for the ReLU, the same bits as those passes around Ember's product.
    /// With `.openBLAS`: the bias copied into C, the product with beta 1, then the ReLU.
    ///
    /// With `asGemm`, Ember's epilogue only where `gemm` runs Ember's kernels for m rows, so that
    /// the result has the bits of the bias copy and `gemm` with beta 1 under every kernel choice
    /// (what training computes: the tape's `linear` and the compiled step agree bit for bit).
    public static func linearForward(m: Int, n: Int, k: Int, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                     bias: UnsafePointer<Float>?, relu: Bool, c: UnsafeMutablePointer<Float>,
                                     asGemm: Bool = false) throws {
        guard Int32(exactly: m) != nil, Int32(exactly: n) != nil, Int32(exactly: k) != nil, m >= 0, n >= 0, k >= 0 else {
            throw EmberError(.overflow, "[linear] dimensions m=\(m), n=\(n), k=\(k) must fit 32-bit BLAS integers")
        }
        if m == 0 || n == 0 { return }
        if asGemm ? usesEmber(rows: m, columns: n, depth: k, transA: false) : kernels != .openBLAS {
            inPanels(m: m, n: n, k: k, ember: true) { byColumns, lo, size in
                if byColumns {
                    cember_sgemm_bias_relu(0, 1, Int64(m), Int64(size), Int64(k), x, Int64(max(k, 1)), weight + lo * k,
                                           Int64(max(k, 1)), bias.map { $0 + lo }, relu ? 1 : 0, c + lo, Int64(n))
                } else {
                    cember_sgemm_bias_relu(0, 1, Int64(size), Int64(n), Int64(k), x + lo * k, Int64(max(k, 1)), weight,
                                           Int64(max(k, 1)), bias, relu ? 1 : 0, c + lo * n, Int64(n))
                }
            }
            return
        }
        if let bias {
            for r in 0..<m { (c + r * n).update(from: bias, count: n) }
        }
        try gemm(transA: false, transB: true, m: m, n: n, k: k, a: x, b: weight, beta: bias == nil ? 0 : 1, c: c)
        if relu {
            for i in 0..<(m * n) where !(c[i] > 0) { c[i] = 0 }
        }
    }

    /// C = alpha · op(A) · op(B) + beta · C with explicit leading dimensions (row-major), as one
    /// single-threaded call to the kernels `kernels` selects: for many small products that the
    /// caller spreads over threads itself (e.g. one per sample and attention head, reading heads
    /// straight out of a packed projection). `lda`, `ldb`, `ldc` are the row strides of A, B and
    /// C as stored.
    /// - Throws: when a dimension or leading dimension does not fit a 32-bit BLAS integer, or a
    ///   leading dimension is smaller than its stored row.
    public static func gemmStrided(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) throws {
        try checkStrided(transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc)
        if m == 0 || n == 0 { return }
        if k == 0 {
            scale(m: m, n: n, beta: beta, c: c, ldc: ldc)
            return
        }
        gemmStridedUnchecked(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                             a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }

    /// Throws unless `gemmStrided`'s arguments fit 32-bit BLAS integers and each leading
    /// dimension covers its stored row.
    static func checkStrided(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int) throws {
        for v in [m, n, k, lda, ldb, ldc] {
            guard v >= 0, Int32(exactly: v) != nil else {
                throw EmberError(.overflow, "[matmul] dimensions m=\(m), n=\(n), k=\(k), lda=\(lda), ldb=\(ldb), ldc=\(ldc) must fit 32-bit BLAS integers")
            }
        }
        guard lda >= (transA ? m : k), ldb >= (transB ? k : n), ldc >= n else {
            throw EmberError.invalidArgument("matmul", "leading dimensions lda=\(lda), ldb=\(ldb), ldc=\(ldc) are shorter than the rows they stride")
        }
    }

    /// `gemmStrided` without the checks (done once by the caller with `checkStrided`), for loops
    /// inside `Parallel.forRange`; m, n and k must be positive.
    static func gemmStridedUnchecked(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        selectedSgemm(rows: m, columns: n, depth: k, transA: transA)(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }

    /// C = beta · C for an empty inner dimension (BLAS may not touch C at all then); rows `ldc` apart.
    private static func scale(m: Int, n: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        for i in 0..<m {
            for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] }
        }
    }

    /// One single-threaded product call: C = alpha · op(A) · op(B) + beta · C with leading dimensions.
    private typealias Sgemm = (Bool, Bool, Int, Int, Int, Float, UnsafePointer<Float>, Int, UnsafePointer<Float>, Int,
                               Float, UnsafeMutablePointer<Float>, Int) -> Void

    /// Whether a product with `m` rows of C, `n` columns, depth `k` and op(A) = Aᵀ (`transA`) or A
    /// runs Ember's kernels, as `kernels` says.
    ///
    /// By shape, every product of at most `smallRows` rows runs Ember's, one row included (where
    /// OpenBLAS's small-matrix path is faster: 0.21 µs for one row through a hot 64 × 64 weight
    /// against Ember's 0.74 on an AMD EPYC Zen 4, in a one-off C micro-benchmark): with Ember's
    /// kernels on every path of a prediction (`BLAS.linearForward` runs them for any batch), a
    /// row's prediction has the same bits whatever else is predicted with it.
    ///
    /// Products with more rows run OpenBLAS's, except on CPUs whose widest vectors are AVX2's
    /// (`cember_kernels_isa()` 1). There Ember's kernels take
    /// - a depth of at most `smallRows` (a weight gradient, the batch as k): Ember's 6 × 16 tiles
    ///   walked along C's rows beat OpenBLAS's Haswell kernels (on an AMD EPYC Zen 3, one thread,
    ///   the weight gradients of a 16 × 400 MLP with a batch of 32: 2.29 ms against 3.02, of an
    ///   8 × 200 one 0.42 against 0.52; a one-off C micro-benchmark), while on Zen 4 OpenBLAS's
    ///   AVX-512 kernels were faster for them;
    /// - products without `transA` whose op(A) the kernels read in place (depth or columns at most
    ///   `inPlaceLimit`): a forward product of many rows and an input gradient (Zen 3, one thread,
    ///   minima of three runs: the FT-Transformer's 1856 × 192 · 192 × 192 1.44 ms against 1.57,
    ///   1856 × 192 · 192 × 768 5.95 against 6.15; 4096 × 64 · 64 × 64 0.38 against 0.49). Its
    ///   weight gradients (192 × 1856 · 1856 × 192: 1.55 against 1.51) stay with OpenBLAS.
    static func usesEmber(rows m: Int, columns n: Int, depth k: Int, transA: Bool) -> Bool {
        switch kernels {
        case .ember: return true
        case .openBLAS: return false
        case .byShape:
            if m <= smallRows { return true }
            guard cember_kernels_isa() == 1 else { return false }
            return k <= smallRows || (!transA && (k <= inPlaceLimit || n <= inPlaceLimit))
        }
    }

    /// The depth or columns up to which Ember's kernels read op(A) in place on AVX2 (their k block;
    /// `CEMBER_GEMM_IN_PLACE_LIMIT`, which `cember_sgemm` itself uses).
    static let inPlaceLimit = Int(CEMBER_GEMM_IN_PLACE_LIMIT)

    /// The product call of the kernels `kernels` selects for a product (see `usesEmber`).
    private static func selectedSgemm(rows m: Int, columns n: Int, depth k: Int, transA: Bool) -> Sgemm {
        sgemmCall(ember: usesEmber(rows: m, columns: n, depth: k, transA: transA))
    }

    /// Ember's product call, or OpenBLAS's.
    private static func sgemmCall(ember: Bool) -> Sgemm {
        if ember { return emberSgemm }
        return openBLASSgemm
    }

    /// Multiply-adds from which `gemm` splits a product over Ember's threads (~10 µs of work).
    public static let splitWork = 1 << 20

    /// Columns (or rows) of C per thread below which `gemm` does not split a product over the
    /// threads when the pool's threads sit on two dies of the CPU (`Parallel.threadsOnTwoDies`),
    /// nor cut k into blocks shorter than this (OpenBLAS's products keep their panels, run on
    /// one thread). Each thread then reads the whole input that the other thread
    /// wrote across the dies (a batch of 32 through a layer: 32 × k floats) for half the product.
    /// Measured by hand at two threads on an AMD EPYC with the vCPUs on two dies (a throw-away
    /// build that raised `splitWork`): an 8 × 200 MLP's SGD step took 1.22 ms split as on one die,
    /// 1.00 ms unsplit (as at one thread); a 12 × 400 one 3.35 ms split against 5.0 unsplit.
    public static let farPanel = 160

    /// One cember_sgemm call (Ember's kernels).
    private static func emberSgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                                   _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                                   _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        cember_sgemm(transA ? 1 : 0, transB ? 1 : 0, Int64(m), Int64(n), Int64(k), alpha, a, Int64(max(lda, 1)), b,
                     Int64(max(ldb, 1)), beta, c, Int64(max(ldc, 1)))
    }

    /// One cblas_sgemm call; every dimension and leading dimension has been checked to fit Int32.
    private static func openBLASSgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                                      _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                                      _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(truncatingIfNeeded: m), Int32(truncatingIfNeeded: n), Int32(truncatingIfNeeded: k), alpha,
                    a, Int32(truncatingIfNeeded: max(lda, 1)), b, Int32(truncatingIfNeeded: max(ldb, 1)), beta,
                    c, Int32(truncatingIfNeeded: max(ldc, 1)))
    }
}
