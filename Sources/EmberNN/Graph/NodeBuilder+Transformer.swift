import EmberCore

extension NodeBuilder {
    /// FT-Transformer nodes: tokenizers, CLS token, transformer blocks and CLS selection.
    func transformerPiece(rng: inout RandomGenerator) throws -> (Module, ValueInfo) {
        let x = try single()
        switch node.op {
        case .tokenizerNum:
            try requireRank(x, [1], "[features]")
            let d = try int("d_token")
            try reserve([x.shape[0], d], [x.shape[0], d])
            return (try NumericTokenizer(nFeatures: x.shape[0], dToken: d, bias: try bool("bias", true), rng: &rng),
                    ValueInfo(shape: [x.shape[0], d]))
        case .tokenizerCateg:
            guard let cards = x.cardinalities else { throw fail("reads categorical codes; its input is not a categorical input") }
            let d = try int("d_token")
            try reserve([cards.reduce(0, +), d], [cards.count, d])
            return (try CategoricalTokenizer(cardinalities: cards, dToken: d, bias: try bool("bias", true), rng: &rng),
                    ValueInfo(shape: [cards.count, d]))
        case .clsToken:
            try requireRank(x, [2], "[tokens, d_token]")
            return (try CLSToken(dToken: x.shape[1], rng: &rng), ValueInfo(shape: [x.shape[0] + 1, x.shape[1]]))
        case .transformerBlock:
            try requireRank(x, [2], "[tokens, d_token]")
            let d = x.shape[1]
            let activation: FeedForwardActivation
            switch try string("ffn_activation", "reglu", allowed: ["reglu", "geglu", "glu", "relu", "gelu"]) {
            case "reglu": activation = .reglu
            case "geglu": activation = .geglu
            case "glu": activation = .glu
            case "relu": activation = .relu
            default: activation = .gelu
            }
            let hidden: Int
            if node.params["ffn_d_hidden"] != nil {
                hidden = try int("ffn_d_hidden")
            } else {
                // NOTE: bounded before Int(...), which traps on values beyond Int's range.
                let m = try double("ffn_d_hidden_multiplier", 4.0 / 3.0, { $0 > 0 && Double(d) * $0 < 1e9 },
                                   "a positive number giving a hidden width below 10^9")
                hidden = max(1, Int(Double(d) * m))
            }
            try reserve([4, d, d], [6, d], [3, d, hidden])
            let probability = { (key: String, fallback: Double) throws -> Float in
                Float(try self.double(key, fallback, { $0 >= 0 && $0 < 1 }, "a probability in [0, 1)"))
            }
            let block = try TransformerBlock(
                dToken: d, heads: try int("n_heads", 8), attentionDropout: try probability("attention_dropout", 0.2),
                ffnHidden: hidden, ffnDropout: try probability("ffn_dropout", 0.1),
                residualDropout: try probability("residual_dropout", 0), activation: activation,
                prenormalization: try bool("prenormalization", true), firstBlock: try bool("is_first_layer", false), rng: &rng)
            return (block, x)
        case .multiheadAttention:
            try requireRank(x, [2], "[tokens, embed_dim]")
            let d = x.shape[1]
            let heads = try int("num_heads")
            guard d % heads == 0 else { throw fail("embed_dim \(d) (its input's last dimension) is not divisible by num_heads \(heads)") }
            let p = try double("dropout", 0, { $0 >= 0 && $0 < 1 }, "a probability in [0, 1)")
            let bias = try bool("bias", true)
            try reserve([4, d, d], [4, bias ? d : 0])
            return (try MultiheadAttention(embedDim: d, numHeads: heads, dropout: Float(p), bias: bias, rng: &rng), x)
        case .selectCls:
            try requireRank(x, [2], "[tokens, d_token]")
            let t = x.shape[0]
            let layer = Lambda("select_cls") { v in
                // The CLS token is the last one (appended by cls_token).
                try reshape(try slice(v, axis: 1, start: t - 1, end: t), [v.shape[0], v.shape[2]])
            }
            return (layer, ValueInfo(shape: [x.shape[1]]))
        default:
            throw fail("is not a transformer op")
        }
    }
}
