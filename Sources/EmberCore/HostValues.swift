import CEmberKernels

/// The index of the first of `count` values at `x` that is NaN or infinite, nil when all are finite
/// (one vectorised pass; the host's doubles are checked with it as they enter the engine).
public func firstNonFinite(_ x: UnsafePointer<Double>, count: Int) -> Int? {
    let i = Int(cember_first_nonfinite_double(x, Int64(count)))
    return i >= 0 ? i : nil
}

/// The index of the first of `count` floats at `x` that is NaN or infinite, nil when all are finite.
public func firstNonFinite(_ x: UnsafePointer<Float>, count: Int) -> Int? {
    let i = Int(cember_first_nonfinite(x, Int64(count)))
    return i >= 0 ? i : nil
}

/// Rows `first..<first + rows` of the double columns at `columns` (each `columns[c][r]`) written
/// row-major as floats into `dst`, which holds the whole [n, columns.count] matrix: `dst[r · columns.count
/// + c] = Float(columns[c][r])` (vectorised, with in-register transposes where the CPU has AVX2).
public func convertColumnsToRows(_ columns: [UnsafePointer<Double>?], first: Int, rows: Int, into dst: UnsafeMutablePointer<Float>) {
    cember_columns_to_rows(columns, Int64(columns.count), Int64(first), Int64(rows), dst)
}
