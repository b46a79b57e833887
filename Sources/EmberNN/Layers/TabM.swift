import EmberCore
import Glibc

// The pieces of TabM (Gorishniy et al. 2024, "TabM: Advancing Tabular Deep Learning with
// Parameter-Efficient Ensembling") as in the `tabm` package: k ensemble members share one batch
// [batch, k, d] and, in BatchEnsemble layers, one weight matrix (one GEMM for all members) with
// per-member scalings r, s and biases. Parameter names and shapes follow the package, so its
// state dicts map by name. Also the periodic embeddings of numeric features (Gorishniy et al.
// 2022) that TabM offers.

/// How TabM initialises a scaling (`r`, `s`, an elementwise affine weight).
public enum ScalingInit: String, CaseIterable, Sendable {
    /// ±1 with probability 1/2 each.
    case randomSigns = "random-signs"
    /// Standard normal.
    case normal
    /// All ones.
    case ones

    /// Values of shape [k, d]: one draw per member and per chunk of columns (`chunks` sum to d;
    /// nil: one draw per value), as the package's `init_scaling_`.
    func draw(k: Int, d: Int, chunks: [Int]?, rng: inout RandomGenerator) throws -> Tensor {
        let sizes = chunks ?? [Int](repeating: 1, count: d)
        guard sizes.allSatisfy({ $0 >= 1 }), sizes.reduce(0, +) == d else {
            throw EmberError.invalidArgument("scaling_init_chunks", "must be sizes >= 1 that sum to \(d), got \(sizes)")
        }
        var values = [Float](repeating: 1, count: k * d)
        guard self != .ones else { return try Tensor(shape: [k, d], data: values) }
        for m in 0..<k {
            var start = 0
            for size in sizes {
                let v: Float = self == .normal ? rng.normal() : (rng.bernoulli(0.5) ? 1 : -1)
                for j in start..<(start + size) { values[m * d + j] = v }
                start += size
            }
        }
        return try Tensor(shape: [k, d], data: values)
    }
}

/// Checks that `x` is [batch, k, d] for a layer of `k` members of width `d`.
private func checkEnsembleInput(_ module: Module, _ x: Variable, k: Int, d: Int) throws {
    guard x.shape.count == 3, x.shape[1] == k, x.shape[2] == d else {
        throw module.error(.shapeMismatch, "expected input of shape [batch, \(k), \(d)], got \(shapeString(x.shape))",
                           expected: "[batch, \(k), \(d)]", got: shapeString(x.shape))
    }
}

/// A BatchEnsemble linear layer (the `tabm` package's `LinearBatchEnsemble`): for member i,
/// `y_i = ((x_i ⊙ r_i) · Wᵀ) ⊙ s_i + b_i` with one shared weight W [out, in] (one GEMM over all
/// batch rows and members) and per-member r [k, in], s [k, out], bias [k, out].
/// W is uniform in ±1/√in; the bias is one such draw [out] copied to every member.
public final class LinearBatchEnsemble: Module {
    /// Shared weight [out, in].
    public let weight: Parameter
    /// Input scaling per member [k, in].
    public let r: Parameter
    /// Output scaling per member [k, out].
    public let s: Parameter
    /// Bias per member [k, out], if any.
    public let bias: Parameter?
    /// Members.
    public let k: Int

    /// Creates the layer; `rInit`/`sInit` initialise r and s (`rChunks`: r's column chunks).
    public init(_ inFeatures: Int, _ outFeatures: Int, k: Int, bias: Bool = true, rInit: ScalingInit, sInit: ScalingInit,
                rChunks: [Int]? = nil, rng: inout RandomGenerator) throws {
        guard inFeatures >= 1, outFeatures >= 1, k >= 1 else {
            throw EmberError.invalidArgument("linear_batch_ensemble", "in_features, out_features and k must be >= 1, got \(inFeatures), \(outFeatures) and \(k)")
        }
        self.k = k
        let bound = 1 / Float(inFeatures).squareRoot()
        weight = Parameter(try Tensor.uniform([outFeatures, inFeatures], low: -bound, high: bound, rng: &rng))
        r = Parameter(try rInit.draw(k: k, d: inFeatures, chunks: rChunks, rng: &rng))
        s = Parameter(try sInit.draw(k: k, d: outFeatures, chunks: nil, rng: &rng))
        if bias {
            let b = try Tensor.uniform([outFeatures], low: -bound, high: bound, rng: &rng)
            self.bias = Parameter(try b.expanded(to: [k, outFeatures]))
        } else {
            self.bias = nil
        }
        super.init()
    }

    public override var kind: String { "linear_batch_ensemble" }
    public override var localParameters: [(String, Parameter)] {
        [("weight", weight), ("r", r), ("s", s)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        try checkEnsembleInput(self, x, k: k, d: weight.value.shape[1])
        let y = try binary(try linear(try binary(x, r.variable, .mul), weight: weight.variable, bias: nil), s.variable, .mul)
        guard let bias else { return y }
        return try binary(y, bias.variable, .add)
    }
}

/// An elementwise affine map per member (the package's `ElementwiseAffine` of shape [k, d]):
/// `y = x ⊙ weight (+ bias)`; TabM-mini's only non-shared parameters.
public final class ElementwiseAffine: Module {
    /// Scaling [k, d].
    public let weight: Parameter
    /// Offset [k, d], if any (zeros initially).
    public let bias: Parameter?

    /// Creates the map; `scalingInit` with column `chunks` initialises the weight.
    public init(k: Int, d: Int, bias: Bool = false, scalingInit: ScalingInit, chunks: [Int]? = nil, rng: inout RandomGenerator) throws {
        guard k >= 1, d >= 1 else { throw EmberError.invalidArgument("elementwise_affine", "k and d must be >= 1, got \(k) and \(d)") }
        weight = Parameter(try scalingInit.draw(k: k, d: d, chunks: chunks, rng: &rng))
        self.bias = bias ? Parameter(try Tensor.zeros([k, d])) : nil
        super.init()
    }

    public override var kind: String { "elementwise_affine" }
    public override var localParameters: [(String, Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        let s = weight.value.shape
        try checkEnsembleInput(self, x, k: s[0], d: s[1])
        let y = try binary(x, weight.variable, .mul)
        guard let bias else { return y }
        return try binary(y, bias.variable, .add)
    }
}

/// k independent linear layers applied to the k members (the package's `LinearEnsemble`, TabM's
/// output layer): weight [k, in, out] (one batched GEMM), bias [k, out], both uniform in ±1/√in.
public final class LinearEnsemble: Module {
    /// Weights [k, in, out].
    public let weight: Parameter
    /// Biases [k, out], if any.
    public let bias: Parameter?

    /// Creates the layers.
    public init(_ inFeatures: Int, _ outFeatures: Int, k: Int, bias: Bool = true, rng: inout RandomGenerator) throws {
        guard inFeatures >= 1, outFeatures >= 1, k >= 1 else {
            throw EmberError.invalidArgument("linear_ensemble", "in_features, out_features and k must be >= 1, got \(inFeatures), \(outFeatures) and \(k)")
        }
        let bound = 1 / Float(inFeatures).squareRoot()
        weight = Parameter(try Tensor.uniform([k, inFeatures, outFeatures], low: -bound, high: bound, rng: &rng))
        self.bias = bias ? Parameter(try Tensor.uniform([k, outFeatures], low: -bound, high: bound, rng: &rng)) : nil
        super.init()
    }

    public override var kind: String { "linear_ensemble" }
    public override var localParameters: [(String, Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        let s = weight.value.shape
        try checkEnsembleInput(self, x, k: s[0], d: s[1])
        // [batch, k, in] → [k, batch, in] · [k, in, out] → [k, batch, out] → [batch, k, out]
        let y = try transpose(try matmul(try transpose(x, 0, 1), weight.variable), 0, 1)
        guard let bias else { return y }
        return try binary(y, bias.variable, .add)
    }
}

/// Periodic embeddings of numeric features (Gorishniy et al. 2022, the PLR embeddings of
/// `rtdl_num_embeddings.PeriodicEmbeddings`): x [batch, n] → cos and sin of 2π · x · frequencies
/// (`periodic.weight` [n, n_frequencies], normal with sd `frequencyInitScale` truncated at ±3 sd)
/// → a linear layer per feature (`linear.weight` [n, 2 · n_frequencies, d], `linear.bias` [n, d];
/// with `lite` one shared `nn.Linear` [d, 2 · n_frequencies]) → ReLU if `activation`.
/// Output [batch, n, d].
public final class PeriodicEmbeddings: Module {
    /// Frequencies [n, n_frequencies].
    public let frequencies: Parameter
    /// The per-feature weights [n, 2 · n_frequencies, d] (or the shared layer's [d, 2 · n_frequencies] with `lite`).
    public let linearWeight: Parameter
    /// The per-feature biases [n, d] (or the shared layer's [d] with `lite`).
    public let linearBias: Parameter
    /// Whether the linear layer is shared by all features.
    public let lite: Bool
    /// Whether a ReLU follows.
    public let activation: Bool
    private let periodic = ParameterHolder()
    private let outer = ParameterHolder()

    /// Creates the embeddings.
    public init(nFeatures n: Int, dEmbedding d: Int, nFrequencies f: Int, frequencyInitScale sigma: Double,
                activation: Bool, lite: Bool, rng: inout RandomGenerator) throws {
        guard n >= 1, d >= 1, f >= 1 else {
            throw EmberError.invalidArgument("periodic_embeddings", "n_features, d_embedding and n_frequencies must be >= 1, got \(n), \(d) and \(f)")
        }
        guard sigma > 0, sigma.isFinite else {
            throw EmberError.invalidArgument("periodic_embeddings", "frequency_init_scale must be a finite number > 0, got \(sigma)")
        }
        guard activation || !lite else { throw EmberError.invalidArgument("periodic_embeddings", "lite = true needs activation = true") }
        self.lite = lite
        self.activation = activation
        var w = [Float](repeating: 0, count: n * f)
        for i in w.indices {
            var v = rng.normal()
            while abs(v) > 3 { v = rng.normal() }
            w[i] = v * Float(sigma)
        }
        frequencies = Parameter(try Tensor(shape: [n, f], data: w))
        let bound = 1 / Float(2 * f).squareRoot()
        linearWeight = Parameter(try Tensor.uniform(lite ? [d, 2 * f] : [n, 2 * f, d], low: -bound, high: bound, rng: &rng))
        linearBias = Parameter(try Tensor.uniform(lite ? [d] : [n, d], low: -bound, high: bound, rng: &rng))
        super.init()
        periodic.entries = [("weight", frequencies)]
        outer.entries = [("weight", linearWeight), ("bias", linearBias)]
    }

    public override var kind: String { "periodic_embeddings" }
    public override var children: [(String, Module)] { [("periodic", periodic), ("linear", outer)] }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        let n = frequencies.value.shape[0]
        guard x.shape.count == 2, x.shape[1] == n else {
            throw error(.shapeMismatch, "expected input of shape [batch, \(n)], got \(shapeString(x.shape))",
                        expected: "[batch, \(n)]", got: shapeString(x.shape))
        }
        let b = x.shape[0]
        let angles = try binary(try reshape(x, [b, n, 1]), frequencies.variable, .mul) * Float(2 * Double.pi)
        let features = try concat([unary(angles, .cos), unary(angles, .sin)], axis: 2)
        var y: Variable
        if lite {
            y = try linear(features, weight: linearWeight.variable, bias: linearBias.variable)
        } else {
            // [batch, n, 2f] → [n, batch, 2f] · [n, 2f, d] → [n, batch, d] → [batch, n, d]
            y = try binary(try transpose(try matmul(try transpose(features, 0, 1), linearWeight.variable), 0, 1), linearBias.variable, .add)
        }
        if activation { y = unary(y, .relu) }
        return y
    }
}

/// A module that only owns parameters (a named level of a parameter path, such as `periodic`).
final class ParameterHolder: Module {
    var entries: [(String, Parameter)] = []
    override var localParameters: [(String, Parameter)] { entries }
}

/// Piecewise-linear embeddings of numeric features (Gorishniy et al. 2022; rtdl's
/// `PiecewiseLinearEmbeddings`, version "B", the one TabM takes): `linear0(x)` (a linear map per
/// feature, weight and bias [n, d], as `tokenizer_num`) plus the piecewise-linear encoding of x on
/// per-feature bins (`impl.weight`, `impl.bias` [n, n_bins], buffers) mapped by a linear layer per
/// feature without bias (`linear.weight` [n, n_bins, d], zeros initially), with a ReLU on that
/// part if `activation`. Output [batch, n, d].
///
/// The bins are quantile bins of the training data (rtdl's `compute_bins`), set by
/// `fitBins(_:)` when the model first sees training data (on the scale the network reads, after
/// standardisation). Feature j's encoding is `[1, …, 1, (x − left) / width, 0, …, 0]` stored as
/// its first `bins_j − 1` components in the first columns and its last component in the last
/// column, the columns in between zero; the first column is clipped at 1, the middle ones to
/// [0, 1], the last one at 0 (not at all for a feature with a single bin).
public final class PiecewiseLinearEmbeddings: Module {
    /// The linear part (`linear0.weight`, `linear0.bias`).
    public let linear0: NumericTokenizer
    /// Encoding slopes per feature and column [n, n_bins].
    public let encodingWeight: Buffer
    /// Encoding offsets per feature and column [n, n_bins].
    public let encodingBias: Buffer
    /// The per-feature map of the encoding [n, n_bins, d].
    public let linearWeight: Parameter
    /// Whether a ReLU follows the encoding's map.
    public let activation: Bool
    /// The name of the network input the module reads (its bins come from that input's data).
    public let inputName: String
    private let impl = BufferHolder()
    private let linear = ParameterHolder()

    /// Creates the embeddings with `nBins` columns per feature (bins not yet fitted).
    public init(nFeatures n: Int, dEmbedding d: Int, nBins: Int, activation: Bool, inputName: String, rng: inout RandomGenerator) throws {
        guard n >= 1, d >= 1, nBins >= 2 else {
            throw EmberError.invalidArgument("piecewise_linear_embeddings", "n_features and d_embedding must be >= 1 and n_bins >= 2, got \(n), \(d) and \(nBins)")
        }
        linear0 = try NumericTokenizer(nFeatures: n, dToken: d, rng: &rng)
        encodingWeight = Buffer(try Tensor.zeros([n, nBins]))
        encodingBias = Buffer(try Tensor.zeros([n, nBins]))
        linearWeight = Parameter(try Tensor.zeros([n, nBins, d]))
        self.activation = activation
        self.inputName = inputName
        super.init()
        impl.entries = [("weight", encodingWeight), ("bias", encodingBias)]
        linear.entries = [("weight", linearWeight)]
    }

    public override var kind: String { "piecewise_linear_embeddings" }
    public override var children: [(String, Module)] { [("linear0", linear0), ("impl", impl), ("linear", linear)] }

    /// Sets the bins from training data x [rows, n] as rtdl's `compute_bins` (`n_bins` + 1
    /// quantiles per feature, linearly interpolated as `torch.quantile`, duplicates removed).
    public func fitBins(_ x: Tensor) throws {
        let s = encodingWeight.value.shape, n = s[0], nBins = s[1]
        guard x.shape.count == 2, x.shape[1] == n else {
            throw error(.shapeMismatch, "expected training data of shape [rows, \(n)], got \(shapeString(x.shape))")
        }
        let rows = x.shape[0]
        guard nBins < rows else {
            throw error(.invalidArgument, "n_bins (\(nBins)) must be less than the training rows (\(rows))", expected: "n_bins < \(rows)", got: String(nBins))
        }
        // torch.linspace(0, 1, n_bins + 1) in float32.
        let steps = nBins + 1, step = Float(1) / Float(nBins)
        let levels = (0..<steps).map { i in i < steps / 2 ? step * Float(i) : 1 - step * Float(steps - i - 1) }
        var w = [Float](repeating: 0, count: n * nBins), b = w
        let px = x.unsafeReadPointer
        for j in 0..<n {
            var column = (0..<rows).map { px[$0 * n + j] }
            guard column.allSatisfy({ $0.isFinite }) else {
                throw error(.invalidArgument, "numeric \(ErrorIndex.describe(("feature", j))) has non-finite training values")
            }
            column.sort()
            guard let first = column.first, let last = column.last, first < last else {
                throw error(.invalidArgument, "numeric \(ErrorIndex.describe(("feature", j))) is constant in the training data; piecewise-linear bins need at least two distinct values",
                            expected: "at least two distinct values")
            }
            var edges: [Float] = []
            for q in levels {
                let rank = q * Float(rows - 1)
                let below = Swift.min(Int(rank), rows - 1), above = Swift.min(below + 1, rows - 1)
                let t = rank - Float(below), lo = column[below], hi = column[above]
                let span: Float = hi - lo
                let v: Float = t < 0.5 ? lo + t * span : hi - span * (1 - t)
                if edges.last != v { edges.append(v) }
            }
            let count = edges.count - 1
            for i in 0..<count {
                let width = edges[i + 1] - edges[i]
                let column = i == count - 1 ? nBins - 1 : i
                w[j * nBins + column] = 1 / width
                b[j * nBins + column] = -edges[i] / width
            }
        }
        encodingWeight.value = try Tensor(shape: [n, nBins], data: w)
        encodingBias.value = try Tensor(shape: [n, nBins], data: b)
    }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        let s = encodingWeight.value.shape, n = s[0], nBins = s[1]
        guard x.shape.count == 2, x.shape[1] == n else {
            throw error(.shapeMismatch, "expected input of shape [batch, \(n)], got \(shapeString(x.shape))",
                        expected: "[batch, \(n)]", got: shapeString(x.shape))
        }
        let b = x.shape[0]
        let raw = try binary(try binary(try reshape(x, [b, n, 1]), Variable(encodingWeight.value), .mul), Variable(encodingBias.value), .add)
        // Clipping bounds per feature and column; a feature with a single bin (its first column
        // unused) keeps its last column unclipped.
        let pw = encodingWeight.value.unsafeReadPointer
        var lower = [Float](repeating: 0, count: n * nBins), upper = [Float](repeating: 1, count: n * nBins)
        for j in 0..<n {
            lower[j * nBins] = -.infinity
            upper[j * nBins + nBins - 1] = .infinity
            if nBins > 1 && pw[j * nBins] == 0 { lower[j * nBins + nBins - 1] = -.infinity }
        }
        let encoded = try clampElements(raw, lower: lower, upper: upper)
        // [batch, n, n_bins] → [n, batch, n_bins] · [n, n_bins, d] → [n, batch, d] → [batch, n, d]
        var y = try transpose(try matmul(try transpose(encoded, 0, 1), linearWeight.variable), 0, 1)
        if activation { y = unary(y, .relu) }
        return try binary(try linear0.forward(x, &ctx), y, .add)
    }
}

/// `min(max(x, lower), upper)` with bounds per element of one sample (broadcast over the batch);
/// the gradient passes where `lower <= x <= upper`, as `torch.clamp`'s.
func clampElements(_ x: Variable, lower: [Float], upper: [Float]) throws -> Variable {
    let per = lower.count
    guard per > 0, upper.count == per, x.value.count % per == 0 else {
        throw EmberError.shapeMismatch("clamp", "bounds of \(per) values do not divide input \(shapeString(x.shape))")
    }
    let px = x.value.unsafeReadPointer
    let y = Tensor.build(shape: x.shape) { o in
        for i in 0..<o.count { o[i] = Swift.min(Swift.max(px[i], lower[i % per]), upper[i % per]) }
    }
    return Variable(y, inputs: [x]) { [xv = x.value] dy in
        let pv = xv.unsafeReadPointer, pg = dy.unsafeReadPointer
        return [Tensor.build(shape: xv.shape) { o in
            for i in 0..<o.count {
                let v = pv[i]
                o[i] = v >= lower[i % per] && v <= upper[i % per] ? pg[i] : 0
            }
        }]
    }
}

/// A module that only owns buffers (a named level of a buffer path, such as `impl`).
final class BufferHolder: Module {
    var entries: [(String, Buffer)] = []
    override var localBuffers: [(String, Buffer)] { entries }
}
