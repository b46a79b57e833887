/// Sums, means and maxima along axes.

/// Splits `shape` around `axis` into (outer, n, inner).
func splitAround(_ shape: [Int], _ axis: Int) -> (Int, Int, Int) {
    (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
}

extension Tensor {
    /// The sum along one axis, keeping it with size 1.
    func sumKeepingAxis(_ axis: Int) -> Tensor {
        let (outer, n, inner) = splitAround(shape, axis)
        var newShape = shape
        newShape[axis] = 1
        return Tensor.build(shape: newShape) { out in
            let src = storage.pointer, dst = out.baseAddress.unsafelyUnwrapped
            if inner == 1 {
                Parallel.forRange(outer, minChunk: Swift.max(1, Parallel.minimumChunk / Swift.max(n, 1))) { b, e in
                    for o in b..<e {
                        var s = 0.0
                        let row = src + o * n
                        for k in 0..<n { s += Double(row[k]) }
                        dst[o] = Float(s)
                    }
                }
            } else {
                // Double accumulators here too: a float32 running sum drifts (300 000 × 0.1 is
                // off by 0.3 %), and the precision must not depend on the axis.
                withUnsafeTemporaryAllocation(of: Double.self, capacity: inner) { acc in
                    for o in 0..<outer {
                        acc.initialize(repeating: 0)
                        for k in 0..<n {
                            let row = src + (o * n + k) * inner
                            for i in 0..<inner { acc[i] += Double(row[i]) }
                        }
                        let d = dst + o * inner
                        for i in 0..<inner { d[i] = Float(acc[i]) }
                    }
                }
            }
        }
    }

    /// The sum over `axes` (all when empty/nil), optionally keeping reduced dimensions as size 1.
    public func sum(axes: [Int]? = nil, keepDims: Bool = false) throws -> Tensor {
        let normalized = try Tensor.normalizeAxes(axes, rank: rank, op: "sum")
        var t = self
        for a in normalized.sorted(by: >) { t = t.sumKeepingAxis(a) }
        if keepDims { return t }
        return try t.reshaped(shape.enumerated().filter { !normalized.contains($0.offset) }.map { $0.element })
    }

    /// Maximum and its index along `axis` (first index on ties).
    public func max(axis: Int, keepDims: Bool = false) throws -> (values: Tensor, indices: IndexTensor) {
        let a = try Tensor.normalizeAxis(axis, rank: rank, op: "max")
        let (outer, n, inner) = splitAround(shape, a)
        guard n > 0 else { throw EmberError.invalidArgument("max", "cannot reduce an empty axis \(a) of shape \(shapeString(shape))") }
        var newShape = shape
        if keepDims { newShape[a] = 1 } else { newShape.remove(at: a) }
        var indices = [Int](repeating: 0, count: outer * inner)
        let values = Tensor.build(shape: newShape) { out in
            let src = storage.pointer
            for o in 0..<outer {
                for i in 0..<inner {
                    var best = src[o * n * inner + i], bestK = 0
                    for k in 1..<n {
                        let v = src[(o * n + k) * inner + i]
                        if v > best || (v.isNaN && !best.isNaN) { best = v; bestK = k }
                    }
                    out[o * inner + i] = best
                    indices[o * inner + i] = bestK
                }
            }
        }
        return (values, try IndexTensor(shape: newShape, data: indices))
    }

    /// Index of the maximum along `axis` (first on ties).
    public func argmax(axis: Int, keepDims: Bool = false) throws -> IndexTensor {
        try max(axis: axis, keepDims: keepDims).indices
    }

    /// Validates axes (negative count from the end); nil or empty means all axes.
    static func normalizeAxes(_ axes: [Int]?, rank: Int, op: String) throws -> Set<Int> {
        guard let axes, !axes.isEmpty else { return Set(0..<rank) }
        var out = Set<Int>()
        for a in axes {
            let n = try normalizeAxis(a, rank: rank, op: op)
            guard out.insert(n).inserted else { throw EmberError.invalidArgument(op, "axis \(a) is repeated in \(axes)") }
        }
        return out
    }
}

/// The sum over `axes` (all when nil) on the tape.
public func sum(_ x: Variable, axes: [Int]? = nil, keepDims: Bool = false) throws -> Variable {
    let normalized = try Tensor.normalizeAxes(axes, rank: x.shape.count, op: "sum")
    let y = try x.value.sum(axes: axes, keepDims: keepDims)
    let kept = x.shape.enumerated().map { normalized.contains($0.offset) ? 1 : $0.element }
    return Variable(y, inputs: [x]) { [shape = x.shape] dy in
        [try dy.reshaped(kept).expanded(to: shape)]
    }
}

/// The mean over `axes` (all when nil) on the tape; sums in double precision along each axis.
public func mean(_ x: Variable, axes: [Int]? = nil, keepDims: Bool = false) throws -> Variable {
    let normalized = try Tensor.normalizeAxes(axes, rank: x.shape.count, op: "mean")
    let n = normalized.reduce(1) { $0 * x.shape[$1] }
    guard n > 0 else {
        throw EmberError.invalidArgument("mean", "needs at least one element to average, got shape \(shapeString(x.shape))")
    }
    let s = try sum(x, axes: axes, keepDims: keepDims)
    return unary(s, .mulScalar(1 / Float(n)))
}

/// The maximum along `axis` on the tape; the gradient goes to the (first) maximal element.
public func max(_ x: Variable, axis: Int, keepDims: Bool = false) throws -> Variable {
    let a = try Tensor.normalizeAxis(axis, rank: x.shape.count, op: "max")
    let (values, indices) = try x.value.max(axis: a, keepDims: keepDims)
    let (outer, n, inner) = splitAround(x.shape, a)
    return Variable(values, inputs: [x]) { [shape = x.shape] dy in
        [Tensor.build(shape: shape) { out in
            let dst = out.baseAddress.unsafelyUnwrapped
            dst.initialize(repeating: 0, count: out.count)
            let g = dy.storage.pointer
            for o in 0..<outer {
                for i in 0..<inner {
                    let j = o * inner + i
                    dst[(o * n + indices.data[j]) * inner + i] = g[j]
                }
            }
        }]
    }
}
