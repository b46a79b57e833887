import EmberCore

// The pieces of the FT-Transformer (Gorishniy et al. 2021, "Revisiting Deep Learning Models for
// Tabular Data") as in rtdl's modules.py and mlr3torch's port: feature tokenizers, the CLS token
// and the transformer block. Parameter names follow rtdl/mlr3torch, so their state dicts map by
// name; the block's attention is `MultiheadAttention` (PyTorch's layout), as in mlr3torch.

/// rtdl's "uniform" token initialisation: U(-1/√d_token, 1/√d_token).
func tokenUniform(_ shape: [Int], dToken: Int, rng: inout RandomGenerator) throws -> Tensor {
    let bound = 1 / Float(dToken).squareRoot()
    return try Tensor.uniform(shape, low: -bound, high: bound, rng: &rng)
}

/// Turns numeric features into tokens: x [batch, n] → x[..., None] · weight + bias, both
/// [n, d_token] (rtdl's `NumericalFeatureTokenizer`, mlr3torch's `nn_tokenizer_num`).
public final class NumericTokenizer: Module {
    /// Number of numeric features.
    public let nFeatures: Int
    /// Token width.
    public let dToken: Int
    /// One token direction per feature, [n_features, d_token].
    public let weight: Parameter
    /// One token offset per feature, [n_features, d_token], if any.
    public let bias: Parameter?

    /// Creates the tokenizer; weight, then bias, uniform in ±1/√d_token.
    public init(nFeatures: Int, dToken: Int, bias: Bool = true, rng: inout RandomGenerator) throws {
        guard nFeatures >= 1, dToken >= 1 else {
            throw EmberError.invalidArgument("tokenizer_num", "n_features and d_token must be >= 1, got \(nFeatures) and \(dToken)")
        }
        self.nFeatures = nFeatures
        self.dToken = dToken
        weight = Parameter(try tokenUniform([nFeatures, dToken], dToken: dToken, rng: &rng))
        self.bias = bias ? Parameter(try tokenUniform([nFeatures, dToken], dToken: dToken, rng: &rng)) : nil
        super.init()
    }

    public override var kind: String { "tokenizer_num" }
    public override var localParameters: [(String, Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        let s = x.shape
        guard s.count == 2, s[1] == nFeatures else {
            throw error(.shapeMismatch, "expected input of shape [batch, \(nFeatures)], got \(shapeString(s))")
        }
        // [B, n, 1] · [n, d] broadcasts to [B, n, d].
        let tokens = try binary(try reshape(x, [s[0], nFeatures, 1]), weight.variable, .mul)
        guard let bias else { return tokens }
        return try binary(tokens, bias.variable, .add)
    }
}

/// Turns categorical features into tokens: codes [batch, n_cat] (level indices 0..<cardinality,
/// stored as floats) → embedding(codes + per-feature offsets) + bias [n_cat, d_token] (rtdl's
/// `CategoricalFeatureTokenizer`, mlr3torch's `nn_tokenizer_categ`). All features share one table
/// `embeddings.weight` [Σ cardinalities, d_token]; feature j's levels occupy the rows after those
/// of features 0..<j.
public final class CategoricalTokenizer: Module {
    /// Number of levels of each feature.
    public let cardinalities: [Int]
    /// Token width.
    public let dToken: Int
    /// The shared table (`embeddings.weight`).
    public let embeddings: Embedding
    /// One token offset per feature, [n_cat, d_token], if any.
    public let bias: Parameter?
    /// First row of each feature's levels in the table (rtdl's non-persistent `category_offsets`,
    /// which is not a buffer here either: it is derived from `cardinalities`).
    let offsets: [Int]

    /// Creates the tokenizer; the table, then the bias, uniform in ±1/√d_token.
    public init(cardinalities: [Int], dToken: Int, bias: Bool = true, rng: inout RandomGenerator) throws {
        guard !cardinalities.isEmpty else {
            throw EmberError.invalidArgument("tokenizer_categ", "cardinalities must not be empty")
        }
        if let j = cardinalities.firstIndex(where: { $0 < 1 }) {
            throw EmberError.invalidArgument(
                "tokenizer_categ", "cardinalities must be >= 1, got \(cardinalities[j]) for \(ErrorIndex.describe(("feature", j)))")
        }
        guard dToken >= 1 else { throw EmberError.invalidArgument("tokenizer_categ", "d_token must be >= 1, got \(dToken)") }
        var offsets: [Int] = [], total = 0
        for c in cardinalities {
            offsets.append(total)
            let (sum, overflow) = total.addingReportingOverflow(c)
            guard !overflow else { throw EmberError(.overflow, "[tokenizer_categ] the sum of cardinalities overflows") }
            total = sum
        }
        self.cardinalities = cardinalities
        self.dToken = dToken
        self.offsets = offsets
        // Embedding draws N(0, 1) from its generator; give it a scratch copy so the engine stream
        // only advances by the uniform draws below.
        var scratch = rng
        embeddings = try Embedding(total, dToken, rng: &scratch)
        embeddings.weight.value = try tokenUniform([total, dToken], dToken: dToken, rng: &rng)
        self.bias = bias ? Parameter(try tokenUniform([cardinalities.count, dToken], dToken: dToken, rng: &rng)) : nil
        super.init()
    }

    public override var kind: String { "tokenizer_categ" }
    public override var localParameters: [(String, Parameter)] { bias.map { [("bias", $0)] } ?? [] }
    public override var children: [(String, Module)] { [("embeddings", embeddings)] }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        let s = x.shape, n = cardinalities.count
        guard s.count == 2, s[1] == n else {
            throw error(.shapeMismatch, "expected codes of shape [batch, \(n)], got \(shapeString(s))")
        }
        var rows = [Int](repeating: 0, count: x.value.count)
        func outOfRange(_ j: Int, _ r: Int, _ v: Float) -> EmberError {
            error(.invalidArgument, "categorical \(ErrorIndex.describe(("feature", j))) has \(cardinalities[j]) levels, but \(ErrorIndex.describe(("row", r))) holds code \(v); expected an integer in 0..<\(cardinalities[j])")
        }
        if let codes = x.codes?.data {
            // Integer codes: a range check only.
            for r in 0..<s[0] {
                for j in 0..<n {
                    let v = codes[r * n + j]
                    guard v >= 0, v < cardinalities[j] else { throw outOfRange(j, r, Float(v)) }
                    rows[r * n + j] = offsets[j] + v
                }
            }
        } else {
            try x.value.withUnsafeBufferPointer { p in
                for r in 0..<s[0] {
                    for j in 0..<n {
                        let v = p[r * n + j]
                        guard v >= 0, v < Float(cardinalities[j]), v == v.rounded() else { throw outOfRange(j, r, v) }
                        rows[r * n + j] = offsets[j] + Int(v)
                    }
                }
            }
        }
        let tokens = try EmberCore.embedding(try IndexTensor(shape: s, data: rows), weight: embeddings.weight.variable)
        guard let bias else { return tokens }
        return try binary(tokens, bias.variable, .add)
    }
}

/// Appends a learned token [d_token] to every sample at the END of the token axis:
/// [batch, tokens, d] → [batch, tokens + 1, d] (rtdl's `CLSToken`; the transformer's head reads
/// the last token). Initialised uniform in ±1/√d_token.
public final class CLSToken: Module {
    /// Token width.
    public let dToken: Int
    /// The token, [d_token].
    public let weight: Parameter

    /// Creates the token, drawn from `rng`.
    public init(dToken: Int, rng: inout RandomGenerator) throws {
        guard dToken >= 1 else { throw EmberError.invalidArgument("cls_token", "d_token must be >= 1, got \(dToken)") }
        self.dToken = dToken
        weight = Parameter(try tokenUniform([dToken], dToken: dToken, rng: &rng))
        super.init()
    }

    public override var kind: String { "cls_token" }
    public override var localParameters: [(String, Parameter)] { [("weight", weight)] }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        let s = x.shape
        guard s.count == 3, s[2] == dToken else {
            throw error(.shapeMismatch, "expected input of shape [batch, tokens, \(dToken)], got \(shapeString(s))")
        }
        let token = try expand(try reshape(weight.variable, [1, 1, dToken]), to: [s[0], 1, dToken])
        return try concat([x, token], axis: 1)
    }
}

/// The activation between the two linear layers of a transformer block's feed-forward network.
public enum FeedForwardActivation: Equatable, Sendable {
    /// `a · relu(b)` over the halves of the first layer's output (rtdl's default).
    case reglu
    /// `a · gelu(b)` (exact gelu).
    case geglu
    /// `a · sigmoid(b)`.
    case glu
    /// An elementwise function such as relu or gelu.
    case elementwise(UnaryFunction)

    /// `relu`, elementwise.
    public static var relu: FeedForwardActivation { .elementwise(.relu) }
    /// `gelu` (exact), elementwise.
    public static var gelu: FeedForwardActivation { .elementwise(.gelu()) }

    /// Whether the activation halves its input, so the first layer is twice as wide.
    public var isGated: Bool {
        if case .elementwise = self { return false }
        return true
    }

    /// The activation as a module.
    func makeModule() -> Module {
        switch self {
        case .reglu: return GatedLinearUnit.reglu()
        case .geglu: return GatedLinearUnit.geglu()
        case .glu: return GatedLinearUnit.glu()
        case let .elementwise(f): return Activation(f)
        }
    }
}

/// A transformer block's feed-forward network: `linear_first` (d → hidden, or 2 · hidden for a
/// gated activation) → activation → dropout → `linear_second` (hidden → d), as rtdl's
/// `Transformer.FFN` and mlr3torch's `nn_ft_ffn`.
public final class FeedForward: Module {
    /// First layer.
    public let linearFirst: Linear
    /// The activation module.
    public let activation: Module
    /// Dropout after the activation.
    public let dropout: Dropout
    /// Second layer.
    public let linearSecond: Linear

    /// Creates the network, drawing `linear_first` and then `linear_second` from `rng`.
    public init(dToken: Int, hidden: Int, dropout: Float, activation: FeedForwardActivation,
                rng: inout RandomGenerator) throws {
        guard dToken >= 1, hidden >= 1 else {
            throw EmberError.invalidArgument("ft_ffn", "d_token and d_hidden must be >= 1, got \(dToken) and \(hidden)")
        }
        guard dropout >= 0 && dropout < 1 else {
            throw EmberError.invalidArgument("ft_ffn", "dropout must be in [0, 1), got \(dropout)")
        }
        linearFirst = try Linear(dToken, activation.isGated ? 2 * hidden : hidden, rng: &rng)
        self.activation = activation.makeModule()
        self.dropout = try Dropout(dropout)
        linearSecond = try Linear(hidden, dToken, rng: &rng)
        super.init()
    }

    public override var kind: String { "ft_ffn" }
    public override var children: [(String, Module)] {
        [("linear_first", linearFirst), ("activation", activation), ("dropout", dropout), ("linear_second", linearSecond)]
    }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        var h = try linearFirst.forward(x, &ctx)
        h = try activation.forward(h, &ctx)
        h = try dropout.forward(h, &ctx)
        return try linearSecond.forward(h, &ctx)
    }
}

/// One FT-Transformer block over tokens [batch, tokens, d_token] (rtdl's `Transformer` layer,
/// mlr3torch's `nn_ft_transformer_block`).
///
/// Pre-normalisation (the default):
///
///     x = x + residual_dropout(attention(LN_attention(x)))   // no LN_attention in the first block
///     x = x + residual_dropout(ffn(LN_ffn(x)))
///
/// Post-normalisation: `x = LN_attention(x + residual_dropout(attention(x)))`, then the same for
/// the feed-forward network. Children: `attention` (`MultiheadAttention`),
/// `attention_normalization` (absent in a first pre-norm block), `attention_residual_dropout`,
/// `ffn_normalization`, `ffn` (`linear_first`, `activation`, `dropout`, `linear_second`),
/// `ffn_residual_dropout`.
public final class TransformerBlock: Module {
    /// Token width.
    public let dToken: Int
    /// Whether the layer norms come before attention and FFN (true) or after the residual sum.
    public let prenormalization: Bool
    /// Whether this is the first block (which, pre-normalised, has no attention layer norm).
    public let firstBlock: Bool
    /// Layer norm before (or after) attention; nil in a first pre-norm block.
    public let attentionNormalization: LayerNorm?
    /// Self-attention.
    public let attention: MultiheadAttention
    /// Dropout on the attention branch before the residual sum.
    public let attentionResidualDropout: Dropout
    /// Layer norm before (or after) the feed-forward network.
    public let ffnNormalization: LayerNorm
    /// The feed-forward network.
    public let ffn: FeedForward
    /// Dropout on the feed-forward branch before the residual sum.
    public let ffnResidualDropout: Dropout

    /// Creates a block, drawing the attention's and then the feed-forward network's weights from
    /// `rng`. `ffnHidden` is the width after the activation (the first layer is twice as wide
    /// for ReGLU/GEGLU/GLU).
    public init(dToken: Int, heads: Int, attentionDropout: Float = 0, ffnHidden: Int, ffnDropout: Float = 0,
                residualDropout: Float = 0, activation: FeedForwardActivation = .reglu, prenormalization: Bool = true,
                firstBlock: Bool, rng: inout RandomGenerator) throws {
        for (name, p) in [("attention_dropout", attentionDropout), ("ffn_dropout", ffnDropout), ("residual_dropout", residualDropout)] {
            guard p >= 0 && p < 1 else {
                throw EmberError.invalidArgument("transformer_block", "\(name) must be in [0, 1), got \(p)")
            }
        }
        guard dToken >= 1, heads >= 1, ffnHidden >= 1 else {
            throw EmberError.invalidArgument(
                "transformer_block", "d_token, heads and ffn_hidden must be >= 1, got \(dToken), \(heads) and \(ffnHidden)")
        }
        guard dToken % heads == 0 else {
            throw EmberError.invalidArgument("transformer_block", "d_token \(dToken) is not divisible by heads \(heads)")
        }
        self.dToken = dToken
        self.prenormalization = prenormalization
        self.firstBlock = firstBlock
        // rtdl: a first pre-norm block normalises nothing before attention (its input are fresh tokens).
        if prenormalization && firstBlock {
            attentionNormalization = nil
        } else {
            attentionNormalization = try LayerNorm(dToken)
        }
        attention = try MultiheadAttention(embedDim: dToken, numHeads: heads, dropout: attentionDropout, rng: &rng)
        attentionResidualDropout = try Dropout(residualDropout)
        ffnNormalization = try LayerNorm(dToken)
        ffn = try FeedForward(dToken: dToken, hidden: ffnHidden, dropout: ffnDropout, activation: activation, rng: &rng)
        ffnResidualDropout = try Dropout(residualDropout)
        super.init()
    }

    public override var kind: String { "transformer_block" }
    public override var children: [(String, Module)] {
        (attentionNormalization.map { [("attention_normalization", $0 as Module)] } ?? [])
            + [("attention", attention), ("attention_residual_dropout", attentionResidualDropout),
               ("ffn_normalization", ffnNormalization), ("ffn", ffn), ("ffn_residual_dropout", ffnResidualDropout)]
    }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        let s = x.shape
        guard s.count == 3, s[2] == dToken else {
            throw error(.shapeMismatch, "expected input of shape [batch, tokens, \(dToken)], got \(shapeString(s))")
        }
        var h = x
        // Attention stage.
        var r = h
        if prenormalization, let norm = attentionNormalization { r = try norm.forward(r, &ctx) }
        r = try attention.forward(r, &ctx)
        h = try binary(h, try attentionResidualDropout.forward(r, &ctx), .add)
        if !prenormalization, let norm = attentionNormalization { h = try norm.forward(h, &ctx) }
        // Feed-forward stage.
        r = prenormalization ? try ffnNormalization.forward(h, &ctx) : h
        r = try ffn.forward(r, &ctx)
        h = try binary(h, try ffnResidualDropout.forward(r, &ctx), .add)
        if !prenormalization { h = try ffnNormalization.forward(h, &ctx) }
        return h
    }
}

/// A module whose [batch, tokens, d] output can be computed for its last token alone, when
/// nothing else reads it (a last transformer block read only by `select_cls`: rtdl's
/// `last_layer_query_idx = [-1]`).
protocol LastTokenForward: Module {
    /// Whether `forwardLastToken` is available (a `repeat` of blocks, a body ending in a block).
    var computesLastToken: Bool { get }
    /// The last token of `forward(x)`, [batch, 1, d]: the same values and parameter gradients, and
    /// the same draws from the random stream.
    func forwardLastToken(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable
}

extension TransformerBlock: LastTokenForward {
    var computesLastToken: Bool { true }

    /// The block for the last token only: keys and values still come from every token, but only
    /// the last one attends, and the rest of the block (out_proj, residuals, layer norm, FFN)
    /// runs on that one row. Dropout masks are drawn for the whole value and their last rows used.
    func forwardLastToken(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        let s = x.shape
        guard s.count == 3, s[2] == dToken, s[1] >= 1 else {
            throw error(.shapeMismatch, "expected input of shape [batch, tokens, \(dToken)], got \(shapeString(s))")
        }
        let t = s[1]
        var h = try slice(x, axis: 1, start: t - 1, end: t)
        var r = x
        if prenormalization, let norm = attentionNormalization { r = try norm.forward(r, &ctx) }
        r = try attention.forward(r, queries: 1, &ctx)
        h = try binary(h, try lastTokenDropout(r, attentionResidualDropout, tokens: t, &ctx), .add)
        if !prenormalization, let norm = attentionNormalization { h = try norm.forward(h, &ctx) }
        r = prenormalization ? try ffnNormalization.forward(h, &ctx) : h
        r = try ffn.linearFirst.forward(r, &ctx)
        r = try ffn.activation.forward(r, &ctx)
        r = try lastTokenDropout(r, ffn.dropout, tokens: t, &ctx)
        r = try ffn.linearSecond.forward(r, &ctx)
        h = try binary(h, try lastTokenDropout(r, ffnResidualDropout, tokens: t, &ctx), .add)
        if !prenormalization { h = try ffnNormalization.forward(h, &ctx) }
        return h
    }

    /// `layer` on the last token's value v [batch, 1, w] of a [batch, tokens, w] value: the mask of
    /// the whole value is drawn (the random stream of the full pass) and its last rows applied.
    private func lastTokenDropout(_ v: Variable, _ layer: Dropout, tokens: Int, _ ctx: inout ForwardContext) throws -> Variable {
        guard ctx.training && layer.p > 0 else { return v }
        let s = v.shape
        let full = try dropoutMask([s[0], tokens, s[2]], p: layer.p, rng: &ctx.rng)
        return try dropout(v, mask: try full.sliced(axis: 1, start: tokens - 1, end: tokens))
    }
}
