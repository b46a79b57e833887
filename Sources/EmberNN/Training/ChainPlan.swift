import EmberCore
import Glibc

/// A compiled training step for chain networks (Linear, elementwise activations, dropout, head)
/// on one numeric input, the MLP family: every buffer is allocated once, so a training step in the
/// steady state makes no heap allocation, and no tape is built.
///
/// NOTE: it performs exactly the float operations of the tape path, in the same order (bias copy
/// then GEMM with beta 1, the same activation and loss formulas, the same dropout draws), so both
/// paths give bit-identical weights; TrainerTests checks this.
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
    /// Gradient tensors of the parameters, reused every step.
    var paramGrads: [ObjectIdentifier: Tensor] = [:]
    let target: UnsafeMutablePointer<Float>
    let logSoftmax: UnsafeMutablePointer<Float>

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
        guard appendChain(model.network, from: spec.inputs[0].name), case .linear? = stages.last else { return nil }
        self.stages = stages
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
        logSoftmax = .allocate(capacity: batchSize * w)
        for s in stages {
            guard case let .linear(l) = s else { continue }
            for p in [l.weight] + (l.bias.map { [$0] } ?? []) {
                paramGrads[ObjectIdentifier(p)] = (try? Tensor.zeros(p.value.shape)) ?? p.value
            }
        }
    }

    deinit {
        for v in values { v.deallocate() }
        for g in grads { g.deallocate() }
        for m in masks { m?.deallocate() }
        target.deallocate()
        logSoftmax.deallocate()
    }

    /// One training step on `rows`: forward, loss, backward into the parameters' gradients.
    /// `prepared` is the batch's input already gathered and standardised (a batch source's), else
    /// the rows are gathered from the dataset's tensor. Returns the loss. The optimizer step is the caller's.
    func step(_ model: Model, _ data: Dataset, rows: ArraySlice<Int>, prepared: Tensor? = nil, loss: LossFunction,
              rng: inout RandomGenerator) throws -> Double {
        let m = rows.count
        let x = data.inputs[model.spec.inputs[0].name]
        guard m >= 1, m <= capacity, x != nil || prepared?.count == m * inputWidth, let y = data.target else {
            throw EmberError(.invalidState, "[fit] the compiled step got an unexpected batch")
        }
        // Gather and standardise the batch: (x - mean) / scale, as Standardization.apply does.
        let input = values[0], p = inputWidth
        let scaling = model.inputScaling[model.spec.inputs[0].name]
        var r = 0
        if let src = x?.storage.pointer {
            for row in rows {
                (input + r * p).update(from: src + row * p, count: p)
                if let s = scaling {
                    s.mean.withUnsafeBufferPointer { mean in
                        s.scale.withUnsafeBufferPointer { scale in
                            let d = input + r * p
                            for j in 0..<p { d[j] = (d[j] - mean[j]) / scale[j] }
                        }
                    }
                }
                r += 1
            }
        } else if let prepared {
            input.update(from: prepared.storage.pointer, count: m * p)
        }
        let yp = y.storage.pointer
        r = 0
        for row in rows {
            target[r] = model.task.isRegression ? (yp[row] - model.targetScaling.mean[0]) / model.targetScaling.scale[0] : yp[row]
            r += 1
        }
        // Forward.
        for (i, s) in stages.enumerated() {
            let a = values[i], out = values[i + 1], w = widths[i + 1], n = m * w
            switch s {
            case let .linear(l):
                if let b = l.bias?.value.storage.pointer {
                    for row in 0..<m { (out + row * w).update(from: b, count: w) }
                }
                try BLAS.gemm(transA: false, transB: true, m: m, n: w, k: widths[i], a: a,
                              b: l.weight.value.storage.pointer, beta: l.bias == nil ? 0 : 1, c: out)
            case let .activation(f):
                f.apply(a, out, n)
            case let .dropout(prob):
                guard let mask = masks[i + 1] else { continue }
                let keep = 1 - prob, scale = 1 / keep
                if prob == 0 {
                    out.update(from: a, count: n)
                } else {
                    for k in 0..<n { mask[k] = rng.uniform() < keep ? scale : 0 }
                    for k in 0..<n { out[k] = a[k] * mask[k] }
                }
            }
        }
        // Loss and its gradient with respect to the output.
        let last = stages.count, o = values[last], go = grads[last], k = widths[last]
        let lossValue = try lossAndGradient(model.task, loss.kind, o, go, m, k)
        // Backward.
        for i in stride(from: stages.count - 1, through: 0, by: -1) {
            let a = values[i], out = values[i + 1], dy = grads[i + 1], dx = grads[i], w = widths[i + 1], n = m * w
            switch stages[i] {
            case let .linear(l):
                // NOTE: the gradient tensors are written in place every step (as PyTorch reuses
                // .grad): a copy of a gradient kept from an earlier step would change too.
                guard let gw = paramGrads[ObjectIdentifier(l.weight)] else { continue }
                try BLAS.gemm(transA: true, transB: false, m: w, n: widths[i], k: m, a: dy, b: a, c: gw.storage.pointer)
                l.weight.grad = gw
                if let bias = l.bias, let gb = paramGrads[ObjectIdentifier(bias)] {
                    let db = gb.storage.pointer
                    db.initialize(repeating: 0, count: w)
                    for row in 0..<m {
                        let g = dy + row * w
                        for j in 0..<w { db[j] += g[j] }
                    }
                    bias.grad = gb
                }
                if i > 0 {
                    try BLAS.gemm(transA: false, transB: false, m: m, n: widths[i], k: w, a: dy,
                                  b: l.weight.value.storage.pointer, c: dx)
                }
            case let .activation(f):
                if i > 0 { f.gradient(dy, a, out, dx, n) }
            case let .dropout(prob):
                guard i > 0 else { continue }
                if prob == 0 {
                    dx.update(from: dy, count: n)
                } else if let mask = masks[i + 1] {
                    for q in 0..<n { dx[q] = dy[q] * mask[q] }
                }
            }
        }
        return lossValue
    }

    /// The loss (mean reduction) and d loss / d output, with the formulas of `LossFunction`.
    private func lossAndGradient(_ task: TaskKind, _ kind: Loss, _ o: UnsafeMutablePointer<Float>,
                                 _ go: UnsafeMutablePointer<Float>, _ m: Int, _ k: Int) throws -> Double {
        switch kind {
        case .mse, .l1:
            let n = m * k
            guard n == m else { throw EmberError(.invalidState, "[fit] regression output must have one column") }
            var s = 0.0
            for i in 0..<n {
                let d = Double(o[i] - target[i])
                s += kind == .l1 ? Swift.abs(d) : d * d
            }
            let g: Float = 1 * (1 / Float(n))
            for i in 0..<n {
                let diff = o[i] - target[i]
                go[i] = kind == .l1 ? (diff > 0 ? g : (diff < 0 ? -g : 0)) : 2 * diff * g
            }
            return Double(Float(s) * (1 / Float(n)))
        case .bceWithLogits:
            var s = 0.0
            for i in 0..<m {
                let l: Float = 1 + (1 - 1) * target[i]
                s += Double((1 - target[i]) * o[i] + l * (log1pf(expf(-Swift.abs(o[i]))) + max(-o[i], 0)))
            }
            let g: Float = 1 * (1 / Float(m))
            for i in 0..<m { go[i] = (sigmoid(o[i]) * (1 + (1 - 1) * target[i]) - 1 * target[i]) * g }
            return Double(Float(s) * (1 / Float(m)))
        case .crossEntropy:
            logSoftmaxRows(o, logSoftmax, rows: m, cols: k)
            var total = 0.0
            for i in 0..<m {
                let c = Int(target[i])
                guard c >= 0 && c < k else { throw EmberError.invalidArgument("cross_entropy", "target \(i) is out of range") }
                total -= 1 * Double(logSoftmax[i * k + c])
            }
            let g = 1 / Float(Double(m))
            for i in 0..<m {
                let c = Int(target[i])
                let wg: Float = 1 * g
                for j in 0..<k { go[i * k + j] = expf(logSoftmax[i * k + j]) * wg }
                go[i * k + c] -= wg
            }
            return Double(Float(total / Double(m)))
        case .huber, .smoothL1, .focal, .sigmoidFocal, .expression, .poissonNLL, .quantile:
            // Not planned (init returns nil for them): they train through the tape.
            throw EmberError(.invalidState, "[fit] the compiled step has no \(kind.rawValue) loss")
        }
    }
}
