import CEmberSupport
import EmberCore
import EmberNN
import Glibc

/// Status codes of include/ember.h.
enum Status {
    static let ok: Int32 = 0
    static let invalidArgument: Int32 = 1
    static let internalError: Int32 = 99
}

/// The object behind an `ember_model*`: a model and the trainer that continues it between slices.
final class ModelBox {
    let model: Model
    var config = TrainerConfig()
    var trainer: Trainer?

    init(_ model: Model) { self.model = model }

    /// The trainer for the current configuration (created on first use; a new configuration
    /// starts a new trainer, and with it a fresh optimizer state).
    func currentTrainer() throws -> Trainer {
        if let trainer { return trainer }
        let t = try Trainer(model: model, config: config)
        trainer = t
        return t
    }
}

/// The object behind an `ember_dataset*`.
final class DatasetBox {
    let data: Dataset
    init(_ data: Dataset) { self.data = data }
}

/// Live handles, so that a freed, forged or wrong-typed pointer is reported instead of used.
/// NOTE: a C caller can pass any address; looking it up here is what keeps a stale handle from
/// crashing the host process.
final class HandleRegistry: @unchecked Sendable {
    static let shared = HandleRegistry()
    private var mutex = pthread_mutex_t()
    private var models: [UnsafeMutableRawPointer: ModelBox] = [:]
    private var datasets: [UnsafeMutableRawPointer: DatasetBox] = [:]

    private init() { pthread_mutex_init(&mutex, nil) }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }

    func register(_ box: ModelBox) -> OpaquePointer {
        let p = Unmanaged.passUnretained(box).toOpaque()
        locked { models[p] = box }
        return OpaquePointer(p)
    }

    func register(_ box: DatasetBox) -> OpaquePointer {
        let p = Unmanaged.passUnretained(box).toOpaque()
        locked { datasets[p] = box }
        return OpaquePointer(p)
    }

    func model(_ handle: OpaquePointer?, argument: String = "model") throws -> ModelBox {
        guard let handle else { throw EmberError.invalidArgument(argument, "is NULL") }
        let p = UnsafeMutableRawPointer(handle)
        guard let box = locked({ models[p] }) else {
            throw EmberError.invalidArgument(argument, "is not a live ember_model (freed, or not a model handle)")
        }
        return box
    }

    func dataset(_ handle: OpaquePointer?, argument: String = "dataset") throws -> DatasetBox {
        guard let handle else { throw EmberError.invalidArgument(argument, "is NULL") }
        let p = UnsafeMutableRawPointer(handle)
        guard let box = locked({ datasets[p] }) else {
            throw EmberError.invalidArgument(argument, "is not a live ember_dataset (freed, or not a dataset handle)")
        }
        return box
    }

    func freeModel(_ handle: OpaquePointer) throws {
        let p = UnsafeMutableRawPointer(handle)
        guard locked({ models.removeValue(forKey: p) }) != nil else {
            throw EmberError.invalidArgument("model", "is not a live ember_model (double free?)")
        }
    }

    func freeDataset(_ handle: OpaquePointer) throws {
        let p = UnsafeMutableRawPointer(handle)
        guard locked({ datasets.removeValue(forKey: p) }) != nil else {
            throw EmberError.invalidArgument("dataset", "is not a live ember_dataset (double free?)")
        }
    }

    var counts: (models: Int, datasets: Int) { locked { (models.count, datasets.count) } }
}

/// Runs `body`, turning every thrown error into a status code plus the thread's last-error text.
/// Every exported function goes through here: no Swift error escapes into C.
@inline(__always)
func guarded(_ body: () throws -> Void) -> Int32 {
    cember_clear_last_error()
    do {
        try body()
        return Status.ok
    } catch let e as EmberError {
        cember_set_last_error(e.message)
        return e.kind.rawValue
    } catch {
        cember_set_last_error("[internal] \(error)")
        return Status.internalError
    }
}

/// Checks a C length argument: non-negative and representable.
func checkedCount(_ value: Int64, _ name: String, max: Int64 = Int64(Int32.max)) throws -> Int {
    guard value >= 0 && value <= max else {
        throw EmberError.invalidArgument(name, "must be in 0...\(max), got \(value)")
    }
    return Int(value)
}

/// Reads a column-major double matrix into a row-major float tensor.
func rowMajorTensor(_ x: UnsafePointer<Double>, rows: Int, cols: Int) throws -> Tensor {
    let (n, overflow) = rows.multipliedReportingOverflow(by: cols)
    guard !overflow, n <= Int(Int32.max) * 64 else {
        throw EmberError(.overflow, "[x] \(rows) × \(cols) elements is too many")
    }
    var data = [Float](repeating: 0, count: n)
    for j in 0..<cols {
        let col = x + j * rows
        for i in 0..<rows { data[i * cols + j] = Float(col[i]) }
    }
    return try Tensor(shape: [rows, cols], data: data)
}
