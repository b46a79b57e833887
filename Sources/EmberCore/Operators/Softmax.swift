import Glibc

extension Tensor {
    /// Softmax (or log-softmax) along `axis`, computed stably from `x - max` (no gradient).
    public func softmax(axis: Int, log: Bool) throws -> Tensor {
        let a = try Tensor.normalizeAxis(axis, rank: rank, op: log ? "log_softmax" : "softmax")
        let (outer, n, inner) = splitAround(shape, a)
        return Tensor.build(shape: shape) { out in
            let src = storage.pointer, dst = out.baseAddress.unsafelyUnwrapped
            Parallel.forRange(outer * inner, minChunk: Swift.max(1, Parallel.minimumChunk / Swift.max(n, 1))) { b, e in
                for j in b..<e {
                    let o = j / inner, i = j % inner
                    let base = o * n * inner + i
                    var m = -Float.infinity
                    for k in 0..<n { m = Swift.max(m, src[base + k * inner]) }
                    if m == -.infinity { m = 0 }  // a row of -inf: keep NaN-free arithmetic below
                    var s: Float = 0
                    if log {
                        for k in 0..<n { s += expf(src[base + k * inner] - m) }
                        // (x - m) - log s, not x - (m + log s), which rounds to the ulp of m.
                        let ls = logf(s)
                        for k in 0..<n { dst[base + k * inner] = (src[base + k * inner] - m) - ls }
                    } else {
                        // exp once: stored, summed, then scaled.
                        for k in 0..<n {
                            let e = expf(src[base + k * inner] - m)
                            dst[base + k * inner] = e
                            s += e
                        }
                        let inv = 1 / s
                        for k in 0..<n { dst[base + k * inner] *= inv }
                    }
                }
            }
        }
    }
}

/// Softmax along `axis` (default: last) on the tape.
public func softmax(_ x: Variable, axis: Int = -1) throws -> Variable {
    let y = try x.value.softmax(axis: axis, log: false)
    let a = try Tensor.normalizeAxis(axis, rank: x.shape.count, op: "softmax")
    return Variable(y, inputs: [x]) { dy in
        // dx = y · (dy - Σ_axis dy·y)
        let dot = try BinaryFunction.mul.apply(dy, y).sum(axes: [a], keepDims: true)
        return [try BinaryFunction.mul.apply(y, try BinaryFunction.sub.apply(dy, dot))]
    }
}

/// Log-softmax along `axis` (default: last) on the tape.
public func logSoftmax(_ x: Variable, axis: Int = -1) throws -> Variable {
    let y = try x.value.softmax(axis: axis, log: true)
    let a = try Tensor.normalizeAxis(axis, rank: x.shape.count, op: "log_softmax")
    return Variable(y, inputs: [x]) { dy in
        // dx = dy - softmax · Σ_axis dy
        let s = try dy.sum(axes: [a], keepDims: true)
        let p = UnaryFunction.exp.apply(y)
        return [try BinaryFunction.sub.apply(dy, try BinaryFunction.mul.apply(p, s))]
    }
}

/// Row-wise log-softmax of a rank-2 tensor (no gradient).
public func logSoftmaxRows(_ x: Tensor) -> Tensor {
    (try? x.softmax(axis: -1, log: true)) ?? x
}

/// Row-wise log-softmax of a [rows, cols] buffer into `out`, with exactly the arithmetic of
/// `Tensor.softmax(axis: 1, log: true)` (compiled training steps use it).
public func logSoftmaxRows(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
    for r in 0..<rows {
        let base = r * cols
        var m = -Float.infinity
        for k in 0..<cols { m = Swift.max(m, x[base + k]) }
        if m == -.infinity { m = 0 }
        var s: Float = 0
        for k in 0..<cols { s += expf(x[base + k] - m) }
        let ls = logf(s)
        for k in 0..<cols { out[base + k] = (x[base + k] - m) - ls }
    }
}
