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
    let batch = s[0], t = s[1], d = s[2] / 3, ld = 3 * d
    if let queries, queries < 1 || queries > max(t, 1) {
        throw EmberError.invalidArgument("attention", "queries must be in 1...\(max(t, 1)) (the tokens), got \(queries)")
    }
    // nq query rows, the last ones: rows skipped..<t of the tokens.
    let nq = min(queries ?? t, t), skipped = t - nq
    let layout = AttentionLayout(batch: batch, heads: heads, t: t, nq: nq, d: d, qSample: t * ld, ldq: ld,
                                 kvSample: t * ld, ldkv: ld, alpha: scale)
    guard layout.pairs > 0, t > 0, layout.dh > 0 else {
        // Nothing to attend over: zeros of the output shape, zero gradient.
        let y = try Tensor.zeros([batch, nq, d])
        return Variable(y, inputs: [qkv]) { _ in [try Tensor.zeros(s)] }
    }
    let (y, weights, mask) = try layout.forward(q: qkv.value, qOffset: skipped * ld, kv: qkv.value, kvOffset: d,
                                                dropout: dropout, rng: &rng)
    return Variable(y, inputs: [qkv]) { [x = qkv.value] dy in
        // The queries of skipped rows get no gradient: zeros where no product writes.
        let g = skipped > 0 ? try Tensor.zeros(s) : Tensor.build(shape: s) { _ in }
        layout.backward(dy, q: x, qOffset: skipped * ld, kv: x, kvOffset: d, weights: weights, mask: mask,
                        gq: g.storage.pointer + skipped * ld, gkv: g.storage.pointer + d)
        return [g]
    }
}

/// Multi-head attention of the last n tokens over all the tokens, with the queries projected
/// apart from the keys and values: `q` [batch, n, d] holds the queries of the last n tokens and
/// `kv` [batch, tokens, 2 · d] the keys (columns 0..<d) and values (d..<2d) of every token, each
/// split into `heads` heads. The result [batch, n, d], its gradients and its draws from `rng` are
/// those of `multiHeadSelfAttention(_:heads:dropout:scale:queries:rng:)` with `queries` n on the
/// packed projections: a last transformer block whose CLS token alone is read need not project
/// the queries of the other tokens.
///
/// - Throws: on shapes other than [batch, n, d] and [batch, tokens, 2 · d] with 1 ≤ n ≤ tokens
///   and d divisible by `heads`, a dropout probability outside [0, 1), or dimensions too large
///   for BLAS.
public func multiHeadAttention(lastQueries q: Variable, keysValues kv: Variable, heads: Int, dropout: Float = 0,
                               scale: Float? = nil, rng: inout RandomGenerator) throws -> Variable {
    let qs = q.shape, ks = kv.shape
    guard qs.count == 3, ks.count == 3, qs[0] == ks[0], heads >= 1, ks[2] == 2 * qs[2], qs[2] % heads == 0,
          qs[1] >= 1, qs[1] <= ks[1] else {
        throw EmberError.shapeMismatch(
            "attention", "expected queries [batch, n, d] and keys/values [batch, tokens, 2·d] with 1 <= n <= tokens and d divisible by \(heads) heads, got \(shapeString(qs)) and \(shapeString(ks))")
    }
    guard dropout >= 0 && dropout < 1 else {
        throw EmberError.invalidArgument("attention", "dropout must be in [0, 1), got \(dropout)")
    }
    let batch = qs[0], nq = qs[1], d = qs[2], t = ks[1]
    let layout = AttentionLayout(batch: batch, heads: heads, t: t, nq: nq, d: d, qSample: nq * d, ldq: d,
                                 kvSample: t * 2 * d, ldkv: 2 * d, alpha: scale)
    guard layout.pairs > 0, layout.dh > 0 else {
        let y = try Tensor.zeros([batch, nq, d])
        return Variable(y, inputs: [q, kv]) { _ in [try Tensor.zeros(qs), try Tensor.zeros(ks)] }
    }
    let (y, weights, mask) = try layout.forward(q: q.value, qOffset: 0, kv: kv.value, kvOffset: 0, dropout: dropout, rng: &rng)
    return Variable(y, inputs: [q, kv]) { [qv = q.value, kvv = kv.value] dy in
        let gq = Tensor.build(shape: qs) { _ in }, gkv = Tensor.build(shape: ks) { _ in }
        layout.backward(dy, q: qv, qOffset: 0, kv: kvv, kvOffset: 0, weights: weights, mask: mask,
                        gq: gq.storage.pointer, gkv: gkv.storage.pointer)
        return [gq, gkv]
    }
}

/// The sizes and the memory layout of one attention call. For sample b and head h, the `nq`
/// queries are rows `ldq` apart from `q + b · qSample + h · dh` (their gradients laid out the
/// same), the `t` keys rows `ldkv` apart from `kv + b · kvSample + h · dh`, the values `d` floats
/// after the keys; the queries are the last nq of the t tokens (the rows of the dropout mask
/// [batch, heads, t, t] that apply).
private struct AttentionLayout {
    let batch, heads, t, nq, d, dh: Int
    let qSample, ldq, kvSample, ldkv: Int
    let alpha: Float

    init(batch: Int, heads: Int, t: Int, nq: Int, d: Int, qSample: Int, ldq: Int, kvSample: Int, ldkv: Int, alpha: Float?) {
        (self.batch, self.heads, self.t, self.nq, self.d, dh) = (batch, heads, t, nq, d, d / heads)
        (self.qSample, self.ldq, self.kvSample, self.ldkv) = (qSample, ldq, kvSample, ldkv)
        self.alpha = alpha ?? 1 / Float(d / heads).squareRoot()
    }

    var pairs: Int { batch * heads }

    /// Samples × heads per thread: threads only when each small product runs single-threaded
    /// (Ember's kernels, or OpenBLAS at one thread): OpenBLAS's own threads must not nest inside Ember's.
    var chunk: Int {
        let work = nq * t * dh * 2
        return BLAS.kernels == .ember || BLAS.numThreads == 1 ? max(1, (1 << 18) / max(work, 1)) : pairs
    }

    /// The attention output [batch, nq, d], the softmax weights [batch, heads, nq, t] and the
    /// dropout mask (drawn whole, [batch, heads, t, t]) for the backward pass.
    func forward(q: Tensor, qOffset: Int, kv: Tensor, kvOffset: Int, dropout: Float,
                 rng: inout RandomGenerator) throws -> (Tensor, Tensor, Tensor?) {
        // Every product: at most T×T·dh or T×dh·T, leading dimensions at most ld; checked once here.
        let ld = max(ldq, ldkv, d)
        try BLAS.checkStrided(transA: false, transB: true, m: t, n: t, k: dh, lda: ld, ldb: ld, ldc: t)
        try BLAS.checkStrided(transA: false, transB: false, m: t, n: dh, k: t, lda: t, ldb: ld, ldc: ld)
        _ = try Tensor.elementCount([pairs, t, t], op: "attention")
        let mask = dropout > 0 ? try dropoutMask([batch, heads, t, t], p: dropout, rng: &rng) : nil
        let weights = Tensor.build(shape: [batch, heads, nq, t]) { _ in }  // softmax(q·kᵀ·scale), per pair
        let y = Tensor.build(shape: [batch, nq, d]) { _ in }
        let pq = q.unsafeReadPointer + qOffset, pkv = kv.unsafeReadPointer + kvOffset
        let pw = weights.storage.pointer, py = y.storage.pointer, pm = mask?.unsafeReadPointer
        let skipped = t - nq
        withExtendedLifetime((q, kv)) {
            Parallel.forRange(pairs, minChunk: chunk) { first, end in
                let dropped = pm == nil ? nil : UnsafeMutablePointer<Float>.allocate(capacity: nq * t)
                defer { dropped?.deallocate() }
                for pair in first..<end {
                    let b = pair / heads, h = pair % heads
                    let qr = pq + b * qSample + h * dh, k = pkv + b * kvSample + h * dh, v = k + d
                    let w = pw + pair * nq * t
                    BLAS.gemmStridedUnchecked(transA: false, transB: true, m: nq, n: t, k: dh, alpha: alpha,
                                              a: qr, lda: ldq, b: k, ldb: ldkv, c: w, ldc: t)
                    cember_softmax_rows(w, Int64(nq), Int64(t))
                    var used = UnsafePointer(w)
                    if let pm, let dropped {
                        let m = pm + pair * t * t + skipped * t
                        for i in 0..<(nq * t) { dropped[i] = w[i] * m[i] }
                        used = UnsafePointer(dropped)
                    }
                    BLAS.gemmStridedUnchecked(transA: false, transB: false, m: nq, n: dh, k: t,
                                              a: used, lda: t, b: v, ldb: ldkv, c: py + b * nq * d + h * dh, ldc: d)
                }
            }
        }
        return (y, weights, mask)
    }

    /// Writes the gradients of the queries (at `gq`, laid out as the queries) and of the keys and
    /// values (at `gkv`, laid out as they are) for the output gradient `dy` [batch, nq, d].
    func backward(_ dy: Tensor, q: Tensor, qOffset: Int, kv: Tensor, kvOffset: Int, weights: Tensor, mask: Tensor?,
                  gq: UnsafeMutablePointer<Float>, gkv: UnsafeMutablePointer<Float>) {
        let pq = q.unsafeReadPointer + qOffset, pkv = kv.unsafeReadPointer + kvOffset
        let pw = weights.unsafeReadPointer, pm = mask?.unsafeReadPointer, pdy = dy.unsafeReadPointer
        let skipped = t - nq
        withExtendedLifetime((q, kv, weights, mask, dy)) {
            Parallel.forRange(pairs, minChunk: chunk) { first, end in
                let dw = UnsafeMutablePointer<Float>.allocate(capacity: nq * t)
                let dropped = pm == nil ? nil : UnsafeMutablePointer<Float>.allocate(capacity: nq * t)
                defer {
                    dw.deallocate()
                    dropped?.deallocate()
                }
                for pair in first..<end {
                    let b = pair / heads, h = pair % heads
                    let qr = pq + b * qSample + h * dh, k = pkv + b * kvSample + h * dh, v = k + d
                    let gqr = gq + b * qSample + h * dh, gk = gkv + b * kvSample + h * dh, gv = gk + d
                    let w = pw + pair * nq * t, o = pdy + b * nq * d + h * dh
                    let m = pm.map { $0 + pair * t * t + skipped * t }
                    // d(dropped weights) = dout · vᵀ; dv = dropped weightsᵀ · dout.
                    BLAS.gemmStridedUnchecked(transA: false, transB: true, m: nq, n: t, k: dh,
                                              a: o, lda: d, b: v, ldb: ldkv, c: dw, ldc: t)
                    var used = w
                    if let m, let dropped {
                        for i in 0..<(nq * t) { dropped[i] = w[i] * m[i] }
                        used = UnsafePointer(dropped)
                        for i in 0..<(nq * t) { dw[i] *= m[i] }
                    }
                    BLAS.gemmStridedUnchecked(transA: true, transB: false, m: t, n: dh, k: nq,
                                              a: used, lda: t, b: o, ldb: d, c: gv, ldc: ldkv)
                    // Softmax backward, row by row: ds = w · (dw - Σ dw·w).
                    cember_softmax_backward_rows(w, dw, Int64(nq), Int64(t))
                    // dq = scale · ds · k; dk = scale · dsᵀ · q.
                    BLAS.gemmStridedUnchecked(transA: false, transB: false, m: nq, n: dh, k: t, alpha: alpha,
                                              a: dw, lda: t, b: k, ldb: ldkv, c: gqr, ldc: ldq)
                    BLAS.gemmStridedUnchecked(transA: true, transB: false, m: t, n: dh, k: nq, alpha: alpha,
                                              a: dw, lda: t, b: qr, ldb: ldq, c: gk, ldc: ldkv)
                }
            }
        }
    }
}
