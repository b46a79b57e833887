import CEmberKernels

/// Multi-head scaled dot-product self-attention as one tape op, on the packed query/key/value
/// projection that `in_proj` produces: `qkv` [batch, tokens, 3 · d] holds the queries in columns
/// 0..<d, the keys in d..<2d and the values in 2d..<3d, each split into `heads` heads of width
/// d / heads. For every sample and head,
///
///     weights = softmax(q · kᵀ · scale)      (scale = 1 / √head_dim unless given)
///     out     = dropout(weights) · v
///
/// and the heads are written side by side: the result is [batch, tokens, d], the layout that
/// `out_proj` reads (PyTorch's `nn.MultiheadAttention` before its output projection).
///
/// With `queries` = n, only the last n tokens attend (queries), over all the tokens (keys and
/// values): the result is [batch, n, d], the last n rows of the full result, and the queries of
/// the other tokens get a zero gradient (rtdl's `last_layer_query_idx`: a last block whose CLS
/// token alone is read). The dropout mask is drawn whole all the same, so the random stream and
/// the kept rows are those of the full op.
///
/// The op reads heads in place through the leading dimensions of the products (no slices,
/// permutes or copies), runs one small product per sample and head, spreads the samples × heads
/// over Ember's threads, and keeps only the softmax output (and the dropout mask) for the
/// backward pass. With `dropout` > 0 the mask is drawn from `rng` exactly as
/// `dropoutMask([batch, heads, tokens, tokens], …)` would draw it, so the stream of random
/// numbers matches attention built from separate ops.
///
/// - Parameters:
///   - qkv: the packed projections, [batch, tokens, 3 · d].
///   - heads: number of heads; divides d.
///   - dropout: probability of dropping an attention weight (0 for none; draws nothing then).
///   - scale: multiplies the scores; nil for 1 / √(d / heads).
///   - queries: how many of the last tokens attend; nil for all of them.
///   - rng: the generator of the dropout mask.
/// - Throws: on a shape that is not [batch, tokens, 3 · d] with d divisible by `heads`, a
///   dropout probability outside [0, 1), `queries` outside 1...tokens, or dimensions too large
///   for BLAS.
public func multiHeadSelfAttention(_ qkv: Variable, heads: Int, dropout: Float = 0, scale: Float? = nil,
                                   queries: Int? = nil, rng: inout RandomGenerator) throws -> Variable {
    let s = qkv.shape
    guard s.count == 3, s[2] % 3 == 0, heads >= 1, (s[2] / 3) % heads == 0 else {
        throw EmberError.shapeMismatch(
            "attention", "expected packed projections [batch, tokens, 3·d] with d divisible by \(heads) heads, got \(shapeString(s))")
    }
    guard dropout >= 0 && dropout < 1 else {
        throw EmberError.invalidArgument("attention", "dropout must be in [0, 1), got \(dropout)")
    }
    let batch = s[0], t = s[1], d = s[2] / 3, dh = d / heads, ld = 3 * d
    if let queries, queries < 1 || queries > max(t, 1) {
        throw EmberError.invalidArgument("attention", "queries must be in 1...\(max(t, 1)) (the tokens), got \(queries)")
    }
    // nq query rows, the last ones: rows skipped..<t of the tokens.
    let nq = min(queries ?? t, t), skipped = t - nq
    let alpha = scale ?? 1 / Float(dh).squareRoot()
    let pairs = batch * heads
    guard pairs > 0, t > 0, dh > 0 else {
        // Nothing to attend over: zeros of the output shape, zero gradient.
        let y = try Tensor.zeros([batch, nq, d])
        return Variable(y, inputs: [qkv]) { _ in [try Tensor.zeros(s)] }
    }
    // Every product below: T×T·dh, T×dh·T or smaller (nq ≤ T rows or inner dimension, the same
    // leading dimensions); all strides checked once here.
    try BLAS.checkStrided(transA: false, transB: true, m: t, n: t, k: dh, lda: ld, ldb: ld, ldc: t)
    try BLAS.checkStrided(transA: false, transB: false, m: t, n: dh, k: t, lda: t, ldb: ld, ldc: ld)
    _ = try Tensor.elementCount([pairs, t, t], op: "attention")
    let mask = dropout > 0 ? try dropoutMask([batch, heads, t, t], p: dropout, rng: &rng) : nil
    let x = qkv.value
    let weights = Tensor.build(shape: [batch, heads, nq, t]) { _ in }  // softmax(q·kᵀ·scale), per pair
    let y = Tensor.build(shape: [batch, nq, d]) { _ in }
    // Threads only when each small product runs single-threaded (Ember's kernels, or OpenBLAS at
    // one thread): OpenBLAS's own threads must not nest inside Ember's.
    let work = nq * t * dh * 2
    let chunk = BLAS.kernels == .ember || BLAS.numThreads == 1 ? max(1, (1 << 18) / max(work, 1)) : pairs
    let px = x.storage.pointer, pw = weights.storage.pointer, py = y.storage.pointer
    let pm = mask?.storage.pointer
    Parallel.forRange(pairs, minChunk: chunk) { first, end in
        let dropped = pm == nil ? nil : UnsafeMutablePointer<Float>.allocate(capacity: nq * t)
        defer { dropped?.deallocate() }
        for pair in first..<end {
            let b = pair / heads, h = pair % heads
            let q = px + b * t * ld + h * dh, k = q + d, v = q + 2 * d
            let w = pw + pair * nq * t
            BLAS.gemmStridedUnchecked(transA: false, transB: true, m: nq, n: t, k: dh, alpha: alpha,
                                      a: q + skipped * ld, lda: ld, b: k, ldb: ld, c: w, ldc: t)
            cember_softmax_rows(w, Int64(nq), Int64(t))
            var used = UnsafePointer(w)
            if let pm, let dropped {
                let m = pm + pair * t * t + skipped * t
                for i in 0..<(nq * t) { dropped[i] = w[i] * m[i] }
                used = UnsafePointer(dropped)
            }
            BLAS.gemmStridedUnchecked(transA: false, transB: false, m: nq, n: dh, k: t,
                                      a: used, lda: t, b: v, ldb: ld, c: py + b * nq * d + h * dh, ldc: d)
        }
    }
    return Variable(y, inputs: [qkv]) { [x, weights, mask] dy in
        // The queries of skipped rows get no gradient: zeros where no product writes.
        let g = skipped > 0 ? try Tensor.zeros(s) : Tensor.build(shape: s) { _ in }
        let px = x.storage.pointer, pw = weights.storage.pointer, pm = mask?.storage.pointer
        let pdy = dy.storage.pointer, pg = g.storage.pointer
        Parallel.forRange(pairs, minChunk: chunk) { first, end in
            let dw = UnsafeMutablePointer<Float>.allocate(capacity: nq * t)
            let dropped = pm == nil ? nil : UnsafeMutablePointer<Float>.allocate(capacity: nq * t)
            defer {
                dw.deallocate()
                dropped?.deallocate()
            }
            for pair in first..<end {
                let b = pair / heads, h = pair % heads
                let q = px + b * t * ld + h * dh, k = q + d, v = q + 2 * d
                let gq = pg + b * t * ld + h * dh, gk = gq + d, gv = gq + 2 * d
                let w = pw + pair * nq * t, o = pdy + b * nq * d + h * dh
                let m = pm.map { $0 + pair * t * t + skipped * t }
                // d(dropped weights) = dout · vᵀ; dv = dropped weightsᵀ · dout.
                BLAS.gemmStridedUnchecked(transA: false, transB: true, m: nq, n: t, k: dh,
                                          a: o, lda: d, b: v, ldb: ld, c: dw, ldc: t)
                var used = UnsafePointer(w)
                if let m, let dropped {
                    for i in 0..<(nq * t) { dropped[i] = w[i] * m[i] }
                    used = UnsafePointer(dropped)
                    for i in 0..<(nq * t) { dw[i] *= m[i] }
                }
                BLAS.gemmStridedUnchecked(transA: true, transB: false, m: t, n: dh, k: nq,
                                          a: used, lda: t, b: o, ldb: d, c: gv, ldc: ld)
                // Softmax backward, row by row: ds = w · (dw - Σ dw·w).
                cember_softmax_backward_rows(w, dw, Int64(nq), Int64(t))
                // dq = scale · ds · k; dk = scale · dsᵀ · q (the query rows only).
                BLAS.gemmStridedUnchecked(transA: false, transB: false, m: nq, n: dh, k: t, alpha: alpha,
                                          a: dw, lda: t, b: k, ldb: ld, c: gq + skipped * ld, ldc: ld)
                BLAS.gemmStridedUnchecked(transA: true, transB: false, m: t, n: dh, k: nq, alpha: alpha,
                                          a: dw, lda: t, b: q + skipped * ld, ldb: ld, c: gk, ldc: ld)
            }
        }
        return [g]
    }
}

