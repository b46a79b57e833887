import CEmberSupport
import EmberCore
import EmberNN

// The exported C functions declared in include/ember.h. Each validates every argument, runs in
// `guarded` and never lets a Swift error or trap reach the caller.

/// The ABI version (EMBER_ABI_VERSION).
@_cdecl("ember_abi_version")
public func ember_abi_version() -> Int32 { 1 }

/// The calling thread's last error message.
@_cdecl("ember_last_error")
public func ember_last_error() -> UnsafePointer<CChar>? { cember_last_error() }

/// The OpenBLAS core name.
@_cdecl("ember_blas_core_name")
public func ember_blas_core_name(_ out: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    guarded {
        guard let out else { throw EmberError.invalidArgument("out_name", "is NULL") }
        out.pointee = BLASCoreName.pointer
    }
}

/// Holds the BLAS core name as a C string for the lifetime of the process.
enum BLASCoreName {
    nonisolated(unsafe) static let pointer: UnsafePointer<CChar>? = {
        let name = BLAS.coreName
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: name.utf8.count + 1)
        for (i, b) in name.utf8.enumerated() { buffer[i] = CChar(bitPattern: b) }
        buffer[name.utf8.count] = 0
        return UnsafePointer(buffer)
    }()
}

/// Threads used by BLAS.
@_cdecl("ember_get_num_threads")
public func ember_get_num_threads(_ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded {
        guard let out else { throw EmberError.invalidArgument("out_threads", "is NULL") }
        out.pointee = Int32(clamping: Engine.numThreads)
    }
}

/// Sets the thread count.
@_cdecl("ember_set_num_threads")
public func ember_set_num_threads(_ threads: Int32) -> Int32 {
    guarded { try Engine.setNumThreads(Int(threads)) }
}

/// Creates an MLP model.
@_cdecl("ember_mlp_new")
public func ember_mlp_new(
    _ out: UnsafeMutablePointer<OpaquePointer?>?, _ task: Int32, _ nClasses: Int32, _ nInputs: Int32,
    _ neurons: UnsafePointer<Int32>?, _ nHidden: Int32, _ dropout: Double,
    _ standardize: UnsafePointer<Int32>?, _ standardizeTarget: Int32, _ seed: UInt64
) -> Int32 {
    guarded {
        guard let out else { throw EmberError.invalidArgument("out_model", "is NULL") }
        let kind: TaskKind
        switch task {
        case 0: kind = .regression
        case 1: kind = .binary
        case 2:
            guard nClasses >= 2 else {
                throw EmberError.invalidArgument("n_classes", "a multiclass task needs at least 2 classes, got \(nClasses)")
            }
            kind = .multiclass(classes: Int(nClasses))
        default: throw EmberError.invalidArgument("task", "expected 0 (regression), 1 (binary) or 2 (multiclass), got \(task)")
        }
        guard nInputs >= 1 else { throw EmberError.invalidArgument("n_inputs", "must be >= 1, got \(nInputs)") }
        guard nHidden >= 0 && nHidden <= 1024 else {
            throw EmberError.invalidArgument("n_hidden", "must be in 0...1024, got \(nHidden)")
        }
        var widths: [Int] = []
        if nHidden > 0 {
            guard let neurons else { throw EmberError.invalidArgument("neurons", "is NULL but n_hidden is \(nHidden)") }
            widths = (0..<Int(nHidden)).map { Int(neurons[$0]) }
        }
        guard dropout.isFinite && dropout >= 0 && dropout < 1 else {
            throw EmberError.invalidArgument("dropout", "must be in [0, 1), got \(dropout)")
        }
        var mask = [Bool](repeating: true, count: Int(nInputs))
        if let standardize {
            for i in 0..<Int(nInputs) { mask[i] = standardize[i] != 0 }
        }
        let spec = try Architectures.mlp(TabularInputs(numeric: Int(nInputs)), neurons: widths, p: dropout)
        let model = try Model(spec: spec, task: kind, standardize: ["num": mask],
                              standardizeTarget: standardizeTarget != 0, seed: seed)
        out.pointee = HandleRegistry.shared.register(ModelBox(model))
    }
}

/// Frees a model.
@_cdecl("ember_model_free")
public func ember_model_free(_ model: OpaquePointer?) -> Int32 {
    guarded {
        guard let model else { return }
        try HandleRegistry.shared.freeModel(model)
    }
}

/// Sets training options.
@_cdecl("ember_model_set_training")
public func ember_model_set_training(
    _ model: OpaquePointer?, _ batchSize: Int32, _ shuffle: Int32, _ optimizer: Int32, _ lr: Double,
    _ weightDecay: Double, _ momentum: Double, _ beta1: Double, _ beta2: Double, _ eps: Double
) -> Int32 {
    guarded {
        let box = try HandleRegistry.shared.model(model)
        guard batchSize >= 1 else { throw EmberError.invalidArgument("batch_size", "must be >= 1, got \(batchSize)") }
        for (name, v) in [("lr", lr), ("weight_decay", weightDecay), ("momentum", momentum),
                          ("beta1", beta1), ("beta2", beta2), ("eps", eps)] {
            guard v.isFinite && abs(v) < 1e30 else {
                throw EmberError.invalidArgument("opt.\(name)", "must be a finite number, got \(v)")
            }
        }
        guard lr > 0 else { throw EmberError.invalidArgument("opt.lr", "must be > 0, got \(lr)") }
        let config: OptimizerConfig
        switch optimizer {
        case 0: config = .sgd(lr: lr, momentum: momentum, weightDecay: weightDecay)
        case 1: config = .adam(lr: lr, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay)
        case 2: config = .adamw(lr: lr, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay)
        default: throw EmberError.invalidArgument("optimizer", "expected 0 (sgd), 1 (adam) or 2 (adamw), got \(optimizer)")
        }
        var trainerConfig = box.config
        trainerConfig.batchSize = Int(batchSize)
        trainerConfig.shuffle = shuffle != 0
        trainerConfig.optimizer = config
        if trainerConfig != box.config || box.trainer == nil {
            // Build first: an invalid configuration must leave the previous one in place.
            let trainer = try Trainer(model: box.model, config: trainerConfig)
            box.config = trainerConfig
            box.trainer = trainer
        }
    }
}

/// Copies training data into the engine.
@_cdecl("ember_dataset_new")
public func ember_dataset_new(
    _ out: UnsafeMutablePointer<OpaquePointer?>?, _ x: UnsafePointer<Double>?, _ nRows: Int64, _ nCols: Int64,
    _ y: UnsafePointer<Double>?
) -> Int32 {
    guarded {
        guard let out else { throw EmberError.invalidArgument("out_dataset", "is NULL") }
        let rows = try checkedCount(nRows, "n_rows")
        let cols = try checkedCount(nCols, "n_cols")
        guard rows >= 1 else { throw EmberError.invalidArgument("n_rows", "must be >= 1, got 0") }
        guard cols >= 1 else { throw EmberError.invalidArgument("n_cols", "must be >= 1, got 0") }
        guard let x else { throw EmberError.invalidArgument("x", "is NULL") }
        guard let y else { throw EmberError.invalidArgument("y", "is NULL") }
        let xt = try rowMajorTensor(x, rows: rows, cols: cols)
        let yt = try Tensor(shape: [rows], data: (0..<rows).map { Float(y[$0]) })
        out.pointee = HandleRegistry.shared.register(DatasetBox(try Dataset(x: xt, y: yt)))
    }
}

/// Frees a dataset.
@_cdecl("ember_dataset_free")
public func ember_dataset_free(_ dataset: OpaquePointer?) -> Int32 {
    guarded {
        guard let dataset else { return }
        try HandleRegistry.shared.freeDataset(dataset)
    }
}

/// Trains a slice of epochs.
@_cdecl("ember_model_fit")
public func ember_model_fit(
    _ model: OpaquePointer?, _ dataset: OpaquePointer?, _ epochs: Int32, _ outLosses: UnsafeMutablePointer<Double>?
) -> Int32 {
    guarded {
        let box = try HandleRegistry.shared.model(model)
        let data = try HandleRegistry.shared.dataset(dataset)
        guard epochs >= 0 else { throw EmberError.invalidArgument("epochs", "must be >= 0, got \(epochs)") }
        guard data.data.inputs["num"]?.shape.last == box.model.spec.inputs.first?.sampleShape.first else {
            throw EmberError.shapeMismatch("fit", "the dataset has \(data.data.inputs["num"]?.shape.last ?? 0) columns; the model expects \(box.model.spec.inputs.first?.sampleShape.first ?? 0)")
        }
        let records = try box.currentTrainer().fit(data.data, epochs: Int(epochs))
        if let outLosses {
            for (i, r) in records.enumerated() { outLosses[i] = r.trainLoss }
        }
    }
}

/// Number of prediction columns.
@_cdecl("ember_model_prediction_columns")
public func ember_model_prediction_columns(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded {
        let box = try HandleRegistry.shared.model(model)
        guard let out else { throw EmberError.invalidArgument("out_columns", "is NULL") }
        out.pointee = Int32(clamping: box.model.task.predictionColumns)
    }
}

/// Number of inputs.
@_cdecl("ember_model_n_inputs")
public func ember_model_n_inputs(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded {
        let box = try HandleRegistry.shared.model(model)
        guard let out else { throw EmberError.invalidArgument("out_inputs", "is NULL") }
        out.pointee = Int32(clamping: box.model.spec.inputs.first?.sampleShape.first ?? 0)
    }
}

/// Epochs trained so far.
@_cdecl("ember_model_epochs")
public func ember_model_epochs(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded {
        let box = try HandleRegistry.shared.model(model)
        guard let out else { throw EmberError.invalidArgument("out_epochs", "is NULL") }
        out.pointee = Int32(clamping: box.model.history.count)
    }
}

/// Predicts.
@_cdecl("ember_model_predict")
public func ember_model_predict(
    _ model: OpaquePointer?, _ x: UnsafePointer<Double>?, _ nRows: Int64, _ nCols: Int64,
    _ out: UnsafeMutablePointer<Double>?, _ outLen: Int64
) -> Int32 {
    guarded {
        let box = try HandleRegistry.shared.model(model)
        let rows = try checkedCount(nRows, "n_rows")
        let cols = try checkedCount(nCols, "n_cols")
        let expected = box.model.spec.inputs.first?.sampleShape.first ?? 0
        guard cols == expected else {
            throw EmberError.shapeMismatch("predict", "the model expects \(expected) input columns, got \(cols)")
        }
        let k = box.model.task.predictionColumns
        guard let out else { throw EmberError.invalidArgument("out", "is NULL") }
        guard outLen == Int64(rows) * Int64(k) else {
            throw EmberError.shapeMismatch("predict", "out must hold \(rows) × \(k) = \(rows * k) values, got out_len \(outLen)")
        }
        if rows == 0 { return }
        guard let x else { throw EmberError.invalidArgument("x", "is NULL") }
        let xt = try rowMajorTensor(x, rows: rows, cols: cols)
        let p = try box.model.predict(try Dataset(x: xt)).data
        for i in 0..<rows { for j in 0..<k { out[j * rows + i] = Double(p[i * k + j]) } }
    }
}

/// Serializes a model.
@_cdecl("ember_model_serialize")
public func ember_model_serialize(
    _ model: OpaquePointer?, _ buffer: UnsafeMutablePointer<UInt8>?, _ capacity: Int64, _ outSize: UnsafeMutablePointer<Int64>?
) -> Int32 {
    guarded {
        let box = try HandleRegistry.shared.model(model)
        guard let outSize else { throw EmberError.invalidArgument("out_size", "is NULL") }
        let bytes = box.model.serialized()
        outSize.pointee = Int64(bytes.count)
        guard let buffer else { return }
        guard capacity >= Int64(bytes.count) else {
            throw EmberError.invalidArgument("capacity", "is \(capacity) but the model needs \(bytes.count) bytes")
        }
        bytes.withUnsafeBufferPointer { src in
            for i in 0..<src.count { buffer[i] = src[i] }
        }
    }
}

/// Deserializes a model.
@_cdecl("ember_model_deserialize")
public func ember_model_deserialize(
    _ out: UnsafeMutablePointer<OpaquePointer?>?, _ bytes: UnsafePointer<UInt8>?, _ length: Int64
) -> Int32 {
    guarded {
        guard let out else { throw EmberError.invalidArgument("out_model", "is NULL") }
        let n = try checkedCount(length, "length", max: Int64.max / 2)
        guard let bytes else { throw EmberError.invalidArgument("bytes", "is NULL") }
        let model = try Model(serialized: Array(UnsafeBufferPointer(start: bytes, count: n)))
        out.pointee = HandleRegistry.shared.register(ModelBox(model))
    }
}

/// Live handle counts.
@_cdecl("ember_live_handles")
public func ember_live_handles(_ outModels: UnsafeMutablePointer<Int64>?, _ outDatasets: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded {
        let c = HandleRegistry.shared.counts
        outModels?.pointee = Int64(c.models)
        outDatasets?.pointee = Int64(c.datasets)
    }
}
