import CEmberSupport
import EmberCore
import EmberNN
import Glibc

/// Status codes of include/ember.h.
enum Status {
    static let ok: Int32 = 0
    static let internalError: Int32 = 99
}

/// The object behind an `ember_model*`.
final class ModelBox {
    let model: Model
    init(_ model: Model) { self.model = model }
}

/// The object behind an `ember_dataset*`: named inputs and a target, added one by one, and the
/// `Dataset` built from them on first use.
final class DatasetBox {
    let rows: Int
    private(set) var inputs: [String: Tensor] = [:]
    /// Categorical inputs as integer codes.
    private(set) var codes: [String: IndexTensor] = [:]
    /// Inputs produced per batch (image files).
    private(set) var sources: [String: any BatchSource] = [:]
    private(set) var target: Tensor?
    private var built: Dataset?

    init(rows: Int) { self.rows = rows }

    /// Checks that `name` is a new, non-empty input name.
    private func checkNewName(_ name: String) throws {
        guard !name.isEmpty else { throw EmberError.invalidArgument("name", "must be a non-empty input name") }
        guard inputs[name] == nil, codes[name] == nil, sources[name] == nil else {
            throw EmberError.invalidArgument("name", "the dataset already has an input named '\(name)'")
        }
    }

    func add(_ name: String, _ t: Tensor) throws {
        try checkNewName(name)
        inputs[name] = t
        built = nil
    }

    /// Adds a categorical input as integer codes.
    func add(_ name: String, codes c: IndexTensor) throws {
        try checkNewName(name)
        codes[name] = c
        built = nil
    }

    /// Adds an input produced per batch (bytes, image files) with one row per dataset row.
    func add(_ name: String, source: any BatchSource) throws {
        try checkNewName(name)
        guard source.count == rows else {
            throw EmberError(.shapeMismatch, "[\(name)] the source has \(source.count) rows; the dataset has \(rows)",
                             detail: EmberError.Detail(op: "dataset", argument: name, expected: "\(rows)", got: "\(source.count)"))
        }
        sources[name] = source
        built = nil
    }

    /// Class targets (integers), set instead of `target`.
    private(set) var classes: IndexTensor?

    func setTarget(_ y: Tensor) {
        target = y
        classes = nil
        built = nil
    }

    /// Sets integer class targets (replacing any target).
    func setTarget(classes c: IndexTensor) {
        target = nil
        classes = c
        built = nil
    }

    /// The dataset; at least one input is needed.
    func dataset(_ argument: String) throws -> Dataset {
        if let built { return built }
        guard !inputs.isEmpty || !codes.isEmpty || !sources.isEmpty else {
            throw EmberError(.invalidState, "[\(argument)] the dataset has no inputs; add them with ember_dataset_add_*",
                             detail: EmberError.Detail(op: "dataset", argument: argument, expected: "at least one input", got: "none"))
        }
        let d = try classes.map { try Dataset(inputs: inputs, codes: codes, sources: sources, classes: $0) }
            ?? Dataset(inputs: inputs, codes: codes, sources: sources, target: target)
        built = d
        return d
    }
}

/// The object behind an `ember_trainer*`.
final class TrainerBox {
    let trainer: Trainer
    init(_ trainer: Trainer) { self.trainer = trainer }
}

/// The object behind an `ember_bytes*`.
final class BytesBox {
    let bytes: UnsafeMutableBufferPointer<UInt8>

    init(_ source: [UInt8]) {
        bytes = .allocate(capacity: max(source.count, 1))
        _ = bytes.initialize(from: source)
        count = source.count
    }

    let count: Int

    deinit { bytes.deallocate() }
}

/// Live handles, so that a freed, forged or wrong-typed pointer is reported instead of used.
/// NOTE: a C caller can pass any address; looking it up here is what keeps a stale handle from
/// crashing the host process. The registry holds the only strong reference of each object.
final class HandleRegistry: @unchecked Sendable {
    static let shared = HandleRegistry()
    private var mutex = pthread_mutex_t()
    private var objects: [UnsafeMutableRawPointer: AnyObject] = [:]

    private init() { pthread_mutex_init(&mutex, nil) }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }

    /// Registers an object and returns its handle.
    func register(_ object: AnyObject) -> OpaquePointer {
        let p = Unmanaged.passUnretained(object).toOpaque()
        locked { objects[p] = object }
        return OpaquePointer(p)
    }

    /// The live object of type `T` behind `handle`.
    func lookup<T: AnyObject>(_ handle: OpaquePointer?, _ type: T.Type, _ argument: String) throws -> T {
        guard let handle else { throw EmberError.invalidArgument(argument, "is NULL") }
        guard let object = locked({ objects[UnsafeMutableRawPointer(handle)] }) as? T else {
            throw EmberError(.invalidArgument, "[\(argument)] is not a live \(HandleRegistry.typeName(type)) (freed, or a handle of another type)",
                             detail: EmberError.Detail(op: argument, argument: argument, expected: "a live \(HandleRegistry.typeName(type))"))
        }
        return object
    }

    /// Releases the object of type `T` behind `handle`; NULL is a no-op.
    func free<T: AnyObject>(_ handle: OpaquePointer?, _ type: T.Type, _ argument: String) throws {
        guard let handle else { return }
        let p = UnsafeMutableRawPointer(handle)
        let removed: AnyObject? = locked {
            guard objects[p] is T else { return nil }
            return objects.removeValue(forKey: p)
        }
        guard removed != nil else {
            throw EmberError(.invalidArgument, "[\(argument)] is not a live \(HandleRegistry.typeName(type)) (double free, or a handle of another type)",
                             detail: EmberError.Detail(op: argument, argument: argument, expected: "a live \(HandleRegistry.typeName(type))"))
        }
    }

    /// Number of live objects of type `T`.
    func count<T: AnyObject>(_ type: T.Type) -> Int { locked { objects.values.filter { $0 is T }.count } }

    static func typeName<T>(_ type: T.Type) -> String {
        switch type {
        case is ModelBox.Type: return "ember_model"
        case is DatasetBox.Type: return "ember_dataset"
        case is TrainerBox.Type: return "ember_trainer"
        case is BytesBox.Type: return "ember_bytes"
        default: return "handle"
        }
    }
}

/// Runs `body`, turning every thrown error into a status code plus the thread's last error
/// (message and detail). Every exported function goes through here: no Swift error escapes into C.
@inline(__always)
func guarded(_ body: () throws -> Void) -> Int32 {
    cember_clear_last_error()
    do {
        try body()
        return Status.ok
    } catch let e as EmberError {
        setLastError(e.kind.rawValue, e.message, e.detail)
        return e.kind.rawValue
    } catch {
        setLastError(Status.internalError, "[internal] \(error)", EmberError.Detail())
        return Status.internalError
    }
}

func setLastError(_ code: Int32, _ message: String, _ d: EmberError.Detail) {
    cember_set_last_error(message)
    cember_set_last_error_detail(code, d.op, d.layer, d.argument, Int64(d.index ?? -1), d.expected, d.got)
}

/// Hands `text` to the caller through the thread's result buffer.
func returnText(_ text: String, _ out: UnsafeMutablePointer<UnsafePointer<CChar>?>) throws {
    var copy = text
    let p: UnsafePointer<CChar>? = copy.withUTF8 { u in
        u.withMemoryRebound(to: CChar.self) { c in cember_set_result_text(c.baseAddress, Int64(c.count)) }
    }
    guard let p else { throw EmberError(.overflow, "[result] out of memory for \(text.utf8.count) bytes of text") }
    out.pointee = p
}

/// Reads a NUL-terminated UTF-8 argument.
func string(_ p: UnsafePointer<CChar>?, _ argument: String) throws -> String {
    guard let p else { throw EmberError.invalidArgument(argument, "is NULL") }
    let n = strnlen(p, 1 << 30)
    guard n < 1 << 30 else { throw EmberError.invalidArgument(argument, "is longer than 1 GiB or not NUL-terminated") }
    return String(decoding: UnsafeBufferPointer(start: UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self), count: n), as: UTF8.self)
}

/// Checks a C length argument: in `lower...max`.
func checkedCount(_ value: Int64, _ name: String, lower: Int64 = 0, max: Int64 = Int64(Int32.max)) throws -> Int {
    guard value >= lower && value <= max else {
        throw EmberError(.invalidArgument, "[\(name)] must be in \(lower)...\(max), got \(value)",
                         detail: EmberError.Detail(op: name, argument: name, expected: "\(lower)...\(max)", got: "\(value)"))
    }
    return Int(value)
}

/// Checks a layout flag.
func checkedLayout(_ layout: Int32) throws -> Bool {
    switch layout {
    case 0: return false
    case 1: return true
    default:
        throw EmberError(.invalidArgument, "[layout] must be EMBER_LAYOUT_ROW_MAJOR (0) or EMBER_LAYOUT_COLUMN_MAJOR (1), got \(layout)",
                         detail: EmberError.Detail(op: "layout", argument: "layout", expected: "0 or 1", got: "\(layout)"))
    }
}

/// The element count of `shape`, refusing overflow, more than 2³¹·64 elements and more float32
/// values than the machine has memory for (`MemoryBudget`).
func checkedElements(_ shape: [Int], _ argument: String) throws -> Int {
    var n = 1
    for d in shape {
        let (m, overflow) = n.multipliedReportingOverflow(by: d)
        guard !overflow, m <= Int(Int32.max) * 64 else {
            throw EmberError(.overflow, "[\(argument)] \(shapeString(shape)) holds too many elements",
                             detail: EmberError.Detail(op: argument, argument: argument, got: shapeString(shape)))
        }
        n = m
    }
    // The engine copies the values into float32 (refused before allocating beyond the machine).
    try MemoryBudget.check(MemoryBudget.saturatingProduct([n, MemoryLayout<Float>.size]),
                           "the engine's copy of '\(argument)' \(shapeString(shape))", op: "dataset", argument: argument,
                           advice: "use fewer rows or columns")
    return n
}

/// Values copied between two polls of the host's interrupt check.
let copyChunk = 1 << 22

/// Reads n-d data of `shape` in the caller's layout into a row-major float tensor.
func tensor(from x: UnsafePointer<Double>, shape: [Int], columnMajor: Bool, argument: String) throws -> Tensor {
    let n = try checkedElements(shape, argument)
    if columnMajor, shape.count == 2 {
        return try tensor(columns: (0..<shape[1]).map { x + $0 * shape[0] }, rows: shape[0], argument: argument)
    }
    var data = [Float](repeating: 0, count: n)
    if !columnMajor || shape.count <= 1 {
        // In chunks, polling the host's interrupt check between them (large data takes a while).
        var start = 0
        while start < n {
            try Interrupts.poll("dataset", "while copying '\(argument)' (\(start) of \(n) values)")
            let end = min(start + copyChunk, n)
            for i in start..<end { data[i] = Float(x[i]) }
            start = end
        }
    } else {
        // Walk the column-major source in order while tracking the row-major destination index.
        var strides = [Int](repeating: 1, count: shape.count)
        for d in stride(from: shape.count - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
        var index = [Int](repeating: 0, count: shape.count)
        var dst = 0
        for src in 0..<n {
            if src % copyChunk == 0 { try Interrupts.poll("dataset", "while copying '\(argument)' (\(src) of \(n) values)") }
            data[dst] = Float(x[src])
            var d = 0
            while d < shape.count {
                index[d] += 1
                dst += strides[d]
                if index[d] < shape[d] { break }
                dst -= strides[d] * shape[d]
                index[d] = 0
                d += 1
            }
        }
    }
    return try Tensor(shape: shape, data: data)
}

/// A [rows, columns.count] tensor from separate columns of `rows` doubles (a column-major matrix's,
/// or a data.frame's): row blocks that fit in L1, converted and transposed by
/// `convertColumnsToRows` straight into the tensor's storage.
func tensor(columns: [UnsafePointer<Double>], rows: Int, argument: String) throws -> Tensor {
    let cols = columns.count, n = try checkedElements([rows, cols], argument), block = 256
    let pointers: [UnsafePointer<Double>?] = columns
    return try Tensor.build(shape: [rows, cols]) { out in
        guard let dst = out.baseAddress else { return }
        var r0 = 0, copied = 0, polled = -copyChunk
        while r0 < rows {
            // In chunks, polling the host's interrupt check between them (large data takes a while).
            if copied - polled >= copyChunk {
                try Interrupts.poll("dataset", "while copying '\(argument)' (\(copied) of \(n) values)")
                polled = copied
            }
            let r1 = min(r0 + block, rows)
            copied += (r1 - r0) * cols
            convertColumnsToRows(pointers, first: r0, rows: r1 - r0, into: dst)
            r0 = r1
        }
    }
}

/// Writes a row-major [rows, cols] tensor to a caller buffer in its layout.
func write(_ t: Tensor, rows: Int, cols: Int, columnMajor: Bool, to out: UnsafeMutablePointer<Double>) {
    let p = t.unsafeReadPointer
    if !columnMajor {
        for i in 0..<(rows * cols) { out[i] = Double(p[i]) }
        return
    }
    for j in 0..<cols {
        let column = out + j * rows
        for i in 0..<rows { column[i] = Double(p[i * cols + j]) }
    }
}
