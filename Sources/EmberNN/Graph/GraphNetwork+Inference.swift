import EmberCore

/// Evaluation plans of the networks in one run of predictions (`Model.logits`), by network:
/// built at the first batch, reused for the others. Weights do not change during the run.
final class InferenceCache {
    var plans: [ObjectIdentifier: InferencePlan] = [:]
}

/// How a network computes its steps when it predicts (evaluation mode, no gradients): each
/// convolution runs as an `InferenceConvolution` together with what alone reads it — a batch norm
/// folded into its weight and bias, a residual `merge_sum` and a ReLU — at the position of the last
/// step of that chain; each linear layer runs with the ReLU that alone reads it, the bias and the
/// ReLU applied as the product's tiles are stored (`BLAS.linearForward`: no pass to copy the bias
/// in, none for the ReLU); the other steps run their modules.
///
/// Folding: eval-mode batch norm is `(y − μ) · γ/√(σ² + ε) + β` per channel, so the convolution
/// with weight `W · s` and bias `(b − μ) · s + β` (s = γ/√(σ² + ε), in double precision) gives the
/// same values up to float rounding (tested within 1e-5 relative of the unfused network), without
/// the batch norm's pass over the output; the sum and the ReLU are applied as the convolution
/// writes its result (bit for bit the separate ops).
///
/// Building the plan reads every convolution's weight once (folding) and builds the dense
/// matrices: about what the batch norms' passes cost over a few dozen samples. `Model.logits`
/// uses plans from `minimumSamples` samples on; smaller runs evaluate the modules as they are
/// (the same values up to float rounding).
final class InferencePlan {
    /// Samples from which a run of predictions uses plans.
    static let minimumSamples = 64

    enum Step {
        /// The module's own forward pass.
        case module
        /// Computed by a later step's convolution; nobody else reads the value.
        case fused
        /// `relu?(conv(values[input]) + values[residual])`.
        case convolution(InferenceConvolution, input: Int, residual: Int?, relu: Bool)
        /// `relu?(values[input] · Wᵀ + b)`.
        case linear(Linear, input: Int, relu: Bool)
    }

    let steps: [Step]

    /// The plan of `network`'s steps.
    init(_ network: GraphNetwork) throws {
        let first = network.spec.inputs.count, output = network.outputIndex
        let modules = network.steps.map { ($0.module, $0.inputIndices) }
        var readers: [Int: [Int]] = [:]
        for (j, step) in modules.enumerated() {
            for v in step.1 { readers[v, default: []].append(j) }
        }
        /// The step that alone reads step `i`'s value (not the output), if any.
        func soleReader(_ i: Int) -> Int? {
            guard first + i != output, let r = readers[first + i], r.count == 1, let j = r.first else { return nil }
            return j
        }
        var steps = [Step](repeating: .module, count: modules.count)
        var claimed = Set<Int>()
        for (i, (module, inputs)) in modules.enumerated() {
            if let linear = module as? Linear, inputs.count == 1, !claimed.contains(i) {
                // At the ReLU's position when the ReLU alone reads it, else at its own.
                var last = i
                if let j = soleReader(i), !claimed.contains(j), modules[j].1.count == 1,
                   (modules[j].0 as? Activation)?.function == .relu {
                    steps[i] = .fused
                    last = j
                }
                steps[last] = .linear(linear, input: inputs[0], relu: last != i)
                claimed.formUnion([i, last])
                continue
            }
            guard let conv = module as? Conv, inputs.count == 1, !claimed.contains(i) else { continue }
            var weight = conv.weight.value, bias = conv.bias?.value
            var chain = [i], residual: Int? = nil, relu = false
            if let j = soleReader(i), !claimed.contains(j), let norm = modules[j].0 as? BatchNorm, modules[j].1.count == 1,
               norm.numFeatures == weight.shape[0] {
                (weight, bias) = try norm.folded(weight: weight, bias: bias)
                chain.append(j)
            }
            if let last = chain.last, let j = soleReader(last), !claimed.contains(j), let merge = modules[j].0 as? Merge,
               merge.mergeKind == .sum, modules[j].1.count == 2 {
                let others = modules[j].1.filter { $0 != first + last }
                if others.count == 1 {
                    residual = others[0]
                    chain.append(j)
                }
            }
            if let last = chain.last, let j = soleReader(last), !claimed.contains(j), modules[j].1.count == 1,
               (modules[j].0 as? Activation)?.function == .relu {
                relu = true
                chain.append(j)
            }
            let op = try InferenceConvolution(weight: weight, bias: bias, stride: conv.stride, padding: conv.padding,
                                              dilation: conv.dilation, groups: conv.groups)
            for k in chain.dropLast() { steps[k] = .fused }
            steps[chain[chain.count - 1]] = .convolution(op, input: inputs[0], residual: residual, relu: relu)
            claimed.formUnion(chain)
        }
        self.steps = steps
    }
}

extension GraphNetwork {
    /// The evaluation plan when `ctx` belongs to a run of predictions without gradients, else nil.
    func inferencePlan(_ ctx: ForwardContext) throws -> InferencePlan? {
        guard !ctx.training, !GradientMode.isEnabled, let cache = ctx.inference else { return nil }
        if let plan = cache.plans[ObjectIdentifier(self)] { return plan }
        let plan = try InferencePlan(self)
        cache.plans[ObjectIdentifier(self)] = plan
        return plan
    }
}

extension BatchNorm {
    /// The weight and bias of a convolution (`weight` [C_out, …], `bias` [C_out] or none) followed
    /// by this batch norm in evaluation mode, as one convolution: `W · s` and `(b − μ) · s + β`
    /// per output channel, s = γ/√(running var + ε), computed in double precision.
    /// - Throws: `EmberError` when the weight's first dimension is not `numFeatures`.
    func folded(weight: Tensor, bias: Tensor?) throws -> (weight: Tensor, bias: Tensor) {
        guard weight.shape.first == numFeatures, weight.count % numFeatures == 0 else {
            throw error(.shapeMismatch, "cannot fold into a convolution of weight \(shapeString(weight.shape)): expected \(numFeatures) output channels")
        }
        let c = numFeatures, per = weight.count / c
        let mean = runningMean.value.data, variance = runningVar.value.data
        let gamma = self.weight?.value.data, beta = self.bias?.value.data, b = bias?.data
        var scale = [Double](repeating: 0, count: c)
        for ch in 0..<c {
            let g = Double(gamma?[ch] ?? 1)
            scale[ch] = g / (Double(variance[ch]) + Double(eps)).squareRoot()
        }
        let w = weight.unsafeReadPointer
        let newWeight = Tensor.build(shape: weight.shape) { out in
            for ch in 0..<c {
                for k in 0..<per { out[ch * per + k] = Float(Double(w[ch * per + k]) * scale[ch]) }
            }
        }
        var shifted = [Float](repeating: 0, count: c)
        for ch in 0..<c {
            let convBias = Double(b?[ch] ?? 0), shift = Double(beta?[ch] ?? 0)
            shifted[ch] = Float((convBias - Double(mean[ch])) * scale[ch] + shift)
        }
        let newBias = try Tensor(shape: [c], data: shifted)
        return (newWeight, newBias)
    }
}
