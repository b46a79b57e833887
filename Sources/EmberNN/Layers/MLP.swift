import EmberCore

/// A multi-layer perceptron: for each hidden width, Linear → activation → Dropout(p); then a
/// Linear output layer. The linear layers are named `layers.0`, `layers.1`, … in order, the
/// output layer last.
public final class MLP: Module {
    /// The linear layers, hidden ones first, the output layer last.
    public let layers: [Linear]
    /// Dropout probability after each hidden activation.
    public let dropout: Dropout
    /// The activation after each hidden layer.
    public let activation: UnaryFunction

    /// Builds the network, drawing initial weights from `rng` layer by layer (weight, then bias).
    public init(inputs: Int, neurons: [Int], outputs: Int, dropout: Float, activation: UnaryFunction = .relu,
                rng: inout RandomGenerator) throws {
        guard dropout >= 0 && dropout < 1 else {
            throw EmberError.invalidArgument("mlp", "p (dropout) must be in [0, 1), got \(dropout)")
        }
        let widths = [inputs] + neurons + [outputs]
        var layers: [Linear] = []
        for i in 0..<(widths.count - 1) {
            layers.append(try Linear(widths[i], widths[i + 1], rng: &rng))
        }
        self.layers = layers
        self.dropout = try Dropout(dropout)
        self.activation = activation
        super.init()
        assignNames()
    }

    public override var kind: String { "mlp" }
    public override var children: [(String, Module)] { layers.enumerated().map { ("layers.\($0.offset)", $0.element) } }

    /// Forward pass. Dropout is active only when `training` is true.
    public func callAsFunction(_ x: Variable, training: Bool, rng: inout RandomGenerator) throws -> Variable {
        var ctx = ForwardContext(training: training, rng: rng)
        defer { rng = ctx.rng }
        return try forward(x, &ctx)
    }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        var h = x
        for (i, layer) in layers.enumerated() {
            h = try layer.forward(h, &ctx)
            if i < layers.count - 1 {
                h = unary(h, activation)
                h = try dropout.forward(h, &ctx)
            }
        }
        return h
    }
}
