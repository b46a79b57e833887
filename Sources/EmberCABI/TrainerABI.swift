import EmberCore
import EmberNN

// Trainer functions of include/ember.h: slices of epochs or batches, validation, host-driven
// early stopping and optimizer options between slices.

/// Creates a trainer.
@_cdecl("ember_trainer_new")
public func ember_trainer_new(_ out: UnsafeMutablePointer<OpaquePointer?>?, _ model: OpaquePointer?, _ config: UnsafePointer<CChar>?) -> Int32 {
    guarded {
        guard let out else { throw EmberError.invalidArgument("out_trainer", "is NULL") }
        let m = try HandleRegistry.shared.lookup(model, ModelBox.self, "model").model
        let c = try makeTrainerConfig(try parseJSON(try string(config, "config_json"), "config_json"), task: m.task)
        out.pointee = HandleRegistry.shared.register(TrainerBox(try Trainer(model: m, config: c)))
    }
}

/// Frees a trainer.
@_cdecl("ember_trainer_free")
public func ember_trainer_free(_ trainer: OpaquePointer?) -> Int32 {
    guarded { try HandleRegistry.shared.free(trainer, TrainerBox.self, "trainer") }
}

/// Trains a slice.
@_cdecl("ember_trainer_fit")
public func ember_trainer_fit(_ trainer: OpaquePointer?, _ train: OpaquePointer?, _ valid: OpaquePointer?, _ maxEpochs: Int32,
                              _ maxBatches: Int32, _ plannedEpochs: Int32, _ out: TextOut?) -> Int32 {
    guarded {
        let t = try HandleRegistry.shared.lookup(trainer, TrainerBox.self, "trainer").trainer
        let trainData = try HandleRegistry.shared.lookup(train, DatasetBox.self, "train").dataset("train")
        let validData = try valid.map { try HandleRegistry.shared.lookup($0, DatasetBox.self, "valid").dataset("valid") }
        guard maxEpochs >= 0 else { throw EmberError.invalidArgument("max_epochs", "must be >= 0, got \(maxEpochs)") }
        guard maxBatches >= 0 else { throw EmberError.invalidArgument("max_batches", "must be >= 0 (0: no limit), got \(maxBatches)") }
        guard plannedEpochs >= 0 else { throw EmberError.invalidArgument("planned_epochs", "must be >= 0 (0: unknown), got \(plannedEpochs)") }
        let records = try t.fit(trainData, valid: validData, epochs: Int(maxEpochs),
                                maxBatches: maxBatches == 0 ? nil : Int(maxBatches),
                                plannedEpochs: plannedEpochs == 0 ? nil : Int(plannedEpochs))
        if let out { try returnText(JSONValue.array(records.map(\.json)).text, out) }
    }
}

/// The trainer's state.
@_cdecl("ember_trainer_state")
public func ember_trainer_state(_ trainer: OpaquePointer?, _ out: TextOut?) -> Int32 {
    guarded {
        let t = try HandleRegistry.shared.lookup(trainer, TrainerBox.self, "trainer").trainer
        guard let out else { throw EmberError.invalidArgument("out_json", "is NULL") }
        let state: JSONValue = .object([
            ("epoch", .number(Double(t.epoch))),
            ("epoch_in_progress", .bool(t.epochInProgress)),
            ("batches_in_epoch", .number(Double(t.batchesInEpoch))),
            ("batch_loss", t.lastBatchLoss.map { .number($0) } ?? .null),
            ("stopped", .bool(t.stopped)),
            ("best_epoch", t.bestEpoch.map { .number(Double($0)) } ?? .null),
            ("best_score", t.bestScore.map { .number($0) } ?? .null),
            ("lr", .array(t.optimizer.groups.map { .number($0["lr"]) })),
            ("groups", .number(Double(t.optimizer.groups.count))),
            ("non_finite", t.nonFiniteLoss.map { f in
                .object([("epoch", .number(Double(f.epoch))), ("batch", .number(Double(f.batch))),
                         ("loss", .string(f.loss.isNaN ? "NaN" : f.loss > 0 ? "Inf" : "-Inf"))])
            } ?? .null),
        ])
        try returnText(state.text, out)
    }
}

/// The last validation predictions.
@_cdecl("ember_trainer_valid_predictions")
public func ember_trainer_valid_predictions(_ trainer: OpaquePointer?, _ layout: Int32, _ out: UnsafeMutablePointer<Double>?, _ outLen: Int64,
                                            _ outRows: UnsafeMutablePointer<Int64>?, _ outCols: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded {
        let t = try HandleRegistry.shared.lookup(trainer, TrainerBox.self, "trainer").trainer
        let columnMajor = try checkedLayout(layout)
        guard let p = t.lastValidPredictions, p.rank == 2 else {
            throw EmberError(.invalidState, "[trainer] no validation has run yet",
                             detail: EmberError.Detail(op: "valid_predictions", argument: "trainer", expected: "a validated epoch"))
        }
        let rows = p.shape[0], cols = p.shape[1]
        if let out {
            guard outLen == Int64(rows * cols) else {
                throw EmberError(.shapeMismatch, "[out_len] the predictions hold \(rows) × \(cols) = \(rows * cols) values, got out_len \(outLen)",
                                 detail: EmberError.Detail(op: "valid_predictions", argument: "out_len", expected: "\(rows * cols)", got: "\(outLen)"))
            }
            write(p, rows: rows, cols: cols, columnMajor: columnMajor, to: out)
        }
        outRows?.pointee = Int64(rows)
        outCols?.pointee = Int64(cols)
    }
}

/// Reports a host-computed validation score.
@_cdecl("ember_trainer_report_score")
public func ember_trainer_report_score(_ trainer: OpaquePointer?, _ score: Double, _ maximize: Int32, _ outStop: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded {
        let t = try HandleRegistry.shared.lookup(trainer, TrainerBox.self, "trainer").trainer
        guard score.isFinite else {
            throw EmberError(.invalidArgument, "[score] must be finite, got \(score)",
                             detail: EmberError.Detail(op: "report_score", argument: "score", expected: "a finite number", got: "\(score)"))
        }
        try t.reportValidationScore(score, maximize: maximize != 0)
        outStop?.pointee = t.stopped ? 1 : 0
    }
}

/// Sets an optimizer option.
@_cdecl("ember_trainer_set_option")
public func ember_trainer_set_option(_ trainer: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ value: Double, _ group: Int32) -> Int32 {
    guarded {
        let t = try HandleRegistry.shared.lookup(trainer, TrainerBox.self, "trainer").trainer
        let n = try string(name, "name")
        guard group >= -1 else { throw EmberError.invalidArgument("group", "must be >= 0, or -1 for all groups, got \(group)") }
        try t.optimizer.setOption(n, value, group: group == -1 ? nil : Int(group))
    }
}

/// Ends training.
/// The trainer's state for continuing later (weights, optimizer state, epoch, learning rates,
/// schedule and early-stopping state) as safetensors bytes.
@_cdecl("ember_trainer_checkpoint")
public func ember_trainer_checkpoint(_ trainer: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let t = try HandleRegistry.shared.lookup(trainer, TrainerBox.self, "trainer").trainer
        guard let out else { throw EmberError.invalidArgument("out_bytes", "is NULL") }
        let state = t.checkpointState.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        returnBytes(Safetensors.encode(tensors: t.checkpointTensors(), metadata: state), out)
    }
}

/// Continues from ember_trainer_checkpoint's bytes, before the trainer's first slice.
@_cdecl("ember_trainer_resume")
public func ember_trainer_resume(_ trainer: OpaquePointer?, _ bytes: UnsafePointer<UInt8>?, _ length: Int64) -> Int32 {
    guarded {
        let t = try HandleRegistry.shared.lookup(trainer, TrainerBox.self, "trainer").trainer
        let (tensors, state) = try Safetensors.decode(try callerBytes(bytes, length))
        try t.resume(tensors: tensors, state: state)
    }
}

@_cdecl("ember_trainer_finish")
public func ember_trainer_finish(_ trainer: OpaquePointer?) -> Int32 {
    guarded { try HandleRegistry.shared.lookup(trainer, TrainerBox.self, "trainer").trainer.finish() }
}
