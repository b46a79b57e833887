/// A dense, row-major float32 tensor with value semantics.
///
/// Storage is contiguous, reference-counted and drawn from the `BufferPool`; it is shared between
/// copies until one of them is mutated (copy-on-write). Reshaping shares storage; transposing,
/// slicing and the like produce new contiguous tensors.
public struct Tensor: Equatable, Sendable {
    /// Extent of each dimension, outermost first; `[]` for a scalar.
    public private(set) var shape: [Int]
    /// The elements (shared until mutated).
    public private(set) var storage: TensorStorage

    // MARK: Creation

    /// Creates a tensor from `data` laid out row-major in `shape`.
    /// - Throws: `EmberError` if a dimension is negative or `data.count` does not match the shape.
    public init(shape: [Int], data: [Float]) throws {
        let n = try Tensor.elementCount(shape, op: "tensor")
        guard data.count == n else {
            throw EmberError.shapeMismatch(
                "tensor", "shape \(shapeString(shape)) needs \(n) elements, got \(data.count)")
        }
        self.init(uncheckedShape: shape, data: data)
    }

    /// Creates a tensor of `shape` filled with `value`.
    public init(shape: [Int], repeating value: Float) throws {
        let n = try Tensor.elementCount(shape, op: "tensor")
        self.shape = shape
        self.storage = TensorStorage(count: n, repeating: value)
    }

    /// For shapes already known to be valid and matching `data.count`.
    @usableFromInline
    init(uncheckedShape shape: [Int], data: [Float]) {
        self.shape = shape
        self.storage = TensorStorage(uninitializedCount: data.count)
        data.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { storage.pointer.update(from: base, count: data.count) }
        }
    }

    /// Wraps existing storage; `storage.count` must equal the shape's element count.
    @usableFromInline
    init(uncheckedShape shape: [Int], storage: TensorStorage) {
        self.shape = shape
        self.storage = storage
    }

    /// A tensor of valid `shape` with uninitialised elements, filled by `body`.
    public static func build(shape: [Int], _ body: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows -> Tensor {
        var n = 1
        for d in shape { n *= d }
        let storage = TensorStorage(uninitializedCount: n)
        try body(UnsafeMutableBufferPointer(start: storage.pointer, count: n))
        return Tensor(uncheckedShape: shape, storage: storage)
    }

    /// A tensor of zeros.
    public static func zeros(_ shape: [Int]) throws -> Tensor { try Tensor(shape: shape, repeating: 0) }

    /// A tensor of ones.
    public static func ones(_ shape: [Int]) throws -> Tensor { try Tensor(shape: shape, repeating: 1) }

    /// A tensor filled with `value`.
    public static func full(_ shape: [Int], _ value: Float) throws -> Tensor { try Tensor(shape: shape, repeating: value) }

    /// A rank-0 tensor holding `value`.
    public static func scalar(_ value: Float) -> Tensor { Tensor(uncheckedShape: [], data: [value]) }

    /// `start, start + step, …` up to but excluding `end` (PyTorch's `arange`), as a rank-1 tensor.
    public static func arange(_ start: Float, _ end: Float, step: Float = 1) throws -> Tensor {
        guard step != 0, step.isFinite, start.isFinite, end.isFinite else {
            throw EmberError.invalidArgument("arange", "needs finite start, end and a non-zero step; got \(start), \(end), \(step)")
        }
        let n = Swift.max(0, Int(((end - start) / step).rounded(.up)))
        guard n <= 1 << 31 else { throw EmberError(.overflow, "[arange] \(n) elements is too many") }
        return Tensor(uncheckedShape: [n], data: (0..<n).map { start + Float($0) * step })
    }

    /// Uniform random values in [low, high) from the engine RNG.
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, rng: inout RandomGenerator) throws -> Tensor {
        _ = try elementCount(shape, op: "uniform")
        return build(shape: shape) { p in for i in 0..<p.count { p[i] = rng.uniform(low, high) } }
    }

    /// Normal random values from the engine RNG.
    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1, rng: inout RandomGenerator) throws -> Tensor {
        _ = try elementCount(shape, op: "normal")
        return build(shape: shape) { p in for i in 0..<p.count { p[i] = mean + std * rng.normal() } }
    }

    /// 1 with probability `p`, else 0, from the engine RNG.
    public static func bernoulli(_ shape: [Int], p: Float, rng: inout RandomGenerator) throws -> Tensor {
        _ = try elementCount(shape, op: "bernoulli")
        guard p >= 0 && p <= 1 else { throw EmberError.invalidArgument("bernoulli", "p must be in [0, 1], got \(p)") }
        return build(shape: shape) { b in for i in 0..<b.count { b[i] = rng.uniform() < p ? 1 : 0 } }
    }

    // MARK: Access

    /// Number of elements.
    public var count: Int { storage.count }

    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// The single element of a one-element tensor.
    public var scalarValue: Float? { count == 1 ? storage.pointer[0] : nil }

    /// The elements in row-major order, copied out.
    public var data: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: count)) }

    /// Replaces the elements; `values.count` must equal `count`.
    public mutating func setData(_ values: [Float]) throws {
        guard values.count == count else {
            throw EmberError.shapeMismatch("set_data", "shape \(shapeString(shape)) needs \(count) elements, got \(values.count)")
        }
        makeUnique()
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { storage.pointer.update(from: base, count: count) }
        }
    }

    /// The first element, read-only, for hot loops where a closure would cost time. The pointer
    /// is valid only while this tensor's storage lives: the caller keeps the tensor (or a copy)
    /// alive while it reads, e.g. by capturing it or with `withExtendedLifetime`.
    public var unsafeReadPointer: UnsafePointer<Float> { UnsafePointer(storage.pointer) }

    /// Reads the elements without copying.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer, count: count))
    }

    /// Writes the elements in place (copying first if the storage is shared).
    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        makeUnique()
        return try body(UnsafeMutableBufferPointer(start: storage.pointer, count: count))
    }

    /// Ensures this tensor is the only user of its storage.
    public mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = TensorStorage(copying: storage) }
    }

    /// The element at a multi-dimensional index (for tests and small tensors).
    public func element(at index: [Int]) throws -> Float {
        guard index.count == rank else {
            throw EmberError.invalidArgument("element", "index \(index) has \(index.count) entries; the tensor has rank \(rank)")
        }
        var flat = 0
        for (i, d) in index.enumerated() {
            guard d >= 0 && d < shape[i] else {
                throw EmberError.invalidArgument("element", "index \(index) is out of bounds for shape \(shapeString(shape))")
            }
            flat = flat * shape[i] + d
        }
        return storage.pointer[flat]
    }

    public static func == (a: Tensor, b: Tensor) -> Bool {
        guard a.shape == b.shape else { return false }
        if a.storage === b.storage { return true }
        for i in 0..<a.count where a.storage.pointer[i] != b.storage.pointer[i] { return false }
        return true
    }

    // MARK: Shape

    /// Row-major strides of `shape`.
    public static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            s[i] = acc
            acc *= shape[i]
        }
        return s
    }

    /// The same elements in another shape (storage shared). One dimension may be -1 (inferred).
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var target = newShape
        let inferred = newShape.indices.filter { newShape[$0] == -1 }
        if inferred.count > 1 {
            throw EmberError.invalidArgument(
                "reshape", "only one dimension can be -1, got \(shapeString(newShape)) for shape \(shapeString(shape))")
        }
        if let k = inferred.first {
            var known = 1
            for (i, d) in newShape.enumerated() where i != k {
                guard d >= 0 else { throw EmberError.invalidArgument("reshape", "negative dimension in \(shapeString(newShape))") }
                known *= d
            }
            guard known > 0, count % known == 0 else {
                throw EmberError.shapeMismatch("reshape", "cannot reshape \(shapeString(shape)) (\(count) elements) to \(shapeString(newShape))")
            }
            target[k] = count / known
        }
        let n = try Tensor.elementCount(target, op: "reshape")
        guard n == count else {
            throw EmberError.shapeMismatch(
                "reshape", "cannot reshape \(shapeString(shape)) (\(count) elements) to \(shapeString(newShape))")
        }
        return Tensor(uncheckedShape: target, storage: storage)
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

    /// Normalises a possibly negative axis (`-1` = last) for a tensor of `shape`; the error names
    /// the shape.
    public static func normalizeAxis(_ axis: Int, shape: [Int], op: String) throws -> Int {
        let a = axis < 0 ? axis + shape.count : axis
        guard a >= 0 && a < shape.count else {
            throw EmberError.invalidArgument(
                op, "axis \(axis) is out of range for a tensor of rank \(shape.count) (shape \(shapeString(shape)))")
        }
        return a
    }

    /// Normalises a possibly negative axis (`-1` = last) for a tensor of `rank`.
    public static func normalizeAxis(_ axis: Int, rank: Int, op: String) throws -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0 && a < rank else {
            throw EmberError.invalidArgument(op, "axis \(axis) is out of range for a tensor of rank \(rank)")
        }
        return a
    }
}
