/// Mean of all elements, a rank-0 tensor. Accumulates in Double, so large tensors lose nothing.
public func mean(_ x: Variable) throws -> Variable {
    let n = x.value.count
    guard n > 0 else { throw EmberError.invalidArgument("mean", "needs at least one element, got shape \(shapeString(x.shape))") }
    var s = 0.0
    for v in x.value.data { s += Double(v) }
    let shape = x.shape
    return Variable(.scalar(Float(s / Double(n))), inputs: [x]) { dy in
        let g = dy.data[0] / Float(n)
        return [Tensor(uncheckedShape: shape, data: [Float](repeating: g, count: n))]
    }
}
