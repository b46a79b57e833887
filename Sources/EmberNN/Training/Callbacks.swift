import EmberCore

/// Writes a checkpoint every `frequency` epochs: the model file with the optimizer state and the
/// trainer's counters, readable by `Model(serialized:)` and resumable with `Trainer.resume`.
public final class CheckpointCallback: TrainerCallback {
    /// It does not read gradients.
    public var readsGradients: Bool { false }
    /// Epochs between checkpoints.
    public let frequency: Int
    /// Receives the checkpoint bytes and the epoch (write them to a file, keep them in memory…).
    public let sink: ([UInt8], Int) throws -> Void

    /// A callback handing each checkpoint to `sink`.
    public init(frequency: Int, sink: @escaping ([UInt8], Int) throws -> Void) throws {
        guard frequency >= 1 else { throw EmberError.invalidArgument("cb.checkpoint.freq", "must be >= 1, got \(frequency)") }
        self.frequency = frequency
        self.sink = sink
    }

    /// A callback writing `<directory>/checkpoint_<epoch>.safetensors`.
    public convenience init(frequency: Int, directory: String) throws {
        try self.init(frequency: frequency) { bytes, epoch in
            try writeFile("\(directory)/checkpoint_\(epoch).safetensors", bytes)
        }
    }

    public func onEpochEnd(_ trainer: Trainer, record: EpochRecord) throws {
        guard record.epoch % frequency == 0 else { return }
        try sink(Trainer.checkpoint(trainer), record.epoch)
    }
}

/// Unfreezes parameters on a schedule, for fine-tuning: before epoch `e`, the parameters whose
/// names match the pattern paired with `e` become trainable (freeze the rest when building).
public final class UnfreezeCallback: TrainerCallback {
    /// It does not read gradients.
    public var readsGradients: Bool { false }
    /// (epoch, name pattern) pairs.
    public let schedule: [(epoch: Int, pattern: String)]

    /// A callback that unfreezes `pattern` at the start of `epoch` (1-based).
    public init(_ schedule: [(epoch: Int, pattern: String)]) throws {
        for (e, _) in schedule where e < 1 {
            throw EmberError.invalidArgument("cb.unfreeze", "epochs must be >= 1, got \(e)")
        }
        self.schedule = schedule
    }

    public func onEpochBegin(_ trainer: Trainer, epoch: Int) throws {
        for (e, pattern) in schedule where e == epoch {
            let n = trainer.model.network.unfreeze(matching: pattern)
            guard n > 0 else {
                throw EmberError.invalidArgument("cb.unfreeze", "pattern '\(pattern)' matches no parameter")
            }
        }
    }
}

extension Trainer {
    /// A resumable checkpoint: the model file plus optimizer state and trainer counters.
    public static func checkpoint(_ trainer: Trainer) -> [UInt8] {
        let state = trainer.checkpointState.sorted { $0.key < $1.key }.map { ("ember.trainer.\($0.key)", $0.value) }
        return trainer.model.serialized(extra: trainer.optimizer.stateTensors().map { ("optimizer.\($0.0)", $0.1) },
                                        extraMetadata: state)
    }

    /// Resumes from bytes written by `Trainer.checkpoint` into this trainer (whose model must have
    /// the same network).
    public func resume(checkpoint bytes: [UInt8]) throws {
        let (tensors, metadata) = try Safetensors.decode(bytes)
        var all: [String: Tensor] = [:]
        for (k, v) in tensors where k.hasPrefix("optimizer.") { all[k] = v }
        let stored = try Model(tensors: tensors, metadata: metadata)
        for (k, v) in stored.namedTensors { all["model." + k] = v }
        var state: [String: String] = [:]
        for (k, v) in metadata where k.hasPrefix("ember.trainer.") { state[String(k.dropFirst(14))] = v }
        try resume(tensors: all, state: state)
        model.rng = stored.rng
        model.history = stored.history
        try model.adoptScaling(from: stored)
    }
}

extension Model {
    /// Takes the scalings of another model of the same network (resuming a checkpoint).
    func adoptScaling(from other: Model) throws {
        inputScaling = other.inputScaling
        targetScaling = other.targetScaling
        isFitted = other.isFitted
    }
}
