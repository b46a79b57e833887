import EmberCore
import Glibc

/// The training losses, with PyTorch's semantics.
public enum Loss: String, Sendable, CaseIterable {
    /// Mean squared error; output and target have the same number of elements.
    case mse
    /// Mean absolute error (`nn.L1Loss`).
    case l1
    /// Cross-entropy over K logits (fused log-softmax + negative log-likelihood); target holds
    /// class indices 0..<K.
    case crossEntropy = "cross_entropy"
    /// Binary cross-entropy on logits, `max(x,0) - x·y + log(1 + e^-|x|)`; target holds values in [0, 1].
    case bceWithLogits = "bce_with_logits"

    /// The loss of `output` against `target` with default options (mean reduction).
    public func callAsFunction(_ output: Variable, _ target: Tensor) throws -> Variable {
        try LossFunction(self)(output, target)
    }
}

/// How per-element losses are combined.
public enum Reduction: String, Sendable {
    /// The (weighted) mean.
    case mean
    /// The sum.
    case sum
}

/// A loss with its options: reduction, class weights and ignore index (cross-entropy), positive
/// weights (BCE with logits).
public struct LossFunction: Equatable, Sendable {
    /// Which loss.
    public var kind: Loss
    /// Mean or sum.
    public var reduction: Reduction
    /// Cross-entropy: one weight per class (`weight` in PyTorch).
    public var classWeights: [Float]?
    /// Cross-entropy: a target value whose rows are left out (`ignore_index`).
    public var ignoreIndex: Int?
    /// BCE with logits: weight of positive examples, one per output column (`pos_weight`).
    public var posWeight: [Float]?

    /// Creates a loss; defaults match PyTorch (mean, no weights).
    public init(_ kind: Loss, reduction: Reduction = .mean, classWeights: [Float]? = nil, ignoreIndex: Int? = nil,
                posWeight: [Float]? = nil) {
        self.kind = kind
        self.reduction = reduction
        self.classWeights = classWeights
        self.ignoreIndex = ignoreIndex
        self.posWeight = posWeight
    }

    /// The loss of `output` against `target`, a scalar on the tape.
    public func callAsFunction(_ output: Variable, _ target: Tensor) throws -> Variable {
        switch kind {
        case .mse: return try regressionLoss(output, target, absolute: false)
        case .l1: return try regressionLoss(output, target, absolute: true)
        case .crossEntropy: return try crossEntropy(output, target)
        case .bceWithLogits: return try bceWithLogits(output, target)
        }
    }

    private var opName: String {
        switch kind {
        case .mse, .l1: return kind.rawValue + "_loss"
        case .crossEntropy, .bceWithLogits: return kind.rawValue
        }
    }

    private func regressionLoss(_ output: Variable, _ target: Tensor, absolute: Bool) throws -> Variable {
        let n = output.value.count
        guard target.count == n else {
            throw EmberError.shapeMismatch(opName, "output \(shapeString(output.shape)) has \(n) elements but the target \(shapeString(target.shape)) has \(target.count)")
        }
        guard n > 0 else { throw EmberError.invalidArgument(opName, "empty batch") }
        let o = output.value.storage.pointer, t = target.storage.pointer
        var s = 0.0
        for i in 0..<n {
            let d = Double(o[i] - t[i])
            s += absolute ? Swift.abs(d) : d * d
        }
        let scale: Float = reduction == .mean ? 1 / Float(n) : 1
        let value = Float(s) * scale
        let shape = output.shape
        return Variable(.scalar(value), inputs: [output]) { [ov = output.value] dy in
            let g = dy.storage.pointer[0] * scale
            return [Tensor.build(shape: shape) { d in
                let o = ov.storage.pointer
                for i in 0..<n {
                    let diff = o[i] - t[i]
                    d[i] = absolute ? (diff > 0 ? g : (diff < 0 ? -g : 0)) : 2 * diff * g
                }
            }]
        }
    }

    private func crossEntropy(_ output: Variable, _ target: Tensor) throws -> Variable {
        let s = output.shape
        guard s.count == 2 else {
            throw EmberError.shapeMismatch(opName, "expected logits of rank 2 [batch, classes], got \(shapeString(s))")
        }
        let n = s[0], k = s[1]
        guard target.count == n else {
            throw EmberError.shapeMismatch(opName, "expected \(n) targets for logits \(shapeString(s)), got \(target.count)")
        }
        guard n > 0 else { throw EmberError.invalidArgument(opName, "empty batch") }
        if let w = classWeights, w.count != k {
            throw EmberError.shapeMismatch(opName, "class weights have \(w.count) entries; expected one per class (\(k))")
        }
        var classes = [Int](repeating: -1, count: n)
        let t = target.storage.pointer
        for i in 0..<n {
            let v = t[i]
            if let ignore = ignoreIndex, v == Float(ignore) { continue }
            guard v >= 0, v < Float(k), v == v.rounded() else {
                throw EmberError.invalidArgument(opName, "target \(i) is \(v), expected a class index in 0..<\(k)")
            }
            classes[i] = Int(v)
        }
        let lsm = logSoftmaxRows(output.value)
        let lp = lsm.storage.pointer
        var total = 0.0, weightSum = 0.0
        for i in 0..<n where classes[i] >= 0 {
            let w = Double(classWeights?[classes[i]] ?? 1)
            total -= w * Double(lp[i * k + classes[i]])
            weightSum += w
        }
        // NOTE: with every row ignored the mean is 0/0 = NaN, as in PyTorch.
        let denom = reduction == .mean ? weightSum : 1
        let value = Float(total / denom)
        let weights = classWeights
        return Variable(.scalar(value), inputs: [output]) { dy in
            // d/dx = w_y (softmax - onehot) / denominator, per kept row.
            let g = dy.storage.pointer[0] / Float(denom)
            return [Tensor.build(shape: [n, k]) { d in
                for i in 0..<n {
                    let c = classes[i]
                    if c < 0 {
                        for j in 0..<k { d[i * k + j] = 0 }
                        continue
                    }
                    let wg = (weights?[c] ?? 1) * g
                    for j in 0..<k { d[i * k + j] = expf(lp[i * k + j]) * wg }
                    d[i * k + c] -= wg
                }
            }]
        }
    }

    private func bceWithLogits(_ output: Variable, _ target: Tensor) throws -> Variable {
        let n = output.value.count
        guard target.count == n else {
            throw EmberError.shapeMismatch(opName, "output \(shapeString(output.shape)) has \(n) elements but the target has \(target.count)")
        }
        guard n > 0 else { throw EmberError.invalidArgument(opName, "empty batch") }
        let cols = output.shape.last ?? 1
        if let pw = posWeight, pw.count != cols && pw.count != 1 {
            throw EmberError.shapeMismatch(opName, "pos_weight has \(pw.count) entries; expected 1 or one per output column (\(cols))")
        }
        let x = output.value.storage.pointer, y = target.storage.pointer
        for i in 0..<n where !(y[i] >= 0 && y[i] <= 1) {
            throw EmberError.invalidArgument(opName, "target \(i) is \(y[i]), expected a value in [0, 1]")
        }
        let pw = posWeight
        @inline(__always) func weight(_ i: Int) -> Float {
            guard let pw else { return 1 }
            return pw.count == 1 ? pw[0] : pw[i % cols]
        }
        var s = 0.0
        for i in 0..<n {
            // (1 - y) x + (1 + (p - 1) y) (log(1 + e^{-|x|}) + max(-x, 0)), stable for any x.
            let l = 1 + (weight(i) - 1) * y[i]
            s += Double((1 - y[i]) * x[i] + l * (log1pf(expf(-Swift.abs(x[i]))) + max(-x[i], 0)))
        }
        let scale: Float = reduction == .mean ? 1 / Float(n) : 1
        let shape = output.shape
        return Variable(.scalar(Float(s) * scale), inputs: [output]) { [xv = output.value] dy in
            let g = dy.storage.pointer[0] * scale
            return [Tensor.build(shape: shape) { d in
                let x = xv.storage.pointer
                for i in 0..<n {
                    let p = weight(i)
                    d[i] = (sigmoid(x[i]) * (1 + (p - 1) * y[i]) - p * y[i]) * g
                }
            }]
        }
    }
}

/// Mean squared error.
public func mseLoss(_ output: Variable, _ target: Tensor) throws -> Variable { try LossFunction(.mse)(output, target) }

/// Mean absolute error.
public func l1Loss(_ output: Variable, _ target: Tensor) throws -> Variable { try LossFunction(.l1)(output, target) }

/// Cross-entropy of K logits against class indices stored as floats 0, 1, …, K-1.
public func crossEntropyLoss(_ output: Variable, _ target: Tensor) throws -> Variable {
    try LossFunction(.crossEntropy)(output, target)
}

/// Binary cross-entropy with logits against targets in [0, 1].
public func bceWithLogitsLoss(_ output: Variable, _ target: Tensor) throws -> Variable {
    try LossFunction(.bceWithLogits)(output, target)
}

/// The logistic function, stable for large |x|.
@inlinable
public func sigmoid(_ x: Float) -> Float {
    if x >= 0 { return 1 / (1 + expf(-x)) }
    let e = expf(x)
    return e / (1 + e)
}
