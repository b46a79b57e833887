import EmberCore

/// What shape inference knows about a value: its per-sample shape (no batch dimension) and, for
/// categorical codes, the cardinality of each column.
struct ValueInfo {
    var shape: [Int]
    var cardinalities: [Int]?
}

/// A network built from a `NetworkSpec`: one module per node, evaluated in order.
///
/// Shape inference fills in what PyTorch makes you repeat (`in_features`, `in_channels`,
/// `num_features`, …); every error names the node. The head (`head` op) is sized from the task.
public final class GraphNetwork: Module {
    /// The description this network was built from.
    public let spec: NetworkSpec
    /// Width of `head` nodes: 1 for regression and binary tasks, K for K classes.
    public let headOutputs: Int
    let steps: [(node: NodeSpec, module: Module, inputIndices: [Int])]
    let outputIndex: Int
    /// Convolutions and batch norms evaluated together with the ReLU that alone reads them: step
    /// index of the convolution or batch norm → step index of the ReLU (which then passes the fused
    /// result on). The same values and gradients, without the intermediate tensor and its passes.
    var fusedReLUs: [Int: Int]
    /// Transformer blocks (or `repeat`s of them) whose value only `select_cls` reads: step index of
    /// the block → step index of the `select_cls`. `forward` computes the block's last token alone
    /// (rtdl's `last_layer_query_idx = [-1]`): the same CLS values and gradients, a fraction of the work.
    let lastTokenSteps: [Int: Int]
    /// Per-sample output shape.
    public let outputShape: [Int]
    /// Per-sample shape of every value: the inputs (in `spec.inputs` order), then each node's output.
    let valueShapes: [[Int]]
    /// Values per sample of the inputs and of every node's output: what a forward pass keeps per
    /// row (the base of `Trainer`'s memory estimate of a batch).
    public var valuesPerSample: Int {
        MemoryBudget.saturatingSum(valueShapes.map { MemoryBudget.saturatingProduct($0) })
    }

    /// Validates `spec`, infers shapes and builds the modules, drawing initial weights from `rng`
    /// node by node in order.
    public convenience init(_ spec: NetworkSpec, headOutputs: Int, rng: inout RandomGenerator) throws {
        try self.init(spec, headOutputs: headOutputs, budget: ParameterBudget(), rng: &rng)
    }

    init(_ spec: NetworkSpec, headOutputs: Int, budget: ParameterBudget, rng: inout RandomGenerator) throws {
        self.spec = spec
        self.headOutputs = headOutputs
        guard !spec.inputs.isEmpty else { throw NetworkSpec.invalid("the network has no inputs") }
        var names: [String: Int] = [:]
        var infos: [ValueInfo] = []
        for input in spec.inputs {
            guard names[input.name] == nil else { throw NetworkSpec.invalid("input name '\(input.name)' is used twice") }
            try GraphNetwork.validate(input)
            names[input.name] = infos.count
            infos.append(ValueInfo(shape: input.sampleShape, cardinalities: {
                if case let .categorical(c) = input.kind { return c } else { return nil }
            }()))
        }
        var steps: [(NodeSpec, Module, [Int])] = []
        for node in spec.nodes {
            guard names[node.id] == nil else { throw NetworkSpec.invalid("node id '\(node.id)' is used twice (or names an input)") }
            // Dots are allowed between non-empty parts, so that ids can spell PyTorch's module paths
            // (`layer1.0.conv1` gives `layer1.0.conv1.weight`); `checkUniqueNames` then rules out
            // two nodes producing the same parameter name.
            guard !node.id.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty) else {
                throw NetworkSpec.invalid("node id '\(node.id)' must not start or end with '.' or contain '..'")
            }
            var indices: [Int] = []
            for name in node.inputs {
                guard let i = names[name] else {
                    throw NetworkSpec.invalid("node '\(node.id)' reads '\(name)', which is not an input or an earlier node")
                }
                indices.append(i)
            }
            let builder = NodeBuilder(node: node, inputs: indices.map { infos[$0] }, headOutputs: headOutputs, budget: budget)
            let (module, info) = try builder.build(rng: &rng)
            names[node.id] = infos.count
            infos.append(info)
            steps.append((node, module, indices))
        }
        guard let out = names[spec.output] else { throw NetworkSpec.invalid("output '\(spec.output)' is not a node or an input") }
        try GraphNetwork.checkUniqueNames(steps.map { ($0.0.id, $0.1) })
        self.steps = steps
        self.outputIndex = out
        self.outputShape = infos[out].shape
        self.valueShapes = infos.map(\.shape)
        self.fusedReLUs = GraphNetwork.reluFusions(steps.map { ($0.1, $0.2) }, firstStepValue: spec.inputs.count, output: out)
        self.lastTokenSteps = GraphNetwork.lastTokenReaders(steps.map { ($0.0, $0.1, $0.2) }, firstStepValue: spec.inputs.count,
                                                            output: out)
        super.init()
        assignNames()
    }

    public override var kind: String { "network" }
    public override var children: [(String, Module)] { steps.map { ($0.node.id, $0.module) } }

    /// Evaluates the network on one value per input (in `spec.inputs` order, batch first).
    public override func forward(_ inputs: [Variable], _ ctx: inout ForwardContext) throws -> Variable {
        try forward(inputs, lastTokenOutput: false, &ctx)
    }

    /// The forward pass; with `lastTokenOutput`, the output step (the last step, read by no other
    /// step, see `computesLastToken`) computes its last token alone.
    func forward(_ inputs: [Variable], lastTokenOutput: Bool, _ ctx: inout ForwardContext) throws -> Variable {
        guard inputs.count == spec.inputs.count else {
            throw error(.invalidArgument, "expected \(spec.inputs.count) input(s) (\(spec.inputs.map(\.name).joined(separator: ", "))), got \(inputs.count)")
        }
        var values: [Variable] = []
        values.reserveCapacity(inputs.count + steps.count)
        for (x, input) in zip(inputs, spec.inputs) {
            guard Array(x.shape.dropFirst()) == input.sampleShape, x.shape.count == input.sampleShape.count + 1 else {
                throw error(.shapeMismatch, "input '\(input.name)' should have shape [batch, \(input.sampleShape.map(String.init).joined(separator: ", "))], got \(shapeString(x.shape))")
            }
            values.append(x)
        }
        var fusedResults: [Int: Variable] = [:]
        let plan = try inferencePlan(ctx)
        // Stands for the values of fused steps, which nobody reads.
        let unread = plan == nil ? nil : Variable(Tensor.scalar(.nan))
        for (i, step) in steps.enumerated() {
            if let plan, let unread {
                switch plan.steps[i] {
                case .module: break
                case .fused:
                    values.append(unread)
                    continue
                case let .convolution(conv, input, residual, relu):
                    values.append(Variable(try conv(values[input].value, residual: residual.map { values[$0].value }, relu: relu)))
                    continue
                case let .linear(linear, input, relu):
                    values.append(Variable(try linear.inferenceForward(values[input].value, relu: relu)))
                    continue
                case let .linearOneHot(folded, dense, codes, relu):
                    values.append(Variable(try folded(dense: dense.map { values[$0].value }, codes: values[codes], relu: relu)))
                    continue
                }
            }
            let args = step.inputIndices.map { values[$0] }
            if let relu = fusedReLUs[i], let conv = step.module as? Conv {
                // The convolution's own value is read by nobody but its ReLU.
                let y = try conv.forward(args[0], &ctx, fusedReLU: true)
                fusedResults[relu] = y
                values.append(y)
            } else if let relu = fusedReLUs[i], let norm = step.module as? BatchNorm {
                let y = try norm.forward(args[0], &ctx, fusedReLU: true)
                fusedResults[relu] = y
                values.append(y)
            } else if let reader = lastTokenSteps[i], let block = step.module as? LastTokenForward {
                // [batch, 1, d]; select_cls passes it on as [batch, d].
                let y = try block.forwardLastToken(args[0], &ctx)
                fusedResults[reader] = try reshape(y, [y.shape[0], y.shape[2]])
                values.append(y)
            } else if let y = fusedResults[i] {
                values.append(y)
            } else if lastTokenOutput, i == steps.count - 1, let block = step.module as? LastTokenForward {
                values.append(try block.forwardLastToken(args[0], &ctx))
            } else {
                values.append(args.count == 1 ? try step.module.forward(args[0], &ctx) : try step.module.forward(args, &ctx))
            }
        }
        return values[outputIndex]
    }

    /// The convolution or batch norm → ReLU pairs `forward` fuses: a convolution or batch norm
    /// whose value is read only by a `relu` activation (and is not the output). `steps` are (module, input value indices);
    /// step i's value has index `firstStepValue + i`.
    static func reluFusions(_ steps: [(Module, [Int])], firstStepValue: Int, output: Int) -> [Int: Int] {
        var readers: [Int: [Int]] = [:]
        for (j, step) in steps.enumerated() {
            for v in step.1 { readers[v, default: []].append(j) }
        }
        var fusions: [Int: Int] = [:]
        for (i, step) in steps.enumerated() where (step.0 is Conv || step.0 is BatchNorm) && firstStepValue + i != output {
            guard let r = readers[firstStepValue + i], r.count == 1, let j = r.first,
                  steps[j].1.count == 1, (steps[j].0 as? Activation)?.function == .relu else { continue }
            fusions[i] = j
        }
        return fusions
    }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        try forward([x], &ctx)
    }

    /// The `select_cls` steps that alone read a transformer block (or a `repeat` ending in one)
    /// that can compute its last token alone: block step index → `select_cls` step index. `steps`
    /// are (node, module, input value indices); step i's value has index `firstStepValue + i`.
    static func lastTokenReaders(_ steps: [(NodeSpec, Module, [Int])], firstStepValue: Int, output: Int) -> [Int: Int] {
        var readers: [Int: [Int]] = [:]
        for (j, step) in steps.enumerated() {
            for v in step.2 { readers[v, default: []].append(j) }
        }
        var found: [Int: Int] = [:]
        for (i, step) in steps.enumerated() where firstStepValue + i != output && step.2.count == 1 {
            guard let block = step.1 as? LastTokenForward, block.computesLastToken,
                  let r = readers[firstStepValue + i], r.count == 1, let j = r.first,
                  steps[j].0.op == .selectCls, steps[j].2.count == 1 else { continue }
            found[i] = j
        }
        return found
    }

    /// Parameter and buffer names must be unique: with dotted node ids, node `a.0.b` and the body
    /// node `b` of a `repeat` node `a` would both own `a.0.b.weight`.
    static func checkUniqueNames(_ modules: [(id: String, module: Module)]) throws {
        var owner: [String: String] = [:]
        for (id, module) in modules {
            let names = module.namedParameters(prefix: id).map(\.0) + module.namedBuffers(prefix: id).map(\.0)
            for name in names {
                if let other = owner[name] {
                    throw NetworkSpec.invalid("nodes '\(other)' and '\(id)' both name a parameter or buffer '\(name)'; rename one of them")
                }
                owner[name] = id
            }
        }
    }

    static func validate(_ input: InputSpec) throws {
        switch input.kind {
        case let .numeric(f):
            guard f >= 1 else { throw NetworkSpec.invalid("input '\(input.name)' needs at least one feature, got \(f)") }
        case let .categorical(c):
            guard !c.isEmpty, c.allSatisfy({ $0 >= 1 }) else {
                throw NetworkSpec.invalid("input '\(input.name)' needs cardinalities >= 1, got \(c)")
            }
        case let .tensor(s):
            guard !s.isEmpty, s.allSatisfy({ $0 >= 1 }) else {
                throw NetworkSpec.invalid("input '\(input.name)' needs a non-empty shape of positive sizes, got \(shapeString(s))")
            }
        }
    }
}

/// Counts parameters before they are allocated, so that a huge or corrupt description is an
/// error rather than an out-of-memory crash.
final class ParameterBudget {
    /// The largest network Ember builds: 2³¹ parameters (8 GiB of float32).
    static let limit = 1 << 31
    var used = 0

    func reserve(_ counts: [Int], node: String) throws {
        guard counts.allSatisfy({ $0 >= 0 }) else {
            throw EmberError(.overflow, "[network] node '\(node)' has a negative parameter count")
        }
        let total = MemoryBudget.saturatingSum([used] + counts)
        // The weights are allocated after these checks: a network beyond the machine's memory is
        // refused here (stating the bytes) instead of failing, or being killed, while allocating.
        try MemoryBudget.check(MemoryBudget.saturatingProduct([total, MemoryLayout<Float>.size]),
                               "the network's weights up to node '\(node)' (\(total == Int.max ? "more than \(Int.max)" : "\(total)") parameters)",
                               op: "network", argument: node, advice: "use fewer or narrower layers")
        guard total <= ParameterBudget.limit else {
            throw EmberError(.overflow, "[network] node '\(node)' would take the network past \(ParameterBudget.limit) parameters")
        }
        used = total
    }
}

/// A module applying one body network `times` times, with its own parameters per repetition or
/// one shared set.
final class Repeat: Module {
    let bodies: [GraphNetwork]
    let times: Int

    init(bodies: [GraphNetwork], times: Int) {
        self.bodies = bodies
        self.times = times
        super.init()
    }

    override var kind: String { "repeat" }
    override var children: [(String, Module)] { bodies.enumerated().map { (String($0.offset), $0.element) } }

    override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        var h = x
        for i in 0..<times { h = try bodies[bodies.count == 1 ? 0 : i].forward([h], &ctx) }
        return h
    }
}

extension Repeat: LastTokenForward {
    var computesLastToken: Bool { times >= 1 && bodies.allSatisfy(\.computesLastToken) }

    func forwardLastToken(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        var h = x
        for i in 0..<times {
            h = try bodies[bodies.count == 1 ? 0 : i].forward([h], lastTokenOutput: i == times - 1, &ctx)
        }
        return h
    }
}

extension GraphNetwork: LastTokenForward {
    /// A body whose output is its last step, a module that computes its last token alone, reading
    /// one value and read by no other step.
    var computesLastToken: Bool {
        guard spec.inputs.count == 1, let last = steps.last, outputIndex == spec.inputs.count + steps.count - 1,
              last.inputIndices.count == 1, let block = last.module as? LastTokenForward else { return false }
        return block.computesLastToken
    }

    func forwardLastToken(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        try forward([x], lastTokenOutput: true, &ctx)
    }
}

/// Applies a function of the input (no parameters) as a module: one-hot encoding, CLS selection.
final class Lambda: Module {
    let name: String
    let body: (Variable) throws -> Variable

    init(_ name: String, _ body: @escaping (Variable) throws -> Variable) {
        self.name = name
        self.body = body
        super.init()
    }

    override var kind: String { name }
    override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable { try body(x) }
}

/// A learned constant of `outputs` values per sample, whatever the input: the featureless
/// baseline (it learns the class log-odds or the target mean).
final class Featureless: Module {
    let bias: Parameter

    init(_ outputs: Int) throws {
        bias = Parameter(try Tensor.zeros([outputs]))
        super.init()
    }

    override var kind: String { "featureless" }
    override var localParameters: [(String, Parameter)] { [("bias", bias)] }

    override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        guard let n = x.shape.first else { throw error(.shapeMismatch, "expected a batch dimension") }
        return try expand(try reshape(bias.variable, [1, bias.value.count]), to: [n, bias.value.count])
    }
}
