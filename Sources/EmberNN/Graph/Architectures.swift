import EmberCore

/// The columns a tabular model receives: numeric features (already including ordered factors as
/// integer codes and logicals as 0/1) and categorical codes.
public struct TabularInputs: Equatable, Sendable {
    /// Number of numeric columns.
    public var numeric: Int
    /// Levels of each categorical column.
    public var cardinalities: [Int]

    /// Creates the description; at least one column is needed.
    public init(numeric: Int, cardinalities: [Int] = []) {
        self.numeric = numeric
        self.cardinalities = cardinalities
    }

    /// The network inputs: `num` and/or `categ`.
    public var specs: [InputSpec] {
        (numeric > 0 ? [InputSpec("num", .numeric(features: numeric))] : [])
            + (cardinalities.isEmpty ? [] : [InputSpec("categ", .categorical(cardinalities: cardinalities))])
    }

    func check(_ arch: String) throws {
        guard numeric >= 0, numeric > 0 || !cardinalities.isEmpty else {
            throw EmberError.invalidArgument(arch, "needs at least one feature, got \(numeric) numeric and \(cardinalities.count) categorical")
        }
    }

    /// Nodes that turn the inputs into one vector: categorical columns one-hot, concatenated with
    /// the numeric ones; returns the nodes and the name of the vector.
    func vectorNodes() -> ([NodeSpec], String) {
        switch (numeric > 0, !cardinalities.isEmpty) {
        case (true, false): return ([], "num")
        case (false, _): return ([NodeSpec("one_hot", .oneHot, inputs: ["categ"])], "one_hot")
        case (true, true):
            return ([NodeSpec("one_hot", .oneHot, inputs: ["categ"]),
                     NodeSpec("features", .mergeCat, inputs: ["num", "one_hot"], params: ["dim": .number(-1)])], "features")
        }
    }
}

/// Predefined architectures as network descriptions, with mlr3torch's parameter names and
/// defaults that learn (a model built without arguments fits mlr3's sanity tasks).
public enum Architectures {
    /// MLP: for each width in `neurons`, Linear → activation → Dropout(p); then the head.
    /// Categorical features enter one-hot.
    public static func mlp(_ inputs: TabularInputs, neurons: [Int] = [64], activation: LayerOp = .relu,
                           activationParams: [String: JSONValue] = [:], p: Double = 0) throws -> NetworkSpec {
        try inputs.check("mlp")
        guard neurons.allSatisfy({ $0 >= 1 }) else { throw EmberError.invalidArgument("mlp", "neurons must be >= 1, got \(neurons)") }
        guard p >= 0 && p < 1 else { throw EmberError.invalidArgument("mlp", "p must be in [0, 1), got \(p)") }
        var (nodes, last) = inputs.vectorNodes()
        for (i, width) in neurons.enumerated() {
            nodes.append(NodeSpec("linear_\(i)", .linear, inputs: [last], params: ["out_features": .number(Double(width))]))
            nodes.append(NodeSpec("act_\(i)", activation, inputs: ["linear_\(i)"], params: activationParams))
            last = "act_\(i)"
            if p > 0 {
                nodes.append(NodeSpec("dropout_\(i)", .dropout, inputs: [last], params: ["p": .number(p)]))
                last = "dropout_\(i)"
            }
        }
        nodes.append(NodeSpec("head", .head, inputs: [last]))
        return NetworkSpec(inputs: inputs.specs, nodes: nodes, output: "head")
    }

    /// TabResNet (Gorishniy et al. 2021): Linear to `dBlock`, then `nBlocks` residual blocks
    /// x + Dropout2(Linear(Dropout1(ReLU(Linear(BatchNorm(x)))))), then BatchNorm → ReLU → head.
    /// The hidden width is `dHidden`, or `dHiddenMultiplier · dBlock`.
    public static func tabResNet(_ inputs: TabularInputs, nBlocks: Int = 2, dBlock: Int = 64, dHidden: Int? = nil,
                                 dHiddenMultiplier: Double = 2, dropout1: Double = 0.1, dropout2: Double = 0.1) throws -> NetworkSpec {
        try inputs.check("tab_resnet")
        guard nBlocks >= 1, dBlock >= 1 else { throw EmberError.invalidArgument("tab_resnet", "n_blocks and d_block must be >= 1") }
        // NOTE: bounded before Int(...), which traps on values beyond Int's range.
        let product = Double(dBlock) * dHiddenMultiplier
        guard dHidden != nil || (product.isFinite && product >= 1 && product < 1e9) else {
            throw EmberError.invalidArgument("tab_resnet", "d_hidden_multiplier × d_block must give a hidden width in 1..<10^9, got \(product)")
        }
        let hidden = dHidden ?? Int(product)
        guard hidden >= 1 else { throw EmberError.invalidArgument("tab_resnet", "the hidden width must be >= 1, got \(hidden)") }
        guard dropout1 >= 0 && dropout1 < 1 && dropout2 >= 0 && dropout2 < 1 else {
            throw EmberError.invalidArgument("tab_resnet", "dropout1 and dropout2 must be in [0, 1)")
        }
        var (nodes, last) = inputs.vectorNodes()
        nodes.append(NodeSpec("first", .linear, inputs: [last], params: ["out_features": .number(Double(dBlock))]))
        let body = NetworkSpec(inputs: [InputSpec("x", .tensor(shape: [dBlock]))], nodes: [
            NodeSpec("norm", .batchNorm, inputs: ["x"]),
            NodeSpec("linear_first", .linear, inputs: ["norm"], params: ["out_features": .number(Double(hidden))]),
            NodeSpec("activation", .relu, inputs: ["linear_first"]),
            NodeSpec("dropout_first", .dropout, inputs: ["activation"], params: ["p": .number(dropout1)]),
            NodeSpec("linear_second", .linear, inputs: ["dropout_first"], params: ["out_features": .number(Double(dBlock))]),
            NodeSpec("dropout_second", .dropout, inputs: ["linear_second"], params: ["p": .number(dropout2)]),
            NodeSpec("residual", .mergeSum, inputs: ["x", "dropout_second"]),
        ], output: "residual")
        nodes.append(NodeSpec("blocks", .repeat, inputs: ["first"], params: ["times": .number(Double(nBlocks))], body: body))
        nodes.append(NodeSpec("head_norm", .batchNorm, inputs: ["blocks"]))
        nodes.append(NodeSpec("head_activation", .relu, inputs: ["head_norm"]))
        nodes.append(NodeSpec("head", .head, inputs: ["head_activation"]))
        return NetworkSpec(inputs: inputs.specs, nodes: nodes, output: "head")
    }

    /// FT-Transformer (Gorishniy et al. 2021): numeric and categorical tokenizers, a CLS token,
    /// `nBlocks` pre-norm transformer blocks, then LayerNorm → ReLU → head on the CLS token.
    /// Defaults are rtdl's.
    public static func ftTransformer(_ inputs: TabularInputs, nBlocks: Int = 3, dToken: Int = 192, heads: Int = 8,
                                     attentionDropout: Double = 0.2, ffnDHiddenMultiplier: Double = 4.0 / 3.0,
                                     ffnDropout: Double = 0.1, residualDropout: Double = 0,
                                     ffnActivation: String = "reglu") throws -> NetworkSpec {
        try inputs.check("ft_transformer")
        guard nBlocks >= 1, dToken >= 1, heads >= 1, dToken % heads == 0 else {
            throw EmberError.invalidArgument("ft_transformer", "needs n_blocks >= 1 and d_token (\(dToken)) divisible by n_heads (\(heads))")
        }
        var nodes: [NodeSpec] = []
        var tokens: [String] = []
        if inputs.numeric > 0 {
            nodes.append(NodeSpec("tokenizer_num", .tokenizerNum, inputs: ["num"], params: ["d_token": .number(Double(dToken))]))
            tokens.append("tokenizer_num")
        }
        if !inputs.cardinalities.isEmpty {
            nodes.append(NodeSpec("tokenizer_categ", .tokenizerCateg, inputs: ["categ"], params: ["d_token": .number(Double(dToken))]))
            tokens.append("tokenizer_categ")
        }
        var last = tokens[0]
        if tokens.count == 2 {
            nodes.append(NodeSpec("tokens", .mergeCat, inputs: tokens, params: ["dim": .number(1)]))
            last = "tokens"
        }
        nodes.append(NodeSpec("cls", .clsToken, inputs: [last]))
        let blockParams: [String: JSONValue] = [
            "n_heads": .number(Double(heads)), "attention_dropout": .number(attentionDropout),
            "ffn_d_hidden_multiplier": .number(ffnDHiddenMultiplier), "ffn_dropout": .number(ffnDropout),
            "residual_dropout": .number(residualDropout), "ffn_activation": .string(ffnActivation),
        ]
        var first = blockParams
        first["is_first_layer"] = .bool(true)
        nodes.append(NodeSpec("block_0", .transformerBlock, inputs: ["cls"], params: first))
        last = "block_0"
        if nBlocks > 1 {
            let body = NetworkSpec(inputs: [InputSpec("x", .tensor(shape: [1, dToken]))],
                                   nodes: [NodeSpec("block", .transformerBlock, inputs: ["x"], params: blockParams)], output: "block")
            nodes.append(NodeSpec("blocks", .repeat, inputs: [last], params: ["times": .number(Double(nBlocks - 1))], body: body))
            last = "blocks"
        }
        nodes.append(NodeSpec("select_cls", .selectCls, inputs: [last]))
        nodes.append(NodeSpec("head_norm", .layerNorm, inputs: ["select_cls"]))
        nodes.append(NodeSpec("head_activation", .relu, inputs: ["head_norm"]))
        nodes.append(NodeSpec("head", .head, inputs: ["head_activation"]))
        return NetworkSpec(inputs: inputs.specs, nodes: nodes, output: "head")
    }

    /// Embeddings of TabM's numeric features (Gorishniy et al. 2022), with their options.
    public enum NumericEmbeddings: Equatable, Sendable {
        /// The numeric features as they are.
        case none
        /// A linear map per feature to `dEmbedding`, then ReLU (`LinearReLUEmbeddings`).
        case linearReLU(dEmbedding: Int)
        /// Periodic embeddings (`PeriodicEmbeddings`, see `PeriodicEmbeddings`).
        case periodic(dEmbedding: Int, nFrequencies: Int, frequencyInitScale: Double, activation: Bool, lite: Bool)
        /// Piecewise-linear embeddings on `nBins` quantile bins of the training data
        /// (`PiecewiseLinearEmbeddings`, see `PiecewiseLinearEmbeddings`).
        case piecewiseLinear(dEmbedding: Int, nBins: Int, activation: Bool)
    }

    /// TabM (Gorishniy et al. 2024) as the `tabm` package's `TabM.make`: numeric features (embedded
    /// by `numEmbeddings`) and one-hot categorical ones in one vector, seen by `k` members, then
    /// `nBlocks` blocks Linear → activation → Dropout of width `dBlock` and one linear output
    /// layer per member (`ensemble_head`). `archType` "tabm": every linear layer is a BatchEnsemble
    /// layer (shared weight, per-member r, s and bias; r of the first layer initialised with
    /// `startScalingInit`, one value per feature, all other scalings with ones); "tabm-mini": one
    /// per-member scaling of the input (`startScalingInit`), then shared linear layers. `nBlocks`
    /// and `startScalingInit` default to the package's: 2 and "normal" with embeddings, else 3 and
    /// "random-signs". Node ids are the package's module names, so parameter names match its
    /// state dict (`backbone.blocks.0.0.weight`, `output.bias` …).
    public static func tabm(_ inputs: TabularInputs, archType: String = "tabm", k: Int = 32, nBlocks: Int? = nil, dBlock: Int = 512,
                            dropout: Double = 0.1, activation: LayerOp = .relu, startScalingInit: ScalingInit? = nil,
                            numEmbeddings: NumericEmbeddings = .none) throws -> NetworkSpec {
        let a = "tabm"
        try inputs.check(a)
        guard ["tabm", "tabm-mini"].contains(archType) else {
            throw EmberError.invalidArgument(a, "arch_type must be \"tabm\" or \"tabm-mini\", got \"\(archType)\"")
        }
        let blocks = nBlocks ?? (numEmbeddings == .none ? 3 : 2)
        guard k >= 1, blocks >= 1, dBlock >= 1 else {
            throw EmberError.invalidArgument(a, "k, n_blocks and d_block must be >= 1, got \(k), \(blocks) and \(dBlock)")
        }
        guard dropout >= 0 && dropout < 1 else { throw EmberError.invalidArgument(a, "dropout must be in [0, 1), got \(dropout)") }
        guard LayerOp.activations.contains(activation), ![.glu, .reglu, .geglu].contains(activation) else {
            throw EmberError.invalidArgument(a, "activation must be an elementwise activation, got '\(activation.rawValue)'")
        }
        let scaling = startScalingInit ?? (numEmbeddings == .none ? .randomSigns : .normal)
        guard scaling != .ones else { throw EmberError.invalidArgument(a, "start_scaling_init must be \"random-signs\" or \"normal\"") }
        func number(_ v: Int) -> JSONValue { .number(Double(v)) }
        var nodes: [NodeSpec] = [], parts: [String] = [], chunks: [Int] = []
        if inputs.numeric > 0 {
            switch numEmbeddings {
            case .none:
                parts.append("num")
                chunks += [Int](repeating: 1, count: inputs.numeric)
            case let .linearReLU(d):
                nodes += [NodeSpec("num_module.linear", .tokenizerNum, inputs: ["num"], params: ["d_token": number(d)]),
                          NodeSpec("num_module.activation", .relu, inputs: ["num_module.linear"]),
                          NodeSpec("num_flat", .flatten, inputs: ["num_module.activation"])]
                parts.append("num_flat")
                chunks += [Int](repeating: d, count: inputs.numeric)
            case let .periodic(d, f, sigma, act, lite):
                nodes += [NodeSpec("num_module", .periodicEmbeddings, inputs: ["num"], params: [
                    "d_embedding": number(d), "n_frequencies": number(f), "frequency_init_scale": .number(sigma),
                    "activation": .bool(act), "lite": .bool(lite)]),
                          NodeSpec("num_flat", .flatten, inputs: ["num_module"])]
                parts.append("num_flat")
                chunks += [Int](repeating: d, count: inputs.numeric)
            case let .piecewiseLinear(d, bins, act):
                nodes += [NodeSpec("num_module", .piecewiseLinearEmbeddings, inputs: ["num"], params: [
                    "d_embedding": number(d), "n_bins": number(bins), "activation": .bool(act)]),
                          NodeSpec("num_flat", .flatten, inputs: ["num_module"])]
                parts.append("num_flat")
                chunks += [Int](repeating: d, count: inputs.numeric)
            }
        } else if numEmbeddings != .none {
            throw EmberError.invalidArgument(a, "num_embeddings needs numeric features; the task has none")
        }
        if !inputs.cardinalities.isEmpty {
            nodes.append(NodeSpec("one_hot", .oneHot, inputs: ["categ"]))
            parts.append("one_hot")
            chunks += inputs.cardinalities
        }
        var last = parts[0]
        if parts.count == 2 {
            nodes.append(NodeSpec("features", .mergeCat, inputs: parts, params: ["dim": .number(-1)]))
            last = "features"
        }
        nodes.append(NodeSpec("ensemble_view", .ensembleView, inputs: [last], params: ["k": number(k)]))
        last = "ensemble_view"
        let chunkList = JSONValue.array(chunks.map(number))
        if archType == "tabm-mini" {
            nodes.append(NodeSpec("backbone.affine", .elementwiseAffine, inputs: [last], params: [
                "scaling_init": .string(scaling.rawValue), "scaling_init_chunks": chunkList, "bias": .bool(false)]))
            last = "backbone.affine"
        }
        for i in 0..<blocks {
            let p = "backbone.blocks.\(i)"
            if archType == "tabm" {
                var params: [String: JSONValue] = ["out_features": number(dBlock), "first_scaling_init": .string(i == 0 ? scaling.rawValue : "ones"),
                                                   "second_scaling_init": .string("ones")]
                if i == 0 { params["scaling_init_chunks"] = chunkList }
                nodes.append(NodeSpec("\(p).0", .linearBatchEnsemble, inputs: [last], params: params))
            } else {
                nodes.append(NodeSpec("\(p).0", .linear, inputs: [last], params: ["out_features": number(dBlock)]))
            }
            nodes.append(NodeSpec("\(p).1", activation, inputs: ["\(p).0"]))
            nodes.append(NodeSpec("\(p).2", .dropout, inputs: ["\(p).1"], params: ["p": .number(dropout)]))
            last = "\(p).2"
        }
        nodes.append(NodeSpec("output", .ensembleHead, inputs: [last]))
        return NetworkSpec(inputs: inputs.specs, nodes: nodes, output: "output")
    }

    /// A LeNet-style CNN for images [channels, height, width]: conv(6, 5, padding 2) → relu →
    /// max-pool 2 → conv(16, 5) → relu → max-pool 2 → flatten → 120 → relu → 84 → relu → head.
    public static func lenet(imageShape: [Int]) throws -> NetworkSpec {
        guard imageShape.count == 3 else {
            throw EmberError.invalidArgument("lenet", "expects images of shape [channels, height, width], got \(shapeString(imageShape))")
        }
        let nodes = [
            NodeSpec("conv1", .conv2d, inputs: ["image"], params: ["out_channels": .number(6), "kernel_size": .number(5), "padding": .number(2)]),
            NodeSpec("relu1", .relu, inputs: ["conv1"]),
            NodeSpec("pool1", .maxPool2d, inputs: ["relu1"], params: ["kernel_size": .number(2)]),
            NodeSpec("conv2", .conv2d, inputs: ["pool1"], params: ["out_channels": .number(16), "kernel_size": .number(5)]),
            NodeSpec("relu2", .relu, inputs: ["conv2"]),
            NodeSpec("pool2", .maxPool2d, inputs: ["relu2"], params: ["kernel_size": .number(2)]),
            NodeSpec("flatten", .flatten, inputs: ["pool2"]),
            NodeSpec("fc1", .linear, inputs: ["flatten"], params: ["out_features": .number(120)]),
            NodeSpec("relu3", .relu, inputs: ["fc1"]),
            NodeSpec("fc2", .linear, inputs: ["relu3"], params: ["out_features": .number(84)]),
            NodeSpec("relu4", .relu, inputs: ["fc2"]),
            NodeSpec("head", .head, inputs: ["relu4"]),
        ]
        return NetworkSpec(inputs: [InputSpec("image", .tensor(shape: imageShape))], nodes: nodes, output: "head")
    }

    /// A small ResNet for images: conv 3×3 (`channels`) → BN → relu, `nBlocks` basic residual
    /// blocks (conv-BN-relu-conv-BN + identity, relu), global average pooling, head.
    public static func smallResNet(imageShape: [Int], channels: Int = 16, nBlocks: Int = 2) throws -> NetworkSpec {
        guard imageShape.count == 3 else {
            throw EmberError.invalidArgument("resnet", "expects images of shape [channels, height, width], got \(shapeString(imageShape))")
        }
        guard channels >= 1, nBlocks >= 1 else { throw EmberError.invalidArgument("resnet", "channels and n_blocks must be >= 1") }
        let conv: [String: JSONValue] = ["out_channels": .number(Double(channels)), "kernel_size": .number(3), "padding": .number(1), "bias": .bool(false)]
        let body = NetworkSpec(inputs: [InputSpec("x", .tensor(shape: [channels, imageShape[1], imageShape[2]]))], nodes: [
            NodeSpec("conv1", .conv2d, inputs: ["x"], params: conv),
            NodeSpec("bn1", .batchNorm, inputs: ["conv1"]),
            NodeSpec("relu1", .relu, inputs: ["bn1"]),
            NodeSpec("conv2", .conv2d, inputs: ["relu1"], params: conv),
            NodeSpec("bn2", .batchNorm, inputs: ["conv2"]),
            NodeSpec("residual", .mergeSum, inputs: ["x", "bn2"]),
            NodeSpec("relu2", .relu, inputs: ["residual"]),
        ], output: "relu2")
        let nodes = [
            NodeSpec("stem", .conv2d, inputs: ["image"], params: conv),
            NodeSpec("stem_norm", .batchNorm, inputs: ["stem"]),
            NodeSpec("stem_relu", .relu, inputs: ["stem_norm"]),
            NodeSpec("blocks", .repeat, inputs: ["stem_relu"], params: ["times": .number(Double(nBlocks))], body: body),
            NodeSpec("pool", .adaptiveAvgPool2d, inputs: ["blocks"], params: ["output_size": .number(1)]),
            NodeSpec("flatten", .flatten, inputs: ["pool"]),
            NodeSpec("head", .head, inputs: ["flatten"]),
        ]
        return NetworkSpec(inputs: [InputSpec("image", .tensor(shape: imageShape))], nodes: nodes, output: "head")
    }

    /// torchvision's ResNet-18 (`torchvision.models.resnet18`) for images [channels, height, width];
    /// see `torchvisionResNet(depth:imageShape:)`.
    public static func resnet18(imageShape: [Int]) throws -> NetworkSpec { try torchvisionResNet(depth: 18, imageShape: imageShape) }

    /// torchvision's ResNet-34 (`torchvision.models.resnet34`); see `torchvisionResNet(depth:imageShape:)`.
    public static func resnet34(imageShape: [Int]) throws -> NetworkSpec { try torchvisionResNet(depth: 34, imageShape: imageShape) }

    /// torchvision's ResNet-50 (`torchvision.models.resnet50`, v1.5); see `torchvisionResNet(depth:imageShape:)`.
    public static func resnet50(imageShape: [Int]) throws -> NetworkSpec { try torchvisionResNet(depth: 50, imageShape: imageShape) }

    /// The depths `torchvisionResNet` builds: basic blocks (18, 34) or bottlenecks (50), and the
    /// number of blocks of each of the four stages.
    static let torchvisionResNetDepths: [Int: (bottleneck: Bool, blocks: [Int])] = [
        18: (false, [2, 2, 2, 2]), 34: (false, [3, 4, 6, 3]), 50: (true, [3, 4, 6, 3]),
    ]

    /// torchvision's ResNet of `depth` 18, 34 or 50, node for module, with torchvision's parameter
    /// and buffer names (`conv1.weight`, `layer2.0.downsample.1.running_mean`, `fc.bias` …), so
    /// that a torchvision `state_dict` saved with safetensors loads as it is.
    ///
    /// Stem: conv 7×7 stride 2 padding 3 (64 channels, no bias) → BN → ReLU → max-pool 3 stride 2
    /// padding 1. Four stages of 64, 128, 256, 512 planes, the first block of stages 2–4 with
    /// stride 2; a block is BasicBlock (two 3×3 convs) for 18 and 34, Bottleneck (1×1, 3×3 with the
    /// stride — v1.5 —, 1×1 to 4 × planes) for 50, and its shortcut is `downsample` (conv 1×1 with
    /// the stride → BN) where the shape changes. Then adaptive average pooling to 1×1, flatten and
    /// `fc`, the head (sized from the task). Convolutions are initialised as torchvision's
    /// (`kaiming_normal_fan_out`), BN with weight 1 and bias 0 (eps 1e-5, momentum 0.1), `fc` as
    /// `nn.Linear`. Any number of channels ≥ 1 and any image of at least 1×1 pixels works, as in
    /// torchvision: each stride-2 step maps a size h ≥ 1 to ⌊(h − 1)/2⌋ + 1 ≥ 1.
    public static func torchvisionResNet(depth: Int, imageShape: [Int]) throws -> NetworkSpec {
        let arch = "resnet\(depth)"
        guard let layout = torchvisionResNetDepths[depth] else {
            throw EmberError.invalidArgument("resnet", "depth must be 18, 34 or 50, got \(depth)")
        }
        let (bottleneck, blocks) = layout
        guard imageShape.count == 3 else {
            throw EmberError.invalidArgument(arch, "expects images of shape [channels, height, width], got \(shapeString(imageShape))")
        }
        guard imageShape.allSatisfy({ $0 >= 1 }) else {
            throw EmberError.invalidArgument(arch, "needs at least 1 channel and images of at least 1×1 pixels, got \(shapeString(imageShape))")
        }
        func number(_ v: Int) -> JSONValue { .number(Double(v)) }
        func conv(_ id: String, _ input: String, _ out: Int, kernel: Int, stride: Int = 1, padding: Int = 0) -> NodeSpec {
            var params: [String: JSONValue] = ["out_channels": number(out), "kernel_size": number(kernel), "bias": .bool(false),
                                               "weight_init": .string(ConvWeightInit.kaimingNormalFanOut.rawValue)]
            if stride != 1 { params["stride"] = number(stride) }
            if padding != 0 { params["padding"] = number(padding) }
            return NodeSpec(id, .conv2d, inputs: [input], params: params)
        }
        var nodes = [
            conv("conv1", "image", 64, kernel: 7, stride: 2, padding: 3),
            NodeSpec("bn1", .batchNorm, inputs: ["conv1"]),
            NodeSpec("relu", .relu, inputs: ["bn1"]),
            NodeSpec("maxpool", .maxPool2d, inputs: ["relu"], params: ["kernel_size": number(3), "stride": number(2), "padding": number(1)]),
        ]
        var last = "maxpool", channels = 64
        let expansion = bottleneck ? 4 : 1
        for (stage, count) in blocks.enumerated() {
            let planes = 64 << stage
            for b in 0..<count {
                let p = "layer\(stage + 1).\(b)", stride = stage > 0 && b == 0 ? 2 : 1
                if bottleneck {
                    nodes += [
                        conv("\(p).conv1", last, planes, kernel: 1), NodeSpec("\(p).bn1", .batchNorm, inputs: ["\(p).conv1"]),
                        NodeSpec("\(p).relu1", .relu, inputs: ["\(p).bn1"]),
                        conv("\(p).conv2", "\(p).relu1", planes, kernel: 3, stride: stride, padding: 1),
                        NodeSpec("\(p).bn2", .batchNorm, inputs: ["\(p).conv2"]), NodeSpec("\(p).relu2", .relu, inputs: ["\(p).bn2"]),
                        conv("\(p).conv3", "\(p).relu2", planes * 4, kernel: 1), NodeSpec("\(p).bn3", .batchNorm, inputs: ["\(p).conv3"]),
                    ]
                } else {
                    nodes += [
                        conv("\(p).conv1", last, planes, kernel: 3, stride: stride, padding: 1),
                        NodeSpec("\(p).bn1", .batchNorm, inputs: ["\(p).conv1"]), NodeSpec("\(p).relu1", .relu, inputs: ["\(p).bn1"]),
                        conv("\(p).conv2", "\(p).relu1", planes, kernel: 3, padding: 1), NodeSpec("\(p).bn2", .batchNorm, inputs: ["\(p).conv2"]),
                    ]
                }
                var identity = last
                if stride != 1 || channels != planes * expansion {
                    nodes += [conv("\(p).downsample.0", last, planes * expansion, kernel: 1, stride: stride),
                              NodeSpec("\(p).downsample.1", .batchNorm, inputs: ["\(p).downsample.0"])]
                    identity = "\(p).downsample.1"
                }
                nodes += [NodeSpec("\(p).add", .mergeSum, inputs: [bottleneck ? "\(p).bn3" : "\(p).bn2", identity]),
                          NodeSpec("\(p).relu", .relu, inputs: ["\(p).add"])]
                last = "\(p).relu"
                channels = planes * expansion
            }
        }
        nodes += [
            NodeSpec("avgpool", .adaptiveAvgPool2d, inputs: [last], params: ["output_size": number(1)]),
            NodeSpec("flatten", .flatten, inputs: ["avgpool"]),
            NodeSpec("fc", .head, inputs: ["flatten"]),
        ]
        return NetworkSpec(inputs: [InputSpec("image", .tensor(shape: imageShape))], nodes: nodes, output: "fc")
    }

    /// The featureless baseline: a learned constant (class log-odds or target mean).
    public static func featureless(_ inputs: TabularInputs) throws -> NetworkSpec {
        try inputs.check("featureless")
        let first = inputs.specs[0].name
        return NetworkSpec(inputs: inputs.specs, nodes: [NodeSpec("head", .featureless, inputs: [first])], output: "head")
    }
}
