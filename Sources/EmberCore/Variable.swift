import CEmberSupport

/// A node of the reverse-mode tape: a tensor value, its gradient, and how to pass a gradient on
/// to the values it was computed from.
///
/// The model is micrograd's: every op that records builds a `Variable` whose `pullback` maps the
/// gradient of its output to gradients of its inputs; `backward()` walks the graph in reverse
/// topological order and accumulates (`+=`) into each input, so a value feeding several
/// consumers receives the sum of their gradients.
public final class Variable {
    /// The forward value.
    public var value: Tensor
    /// The accumulated gradient after `backward()`; nil until one arrives.
    public var grad: Tensor?
    /// Whether gradients flow to (and are kept for) this value.
    public let requiresGrad: Bool
    /// Inputs of the op that produced this value (empty for leaves and after backward).
    var inputs: [Variable]
    /// Maps the gradient of this value to one gradient per input (nil where none flows).
    var pullback: ((Tensor) throws -> [Tensor?])?
    /// Whether this value is a leaf (created directly, not by an op).
    let isLeaf: Bool
    /// The integer codes a constant input holds (a categorical input of a dataset with integer
    /// codes), nil otherwise; `value` holds the same numbers as floats. Embedding, one-hot and the
    /// categorical tokenizer index with them instead of checking floats for whole numbers.
    public let codes: IndexTensor?

    /// A leaf: a parameter (`requiresGrad: true`) or a constant input.
    public convenience init(_ value: Tensor, requiresGrad: Bool = false) {
        self.init(leaf: value, requiresGrad: requiresGrad, codes: nil)
    }

    /// A constant input holding integer `codes`; `value` holds them as floats.
    /// - Throws: `EmberError` when the two shapes differ.
    public convenience init(_ value: Tensor, codes: IndexTensor) throws {
        guard codes.shape == value.shape else {
            throw EmberError.shapeMismatch("codes", "codes of shape \(shapeString(codes.shape)) do not fit a value of shape \(shapeString(value.shape))")
        }
        self.init(leaf: value, requiresGrad: false, codes: codes)
    }

    private init(leaf value: Tensor, requiresGrad: Bool, codes: IndexTensor?) {
        self.value = value
        self.requiresGrad = requiresGrad
        self.inputs = []
        self.pullback = nil
        self.isLeaf = true
        self.codes = codes
    }

    /// The result of a differentiable op. Records `pullback` only when gradient recording is on
    /// and some input requires a gradient; otherwise the result is a constant.
    public init(_ value: Tensor, inputs: [Variable], pullback: @escaping (Tensor) throws -> [Tensor?]) {
        self.value = value
        let record = GradientMode.isEnabled && inputs.contains { $0.requiresGrad }
        self.requiresGrad = record
        self.inputs = record ? inputs : []
        self.pullback = record ? pullback : nil
        self.isLeaf = false
        self.codes = nil
    }

    /// The shape of the value.
    public var shape: [Int] { value.shape }

    /// Back-propagates from this scalar value: every value it depends on that requires a gradient
    /// receives d(self)/d(value) in `grad` (added to what is there).
    public func backward() throws {
        guard value.count == 1 else {
            throw EmberError.invalidArgument(
                "backward", "needs a scalar (one-element) value, got shape \(shapeString(value.shape))")
        }
        guard requiresGrad else {
            throw EmberError(.invalidState, "[backward] the value does not depend on anything that requires a gradient")
        }
        try backward(seed: Tensor(uncheckedShape: value.shape, data: [1]))
    }

    /// Back-propagates `seed` (same shape as the value) through the graph, then releases the graph
    /// (as PyTorch does without `retain_graph`): a second backward through it is an error, and the
    /// tensors the ops kept for their backward are freed at once.
    public func backward(seed: Tensor) throws {
        guard isLeaf || pullback != nil else {
            throw EmberError(.invalidState, "[backward] the graph was already released by an earlier backward()")
        }
        guard seed.shape == value.shape else {
            throw EmberError.shapeMismatch(
                "backward", "seed shape \(shapeString(seed.shape)) differs from value shape \(shapeString(value.shape))")
        }
        let order = topologicalOrder()
        var pending: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): seed]
        for node in order.reversed() {
            guard let g = pending.removeValue(forKey: ObjectIdentifier(node)) else { continue }
            if node.isLeaf {
                // A leaf keeps its gradient.
                if node.requiresGrad { try node.accumulate(g) }
                continue
            }
            guard let pullback = node.pullback else { continue }
            let grads = try pullback(g)
            let inputs = node.inputs
            node.pullback = nil
            node.inputs = []
            for (input, gi) in zip(inputs, grads) {
                guard input.requiresGrad, let gi else { continue }
                let key = ObjectIdentifier(input)
                if var existing = pending[key] {
                    try addInPlace(&existing, gi, op: "backward")
                    pending[key] = existing
                } else {
                    pending[key] = gi
                }
            }
        }
    }

    /// Adds `g` into `grad`.
    func accumulate(_ g: Tensor) throws {
        if var existing = grad {
            grad = nil
            try addInPlace(&existing, g, op: "backward")
            grad = existing
        } else {
            grad = g
        }
    }

    /// Nodes reachable from self, inputs before the nodes that use them.
    func topologicalOrder() -> [Variable] {
        var order: [Variable] = []
        var visited = Set<ObjectIdentifier>()
        // Iterative DFS so deep graphs cannot overflow the stack.
        var stack: [(Variable, Int)] = [(self, 0)]
        visited.insert(ObjectIdentifier(self))
        while let (node, next) = stack.popLast() {
            if next < node.inputs.count {
                stack.append((node, next + 1))
                let child = node.inputs[next]
                if child.requiresGrad && visited.insert(ObjectIdentifier(child)).inserted {
                    stack.append((child, 0))
                }
            } else {
                order.append(node)
            }
        }
        return order
    }
}

/// Adds `b` into `a` elementwise; shapes must match.
func addInPlace(_ a: inout Tensor, _ b: Tensor, op: String) throws {
    guard a.shape == b.shape else {
        throw EmberError.shapeMismatch(op, "cannot add gradient of shape \(shapeString(b.shape)) to \(shapeString(a.shape))")
    }
    b.withUnsafeBufferPointer { pb in
        a.withUnsafeMutableBufferPointer { pa in
            for i in 0..<pa.count { pa[i] += pb[i] }
        }
    }
}

/// Whether ops record gradients on the calling thread.
public enum GradientMode {
    /// True unless inside `withoutGradients`.
    public static var isEnabled: Bool { cember_grad_enabled() != 0 }

    /// Runs `body` without recording gradients on this thread (prediction, evaluation).
    public static func withoutGradients<T>(_ body: () throws -> T) rethrows -> T {
        let previous = cember_set_grad_enabled(0)
        defer { _ = cember_set_grad_enabled(previous) }
        return try body()
    }
}
