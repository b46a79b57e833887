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
    // rng.uniform() < keep, without a branch: uniform() is (next() >> 40) · 2⁻²⁴ exactly and
    // keep · 2²⁴ is exact too, so the test is bits < keep · 2²⁴ on integers (threshold ≤ 2²⁴).
    // A local copy of the generator keeps its state in registers through the loop.
    let threshold = UInt64((Double(keep) * 0x1p24).rounded(.up))
    let scaleBits = scale.bitPattern
    var local = rng
    defer { rng = local }
    return Tensor.build(shape: shape) { m in
        guard let p = m.baseAddress else { return }
        for i in 0..<m.count {
            // All ones when bits < threshold (the difference wraps to a value with its top bit set).
            let keepMask = UInt32(truncatingIfNeeded: 0 &- (((local.next() >> 40) &- threshold) >> 63))
            p[i] = Float(bitPattern: scaleBits & keepMask)
        }
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
