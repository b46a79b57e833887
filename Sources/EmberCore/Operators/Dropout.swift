/// Inverted dropout: in training, zeroes each element with probability `p` and scales the rest
/// by 1/(1-p), so evaluation needs no rescaling; the identity when `p == 0`.
///
/// The mask comes from the engine RNG; PyTorch's RNG cannot be matched, so tests inject masks
/// through `dropout(_:mask:)` and check rates statistically.
public func dropout(_ x: Variable, p: Float, rng: inout RandomGenerator) throws -> Variable {
    guard p >= 0 && p < 1 else {
        throw EmberError.invalidArgument("dropout", "p must be in [0, 1), got \(p)")
    }
    if p == 0 { return x }
    let keep = 1 - p
    let scale = 1 / keep
    var mask = [Float](repeating: 0, count: x.value.count)
    for i in 0..<mask.count where rng.uniform() < keep { mask[i] = scale }
    return try dropout(x, mask: Tensor(uncheckedShape: x.shape, data: mask))
}

/// Multiplies `x` by a given mask (entries 0 or 1/(1-p)); the deterministic core of dropout.
public func dropout(_ x: Variable, mask: Tensor) throws -> Variable {
    guard mask.shape == x.shape else {
        throw EmberError.shapeMismatch("dropout", "mask shape \(shapeString(mask.shape)) differs from input \(shapeString(x.shape))")
    }
    var out = x.value.data
    for i in 0..<out.count { out[i] *= mask.data[i] }
    return Variable(Tensor(uncheckedShape: x.shape, data: out), inputs: [x]) { dy in
        var dx = dy.data
        for i in 0..<dx.count { dx[i] *= mask.data[i] }
        return [Tensor(uncheckedShape: dy.shape, data: dx)]
    }
}
