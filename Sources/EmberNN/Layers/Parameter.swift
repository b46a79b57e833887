import EmberCore

/// A trainable tensor. Its name is its path in the module tree (`blocks.2.linear.weight`), which
/// drives optimizers' parameter groups, model files and freezing.
public final class Parameter {
    /// The tape leaf holding the value and, after `backward()`, its gradient.
    public private(set) var variable: Variable
    /// Full hierarchical name; set when the module tree is assembled (see `Module.assignNames`).
    public internal(set) var name: String

    /// Creates a parameter holding `value`; `name` is usually filled in by the owning module tree.
    public init(_ value: Tensor, name: String = "") {
        self.name = name
        self.variable = Variable(value, requiresGrad: true)
    }

    /// The current value.
    public var value: Tensor {
        get { variable.value }
        set { variable.value = newValue }
    }

    /// The gradient from the last backward pass, if any.
    public var grad: Tensor? {
        get { variable.grad }
        set { variable.grad = newValue }
    }

    /// Whether the parameter is frozen: no gradient is computed for it and optimizers skip it.
    public var isFrozen: Bool {
        get { !variable.requiresGrad }
        set {
            guard newValue != isFrozen else { return }
            variable = Variable(variable.value, requiresGrad: !newValue)
        }
    }
}

/// Non-trainable state that belongs in the model file, such as batch norm's running statistics.
public final class Buffer {
    /// The current value.
    public var value: Tensor
    /// Full hierarchical name, as for parameters.
    public internal(set) var name: String
    /// Whether the buffer counts something (batch norm's `num_batches_tracked`): PyTorch stores
    /// such buffers as integers, and weights files may hold them with an integer dtype.
    public let isCounter: Bool

    /// Creates a buffer holding `value`.
    public init(_ value: Tensor, name: String = "", isCounter: Bool = false) {
        self.value = value
        self.name = name
        self.isCounter = isCounter
    }
}
