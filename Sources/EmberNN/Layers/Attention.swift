import EmberCore

/// Multi-head self-attention over x [batch, tokens, embed_dim], with the parameters, names and
/// initialisation of PyTorch's `nn.MultiheadAttention(embed_dim, num_heads, dropout, bias,
/// batch_first = TRUE)` so that a PyTorch state dict maps by name:
///
/// - `in_proj_weight` [3d, d]: the query, key and value projections stacked (xavier-uniform),
/// - `in_proj_bias` [3d] (zeros), if `bias`,
/// - `out_proj` a `Linear(d, d)` (weight as Linear's default, bias zeros if `bias`).
///
/// The forward pass splits each projection into `numHeads` heads of width d / numHeads, applies
/// scaled dot-product attention (softmax over the keys of `q · kᵀ / √head_dim`), drops attention
/// weights with probability `dropout` in training mode only, and maps the concatenated heads
/// through `out_proj`. Query, key and value are all the input (self-attention); there is no mask.
public final class MultiheadAttention: Module {
    /// Width of the tokens (PyTorch's `embed_dim`).
    public let embedDim: Int
    /// Number of heads (PyTorch's `num_heads`); divides `embedDim`.
    public let numHeads: Int
    /// Dropout probability on the attention weights, in training mode.
    public let dropout: Float
    /// Stacked query/key/value projection weight, [3 · embed_dim, embed_dim].
    public let inProjWeight: Parameter
    /// Stacked query/key/value projection bias, [3 · embed_dim], if the layer has biases.
    public let inProjBias: Parameter?
    /// The output projection (`out_proj`).
    public let outProj: Linear

    /// Creates the layer, drawing `in_proj_weight` and then `out_proj`'s weight from `rng`.
    public init(embedDim: Int, numHeads: Int, dropout: Float = 0, bias: Bool = true, rng: inout RandomGenerator) throws {
        guard embedDim >= 1, numHeads >= 1 else {
            throw EmberError.invalidArgument(
                "multihead_attention", "embed_dim and num_heads must be >= 1, got \(embedDim) and \(numHeads)")
        }
        guard embedDim % numHeads == 0 else {
            throw EmberError.invalidArgument(
                "multihead_attention", "embed_dim \(embedDim) is not divisible by num_heads \(numHeads)")
        }
        guard dropout >= 0 && dropout < 1 else {
            throw EmberError.invalidArgument("multihead_attention", "dropout must be in [0, 1), got \(dropout)")
        }
        self.embedDim = embedDim
        self.numHeads = numHeads
        self.dropout = dropout
        // xavier_uniform_: bound = √(6 / (fan_in + fan_out)) with fan_in = d, fan_out = 3d.
        let bound = (6 / Float(4 * embedDim)).squareRoot()
        inProjWeight = Parameter(try Tensor.uniform([3 * embedDim, embedDim], low: -bound, high: bound, rng: &rng))
        inProjBias = bias ? Parameter(try Tensor.zeros([3 * embedDim])) : nil
        outProj = try Linear(embedDim, embedDim, bias: bias, rng: &rng)
        // PyTorch's _reset_parameters sets out_proj.bias to 0 after Linear's own initialisation.
        if let b = outProj.bias { b.value = try Tensor.zeros([embedDim]) }
        super.init()
    }

    /// Width of one head.
    public var headDim: Int { embedDim / numHeads }

    public override var kind: String { "multihead_attention" }
    public override var localParameters: [(String, Parameter)] {
        [("in_proj_weight", inProjWeight)] + (inProjBias.map { [("in_proj_bias", $0)] } ?? [])
    }
    public override var children: [(String, Module)] { [("out_proj", outProj)] }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        try forward(x, queries: nil, &ctx)
    }

    /// The forward pass in which only the last `queries` tokens attend (all tokens when nil):
    /// [batch, tokens, d] → [batch, queries, d], the last rows of the full pass (see
    /// `multiHeadSelfAttention(_:heads:dropout:scale:queries:rng:)`; the same random stream). The
    /// queries are then projected for those tokens alone (`multiHeadAttention(lastQueries:…)`).
    func forward(_ x: Variable, queries: Int?, _ ctx: inout ForwardContext) throws -> Variable {
        let s = x.shape
        guard s.count == 3, s[2] == embedDim else {
            throw error(.shapeMismatch, "expected input of shape [batch, tokens, \(embedDim)], got \(shapeString(s))")
        }
        let t = s[1], d = embedDim
        if let queries, queries >= 1, queries < t {
            // Queries projected for the last tokens only; keys and values for all of them.
            let w = inProjWeight.variable, b = inProjBias?.variable
            let q = try linear(try slice(x, axis: 1, start: t - queries, end: t), weight: try slice(w, axis: 0, start: 0, end: d),
                               bias: try b.map { try slice($0, axis: 0, start: 0, end: d) })
            let kv = try linear(x, weight: try slice(w, axis: 0, start: d, end: 3 * d),
                                bias: try b.map { try slice($0, axis: 0, start: d, end: 3 * d) })
            let merged = try multiHeadAttention(lastQueries: q, keysValues: kv, heads: numHeads,
                                                dropout: ctx.training ? dropout : 0, rng: &ctx.rng)
            return try outProj.forward(merged, &ctx)
        }
        let qkv = try linear(x, weight: inProjWeight.variable, bias: inProjBias?.variable)  // [B, T, 3d]
        // One op for all heads: softmax(q · kᵀ / √head_dim) · v, heads read in place from the
        // packed projection and written side by side ([B, T, d], as out_proj reads them).
        let merged = try multiHeadSelfAttention(qkv, heads: numHeads, dropout: ctx.training ? dropout : 0,
                                                queries: queries, rng: &ctx.rng)
        return try outProj.forward(merged, &ctx)
    }
}
