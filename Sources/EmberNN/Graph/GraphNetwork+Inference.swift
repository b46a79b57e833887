import CEmberKernels
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
/// in, none for the ReLU), and one that reads one-hot columns (alone or last in a concatenation
/// nobody else reads) adds its weight's columns at the codes instead (`LinearOneHot`); the other
/// steps run their modules.
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
        /// Computed by a later step (a convolution's chain, a linear layer's ReLU, or the one-hot
        /// columns and concatenation a linear layer folds); nobody else reads the value.
        case fused
        /// `relu?(conv(values[input]) + values[residual])`.
        case convolution(InferenceConvolution, input: Int, residual: Int?, relu: Bool)
        /// `relu?(values[input] · Wᵀ + b)`.
        case linear(Linear, input: Int, relu: Bool)
        /// `relu?([values[dense], one_hot(values[codes])] · Wᵀ + b)` with the one-hot columns'
        /// product added as rows of W's columns (`LinearOneHot`).
        case linearOneHot(LinearOneHot, dense: Int?, codes: Int, relu: Bool)
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
        /// The one-hot step whose value alone step `reader` reads as value `v`, if any.
        func oneHotStep(_ v: Int, readBy reader: Int) -> (step: Int, layer: OneHot)? {
            let k = v - first
            guard k >= 0, !claimed.contains(k), let layer = modules[k].0 as? OneHot, modules[k].1.count == 1,
                  soleReader(k) == reader else { return nil }
            return (k, layer)
        }
        for (i, (module, inputs)) in modules.enumerated() {
            if let linear = module as? Linear, inputs.count == 1, !claimed.contains(i) {
                // At the ReLU's position when the ReLU alone reads it, else at its own.
                var last = i
                if let j = soleReader(i), !claimed.contains(j), modules[j].1.count == 1,
                   (modules[j].0 as? Activation)?.function == .relu {
                    steps[i] = .fused
                    last = j
                }
                // One-hot columns read alone, or concatenated (last) after other features.
                let m = inputs[0] - first
                var fold: (dense: Int?, oneHot: (step: Int, layer: OneHot), merge: Int?)?
                if let direct = oneHotStep(inputs[0], readBy: i) {
                    fold = (nil, direct, nil)
                } else if m >= 0, !claimed.contains(m), let merge = modules[m].0 as? Merge, merge.mergeKind == .concat,
                          merge.axis == 1 || merge.axis == -1, modules[m].1.count == 2, soleReader(m) == i,
                          let part = oneHotStep(modules[m].1[1], readBy: m) {
                    fold = (modules[m].1[0], part, m)
                }
                if let fold, let folded = try LinearOneHot(linear, fold.oneHot.layer) {
                    let absorbed = [fold.oneHot.step] + (fold.merge.map { [$0] } ?? [])
                    for k in absorbed { steps[k] = .fused }
                    steps[last] = .linearOneHot(folded, dense: fold.dense, codes: modules[fold.oneHot.step].1[0], relu: last != i)
                    claimed.formUnion([i, last] + absorbed)
                    continue
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

/// A linear layer whose input ends in one-hot columns, folded for predictions: the product of the
/// one-hot columns with W is, row by row, the sum of W's columns at the rows' codes, so the layer
/// runs its product over the other features alone (`denseWidth` columns; none when the one-hot
/// columns are the whole input) and adds those columns, then the bias and the ReLU: with Ember's
/// kernels in the product's epilogue (`cember_linear_code_rows`, one pass), else after it
/// (`cember_add_code_rows`). Nothing builds or copies the one-hot matrix or the concatenation, and
/// the product is narrower (8 instead of 13 columns for the latency benchmark's network). The same
/// bits as the unfused layer with Ember's kernels, which sum each value's products in column order
/// and add the bias last (with OpenBLAS's, equal up to float rounding).
final class LinearOneHot {
    let linear: Linear
    let oneHot: OneHot
    /// Columns of the input before the one-hot ones.
    let denseWidth: Int
    /// W's first `denseWidth` columns [out, denseWidth].
    let denseWeight: Tensor
    /// The same transposed, its rows padded with zeros to a multiple of 16 outputs:
    /// [denseWidth, out rounded up to 16], for `cember_linear_code_rows`.
    let denseWeightT: Tensor
    /// W's one-hot columns as rows [Σ cardinalities, out].
    let table: Tensor
    let cardinalities: [Int64]
    let offsets: [Int64]

    /// The fold of `linear` over an input whose last columns are `oneHot`'s, or nil when its width
    /// does not end in them, or when Ember's kernels sum its depth in more than one block (each
    /// block is summed alone and then added: the one-hot columns' weights would be added in
    /// another grouping, not the unfused layer's bits).
    init?(_ linear: Linear, _ oneHot: OneHot) throws {
        let out = linear.outFeatures, width = linear.inFeatures, dense = width - oneHot.width
        guard dense >= 0, oneHot.width > 0, BLAS.depthBlocks(k: width).count == 1 else { return nil }
        self.linear = linear
        self.oneHot = oneHot
        denseWidth = dense
        let w = linear.weight.value.unsafeReadPointer
        denseWeight = Tensor.build(shape: [out, dense]) { d in
            for o in 0..<out { for c in 0..<dense { d[o * dense + c] = w[o * width + c] } }
        }
        let padded = (out + 15) / 16 * 16
        denseWeightT = Tensor.build(shape: [dense, padded]) { t in
            for c in 0..<dense { for o in 0..<padded { t[c * padded + o] = o < out ? w[o * width + c] : 0 } }
        }
        table = Tensor.build(shape: [oneHot.width, out]) { t in
            for l in 0..<oneHot.width { for o in 0..<out { t[l * out + o] = w[o * width + dense + l] } }
        }
        cardinalities = oneHot.cardinalities.map { Int64($0) }
        offsets = oneHot.offsets.map { Int64($0) }
    }

    /// `relu?([dense, one_hot(codes)] · Wᵀ + b)`; computed as the modules would where the codes
    /// are floats or the shapes are not [n, denseWidth] and [n, k].
    func callAsFunction(dense: Tensor?, codes: Variable, relu: Bool) throws -> Tensor {
        let k = cardinalities.count
        guard let c = codes.codes, c.shape.count == 2, c.shape[1] == k, (dense == nil) == (denseWidth == 0),
              dense.map({ $0.shape == [c.shape[0], denseWidth] }) ?? true else {
            let h = try EmberNN.oneHot(codes, cardinalities: oneHot.cardinalities, offsets: oneHot.offsets).value
            return try linear.inferenceForward(try dense.map { try Tensor.concatenated([$0, h], axis: -1) } ?? h, relu: relu)
        }
        let n = c.shape[0], out = linear.outFeatures, bias = linear.bias?.value
        if let dense, BLAS.kernels != .openBLAS {
            // Ember's kernels: the product, the codes' rows, the bias and the ReLU in one pass over
            // the output (`cember_linear_code_rows`, the same bits as the two passes below), row
            // panels spread over the threads. On a Zen 3 (one thread, a one-off C
            // micro-benchmark): 512 rows of the latency benchmark's first layer 13.3 → 9.1 µs.
            return Tensor.build(shape: [n, out]) { y in
                guard let base = y.baseAddress else { return }
                c.data.withUnsafeBytes { codeBytes in
                    cardinalities.withUnsafeBufferPointer { cards in
                        offsets.withUnsafeBufferPointer { offs in
                            let codes = codeBytes.baseAddress?.assumingMemoryBound(to: Int64.self)
                            let x = dense.unsafeReadPointer, wt = denseWeightT.unsafeReadPointer
                            let table = table.unsafeReadPointer, b = bias?.unsafeReadPointer
                            let perRow = max(out * (denseWidth + k), 1)
                            Parallel.forRange(n, minChunk: max(64, BLAS.splitWork / perRow)) { lo, hi in
                                cember_linear_code_rows(Int64(hi - lo), Int64(out), Int64(denseWidth), x + lo * denseWidth, wt,
                                                        Int64(denseWeightT.shape[1]), table, codes.map { $0 + lo * k }, Int64(k),
                                                        cards.baseAddress, offs.baseAddress, b, relu ? 1 : 0, base + lo * out)
                            }
                        }
                    }
                }
            }
        }
        // In blocks of rows whose outputs fit in L2 (128 KiB): the columns are added while the
        // product's rows are still there (a batch of 4096 × 64 outputs read back from L3 took
        // twice as long).
        let block = max(64, (1 << 17) / max(out * MemoryLayout<Float>.size, 1))
        return try Tensor.build(shape: [n, out]) { y in
            guard let base = y.baseAddress else { return }
            try c.data.withUnsafeBytes { codeBytes in
                try cardinalities.withUnsafeBufferPointer { cards in
                    try offsets.withUnsafeBufferPointer { offs in
                        let codes = codeBytes.baseAddress?.assumingMemoryBound(to: Int64.self)
                        for r0 in stride(from: 0, to: n, by: block) {
                            let rows = min(block, n - r0)
                            if let dense {
                                try BLAS.linearForward(m: rows, n: out, k: denseWidth, x: dense.unsafeReadPointer + r0 * denseWidth,
                                                       weight: denseWeight.unsafeReadPointer, bias: nil, relu: false, c: base + r0 * out)
                            }
                            cember_add_code_rows(base + r0 * out, Int64(rows), Int64(out), dense == nil ? 1 : 0, table.unsafeReadPointer,
                                                 codes.map { $0 + r0 * k }, Int64(k), cards.baseAddress, offs.baseAddress,
                                                 bias?.unsafeReadPointer, relu ? 1 : 0)
                        }
                    }
                }
            }
        }
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
