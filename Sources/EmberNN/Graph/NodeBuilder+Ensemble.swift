import EmberCore

extension NodeBuilder {
    /// TabM nodes: the ensemble view, BatchEnsemble and per-member layers, the ensemble head and
    /// the periodic embeddings of numeric features. Ensemble values are [k, d] per sample.
    func ensemblePiece(rng: inout RandomGenerator) throws -> (Module, ValueInfo) {
        let x = try single()
        switch node.op {
        case .ensembleView:
            try requireRank(x, [1], "a vector [d]")
            let k = try int("k"), d = x.shape[0]
            let layer = Lambda("ensemble_view") { v in try expand(try reshape(v, [v.shape[0], 1, d]), to: [v.shape[0], k, d]) }
            return (layer, ValueInfo(shape: [k, d]))
        case .linearBatchEnsemble:
            try requireRank(x, [2], "[k, features] (after an ensemble_view)")
            let (k, d) = (x.shape[0], x.shape[1])
            let out = try int("out_features")
            let bias = try bool("bias", true)
            try reserve([d, out], [k, d], [k, out], [bias ? k : 0, out])
            let layer = try LinearBatchEnsemble(d, out, k: k, bias: bias, rInit: try scaling("first_scaling_init", .randomSigns),
                                                sInit: try scaling("second_scaling_init", .ones), rChunks: try chunks(d), rng: &rng)
            return (layer, ValueInfo(shape: [k, out]))
        case .elementwiseAffine:
            try requireRank(x, [2], "[k, features] (after an ensemble_view)")
            let (k, d) = (x.shape[0], x.shape[1])
            let bias = try bool("bias", false)
            try reserve([k, d], [bias ? k : 0, d])
            return (try ElementwiseAffine(k: k, d: d, bias: bias, scalingInit: try scaling("scaling_init", .randomSigns),
                                          chunks: try chunks(d), rng: &rng), x)
        case .linearEnsemble, .ensembleHead:
            try requireRank(x, [2], "[k, features] (after an ensemble_view)")
            let (k, d) = (x.shape[0], x.shape[1])
            let out = node.op == .ensembleHead ? headOutputs : try int("out_features")
            let bias = try bool("bias", true)
            try reserve([k, d, out], [bias ? k : 0, out])
            return (try LinearEnsemble(d, out, k: k, bias: bias, rng: &rng), ValueInfo(shape: [k, out]))
        case .periodicEmbeddings:
            try requireRank(x, [1], "numeric features [n]")
            let n = x.shape[0]
            let d = try int("d_embedding", 24), f = try int("n_frequencies", 48)
            let lite = try bool("lite", false)
            try reserve([n, f], [lite ? 1 : n, 2 * f, d], [lite ? 1 : n, d])
            let layer = try PeriodicEmbeddings(
                nFeatures: n, dEmbedding: d, nFrequencies: f,
                frequencyInitScale: try double("frequency_init_scale", 0.01, { $0 > 0 && $0.isFinite }, "a finite number > 0"),
                activation: try bool("activation", true), lite: lite, rng: &rng)
            return (layer, ValueInfo(shape: [n, d]))
        case .piecewiseLinearEmbeddings:
            // That the input is a numeric network input (the bins come from its training data) is
            // checked by the model.
            try requireRank(x, [1], "numeric features [n]")
            let n = x.shape[0]
            let d = try int("d_embedding", 16), bins = try int("n_bins", 48, min: 2)
            try reserve([n, d], [n, d], [n, bins, d], [2, n, bins])
            return (try PiecewiseLinearEmbeddings(nFeatures: n, dEmbedding: d, nBins: bins, activation: try bool("activation", false),
                                                  inputName: node.inputs[0], rng: &rng), ValueInfo(shape: [n, d]))
        default:
            throw fail("is not an ensemble op")
        }
    }

    /// A scaling initialisation parameter.
    private func scaling(_ key: String, _ fallback: ScalingInit) throws -> ScalingInit {
        let name = try string(key, fallback.rawValue, allowed: ScalingInit.allCases.map(\.rawValue))
        return ScalingInit(rawValue: name) ?? fallback
    }

    /// `scaling_init_chunks`: column chunks (sizes >= 1 summing to `d`) that share one initial
    /// scaling value (one per input feature: 1 per numeric column, its levels per one-hot factor).
    private func chunks(_ d: Int) throws -> [Int]? {
        guard node.params["scaling_init_chunks"] != nil else { return nil }
        guard let a = node.params["scaling_init_chunks"]?.arrayValue else {
            throw fail("parameter 'scaling_init_chunks' must be a list of integers >= 1 summing to \(d)")
        }
        let sizes = a.compactMap { $0.intValue }
        guard sizes.count == a.count, sizes.allSatisfy({ $0 >= 1 }), sizes.reduce(0, +) == d else {
            throw fail("parameter 'scaling_init_chunks' must be a list of integers >= 1 summing to \(d) (the input width), got \(node.params["scaling_init_chunks"]?.text ?? "")")
        }
        return sizes
    }
}
