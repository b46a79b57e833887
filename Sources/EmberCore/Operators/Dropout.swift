import CEmberKernels

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
    return Tensor.build(shape: shape) { m in
        guard let base = m.baseAddress else { return }
        fillDropoutMask(base, count: m.count, p: p, rng: &rng)
    }
}

/// Writes `count` dropout mask entries: 1/(1-p) with probability 1-p, else 0, one draw of `rng`
/// per entry, in order. `p` must be in [0, 1). The one mask kernel of the tape's dropout and the
/// compiled training step.
@inline(__always)
public func fillDropoutMask(_ mask: UnsafeMutablePointer<Float>, count: Int, p: Float, rng: inout RandomGenerator) {
    let keep = 1 - p, scale = 1 / keep
    // rng.uniform() < keep, without a branch: uniform() is (next() >> 40) · 2⁻²⁴ exactly and
    // keep · 2²⁴ is exact too, so the test is bits < keep · 2²⁴ on integers (threshold ≤ 2²⁴).
    // A local copy of the generator keeps its state in registers through the loop.
    let threshold = UInt64((Double(keep) * 0x1p24).rounded(.up))
    let scaleBits = scale.bitPattern
    var local = rng
    defer { rng = local }
    for i in 0..<count {
        // All ones when bits < threshold (the difference wraps to a value with its top bit set).
        let keepMask = UInt32(truncatingIfNeeded: 0 &- (((local.next() >> 40) &- threshold) >> 63))
        mask[i] = Float(bitPattern: scaleBits & keepMask)
    }
}

/// `out = x · mask` over `count` elements (the forward and backward of dropout with a given mask).
@inline(__always)
public func applyDropoutMask(_ x: UnsafePointer<Float>, _ mask: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int) {
    cember_binary(Int32(CEMBER_MUL), Int64(count), x, 1, mask, 1, out)
}

/// Multiplies `x` by a given mask (entries 0 or 1/(1-p)); the deterministic core of dropout.
public func dropout(_ x: Variable, mask: Tensor) throws -> Variable {
    guard mask.shape == x.shape else {
        throw EmberError.shapeMismatch("dropout", "mask shape \(shapeString(mask.shape)) differs from input \(shapeString(x.shape))")
    }
    func masked(_ t: Tensor) -> Tensor {
        Tensor.build(shape: t.shape) { out in
            guard let o = out.baseAddress else { return }
            applyDropoutMask(t.unsafeReadPointer, mask.unsafeReadPointer, o, count: out.count)
        }
    }
    return Variable(masked(x.value), inputs: [x]) { dy in
        guard dy.shape == mask.shape else {
            throw EmberError.shapeMismatch("dropout", "gradient shape \(shapeString(dy.shape)) differs from the mask \(shapeString(mask.shape))")
        }
        return [masked(dy)]
    }
}
