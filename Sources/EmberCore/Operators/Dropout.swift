/// Inverted dropout: in training, zeroes each element with probability `p` and scales the rest
/// by 1/(1-p), so evaluation needs no rescaling; the identity when `p == 0`.
///
/// The mask comes from the engine RNG; PyTorch's RNG cannot be matched, so tests inject masks
/// through `dropout(_:mask:)` and check rates statistically.
public func dropout(_ x: Variable, p: Float, rng: inout RandomGenerator) throws -> Variable {
    if p == 0 { return x }  // the identity; draws nothing from the RNG
    return try dropout(x, mask: dropoutMask(x.shape, p: p, rng: &rng))
}

/// A dropout mask: 1/(1-p) with probability 1-p, else 0.
public func dropoutMask(_ shape: [Int], p: Float, rng: inout RandomGenerator) throws -> Tensor {
    guard p >= 0 && p < 1 else {
        throw EmberError.invalidArgument("dropout", "p must be in [0, 1), got \(p)")
    }
    _ = try Tensor.elementCount(shape, op: "dropout")
    let keep = 1 - p, scale = 1 / keep
    return Tensor.build(shape: shape) { m in
        for i in 0..<m.count { m[i] = rng.uniform() < keep ? scale : 0 }
    }
}

/// Multiplies `x` by a given mask (entries 0 or 1/(1-p)); the deterministic core of dropout.
public func dropout(_ x: Variable, mask: Tensor) throws -> Variable {
    guard mask.shape == x.shape else {
        throw EmberError.shapeMismatch("dropout", "mask shape \(shapeString(mask.shape)) differs from input \(shapeString(x.shape))")
    }
    let y = try BinaryFunction.mul.apply(x.value, mask)
    return Variable(y, inputs: [x]) { dy in [try BinaryFunction.mul.apply(dy, mask)] }
}
