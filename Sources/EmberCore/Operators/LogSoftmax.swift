import Glibc

/// Log-softmax along the last axis of a rank-2 tensor, computed stably as
/// `x - max - log Σ exp(x - max)`.
public func logSoftmax(_ x: Variable) throws -> Variable {
    guard x.shape.count == 2 else {
        throw EmberError.shapeMismatch("log_softmax", "expected a rank-2 input [batch, classes], got \(shapeString(x.shape))")
    }
    let out = logSoftmaxRows(x.value)
    return Variable(out, inputs: [x]) { dy in
        // dx = dy - softmax · Σ_j dy_j  (per row)
        let rows = out.shape[0], cols = out.shape[1]
        var dx = dy.data
        for r in 0..<rows {
            var s: Float = 0
            for c in 0..<cols { s += dy.data[r * cols + c] }
            for c in 0..<cols { dx[r * cols + c] -= expf(out.data[r * cols + c]) * s }
        }
        return [Tensor(uncheckedShape: dy.shape, data: dx)]
    }
}

/// Row-wise log-softmax of a rank-2 tensor (no gradient).
public func logSoftmaxRows(_ x: Tensor) -> Tensor {
    let rows = x.shape[0], cols = x.shape[1]
    var out = x.data
    for r in 0..<rows {
        let base = r * cols
        var m = -Float.infinity
        for c in 0..<cols { m = max(m, x.data[base + c]) }
        var s: Float = 0
        for c in 0..<cols { s += expf(x.data[base + c] - m) }
        // (x - m) - log s, not x - (m + log s): the sum m + log s would round to the ulp of m,
        // an absolute error of ~3e-5 for logits near 1000.
        let logS = logf(s)
        for c in 0..<cols { out[base + c] = (x.data[base + c] - m) - logS }
    }
    return Tensor(uncheckedShape: x.shape, data: out)
}
