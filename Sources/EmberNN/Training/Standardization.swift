import EmberCore

/// Per-column affine scaling `(x - mean) / scale`, fitted on the training data and stored in the
/// model, so that predictions see exactly the preprocessing training saw.
public struct Standardization: Equatable, Sendable {
    /// Column means (0 for columns left alone).
    public var mean: [Float]
    /// Column standard deviations (1 for columns left alone or constant).
    public var scale: [Float]

    /// The identity scaling for `columns` columns.
    public static func identity(_ columns: Int) -> Standardization {
        Standardization(mean: [Float](repeating: 0, count: columns), scale: [Float](repeating: 1, count: columns))
    }

    /// Fits mean and (sample) standard deviation of the columns of `x` [n, p] where `mask` is true.
    /// A constant column keeps scale 1 so that it maps to 0 rather than to NaN.
    public static func fit(_ x: Tensor, mask: [Bool]) -> Standardization {
        let n = x.shape.first ?? 0
        let p = mask.count
        var result = identity(p)
        guard n > 0 else { return result }
        let values = x.data
        for j in 0..<p where mask[j] {
            var s = 0.0
            for i in 0..<n { s += Double(values[i * p + j]) }
            let m = s / Double(n)
            var ss = 0.0
            for i in 0..<n { let d = Double(values[i * p + j]) - m; ss += d * d }
            let sd = n > 1 ? (ss / Double(n - 1)).squareRoot() : 0
            result.mean[j] = Float(m)
            result.scale[j] = sd > 1e-12 && sd.isFinite ? Float(sd) : 1
        }
        return result
    }

    /// Applies the scaling to the rows of `x` [n, p].
    public func apply(_ x: Tensor) -> Tensor {
        var out = x
        let p = mean.count
        guard p > 0 else { return out }
        out.withUnsafeMutableBufferPointer { d in
            for i in 0..<(d.count / p) {
                for j in 0..<p { d[i * p + j] = (d[i * p + j] - mean[j]) / scale[j] }
            }
        }
        return out
    }
}
