/// The dense path of `ConvGeometry`: on feature maps smaller than the kernel, the convolution as
/// one matrix product over whole samples.
///
/// Why: on ResNet's last stages (2×2 maps under 3×3 kernels with padding 1) each output reads
/// every input position, but only 4 of its 9 taps land inside the map; im2col multiplies the other
/// five by zero padding. Here D [C_out·P, C_in·H·W] holds each output position's taps at the input
/// positions they read (zeros elsewhere), so that
///
/// - forward: `y [N, C_out·P] = x [N, C_in·H·W] · Dᵀ` (then bias, residual, ReLU per row), the
///   output straight in [N, C, H, W], no im2col;
/// - backward: `dx = dY · D`, `dD = dYᵀ · x`, and dW gathers dD back onto the taps;
///
/// with C_in·H·W instead of C_in·kH·kW terms per output (4 instead of 9 on 2×2 maps). D is built
/// from the weight at every call (the weights change between steps); `InferenceConvolution` keeps
/// it across batches. The GEMMs run on OpenBLAS's threads; building D and gathering dW split the
/// output channels over Ember's threads (each channel summed by one thread, in a fixed order: the
/// same bits on any number of Ember threads).
extension ConvGeometry {
    /// Largest D (floats) the dense path builds: 64 MB.
    static let denseBudget = 1 << 24

    /// Smallest batch the dense path runs: building D costs about as much as a product with
    /// a dozen samples, so that smaller batches run faster through im2col.
    static let denseMinimumBatch = 16

    /// Whether the dense path computes this convolution (see the extension's comment): one group,
    /// fewer input positions than live taps, not a whole-input window (already one product), a
    /// batch of at least `denseMinimumBatch`, and D within `denseBudget`.
    var runsDense: Bool {
        guard groups == 1, batch >= ConvGeometry.denseMinimumBatch else { return false }
        let live = cropped()?.geometry ?? self
        guard !live.isLinear, inPlane < live.kernelArea else { return false }
        let rows = outChannels.multipliedReportingOverflow(by: outPlane)
        let columns = inChannels.multipliedReportingOverflow(by: inPlane)
        let size = rows.partialValue.multipliedReportingOverflow(by: columns.partialValue)
        return !rows.overflow && !columns.overflow && !size.overflow && size.partialValue <= ConvGeometry.denseBudget
    }

    /// Whether `kernels` selects the dense path for this geometry.
    func usesDense(_ kernels: ConvKernels) -> Bool {
        switch kernels {
        case .dense: return groups == 1
        case .automatic: return runsDense
        case .blas, .direct, .winograd: return false
        }
    }

    /// Calls `body(p, tap, position)` for every output position p, kernel tap (ki·kW + kj) and
    /// the input position (ih·W + iw) the tap reads there, when that is inside the input.
    @inline(__always)
    private func forEachDenseTap(_ body: (_ p: Int, _ tap: Int, _ position: Int) -> Void) {
        for oh in 0..<outH {
            for ki in 0..<kH {
                let ih = oh * strideH - padH + ki * dilH
                guard ih >= 0, ih < inH else { continue }
                for ow in 0..<outW {
                    for kj in 0..<kW {
                        let iw = ow * strideW - padW + kj * dilW
                        guard iw >= 0, iw < inW else { continue }
                        body(oh * outW + ow, ki * kW + kj, ih * inW + iw)
                    }
                }
            }
        }
    }

    /// D [C_out·P, C_in·H·W] of weight `w` [C_out, C_in, kH, kW]: row o·P + p holds w[o, c, tap]
    /// at column c·H·W + (the input position the tap reads at p), zeros elsewhere.
    func denseMatrix(_ w: UnsafePointer<Float>) -> TensorStorage {
        let P = outPlane, C = inChannels, plane = inPlane, taps = kernelArea, columns = C * plane
        let d = TensorStorage(uninitializedCount: outChannels * P * columns)
        let dp = d.pointer
        Parallel.forRange(outChannels, minChunk: minUnits(P * columns)) { lo, hi in
            (dp + lo * P * columns).initialize(repeating: 0, count: (hi - lo) * P * columns)
            for o in lo..<hi {
                forEachDenseTap { p, tap, position in
                    let row = dp + (o * P + p) * columns + position, src = w + o * C * taps + tap
                    for c in 0..<C { row[c * plane] = src[c * taps] }
                }
            }
        }
        return d
    }

    /// `y [N, C_out, P] = relu?((x · Dᵀ + bias) + residual)` with D from `denseMatrix`.
    func denseForward(_ x: UnsafePointer<Float>, _ d: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                      _ y: UnsafeMutablePointer<Float>, relu: Bool, residual: UnsafePointer<Float>?) throws {
        let O = outChannels, P = outPlane
        try BLAS.gemm(transA: false, transB: true, m: batch, n: O * P, k: inChannels * inPlane, a: x, b: d, c: y)
        guard bias != nil || residual != nil || relu else { return }
        Parallel.forRange(batch * O, minChunk: minUnits(P)) { lo, hi in
            for u in lo..<hi {
                finishRow(y + u * P, P, bias: bias?[u % O], residual: residual.map { $0 + u * P }, relu: relu)
            }
        }
    }

    /// The backward pass of `denseForward` for x and the weight (without the ReLU: `dy` is
    /// already masked; the bias gradient is the caller's), from the weight `w`: `dx` overwritten,
    /// `dw` accumulated; nil ones skipped.
    func denseBackward(_ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
                       dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?) throws {
        let O = outChannels, P = outPlane, C = inChannels, plane = inPlane, taps = kernelArea
        let rows = O * P, columns = C * plane
        if let dx {
            let d = denseMatrix(w)
            try withExtendedLifetime(d) {
                try BLAS.gemm(transA: false, transB: false, m: batch, n: columns, k: rows, a: dy, b: d.pointer, c: dx)
            }
        }
        guard let dw else { return }
        let dd = TensorStorage(uninitializedCount: rows * columns)
        try withExtendedLifetime(dd) {
            try BLAS.gemm(transA: true, transB: false, m: rows, n: columns, k: batch, a: dy, b: x, c: dd.pointer)
            let g = UnsafePointer(dd.pointer)
            Parallel.forRange(O, minChunk: minUnits(P * columns)) { lo, hi in
                for o in lo..<hi {
                    forEachDenseTap { p, tap, position in
                        let row = g + (o * P + p) * columns + position, dst = dw + o * C * taps + tap
                        for c in 0..<C { dst[c * taps] += row[c * plane] }
                    }
                }
            }
        }
    }
}
