/// Affine map `y = x · Wᵀ + b` for `x` of shape [..., in], `W` of shape [out, in], `b` of shape [out].
///
/// Forward and backward are GEMMs through BLAS over the flattened leading dimensions:
/// dx = dy · W, dW = dyᵀ · x, db = Σ_rows dy.
public func linear(_ x: Variable, weight: Variable, bias: Variable?) throws -> Variable {
    let xs = x.shape, ws = weight.shape
    guard xs.count >= 1 else {
        throw EmberError.shapeMismatch("linear", "expected input of rank >= 1 [..., features], got \(shapeString(xs))")
    }
    guard ws.count == 2 else {
        throw EmberError.shapeMismatch("linear", "expected weight of rank 2 [out, in], got \(shapeString(ws))")
    }
    guard xs[xs.count - 1] == ws[1] else {
        throw EmberError.shapeMismatch(
            "linear", "expected input with \(ws[1]) features, got \(xs[xs.count - 1]) (input \(shapeString(xs)), weight \(shapeString(ws)))")
    }
    if let bias {
        guard bias.shape == [ws[0]] else {
            throw EmberError.shapeMismatch("linear", "expected bias of shape [\(ws[0])], got \(shapeString(bias.shape))")
        }
    }
    let inF = ws[1], outF = ws[0]
    let n = inF == 0 ? 0 : x.value.count / inF
    let outShape = Array(xs.dropLast()) + [outF]
    let result = try Tensor.build(shape: outShape) { out in
        let po = out.baseAddress.unsafelyUnwrapped
        if let bias {
            let b = bias.value.storage.pointer
            for r in 0..<n { (po + r * outF).update(from: b, count: outF) }
        }
        try BLAS.gemm(transA: false, transB: true, m: n, n: outF, k: inF,
                      a: x.value.storage.pointer, b: weight.value.storage.pointer, beta: bias == nil ? 0 : 1, c: po)
    }
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    return Variable(result, inputs: inputs) { [xv = x.value, wv = weight.value, needX = x.requiresGrad,
                                                needW = weight.requiresGrad, hasBias = bias != nil] dy in
        var grads: [Tensor?] = [nil, nil]
        if needX {
            grads[0] = try Tensor.build(shape: xv.shape) { d in
                try BLAS.gemm(transA: false, transB: false, m: n, n: inF, k: outF,
                              a: dy.storage.pointer, b: wv.storage.pointer, c: d.baseAddress.unsafelyUnwrapped)
            }
        }
        if needW {
            grads[1] = try Tensor.build(shape: [outF, inF]) { d in
                try BLAS.gemm(transA: true, transB: false, m: outF, n: inF, k: n,
                              a: dy.storage.pointer, b: xv.storage.pointer, c: d.baseAddress.unsafelyUnwrapped)
            }
        }
        if hasBias {
            grads.append(Tensor.build(shape: [outF]) { db in
                let g = dy.storage.pointer, dst = db.baseAddress.unsafelyUnwrapped
                dst.initialize(repeating: 0, count: outF)
                for r in 0..<n {
                    let row = g + r * outF
                    for j in 0..<outF { dst[j] += row[j] }
                }
            })
        }
        return grads
    }
}
