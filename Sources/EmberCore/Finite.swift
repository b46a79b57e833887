import CEmberKernels

/// The index of the first of `count` values at `x` that is NaN or infinite, nil when all are finite
/// (one vectorised pass; the host's doubles are checked so as they enter the engine).
public func firstNonFinite(_ x: UnsafePointer<Double>, count: Int) -> Int? {
    let i = Int(cember_first_nonfinite_double(x, Int64(count)))
    return i >= 0 ? i : nil
}

/// The index of the first of `count` floats at `x` that is NaN or infinite, nil when all are finite.
public func firstNonFinite(_ x: UnsafePointer<Float>, count: Int) -> Int? {
    let i = Int(cember_first_nonfinite(x, Int64(count)))
    return i >= 0 ? i : nil
}
