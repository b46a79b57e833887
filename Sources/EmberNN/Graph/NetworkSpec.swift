import EmberCore

/// A network as plain data: inputs, nodes (typed layer ops with parameters) wired by name, and an
/// output node. Predefined architectures, the R graph language and Swift callers all produce this
/// description; `GraphNetwork` validates it, infers shapes and builds the modules. It round-trips
/// through JSON (docs/network-description.md) and is stored in every model file.
public struct NetworkSpec: Equatable, Sendable {
    /// Format version written into the JSON; readers reject newer versions.
    public static let version = 1

    /// The network's inputs.
    public var inputs: [InputSpec]
    /// The nodes, each after the nodes it reads (topological order).
    public var nodes: [NodeSpec]
    /// The node (or input) whose value is the network's output.
    public var output: String

    /// Creates a description.
    public init(inputs: [InputSpec], nodes: [NodeSpec], output: String) {
        self.inputs = inputs
        self.nodes = nodes
        self.output = output
    }
}

/// One input of a network.
public struct InputSpec: Equatable, Sendable {
    /// What the input holds.
    public enum Kind: Equatable, Sendable {
        /// A numeric matrix [batch, features] (standardised inside the model when requested).
        case numeric(features: Int)
        /// Categorical codes [batch, features]: level indices 0..<cardinality per column.
        case categorical(cardinalities: [Int])
        /// A tensor per sample (e.g. an image [channels, height, width]).
        case tensor(shape: [Int])
    }

    /// The name nodes refer to.
    public var name: String
    /// What it holds.
    public var kind: Kind

    /// Creates an input.
    public init(_ name: String, _ kind: Kind) {
        self.name = name
        self.kind = kind
    }

    /// Per-sample shape (without the batch dimension).
    public var sampleShape: [Int] {
        switch kind {
        case let .numeric(f): return [f]
        case let .categorical(c): return [c.count]
        case let .tensor(s): return s
        }
    }
}

/// One node: a layer op applied to the values of `inputs`.
public struct NodeSpec: Equatable, Sendable {
    /// Unique name; also the module's name in parameter names (`<id>.weight`).
    public var id: String
    /// The layer op.
    public var op: LayerOp
    /// Names of the inputs or nodes this node reads, in order.
    public var inputs: [String]
    /// Op parameters (PyTorch's names), e.g. `out_features`, `p`, `kernel_size`.
    public var params: [String: JSONValue]
    /// For `repeat`: the sub-network applied `times` times (one input, its output).
    public var body: NetworkSpec?

    /// Creates a node.
    public init(_ id: String, _ op: LayerOp, inputs: [String], params: [String: JSONValue] = [:], body: NetworkSpec? = nil) {
        self.id = id
        self.op = op
        self.inputs = inputs
        self.params = params
        self.body = body
    }
}

/// The layer vocabulary of network descriptions (mlr3torch's names where it has them).
public enum LayerOp: String, CaseIterable, Sendable {
    // Dense layers and regularisation.
    case linear, dropout, batchNorm = "batch_norm", layerNorm = "layer_norm", head
    // Activations (parameters as in PyTorch).
    case relu, relu6, elu, celu, selu, gelu, sigmoid, tanh, softplus, softsign, softshrink, hardshrink, hardtanh
    case hardsigmoid, leakyRelu = "leaky_relu", logSigmoid = "log_sigmoid", tanhshrink, threshold, prelu, rrelu
    case glu, reglu, geglu
    // Images and sequences.
    case conv1d, conv2d, maxPool1d = "max_pool1d", maxPool2d = "max_pool2d", avgPool1d = "avg_pool1d"
    case avgPool2d = "avg_pool2d", adaptiveAvgPool2d = "adaptive_avg_pool2d"
    // Shape.
    case flatten, reshape, squeeze, unsqueeze
    // Merges.
    case mergeSum = "merge_sum", mergeProd = "merge_prod", mergeCat = "merge_cat"
    // Tabular inputs and transformers.
    case oneHot = "one_hot", embedding, tokenizerNum = "tokenizer_num", tokenizerCateg = "tokenizer_categ"
    case clsToken = "cls_token", transformerBlock = "transformer_block", selectCls = "select_cls"
    /// Multi-head self-attention over tokens [t, d] (PyTorch's `nn.MultiheadAttention` with
    /// query = key = value and its parameter names).
    case multiheadAttention = "multihead_attention"
    /// A custom layer: an expression (`Expression`) over the node's inputs, e.g. `x * sigmoid(x)`.
    case fn
    // TabM ensembles (Gorishniy et al. 2024): k members per sample, [k, d].
    /// [d] → [k, d]: the same vector for each of `k` members.
    case ensembleView = "ensemble_view"
    /// BatchEnsemble linear layer [k, in] → [k, out] (shared weight, per-member r, s, bias).
    case linearBatchEnsemble = "linear_batch_ensemble"
    /// Per-member elementwise scaling (and offset) [k, d] → [k, d].
    case elementwiseAffine = "elementwise_affine"
    /// k independent linear layers [k, in] → [k, out].
    case linearEnsemble = "linear_ensemble"
    /// The head of an ensemble: k independent linear layers to the task's outputs, [k, in] →
    /// [k, outputs]; a model whose network ends with it trains each member on the loss and
    /// averages the members' predictions.
    case ensembleHead = "ensemble_head"
    /// Periodic embeddings of numeric features [n] → [n, d_embedding].
    case periodicEmbeddings = "periodic_embeddings"
    /// Piecewise-linear embeddings of a numeric input [n] → [n, d_embedding], on quantile bins of
    /// the training data.
    case piecewiseLinearEmbeddings = "piecewise_linear_embeddings"
    // Structure.
    case `repeat`
    /// A learned constant output of the head's width that ignores its input (featureless baseline).
    case featureless
}

extension LayerOp {
    /// The activations (an elementwise or gated function of one input; PyTorch's names): the ops
    /// R's `ember_activation()` and the activation PipeOps offer.
    public static let activations: [LayerOp] = [
        .relu, .relu6, .selu, .sigmoid, .tanh, .softsign, .hardsigmoid, .logSigmoid, .tanhshrink, .elu, .celu, .gelu,
        .leakyRelu, .hardtanh, .softplus, .softshrink, .hardshrink, .threshold, .prelu, .rrelu, .glu, .reglu, .geglu,
    ]
}

// MARK: JSON

extension NetworkSpec {
    /// The JSON form (documented in docs/network-description.md).
    public var json: JSONValue {
        .object([("format", .string("ember.network")), ("version", .number(Double(NetworkSpec.version)))] + bodyJSON)
    }

    var bodyJSON: [(String, JSONValue)] {
        [
            ("inputs", .array(inputs.map { $0.json })),
            ("nodes", .array(nodes.map { $0.json })),
            ("output", .string(output)),
        ]
    }

    /// Parses the JSON form; errors name the field that is wrong.
    public init(json: JSONValue) throws {
        if let f = json["format"] {
            guard f.stringValue == "ember.network" else {
                throw NetworkSpec.invalid("format is \(f.text); expected \"ember.network\"")
            }
            guard let v = json["version"]?.intValue, v >= 1, v <= NetworkSpec.version else {
                throw NetworkSpec.invalid("unsupported version \(json["version"]?.text ?? "(missing)"); this engine reads up to \(NetworkSpec.version)")
            }
        }
        try self.init(bodyJSON: json)
    }

    init(bodyJSON json: JSONValue) throws {
        guard let ins = json["inputs"]?.arrayValue else { throw NetworkSpec.invalid("'inputs' must be an array") }
        guard let ns = json["nodes"]?.arrayValue else { throw NetworkSpec.invalid("'nodes' must be an array") }
        guard let out = json["output"]?.stringValue else { throw NetworkSpec.invalid("'output' must be a node name") }
        self.init(inputs: try ins.map(InputSpec.init(json:)), nodes: try ns.map(NodeSpec.init(json:)), output: out)
    }

    /// Parses JSON text.
    public init(jsonText: String) throws { try self.init(json: try JSONValue.parse(jsonText)) }

    static func invalid(_ message: String) -> EmberError {
        EmberError(.invalidArgument, "[network] \(message)")
    }
}

extension InputSpec {
    var json: JSONValue {
        switch kind {
        case let .numeric(f):
            return .object([("name", .string(name)), ("kind", .string("numeric")), ("features", .number(Double(f)))])
        case let .categorical(c):
            return .object([("name", .string(name)), ("kind", .string("categorical")),
                            ("cardinalities", .array(c.map { .number(Double($0)) }))])
        case let .tensor(s):
            return .object([("name", .string(name)), ("kind", .string("tensor")), ("shape", .array(s.map { .number(Double($0)) }))])
        }
    }

    init(json: JSONValue) throws {
        guard let name = json["name"]?.stringValue, !name.isEmpty else { throw NetworkSpec.invalid("an input lacks a 'name'") }
        func ints(_ key: String) throws -> [Int] {
            guard let a = json[key]?.arrayValue else { throw NetworkSpec.invalid("input '\(name)': '\(key)' must be an array of integers") }
            return try a.map {
                guard let v = $0.intValue else { throw NetworkSpec.invalid("input '\(name)': '\(key)' must hold integers") }
                return v
            }
        }
        switch json["kind"]?.stringValue {
        case "numeric":
            guard let f = json["features"]?.intValue else { throw NetworkSpec.invalid("input '\(name)': 'features' must be an integer") }
            self.init(name, .numeric(features: f))
        case "categorical": self.init(name, .categorical(cardinalities: try ints("cardinalities")))
        case "tensor": self.init(name, .tensor(shape: try ints("shape")))
        case let other: throw NetworkSpec.invalid("input '\(name)': unknown kind \(other.map { "'\($0)'" } ?? "(missing)"); expected numeric, categorical or tensor")
        }
    }
}

extension NodeSpec {
    var json: JSONValue {
        var m: [(String, JSONValue)] = [("id", .string(id)), ("op", .string(op.rawValue)), ("inputs", .array(inputs.map { .string($0) }))]
        if !params.isEmpty { m.append(("params", .object(params.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))) }
        if let body { m.append(("body", .object(body.bodyJSON))) }
        return .object(m)
    }

    init(json: JSONValue) throws {
        guard let id = json["id"]?.stringValue, !id.isEmpty else { throw NetworkSpec.invalid("a node lacks an 'id'") }
        guard let opName = json["op"]?.stringValue else { throw NetworkSpec.invalid("node '\(id)' lacks an 'op'") }
        guard let op = LayerOp(rawValue: opName) else {
            throw NetworkSpec.invalid("node '\(id)': unknown op '\(opName)'; expected one of \(LayerOp.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let ins = json["inputs"]?.arrayValue else { throw NetworkSpec.invalid("node '\(id)': 'inputs' must be an array of names") }
        let names = try ins.map {
            guard let s = $0.stringValue else { throw NetworkSpec.invalid("node '\(id)': 'inputs' must hold names") }
            return s
        }
        var params: [String: JSONValue] = [:]
        if let p = json["params"] {
            guard case let .object(members) = p else { throw NetworkSpec.invalid("node '\(id)': 'params' must be an object") }
            for (k, v) in members { params[k] = v }
        }
        let body = try json["body"].map { try NetworkSpec(bodyJSON: $0) }
        self.init(id, op, inputs: names, params: params, body: body)
    }
}
