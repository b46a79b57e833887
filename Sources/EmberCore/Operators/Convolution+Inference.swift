/// A convolution with fixed weights, evaluated without gradients (prediction): the values of
/// `relu(conv2d(x, weight, bias) + residual)` (or `conv1d`; the residual and the ReLU optional)
/// in one op.
///
/// What it saves over those ops, batch after batch: the residual and the ReLU are applied while
/// the GEMM results are written (no extra passes over the output; bit for bit the separate ops),
/// and what depends on the weight and the input's shape only is prepared once per input shape:
///
/// - a kernel narrowed to its live taps (small feature maps with padding, see
///   `ConvGeometry.cropped`) is cut out of the weight once instead of at every call;
/// - on feature maps smaller than the kernel (ResNet's 2×2 maps under 3×3 kernels), the dense
///   matrix D of Convolution+Dense.swift is built once instead of at every call;
/// - 3×3 convolutions of stride 1 on maps of 4×4 and more (most of ResNet's) run Winograd's
///   F(2×2, 3×3) (Convolution+Winograd.swift) with the weight transformed once: 2.25× fewer
///   multiply-adds, results within float rounding of im2col's (not bit for bit).
///
/// The weight and bias are kept as given: build one per run of predictions (a network's
/// evaluation plan does), not across weight updates.
///
/// NOTE: not thread-safe (it caches prepared weights); use one instance per thread.
public final class InferenceConvolution {
    /// Weight [C_out, C_in/groups, K] or [C_out, C_in/groups, kH, kW].
    public let weight: Tensor
    /// Bias [C_out], if any.
    public let bias: Tensor?
    let stride: [Int], padding: [Int], dilation: [Int], groups: Int
    private var op: String { weight.shape.count == 3 ? "conv1d" : "conv2d" }
    /// How a convolution of one input shape runs.
    enum Prepared {
        /// The geometry as it is, with the weight.
        case full
        /// The kernel narrowed to its live taps: that geometry and weight.
        case narrowed(ConvGeometry, TensorStorage)
        /// The dense matrix D [C_out·P, C_in·H·W].
        case dense(TensorStorage)
        /// Winograd F(2×2, 3×3) with the transformed weight U [16, C_out, C_in].
        case winograd(TensorStorage)
    }
    /// When the Winograd path runs: `automatic` where `ConvGeometry.runsWinograd` says it is
    /// faster (as `conv2d` chooses), `always` wherever it fits (tests).
    enum WinogradChoice { case automatic, always }
    /// When the Winograd path runs (tests pin it; set before the first call).
    var winograd = WinogradChoice.automatic
    /// By input shape (the geometry includes the batch size).
    private(set) var prepared: [[Int]: Prepared] = [:]

    /// A convolution of `weight` (rank 3 for 1-d, rank 4 for 2-d) with `stride`, `padding` and
    /// `dilation` (one entry per spatial dimension) and `groups`, as `conv1d`/`conv2d` take them.
    /// - Throws: `EmberError` naming `[conv1d]`/`[conv2d]` when the weight's rank or the number of
    ///   entries does not fit; the rest is checked against each input.
    public init(weight: Tensor, bias: Tensor?, stride: [Int], padding: [Int], dilation: [Int], groups: Int) throws {
        let rank = weight.shape.count
        guard rank == 3 || rank == 4 else {
            throw EmberError.shapeMismatch("conv2d", "expected weight of rank 3 [C_out, C_in/groups, K] or 4 [C_out, C_in/groups, kH, kW], got \(shapeString(weight.shape))")
        }
        let op = rank == 3 ? "conv1d" : "conv2d"
        guard stride.count == rank - 2, padding.count == rank - 2, dilation.count == rank - 2 else {
            throw EmberError.invalidArgument(op, "stride, padding and dilation need \(rank - 2) entries each, got \(stride.count), \(padding.count) and \(dilation.count)")
        }
        try checkSpatialParameters(op, stride: stride, padding: padding, dilation: dilation)
        self.weight = weight
        self.bias = bias
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
    }

    /// `relu(conv(x) + residual)`: `x` [N, C_in, (H,) W]; `residual`, when given, of the output's
    /// shape; the ReLU with `relu`.
    /// - Throws: `EmberError` naming `[conv1d]`/`[conv2d]` and the shapes on any invalid shape.
    public func callAsFunction(_ x: Tensor, residual: Tensor? = nil, relu: Bool = false) throws -> Tensor {
        let geo = try ConvGeometry(op: op, input: x.shape, weight: weight.shape, bias: bias?.shape,
                                   stride: stride, padding: padding, dilation: dilation, groups: groups)
        let outShape = weight.shape.count == 3 ? [geo.batch, geo.outChannels, geo.outW] : [geo.batch, geo.outChannels, geo.outH, geo.outW]
        if let residual, residual.shape != outShape {
            throw EmberError.shapeMismatch(op, "expected residual of the output's shape \(shapeString(outShape)), got \(shapeString(residual.shape))")
        }
        let run: Prepared
        if let p = prepared[x.shape] {
            run = p
        } else {
            run = prepare(geo)
            prepared[x.shape] = run
        }
        let bias = self.bias
        return try Tensor.build(shape: outShape) { out in
            let y = out.baseAddress.unsafelyUnwrapped, b = bias.map { UnsafePointer($0.storage.pointer) }
            let r = residual.map { UnsafePointer($0.storage.pointer) }
            switch run {
            case .full:
                try geo.forward(x.storage.pointer, weight.storage.pointer, b, y, relu: relu, residual: r, maxSamplesPerChunk: Int.max)
            case let .narrowed(g, w):
                try withExtendedLifetime(w) {
                    try g.forward(x.storage.pointer, w.pointer, b, y, relu: relu, residual: r, maxSamplesPerChunk: Int.max)
                }
            case let .dense(d):
                try withExtendedLifetime(d) { try geo.denseForward(x.storage.pointer, d.pointer, b, y, relu: relu, residual: r) }
            case let .winograd(u):
                withExtendedLifetime(u) { geo.winogradForward(x.storage.pointer, u.pointer, b, y, relu: relu, residual: r) }
            }
        }
    }

    /// How to run `geo`: through Winograd as `winograd` says, densely when
    /// `ConvGeometry.runsDense`, else narrowed or as it is.
    private func prepare(_ geo: ConvGeometry) -> Prepared {
        switch winograd {
        case .automatic where geo.runsWinograd, .always where geo.fitsWinograd:
            // U depends on the weight only: input shapes of another batch size share it.
            for run in prepared.values {
                if case let .winograd(u) = run { return .winograd(u) }
            }
            return .winograd(geo.winogradWeight(weight.storage.pointer))
        case .automatic, .always: break
        }
        if geo.runsDense { return .dense(geo.denseMatrix(weight.storage.pointer)) }
        if let crop = geo.cropped() {
            return .narrowed(crop.geometry, crop.geometry.croppedWeight(weight.storage.pointer, from: geo, taps: crop.taps))
        }
        return .full
    }
}
