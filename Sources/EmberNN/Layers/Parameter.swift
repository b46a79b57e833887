import EmberCore

/// A named trainable tensor. Names are hierarchical (`layers.0.weight`) and drive optimizers,
/// model files and (later) freezing.
public final class Parameter {
    /// The parameter's full name, e.g. `layers.1.bias`.
    public let name: String
    /// The tape leaf holding the value and, after `backward()`, its gradient.
    public let variable: Variable

    /// Creates a parameter named `name` holding `value`.
    public init(name: String, value: Tensor) {
        self.name = name
        self.variable = Variable(value, requiresGrad: true)
    }

    /// The current value.
    public var value: Tensor {
        get { variable.value }
        set { variable.value = newValue }
    }
}
