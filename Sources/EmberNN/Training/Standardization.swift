import CEmberKernels
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
    ///
    /// Reads `x` in place, row by row (no copy of the data: Fashion-MNIST's training set is
    /// 188 MB), and not at all when no column is standardised.
    public static func fit(_ x: Tensor, mask: [Bool]) -> Standardization {
        let n = x.shape.first ?? 0
        let p = mask.count
        var result = identity(p)
        let columns = (0..<p).filter { mask[$0] }
        guard n > 0, !columns.isEmpty, x.count >= n * p else { return result }
        let values = x.unsafeReadPointer
        // Two passes in row order; each column's sums run over the rows in order, as one loop per
        // column would.
        var sums = [Double](repeating: 0, count: p)
        for i in 0..<n {
            let row = values + i * p
            for j in columns { sums[j] += Double(row[j]) }
        }
        let means = sums.map { $0 / Double(n) }
        var squares = [Double](repeating: 0, count: p)
        for i in 0..<n {
            let row = values + i * p
            for j in columns {
                let d = Double(row[j]) - means[j]
                squares[j] += d * d
            }
        }
        for j in columns {
            let sd = n > 1 ? (squares[j] / Double(n - 1)).squareRoot() : 0
            result.mean[j] = Float(means[j])
            result.scale[j] = sd > 1e-12 && sd.isFinite ? Float(sd) : 1
        }
        return result
    }

    /// Whether the scaling leaves every column as it is.
    public var isIdentity: Bool { mean.allSatisfy { $0 == 0 } && scale.allSatisfy { $0 == 1 } }

    /// Applies the scaling to the rows of `x` [n, p].
    public func apply(_ x: Tensor) -> Tensor {
        var out = x
        let p = mean.count
        guard p > 0, !isIdentity else { return out }
        out.withUnsafeMutableBufferPointer { d in
            guard let base = d.baseAddress else { return }
            apply(rows: base, count: d.count / p)
        }
        return out
    }

    /// Rows `rows` of `x` [n, p] (or [n, …] of p values a row) scaled as they are copied: one
    /// pass instead of a copy of the rows and a pass over the copy (prediction batches, which are
    /// ranges). The same bits as `apply(x.gatherRows(rows))`.
    public func apply(_ x: Tensor, rows: Range<Int>) throws -> Tensor {
        let p = mean.count
        guard p > 0, !isIdentity else { return try x.gatherRows(rows) }
        guard x.rank >= 2, x.shape.dropFirst().reduce(1, *) == p else {
            throw EmberError.shapeMismatch("standardize", "expected rows of \(p) values, got shape \(shapeString(x.shape))")
        }
        guard rows.isEmpty || (rows.lowerBound >= 0 && rows.upperBound <= x.shape[0]) else {
            throw EmberError.invalidArgument("standardize", "rows \(rows) out of range 0..<\(x.shape[0])")
        }
        let source = x.unsafeReadPointer + (rows.isEmpty ? 0 : rows.lowerBound * p)
        return Tensor.build(shape: [rows.count] + x.shape.dropFirst()) { out in
            guard let d = out.baseAddress, !rows.isEmpty else { return }
            mean.withUnsafeBufferPointer { m in
                scale.withUnsafeBufferPointer { s in
                    cember_copy_rows(source, Int64(p), Int64(rows.count), Int64(p), m.baseAddress, s.baseAddress, d, Int64(p))
                }
            }
        }
    }

    /// Scales `count` rows of `mean.count` values at `rows` in place: `(x - mean) / scale`. The
    /// one standardisation loop of the tape path and the compiled training step. Nothing to do for
    /// the identity ((x - 0) / 1 is x, bit for bit), which is checked first: 2·p comparisons
    /// instead of a pass over the rows.
    func apply(rows d: UnsafeMutablePointer<Float>, count: Int) {
        let p = mean.count
        guard !isIdentity else { return }
        mean.withUnsafeBufferPointer { mean in
            scale.withUnsafeBufferPointer { scale in
                for i in 0..<count {
                    let row = d + i * p  // a row pointer keeps index arithmetic out of the inner loop
                    for j in 0..<p { row[j] = (row[j] - mean[j]) / scale[j] }
                }
            }
        }
    }
}
