import EmberCore
import Glibc

/// A compiled training step for chain networks (Linear, elementwise activations, dropout, head)
/// on one numeric input, the MLP family: every buffer is allocated once, so a training step in the
/// steady state makes no heap allocation, and no tape is built.
///
/// NOTE: it performs exactly the float operations of the tape path, in the same order (bias copy
/// then GEMM with beta 1, or Ember's epilogue that gives those bits; the same activation and loss
/// formulas, the same dropout draws), so both paths give bit-identical weights; TrainerTests
/// checks this.
///
/// Over several threads, each layer's weight rows stay with one thread in every product of the
/// step (`BLAS.Split`): the forward product's panels of output columns, the weight gradient's (or
/// the fused update's) panels of rows, and the input gradient cut along k, which runs over the
/// weight's rows.
final class ChainPlan {
    enum Stage {
        case linear(Linear)
        case activation(UnaryFunction)
        case dropout(Float)
    }

    let stages: [Stage]
    let inputWidth: Int
    let capacity: Int
    /// Per stage: its output buffer, [capacity, width]; values[0] is the input batch.
    var values: [UnsafeMutablePointer<Float>] = []
    var widths: [Int] = []
    /// Per stage: the gradient of its output.
    var grads: [UnsafeMutablePointer<Float>] = []
    /// Dropout masks (nil for other stages).
    var masks: [UnsafeMutablePointer<Float>?] = []
    /// Per stage: the gradient tensors of a linear stage's weight and bias, reused every step.
    var weightGrads: [Tensor?] = []
    var biasGrads: [Tensor?] = []
    let target: UnsafeMutablePointer<Float>
    /// The batch's class indices (classification).
    let classes: UnsafeMutablePointer<Int>
    let logSoftmax: UnsafeMutablePointer<Float>
    /// Per stage: a linear stage whose output only a ReLU stage reads (the next one). Its product
    /// applies the ReLU as it stores its tiles, into the ReLU's output: the linear stage's own
    /// output is not written, and the ReLU's gradient reads the ReLU's output instead of its input
    /// (`x > 0` exactly where `relu(x) > 0`).
    let reluAfter: [Bool]
    /// The input gradients' blocks of k beyond the first thread's (`BLAS.Split.depth`).
    let depthScratch: UnsafeMutablePointer<Float>
    let depthScratchCount: Int

    /// A plan for `network` and batches of at most `batchSize` rows, or nil when the network is
    /// not a supported chain.
    init?(_ model: Model, batchSize: Int, loss: LossFunction) {
        let spec = model.spec
        guard spec.inputs.count == 1, case let .numeric(p) = spec.inputs[0].kind else { return nil }
        // One target value per row and one (regression, binary) or K (multiclass) outputs: quantile
        // and multilabel models train through the tape.
        switch model.task {
        case .regression, .binary, .multiclass: break
        case .quantileRegression, .multilabel: return nil
        }
        guard loss.reduction == .mean, loss.classWeights == nil, loss.ignoreIndex == nil, loss.posWeight == nil,
              loss.labelSmoothing == 0, [.mse, .l1, .crossEntropy, .bceWithLogits].contains(loss.kind) else { return nil }
        var stages: [Stage] = []
        // The stages of `network`'s chain from its input `previous`; false when it is not a chain.
        // A repeated block with its own parameters per repetition (an MLP's hidden layers written
        // as one block) is its bodies' chains one after the other, as Repeat evaluates them.
        func appendChain(_ network: GraphNetwork, from input: String) -> Bool {
            var previous = input
            for step in network.steps {
                guard step.node.inputs == [previous] else { return false }
                switch step.module {
                case let l as Linear: stages.append(.linear(l))
                case let a as Activation: stages.append(.activation(a.function))
                case let d as Dropout: stages.append(.dropout(d.p))
                case let r as Repeat where r.bodies.count == r.times:
                    for body in r.bodies {
                        guard body.spec.inputs.count == 1, appendChain(body, from: body.spec.inputs[0].name) else { return false }
                    }
                default: return false
                }
                previous = step.node.id
            }
            return previous == network.spec.output
        }
        guard appendChain(model.network, from: spec.inputs[0].name), case .linear? = stages.last,
              model.targetScaling.mean.count == 1 else { return nil }
        self.stages = stages
        reluAfter = stages.indices.map { i in
            guard case .linear = stages[i], i + 1 < stages.count, case .activation(.relu) = stages[i + 1] else { return false }
            return true
        }
        self.inputWidth = p
        self.capacity = batchSize
        var w = p
        widths = [p]
        values = [UnsafeMutablePointer<Float>.allocate(capacity: batchSize * p)]
        grads = [UnsafeMutablePointer<Float>.allocate(capacity: 1)]
        masks = [nil]
        for s in stages {
            if case let .linear(l) = s { w = l.outFeatures }
            widths.append(w)
            values.append(.allocate(capacity: batchSize * w))
            grads.append(.allocate(capacity: batchSize * w))
            if case .dropout = s { masks.append(.allocate(capacity: batchSize * w)) } else { masks.append(nil) }
        }
        target = .allocate(capacity: batchSize)
        classes = .allocate(capacity: batchSize)
        logSoftmax = .allocate(capacity: batchSize * w)
        var scratch = 0
        for (i, s) in stages.enumerated() where i > 0 {
            if case let .linear(l) = s {
                scratch = max(scratch, BLAS.depthScratchCount(m: batchSize, n: widths[i], k: l.outFeatures))
            }
        }
        depthScratchCount = scratch
        depthScratch = .allocate(capacity: max(scratch, 1))
        for s in stages {
            guard case let .linear(l) = s else {
                weightGrads.append(nil)
                biasGrads.append(nil)
                continue
            }
            weightGrads.append(try? Tensor.zeros(l.weight.value.shape))
            biasGrads.append(l.bias.flatMap { try? Tensor.zeros($0.value.shape) })
        }
    }

    deinit {
        for v in values { v.deallocate() }
        for g in grads { g.deallocate() }
        for m in masks { m?.deallocate() }
        target.deallocate()
        classes.deallocate()
        logSoftmax.deallocate()
        depthScratch.deallocate()
    }

    /// Weight updates folded into the weight-gradient products so far (`step`'s `optimizer`).
    private(set) var fusedUpdates = 0

    /// One training step on `rows`: forward, loss, backward into the parameters' gradients.
    /// `prepared` is the batch's input already gathered and standardised (a batch source's), else
    /// the rows are gathered from the dataset's tensor. Returns the loss. The optimizer step is the
    /// caller's, except that with `optimizer`, the weights it updates with plain SGD are updated
    /// here, in the products that compute their gradients (`Optimizer.fusedUpdateScale`), and get
    /// no gradient. That saves a pass over every weight and writing the gradient; the caller must
    /// then call `optimizer.step()` after this step (for the other parameters and its bookkeeping)
    /// and must not need those gradients. When the loss is not finite, there is no backward pass.
    func step(_ model: Model, _ data: Dataset, rows: ArraySlice<Int>, prepared: Tensor? = nil, loss: LossFunction,
              optimizer: Optimizer? = nil, rng: inout RandomGenerator) throws -> Double {
        let m = rows.count
        let x = data.inputs[model.spec.inputs[0].name]
        guard m >= 1, m <= capacity, x != nil || prepared?.count == m * inputWidth, let y = data.target else {
            throw EmberError(.invalidState, "[fit] the compiled step got an unexpected batch")
        }
        // Gather and standardise the batch: (x - mean) / scale, as Standardization.apply does.
        let input = values[0], p = inputWidth
        let scaling = model.inputScaling[model.spec.inputs[0].name]
        if let x {
            x.withUnsafeBufferPointer { src in
                guard let src = src.baseAddress else { return }
                for (r, row) in rows.enumerated() { (input + r * p).update(from: src + row * p, count: p) }
            }
            scaling?.apply(rows: input, count: m)
        } else if let prepared {
            prepared.withUnsafeBufferPointer { src in
                if let src = src.baseAddress { input.update(from: src, count: m * p) }
            }
        }
        y.withUnsafeBufferPointer { yp in
            for (r, row) in rows.enumerated() { target[r] = yp[row] }
        }
        if case .multiclass = model.task {
            // Integer class targets as they are; float ones were checked whole and in range by Model.check.
            if let c = data.classes {
                for (r, row) in rows.enumerated() { classes[r] = c.data[row] }
            } else {
                for r in 0..<m { classes[r] = target[r] >= 0 && target[r] < 16_777_216 ? Int(target[r]) : -1 }
            }
        }
        if model.task.isRegression { model.targetScaling.apply(rows: target, count: m) }
        // Forward.
        for (i, s) in stages.enumerated() {
            let a = values[i], out = values[i + 1], w = widths[i + 1], n = m * w
            switch s {
            case let .linear(l):
                try BLAS.linearForward(m: m, n: w, k: widths[i], x: a, weight: l.weight.value.unsafeReadPointer,
                                       bias: l.bias?.value.unsafeReadPointer, relu: reluAfter[i],
                                       c: reluAfter[i] ? values[i + 2] : out, asGemm: true)
            case let .activation(f):
                // A ReLU after a linear stage was applied by the product.
                if i > 0 && reluAfter[i - 1] { continue }
                f.apply(a, out, n)
            case let .dropout(prob):
                guard let mask = masks[i + 1] else { continue }
                if prob == 0 {
                    out.update(from: a, count: n)
                } else {
                    fillDropoutMask(mask, count: n, p: prob, rng: &rng)
                    applyDropoutMask(a, mask, out, count: n)
                }
            }
        }
        // Loss and its gradient with respect to the output.
        let last = stages.count, o = values[last], go = grads[last], k = widths[last]
        let lossValue = try lossAndGradient(model.task, loss.kind, o, go, m, k)
        // The caller stops without a step (Trainer.stopOnNonFiniteLoss).
        guard lossValue.isFinite else { return lossValue }
        // Backward.
        let depthSplit = BLAS.Split.depth(scratch: depthScratch, count: depthScratchCount)
        for i in stride(from: stages.count - 1, through: 0, by: -1) {
            let a = values[i], out = values[i + 1], dy = grads[i + 1], dx = grads[i], w = widths[i + 1], n = m * w
            switch stages[i] {
            case let .linear(l):
                // A ReLU before this stage, fused with the linear stage before it: its gradient
                // and that stage's bias gradient (the column sums of the ReLU's input gradient) are
                // computed panel by panel of this stage's input gradient, on the thread that has
                // just written the panel (`BLAS.gemm`'s columnsDone).
                let reluBefore = i >= 2 && reluAfter[i - 2]
                var previousBias: Parameter?
                if reluBefore, case let .linear(p) = stages[i - 2], let b = p.bias, biasGrads[i - 2] != nil {
                    previousBias = b
                    b.grad = nil
                }
                func inputGradient(_ weight: UnsafePointer<Float>, _ split: BLAS.Split) throws {
                    guard i > 0 else { return }
                    guard reluBefore else {
                        try BLAS.gemm(transA: false, transB: false, m: m, n: widths[i], k: w, a: dy, b: weight, c: dx,
                                      split: split)
                        return
                    }
                    let width = widths[i], reluGrad = grads[i - 1]
                    func product(_ db: UnsafeMutablePointer<Float>?) throws {
                        try BLAS.gemm(transA: false, transB: false, m: m, n: width, k: w, a: dy, b: weight, c: dx,
                                      split: split) { lo, size in
                            for r in 0..<m {
                                let off = r * width + lo
                                UnaryFunction.relu.gradient(dx + off, a + off, a + off, reluGrad + off, size)
                            }
                            guard let db else { return }
                            for j in lo..<(lo + size) { db[j] = 0 }
                            for r in 0..<m {
                                let g = reluGrad + r * width
                                for j in lo..<(lo + size) { db[j] += g[j] }
                            }
                        }
                    }
                    if let previousBias {
                        try biasGrads[i - 2]?.withUnsafeMutableBufferPointer { db in try product(db.baseAddress) }
                        previousBias.grad = biasGrads[i - 2]
                    } else {
                        try product(nil)
                    }
                }
                // The weight's rows stay on one thread when the input gradient can be cut along
                // them (two blocks of k or more); otherwise that product reads the weight by
                // columns anyway, and the weight gradient keeps gemm's own panels.
                let rowSplit: BLAS.Split = BLAS.depthBlocks(k: w).count > 1 ? .rows : .automatic
                // The gradient tensors are reused every step (as PyTorch reuses .grad): the
                // parameter lets go of last step's gradient first, so that this plan holds the only
                // reference and writes in place without allocating; a copy kept elsewhere (a
                // callback's) makes the write copy first instead of changing that copy.
                l.weight.grad = nil
                let fusedScale = optimizer?.fusedUpdateScale(for: l.weight)
                if fusedScale == nil {
                    try weightGrads[i]?.withUnsafeMutableBufferPointer { gw in
                        guard let gw = gw.baseAddress else { return }
                        try BLAS.gemm(transA: true, transB: false, m: w, n: widths[i], k: m, a: dy, b: a, c: gw,
                                      split: rowSplit)
                    }
                    l.weight.grad = weightGrads[i]
                }
                // The bias gradient was computed with the next linear stage's input gradient when a
                // fused ReLU sits between them.
                var biasDone = false
                if i + 2 < stages.count, reluAfter[i], case .linear = stages[i + 2] { biasDone = biasGrads[i] != nil }
                if let bias = l.bias, !biasDone {
                    bias.grad = nil
                    biasGrads[i]?.withUnsafeMutableBufferPointer { db in
                        for j in 0..<w { db[j] = 0 }
                        for row in 0..<m {
                            let g = dy + row * w
                            for j in 0..<w { db[j] += g[j] }
                        }
                    }
                    bias.grad = biasGrads[i]
                }
                guard let scale = fusedScale, let optimizer else {
                    try inputGradient(l.weight.value.unsafeReadPointer, depthSplit)
                    continue
                }
                // Plain SGD folded into the weight-gradient product: W' = W − lr·dyᵀ·a, after dx has
                // read W; W' is written next to W, which the optimizer keeps (for a non-finite loss
                // later) without a copy, or over W when nothing is kept.
                try optimizer.fusedUpdate(of: l.weight) { current, target in
                    try inputGradient(current, depthSplit)
                    try BLAS.gemm(transA: true, transB: false, m: w, n: widths[i], k: m, alpha: scale, a: dy, b: a,
                                  beta: 1, c: target, cIn: current, split: rowSplit)
                }
                fusedUpdates += 1
            case let .activation(f):
                guard i > 0 else { continue }
                // A fused ReLU's input was not written: its output stands in (see `reluAfter`).
                // Its gradient is computed with the next stage's input gradient when that stage is linear.
                if reluAfter[i - 1] {
                    if i + 1 < stages.count, case .linear = stages[i + 1] { continue }
                    f.gradient(dy, out, out, dx, n)
                } else {
                    f.gradient(dy, a, out, dx, n)
                }
            case let .dropout(prob):
                guard i > 0 else { continue }
                if prob == 0 {
                    dx.update(from: dy, count: n)
                } else if let mask = masks[i + 1] {
                    applyDropoutMask(dy, mask, dx, count: n)
                }
            }
        }
        return lossValue
    }

    /// The loss (mean reduction) and d loss / d output, with the kernels of `LossFunction`.
    private func lossAndGradient(_ task: TaskKind, _ kind: Loss, _ o: UnsafeMutablePointer<Float>,
                                 _ go: UnsafeMutablePointer<Float>, _ m: Int, _ k: Int) throws -> Double {
        switch kind {
        case .mse, .l1:
            let n = m * k
            guard n == m else { throw EmberError(.invalidState, "[fit] regression output must have one column") }
            let s = LossKernels.regressionSum(o, target, n, absolute: kind == .l1)
            let g: Float = 1 / Float(n)
            LossKernels.regressionGradient(o, target, n, absolute: kind == .l1, g: g, into: go)
            return Double(Float(s) * g)
        case .bceWithLogits:
            let s = LossKernels.bceWithLogitsSum(o, target, m, posWeight: nil, cols: k)
            let g: Float = 1 / Float(m)
            LossKernels.bceWithLogitsGradient(o, target, m, posWeight: nil, cols: k, g: g, into: go)
            return Double(Float(s) * g)
        case .crossEntropy:
            // Model.check has validated the targets; range checks stay, roundness is not re-checked.
            for i in 0..<m where !(classes[i] >= 0 && classes[i] < k) {
                throw EmberError.invalidArgument("cross_entropy", "target \(i) is \(classes[i]), expected a class index in 0..<\(k)")
            }
            logSoftmaxRows(o, logSoftmax, rows: m, cols: k)
            let (total, weightSum) = LossKernels.crossEntropySum(logSoftmax, classes: classes, m, k, weights: nil)
            LossKernels.crossEntropyGradient(logSoftmax, classes: classes, m, k, weights: nil, g: 1 / Float(weightSum), into: go)
            return Double(Float(total / weightSum))
        case .huber, .smoothL1, .focal, .sigmoidFocal, .expression, .poissonNLL, .quantile:
            // Not planned (init returns nil for them): they train through the tape.
            throw EmberError(.invalidState, "[fit] the compiled step has no \(kind.rawValue) loss")
        }
    }
}
