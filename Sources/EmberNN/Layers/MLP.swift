import EmberCore

/// A multi-layer perceptron: for each hidden width, Linear → ReLU → Dropout(p); then a Linear
/// output layer. Layers are named `layers.0`, `layers.1`, … in order, the output layer last.
public final class MLP {
    /// The linear layers, hidden ones first, the output layer last.
    public let layers: [LinearLayer]
    /// Dropout probability after each hidden activation.
    public let dropout: Float

    /// Builds the network, drawing initial weights from `rng` layer by layer (weight, then bias).
    public init(inputs: Int, neurons: [Int], outputs: Int, dropout: Float, rng: inout RandomGenerator) throws {
        guard dropout >= 0 && dropout < 1 else {
            throw EmberError.invalidArgument("mlp", "p (dropout) must be in [0, 1), got \(dropout)")
        }
        var widths = [inputs] + neurons + [outputs]
        if widths.isEmpty { widths = [inputs, outputs] }
        var layers: [LinearLayer] = []
        for i in 0..<(widths.count - 1) {
            layers.append(try LinearLayer(name: "layers.\(i)", inFeatures: widths[i], outFeatures: widths[i + 1], rng: &rng))
        }
        self.layers = layers
        self.dropout = dropout
    }

    /// All parameters in a stable order: `layers.0.weight`, `layers.0.bias`, `layers.1.weight`, …
    public var parameters: [Parameter] { layers.flatMap { [$0.weight, $0.bias] } }

    /// Forward pass. Dropout is active only when `training` is true.
    public func callAsFunction(_ x: Variable, training: Bool, rng: inout RandomGenerator) throws -> Variable {
        var h = x
        for (i, layer) in layers.enumerated() {
            h = try layer(h)
            if i < layers.count - 1 {
                h = relu(h)
                if training && dropout > 0 { h = try EmberCore.dropout(h, p: dropout, rng: &rng) }
            }
        }
        return h
    }
}
