import EmberCore

/// A fully connected layer `y = x · Wᵀ + b` with PyTorch's default initialisation: weight and
/// bias uniform in ±1/√in_features (kaiming-uniform with a = √5), drawn from the engine RNG.
public final class LinearLayer {
    /// Weight of shape [out, in].
    public let weight: Parameter
    /// Bias of shape [out].
    public let bias: Parameter
    /// Input width.
    public let inFeatures: Int
    /// Output width.
    public let outFeatures: Int

    /// Creates a layer named `name` (its parameters are `name.weight` and `name.bias`).
    public init(name: String, inFeatures: Int, outFeatures: Int, rng: inout RandomGenerator) throws {
        guard inFeatures >= 1, outFeatures >= 1 else {
            throw EmberError.invalidArgument(
                "linear '\(name)'", "in_features and out_features must be >= 1, got \(inFeatures) and \(outFeatures)")
        }
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        let bound = 1 / Float(inFeatures).squareRoot()
        var w = [Float](repeating: 0, count: outFeatures * inFeatures)
        for i in 0..<w.count { w[i] = rng.uniform(-bound, bound) }
        var b = [Float](repeating: 0, count: outFeatures)
        for i in 0..<b.count { b[i] = rng.uniform(-bound, bound) }
        weight = Parameter(name: "\(name).weight", value: try Tensor(shape: [outFeatures, inFeatures], data: w))
        bias = Parameter(name: "\(name).bias", value: try Tensor(shape: [outFeatures], data: b))
    }

    /// Applies the layer to `x` of shape [batch, in].
    public func callAsFunction(_ x: Variable) throws -> Variable {
        try linear(x, weight: weight.variable, bias: bias.variable)
    }
}
