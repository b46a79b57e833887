import EmberCore

/// One row of a network summary: a node, its per-sample output shape, its parameters and the
/// work and memory it takes per sample.
public struct NodeSummary: Equatable, Sendable {
    /// The node's id (a `repeat` node's body nodes are counted in it).
    public let id: String
    /// The node's op (`linear`, `conv2d`, `relu`, `repeat` …).
    public let op: String
    /// The node's output shape per sample (no batch dimension).
    public let outputShape: [Int]
    /// Parameters that train.
    public let trainableParameters: Int
    /// Frozen parameters (see `Module.freeze(matching:)`).
    public let frozenParameters: Int
    /// Floating-point operations of a forward pass per sample: two per multiply-add of the weight
    /// products (linear maps, convolutions, attention's projections), four per query-key pair and
    /// feature of attention, one per output element of the other ops (activations,
    /// normalisations, pooling, sums); lookups and reshapes take none. An estimate of the
    /// arithmetic, not of time.
    public let flopsPerSample: Int
    /// Bytes of the node's output per sample (float32): what a forward pass keeps for the
    /// backward pass.
    public let activationBytesPerSample: Int
}

extension GraphNetwork {
    /// The network node by node: output shapes, parameter counts (trainable and frozen),
    /// forward FLOPs and activation memory per sample (see `NodeSummary`).
    public func summary() -> [NodeSummary] {
        steps.enumerated().map { i, step in
            let inputs = step.inputIndices.map { valueShapes[$0] }
            let output = valueShapes[spec.inputs.count + i]
            let params = step.module.parameters
            let frozen = params.filter(\.isFrozen).reduce(0) { $0 + $1.value.count }
            let total = params.reduce(0) { $0 + $1.value.count }
            return NodeSummary(id: step.node.id, op: step.node.op.rawValue, outputShape: output,
                               trainableParameters: total - frozen, frozenParameters: frozen,
                               flopsPerSample: GraphNetwork.flops(step.module, inputs: inputs, output: output),
                               activationBytesPerSample: output.reduce(1, *) * MemoryLayout<Float>.size)
        }
    }

    /// The forward FLOPs per sample of `module` (see `NodeSummary.flopsPerSample`).
    static func flops(_ module: Module, inputs: [[Int]], output: [Int]) -> Int {
        let outCount = output.reduce(1, *)
        switch module {
        case let conv as Conv:
            // Each output element: in/groups × kernel multiply-adds.
            return 2 * (conv.weight.value.count / max(conv.weight.value.shape[0], 1)) * outCount
        case let r as Repeat:
            return (0..<r.times).reduce(0) { sum, i in
                sum + r.bodies[r.bodies.count == 1 ? 0 : i].summary().reduce(0) { $0 + $1.flopsPerSample }
            }
        case let body as GraphNetwork:
            return body.summary().reduce(0) { $0 + $1.flopsPerSample }
        default:
            break
        }
        switch module.kind {
        case "embedding", "tokenizer_categ", "reshape", "flatten", "squeeze", "unsqueeze", "dropout", "identity":
            return 0
        case "tokenizer_num":
            // One multiply-add per feature and token dimension.
            return 2 * outCount
        default:
            break
        }
        // Weight products: every matrix (rank >= 2) parameter applied once per position (a row of
        // a table, a token of a sequence).
        let matrices = module.namedParameters().filter { $0.1.value.shape.count >= 2 && !$0.0.hasSuffix("embedding") }
        let features = output.last ?? 1
        let positions = max(outCount / max(features, 1), 1)
        var flops = 2 * matrices.reduce(0) { $0 + $1.1.value.count } * positions
        if module.kind == "multihead_attention" || module.kind == "transformer_block", output.count == 2 {
            // Scores (query · key) and the weighted sum of values: 2 × 2 × tokens² × features.
            flops += 4 * output[0] * output[0] * output[1]
        }
        if matrices.isEmpty || module.kind == "transformer_block" || module.kind == "ft_ffn" || module.kind == "mlp" {
            // Elementwise work (activations, normalisations, merges, pooling windows).
            flops += max(outCount, inputs.map { $0.reduce(1, *) }.max() ?? 0)
        }
        return flops
    }
}
