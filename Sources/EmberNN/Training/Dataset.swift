import EmberCore

/// Rows of one network input produced batch by batch instead of held as one `Float` tensor: bytes
/// widened per batch (`ByteSource`), image files decoded per batch (`ImageFileSource`).
///
/// A source is read from several threads at once (the next batch is assembled while the current
/// one trains), so conforming types are immutable or synchronise themselves.
public protocol BatchSource: Sendable {
    /// Number of rows.
    var count: Int { get }
    /// Shape of one row, without the batch dimension (e.g. `[3, 32, 32]`).
    var sampleShape: [Int] { get }
    /// Rows `rows` (0-based, each in `0..<count`) as a tensor `[rows.count] + sampleShape`.
    /// - Throws: an `EmberError` naming the row when a row cannot be produced (an unreadable file).
    func gather(_ rows: [Int]) throws -> Tensor
}

/// An in-memory `[n, ...]` array of bytes (images stay one byte per value), widened to `Float`
/// per batch as `scale * byte`. A scale of `1 / k` for an integer `k` divides (`byte / k`), so that
/// `1 / 255` gives exactly torchvision's `to_tensor` values in [0, 1].
public struct ByteSource: BatchSource {
    /// The bytes, row-major: row `i` is `bytes[i * width ..< (i + 1) * width]`.
    public let bytes: [UInt8]
    public let count: Int
    public let sampleShape: [Int]
    /// Factor applied to every byte.
    public let scale: Double
    /// The value of each byte.
    let values: [Float]

    /// Creates a source over `bytes` holding `count` rows of `sampleShape`.
    /// - Throws: if the byte count is not `count × product(sampleShape)`, a dimension is < 1 or
    ///   `scale` is not finite.
    public init(bytes: [UInt8], count: Int, sampleShape: [Int], scale: Double = 1.0 / 255) throws {
        guard count >= 1, !sampleShape.isEmpty, sampleShape.allSatisfy({ $0 >= 1 }) else {
            throw EmberError.invalidArgument("shape", "needs >= 1 rows and dimensions >= 1, got \(count) rows of \(shapeString(sampleShape))")
        }
        var total = count
        for d in sampleShape {
            let (t, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow else { throw EmberError.invalidArgument("shape", "\(count) rows of \(shapeString(sampleShape)) overflow Int") }
            total = t
        }
        guard total == bytes.count else {
            throw EmberError.shapeMismatch("x", "holds \(bytes.count) bytes; \(count) rows of \(shapeString(sampleShape)) need \(total)")
        }
        guard scale.isFinite else { throw EmberError.invalidArgument("scale", "must be finite, got \(scale)") }
        self.bytes = bytes
        self.count = count
        self.sampleShape = sampleShape
        self.scale = scale
        let k = 1 / scale
        let divides = k == k.rounded() && abs(k) <= 16_777_216
        var values = [Float](repeating: 0, count: 256)
        for b in 0..<256 { values[b] = divides ? Float(b) / Float(k) : Float(Double(b) * scale) }
        self.values = values
    }

    public func gather(_ rows: [Int]) throws -> Tensor {
        let width = sampleShape.reduce(1, *)
        for r in rows where r < 0 || r >= count {
            throw EmberError.invalidArgument("gather", "row \(r) out of range 0..<\(count)")
        }
        return Tensor.build(shape: [rows.count] + sampleShape) { out in
            bytes.withUnsafeBufferPointer { src in
                values.withUnsafeBufferPointer { value in
                    for (k, r) in rows.enumerated() {
                        let s = src.baseAddress! + r * width, o = out.baseAddress! + k * width
                        for j in 0..<width { o[j] = value[Int(s[j])] }
                    }
                }
            }
        }
    }
}

/// Data for a model: one tensor or batch source per network input (batch first, by input name)
/// and, for training and validation, a target per row (regression values, 0/1 for binary with
/// 1 = positive class, class indices for multiclass, a 0/1 row [K] for multilabel).
///
/// Categorical codes and class targets may be given as integers (`codes`, `classes`): they stay
/// integers through to the embedding, one-hot and tokenizer layers and the classification losses,
/// which index with them without checking floats for whole numbers.
public struct Dataset: Sendable {
    /// Input tensors by the network's input names (for inputs given as `codes`, the codes as floats).
    public let inputs: [String: Tensor]
    /// Integer inputs (categorical codes [n, k], each >= 0) by the network's input names.
    public let codes: [String: IndexTensor]
    /// Inputs produced per batch (bytes, image files) by the network's input names.
    public let sources: [String: any BatchSource]
    /// Targets [n] (or [n, K] for multilabel), if any. With class targets (`classes`) the same
    /// values as floats, for the measures and the losses on 0/1 values.
    public let target: Tensor?
    /// Class targets [n] as integers (binary: 0/1, multiclass: 0..<K) when the dataset was made
    /// with them: cross-entropy and focal loss index with them directly.
    public let classes: IndexTensor?
    /// Number of rows.
    public let count: Int

    /// Creates a dataset; every input must have the same number of rows (and the target too), and
    /// no name may be given twice (as a tensor, codes or a source). Codes must be >= 0 and
    /// below 2^24 (their float view is exact).
    public init(inputs: [String: Tensor], codes: [String: IndexTensor] = [:], sources: [String: any BatchSource] = [:],
                target: Tensor? = nil) throws {
        try self.init(checking: inputs, codes: codes, sources: sources, target: target, classes: nil)
    }

    /// Creates a dataset with class targets, one integer per row (binary: 0/1, multiclass:
    /// 0..<K; the model checks the range against its task). The float view `target` is made once here.
    /// - Throws: `EmberError` naming `classes` when its length is not the row count or an entry
    ///   is negative (the row and value), and the errors of `init(inputs:codes:sources:target:)`.
    public init(inputs: [String: Tensor], codes: [String: IndexTensor] = [:], sources: [String: any BatchSource] = [:],
                classes: IndexTensor) throws {
        for (i, c) in classes.data.enumerated() where c < 0 {
            throw EmberError(.invalidArgument, "[dataset] class \(ErrorIndex.describe(("target", i))) is \(c); expected a class index >= 0",
                             detail: EmberError.Detail(op: "dataset", argument: "classes", index: i, expected: "a class index >= 0", got: "\(c)"))
        }
        try self.init(checking: inputs, codes: codes, sources: sources, target: classes.floatTensor, classes: classes)
    }

    private init(checking tensors: [String: Tensor], codes: [String: IndexTensor], sources: [String: any BatchSource],
                 target: Tensor?, classes: IndexTensor?) throws {
        var inputs = tensors
        for (name, c) in codes.sorted(by: { $0.key < $1.key }) {
            guard tensors[name] == nil else {
                throw EmberError.invalidArgument("dataset", "input '\(name)' is given both as a tensor and as codes")
            }
            let width = max(c.shape.dropFirst().reduce(1, *), 1)
            for (i, v) in c.data.enumerated() where v < 0 || v >= 1 << 24 {
                throw EmberError(.invalidArgument, "[dataset] input '\(name)': \(ErrorIndex.describe(("row", i / width), ("column", i % width))) holds code \(v); expected a level index in 0..<2^24",
                                 detail: EmberError.Detail(op: "dataset", argument: name, index: i / width, expected: "a code in 0..<2^24", got: "\(v)"))
            }
            inputs[name] = c.floatTensor
        }
        let shapes = inputs.mapValues { $0.shape } .merging(sources.mapValues { [$0.count] + $0.sampleShape }) { a, _ in a }
        guard let first = shapes.min(by: { $0.key < $1.key }) else { throw EmberError.invalidArgument("dataset", "needs at least one input") }
        for name in sources.keys where inputs[name] != nil {
            throw EmberError.invalidArgument("dataset", "input '\(name)' is given both as a tensor and as a source")
        }
        let n = first.value.first ?? 0
        for (name, shape) in shapes {
            guard shape.count >= 1, shape[0] == n else {
                throw EmberError.shapeMismatch("dataset", "input '\(name)' has shape \(shapeString(shape)); expected \(n) rows like '\(first.key)'")
            }
        }
        if let classes, classes.shape != [n] {
            throw EmberError(.shapeMismatch, "[dataset] the class targets have shape \(shapeString(classes.shape)); expected one per row (\(n))",
                             detail: EmberError.Detail(op: "dataset", argument: "classes", expected: "\(n)", got: shapeString(classes.shape)))
        }
        if let target {
            // One value per row, or a matrix [n, K] (multilabel: one column per label).
            guard target.count == n || (target.shape.count == 2 && target.shape[0] == n) else {
                throw EmberError.shapeMismatch("dataset", "the target has shape \(shapeString(target.shape)); expected one value per row (\(n)) or [\(n), K]")
            }
        }
        self.inputs = inputs
        self.codes = codes
        self.sources = sources
        self.target = target
        self.classes = classes
        self.count = n
    }

    /// The same inputs without a target (prediction): this dataset's checked inputs, codes and
    /// sources as they are (not checked and converted again).
    public func withoutTarget() throws -> Dataset {
        Dataset(checked: self)
    }

    /// `data` without its target.
    private init(checked data: Dataset) {
        inputs = data.inputs
        codes = data.codes
        sources = data.sources
        target = nil
        classes = nil
        count = data.count
    }

    /// A dataset with one numeric input named `num`.
    public init(x: Tensor, y: Tensor? = nil) throws {
        try self.init(inputs: ["num": x], target: y)
    }

    /// The values of network input `input` in `rows`.
    func batch<C: Collection>(_ rows: C, input: InputSpec) throws -> Tensor where C.Element == Int {
        if let t = inputs[input.name] { return try t.gatherRows(rows) }
        if let s = sources[input.name] { return try s.gather(Array(rows)) }
        throw EmberError.invalidArgument("dataset", "lacks the network input '\(input.name)'; it has \(inputNames.joined(separator: ", "))")
    }

    /// Names of all inputs, sorted.
    public var inputNames: [String] { (Array(inputs.keys) + Array(sources.keys)).sorted() }

    /// Shape of one row of input `name` (tensor or source), or nil if there is no such input.
    public func sampleShape(of name: String) -> [Int]? {
        if let t = inputs[name] { return Array(t.shape.dropFirst()) }
        return sources[name]?.sampleShape
    }
}
