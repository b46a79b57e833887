import EmberCore

/// A lookup table of `numEmbeddings` vectors of size `dim` (`nn.Embedding`, initialised N(0, 1)).
/// Its input holds integer codes (`Variable.codes`, e.g. a categorical feature's level index), or
/// whole numbers stored as floats.
public final class Embedding: Module {
    /// The table, [num_embeddings, dim].
    public let weight: Parameter

    /// Creates a table drawn from the engine RNG.
    public init(_ numEmbeddings: Int, _ dim: Int, rng: inout RandomGenerator) throws {
        guard numEmbeddings >= 1, dim >= 1 else {
            throw EmberError.invalidArgument("embedding", "num_embeddings and embedding_dim must be >= 1, got \(numEmbeddings) and \(dim)")
        }
        weight = Parameter(try Tensor.normal([numEmbeddings, dim], rng: &rng))
        super.init()
    }

    public override var kind: String { "embedding" }
    public override var localParameters: [(String, Parameter)] { [("weight", weight)] }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        try EmberCore.embedding(try codes(x, bound: weight.value.shape[0], op: self), weight: weight.variable)
    }
}

/// The integer codes of `x` checked to lie in 0..<bound: its `codes` when it carries them, else
/// its floats checked to be whole numbers.
func codes(_ x: Variable, bound: Int, op: Module) throws -> IndexTensor {
    if let c = x.codes {
        for (i, v) in c.data.enumerated() where v < 0 || v >= bound {
            throw op.error(.invalidArgument, "code \(Float(v)) at position \(i) is not an integer in 0..<\(bound)")
        }
        return c
    }
    let t = x.value
    var out = [Int](repeating: 0, count: t.count)
    let p = t.unsafeReadPointer
    for i in 0..<t.count {
        let v = p[i]
        guard v >= 0, v < Float(bound), v == v.rounded() else {
            throw op.error(.invalidArgument, "code \(v) at position \(i) is not an integer in 0..<\(bound)")
        }
        out[i] = Int(v)
    }
    return try IndexTensor(shape: t.shape, data: out)
}

/// `x > 0 ? x : a · x` with a learnable slope per channel (dimension 1) or one shared slope
/// (`nn.PReLU`, initialised 0.25).
public final class PReLU: Module {
    /// The slopes, [num_parameters].
    public let weight: Parameter

    /// Creates `numParameters` slopes (1, or the number of channels).
    public init(numParameters: Int = 1, initialValue: Float = 0.25) throws {
        guard numParameters >= 1 else { throw EmberError.invalidArgument("prelu", "num_parameters must be >= 1, got \(numParameters)") }
        weight = Parameter(try Tensor.full([numParameters], initialValue))
        super.init()
    }

    public override var kind: String { "prelu" }
    public override var localParameters: [(String, Parameter)] { [("weight", weight)] }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        let k = weight.value.count
        var slopeShape = [Int](repeating: 1, count: max(x.shape.count, 1))
        if k > 1 {
            guard x.shape.count >= 2, x.shape[1] == k else {
                throw error(.shapeMismatch, "expected input with \(k) channels in dimension 1, got \(shapeString(x.shape))")
            }
            slopeShape[1] = k
        }
        let a = try reshape(weight.variable, slopeShape)
        // prelu(x) = relu(x) + a · min(x, 0) = relu(x) - a · relu(-x)
        let negative = unary(unary(x, .neg), .relu)
        return try binary(relu(x), try binary(a, negative, .mul), .sub)
    }
}

/// Randomized leaky ReLU (`nn.RReLU(lower = 1/8, upper = 1/3)`): in training each negative
/// element gets a slope drawn uniformly from [lower, upper]; in evaluation the mean slope.
public final class RReLU: Module {
    /// Lower bound of the slope.
    public let lower: Float
    /// Upper bound of the slope.
    public let upper: Float

    /// Creates the layer.
    public init(lower: Float = 1.0 / 8, upper: Float = 1.0 / 3) throws {
        guard lower >= 0, upper >= lower, upper.isFinite else {
            throw EmberError.invalidArgument("rrelu", "expected 0 <= lower <= upper, got \(lower) and \(upper)")
        }
        self.lower = lower
        self.upper = upper
        super.init()
    }

    public override var kind: String { "rrelu" }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        guard ctx.training else { return unary(x, .leakyRelu(slope: (lower + upper) / 2)) }
        // A multiplier per element: 1 where x ≥ 0, a random slope elsewhere (like a dropout mask).
        let px = x.value.unsafeReadPointer
        var rng = ctx.rng
        let mask = Tensor.build(shape: x.shape) { m in
            for i in 0..<m.count { m[i] = px[i] >= 0 ? 1 : rng.uniform(lower, upper) }
        }
        ctx.rng = rng
        return try dropout(x, mask: mask)
    }
}

/// Gated linear units over the last dimension: the input's halves a and b give `a · f(b)` with
/// f = sigmoid (`glu`), relu (`reglu`) or gelu (`geglu`), as in PyTorch and the FT-Transformer.
public final class GatedLinearUnit: Module {
    /// The gate's activation.
    public let gate: UnaryFunction
    /// Layer name.
    let name: String

    /// `nn.GLU(dim = -1)`.
    public static func glu() -> GatedLinearUnit { GatedLinearUnit(.sigmoid, "glu") }
    /// ReGLU.
    public static func reglu() -> GatedLinearUnit { GatedLinearUnit(.relu, "reglu") }
    /// GEGLU (exact gelu).
    public static func geglu() -> GatedLinearUnit { GatedLinearUnit(.gelu(), "geglu") }

    init(_ gate: UnaryFunction, _ name: String) {
        self.gate = gate
        self.name = name
        super.init()
    }

    public override var kind: String { name }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        guard let d = x.shape.last, d % 2 == 0, d > 0 else {
            throw error(.shapeMismatch, "expected an even, non-zero last dimension, got \(shapeString(x.shape))")
        }
        // ReGLU (the FT-Transformer's default) as one op that reads the halves in place.
        if gate == .relu { return try EmberCore.reglu(x) }
        let a = try slice(x, axis: -1, start: 0, end: d / 2)
        let b = try slice(x, axis: -1, start: d / 2, end: d)
        return try binary(a, unary(b, gate), .mul)
    }
}

/// How a merge combines its inputs.
public enum MergeKind: String, Sendable {
    case sum, product = "prod", concat = "cat"
}

/// Combines several inputs: elementwise sum or product (with broadcasting), or concatenation
/// along `axis` (mlr3torch's `nn_merge_sum`, `nn_merge_prod`, `nn_merge_cat`).
public final class Merge: Module {
    /// The combination.
    public let mergeKind: MergeKind
    /// Concatenation axis.
    public let axis: Int

    /// Creates a merge.
    public init(_ kind: MergeKind, axis: Int = -1) {
        self.mergeKind = kind
        self.axis = axis
        super.init()
    }

    public override var kind: String { "merge_\(mergeKind.rawValue)" }

    public override func forward(_ inputs: [Variable], _ ctx: inout ForwardContext) throws -> Variable {
        guard let first = inputs.first else { throw error(.invalidArgument, "expected at least one input") }
        switch mergeKind {
        case .sum: return try inputs.dropFirst().reduce(first) { try binary($0, $1, .add) }
        case .product: return try inputs.dropFirst().reduce(first) { try binary($0, $1, .mul) }
        case .concat: return try concat(inputs, axis: axis)
        }
    }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        try forward([x], &ctx)
    }
}

/// Reshapes each sample: the batch dimension is kept and the rest becomes `shape` (-1 allowed).
public final class Reshape: Module {
    /// The per-sample shape.
    public let shape: [Int]

    /// Creates the layer.
    public init(_ shape: [Int]) {
        self.shape = shape
        super.init()
    }

    public override var kind: String { "reshape" }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        guard let n = x.shape.first else { throw error(.shapeMismatch, "expected a batch dimension, got a scalar") }
        return try reshape(x, [n] + shape)
    }
}

/// Removes (`squeeze`) or inserts (`unsqueeze`) a dimension of size 1.
public final class Squeeze: Module {
    /// The dimension.
    public let dim: Int
    /// True to insert a dimension rather than remove one.
    public let insert: Bool

    /// `nn.Squeeze(dim)`-like (only a size-1 dimension is removed) or unsqueeze.
    public init(dim: Int, insert: Bool = false) {
        self.dim = dim
        self.insert = insert
        super.init()
    }

    public override var kind: String { insert ? "unsqueeze" : "squeeze" }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        var s = x.shape
        if insert {
            let d = dim < 0 ? dim + s.count + 1 : dim
            guard d >= 0 && d <= s.count else { throw error(.invalidArgument, "dim \(dim) is out of range for \(shapeString(s))") }
            s.insert(1, at: d)
        } else {
            let d = try Tensor.normalizeAxis(dim, rank: s.count, op: kind)
            guard s[d] == 1 else { return x }
            s.remove(at: d)
        }
        return try reshape(x, s)
    }
}
