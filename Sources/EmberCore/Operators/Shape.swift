/// Differentiable shape operations: reshape, permute, transpose, slice, concatenation, expand,
/// row gathering (index select) and embedding lookup.

/// The same elements in another shape (one dimension may be -1).
public func reshape(_ x: Variable, _ shape: [Int]) throws -> Variable {
    let y = try x.value.reshaped(shape)
    return Variable(y, inputs: [x]) { [inShape = x.shape] dy in [try dy.reshaped(inShape)] }
}

/// Dimensions reordered (PyTorch's `permute`).
public func permute(_ x: Variable, _ axes: [Int]) throws -> Variable {
    let y = try x.value.permuted(axes)
    var inverse = [Int](repeating: 0, count: axes.count)
    for (i, a) in axes.enumerated() { inverse[a < 0 ? a + axes.count : a] = i }
    return Variable(y, inputs: [x]) { dy in [try dy.permuted(inverse)] }
}

/// Two dimensions swapped.
public func transpose(_ x: Variable, _ a: Int = -2, _ b: Int = -1) throws -> Variable {
    let r = x.shape.count
    let i = try Tensor.normalizeAxis(a, shape: x.shape, op: "transpose"), j = try Tensor.normalizeAxis(b, shape: x.shape, op: "transpose")
    var axes = Array(0..<r)
    axes.swapAt(i, j)
    return try permute(x, axes)
}

/// Elements `start, start + step, …` (< end) along `axis`.
public func slice(_ x: Variable, axis: Int, start: Int, end: Int, step: Int = 1) throws -> Variable {
    let a = try Tensor.normalizeAxis(axis, shape: x.shape, op: "slice")
    let y = try x.value.sliced(axis: a, start: start, end: end, step: step)
    let (outer, n, inner) = splitAround(x.shape, a)
    let m = y.shape[a]
    return Variable(y, inputs: [x]) { [shape = x.shape] dy in
        [Tensor.build(shape: shape) { out in
            let dst = out.baseAddress.unsafelyUnwrapped, g = dy.storage.pointer
            dst.initialize(repeating: 0, count: out.count)
            for o in 0..<outer {
                for k in 0..<m {
                    let d = (o * n + start + k * step) * inner, s = (o * m + k) * inner
                    for i in 0..<inner { dst[d + i] = g[s + i] }
                }
            }
        }]
    }
}

/// Tensors joined along `axis`.
public func concat(_ parts: [Variable], axis: Int) throws -> Variable {
    let y = try Tensor.concatenated(parts.map { $0.value }, axis: axis)
    let a = try Tensor.normalizeAxis(axis, rank: y.rank, op: "concat")
    let widths = parts.map { $0.shape[a] }
    return Variable(y, inputs: parts) { dy in
        var start = 0
        var grads: [Tensor?] = []
        for w in widths {
            grads.append(try dy.sliced(axis: a, start: start, end: start + w))
            start += w
        }
        return grads
    }
}

/// The tensor broadcast to `shape`; the gradient sums over the broadcast dimensions.
public func expand(_ x: Variable, to shape: [Int]) throws -> Variable {
    let y = try x.value.expanded(to: shape)
    return Variable(y, inputs: [x]) { [inShape = x.shape] dy in [reduceGradient(dy, toShape: inShape)] }
}

/// Slices of `x` along axis 0 picked by `indices` (PyTorch's `index_select(0, …)` / embedding
/// lookup); the result has shape `indices.shape + x.shape[1...]`. The gradient scatter-adds, so a
/// row picked twice receives both gradients.
public func gatherRows(_ x: Variable, _ indices: IndexTensor) throws -> Variable {
    guard x.shape.count >= 1 else { throw EmberError.invalidArgument("gather_rows", "needs a tensor of rank >= 1") }
    try indices.checkRange(x.shape[0], op: "gather_rows")
    let width = x.shape.dropFirst().reduce(1, *)
    let outShape = indices.shape + Array(x.shape.dropFirst())
    let y = Tensor.build(shape: outShape) { out in
        let src = x.value.storage.pointer, dst = out.baseAddress.unsafelyUnwrapped
        for (r, i) in indices.data.enumerated() { (dst + r * width).update(from: src + i * width, count: width) }
    }
    return Variable(y, inputs: [x]) { [shape = x.shape] dy in
        [Tensor.build(shape: shape) { out in
            let dst = out.baseAddress.unsafelyUnwrapped, g = dy.storage.pointer
            dst.initialize(repeating: 0, count: out.count)
            for (r, i) in indices.data.enumerated() {
                let d = dst + i * width, s = g + r * width
                for j in 0..<width { d[j] += s[j] }
            }
        }]
    }
}

/// Embedding lookup: rows of `weight` [vocabulary, dim] for integer `codes`; output
/// `codes.shape + [dim]`. Backward scatter-adds into the weight's gradient.
public func embedding(_ codes: IndexTensor, weight: Variable) throws -> Variable {
    guard weight.shape.count == 2 else {
        throw EmberError.shapeMismatch("embedding", "expected weight of shape [num_embeddings, dim], got \(shapeString(weight.shape))")
    }
    try codes.checkRange(weight.shape[0], op: "embedding")
    return try gatherRows(weight, codes)
}
