/// Matrix products through BLAS: `op(A) · op(B)` for rank-2 operands, and batched over leading
/// dimensions (equal batch shapes, or one operand of rank 2 shared by every batch).

struct MatMulPlan {
    let batchShape: [Int]
    let batches: Int
    let m: Int, n: Int, k: Int
    let aShared: Bool, bShared: Bool

    init(_ a: [Int], _ b: [Int], transA: Bool, transB: Bool) throws {
        guard a.count >= 2, b.count >= 2 else {
            throw EmberError.shapeMismatch("matmul", "expected operands of rank >= 2, got \(shapeString(a)) and \(shapeString(b))")
        }
        let am = transA ? a[a.count - 1] : a[a.count - 2], ak = transA ? a[a.count - 2] : a[a.count - 1]
        let bk = transB ? b[b.count - 1] : b[b.count - 2], bn = transB ? b[b.count - 2] : b[b.count - 1]
        guard ak == bk else {
            throw EmberError.shapeMismatch(
                "matmul", "inner dimensions differ: \(shapeString(a))\(transA ? "ᵀ" : "") · \(shapeString(b))\(transB ? "ᵀ" : "") (\(ak) vs \(bk))")
        }
        let ab = Array(a.dropLast(2)), bb = Array(b.dropLast(2))
        if ab == bb {
            batchShape = ab
            aShared = false
            bShared = false
        } else if bb.isEmpty {
            batchShape = ab
            aShared = false
            bShared = true
        } else if ab.isEmpty {
            batchShape = bb
            aShared = true
            bShared = false
        } else {
            throw EmberError.shapeMismatch(
                "matmul", "batch dimensions \(shapeString(ab)) and \(shapeString(bb)) differ; expected equal ones or a rank-2 operand")
        }
        batches = batchShape.reduce(1, *)
        m = am
        n = bn
        k = ak
    }

    var outputShape: [Int] { batchShape + [m, n] }
}

/// `op(A) · op(B)` (no gradient).
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) throws -> Tensor {
    let plan = try MatMulPlan(a.shape, b.shape, transA: transposeA, transB: transposeB)
    let out = Tensor.build(shape: plan.outputShape) { $0.baseAddress.unsafelyUnwrapped.initialize(repeating: 0, count: $0.count) }
    for t in 0..<plan.batches {
        try BLAS.gemm(transA: transposeA, transB: transposeB, m: plan.m, n: plan.n, k: plan.k,
                      a: a.storage.pointer + (plan.aShared ? 0 : t * plan.m * plan.k),
                      b: b.storage.pointer + (plan.bShared ? 0 : t * plan.k * plan.n),
                      c: out.storage.pointer + t * plan.m * plan.n)
    }
    return out
}

/// `op(A) · op(B)` on the tape.
public func matmul(_ a: Variable, _ b: Variable, transposeA: Bool = false, transposeB: Bool = false) throws -> Variable {
    let plan = try MatMulPlan(a.shape, b.shape, transA: transposeA, transB: transposeB)
    let y = try matmul(a.value, b.value, transposeA: transposeA, transposeB: transposeB)
    return Variable(y, inputs: [a, b]) { [av = a.value, bv = b.value, needA = a.requiresGrad, needB = b.requiresGrad] dy in
        let m = plan.m, n = plan.n, k = plan.k
        var da: Tensor?, db: Tensor?
        if needA {
            let g = Tensor.build(shape: av.shape) { $0.baseAddress.unsafelyUnwrapped.initialize(repeating: 0, count: $0.count) }
            for t in 0..<plan.batches {
                let pdy = dy.storage.pointer + t * m * n
                let pb = bv.storage.pointer + (plan.bShared ? 0 : t * k * n)
                let pg = g.storage.pointer + (plan.aShared ? 0 : t * m * k)
                let beta: Float = plan.aShared ? 1 : 0
                if !transposeA {
                    try BLAS.gemm(transA: false, transB: !transposeB, m: m, n: k, k: n, a: pdy, b: pb, beta: beta, c: pg)
                } else {
                    try BLAS.gemm(transA: transposeB, transB: true, m: k, n: m, k: n, a: pb, b: pdy, beta: beta, c: pg)
                }
            }
            da = g
        }
        if needB {
            let g = Tensor.build(shape: bv.shape) { $0.baseAddress.unsafelyUnwrapped.initialize(repeating: 0, count: $0.count) }
            for t in 0..<plan.batches {
                let pdy = dy.storage.pointer + t * m * n
                let pa = av.storage.pointer + (plan.aShared ? 0 : t * m * k)
                let pg = g.storage.pointer + (plan.bShared ? 0 : t * k * n)
                let beta: Float = plan.bShared ? 1 : 0
                if !transposeB {
                    try BLAS.gemm(transA: !transposeA, transB: false, m: k, n: n, k: m, a: pa, b: pdy, beta: beta, c: pg)
                } else {
                    try BLAS.gemm(transA: true, transB: transposeA, m: n, n: k, k: m, a: pdy, b: pa, beta: beta, c: pg)
                }
            }
            db = g
        }
        return [da, db]
    }
}
