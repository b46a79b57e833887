import CEmberKernels

/// 1-d and 2-d convolution (PyTorch's `conv1d`/`conv2d`: zero padding, stride, dilation, groups)
/// as im2col + GEMM.
///
/// Few output channels per group (small CNNs) take the direct path of Convolution+Direct.swift:
/// per-thread blocks of samples and GEMM micro-kernels of our own. The BLAS path below serves
/// wider convolutions. 3×3 convolutions of stride 1 with 16 or more channels on maps of 4×4 and
/// more run Winograd's F(2×2, 3×3) (Convolution+Winograd.swift) for the forward pass and the
/// input gradient; maps smaller than the kernel run densely (Convolution+Dense.swift).
///
/// Forward, for a chunk of samples: the receptive fields of every output position are copied into
/// a column matrix `cols` [C_in·kH·kW, samples·P] (P = output positions per sample), then one GEMM
/// per group gives `out_g = W_g · cols_g`. Backward: `dW_g += dY_g · cols_gᵀ`,
/// `dcols_g = W_gᵀ · dY_g` folded back onto the input (col2im), `db = Σ dY`. The columns are
/// recomputed in backward rather than kept on the tape: they are kH·kW times the input's size.
/// A 1-d convolution is the 2-d one over an image of height 1.
///
/// Depthwise convolutions (one input channel per group) skip im2col and run direct loops instead.
///
/// im2col/col2im run on Ember's threads (independent rows, samples and channels); the GEMMs run on
/// OpenBLAS's threads, outside any Ember parallel loop (never nested). Strided inner loops index
/// with wrapping arithmetic (`&+`, `&*`): validation has bounded every index to the tensors, and
/// an overflow check per element would cost as much as the work.

/// Per-dimension parameters as PyTorch prints them: `3` for 1-d ops, `(3, 2)` for 2-d ones.
/// Checks stride (>= 1), padding (>= 0) and dilation (>= 1) of a convolution or pooling.
func checkSpatialParameters(_ op: String, stride: [Int], padding: [Int], dilation: [Int]) throws {
    guard stride.allSatisfy({ $0 >= 1 }) else {
        throw EmberError.invalidArgument(op, "stride must be >= 1, got \(spatialString(stride))")
    }
    guard dilation.allSatisfy({ $0 >= 1 }) else {
        throw EmberError.invalidArgument(op, "dilation must be >= 1, got \(spatialString(dilation))")
    }
    guard padding.allSatisfy({ $0 >= 0 }) else {
        throw EmberError.invalidArgument(op, "padding must be >= 0, got \(spatialString(padding))")
    }
}

func spatialString(_ v: [Int]) -> String {
    v.count == 1 ? String(v[0]) : "(" + v.map(String.init).joined(separator: ", ") + ")"
}

/// Number of window positions along one dimension, `floor((L + 2p - d(K-1) - 1) / s) + 1`, or nil
/// when the dilated window does not fit into the padded input at all.
/// - Throws: `EmberError` (.overflow) when the sizes overflow `Int`.
func slidingWindowCount(input: Int, kernel: Int, stride: Int, padding: Int, dilation: Int, op: String) throws -> Int? {
    let (span, o1) = (kernel - 1).multipliedReportingOverflow(by: dilation)
    let (twoPad, o2) = padding.multipliedReportingOverflow(by: 2)
    let (padded, o3) = input.addingReportingOverflow(twoPad)
    guard !o1, !o2, !o3, span < Int.max else {
        throw EmberError(.overflow, "[\(op)] input size \(input), padding \(padding), kernel \(kernel) and dilation \(dilation) overflow")
    }
    let extent = span + 1
    guard padded >= extent else { return nil }
    return (padded - extent) / stride + 1
}

/// The output positions `[lo, hi)` along one dimension whose input index `pos · stride + offset`
/// falls inside `0..<extent` (the others read zero padding).
@inline(__always)
func validWindowRange(offset: Int, stride: Int, extent: Int, count: Int) -> (Int, Int) {
    // ceil(-offset / stride), written so that a huge stride cannot overflow.
    let lo = offset >= 0 ? 0 : Swift.min(count, -offset / stride + (-offset % stride == 0 ? 0 : 1))
    let last = extent - 1 - offset
    let hi = last < 0 ? 0 : Swift.min(count, last / stride + 1)
    return (lo, Swift.max(lo, hi))
}

/// Sizes of one convolution, validated; 1-d convolutions have `inH = kH = outH = 1`.
struct ConvGeometry {
    let batch: Int, inChannels: Int, outChannels: Int, groups: Int
    // Variables only so that `cropped` can narrow the kernel to its live taps.
    private(set) var inH: Int, inW: Int, kH: Int, kW: Int
    private(set) var strideH: Int, strideW: Int, padH: Int, padW: Int, dilH: Int, dilW: Int
    let outH: Int, outW: Int

    var inPerGroup: Int { inChannels / groups }
    var outPerGroup: Int { outChannels / groups }
    var kernelArea: Int { kH * kW }
    /// Rows of the column matrix: C_in · kH · kW.
    var colRows: Int { inChannels * kH * kW }
    /// Rows of one group's block of the column matrix (the GEMMs' inner dimension).
    var groupRows: Int { inPerGroup * kH * kW }
    var inPlane: Int { inH * inW }
    /// Output positions per sample and channel (P).
    var outPlane: Int { outH * outW }

    /// Column-matrix elements (floats) one chunk of samples may use before it is split further.
    static let columnBudget = 1 << 22

    /// Validates shapes and parameters of `op` ("conv1d" or "conv2d"); `stride`, `padding` and
    /// `dilation` hold one entry per spatial dimension.
    init(op: String, input xs: [Int], weight ws: [Int], bias bs: [Int]?,
         stride: [Int], padding: [Int], dilation: [Int], groups: Int) throws {
        let s = stride.count
        let layout = s == 1 ? "[N, C_in, L]" : "[N, C_in, H, W]"
        let wLayout = s == 1 ? "[C_out, C_in/groups, K]" : "[C_out, C_in/groups, kH, kW]"
        guard xs.count == s + 2 else {
            throw EmberError.shapeMismatch(op, "expected input of rank \(s + 2) \(layout), got \(shapeString(xs))")
        }
        guard ws.count == s + 2 else {
            throw EmberError.shapeMismatch(op, "expected weight of rank \(s + 2) \(wLayout), got \(shapeString(ws))")
        }
        let shapes = "(input \(shapeString(xs)), weight \(shapeString(ws)))"
        try checkSpatialParameters(op, stride: stride, padding: padding, dilation: dilation)
        guard groups >= 1 else {
            throw EmberError.invalidArgument(op, "groups must be >= 1, got \(groups)")
        }
        let kernel = Array(ws[2...])
        guard kernel.allSatisfy({ $0 >= 1 }) else {
            throw EmberError.shapeMismatch(op, "kernel size must be >= 1, got \(spatialString(kernel)) (weight \(shapeString(ws)))")
        }
        let cIn = xs[1], cOut = ws[0]
        guard cIn % groups == 0 else {
            throw EmberError.invalidArgument(op, "groups \(groups) must divide the input channels \(cIn) \(shapes)")
        }
        guard cOut % groups == 0 else {
            throw EmberError.invalidArgument(op, "groups \(groups) must divide the output channels \(cOut) \(shapes)")
        }
        let (needed, overflow) = ws[1].multipliedReportingOverflow(by: groups)
        guard !overflow, needed == cIn else {
            let perGroup = "\(ws[1]) per group × \(groups) groups"
            let expected = groups == 1 ? "\(ws[1]) channels" : overflow ? "channels \(perGroup)" : "\(needed) channels (\(perGroup))"
            throw EmberError.shapeMismatch(op, "expected input with \(expected), got \(cIn) \(shapes)")
        }
        if let bs, bs != [cOut] {
            throw EmberError.shapeMismatch(op, "expected bias of shape [\(cOut)], got \(shapeString(bs))")
        }
        let spatial = Array(xs[2...])
        var out: [Int] = []
        for d in 0..<s {
            guard let o = try slidingWindowCount(input: spatial[d], kernel: kernel[d], stride: stride[d],
                                                 padding: padding[d], dilation: dilation[d], op: op) else {
                throw EmberError.shapeMismatch(
                    op, "input size \(spatialString(spatial)) with padding \(spatialString(padding)) is smaller than the kernel " +
                        "\(spatialString(kernel)) with dilation \(spatialString(dilation)) \(shapes)")
            }
            out.append(o)
        }
        _ = try Tensor.elementCount([xs[0], cOut] + out, op: op)
        // The column matrix of one sample and the GEMM dimensions must fit (BLAS takes 32-bit ints).
        let positions = try Tensor.elementCount(out, op: op)
        let rows = try Tensor.elementCount([cIn] + kernel, op: op)
        _ = try Tensor.elementCount([rows, positions], op: op)
        guard rows <= Int(Int32.max), positions <= Int(Int32.max), cOut <= Int(Int32.max) else {
            throw EmberError(.overflow, "[\(op)] \(rows) column rows × \(positions) output positions exceed 32-bit BLAS dimensions \(shapes)")
        }
        batch = xs[0]
        inChannels = cIn
        outChannels = cOut
        self.groups = groups
        inH = s == 1 ? 1 : spatial[0]
        inW = spatial[s - 1]
        kH = s == 1 ? 1 : kernel[0]
        kW = kernel[s - 1]
        strideH = s == 1 ? 1 : stride[0]
        strideW = stride[s - 1]
        padH = s == 1 ? 0 : padding[0]
        padW = padding[s - 1]
        dilH = s == 1 ? 1 : dilation[0]
        dilW = dilation[s - 1]
        outH = s == 1 ? 1 : out[0]
        outW = out[s - 1]
    }

    /// Samples per chunk: as many as fit `columnBudget` column elements (at least one), with the
    /// GEMM's column count `samples · P` inside 32-bit range.
    func samplesPerChunk(limit: Int) -> Int {
        let perSample = Swift.max(1, colRows * outPlane, outChannels * outPlane)
        let byBudget = Swift.max(1, ConvGeometry.columnBudget / perSample)
        let byBLAS = Swift.max(1, Int(Int32.max) / Swift.max(1, outPlane))
        return Swift.max(1, Swift.min(batch, byBudget, byBLAS, limit))
    }

    /// Minimum parallel-loop chunk for units of `work` elements each.
    func minUnits(_ work: Int) -> Int { Swift.max(1, Parallel.minimumChunk / Swift.max(1, work)) }

    /// Calls `body(s, c0, c1)` for runs of input channels `c0..<c1` of sample `s` of `count`
    /// samples, on Ember's threads: the units (sample, channel) are split into contiguous ranges.
    @inline(__always)
    private func forChannelRuns(count: Int, work: Int, _ body: (_ s: Int, _ c0: Int, _ c1: Int) -> Void) {
        let C = inChannels
        Parallel.forRange(count * C, minChunk: minUnits(work)) { b, e in
            var u = b
            while u < e {
                let s = u / C, c0 = u % C, c1 = Swift.min(C, c0 + (e - u))
                body(s, c0, c1)
                u += c1 - c0
            }
        }
    }

    /// Writes the column matrix of samples `first..<first + count` of `x` into `cols`
    /// ([colRows, count · P], sample s in columns s·P..<(s+1)·P; row (c·kH + ki)·kW + kj holds
    /// `x[c, oh·sH - pH + ki·dH, ow·sW - pW + kj·dW]` at column oh·outW + ow, zero outside).
    func im2col(_ x: UnsafePointer<Float>, first: Int, count: Int, _ cols: UnsafeMutablePointer<Float>) {
        let P = outPlane, ld = count * P, sample = inChannels * inPlane, rowsPerChannel = kernelArea
        if P <= 16 && kernelArea <= 64 && inPlane <= Int(Int32.max) {
            // Small maps: all samples of a run of channels in one call, one gather per sample and
            // row (cember_im2col_small takes these sizes and returns 1).
            Parallel.forRange(inChannels, minChunk: minUnits(rowsPerChannel * ld)) { c0, c1 in
                var win = window
                win.channels = Int64(c1 - c0)
                _ = cember_im2col_small(x + first * sample + c0 * inPlane, Int64(sample), Int64(count), &win,
                                        cols + c0 * rowsPerChannel * ld, Int64(ld))
            }
            return
        }
        forChannelRuns(count: count, work: rowsPerChannel * P) { s, c0, c1 in
            var win = window
            win.channels = Int64(c1 - c0)
            cember_im2col_exact(x + (first + s) * sample + c0 * inPlane, &win, cols + c0 * rowsPerChannel * ld + s * P, Int64(ld))
        }
    }

    /// Folds `cols` ([colRows, count · P]) back onto samples `first..<first + count` of `dx`,
    /// overwriting them.
    func col2im(_ cols: UnsafePointer<Float>, first: Int, count: Int, _ dx: UnsafeMutablePointer<Float>) {
        let P = outPlane, ld = count * P, sample = inChannels * inPlane, rowsPerChannel = kernelArea
        forChannelRuns(count: count, work: rowsPerChannel * P) { s, c0, c1 in
            var win = window
            win.channels = Int64(c1 - c0)
            cember_col2im(cols + c0 * rowsPerChannel * ld + s * P, Int64(ld), &win, dx + (first + s) * sample + c0 * inPlane)
        }
    }

    /// The forward pass: `y` [N, C_out, P] from `x`, `w` [C_out, groupRows] and an optional bias,
    /// plus `residual` (of y's layout) when given, then with `relu` relu(y): `relu((W·x + b) + r)`,
    /// added in that order, so that the result is bit for bit the convolution followed by `add`
    /// and `relu` ops.
    func forward(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                 _ y: UnsafeMutablePointer<Float>, relu: Bool = false, residual: UnsafePointer<Float>? = nil,
                 maxSamplesPerChunk: Int, kernels: ConvKernels = .automatic) throws {
        guard batch > 0, outChannels > 0, outPlane > 0 else { return }
        if let crop = cropped() {
            let narrow = crop.geometry.croppedWeight(w, from: self, taps: crop.taps)
            try withExtendedLifetime(narrow) {
                try crop.geometry.forward(x, narrow.pointer, bias, y, relu: relu, residual: residual,
                                          maxSamplesPerChunk: maxSamplesPerChunk, kernels: kernels)
            }
            return
        }
        if usesWinograd(kernels) {
            let u = winogradWeight(w)
            withExtendedLifetime(u) { winogradForward(x, u.pointer, bias, y, relu: relu, residual: residual) }
            return
        }
        if usesDense(kernels) {
            let d = denseMatrix(w)
            try withExtendedLifetime(d) { try denseForward(x, d.pointer, bias, y, relu: relu, residual: residual) }
            return
        }
        if runsDirect(kernels) {
            directForward(x, w, bias, y, relu: relu, residual: residual, maxSamplesPerChunk: maxSamplesPerChunk)
            return
        }
        try unfusedForward(x, w, bias, y, relu: relu, residual: residual, maxSamplesPerChunk: maxSamplesPerChunk)
    }

    /// `row[i] = relu?((row[i] + b) + r[i])` over `length` floats, each term only when given (an
    /// absent bias adds nothing, not +0: -0 stays -0, as without the op).
    @inline(__always)
    func finishRow(_ row: UnsafeMutablePointer<Float>, _ length: Int, bias b: Float?, residual r: UnsafePointer<Float>?, relu: Bool) {
        switch (b, r) {
        case let (b?, r?): for i in 0..<length { row[i] = (row[i] + b) + r[i] }
        case let (b?, nil): for i in 0..<length { row[i] += b }
        case let (nil, r?): for i in 0..<length { row[i] += r[i] }
        case (nil, nil): break
        }
        if relu {
            for i in 0..<length { row[i] = row[i] > 0 ? row[i] : 0 }
        }
    }

    /// The depthwise and BLAS paths of `forward`.
    private func unfusedForward(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                                _ y: UnsafeMutablePointer<Float>, relu: Bool, residual: UnsafePointer<Float>?,
                                maxSamplesPerChunk: Int) throws {
        if isDepthwise {
            depthwiseForward(x, w, bias, y)
            if residual != nil || relu {
                let total = batch * outChannels * outPlane
                Parallel.forRange(total, minChunk: Parallel.minimumChunk) { lo, hi in
                    finishRow(y + lo, hi - lo, bias: nil, residual: residual.map { $0 + lo }, relu: relu)
                }
            }
            return
        }
        if isLinear {
            // y [N, C_out] = x [N, K] · Wᵀ, then the bias.
            try BLAS.gemm(transA: false, transB: true, m: batch, n: outChannels, k: groupRows, a: x, b: w, c: y)
            for n in 0..<batch {
                let row = y + n * outChannels
                if let bias {
                    for o in 0..<outChannels { row[o] += bias[o] }
                }
                finishRow(row, outChannels, bias: nil, residual: residual.map { $0 + n * outChannels }, relu: relu)
            }
            return
        }
        let chunk = samplesPerChunk(limit: maxSamplesPerChunk)
        let P = outPlane, O = outChannels, Og = outPerGroup, K = groupRows
        let cols = TensorStorage(uninitializedCount: colRows * chunk * P)
        // GEMM results of a multi-sample chunk come out as [C_out, samples, P]: staged, then scattered.
        let stage = chunk > 1 ? TensorStorage(uninitializedCount: O * chunk * P) : nil
        try withExtendedLifetime((cols, stage)) {
            var first = 0
            while first < batch {
                let count = Swift.min(chunk, batch - first), ld = count * P
                im2col(x, first: first, count: count, cols.pointer)
                let staged = count > 1 ? stage?.pointer : nil
                let direct = staged == nil
                let out = staged ?? y + first * O * P
                for g in 0..<groups {
                    try BLAS.gemm(transA: false, transB: false, m: Og, n: ld, k: K,
                                  a: w + g * Og * K, b: cols.pointer + g * K * ld, c: out + g * Og * ld)
                }
                if direct {
                    if bias != nil || residual != nil || relu {
                        for o in 0..<O {
                            finishRow(out + o * P, P, bias: bias?[o], residual: residual.map { $0 + (first * O + o) * P }, relu: relu)
                        }
                    }
                } else {
                    Parallel.forRange(count * O, minChunk: minUnits(P)) { lo, hi in
                        for u in lo..<hi {
                            let s = u / O, o = u % O
                            let dst = y + ((first + s) * O + o) * P, src = out + o * ld + s * P
                            let b = bias?[o] ?? 0
                            for p in 0..<P { dst[p] = src[p] + b }
                            if residual != nil || relu {
                                finishRow(dst, P, bias: nil, residual: residual.map { $0 + ((first + s) * O + o) * P }, relu: relu)
                            }
                        }
                    }
                }
                first += count
            }
        }
    }

    /// The backward pass: `dx` (overwritten), `dw` (accumulated; initialise it) and `db`
    /// (overwritten) from `dy` [N, C_out, P]; each may be nil when not needed. With `reluOutput`
    /// (the output of a forward pass with `relu`), `dy` is the gradient of the ReLU's output.
    func backward(_ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
                  dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?, db: UnsafeMutablePointer<Float>? = nil,
                  reluOutput: UnsafePointer<Float>? = nil, maxSamplesPerChunk: Int, kernels: ConvKernels = .automatic) throws {
        guard dx != nil || dw != nil || db != nil else { return }
        if batch == 0 || outChannels == 0 || outPlane == 0 {
            if let dx { dx.initialize(repeating: 0, count: batch * inChannels * inPlane) }
            if let db { db.initialize(repeating: 0, count: outChannels) }
            return
        }
        if let crop = cropped() {
            let narrow = crop.geometry.croppedWeight(w, from: self, taps: crop.taps)
            let narrowGrad = dw == nil ? nil : TensorStorage(count: outChannels * crop.geometry.groupRows, repeating: 0)
            try withExtendedLifetime((narrow, narrowGrad)) {
                try crop.geometry.backward(dy, x: x, w: narrow.pointer, dx: dx, dw: narrowGrad?.pointer, db: db,
                                           reluOutput: reluOutput, maxSamplesPerChunk: maxSamplesPerChunk, kernels: kernels)
                if let dw, let narrowGrad { crop.geometry.addCroppedGradient(narrowGrad.pointer, to: dw, of: self, taps: crop.taps) }
            }
            return
        }
        if let dx, let transposed = try winogradInputGradientGeometry(kernels) {
            // dx through Winograd (from dy masked by the ReLU, if any); dW and db as below.
            let masked = reluOutput.map { r in
                let count = batch * outChannels * outPlane, m = TensorStorage(uninitializedCount: count)
                UnaryFunction.relu.gradient(dy, r, r, m.pointer, count)
                return m
            }
            let g = masked.map { UnsafePointer($0.pointer) } ?? dy
            try withExtendedLifetime(masked) {
                winogradInputGradient(g, w: w, dx: dx, transposed: transposed)
                if dw != nil || db != nil {
                    try backward(g, x: x, w: w, dx: nil, dw: dw, db: db, maxSamplesPerChunk: maxSamplesPerChunk,
                                 kernels: kernels == .winograd ? .blas : kernels)
                }
            }
            return
        }
        let dense = usesDense(kernels)
        if !dense && runsDirect(kernels) {
            directBackward(dy, x: x, w: w, dx: dx, dw: dw, db: db, reluOutput: reluOutput, maxSamplesPerChunk: maxSamplesPerChunk)
            return
        }
        guard let reluOutput else {
            try unfusedBackward(dy, x: x, w: w, dx: dx, dw: dw, db: db, dense: dense, maxSamplesPerChunk: maxSamplesPerChunk)
            return
        }
        let count = batch * outChannels * outPlane
        let masked = TensorStorage(uninitializedCount: count)
        try withExtendedLifetime(masked) {
            UnaryFunction.relu.gradient(dy, reluOutput, reluOutput, masked.pointer, count)
            try unfusedBackward(masked.pointer, x: x, w: w, dx: dx, dw: dw, db: db, dense: dense, maxSamplesPerChunk: maxSamplesPerChunk)
        }
    }

    /// The dense, depthwise and BLAS paths of `backward`, without a ReLU.
    private func unfusedBackward(_ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
                                 dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?, db: UnsafeMutablePointer<Float>?,
                                 dense: Bool, maxSamplesPerChunk: Int) throws {
        if let db { channelSums(dy, batch: batch, channels: outChannels, positions: outPlane, into: db) }
        if dense {
            try denseBackward(dy, x: x, w: w, dx: dx, dw: dw)
            return
        }
        if isDepthwise {
            if let dx { depthwiseInputGradient(dy, w, dx) }
            if let dw { depthwiseWeightGradient(dy, x, dw) }
            return
        }
        guard dx != nil || dw != nil else { return }
        if isLinear {
            // dW += dYᵀ · x, dx = dY · W (dY [N, C_out], x [N, K]).
            if let dw {
                try BLAS.gemm(transA: true, transB: false, m: outChannels, n: groupRows, k: batch, a: dy, b: x, beta: 1, c: dw)
            }
            if let dx {
                try BLAS.gemm(transA: false, transB: false, m: batch, n: groupRows, k: outChannels, a: dy, b: w, c: dx)
            }
            return
        }
        let chunk = samplesPerChunk(limit: maxSamplesPerChunk)
        let P = outPlane, O = outChannels, Og = outPerGroup, K = groupRows
        let cols = dw == nil ? nil : TensorStorage(uninitializedCount: colRows * chunk * P)
        let dcols = dx == nil ? nil : TensorStorage(uninitializedCount: colRows * chunk * P)
        let stage = chunk > 1 ? TensorStorage(uninitializedCount: O * chunk * P) : nil
        try withExtendedLifetime((cols, dcols, stage)) {
            var first = 0
            while first < batch {
                let count = Swift.min(chunk, batch - first), ld = count * P
                // dY of the chunk as a [C_out, samples · P] matrix.
                let g: UnsafePointer<Float>
                if count > 1, let st = stage?.pointer {
                    Parallel.forRange(count * O, minChunk: minUnits(P)) { lo, hi in
                        for u in lo..<hi {
                            let s = u / O, o = u % O
                            (st + o * ld + s * P).update(from: dy + ((first + s) * O + o) * P, count: P)
                        }
                    }
                    g = UnsafePointer(st)
                } else {
                    g = dy + first * O * P
                }
                if let dw, let cols {
                    im2col(x, first: first, count: count, cols.pointer)
                    for gi in 0..<groups {
                        try BLAS.gemm(transA: false, transB: true, m: Og, n: K, k: ld,
                                      a: g + gi * Og * ld, b: cols.pointer + gi * K * ld, beta: 1, c: dw + gi * Og * K)
                    }
                }
                if let dx, let dcols {
                    for gi in 0..<groups {
                        try BLAS.gemm(transA: true, transB: false, m: K, n: ld, k: Og,
                                      a: w + gi * Og * K, b: g + gi * Og * ld, c: dcols.pointer + gi * K * ld)
                    }
                    col2im(dcols.pointer, first: first, count: count, dx)
                }
                first += count
            }
        }
    }
}

// MARK: Live taps and whole-input windows

extension ConvGeometry {
    /// The kernel taps along one dimension that read the input for at least one output position
    /// (`lo..<hi`), or nil when none does. The live taps are contiguous: a tap before the first
    /// live one reads above the input at every position, a tap after the last one below it.
    static func liveTaps(kernel: Int, input: Int, output: Int, stride: Int, padding: Int, dilation: Int) -> Range<Int>? {
        var lo = -1, hi = -1
        for k in 0..<kernel {
            let (a, b) = validWindowRange(offset: k * dilation - padding, stride: stride, extent: input, count: output)
            if a < b {
                if lo < 0 { lo = k }
                hi = k + 1
            }
        }
        return lo < 0 ? nil : lo..<hi
    }

    /// The same convolution with the kernel narrowed to its live taps (rows `taps.h`, columns
    /// `taps.w` of the kernel), when some tap only ever reads zero padding: small feature maps with
    /// padding (ResNet's last stage at 32×32 has a 1×1 map, where a 3×3 kernel has one live tap of
    /// nine). Nil when every tap is live, or when narrowing would need negative padding.
    func cropped() -> (geometry: ConvGeometry, taps: (h: Range<Int>, w: Range<Int>))? {
        guard let h = ConvGeometry.liveTaps(kernel: kH, input: inH, output: outH, stride: strideH, padding: padH, dilation: dilH),
              let w = ConvGeometry.liveTaps(kernel: kW, input: inW, output: outW, stride: strideW, padding: padW, dilation: dilW),
              h.count < kH || w.count < kW else { return nil }
        var g = self
        g.kH = h.count
        g.kW = w.count
        g.padH = padH - h.lowerBound * dilH
        g.padW = padW - w.lowerBound * dilW
        guard g.padH >= 0, g.padW >= 0 else { return nil }
        return (g, (h, w))
    }

    /// `full` ([C_out, C_in/groups, full.kH, full.kW]) narrowed to this geometry's kernel, taps
    /// `taps` of the full one.
    func croppedWeight(_ weight: UnsafePointer<Float>, from full: ConvGeometry, taps: (h: Range<Int>, w: Range<Int>)) -> TensorStorage {
        let narrow = TensorStorage(uninitializedCount: outChannels * groupRows)
        for plane in 0..<(outChannels * inPerGroup) {
            let src = weight + plane * full.kernelArea, dst = narrow.pointer + plane * kernelArea
            for i in 0..<kH {
                (dst + i * kW).update(from: src + (taps.h.lowerBound + i) * full.kW + taps.w.lowerBound, count: kW)
            }
        }
        return narrow
    }

    /// Adds the gradient of the narrowed weight onto the full one's taps `taps`.
    func addCroppedGradient(_ grad: UnsafePointer<Float>, to dw: UnsafeMutablePointer<Float>, of full: ConvGeometry,
                            taps: (h: Range<Int>, w: Range<Int>)) {
        for plane in 0..<(outChannels * inPerGroup) {
            let src = grad + plane * kernelArea, dst = dw + plane * full.kernelArea
            for i in 0..<kH {
                let d = dst + (taps.h.lowerBound + i) * full.kW + taps.w.lowerBound, s = src + i * kW
                for j in 0..<kW { d[j] += s[j] }
            }
        }
    }

    /// Whether the single output position's window is the whole (unpadded) input: the convolution
    /// is then a fully connected layer, `y [N, C_out] = x [N, C_in·H·W] · Wᵀ`, with no im2col.
    var isLinear: Bool {
        groups == 1 && outPlane == 1 && kH == inH && kW == inW && padH == 0 && padW == 0
            && (kH == 1 || dilH == 1) && (kW == 1 || dilW == 1)
    }
}

// MARK: Depthwise convolution: direct loops

extension ConvGeometry {
    /// Whether the direct kernels below run instead of im2col + GEMM: every group has one input
    /// channel (depthwise, possibly with a channel multiplier). Then each group's GEMM has a single
    /// inner row per tap and few output rows, and copying the input kH·kW times costs more than
    /// the arithmetic; the direct loops read the input in place.
    var isDepthwise: Bool { groups > 1 && inPerGroup == 1 }

    /// Calls `body(oh, base, lo, hi)` for every output row `oh` whose input row for kernel tap
    /// (ki, kj) is inside the image: output columns `lo..<hi` read input element
    /// `base + ow · strideW` of the plane.
    @inline(__always)
    func forEachTapRow(ki: Int, kj: Int, _ body: (_ oh: Int, _ base: Int, _ lo: Int, _ hi: Int) -> Void) {
        let offW = kj * dilW - padW
        let (lo, hi) = validWindowRange(offset: offW, stride: strideW, extent: inW, count: outW)
        if lo >= hi { return }
        for oh in 0..<outH {
            let ih = oh &* strideH &- padH &+ ki &* dilH
            if ih >= 0 && ih < inH { body(oh, ih &* inW &+ offW, lo, hi) }
        }
    }

    /// y[n, o] = bias[o] + Σ_taps w[o, tap] · (input plane of channel o / outPerGroup, shifted).
    func depthwiseForward(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                          _ y: UnsafeMutablePointer<Float>) {
        let O = outChannels, P = outPlane, taps = kernelArea
        Parallel.forRange(batch * O, minChunk: minUnits(taps * P)) { b, e in
            for u in b..<e {
                let n = u / O, o = u % O
                let src = x + (n * inChannels + o / outPerGroup) * inPlane, dst = y + u * P, wo = w + o * taps
                dst.initialize(repeating: bias?[o] ?? 0, count: P)
                for ki in 0..<kH {
                    for kj in 0..<kW {
                        let wt = wo[ki * kW + kj]
                        forEachTapRow(ki: ki, kj: kj) { oh, base, lo, hi in
                            let d = dst + oh * outW
                            if strideW == 1 {
                                let s = src + (base + lo), dd = d + lo
                                for i in 0..<(hi - lo) { dd[i] += wt * s[i] }
                            } else {
                                for ow in lo..<hi { d[ow] += wt * src[base &+ ow &* strideW] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// dx[n, c] = Σ over the group's output channels o and taps of w[o, tap] · dy[n, o] scattered
    /// back through the tap's shift; `dx` is overwritten.
    func depthwiseInputGradient(_ dy: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>) {
        let C = inChannels, O = outChannels, P = outPlane, taps = kernelArea
        Parallel.forRange(batch * C, minChunk: minUnits(outPerGroup * taps * P)) { b, e in
            for u in b..<e {
                let n = u / C, c = u % C
                let dst = dx + u * inPlane
                dst.initialize(repeating: 0, count: inPlane)
                for o in (c * outPerGroup)..<((c + 1) * outPerGroup) {
                    let g = dy + (n * O + o) * P, wo = w + o * taps
                    for ki in 0..<kH {
                        for kj in 0..<kW {
                            let wt = wo[ki * kW + kj]
                            forEachTapRow(ki: ki, kj: kj) { oh, base, lo, hi in
                                let gr = g + oh * outW
                                if strideW == 1 {
                                    let d = dst + (base + lo), gg = gr + lo
                                    for i in 0..<(hi - lo) { d[i] += wt * gg[i] }
                                } else {
                                    for ow in lo..<hi { dst[base &+ ow &* strideW] += wt * gr[ow] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// dw[o, tap] += Σ_n Σ_positions dy[n, o] · (input plane, shifted by the tap).
    ///
    /// NOTE: written as elementwise accumulation into a row of partial sums (one per output
    /// column), reduced once per tap: a plain dot-product loop would not vectorise (float
    /// addition is not reassociated) and would run at the latency of one add per element.
    func depthwiseWeightGradient(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>) {
        let O = outChannels, P = outPlane, taps = kernelArea, width = outW
        Parallel.forRange(O, minChunk: minUnits(batch * taps * P)) { b, e in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: width) { buffer in
                let partial = buffer.baseAddress.unsafelyUnwrapped
                for o in b..<e {
                    let c = o / outPerGroup
                    for ki in 0..<kH {
                        for kj in 0..<kW {
                            partial.initialize(repeating: 0, count: width)
                            for n in 0..<batch {
                                let g = dy + (n * O + o) * P, src = x + (n * inChannels + c) * inPlane
                                forEachTapRow(ki: ki, kj: kj) { oh, base, lo, hi in
                                    let gr = g + oh * outW
                                    if strideW == 1 {
                                        let s = src + (base + lo), gg = gr + lo, acc = partial + lo
                                        for i in 0..<(hi - lo) { acc[i] += gg[i] * s[i] }
                                    } else {
                                        for ow in lo..<hi { partial[ow] += gr[ow] * src[base &+ ow &* strideW] }
                                    }
                                }
                            }
                            var sum = 0.0
                            for i in 0..<width { sum += Double(partial[i]) }
                            dw[o * taps + ki * kW + kj] += Float(sum)
                        }
                    }
                }
            }
        }
    }
}

/// Σ over samples and positions of `dy` [N, C, P], per channel (the bias gradient), into `db`.
func channelSums(_ g: UnsafePointer<Float>, batch: Int, channels: Int, positions: Int, into db: UnsafeMutablePointer<Float>) {
    for c in 0..<channels {
        var s = 0.0
        for n in 0..<batch {
            let row = g + (n * channels + c) * positions
            var part: Float = 0
            for p in 0..<positions { part += row[p] }
            s += Double(part)
        }
        db[c] = Float(s)
    }
}

/// Records a convolution of validated geometry on the tape; `outShape` is the rank-3 or rank-4
/// output shape.
func convolution(_ x: Variable, weight: Variable, bias: Variable?, geometry geo: ConvGeometry,
                 outShape: [Int], fusedReLU: Bool, maxSamplesPerChunk: Int, kernels: ConvKernels) throws -> Variable {
    let y = try Tensor.build(shape: outShape) { out in
        try geo.forward(x.value.storage.pointer, weight.value.storage.pointer, bias.map { UnsafePointer($0.value.storage.pointer) },
                        out.baseAddress.unsafelyUnwrapped, relu: fusedReLU, maxSamplesPerChunk: maxSamplesPerChunk, kernels: kernels)
    }
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    // A fused ReLU keeps its output for the backward mask (the unfused relu kept its input).
    let reluOutput = fusedReLU ? y : nil
    return Variable(y, inputs: inputs) { [xv = x.value, wv = weight.value, needX = x.requiresGrad, needW = weight.requiresGrad,
                                          hasBias = bias != nil, needB = bias?.requiresGrad ?? false] dy in
        var dx: Tensor? = nil, dw: Tensor? = nil, db: Tensor? = nil
        if needX { dx = Tensor.build(shape: xv.shape) { _ in } }
        if needW { dw = Tensor.build(shape: wv.shape) { $0.initialize(repeating: 0) } }
        if needB { db = Tensor.build(shape: [geo.outChannels]) { _ in } }
        try geo.backward(dy.storage.pointer, x: xv.storage.pointer, w: wv.storage.pointer, dx: dx?.storage.pointer,
                         dw: dw?.storage.pointer, db: db?.storage.pointer, reluOutput: reluOutput.map { UnsafePointer($0.storage.pointer) },
                         maxSamplesPerChunk: maxSamplesPerChunk, kernels: kernels)
        return hasBias ? [dx, dw, db] : [dx, dw]
    }
}

/// 1-d convolution (PyTorch's `conv1d`): `x` [N, C_in, L], `weight` [C_out, C_in/groups, K],
/// `bias` [C_out]; output [N, C_out, floor((L + 2·padding - dilation·(K-1) - 1) / stride) + 1].
///
/// Zero padding on both sides; `groups` splits the channels into independent convolutions
/// (`groups == C_in` is a depthwise convolution). With `fusedReLU`, returns relu(conv1d(…)) as one
/// op: the values and gradients of `relu(conv1d(…))` without the intermediate tensor.
/// - Throws: `EmberError` naming `[conv1d]` and the shapes on any invalid shape or parameter.
public func conv1d(_ x: Variable, weight: Variable, bias: Variable?, stride: Int = 1, padding: Int = 0,
                   dilation: Int = 1, groups: Int = 1, fusedReLU: Bool = false) throws -> Variable {
    try conv1d(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups,
               fusedReLU: fusedReLU, maxSamplesPerChunk: Int.max)
}

/// `conv1d` with a cap on the samples that share one im2col buffer and a choice of kernels (tests
/// force small chunks and each path).
func conv1d(_ x: Variable, weight: Variable, bias: Variable?, stride: Int, padding: Int, dilation: Int,
            groups: Int, fusedReLU: Bool = false, maxSamplesPerChunk: Int, kernels: ConvKernels = .automatic) throws -> Variable {
    let geo = try ConvGeometry(op: "conv1d", input: x.shape, weight: weight.shape, bias: bias?.shape,
                               stride: [stride], padding: [padding], dilation: [dilation], groups: groups)
    return try convolution(x, weight: weight, bias: bias, geometry: geo, outShape: [geo.batch, geo.outChannels, geo.outW],
                           fusedReLU: fusedReLU, maxSamplesPerChunk: maxSamplesPerChunk, kernels: kernels)
}

/// 2-d convolution (PyTorch's `conv2d`): `x` [N, C_in, H, W], `weight` [C_out, C_in/groups, kH, kW],
/// `bias` [C_out]; parameters are (height, width) pairs and the output size per dimension is
/// `floor((size + 2·padding - dilation·(k-1) - 1) / stride) + 1`.
///
/// Zero padding; `groups` splits the channels into independent convolutions (`groups == C_in` is
/// a depthwise convolution). With `fusedReLU`, returns relu(conv2d(…)) as one op: the values and
/// gradients of `relu(conv2d(…))` without the intermediate tensor.
/// - Throws: `EmberError` naming `[conv2d]` and the shapes on any invalid shape or parameter.
public func conv2d(_ x: Variable, weight: Variable, bias: Variable?, stride: (Int, Int), padding: (Int, Int) = (0, 0),
                   dilation: (Int, Int) = (1, 1), groups: Int = 1, fusedReLU: Bool = false) throws -> Variable {
    try conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups,
               fusedReLU: fusedReLU, maxSamplesPerChunk: Int.max)
}

/// 2-d convolution with the same stride, padding and dilation along height and width.
public func conv2d(_ x: Variable, weight: Variable, bias: Variable?, stride: Int = 1, padding: Int = 0,
                   dilation: Int = 1, groups: Int = 1, fusedReLU: Bool = false) throws -> Variable {
    try conv2d(x, weight: weight, bias: bias, stride: (stride, stride), padding: (padding, padding),
               dilation: (dilation, dilation), groups: groups, fusedReLU: fusedReLU, maxSamplesPerChunk: Int.max)
}

/// `conv2d` with a cap on the samples that share one im2col buffer and a choice of kernels (tests
/// force small chunks and each path).
func conv2d(_ x: Variable, weight: Variable, bias: Variable?, stride: (Int, Int), padding: (Int, Int),
            dilation: (Int, Int), groups: Int, fusedReLU: Bool = false, maxSamplesPerChunk: Int,
            kernels: ConvKernels = .automatic) throws -> Variable {
    let geo = try ConvGeometry(op: "conv2d", input: x.shape, weight: weight.shape, bias: bias?.shape,
                               stride: [stride.0, stride.1], padding: [padding.0, padding.1],
                               dilation: [dilation.0, dilation.1], groups: groups)
    return try convolution(x, weight: weight, bias: bias, geometry: geo, outShape: [geo.batch, geo.outChannels, geo.outH, geo.outW],
                           fusedReLU: fusedReLU, maxSamplesPerChunk: maxSamplesPerChunk, kernels: kernels)
}
