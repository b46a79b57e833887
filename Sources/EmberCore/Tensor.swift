/// A dense, row-major float32 tensor with value semantics (copy-on-write storage).
///
/// Ember keeps tensors simple: a shape and a contiguous buffer. Views, strides and pooled
/// storage arrive with the engine-core issue; the API here is what those keep.
public struct Tensor: Equatable, Sendable {
    /// Extent of each dimension, outermost first.
    public private(set) var shape: [Int]
    /// The elements in row-major order; `count == shape.product`.
    public var data: [Float]

    /// Creates a tensor from `data` laid out row-major in `shape`.
    /// - Throws: `EmberError` if a dimension is negative or `data.count` does not match the shape.
    public init(shape: [Int], data: [Float]) throws {
        let n = try Tensor.elementCount(shape, op: "tensor")
        guard data.count == n else {
            throw EmberError.shapeMismatch(
                "tensor", "shape \(shapeString(shape)) needs \(n) elements, got \(data.count)")
        }
        self.shape = shape
        self.data = data
    }

    /// Creates a tensor of `shape` filled with `value`.
    public init(shape: [Int], repeating value: Float) throws {
        let n = try Tensor.elementCount(shape, op: "tensor")
        self.shape = shape
        self.data = [Float](repeating: value, count: n)
    }

    /// Internal initializer for shapes already known to be valid.
    @usableFromInline
    init(uncheckedShape shape: [Int], data: [Float]) {
        self.shape = shape
        self.data = data
    }

    /// A tensor of zeros.
    public static func zeros(_ shape: [Int]) throws -> Tensor { try Tensor(shape: shape, repeating: 0) }

    /// A rank-0 tensor holding `value`.
    public static func scalar(_ value: Float) -> Tensor { Tensor(uncheckedShape: [], data: [value]) }

    /// Number of elements.
    public var count: Int { data.count }

    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// The single element of a one-element tensor.
    public var scalarValue: Float? { data.count == 1 ? data[0] : nil }

    /// The same elements in another shape with the same number of elements.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        let n = try Tensor.elementCount(newShape, op: "reshape")
        guard n == count else {
            throw EmberError.shapeMismatch(
                "reshape", "cannot reshape \(shapeString(shape)) (\(count) elements) to \(shapeString(newShape))")
        }
        return Tensor(uncheckedShape: newShape, data: data)
    }

    /// Rows `indices` of a tensor of rank ≥ 1 (gathers a mini-batch).
    public func gatherRows<C: Collection>(_ indices: C) throws -> Tensor where C.Element == Int {
        guard rank >= 1 else { throw EmberError.invalidArgument("gather_rows", "needs a tensor of rank >= 1") }
        let rows = shape[0]
        let width = rows == 0 ? 0 : count / rows
        var out = [Float](repeating: 0, count: indices.count * width)
        var o = 0
        for i in indices {
            guard i >= 0 && i < rows else {
                throw EmberError.invalidArgument("gather_rows", "row index \(i) out of range 0..<\(rows)")
            }
            let start = i * width
            for j in 0..<width { out[o + j] = data[start + j] }
            o += width
        }
        var newShape = shape
        newShape[0] = indices.count
        return Tensor(uncheckedShape: newShape, data: out)
    }

    /// Validates a shape and returns its element count, guarding against overflow.
    public static func elementCount(_ shape: [Int], op: String) throws -> Int {
        var n = 1
        for d in shape {
            guard d >= 0 else {
                throw EmberError.invalidArgument(op, "negative dimension in shape \(shapeString(shape))")
            }
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow else {
                throw EmberError(.overflow, "[\(op)] shape \(shapeString(shape)) has too many elements")
            }
            n = p
        }
        return n
    }
}
