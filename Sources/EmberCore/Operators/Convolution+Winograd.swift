import CEmberKernels

/// The Winograd path of `ConvGeometry`: 3×3 convolutions of stride 1 as Winograd's F(2×2, 3×3),
/// for the forward pass (in training, and in prediction through `InferenceConvolution`, which
/// transforms the weight once) and, with padding 1, the input gradient.
///
/// Why: im2col + GEMM spends 9 multiply-adds per output, input channel and output channel. F(2×2,
/// 3×3) computes each 2×2 tile of the output from a 4×4 tile of the input with 16 products per
/// channel pair instead of 36 (2.25× fewer), as 16 matrix products: with U = G g Gᵀ of the weight
/// (16 matrices [C_out, C_in], built once) and V = Bᵀ d B of the input tiles (16 matrices [C_in,
/// tiles]), M_ξ = U_ξ · V_ξ, and each output tile is Aᵀ M A (transforms in CEmberKernels/
/// winograd.c). ResNet's 3×3 convolutions on maps of 4×4 and more run this way. The weight
/// gradient stays with im2col (it needs the columns' layout, and its sum runs over the batch).
///
/// Numerics: the transforms change the order and grouping of the sums, so results differ from
/// im2col's in the last bits (within 1e-5 of the output's largest magnitude in the tests, as the
/// dense path). The tiles are cut into chunks that depend on the geometry only, each chunk
/// transformed and multiplied on one of Ember's threads (single-threaded BLAS calls, the direct
/// path's scheme): the same bits on any number of threads.
extension ConvGeometry {
    /// Output height and width from which `runsWinograd` chooses the Winograd path: on smaller
    /// maps most of a 4×4 tile reads padding, and im2col (narrowed or dense) is faster.
    static let winogradMinimumSide = 4

    /// Input and output channels from which `runsWinograd` chooses the Winograd path: with fewer,
    /// the transforms cost about as much as the products they save.
    static let winogradMinimumChannels = 16

    /// Floats of transformed input (16 · C_in · tiles) a chunk of tiles should take (256 KB: it
    /// stays in L2 between the input transform and the products, as the products' output does
    /// until the output transform; on ResNet-18 15 % faster than 4 MB chunks).
    static let winogradChunkBudget = 1 << 16

    /// Fewest tiles per chunk (the products' columns): narrower products run below the kernels'
    /// speed.
    static let winogradMinimumChunk = 32

    /// Whether the Winograd path can compute this geometry: a 2-d 3×3 kernel, stride 1, no
    /// dilation, padding 0 or 1, one group, something to compute, and samples of input and output
    /// small enough that the transforms' 32-bit gather offsets (over up to 16 samples) fit.
    var fitsWinograd: Bool {
        let limit = Int(Int32.max) / 16
        return groups == 1 && kH == 3 && kW == 3 && strideH == 1 && strideW == 1 && dilH == 1 && dilW == 1
            && padH <= 1 && padW <= 1 && batch > 0 && inChannels > 0 && outChannels > 0 && outPlane > 0
            && inChannels <= limit / inPlane && outChannels <= limit / outPlane
    }

    /// Whether the Winograd path is the faster one (measured on ResNet-18, see
    /// `winogradMinimumSide` and `winogradMinimumChannels`).
    var runsWinograd: Bool {
        fitsWinograd && outH >= ConvGeometry.winogradMinimumSide && outW >= ConvGeometry.winogradMinimumSide
            && inChannels >= ConvGeometry.winogradMinimumChannels && outChannels >= ConvGeometry.winogradMinimumChannels
    }

    /// Whether `kernels` selects the Winograd path for this geometry's forward pass.
    func usesWinograd(_ kernels: ConvKernels) -> Bool {
        switch kernels {
        case .automatic: return runsWinograd
        case .winograd: return fitsWinograd
        case .blas, .direct, .dense: return false
        }
    }

    /// The convolution that gives this one's input gradient, when `kernels` selects the Winograd
    /// path for it: with padding 1, dx = conv(dy, W′) with W′[c, o] = W[o, c] turned by 180°,
    /// padding 1 (a 3×3 convolution of stride 1 again, from C_out to C_in channels).
    /// - Throws: never in practice (the sizes are this geometry's, already validated).
    func winogradInputGradientGeometry(_ kernels: ConvKernels) throws -> ConvGeometry? {
        guard fitsWinograd, padH == 1, padW == 1, kernels == .automatic || kernels == .winograd else { return nil }
        let t = try ConvGeometry(op: "conv2d", input: [batch, outChannels, outH, outW], weight: [inChannels, outChannels, 3, 3],
                                 bias: nil, stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1)
        return t.usesWinograd(kernels) ? t : nil
    }

    /// `dx` [N, C_in, H, W] (overwritten) from `dy` [N, C_out, H, W] and the weight `w` through
    /// `transposed`, the geometry `winogradInputGradientGeometry` gave.
    func winogradInputGradient(_ dy: UnsafePointer<Float>, w: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                               transposed: ConvGeometry) {
        let O = outChannels, C = inChannels
        let turned = TensorStorage(uninitializedCount: C * O * 9)
        let t = turned.pointer
        Parallel.forRange(C, minChunk: minUnits(O * 9)) { lo, hi in
            for c in lo..<hi {
                for o in 0..<O {
                    for k in 0..<9 { t[(c * O + o) * 9 + k] = w[(o * C + c) * 9 + 8 - k] }
                }
            }
        }
        let u = withExtendedLifetime(turned) { transposed.winogradWeight(t) }
        withExtendedLifetime(u) { transposed.winogradForward(dy, u.pointer, nil, dx, relu: false, residual: nil) }
    }

    /// Output tiles (2×2) of the whole batch: N · ⌈outH/2⌉ · ⌈outW/2⌉.
    var winogradTiles: Int { batch * ((outH + 1) / 2) * ((outW + 1) / 2) }

    /// Tiles per chunk: within `winogradChunkBudget` (but at least `winogradMinimumChunk`), a
    /// multiple of 16, and small enough that a batch of 64 or more tiles gives a few chunks to
    /// share between threads. Depends on the geometry only (the same bits on any number of threads).
    var winogradTilesPerChunk: Int {
        let byBudget = ConvGeometry.winogradChunkBudget / (16 * Swift.max(inChannels, outChannels)) / 16 * 16
        let quarter = ((winogradTiles + 3) / 4 + 15) / 16 * 16
        return Swift.max(ConvGeometry.winogradMinimumChunk, Swift.min(byBudget, Swift.max(64, quarter)))
    }

    /// U = G g Gᵀ of weight `w` [C_out, C_in, 3, 3]: 16 matrices [C_out, C_in].
    func winogradWeight(_ w: UnsafePointer<Float>) -> TensorStorage {
        let u = TensorStorage(uninitializedCount: 16 * outChannels * inChannels)
        cember_winograd_weight(w, Int64(outChannels), Int64(inChannels), u.pointer)
        return u
    }

    /// `y [N, C_out, outH, outW] = relu?((conv(x) + bias) + residual)` from the transformed weight
    /// `u` of `winogradWeight`; the geometry `fitsWinograd`.
    func winogradForward(_ x: UnsafePointer<Float>, _ u: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                         _ y: UnsafeMutablePointer<Float>, relu: Bool, residual: UnsafePointer<Float>?) {
        let C = inChannels, O = outChannels, tiles = winogradTiles, T = winogradTilesPerChunk
        let chunks = (tiles + T - 1) / T
        Parallel.forRange(chunks, minChunk: 1) { lo, hi in
            let v = TensorStorage(uninitializedCount: 16 * C * T), m = TensorStorage(uninitializedCount: 16 * O * T)
            withExtendedLifetime((v, m)) {
                for chunk in lo..<hi {
                    let first = chunk * T, count = Swift.min(T, tiles - first)
                    cember_winograd_input(x, Int64(C), Int64(inH), Int64(inW), Int64(padH), Int64(padW), Int64(first), Int64(count),
                                          v.pointer, Int64(T), Int64(C * T))
                    for xi in 0..<16 {
                        BLAS.gemmStridedUnchecked(transA: false, transB: false, m: O, n: count, k: C, a: u + xi * O * C, lda: C,
                                                  b: v.pointer + xi * C * T, ldb: T, c: m.pointer + xi * O * T, ldc: T)
                    }
                    cember_winograd_output(m.pointer, Int64(T), Int64(O * T), Int64(O), Int64(outH), Int64(outW), Int64(first),
                                           Int64(count), bias, residual, relu ? 1 : 0, y)
                }
            }
        }
    }
}
