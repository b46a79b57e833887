import EmberCore
import Glibc

/// Training losses, each averaged over the batch (PyTorch's `reduction = "mean"`).
public enum Loss: String, Sendable, CaseIterable {
    /// Mean squared error; output [n, 1], target [n].
    case mse
    /// Cross-entropy over K logits (fused log-softmax + negative log-likelihood); target holds
    /// class indices 0..<K.
    case crossEntropy = "cross_entropy"
    /// Binary cross-entropy on one logit, `max(x,0) - x·y + log(1 + e^-|x|)`; target holds 0 or 1.
    case bceWithLogits = "bce_with_logits"

    /// The loss of `output` against `target`, a scalar on the tape.
    public func callAsFunction(_ output: Variable, _ target: Tensor) throws -> Variable {
        switch self {
        case .mse: return try mseLoss(output, target)
        case .crossEntropy: return try crossEntropyLoss(output, target)
        case .bceWithLogits: return try bceWithLogitsLoss(output, target)
        }
    }
}

/// Checks that `output` is [n, k] and `target` has n elements.
func checkLossShapes(_ name: String, _ output: Variable, _ target: Tensor, columns: Int?) throws -> (Int, Int) {
    let s = output.shape
    guard s.count == 2 else {
        throw EmberError.shapeMismatch(name, "expected output of rank 2 [batch, outputs], got \(shapeString(s))")
    }
    if let columns, s[1] != columns {
        throw EmberError.shapeMismatch(name, "expected output with \(columns) column(s), got \(shapeString(s))")
    }
    guard target.count == s[0] else {
        throw EmberError.shapeMismatch(name, "expected \(s[0]) targets for output \(shapeString(s)), got \(target.count)")
    }
    guard s[0] > 0 else { throw EmberError.invalidArgument(name, "empty batch") }
    return (s[0], s[1])
}

/// Mean squared error between a one-column output and the target.
public func mseLoss(_ output: Variable, _ target: Tensor) throws -> Variable {
    let (n, _) = try checkLossShapes("mse_loss", output, target, columns: 1)
    var s = 0.0
    var diff = [Float](repeating: 0, count: n)
    let out = output.value.data, tgt = target.data
    for i in 0..<n {
        diff[i] = out[i] - tgt[i]
        s += Double(diff[i]) * Double(diff[i])
    }
    let shape = output.shape
    return Variable(.scalar(Float(s / Double(n))), inputs: [output]) { dy in
        let g = 2 * dy.data[0] / Float(n)
        return [try Tensor(shape: shape, data: diff.map { $0 * g })]
    }
}

/// Cross-entropy of K logits against class indices stored as floats 0, 1, …, K-1.
public func crossEntropyLoss(_ output: Variable, _ target: Tensor) throws -> Variable {
    let (n, k) = try checkLossShapes("cross_entropy", output, target, columns: nil)
    var classes = [Int](repeating: 0, count: n)
    let tgt = target.data
    for i in 0..<n {
        let t = tgt[i]
        guard t >= 0, t < Float(k), t == t.rounded() else {
            throw EmberError.invalidArgument("cross_entropy", "target \(i) is \(t), expected a class index in 0..<\(k)")
        }
        classes[i] = Int(t)
    }
    let lsm = logSoftmaxRows(output.value).data
    var s = 0.0
    for i in 0..<n { s -= Double(lsm[i * k + classes[i]]) }
    return Variable(.scalar(Float(s / Double(n))), inputs: [output]) { dy in
        // d/dx = (softmax - onehot) / n
        let g = dy.data[0] / Float(n)
        var dx = [Float](repeating: 0, count: n * k)
        for i in 0..<n {
            for j in 0..<k { dx[i * k + j] = expf(lsm[i * k + j]) * g }
            dx[i * k + classes[i]] -= g
        }
        return [try Tensor(shape: [n, k], data: dx)]
    }
}

/// Binary cross-entropy with logits of a one-column output against 0/1 targets.
public func bceWithLogitsLoss(_ output: Variable, _ target: Tensor) throws -> Variable {
    let (n, _) = try checkLossShapes("bce_with_logits", output, target, columns: 1)
    var s = 0.0
    let xs = output.value.data, ys = target.data
    for i in 0..<n {
        let x = xs[i], y = ys[i]
        guard y >= 0 && y <= 1 else {
            throw EmberError.invalidArgument("bce_with_logits", "target \(i) is \(y), expected a value in [0, 1]")
        }
        s += Double(max(x, 0) - x * y + log1pf(expf(-abs(x))))
    }
    let shape = output.shape
    return Variable(.scalar(Float(s / Double(n))), inputs: [output]) { dy in
        let g = dy.data[0] / Float(n)
        var dx = [Float](repeating: 0, count: n)
        for i in 0..<n { dx[i] = (sigmoid(xs[i]) - ys[i]) * g }
        return [try Tensor(shape: shape, data: dx)]
    }
}

/// The logistic function, stable for large |x|.
@inlinable
public func sigmoid(_ x: Float) -> Float {
    if x >= 0 { return 1 / (1 + expf(-x)) }
    let e = expf(x)
    return e / (1 + e)
}
