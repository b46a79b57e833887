import CEmberKernels
/// Shape manipulation on tensors (no gradients; the differentiable versions in Operators/ use these).
extension Tensor {
    /// Dimensions reordered: result dimension i is input dimension `axes[i]` (PyTorch's `permute`;
    /// negative axes count from the end).
    public func permuted(_ requested: [Int]) throws -> Tensor {
        let axes = requested.map { $0 < 0 ? $0 + rank : $0 }
        guard axes.count == rank, Set(axes) == Set(0..<rank) else {
            throw EmberError.invalidArgument(
                "permute", "axes \(requested) are not a permutation of 0..<\(rank) for shape \(shapeString(shape))")
        }
        if axes == Array(0..<rank) { return self }
        let newShape = axes.map { shape[$0] }
        let inStrides = Tensor.strides(shape)
        let srcStrides = axes.map { inStrides[$0] }
        let r = rank
        return Tensor.build(shape: newShape) { out in
            let src = storage.pointer
            // Fast path: 2-D transpose.
            if r == 2 {
                let rows = newShape[0], cols = newShape[1]
                let s0 = srcStrides[0], s1 = srcStrides[1]
                for i in 0..<rows { for j in 0..<cols { out[i * cols + j] = src[i * s0 + j * s1] } }
                return
            }
            // General case: walk the output in order, reading the source through permuted strides.
            forEachBroadcastIndex(newShape, srcStrides) { o, i in out[o] = src[i] }
        }
    }

    /// Two dimensions swapped (negative axes count from the end).
    public func transposed(_ a: Int = -2, _ b: Int = -1) throws -> Tensor {
        let x = try Tensor.normalizeAxis(a, shape: shape, op: "transpose")
        let y = try Tensor.normalizeAxis(b, shape: shape, op: "transpose")
        var axes = Array(0..<rank)
        axes.swapAt(x, y)
        return try permuted(axes)
    }

    /// Elements `start, start + step, …` (< end) along `axis`.
    public func sliced(axis: Int, start: Int, end: Int, step: Int = 1) throws -> Tensor {
        let a = try Tensor.normalizeAxis(axis, shape: shape, op: "slice")
        let n = shape[a]
        guard step >= 1 else {
            throw EmberError.invalidArgument("slice", "step must be >= 1, got \(step) (axis \(a) of shape \(shapeString(shape)))")
        }
        guard start >= 0, end >= start, end <= n else {
            throw EmberError.invalidArgument("slice", "range \(start)..<\(end) is out of bounds for axis \(a) of shape \(shapeString(shape))")
        }
        let m = (end - start + step - 1) / step
        var newShape = shape
        newShape[a] = m
        let outer = shape[..<a].reduce(1, *), inner = shape[(a + 1)...].reduce(1, *)
        return Tensor.build(shape: newShape) { out in
            let src = storage.pointer
            for o in 0..<outer {
                for k in 0..<m {
                    let s = (o * n + start + k * step) * inner, d = (o * m + k) * inner
                    for i in 0..<inner { out[d + i] = src[s + i] }
                }
            }
        }
    }

    /// Tensors joined along `axis`; all other dimensions must agree.
    public static func concatenated(_ parts: [Tensor], axis: Int) throws -> Tensor {
        guard let first = parts.first else { throw EmberError.invalidArgument("concat", "needs at least one tensor") }
        let a = try normalizeAxis(axis, shape: first.shape, op: "concat")
        var total = 0
        for (k, t) in parts.enumerated() {
            var s1 = t.shape, s0 = first.shape
            guard s1.count == s0.count else {
                throw EmberError.shapeMismatch("concat", "tensor \(k) has shape \(shapeString(t.shape)); expected rank \(first.rank) like \(shapeString(first.shape))")
            }
            s1[a] = 0
            s0[a] = 0
            guard s1 == s0 else {
                throw EmberError.shapeMismatch("concat", "tensor \(k) has shape \(shapeString(t.shape)), which differs from \(shapeString(first.shape)) outside axis \(a)")
            }
            total += t.shape[a]
        }
        var newShape = first.shape
        newShape[a] = total
        let outer = first.shape[..<a].reduce(1, *), inner = first.shape[(a + 1)...].reduce(1, *)
        return Tensor.build(shape: newShape) { out in
            guard let base = out.baseAddress else { return }
            var offset = 0
            for t in parts {
                // Each part a block of columns of the [outer, total · inner] result (a Swift loop
                // per row cost ~5 ns a row for the 8 and 5 columns of a tabular network's inputs).
                let w = t.shape[a] * inner
                if w > 0 && outer > 0 {
                    cember_copy_rows(t.storage.pointer, Int64(w), Int64(outer), Int64(w), nil, nil, base + offset, Int64(total * inner))
                }
                offset += w
            }
        }
    }

    /// The tensor repeated along broadcast dimensions to `target` (NumPy/PyTorch broadcasting).
    public func expanded(to target: [Int]) throws -> Tensor {
        let s = try broadcastShapes(shape, target, op: "expand")
        guard s == target else {
            throw EmberError.shapeMismatch("expand", "cannot expand shape \(shapeString(shape)) to \(shapeString(target))")
        }
        if shape == target { return self }
        let strides = broadcastStrides(shape, to: target)
        return Tensor.build(shape: target) { out in
            forEachBroadcastIndex(target, strides) { o, i in out[o] = storage.pointer[i] }
        }
    }

    /// Rows `indices` of a tensor of rank ≥ 1 (gathers a mini-batch).
    public func gatherRows<C: Collection>(_ indices: C) throws -> Tensor where C.Element == Int {
        guard rank >= 1 else { throw EmberError.invalidArgument("gather_rows", "needs a tensor of rank >= 1") }
        let rows = shape[0]
        let width = rows == 0 ? 0 : count / rows
        var newShape = shape
        newShape[0] = indices.count
        // Prediction batches are ranges: one copy (a generic collection is iterated through its
        // witness tables, which costs more than copying a short row).
        if let range = indices as? Range<Int> {
            guard range.isEmpty || (range.lowerBound >= 0 && range.upperBound <= rows) else {
                let bad = range.lowerBound < 0 ? range.lowerBound : Swift.max(range.lowerBound, rows)
                throw EmberError.invalidArgument("gather_rows", "row index \(bad) out of range 0..<\(rows)")
            }
            return Tensor.build(shape: newShape) { out in
                guard let base = out.baseAddress, !range.isEmpty else { return }
                base.update(from: storage.pointer + range.lowerBound * width, count: range.count * width)
            }
        }
        let list = indices as? [Int] ?? Array(indices)
        for i in list where i < 0 || i >= rows {
            throw EmberError.invalidArgument("gather_rows", "row index \(i) out of range 0..<\(rows)")
        }
        return Tensor.build(shape: newShape) { out in
            guard let base = out.baseAddress else { return }
            var o = 0
            let src = storage.pointer
            for i in list {
                (base + o).update(from: src + i * width, count: width)
                o += width
            }
        }
    }
}

/// The broadcast shape of `a` and `b` (NumPy/PyTorch rules: align from the right; sizes equal or 1).
public func broadcastShapes(_ a: [Int], _ b: [Int], op: String) throws -> [Int] {
    let r = max(a.count, b.count)
    var out = [Int](repeating: 1, count: r)
    for i in 0..<r {
        let da = i < r - a.count ? 1 : a[i - (r - a.count)]
        let db = i < r - b.count ? 1 : b[i - (r - b.count)]
        guard da == db || da == 1 || db == 1 else {
            throw EmberError.shapeMismatch(op, "shapes \(shapeString(a)) and \(shapeString(b)) cannot be broadcast (dimension \(i): \(da) vs \(db))")
        }
        out[i] = da == 1 ? db : da
    }
    return out
}

/// Strides of `shape` read as if broadcast to `target` (0 along broadcast dimensions).
public func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
    let own = Tensor.strides(shape)
    let lead = target.count - shape.count
    return (0..<target.count).map { i in
        i < lead || shape[i - lead] == 1 ? 0 : own[i - lead]
    }
}

/// Calls `body(outputIndex, sourceOffset)` for every element of `target` in row-major order.
@inlinable
func forEachBroadcastIndex(_ target: [Int], _ strides: [Int], _ body: (Int, Int) -> Void) {
    let r = target.count
    let n = target.reduce(1, *)
    if n == 0 { return }
    if r == 0 { body(0, 0); return }
    var index = [Int](repeating: 0, count: r)
    var offset = 0
    let inner = target[r - 1], innerStride = strides[r - 1]
    var o = 0
    while o < n {
        for k in 0..<inner { body(o + k, offset + k * innerStride) }
        o += inner
        var d = r - 2
        while d >= 0 {
            index[d] += 1
            offset += strides[d]
            if index[d] < target[d] { break }
            offset -= strides[d] * target[d]
            index[d] = 0
            d -= 1
        }
    }
}
