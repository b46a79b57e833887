import EmberCore

/// What a forward pass needs besides its inputs: training or evaluation mode and the engine RNG
/// for stochastic layers (dropout, rrelu).
public struct ForwardContext {
    /// Training mode (dropout active, batch norm updates running statistics).
    public var training: Bool
    /// Randomness for stochastic layers.
    public var rng: RandomGenerator
    /// The evaluation plans of a run of predictions (`Model.logits`); nil elsewhere.
    var inference: InferenceCache? = nil

    /// Creates a context.
    public init(training: Bool, rng: RandomGenerator = RandomGenerator(seed: 0)) {
        self.training = training
        self.rng = rng
    }
}

/// A layer or a network: parameters, buffers, named children and a forward pass.
///
/// Subclasses override `localParameters`, `localBuffers`, `children` and one of the `forward`
/// methods. Names are hierarchical (`blocks.2.linear.weight`): call `assignNames()` on the root
/// after building the tree (the containers and builders in Ember do).
open class Module {
    /// This module's path in the tree (`""` for the root), used in error messages.
    public internal(set) var path: String = ""

    /// Creates a module.
    public init() {}

    /// Parameters owned directly by this module, with local names such as `weight`.
    open var localParameters: [(String, Parameter)] { [] }
    /// Buffers owned directly by this module, with local names such as `running_mean`.
    open var localBuffers: [(String, Buffer)] { [] }
    /// Child modules with local names, in a stable order.
    open var children: [(String, Module)] { [] }
    /// The layer type, as used in error messages (`linear`, `batch_norm1d`, …).
    open var kind: String { "module" }

    /// Forward pass over one input. The default runs `forward(_ inputs:)` with one element.
    open func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        try forward([x], &ctx)
    }

    /// Forward pass over several inputs (merges). The default requires exactly one input.
    open func forward(_ inputs: [Variable], _ ctx: inout ForwardContext) throws -> Variable {
        guard inputs.count == 1 else {
            throw error(.invalidArgument, "expected 1 input, got \(inputs.count)")
        }
        return try forward(inputs[0], &ctx)
    }

    /// Applies the module to one input.
    public func callAsFunction(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        try forward(x, &ctx)
    }

    /// An error that names this layer: `[linear 'blocks.1.linear'] expected …`.
    public func error(_ kind: EmberError.Kind, _ message: String, expected: String? = nil, got: String? = nil) -> EmberError {
        EmberError(kind, "[\(self.kind)\(path.isEmpty ? "" : " '\(path)'")] \(message)",
                   detail: EmberError.Detail(op: self.kind, layer: path.isEmpty ? nil : path, expected: expected, got: got))
    }

    // MARK: Tree

    /// Sets `path` of every module and `name` of every parameter and buffer below this one.
    public func assignNames(prefix: String = "") {
        path = prefix
        for (n, p) in localParameters { p.name = join(prefix, n) }
        for (n, b) in localBuffers { b.name = join(prefix, n) }
        for (n, c) in children { c.assignNames(prefix: join(prefix, n)) }
    }

    /// Every parameter in the tree, in a stable order (own first, then children in order).
    public var parameters: [Parameter] {
        localParameters.map { $0.1 } + children.flatMap { $0.1.parameters }
    }

    /// Every parameter with its full name.
    public func namedParameters(prefix: String = "") -> [(String, Parameter)] {
        localParameters.map { (join(prefix, $0.0), $0.1) }
            + children.flatMap { $0.1.namedParameters(prefix: join(prefix, $0.0)) }
    }

    /// Every buffer with its full name.
    public func namedBuffers(prefix: String = "") -> [(String, Buffer)] {
        localBuffers.map { (join(prefix, $0.0), $0.1) }
            + children.flatMap { $0.1.namedBuffers(prefix: join(prefix, $0.0)) }
    }

    /// Every module in the tree, this one first (pre-order), with full paths.
    public func namedModules(prefix: String = "") -> [(String, Module)] {
        [(prefix, self)] + children.flatMap { $0.1.namedModules(prefix: join(prefix, $0.0)) }
    }

    /// Freezes the parameters whose name relative to this module matches `pattern` (`*` matches
    /// any run of characters, e.g. `blocks.*.linear.weight` or `head.*`), as PyTorch's
    /// `named_parameters()` names them; returns how many matched.
    @discardableResult
    public func freeze(matching pattern: String) -> Int { setFrozen(true, pattern) }

    /// Unfreezes the parameters whose relative name matches `pattern`; returns how many matched.
    @discardableResult
    public func unfreeze(matching pattern: String) -> Int { setFrozen(false, pattern) }

    private func setFrozen(_ frozen: Bool, _ pattern: String) -> Int {
        var n = 0
        for (name, p) in namedParameters() where globMatch(pattern, name) {
            p.isFrozen = frozen
            n += 1
        }
        return n
    }
}

/// Joins name parts with a dot, skipping an empty prefix.
func join(_ prefix: String, _ name: String) -> String { prefix.isEmpty ? name : "\(prefix).\(name)" }

/// Glob matching with `*` (any run of characters, dots included) and `?` (one character).
public func globMatch(_ pattern: String, _ text: String) -> Bool {
    let p = Array(pattern.unicodeScalars), t = Array(text.unicodeScalars)
    var pi = 0, ti = 0, star = -1, mark = 0
    while ti < t.count {
        if pi < p.count && (p[pi] == "?" || p[pi] == t[ti]) {
            pi += 1
            ti += 1
        } else if pi < p.count && p[pi] == "*" {
            star = pi
            mark = ti
            pi += 1
        } else if star >= 0 {
            pi = star + 1
            mark += 1
            ti = mark
        } else {
            return false
        }
    }
    while pi < p.count && p[pi] == "*" { pi += 1 }
    return pi == p.count
}

/// Modules applied one after another; children are named `0`, `1`, … as in PyTorch.
public final class Sequential: Module {
    /// The modules in order.
    public let layers: [Module]

    /// Creates a sequence.
    public init(_ layers: [Module]) {
        self.layers = layers
        super.init()
        assignNames()
    }

    public override var kind: String { "sequential" }
    public override var children: [(String, Module)] { layers.enumerated().map { (String($0.offset), $0.element) } }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        var h = x
        for layer in layers { h = try layer.forward(h, &ctx) }
        return h
    }
}
