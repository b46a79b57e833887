import EmberCore

extension NodeBuilder {
    /// conv1d / conv2d nodes: in_channels from the input, PyTorch's parameter names.
    func convolution(rng: inout RandomGenerator) throws -> (Module, ValueInfo) {
        let x = try single()
        let d = node.op == .conv1d ? 1 : 2
        try requireRank(x, [d + 1], d == 1 ? "[channels, length]" : "[channels, height, width]")
        let out = try int("out_channels")
        try reserve([out, x.shape[0]] + (try ints("kernel_size", count: d, nil)), [out])
        let layer = try Conv(x.shape[0], out, kernel: try ints("kernel_size", count: d, nil),
                             stride: try ints("stride", count: d, [Int](repeating: 1, count: d)),
                             padding: try ints("padding", count: d, [Int](repeating: 0, count: d), min: 0),
                             dilation: try ints("dilation", count: d, [Int](repeating: 1, count: d)),
                             groups: try int("groups", 1), bias: try bool("bias", true),
                             weightInit: try weightInit(), rng: &rng)
        guard let size = layer.outputSize(Array(x.shape.dropFirst())) else {
            throw fail("the input \(shapeString(x.shape)) is too small for kernel \(layer.kernel), padding \(layer.padding), dilation \(layer.dilation)")
        }
        return (layer, ValueInfo(shape: [out] + size))
    }

    /// The convolution's `weight_init` (`"default"` or `"kaiming_normal_fan_out"`).
    private func weightInit() throws -> ConvWeightInit {
        let names = ConvWeightInit.allCases.map(\.rawValue)
        return ConvWeightInit(rawValue: try string("weight_init", ConvWeightInit.uniform.rawValue, allowed: names)) ?? .uniform
    }

    /// Pooling nodes.
    func pooling() throws -> (Module, ValueInfo) {
        let x = try single()
        if node.op == .adaptiveAvgPool2d {
            try requireRank(x, [3], "[channels, height, width]")
            let size = try ints("output_size", count: 2, nil)
            return (try Pool(.adaptiveAverage, kernel: size), ValueInfo(shape: [x.shape[0]] + size))
        }
        let d = node.op == .maxPool1d || node.op == .avgPool1d ? 1 : 2
        try requireRank(x, [d + 1], d == 1 ? "[channels, length]" : "[channels, height, width]")
        let kernel = try ints("kernel_size", count: d, nil)
        let stride = try ints("stride", count: d, kernel)
        let padding = try ints("padding", count: d, [Int](repeating: 0, count: d), min: 0)
        for i in 0..<d where padding[i] * 2 > kernel[i] {
            throw fail("padding must be at most half the kernel size, got padding \(padding) for kernel \(kernel)")
        }
        let isMax = node.op == .maxPool1d || node.op == .maxPool2d
        let layer = try Pool(isMax ? .max : .average, kernel: kernel, stride: stride, padding: padding,
                             countIncludePad: try bool("count_include_pad", true))
        var size: [Int] = []
        for i in 0..<d {
            let padded: Int = x.shape[i + 1] + 2 * padding[i]
            guard padded >= kernel[i] else { throw fail("the input \(shapeString(x.shape)) is smaller than the kernel \(kernel)") }
            size.append((padded - kernel[i]) / stride[i] + 1)
        }
        return (layer, ValueInfo(shape: [x.shape[0]] + size))
    }
}
