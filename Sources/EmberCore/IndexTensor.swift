/// An integer tensor: class targets, embedding codes, gather indices, argmax results.
public struct IndexTensor: Equatable, Sendable {
    /// Extent of each dimension.
    public let shape: [Int]
    /// The indices in row-major order.
    public let data: [Int]

    /// Creates an index tensor; `data.count` must match the shape.
    public init(shape: [Int], data: [Int]) throws {
        let n = try Tensor.elementCount(shape, op: "index_tensor")
        guard n == data.count else {
            throw EmberError.shapeMismatch("index_tensor", "shape \(shapeString(shape)) needs \(n) elements, got \(data.count)")
        }
        self.shape = shape
        self.data = data
    }

    /// A rank-1 index tensor.
    public init(_ data: [Int]) {
        self.shape = [data.count]
        self.data = data
    }

    /// Number of elements.
    public var count: Int { data.count }

    /// Rows `rows` (each in `0..<shape[0]`) of an index tensor of rank >= 1, as [rows.count, …].
    /// - Throws: `EmberError` naming `op` when a row is out of range.
    public func gatherRows(_ rows: some Collection<Int>, op: String) throws -> IndexTensor {
        let n = shape.first ?? 0, width = n > 0 ? data.count / n : 0
        // A range of rows (prediction batches) is one slice.
        if let range = rows as? Range<Int> {
            guard range.isEmpty || (range.lowerBound >= 0 && range.upperBound <= n) else {
                let bad = range.lowerBound < 0 ? range.lowerBound : Swift.max(range.lowerBound, n)
                throw EmberError.invalidArgument(op, "row \(bad) out of range 0..<\(n)")
            }
            return try IndexTensor(shape: [range.count] + shape.dropFirst(),
                                   data: range.isEmpty ? [] : Array(data[(range.lowerBound * width)..<(range.upperBound * width)]))
        }
        var out: [Int] = []
        out.reserveCapacity(rows.count * width)
        for r in rows {
            guard r >= 0 && r < n else { throw EmberError.invalidArgument(op, "row \(r) out of range 0..<\(n)") }
            out.append(contentsOf: data[(r * width)..<((r + 1) * width)])
        }
        return try IndexTensor(shape: [rows.count] + shape.dropFirst(), data: out)
    }

    /// The indices as floats, in this shape (for losses and measures that take class targets as values).
    public var floatTensor: Tensor {
        Tensor.build(shape: shape) { d in for (i, v) in data.enumerated() { d[i] = Float(v) } }
    }

    /// Checks that every index lies in 0..<bound.
    public func checkRange(_ bound: Int, op: String) throws {
        for (i, v) in data.enumerated() where v < 0 || v >= bound {
            throw EmberError.invalidArgument(op, "index \(v) at position \(i) is out of range 0..<\(bound)")
        }
    }
}
