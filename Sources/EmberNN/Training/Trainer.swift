import EmberCore

/// One epoch's record in the history.
public struct EpochRecord: Equatable, Sendable {
    /// 1-based epoch number.
    public var epoch: Int
    /// Mean training loss over the epoch's rows.
    public var trainLoss: Double
    /// Validation loss, when validation ran this epoch.
    public var validLoss: Double?
    /// Training measures (on predictions made during training is not possible without a second
    /// pass, so these are computed on the training batches' outputs).
    public var trainMetrics: [String: Double]
    /// Validation measures.
    public var validMetrics: [String: Double]
    /// Learning rate of group 0 at the end of the epoch.
    public var learningRate: Double
}

/// How to train.
public struct TrainerConfig: Equatable, Sendable {
    /// Rows per batch.
    public var batchSize: Int = 32
    /// New random order each epoch (engine RNG).
    public var shuffle: Bool = true
    /// Drop a last incomplete batch. A last batch of one row is always dropped when the network
    /// has batch norm (PyTorch refuses it in training).
    public var dropLast: Bool = false
    /// The optimizer.
    public var optimizer: OptimizerConfig = .adam()
    /// The loss; nil picks the task's default (mse, bce_with_logits, cross_entropy; quantile with
    /// the model's levels for quantile regression).
    public var loss: LossFunction? = nil
    /// A learning-rate schedule; one-cycle steps per batch, the others per epoch.
    public var schedule: LRSchedule? = nil
    /// Validate every `evalFreq` epochs (and always at the last planned epoch).
    public var evalFreq: Int = 1
    /// Measures computed per epoch on training and validation data.
    public var measuresTrain: [Metric] = []
    /// Measures on validation data; the first one drives early stopping (else the validation loss).
    public var measuresValid: [Metric] = []
    /// Stop after this many validations without improvement (0: never).
    public var patience: Int = 0
    /// Minimum improvement that counts.
    public var minDelta: Double = 0
    /// At the end of training, restore the weights of the best validation epoch.
    public var restoreBestWeights: Bool = true
    /// Batch size for validation predictions.
    public var batchSizePredict: Int = 4096
    /// Early stopping is driven by the host: validation still computes the loss, the measures and
    /// the predictions, but only `reportValidationScore` (called by the host with its own score,
    /// e.g. any mlr3 measure) counts towards patience and the best weights.
    public var hostScoring: Bool = false
    /// Use a compiled, allocation-free training step when the network allows it (chains of
    /// linear layers, activations and dropout); it gives bit-identical results to the tape.
    public var compiledStep: Bool = true
    /// When the data has batch sources (image files, bytes), assemble the next batch's inputs on a
    /// background thread while the current batch trains (and validation batches likewise); the
    /// results are identical either way. Pure tensor data never uses a thread.
    public var prefetch: Bool = true

    /// Default configuration.
    public init() {}

    func validate() throws {
        guard batchSize >= 1 else { throw EmberError.invalidArgument("batch_size", "must be >= 1, got \(batchSize)") }
        guard evalFreq >= 1 else { throw EmberError.invalidArgument("eval_freq", "must be >= 1, got \(evalFreq)") }
        guard patience >= 0 else { throw EmberError.invalidArgument("patience", "must be >= 0, got \(patience)") }
        guard minDelta >= 0 && minDelta.isFinite else { throw EmberError.invalidArgument("min_delta", "must be >= 0, got \(minDelta)") }
        guard batchSizePredict >= 1 else { throw EmberError.invalidArgument("batch_size_predict", "must be >= 1") }
        if let schedule { try LRScheduler.validate(schedule) }
    }
}

/// Hooks into the training loop (all optional). Return `true` from `shouldStop` to end training
/// after the current epoch.
public protocol TrainerCallback: AnyObject {
    /// Whether the callback reads the parameters' gradients (in `onAfterBackward`). While no
    /// callback does, plain SGD updates the weights inside the backward pass and leaves them no
    /// gradient (see `Trainer`). `true` unless the callback says otherwise.
    var readsGradients: Bool { get }
    func onBegin(_ trainer: Trainer) throws
    func onEpochBegin(_ trainer: Trainer, epoch: Int) throws
    func onBatchBegin(_ trainer: Trainer, batch: Int) throws
    func onAfterBackward(_ trainer: Trainer, batch: Int) throws
    func onBatchEnd(_ trainer: Trainer, batch: Int, loss: Double) throws
    func onValidationEnd(_ trainer: Trainer, record: EpochRecord, predictions: Tensor) throws
    func onEpochEnd(_ trainer: Trainer, record: EpochRecord) throws
    func onEnd(_ trainer: Trainer) throws
}

extension TrainerCallback {
    public var readsGradients: Bool { true }
    public func onBegin(_ trainer: Trainer) throws {}
    public func onEpochBegin(_ trainer: Trainer, epoch: Int) throws {}
    public func onBatchBegin(_ trainer: Trainer, batch: Int) throws {}
    public func onAfterBackward(_ trainer: Trainer, batch: Int) throws {}
    public func onBatchEnd(_ trainer: Trainer, batch: Int, loss: Double) throws {}
    public func onValidationEnd(_ trainer: Trainer, record: EpochRecord, predictions: Tensor) throws {}
    public func onEpochEnd(_ trainer: Trainer, record: EpochRecord) throws {}
    public func onEnd(_ trainer: Trainer) throws {}
}

/// Trains a `Model` in slices: each `fit(epochs:)` call runs that many more epochs, so a host can
/// show progress, run its own callbacks, change learning rates and stop between slices.
/// Same seed, data and configuration on one thread give bit-identical weights.
///
/// With plain SGD (no momentum, no weight decay), a chain network's compiled step folds each
/// weight's update into the product that computes its gradient (W ← W − lr·dyᵀ·x), unless a
/// callback reads gradients (`TrainerCallback.readsGradients`): those weights then have no
/// gradient after the backward pass. The fused update rounds once where the optimizer's rounds
/// twice, so its weights may differ from the tape's in the last bit.
public final class Trainer {
    /// The model being trained.
    public let model: Model
    /// The configuration.
    public let config: TrainerConfig
    /// The optimizer over the model's parameters.
    public let optimizer: Optimizer
    /// The learning-rate scheduler, if configured.
    public private(set) var scheduler: LRScheduler?
    /// Callbacks, run in order.
    public var callbacks: [TrainerCallback] = []
    /// Epochs completed.
    public private(set) var epoch = 0
    /// Best validation score so far and its epoch (early stopping).
    public private(set) var bestScore: Double?
    /// Epoch of the best validation score.
    public private(set) var bestEpoch: Int?
    /// Whether early stopping (or a callback) ended training.
    public private(set) var stopped = false
    /// Validation predictions of the last validation (probabilities or values), for the host.
    public private(set) var lastValidPredictions: Tensor?
    /// A callback can set this to end training after the current epoch.
    public var stopRequested = false
    let loss: LossFunction
    var bestWeights: [String: Tensor]?
    /// The compiled step, built on first use when the network is a supported chain.
    lazy var chainPlan: ChainPlan? = config.compiledStep ? ChainPlan(model, batchSize: config.batchSize, loss: loss) : nil
    /// Whether compiled steps run split or alone, as measured (`trainBatch`).
    var stepThreading = StepThreading()
    /// Compiled steps this trainer ran on the training thread alone while Ember had several threads:
    /// those measured faster there (`StepThreading`), and half of the steps of each measurement.
    public private(set) var stepsOnOneThread = 0
    var badValidations = 0
    var began = false

    /// Prepares training; the optimizer's state starts empty.
    public init(model: Model, config: TrainerConfig) throws {
        try config.validate()
        self.model = model
        self.config = config
        var loss = config.loss ?? model.task.defaultLossFunction
        // A quantile loss without levels takes the model's (quantile regression).
        if loss.kind == .quantile && loss.quantiles.isEmpty { loss.quantiles = model.task.quantiles }
        self.loss = loss
        // Gradients, up to two optimizer slots (Adam's moments) and the two copies of the weights
        // kept against a non-finite loss (`nonFiniteLoss`): five more floats per parameter.
        let parameters = model.network.namedParameters().reduce(0) { $0 + $1.1.value.count }
        try MemoryBudget.check(MemoryBudget.saturatingProduct([parameters, MemoryLayout<Float>.size, 5]),
                               "training a network of \(parameters) parameters (gradients, optimizer state, two copies of the weights)",
                               op: "fit", advice: "use a smaller network")
        self.optimizer = try config.optimizer.make(named: model.network.namedParameters())
        // The weights of the last finite loss, for a non-finite one (stopOnNonFiniteLoss).
        optimizer.keepsValuesBeforeStep = true
        if let s = config.schedule { scheduler = try LRScheduler(s, optimizer: optimizer) }
    }

    /// Whether the network has batch norm (a training batch of one row is then dropped).
    var hasBatchNorm: Bool { model.network.namedModules().contains { $0.1 is BatchNorm } }

    /// Runs up to `epochs` more epochs on `train`, validating on `valid` every `evalFreq` epochs,
    /// and returns the records of the epochs it completed. With `maxBatches`, the call also stops
    /// after that many batches, possibly inside an epoch; the next call continues that epoch where
    /// it stopped (finishing it counts as one of its `epochs`). Slices of any size give the same
    /// weights as one uninterrupted run. Stops early when patience runs out (`stopped`).
    /// `plannedEpochs` (the total) makes the last planned epoch always validate.
    @discardableResult
    public func fit(_ train: Dataset, valid: Dataset? = nil, epochs: Int, maxBatches: Int? = nil,
                    plannedEpochs: Int? = nil) throws -> [EpochRecord] {
        guard epochs >= 0 else { throw EmberError.invalidArgument("epochs", "must be >= 0, got \(epochs)") }
        if let maxBatches, maxBatches < 1 {
            throw EmberError.invalidArgument("max_batches", "must be >= 1, got \(maxBatches)")
        }
        guard train.target != nil else { throw EmberError.invalidArgument("fit", "the training data has no target") }
        guard train.count >= 1 else { throw EmberError.invalidArgument("fit", "needs at least one training row") }
        if let current, current.order.count != train.count {
            throw EmberError(.invalidState, "[fit] an epoch over \(current.order.count) rows is in progress; continue it with the same training data (got \(train.count) rows)",
                             detail: EmberError.Detail(op: "fit", argument: "train", expected: "\(current.order.count) rows", got: "\(train.count)"))
        }
        try model.check(train, op: "fit")
        if let valid {
            guard valid.target != nil else { throw EmberError.invalidArgument("fit", "the validation data has no target") }
            try model.check(valid, op: "validate")
        }
        // A batch keeps every node's values and their gradients, plus scratch of the same order.
        let batchRows = min(config.batchSize, train.count)
        try MemoryBudget.check(MemoryBudget.saturatingProduct([batchRows, model.network.valuesPerSample, MemoryLayout<Float>.size, 3]),
                               "a training batch of \(batchRows) rows (the network's activations and their gradients)",
                               op: "fit", argument: "batch_size", advice: "use a smaller batch_size")
        try model.fitScaling(train)
        if !began {
            began = true
            for c in callbacks { try c.onBegin(self) }
        }
        var records: [EpochRecord] = []
        var batchesLeft = maxBatches ?? Int.max
        try withDenormalsFlushed {
            while records.count < epochs && !stopped && batchesLeft > 0 {
                var state: EpochState
                if let current {
                    state = current
                } else {
                    epoch += 1
                    for c in callbacks { try c.onEpochBegin(self, epoch: epoch) }
                    state = EpochState(order: config.shuffle ? model.rng.permutation(train.count) : Array(0..<train.count))
                }
                let finished: Bool
                do {
                    finished = try runBatches(train, &state, limit: &batchesLeft)
                } catch let failure as BatchInputFailure {
                    // The batches before the failing one trained (or an interrupt came between
                    // batches): keep the epoch in progress, so the model, the batch count and a
                    // later `fit` agree.
                    current = state
                    throw failure.error
                }
                guard finished else {
                    current = state
                    break
                }
                current = nil
                records.append(try endEpoch(train, valid, state, plannedEpochs: plannedEpochs))
            }
        }
        return records
    }

    /// The part of an epoch done so far (a batch-limited slice can stop inside an epoch).
    struct EpochState {
        /// Row order of the epoch.
        var order: [Int]
        /// Next row position in `order`.
        var start = 0
        /// Batches run.
        var batch = 0
        /// Sum of batch losses × rows, and rows seen.
        var total = 0.0, seen = 0
        /// Raw outputs and rows of the training batches (only when training measures are wanted).
        var outputs: [Float] = [], rows: [Int] = []
    }

    /// The epoch in progress, if a slice stopped inside one.
    var current: EpochState?

    /// Whether a slice stopped inside an epoch (the next `fit` continues it).
    public var epochInProgress: Bool { current != nil }

    /// Batches run in the epoch in progress (0 between epochs).
    public var batchesInEpoch: Int { current?.batch ?? 0 }

    /// The training loss of the last batch run (nil before the first): what a learning-rate
    /// sweep reads after each one-batch slice.
    public private(set) var lastBatchLoss: Double?

    var perBatchSchedule: Bool {
        if case .oneCycle = config.schedule { return true }
        return false
    }

    /// An error assembling a batch's inputs (an unreadable image file), thrown before the batch
    /// starts: `fit` keeps the epoch state of the batches before it.
    struct BatchInputFailure: Error {
        let error: any Error
    }

    /// The end of the batch that starts at `start` of an epoch over `n` rows, or nil when no batch
    /// starts there (the epoch is over, or a short last batch is dropped).
    func batchEnd(from start: Int, _ n: Int) -> Int? {
        guard start < n else { return nil }
        let end = min(start + config.batchSize, n)
        let size = end - start
        if size < config.batchSize && (config.dropLast || (size == 1 && hasBatchNorm)) && start > 0 { return nil }
        return end
    }

    /// Runs batches of the epoch until it ends (returns true) or `limit` batches ran (false).
    /// With batch sources, each batch's inputs are assembled before the batch begins (with
    /// `prefetch`, on a background thread one batch ahead); a failure throws `BatchInputFailure`.
    func runBatches(_ train: Dataset, _ st: inout EpochState, limit: inout Int) throws -> Bool {
        let n = st.order.count
        let wantTrainMetrics = !config.measuresTrain.isEmpty
        let prefetcher = config.prefetch && !train.sources.isEmpty ? model.prefetcher(train) : nil
        defer { prefetcher?.close() }
        while let end = batchEnd(from: st.start, n) {
            if limit <= 0 || stopped { return false }
            do {
                try Interrupts.poll("fit", "in epoch \(epoch) after \(st.batch) batch(es)")
            } catch {
                throw BatchInputFailure(error: error)
            }
            limit -= 1
            let rows = st.order[st.start..<end]
            var inputs: [Tensor]?
            if !train.sources.isEmpty {
                do {
                    if let prefetcher {
                        // The next batch of this call, if it will run.
                        let next = limit > 0 ? batchEnd(from: end, n).map { Array(st.order[end..<$0]) } : nil
                        inputs = try prefetcher.inputs(Array(rows), next: next)
                    } else {
                        inputs = try Model.prepareInputs(train, rows: rows, spec: model.spec, scaling: model.inputScaling)
                    }
                } catch {
                    throw BatchInputFailure(error: error)
                }
            }
            st.batch += 1
            for c in callbacks { try c.onBatchBegin(self, batch: st.batch) }
            let lv = try trainBatch(train, rows: rows, inputs: inputs, batch: st.batch, collect: wantTrainMetrics, outputs: &st.outputs)
            if wantTrainMetrics { st.rows.append(contentsOf: rows) }
            if perBatchSchedule, let scheduler, scheduler.lastEpoch + 1 < (oneCycleTotal ?? Int.max) { try scheduler.step() }
            lastBatchLoss = lv
            st.total += lv * Double(rows.count)
            st.seen += rows.count
            for c in callbacks { try c.onBatchEnd(self, batch: st.batch, loss: lv) }
            st.start = end
        }
        return true
    }

    /// Closes an epoch: training measures, validation, schedule step, history and callbacks.
    func endEpoch(_ train: Dataset, _ valid: Dataset?, _ st: EpochState, plannedEpochs: Int?) throws -> EpochRecord {
        optimizer.zeroGrad()
        var record = EpochRecord(epoch: epoch, trainLoss: st.seen > 0 ? st.total / Double(st.seen) : .nan, validLoss: nil,
                                 trainMetrics: [:], validMetrics: [:], learningRate: optimizer.learningRate)
        if !config.measuresTrain.isEmpty, let y = train.target {
            let z = try Tensor(shape: [st.rows.count, model.task.outputs], data: st.outputs)
            let p = model.probabilities(z)
            let t = try y.gatherRows(st.rows)
            for m in config.measuresTrain { record.trainMetrics[m.rawValue] = try m.score(p, t, task: model.task) }
        }
        let isLast = plannedEpochs.map { epoch >= $0 } ?? false
        if let valid, epoch % config.evalFreq == 0 || isLast {
            try validate(valid, into: &record)
        }
        if let scheduler, !perBatchSchedule {
            if case .reduceOnPlateau = config.schedule {
                if let score = record.validLoss { try scheduler.step(metric: score) }
            } else {
                try scheduler.step()
            }
        }
        record.learningRate = optimizer.learningRate
        model.history.append(record)
        for c in callbacks { try c.onEpochEnd(self, record: record) }
        if stopRequested { stopped = true }
        return record
    }

    /// One training step on `rows`: forward, loss, backward, callbacks after backward, optimizer
    /// step. `inputs` are the batch's prepared inputs when assembled beforehand (batch sources),
    /// else they are gathered here. Returns the batch loss; appends the raw outputs to `outputs`
    /// when `collect`. With a compiled step and no callbacks this allocates nothing in the steady state.
    ///
    /// With several threads, a compiled step runs on the pool's threads or on this thread alone,
    /// whichever the trainer measured to be faster in the current placement of the threads
    /// (`StepThreading`); the weights are the same bits either way.
    func trainBatch(_ train: Dataset, rows: ArraySlice<Int>, inputs: [Tensor]? = nil, batch: Int, collect: Bool,
                    outputs: inout [Float]) throws -> Double {
        guard let plan = chainPlan, Parallel.numThreads > 1 else {
            return try trainBatchHere(train, rows: rows, inputs: inputs, batch: batch, collect: collect, outputs: &outputs)
        }
        // Batches of the configured size compare (or all of them, when the data are fewer rows).
        let twoDies = Parallel.threadsOnTwoDies, full = rows.count == min(plan.capacity, train.count)
        let way = stepThreading.next(twoDies: twoDies, fullBatch: full)
        let start = way.timed ? StepThreading.now() : 0
        let lv: Double
        if way.alone {
            stepsOnOneThread += 1
            lv = try Parallel.serially {
                try trainBatchHere(train, rows: rows, inputs: inputs, batch: batch, collect: collect, outputs: &outputs)
            }
        } else {
            lv = try trainBatchHere(train, rows: rows, inputs: inputs, batch: batch, collect: collect, outputs: &outputs)
        }
        stepThreading.record(twoDies: twoDies, fullBatch: full, nanoseconds: way.timed ? StepThreading.now() &- start : nil)
        return lv
    }

    /// `trainBatch` on the threads it is given.
    private func trainBatchHere(_ train: Dataset, rows: ArraySlice<Int>, inputs: [Tensor]?, batch: Int, collect: Bool,
                                outputs: inout [Float]) throws -> Double {
        keepWeightsBeforeBatch()
        let lv: Double
        if let plan = chainPlan {
            optimizer.zeroGrad()
            // When no callback reads the gradients between the backward pass and the step, plain
            // SGD updates the weights inside the backward pass (ChainPlan.step).
            let fuse = !callbacks.contains { $0.readsGradients }
            lv = try plan.step(model, train, rows: rows, prepared: inputs?.first, loss: loss,
                               optimizer: fuse ? optimizer : nil, rng: &model.rng)
            if collect {
                let out = plan.values[plan.stages.count], k = plan.widths[plan.stages.count]
                outputs.append(contentsOf: UnsafeBufferPointer(start: out, count: rows.count * k))
            }
        } else {
            let xs = try model.prepare(train, rows: rows, training: true, prepared: inputs)
            let y = try batchTarget(train, rows: rows)
            optimizer.zeroGrad()
            var ctx = ForwardContext(training: true, rng: model.rng)
            let out = try model.network.forward(xs, &ctx)
            model.rng = ctx.rng
            let l = try model.memberLoss(loss, out, y)
            lv = Double(l.value.scalarValue ?? .nan)
            if collect { outputs.append(contentsOf: try model.combineMembers(out.value).data) }
            try l.backward()
        }
        guard lv.isFinite else {
            stopOnNonFiniteLoss(lv, batch: batch)
            return lv
        }
        for c in callbacks { try c.onAfterBackward(self, batch: batch) }
        try optimizer.step()
        return lv
    }

    /// A batch's target as the loss takes it: integer classes (single-label classification) or values.
    enum BatchTarget {
        case classes(IndexTensor)
        case values(Tensor)

        func loss(_ f: LossFunction, _ output: Variable) throws -> Variable {
            switch self {
            case let .classes(c): return try f(output, classes: c)
            case let .values(t): return try f(output, t)
            }
        }
    }

    func batchTarget(_ data: Dataset, rows: some Collection<Int>) throws -> BatchTarget {
        switch model.task {
        case .binary, .multiclass: return .classes(try model.prepareClasses(data, rows: rows))
        case .regression, .quantileRegression, .multilabel: return .values(try model.prepareTarget(data, rows: rows))
        }
    }

    /// Where the training loss became NaN or infinite: training stopped there (`stopped`) and the
    /// model went back to the weights of the last finite loss.
    public struct NonFiniteLoss: Equatable, Sendable {
        /// The epoch (1-based) and the batch within it (1-based) whose loss was not finite.
        public var epoch: Int, batch: Int
        /// The loss (NaN or ±infinity).
        public var loss: Double
    }

    /// Set when a training loss was NaN or infinite. Training then stops: that batch's step is
    /// not taken and the parameters and buffers return to their values before the previous batch,
    /// the last ones whose loss was finite (the initial ones when the first batch's loss is not
    /// finite). The host decides whether that is an error.
    public private(set) var nonFiniteLoss: NonFiniteLoss?

    /// The buffers, and two copies of their values: at the start of the current batch and of the
    /// previous one (slot `batchesStarted % 2` is the current batch's). Allocated on the first
    /// batch, then copied into in place (no allocation in the steady state). The parameters' values
    /// before the previous batch are kept by the optimizer (`Optimizer.keepsValuesBeforeStep`):
    /// inside its step, or, for SGD's update fused into the compiled step's products, by
    /// `Optimizer.fusedUpdate` (without a copy where the weights fit in the caches). A separate copy
    /// of every weight before each batch cost a tenth of an SGD step at width 400.
    lazy var backedUpBuffers: [Buffer] = model.network.namedBuffers().map { $0.1 }
    var bufferCopies: [[[Float]]] = [[], []]
    var batchesStarted = 0

    /// Copies the buffers into the current batch's slot (the optimizer keeps the parameters').
    func keepWeightsBeforeBatch() {
        let slot = batchesStarted % 2
        batchesStarted += 1
        if bufferCopies[slot].isEmpty {
            bufferCopies[slot] = backedUpBuffers.map { [Float](repeating: 0, count: $0.value.count) }
        }
        for (i, b) in backedUpBuffers.enumerated() {
            copy(b.value, into: &bufferCopies[slot][i])
        }
    }

    private func copy(_ t: Tensor, into buffer: inout [Float]) {
        let n = min(t.count, buffer.count)
        buffer.withUnsafeMutableBufferPointer { dst in
            guard let base = dst.baseAddress, n > 0 else { return }
            base.update(from: t.unsafeReadPointer, count: n)
        }
    }

    /// Records the non-finite loss, stops training and restores the copy of the previous batch
    /// (of this batch when it is the first).
    func stopOnNonFiniteLoss(_ loss: Double, batch: Int) {
        nonFiniteLoss = NonFiniteLoss(epoch: epoch, batch: batch, loss: loss)
        stopped = true
        optimizer.zeroGrad()
        guard batchesStarted >= 1 else { return }
        // On the first batch only the buffers changed (in its forward pass); later, the optimizer's
        // last step was the previous batch's (this batch's step is not taken).
        if batchesStarted >= 2 { optimizer.restoreValuesBeforeLastStep() }
        let copies = bufferCopies[batchesStarted >= 2 ? (batchesStarted - 2) % 2 : 0]
        guard copies.count == backedUpBuffers.count else { return }
        // New tensors (a best-weights snapshot may share the current storage).
        for (j, b) in backedUpBuffers.enumerated() {
            if let t = try? Tensor(shape: b.value.shape, data: copies[j]) { b.value = t }
        }
    }

    var oneCycleTotal: Int? {
        if case let .oneCycle(_, total, _, _, _, _, _, _, _) = config.schedule { return total }
        return nil
    }

    /// Scores the validation data, updates early stopping and keeps the predictions for the host.
    func validate(_ valid: Dataset, into record: inout EpochRecord) throws {
        let z = try model.logits(valid, batchSize: config.batchSizePredict, prefetch: config.prefetch)
        let y = try batchTarget(valid, rows: 0..<valid.count)
        let l = try GradientMode.withoutGradients { try y.loss(loss, Variable(z)) }
        record.validLoss = Double(l.value.scalarValue ?? .nan)
        let p = model.probabilities(z)
        lastValidPredictions = p
        guard let target = valid.target else { return }
        for m in config.measuresValid { record.validMetrics[m.rawValue] = try m.score(p, target, task: model.task) }
        for c in callbacks { try c.onValidationEnd(self, record: record, predictions: p) }
        let (score, maximize): (Double, Bool) = {
            if let m = config.measuresValid.first, let v = record.validMetrics[m.rawValue] { return (v, m.maximize) }
            return (record.validLoss ?? .nan, false)
        }()
        if !config.hostScoring { try reportValidationScore(score, maximize: maximize) }
    }

    /// Early stopping on a score computed by the host (e.g. any mlr3 measure): improvement by more
    /// than `minDelta` resets patience and remembers the weights.
    public func reportValidationScore(_ score: Double, maximize: Bool) throws {
        guard !score.isNaN else { throw EmberError.invalidArgument("validation", "the validation score is NaN") }
        let improved: Bool
        if let best = bestScore {
            improved = maximize ? score > best + config.minDelta : score < best - config.minDelta
        } else {
            improved = true
        }
        if improved {
            bestScore = score
            bestEpoch = epoch
            badValidations = 0
            if config.restoreBestWeights && config.patience > 0 { bestWeights = model.snapshotWeights() }
        } else {
            badValidations += 1
            if config.patience > 0 && badValidations >= config.patience { stopped = true }
        }
    }

    /// Ends training: restores the best weights when configured and runs `onEnd` callbacks.
    public func finish() throws {
        if config.restoreBestWeights, let best = bestWeights { try model.loadWeights(best) }
        for c in callbacks { try c.onEnd(self) }
    }

    // MARK: Checkpoints

    /// Trainer state for a checkpoint (with the model's weights and the optimizer's state).
    public func checkpointTensors() -> [(String, Tensor)] {
        model.namedTensors.map { ("model.\($0.0)", $0.1) } + optimizer.stateTensors().map { ("optimizer.\($0.0)", $0.1) }
    }

    /// Scalar trainer state for a checkpoint.
    public var checkpointState: [String: String] {
        var s: [String: String] = ["epoch": String(epoch), "bad_validations": String(badValidations), "stopped": stopped ? "1" : "0"]
        if let b = bestScore { s["best_score"] = "\(b)" }
        if let e = bestEpoch { s["best_epoch"] = String(e) }
        s["lr"] = optimizer.groups.map { "\($0["lr"])" }.joined(separator: ",")
        s["scheduler_epoch"] = String(scheduler?.lastEpoch ?? 0)
        return s
    }

    /// Restores a checkpoint written from `checkpointTensors()` and `checkpointState`.
    public func resume(tensors: [String: Tensor], state: [String: String]) throws {
        var weights: [String: Tensor] = [:], opt: [String: Tensor] = [:]
        for (k, v) in tensors {
            if k.hasPrefix("model.") { weights[String(k.dropFirst(6))] = v } else if k.hasPrefix("optimizer.") { opt[String(k.dropFirst(10))] = v }
        }
        try model.loadWeights(weights)
        try optimizer.loadState(opt)
        guard let e = state["epoch"].flatMap({ Int($0) }), e >= 0 else {
            throw EmberError(.corruptData, "[checkpoint] missing or malformed 'epoch'")
        }
        epoch = e
        badValidations = state["bad_validations"].flatMap { Int($0) } ?? 0
        stopped = state["stopped"] == "1"
        bestScore = state["best_score"].flatMap { Double($0) }
        bestEpoch = state["best_epoch"].flatMap { Int($0) }
        if let lrs = state["lr"]?.split(separator: ",").compactMap({ Double($0) }), lrs.count == optimizer.groups.count {
            for (g, lr) in zip(optimizer.groups, lrs) { g.options["lr"] = lr }
        }
        if let s = state["scheduler_epoch"].flatMap({ Int($0) }), let scheduler { scheduler.restore(lastEpoch: s) }
        began = true
    }
}
