import EmberCore

/// A fully connected layer `y = x · Wᵀ + b` over the last dimension, with PyTorch's default
/// initialisation: weight and bias uniform in ±1/√in_features (kaiming-uniform with a = √5).
public final class Linear: Module {
    /// Weight of shape [out, in].
    public let weight: Parameter
    /// Bias of shape [out], if any.
    public let bias: Parameter?
    /// Input width.
    public let inFeatures: Int
    /// Output width.
    public let outFeatures: Int

    /// Creates a layer, drawing its initial values from `rng` (weight, then bias).
    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, rng: inout RandomGenerator) throws {
        guard inFeatures >= 1, outFeatures >= 1 else {
            throw EmberError.invalidArgument(
                "linear", "in_features and out_features must be >= 1, got \(inFeatures) and \(outFeatures)")
        }
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        let bound = 1 / Float(inFeatures).squareRoot()
        weight = Parameter(try Tensor.uniform([outFeatures, inFeatures], low: -bound, high: bound, rng: &rng))
        self.bias = bias ? Parameter(try Tensor.uniform([outFeatures], low: -bound, high: bound, rng: &rng)) : nil
        super.init()
    }

    public override var kind: String { "linear" }
    public override var localParameters: [(String, Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        guard let last = x.shape.last, last == inFeatures else {
            throw error(.shapeMismatch, "expected input with \(inFeatures) features, got \(x.shape.last.map(String.init) ?? "a scalar") (input \(shapeString(x.shape)))",
                        expected: "\(inFeatures) features", got: x.shape.last.map(String.init) ?? "a scalar")
        }
        return try linear(x, weight: weight.variable, bias: bias?.variable)
    }

    /// The forward pass without a tape, `relu?(x · Wᵀ + b)`, for predictions (`InferencePlan`):
    /// the bias and the ReLU applied as the product is stored (`BLAS.linearForward`).
    func inferenceForward(_ x: Tensor, relu: Bool) throws -> Tensor {
        guard let last = x.shape.last, last == inFeatures else {
            throw error(.shapeMismatch, "expected input with \(inFeatures) features, got \(x.shape.last.map(String.init) ?? "a scalar") (input \(shapeString(x.shape)))",
                        expected: "\(inFeatures) features", got: x.shape.last.map(String.init) ?? "a scalar")
        }
        let rows = x.count / inFeatures, w = weight.value, b = bias?.value
        return try Tensor.build(shape: Array(x.shape.dropLast()) + [outFeatures]) { out in
            guard let c = out.baseAddress else { return }
            try BLAS.linearForward(m: rows, n: outFeatures, k: inFeatures, x: x.unsafeReadPointer, weight: w.unsafeReadPointer,
                                   bias: b?.unsafeReadPointer, relu: relu, c: c)
        }
    }
}

/// Inverted dropout with probability `p`, active in training mode only.
public final class Dropout: Module {
    /// Drop probability in [0, 1).
    public let p: Float

    /// Creates a dropout layer.
    public init(_ p: Float = 0.5) throws {
        guard p >= 0 && p < 1 else { throw EmberError.invalidArgument("dropout", "p must be in [0, 1), got \(p)") }
        self.p = p
        super.init()
    }

    public override var kind: String { "dropout" }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        guard ctx.training && p > 0 else { return x }
        return try dropout(x, p: p, rng: &ctx.rng)
    }
}

/// An elementwise activation (relu, gelu, elu, …) with PyTorch's parameters.
public final class Activation: Module {
    /// The function applied.
    public let function: UnaryFunction

    /// Creates an activation layer.
    public init(_ function: UnaryFunction) {
        self.function = function
        super.init()
    }

    public override var kind: String { function.name }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        unary(x, function)
    }
}

/// Flattens dimensions `startDim...endDim` into one (PyTorch's `nn.Flatten`, default from 1).
public final class Flatten: Module {
    /// First dimension flattened.
    public let startDim: Int
    /// Last dimension flattened.
    public let endDim: Int

    /// Creates a flatten layer.
    public init(startDim: Int = 1, endDim: Int = -1) {
        self.startDim = startDim
        self.endDim = endDim
        super.init()
    }

    public override var kind: String { "flatten" }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        let r = x.shape.count
        let s = try Tensor.normalizeAxis(startDim, rank: r, op: "flatten")
        let e = try Tensor.normalizeAxis(endDim, rank: r, op: "flatten")
        guard s <= e else { throw error(.invalidArgument, "start_dim \(startDim) is after end_dim \(endDim) for input \(shapeString(x.shape))") }
        let shape = Array(x.shape[..<s]) + [x.shape[s...e].reduce(1, *)] + Array(x.shape[(e + 1)...])
        return try reshape(x, shape)
    }
}
