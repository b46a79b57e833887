/// Affine map `y = x · Wᵀ + b` for `x` of shape [n, in], `W` of shape [out, in], `b` of shape [out].
///
/// Forward and backward are three GEMMs through BLAS: dx = dy · W, dW = dyᵀ · x, db = Σ_rows dy.
public func linear(_ x: Variable, weight: Variable, bias: Variable?) throws -> Variable {
    let xs = x.shape, ws = weight.shape
    guard xs.count == 2 else {
        throw EmberError.shapeMismatch("linear", "expected input of rank 2 [batch, features], got \(shapeString(xs))")
    }
    guard ws.count == 2 else {
        throw EmberError.shapeMismatch("linear", "expected weight of rank 2 [out, in], got \(shapeString(ws))")
    }
    guard xs[1] == ws[1] else {
        throw EmberError.shapeMismatch(
            "linear", "expected input with \(ws[1]) features, got \(xs[1]) (input \(shapeString(xs)), weight \(shapeString(ws)))")
    }
    if let bias {
        guard bias.shape == [ws[0]] else {
            throw EmberError.shapeMismatch("linear", "expected bias of shape [\(ws[0])], got \(shapeString(bias.shape))")
        }
    }
    let n = xs[0], inF = ws[1], outF = ws[0]
    var out = [Float](repeating: 0, count: n * outF)
    if let bias {
        bias.value.data.withUnsafeBufferPointer { b in
            for r in 0..<n { for j in 0..<outF { out[r * outF + j] = b[j] } }
        }
    }
    try x.value.data.withUnsafeBufferPointer { px in
        try weight.value.data.withUnsafeBufferPointer { pw in
            try out.withUnsafeMutableBufferPointer { po in
                try BLAS.gemm(transA: false, transB: true, m: n, n: outF, k: inF,
                              a: px.baseAddress!, b: pw.baseAddress!, beta: bias == nil ? 0 : 1, c: po.baseAddress!)
            }
        }
    }
    let result = Tensor(uncheckedShape: [n, outF], data: out)
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    return Variable(result, inputs: inputs) { [xv = x.value, wv = weight.value, needX = x.requiresGrad,
                                                needW = weight.requiresGrad] dy in
        var dx: Tensor?
        var dw: Tensor?
        if needX {
            var d = [Float](repeating: 0, count: n * inF)
            try dy.data.withUnsafeBufferPointer { pdy in
                try wv.data.withUnsafeBufferPointer { pw in
                    try d.withUnsafeMutableBufferPointer { pd in
                        try BLAS.gemm(transA: false, transB: false, m: n, n: inF, k: outF,
                                      a: pdy.baseAddress!, b: pw.baseAddress!, c: pd.baseAddress!)
                    }
                }
            }
            dx = Tensor(uncheckedShape: [n, inF], data: d)
        }
        if needW {
            var d = [Float](repeating: 0, count: outF * inF)
            try dy.data.withUnsafeBufferPointer { pdy in
                try xv.data.withUnsafeBufferPointer { px in
                    try d.withUnsafeMutableBufferPointer { pd in
                        try BLAS.gemm(transA: true, transB: false, m: outF, n: inF, k: n,
                                      a: pdy.baseAddress!, b: px.baseAddress!, c: pd.baseAddress!)
                    }
                }
            }
            dw = Tensor(uncheckedShape: [outF, inF], data: d)
        }
        if inputs.count == 3 {
            var db = [Float](repeating: 0, count: outF)
            dy.data.withUnsafeBufferPointer { pdy in
                for r in 0..<n { for j in 0..<outF { db[j] += pdy[r * outF + j] } }
            }
            return [dx, dw, Tensor(uncheckedShape: [outF], data: db)]
        }
        return [dx, dw]
    }
}
