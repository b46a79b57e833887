import EmberCore

/// Builds the module of one node and infers its output shape; errors name the node.
struct NodeBuilder {
    let node: NodeSpec
    let inputs: [ValueInfo]
    let headOutputs: Int
    let budget: ParameterBudget

    /// Reserves `a · b · …` parameters (checked multiplication).
    func reserve(_ factors: [Int]...) throws {
        var counts: [Int] = []
        for f in factors {
            var n = 1
            for v in f {
                let (m, o) = n.multipliedReportingOverflow(by: max(v, 0))
                guard !o else { throw EmberError(.overflow, "[network] node '\(node.id)' has too many parameters") }
                n = m
            }
            counts.append(n)
        }
        try budget.reserve(counts, node: node.id)
    }

    func fail(_ message: String) -> EmberError {
        EmberError(.invalidArgument, "[network] node '\(node.id)' (\(node.op.rawValue)): \(message)")
    }

    // MARK: Parameters

    func int(_ key: String, _ fallback: Int? = nil, min: Int = 1) throws -> Int {
        guard let v = node.params[key] else {
            guard let fallback else { throw fail("parameter '\(key)' is required") }
            return fallback
        }
        guard let i = v.intValue, i >= min else { throw fail("parameter '\(key)' must be an integer >= \(min), got \(v.text)") }
        return i
    }

    func double(_ key: String, _ fallback: Double, _ ok: (Double) -> Bool = { $0.isFinite }, _ expected: String = "a finite number") throws -> Double {
        guard let v = node.params[key] else { return fallback }
        guard let d = v.numberValue, ok(d) else { throw fail("parameter '\(key)' must be \(expected), got \(v.text)") }
        return d
    }

    func float(_ key: String, _ fallback: Float) throws -> Float { Float(try double(key, Double(fallback))) }

    func requiredFloat(_ key: String) throws -> Float {
        guard node.params[key] != nil else { throw fail("parameter '\(key)' is required") }
        return try float(key, 0)
    }

    func bool(_ key: String, _ fallback: Bool) throws -> Bool {
        guard let v = node.params[key] else { return fallback }
        guard let b = v.boolValue else { throw fail("parameter '\(key)' must be true or false, got \(v.text)") }
        return b
    }

    func string(_ key: String, _ fallback: String, allowed: [String]) throws -> String {
        guard let v = node.params[key] else { return fallback }
        guard let s = v.stringValue, allowed.contains(s) else {
            throw fail("parameter '\(key)' must be one of \(allowed.joined(separator: ", ")), got \(v.text)")
        }
        return s
    }

    /// An integer or a list of `count` integers (kernel sizes, strides …).
    func ints(_ key: String, count: Int, _ fallback: [Int]?, min: Int = 1) throws -> [Int] {
        guard let v = node.params[key] else {
            guard let fallback else { throw fail("parameter '\(key)' is required") }
            return fallback
        }
        if let i = v.intValue, i >= min { return [Int](repeating: i, count: count) }
        if let a = v.arrayValue, a.count == count {
            let values = a.compactMap { $0.intValue }
            if values.count == count && values.allSatisfy({ $0 >= min }) { return values }
        }
        throw fail("parameter '\(key)' must be an integer >= \(min) or a list of \(count) such integers, got \(v.text)")
    }

    func shapeList(_ key: String) throws -> [Int] {
        guard let a = node.params[key]?.arrayValue else { throw fail("parameter '\(key)' must be a list of integers") }
        let values = a.compactMap { $0.intValue }
        guard values.count == a.count, values.allSatisfy({ $0 >= 1 || $0 == -1 }) else {
            throw fail("parameter '\(key)' must hold positive integers (one may be -1)")
        }
        return values
    }

    /// The single input this op reads.
    func single() throws -> ValueInfo {
        guard inputs.count == 1 else { throw fail("expects exactly 1 input, got \(inputs.count)") }
        return inputs[0]
    }

    func requireRank(_ info: ValueInfo, _ ranks: [Int], _ what: String) throws {
        guard ranks.contains(info.shape.count) else {
            throw fail("expects \(what) per sample, got shape \(shapeString(info.shape))")
        }
    }

    // MARK: Build

    func build(rng: inout RandomGenerator) throws -> (Module, ValueInfo) {
        switch node.op {
        case .linear, .head:
            let x = try single()
            try requireRank(x, [1, 2, 3], "a vector (or tokens)")
            let out = node.op == .head ? headOutputs : try int("out_features")
            try reserve([x.shape[x.shape.count - 1], out], [out])
            let layer = try Linear(x.shape[x.shape.count - 1], out, bias: try bool("bias", true), rng: &rng)
            return (layer, ValueInfo(shape: Array(x.shape.dropLast()) + [out]))
        case .dropout:
            let x = try single()
            return (try Dropout(try float("p", 0.5)), x)
        case .batchNorm:
            let x = try single()
            try requireRank(x, [1, 2, 3], "[features], [channels, length] or [channels, height, width]")
            let layer = try BatchNorm(x.shape[0], spatialDims: x.shape.count == 3 ? 2 : 1, eps: try float("eps", 1e-5),
                                      momentum: try float("momentum", 0.1), affine: try bool("affine", true))
            return (layer, x)
        case .layerNorm:
            let x = try single()
            return (try LayerNorm(x.shape[x.shape.count - 1], eps: try float("eps", 1e-5), affine: try bool("affine", true)), x)
        case .relu, .relu6, .elu, .celu, .selu, .gelu, .sigmoid, .tanh, .softplus, .softsign, .softshrink, .hardshrink,
             .hardtanh, .hardsigmoid, .leakyRelu, .logSigmoid, .tanhshrink, .threshold:
            return (Activation(try activation()), try single())
        case .prelu:
            let x = try single()
            return (try PReLU(numParameters: try int("num_parameters", 1), initialValue: try float("init", 0.25)), x)
        case .rrelu:
            return (try RReLU(lower: try float("lower", 1.0 / 8), upper: try float("upper", 1.0 / 3)), try single())
        case .glu, .reglu, .geglu:
            let x = try single()
            guard let d = x.shape.last, d % 2 == 0 else { throw fail("needs an even last dimension, got shape \(shapeString(x.shape))") }
            let layer = node.op == .glu ? GatedLinearUnit.glu() : node.op == .reglu ? GatedLinearUnit.reglu() : GatedLinearUnit.geglu()
            return (layer, ValueInfo(shape: Array(x.shape.dropLast()) + [d / 2]))
        case .conv1d, .conv2d:
            return try convolution(rng: &rng)
        case .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .adaptiveAvgPool2d:
            return try pooling()
        case .flatten:
            let x = try single()
            // Dimensions count the batch as 0, as in PyTorch (default start_dim = 1).
            let r = x.shape.count + 1
            var s = try int("start_dim", 1, min: -r), e = try int("end_dim", -1, min: -r)
            if s < 0 { s += r }
            if e < 0 { e += r }
            guard s >= 1, e < r, s <= e else { throw fail("needs 1 <= start_dim <= end_dim < \(r) (the batch dimension stays), got \(s) and \(e)") }
            let shape = Array(x.shape[..<(s - 1)]) + [x.shape[(s - 1)...(e - 1)].reduce(1, *)] + Array(x.shape[e...])
            return (Flatten(startDim: s, endDim: e), ValueInfo(shape: shape))
        case .reshape:
            let x = try single()
            var shape = try shapeList("shape")
            let n = x.shape.reduce(1, *)
            if let k = shape.firstIndex(of: -1) {
                let known = shape.enumerated().filter { $0.offset != k }.map(\.element).reduce(1, *)
                guard known > 0, n % known == 0 else { throw fail("cannot reshape \(shapeString(x.shape)) to \(shapeString(shape))") }
                shape[k] = n / known
            }
            guard shape.reduce(1, *) == n else { throw fail("cannot reshape \(shapeString(x.shape)) (\(n) values) to \(shapeString(shape))") }
            return (Reshape(shape), ValueInfo(shape: shape))
        case .squeeze, .unsqueeze:
            let x = try single()
            let r = x.shape.count + 1 + (node.op == .unsqueeze ? 1 : 0)
            var d = try int("dim", nil, min: -r)
            if d < 0 { d += r }
            guard d >= 1 && d < r else { throw fail("dim must address a non-batch dimension, got \(d)") }
            var shape = x.shape
            if node.op == .unsqueeze {
                shape.insert(1, at: d - 1)
            } else if shape[d - 1] == 1 {
                shape.remove(at: d - 1)
            }
            return (Squeeze(dim: d, insert: node.op == .unsqueeze), ValueInfo(shape: shape))
        case .mergeSum, .mergeProd:
            guard inputs.count >= 2 else { throw fail("merges need at least 2 inputs, got \(inputs.count)") }
            var shape = inputs[0].shape
            for i in inputs.dropFirst() {
                do { shape = try broadcastShapes(shape, i.shape, op: node.op.rawValue) } catch {
                    throw fail("input shapes \(inputs.map { shapeString($0.shape) }.joined(separator: ", ")) cannot be combined")
                }
            }
            return (Merge(node.op == .mergeSum ? .sum : .product), ValueInfo(shape: shape))
        case .mergeCat:
            guard inputs.count >= 2 else { throw fail("merges need at least 2 inputs, got \(inputs.count)") }
            let r = inputs[0].shape.count
            var d = try int("dim", -1, min: -r)
            if d < 0 { d += r + 1 }
            guard d >= 1 && d <= r else { throw fail("dim must address a non-batch dimension, got \(d)") }
            var shape = inputs[0].shape
            shape[d - 1] = 0
            for i in inputs {
                var s = i.shape
                guard s.count == r else { throw fail("inputs must have the same rank, got \(inputs.map { shapeString($0.shape) }.joined(separator: ", "))") }
                shape[d - 1] += s[d - 1]
                s[d - 1] = shape[d - 1]
                guard s == shape else { throw fail("inputs differ outside dim \(d): \(inputs.map { shapeString($0.shape) }.joined(separator: ", "))") }
            }
            return (Merge(.concat, axis: d), ValueInfo(shape: shape))
        case .oneHot:
            let x = try single()
            guard let cards = x.cardinalities else { throw fail("reads categorical codes; its input is not a categorical input") }
            let layer = OneHot(cardinalities: cards)
            return (layer, ValueInfo(shape: [layer.width]))
        case .embedding:
            let x = try single()
            let n = try int("num_embeddings", x.cardinalities.map { $0.max() ?? 1 })
            let d = try int("embedding_dim")
            try reserve([n, d])
            return (try Embedding(n, d, rng: &rng), ValueInfo(shape: x.shape + [d]))
        case .tokenizerNum, .tokenizerCateg, .clsToken, .transformerBlock, .selectCls, .multiheadAttention:
            return try transformerPiece(rng: &rng)
        case .ensembleView, .linearBatchEnsemble, .elementwiseAffine, .linearEnsemble, .ensembleHead, .periodicEmbeddings,
             .piecewiseLinearEmbeddings:
            return try ensemblePiece(rng: &rng)
        case .fn:
            return try expressionLayer()
        case .featureless:
            _ = try single()
            return (try Featureless(headOutputs), ValueInfo(shape: [headOutputs]))
        case .repeat:
            let x = try single()
            guard let body = node.body else { throw fail("needs a 'body' network") }
            guard body.inputs.count == 1 else { throw fail("its body must have exactly one input, got \(body.inputs.count)") }
            let times = try int("times")
            let shared = try bool("shared", false)
            // Each repetition reads the previous one's output. Shared parameters need one shape
            // throughout, so a shared body must keep the shape; own parameters may change it (an MLP's
            // first hidden layer), as in mlr3torch's nn_block.
            var bodySpec = body
            var shape = x.shape
            var bodies: [GraphNetwork] = []
            for _ in 0..<(shared ? 1 : times) {
                bodySpec.inputs[0].kind = .tensor(shape: shape)
                let b = try GraphNetwork(bodySpec, headOutputs: headOutputs, budget: budget, rng: &rng)
                if shared && b.outputShape != shape {
                    throw fail("its body maps \(shapeString(shape)) to \(shapeString(b.outputShape)); a block with shared parameters must keep the shape")
                }
                shape = b.outputShape
                bodies.append(b)
            }
            return (Repeat(bodies: bodies, times: times), ValueInfo(shape: shape))
        }
    }

    func activation() throws -> UnaryFunction {
        switch node.op {
        case .relu: return .relu
        case .relu6: return .relu6
        case .elu: return .elu(alpha: try float("alpha", 1))
        case .celu: return .celu(alpha: try float("alpha", 1))
        case .selu: return .selu
        case .gelu: return .gelu(tanhApproximation: try string("approximate", "none", allowed: ["none", "tanh"]) == "tanh")
        case .sigmoid: return .sigmoid
        case .tanh: return .tanh
        case .softplus: return .softplus(beta: try float("beta", 1), threshold: try float("threshold", 20))
        case .softsign: return .softsign
        case .softshrink: return .softshrink(lambda: try float("lambd", 0.5))
        case .hardshrink: return .hardshrink(lambda: try float("lambd", 0.5))
        case .hardtanh: return .hardtanh(min: try float("min_val", -1), max: try float("max_val", 1))
        case .hardsigmoid: return .hardsigmoid
        case .leakyRelu: return .leakyRelu(slope: try float("negative_slope", 0.01))
        case .logSigmoid: return .logSigmoid
        case .tanhshrink: return .tanhshrink
        case .threshold:
            return .threshold(threshold: try requiredFloat("threshold"), value: try requiredFloat("value"))
        default: throw fail("is not an activation")
        }
    }
}

/// Categorical codes [batch, k] as one-hot columns [batch, Σ cardinalities]: column `offsets[j] + v`
/// is 1 for code v of column j (an unseen code, outside 0..<cardinalities[j], gives zeros). A
/// linear layer reading it (alone, or concatenated after other features) folds it into its weight
/// when it predicts (`InferencePlan`).
final class OneHot: Module {
    /// Levels of each code column.
    let cardinalities: [Int]
    /// The first one-hot column of each code column.
    let offsets: [Int]
    /// Σ cardinalities.
    let width: Int

    init(cardinalities: [Int]) {
        self.cardinalities = cardinalities
        self.offsets = cardinalities.indices.map { cardinalities[..<$0].reduce(0, +) }
        self.width = cardinalities.reduce(0, +)
        super.init()
    }

    override var kind: String { "one_hot" }
    override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        try oneHot(x, cardinalities: cardinalities, offsets: offsets)
    }
}

/// One-hot encoding of categorical codes [batch, k] (integer `codes`, or floats holding level
/// indices) into [batch, Σ cardinalities]; a code outside its column's levels encodes as all zeros.
func oneHot(_ x: Variable, cardinalities: [Int], offsets: [Int]) throws -> Variable {
    let k = cardinalities.count
    guard x.shape.count == 2, x.shape[1] == k else {
        throw EmberError.shapeMismatch("one_hot", "expected codes of shape [batch, \(k)], got \(shapeString(x.shape))")
    }
    let n = x.shape[0], width = cardinalities.reduce(0, +)
    let out = Tensor.build(shape: [n, width]) { o in
        guard let base = o.baseAddress else { return }
        base.initialize(repeating: 0, count: o.count)
        if let codes = x.codes {
            // Through buffers: the arrays' checked subscripts cost more than the writes themselves
            // (one-hot of 10,000 rows' predictions).
            codes.data.withUnsafeBufferPointer { c in
                cardinalities.withUnsafeBufferPointer { cards in
                    offsets.withUnsafeBufferPointer { offs in
                        for r in 0..<n {
                            let row = base + r * width
                            for j in 0..<k {
                                let v = c[r * k + j]
                                if v >= 0, v < cards[j] { row[offs[j] + v] = 1 }
                            }
                        }
                    }
                }
            }
            return
        }
        let px = x.value.unsafeReadPointer
        for r in 0..<n {
            for j in 0..<k {
                let v = px[r * k + j]
                if v >= 0, v < Float(cardinalities[j]), v == v.rounded() { o[r * width + offsets[j] + Int(v)] = 1 }
            }
        }
    }
    return Variable(out)
}

extension NodeBuilder {
    /// A custom layer: parses `expr`, checks that it works per sample, and infers the output shape by
    /// evaluating it on a batch of two zero samples.
    func expressionLayer() throws -> (Module, ValueInfo) {
        guard !inputs.isEmpty else { throw fail("needs at least one input") }
        guard let json = node.params["expr"] else { throw fail("parameter 'expr' is required") }
        let expression: NetworkExpression
        do { expression = try NetworkExpression(json: json) } catch let e as EmberError { throw fail(e.message) }
        guard expression.arity <= inputs.count else {
            throw fail("its expression reads input \(expression.arity); the node has \(inputs.count)")
        }
        try checkPerSample(expression)
        let probe = try inputs.map { Variable(try Tensor.zeros([2] + $0.shape)) }
        let out: Variable
        do {
            out = try GradientMode.withoutGradients { try expression.evaluate(probe) }
        } catch let e as EmberError {
            throw fail("its expression does not apply to inputs \(inputs.map { shapeString($0.shape) }.joined(separator: ", ")): \(e.message)")
        }
        guard out.shape.first == 2 else { throw fail("its expression must keep the batch dimension, got \(shapeString(out.shape))") }
        return (ExpressionLayer(expression), ValueInfo(shape: Array(out.shape.dropFirst())))
    }

    /// Reductions, softmax and select in a layer act within a sample: `dim` given and not 0 (the batch).
    private func checkPerSample(_ e: NetworkExpression) throws {
        guard case let .operation(op, args, dim, _) = e else { return }
        if [.sum, .mean, .softmax, .logSoftmax, .select].contains(op) {
            guard let d = dim, d != 0 else {
                throw fail("'\(op.rawValue)' in a layer needs a 'dim' other than 0 (the batch): a layer works per sample")
            }
        }
        for a in args { try checkPerSample(a) }
    }
}
