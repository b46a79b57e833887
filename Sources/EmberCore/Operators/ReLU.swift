/// Rectified linear unit, `max(x, 0)`, elementwise.
///
/// NOTE: the gradient at exactly 0 is 0, as in PyTorch.
public func relu(_ x: Variable) -> Variable {
    let xv = x.value
    var out = xv.data
    for i in 0..<out.count where !(out[i] > 0) { out[i] = 0 }
    let result = Tensor(uncheckedShape: xv.shape, data: out)
    return Variable(result, inputs: [x]) { [y = out] dy in
        var dx = dy.data
        for i in 0..<dx.count where !(y[i] > 0) { dx[i] = 0 }
        return [Tensor(uncheckedShape: dy.shape, data: dx)]
    }
}
