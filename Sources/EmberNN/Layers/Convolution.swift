import EmberCore

/// How a convolution's weight is initialised (the bias, if any, always as PyTorch's default).
public enum ConvWeightInit: String, CaseIterable, Sendable {
    /// PyTorch's default for `nn.Conv1d`/`nn.Conv2d`: uniform in ±1/√fan_in (kaiming-uniform with
    /// a = √5), fan_in = in_channels/groups · kernel size.
    case uniform = "default"
    /// `nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu")`, as torchvision's
    /// ResNets: normal with mean 0 and std √(2 / fan_out), fan_out = out_channels · kernel size.
    case kaimingNormalFanOut = "kaiming_normal_fan_out"
}

/// 1-d or 2-d convolution (`nn.Conv1d`, `nn.Conv2d`) with PyTorch's default initialisation:
/// weight and bias uniform in ±1/√fan_in, fan_in = in_channels/groups · kernel size (or the
/// weight as `weightInit` says).
public final class Conv: Module {
    /// Weight [out, in/groups, k] or [out, in/groups, kh, kw].
    public let weight: Parameter
    /// Bias [out], if any.
    public let bias: Parameter?
    /// Kernel size per spatial dimension (1 or 2 entries).
    public let kernel: [Int]
    /// Stride per spatial dimension.
    public let stride: [Int]
    /// Zero padding per spatial dimension.
    public let padding: [Int]
    /// Dilation per spatial dimension.
    public let dilation: [Int]
    /// Channel groups.
    public let groups: Int
    /// Input channels.
    public let inChannels: Int

    /// Creates a convolution; `kernel.count` (1 or 2) fixes the dimensionality. Draws the weight,
    /// then the bias, from `rng`.
    public init(_ inChannels: Int, _ outChannels: Int, kernel: [Int], stride: [Int]? = nil, padding: [Int]? = nil,
                dilation: [Int]? = nil, groups: Int = 1, bias: Bool = true, weightInit: ConvWeightInit = .uniform,
                rng: inout RandomGenerator) throws {
        let d = kernel.count
        let op = d == 1 ? "conv1d" : "conv2d"
        guard d == 1 || d == 2 else { throw EmberError.invalidArgument("conv", "kernel must have 1 or 2 sizes, got \(kernel)") }
        let stride = stride ?? [Int](repeating: 1, count: d)
        let padding = padding ?? [Int](repeating: 0, count: d)
        let dilation = dilation ?? [Int](repeating: 1, count: d)
        guard stride.count == d, padding.count == d, dilation.count == d else {
            throw EmberError.invalidArgument(op, "stride, padding and dilation need \(d) entries each")
        }
        guard inChannels >= 1, outChannels >= 1, groups >= 1, inChannels % groups == 0, outChannels % groups == 0 else {
            throw EmberError.invalidArgument(op, "in_channels (\(inChannels)) and out_channels (\(outChannels)) must be positive multiples of groups (\(groups))")
        }
        guard kernel.allSatisfy({ $0 >= 1 }), stride.allSatisfy({ $0 >= 1 }), dilation.allSatisfy({ $0 >= 1 }),
              padding.allSatisfy({ $0 >= 0 }) else {
            throw EmberError.invalidArgument(op, "kernel, stride and dilation must be >= 1 and padding >= 0")
        }
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.inChannels = inChannels
        let fanIn = inChannels / groups * kernel.reduce(1, *)
        let bound = 1 / Float(fanIn).squareRoot()
        let weightShape = [outChannels, inChannels / groups] + kernel
        switch weightInit {
        case .uniform:
            weight = Parameter(try Tensor.uniform(weightShape, low: -bound, high: bound, rng: &rng))
        case .kaimingNormalFanOut:
            let fanOut = outChannels * kernel.reduce(1, *)
            weight = Parameter(try Tensor.normal(weightShape, std: (2 / Float(fanOut)).squareRoot(), rng: &rng))
        }
        self.bias = bias ? Parameter(try Tensor.uniform([outChannels], low: -bound, high: bound, rng: &rng)) : nil
        super.init()
    }

    public override var kind: String { kernel.count == 1 ? "conv1d" : "conv2d" }
    public override var localParameters: [(String, Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        try forward(x, &ctx, fusedReLU: false)
    }

    /// The convolution, followed with `fusedReLU` by a ReLU in the same op (see `conv2d`).
    public func forward(_ x: Variable, _ ctx: inout ForwardContext, fusedReLU: Bool) throws -> Variable {
        guard x.shape.count == kernel.count + 2, x.shape[1] == inChannels else {
            let expected = kernel.count == 1 ? "[N, \(inChannels), L]" : "[N, \(inChannels), H, W]"
            throw error(.shapeMismatch, "expected input of shape \(expected), got \(shapeString(x.shape))")
        }
        if kernel.count == 1 {
            return try conv1d(x, weight: weight.variable, bias: bias?.variable, stride: stride[0], padding: padding[0],
                              dilation: dilation[0], groups: groups, fusedReLU: fusedReLU)
        }
        return try conv2d(x, weight: weight.variable, bias: bias?.variable, stride: (stride[0], stride[1]),
                          padding: (padding[0], padding[1]), dilation: (dilation[0], dilation[1]), groups: groups,
                          fusedReLU: fusedReLU)
    }

    /// Output size along each spatial dimension for an input of `size`, or nil if not positive.
    public func outputSize(_ size: [Int]) -> [Int]? {
        var out: [Int] = []
        for i in 0..<kernel.count {
            let span: Int = dilation[i] * (kernel[i] - 1) + 1
            let padded: Int = size[i] + 2 * padding[i]
            let o: Int = (padded - span) / stride[i] + 1
            guard padded >= span, o >= 1 else { return nil }
            out.append(o)
        }
        return out
    }
}

/// Max, average or adaptive-average pooling over 1 or 2 spatial dimensions.
public final class Pool: Module {
    /// Which pooling.
    public enum Mode: String, Sendable { case max, average, adaptiveAverage }
    /// The pooling.
    public let mode: Mode
    /// Kernel size (or output size for adaptive pooling) per spatial dimension.
    public let kernel: [Int]
    /// Stride per spatial dimension.
    public let stride: [Int]
    /// Padding per spatial dimension.
    public let padding: [Int]
    /// Average pooling: whether padded zeros count in the mean.
    public let countIncludePad: Bool

    /// Creates a pooling layer; stride defaults to the kernel size.
    public init(_ mode: Mode, kernel: [Int], stride: [Int]? = nil, padding: [Int]? = nil, countIncludePad: Bool = true) throws {
        guard kernel.count == 1 || kernel.count == 2, kernel.allSatisfy({ $0 >= 1 }) else {
            throw EmberError.invalidArgument("pool", "kernel needs 1 or 2 sizes >= 1, got \(kernel)")
        }
        if mode == .adaptiveAverage && kernel.count != 2 {
            throw EmberError.invalidArgument("adaptive_avg_pool2d", "output_size needs 2 sizes, got \(kernel)")
        }
        self.mode = mode
        self.kernel = kernel
        self.stride = stride ?? kernel
        self.padding = padding ?? [Int](repeating: 0, count: kernel.count)
        self.countIncludePad = countIncludePad
        super.init()
    }

    public override var kind: String {
        switch mode {
        case .max: return kernel.count == 1 ? "max_pool1d" : "max_pool2d"
        case .average: return kernel.count == 1 ? "avg_pool1d" : "avg_pool2d"
        case .adaptiveAverage: return "adaptive_avg_pool2d"
        }
    }

    public override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
        switch (mode, kernel.count) {
        case (.max, 1): return try maxPool1d(x, kernel: kernel[0], stride: stride[0], padding: padding[0])
        case (.max, _):
            return try maxPool2d(x, kernel: (kernel[0], kernel[1]), stride: (stride[0], stride[1]), padding: (padding[0], padding[1]))
        case (.average, 1):
            return try avgPool1d(x, kernel: kernel[0], stride: stride[0], padding: padding[0], countIncludePad: countIncludePad)
        case (.average, _):
            return try avgPool2d(x, kernel: (kernel[0], kernel[1]), stride: (stride[0], stride[1]), padding: (padding[0], padding[1]),
                                 countIncludePad: countIncludePad)
        case (.adaptiveAverage, _): return try adaptiveAvgPool2d(x, outputSize: (kernel[0], kernel[1]))
        }
    }
}
