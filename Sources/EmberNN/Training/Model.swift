import CEmberKernels
import EmberCore
import Glibc

/// A network with what it needs to be used on data: the task (head and loss), class names, the
/// standardisation of numeric inputs and of a regression target (fitted on the first training
/// data and stored), host metadata, and the engine RNG that drives initialisation, shuffling and
/// dropout. Saved and loaded as one safetensors file (`Model+File.swift`).
public final class Model {
    /// The network description.
    public let spec: NetworkSpec
    /// The task.
    public let task: TaskKind
    /// Class names (classification), positive class first for binary tasks; label names (multilabel).
    public var classNames: [String]
    /// The network.
    public let network: GraphNetwork
    /// Which columns of each numeric input are standardised (default: all).
    public let standardize: [String: [Bool]]
    /// Whether a regression target is standardised for training (quantile regression: every
    /// output is on the standardised scale of the one target).
    public let standardizeTarget: Bool
    /// Fitted scaling per numeric input.
    public internal(set) var inputScaling: [String: Standardization]
    /// Fitted target scaling (regression).
    public internal(set) var targetScaling: Standardization
    /// Whether the scalings have been fitted.
    public internal(set) var isFitted = false
    /// Free-form strings the host stores with the model (e.g. R's feature encoding).
    public var hostMetadata: [String: String] = [:]
    /// What regression predictions apply to the network's output: `.exp` for a network that
    /// outputs a log-rate (the Poisson loss on log inputs), so that predictions are rates.
    public var outputLink: OutputLink = .identity {
        didSet { if task != .regression || standardizeTarget { outputLink = .identity } }
    }
    /// Image transforms of image inputs, by input name (`setInputTransforms`).
    public internal(set) var inputTransforms: [String: InputTransforms] = [:]
    /// The engine RNG (initialisation, shuffling, dropout, random augmentation).
    public internal(set) var rng: RandomGenerator
    /// Per-epoch training record.
    public internal(set) var history: [EpochRecord] = []
    /// The members of an ensemble network (one that ends with an `ensemble_head` node and outputs
    /// [members, outputs] per sample, such as TabM), else 1. Training applies the loss to each
    /// member's output (the mean over members of the per-member loss); `logits` and `predict`
    /// average the members' predictions (`combineMembers`), which validation scores (its loss
    /// included).
    public let ensembleMembers: Int

    /// Builds a model with fresh weights drawn from an engine RNG seeded with `seed`.
    /// `standardize` lists, per numeric input name, which columns to standardise (all when absent).
    public init(spec: NetworkSpec, task: TaskKind, classNames: [String] = [], standardize: [String: [Bool]] = [:],
                standardizeTarget: Bool = true, seed: UInt64) throws {
        try task.validate()
        if !classNames.isEmpty && classNames.count != task.predictionColumns {
            throw EmberError.invalidArgument("model", "expected \(task.predictionColumns) class names, got \(classNames.count)")
        }
        var rng = RandomGenerator(seed: seed)
        self.network = try GraphNetwork(spec, headOutputs: task.outputs, rng: &rng)
        let out = network.outputShape
        if spec.nodes.first(where: { $0.id == spec.output })?.op == .ensembleHead, out.count == 2, out[1] == task.outputs {
            ensembleMembers = out[0]
        } else {
            ensembleMembers = 1
        }
        guard ensembleMembers > 1 || out == [task.outputs] else {
            throw EmberError.shapeMismatch("model", "the network outputs \(shapeString(network.outputShape)) per sample; a \(task.name) task needs [\(task.outputs)] (end the network with a 'head' node)")
        }
        for (path, module) in network.namedModules() {
            guard let ple = module as? PiecewiseLinearEmbeddings else { continue }
            guard spec.inputs.contains(where: { input in
                if case .numeric = input.kind { return input.name == ple.inputName }
                return false
            }) else {
                throw EmberError.invalidArgument("model", "piecewise-linear embeddings '\(path)' must read a numeric network input (their bins come from its training data), not '\(ple.inputName)'")
            }
        }
        self.spec = spec
        self.task = task
        self.classNames = classNames
        self.rng = rng
        var masks: [String: [Bool]] = [:]
        var scaling: [String: Standardization] = [:]
        for input in spec.inputs {
            guard case let .numeric(f) = input.kind else { continue }
            let mask = standardize[input.name] ?? [Bool](repeating: true, count: f)
            guard mask.count == f else {
                throw EmberError.shapeMismatch("model", "standardize for input '\(input.name)' has \(mask.count) entries; the input has \(f) features")
            }
            masks[input.name] = mask
            scaling[input.name] = .identity(f)
        }
        for name in standardize.keys where masks[name] == nil {
            throw EmberError.invalidArgument("model", "standardize names '\(name)', which is not a numeric input")
        }
        self.standardize = masks
        self.standardizeTarget = standardizeTarget
        self.inputScaling = scaling
        self.targetScaling = .identity(1)
    }

    /// Fits the scalings on training data (once; later calls keep them).
    func fitScaling(_ data: Dataset) throws {
        guard !isFitted else { return }
        for (name, mask) in standardize {
            guard let x = data.inputs[name] else { continue }
            inputScaling[name] = Standardization.fit(x, mask: mask)
        }
        // Layers whose initial state comes from the training data (piecewise-linear bins), on
        // the scale the network reads.
        for case let ple as PiecewiseLinearEmbeddings in network.namedModules().map(\.1) {
            guard let x = data.inputs[ple.inputName] else { continue }
            try ple.fitBins(inputScaling[ple.inputName]?.apply(x) ?? x)
        }
        if task.isRegression && standardizeTarget, let y = data.target {
            targetScaling = Standardization.fit(try y.reshaped([y.count, 1]), mask: [true])
        }
        isFitted = true
    }

    /// Inputs of a batch, standardised (or `prepared` beforehand by a prefetcher), then transformed
    /// (random image transforms only in `training`).
    func prepare(_ data: Dataset, rows: some Collection<Int>, training: Bool, prepared: [Tensor]? = nil) throws -> [Variable] {
        let inputs = try prepared ?? Model.prepareInputs(data, rows: rows, spec: spec, scaling: inputScaling)
        return try zip(spec.inputs, try transformed(inputs, training: training)).map { input, t in
            // Integer codes travel beside their float view to the layers that index with them.
            guard case .categorical = input.kind, let codes = data.codes[input.name] else { return Variable(t) }
            return try Variable(t, codes: try codes.gatherRows(rows, op: "dataset"))
        }
    }

    /// Inputs of a batch in the order of `spec.inputs`, standardised by `scaling`: reads nothing
    /// but its arguments, so a background thread can run it (`prefetcher`).
    static func prepareInputs(_ data: Dataset, rows: some Collection<Int>, spec: NetworkSpec,
                              scaling: [String: Standardization]) throws -> [Tensor] {
        let range = rows as? Range<Int>
        return try spec.inputs.map { input in
            // A range of rows (prediction) is standardised as it is copied: one pass.
            if let range, let s = scaling[input.name], let x = data.inputs[input.name] { return try s.apply(x, rows: range) }
            let t = try data.batch(rows, input: input)
            if let s = scaling[input.name] { return s.apply(t) }
            return t
        }
    }

    /// A prefetcher of `data`'s batch inputs with the current scalings (fitted before training).
    func prefetcher(_ data: Dataset) -> BatchPrefetcher {
        let spec = spec, scaling = inputScaling
        return BatchPrefetcher { rows in try Model.prepareInputs(data, rows: rows, spec: spec, scaling: scaling) }
    }

    /// Targets of a batch, standardised for regression, shaped as the loss expects ([rows, K] for
    /// multilabel).
    func prepareTarget(_ data: Dataset, rows: some Collection<Int>) throws -> Tensor {
        guard let y = data.target else { throw EmberError.invalidArgument("fit", "the dataset has no target") }
        let t = try y.gatherRows(rows)
        if task.isRegression { return targetScaling.apply(try t.reshaped([t.count, 1])) }
        return task.targetColumns > 1 ? try t.reshaped([rows.count, task.targetColumns]) : t
    }

    /// Class targets of a batch (classification; `check` has validated them): the dataset's
    /// integers, or its float targets converted without re-checking.
    func prepareClasses(_ data: Dataset, rows: some Collection<Int>) throws -> IndexTensor {
        if let classes = data.classes { return try classes.gatherRows(rows, op: "fit") }
        guard let y = data.target else { throw EmberError.invalidArgument("fit", "the dataset has no target") }
        let t = try y.gatherRows(rows)
        return IndexTensor(t.withUnsafeBufferPointer { $0.map { $0 >= 0 && $0 < 16_777_216 ? Int($0) : -1 } })
    }

    /// Checks that the dataset fits the network's inputs and, if present, the task's targets.
    func check(_ data: Dataset, op: String) throws {
        for input in spec.inputs {
            guard let shape = data.sampleShape(of: input.name) else {
                throw EmberError.invalidArgument(op, "the data lacks input '\(input.name)'")
            }
            guard shape == dataShape(of: input) else {
                throw EmberError.shapeMismatch(op, "input '\(input.name)' has shape \(shapeString([data.count] + shape)); expected [n, \(dataShape(of: input).map(String.init).joined(separator: ", "))]")
            }
            // A source's values are checked as its batches are produced (bytes are always finite).
            guard let t = data.inputs[input.name] else { continue }
            let p = t.unsafeReadPointer
            let width = max(input.sampleShape.reduce(1, *), 1)
            // A vectorised scan (the whole training set is checked once per fit).
            if let bad = firstNonFinite(p, count: t.count) {
                throw EmberError(.invalidArgument, "[\(op)] input '\(input.name)' holds \(p[bad]) in \(ErrorIndex.describe(("row", bad / width))); expected finite values",
                                 detail: EmberError.Detail(op: op, argument: input.name, index: bad / width, expected: "finite values", got: "\(p[bad])"))
            }
            // Training data must hold known levels; at prediction an unknown code is the network's
            // business (one-hot encodes it as zeros, a categorical tokenizer refuses it).
            if case let .categorical(cards) = input.kind, op != "predict", let codes = data.codes[input.name] {
                // Integer codes: range checks only (once per fit), worded as for float codes.
                let k = cards.count
                for (i, v) in codes.data.enumerated() where v >= cards[i % k] {
                    throw EmberError(.invalidArgument, "[\(op)] input '\(input.name)': \(ErrorIndex.describe(("row", i / k), ("column", i % k))) holds code \(Float(v)); expected an integer in 0..<\(cards[i % k])",
                                     detail: EmberError.Detail(op: op, argument: input.name, index: i / k, expected: "a code in 0..<\(cards[i % k])", got: "\(Float(v))"))
                }
            } else if case let .categorical(cards) = input.kind, op != "predict" {
                let k = cards.count
                for i in 0..<t.count {
                    let v = p[i], card = cards[i % k]
                    guard v >= 0, v < Float(card), v == v.rounded() else {
                        throw EmberError(.invalidArgument, "[\(op)] input '\(input.name)': \(ErrorIndex.describe(("row", i / k), ("column", i % k))) holds code \(v); expected an integer in 0..<\(card)",
                                         detail: EmberError.Detail(op: op, argument: input.name, index: i / k, expected: "a code in 0..<\(card)", got: "\(v)"))
                    }
                }
            }
        }
        guard let y = data.target else { return }
        let width = task.targetColumns
        guard y.count == data.count * width else {
            throw EmberError(.shapeMismatch, "[\(op)] the target has \(y.count) values; a \(task.name) model needs \(width) per row (\(data.count) rows)",
                             detail: EmberError.Detail(op: op, argument: "target", expected: "\(data.count * width) values", got: "\(y.count)"))
        }
        // Integer class targets: range checks only, once (the float view holds the same values).
        if let classes = data.classes, !task.isRegression {
            let bound: Int
            switch task {
            case .binary: bound = 2
            case let .multiclass(k): bound = k
            case .regression, .quantileRegression, .multilabel:
                throw EmberError(.invalidArgument, "[\(op)] a \(task.name) model needs value targets; the data holds class targets",
                                 detail: EmberError.Detail(op: op, argument: "target", expected: "value targets", got: "class targets"))
            }
            for (i, c) in classes.data.enumerated() where c < 0 || c >= bound {
                throw Model.badTarget(op, i, Float(c), bound == 2 ? "0 or 1" : "a class index in 0..<\(bound)")
            }
            return
        }
        let p = y.unsafeReadPointer
        for i in 0..<y.count {
            let t = p[i]
            switch task {
            case .regression, .quantileRegression:
                guard t.isFinite else { throw Model.badTarget(op, i, t, "a finite value") }
            case .binary:
                guard t == 0 || t == 1 else { throw Model.badTarget(op, i, t, "0 or 1") }
            case let .multiclass(k):
                guard t >= 0, t < Float(k), t == t.rounded() else { throw Model.badTarget(op, i, t, "a class index in 0..<\(k)") }
            case .multilabel:
                guard t == 0 || t == 1 else {
                    throw EmberError(.invalidArgument, "[\(op)] target \(ErrorIndex.describe(("row", i / width), ("label", i % width))) is \(t); expected 0 or 1",
                                     detail: EmberError.Detail(op: op, argument: "target", index: i / width, expected: "0 or 1", got: "\(t)"))
                }
            }
        }
    }

    static func badTarget(_ op: String, _ i: Int, _ t: Float, _ expected: String) -> EmberError {
        EmberError(.invalidArgument, "[\(op)] \(ErrorIndex.describe(("target", i))) is \(t); expected \(expected)",
                   detail: EmberError.Detail(op: op, argument: "target", index: i, expected: expected, got: "\(t)"))
    }

    /// Raw network outputs (logits, or standardised values for regression) without a tape.
    /// With `prefetch` and batch sources in `data` (image files, bytes), the next batch's inputs
    /// are assembled on a background thread while the current batch runs (same results).
    public func logits(_ data: Dataset, batchSize: Int = 4096, prefetch: Bool = true) throws -> Tensor {
        guard batchSize >= 1 else { throw EmberError.invalidArgument("batch_size_predict", "must be >= 1, got \(batchSize)") }
        try check(data.withoutTarget(), op: "predict")
        let n = data.count, k = task.outputs
        // Outputs (the logits, the predictions and the host's copy) and one batch's activations:
        // predictions stream through batches, so the peak grows with the rows only by the outputs.
        let batchRows = min(batchSize, n), floatBytes = MemoryLayout<Float>.size
        try MemoryBudget.check(MemoryBudget.saturatingSum([MemoryBudget.saturatingProduct([n, k, floatBytes, 3]),
                                                           MemoryBudget.saturatingProduct([batchRows, network.valuesPerSample, floatBytes])]),
                               "predicting \(n) rows (their outputs and the activations of a batch of \(batchRows) rows)",
                               op: "predict", argument: "batch_size", advice: "predict fewer rows at once or with a smaller batch size")
        var ctx = ForwardContext(training: false, rng: rng)
        // Convolutions run with batch norms folded in and their sums and ReLUs fused (InferencePlan),
        // when there are enough samples to repay folding the weights.
        if n >= InferencePlan.minimumSamples { ctx.inference = InferenceCache() }
        let prefetcher = prefetch && !data.sources.isEmpty ? self.prefetcher(data) : nil
        defer { prefetcher?.close() }
        // Each batch's outputs go straight into the result (no second copy of n × k values).
        return try Tensor.build(shape: [n, k]) { out in
            try GradientMode.withoutGradients {
                try withDenormalsFlushed {
                    var start = 0
                    while start < n {
                        try Interrupts.poll("predict", "after \(start) of \(n) rows")
                        let end = min(start + batchSize, n)
                        let xs = try prepare(data, rows: start..<end, training: false, prepared: try prefetcher.map { p in
                            try p.inputs(Array(start..<end), next: end < n ? Array(end..<min(end + batchSize, n)) : nil)
                        })
                        let o = try combineMembers(try network.forward(xs, &ctx).value)
                        o.withUnsafeBufferPointer { src in
                            for i in 0..<min(src.count, (n - start) * k) { out[start * k + i] = src[i] }
                        }
                        start = end
                    }
                }
            }
        }
    }

    /// Predictions: regression values [n, 1] on the target's scale, class probabilities [n, K]
    /// (binary: [n, 2], positive class first), quantiles [n, K] on the target's scale (one column
    /// per level, sorted within each row so that they never cross), or label probabilities [n, K].
    public func predict(_ data: Dataset, batchSize: Int = 4096, prefetch: Bool = true) throws -> Tensor {
        let z = try logits(data, batchSize: batchSize, prefetch: prefetch)
        return probabilities(z)
    }

    /// An ensemble's outputs [n, members, K] as one output [n, K] whose `probabilities` are the
    /// mean of the members' predictions (the `tabm` package's and the paper's averaging): the mean
    /// output for regression, else the log (multiclass) or logit (binary, multilabel) of the mean
    /// probability, kept off 0 and 1 (1e-30 and 1e-7), so that softmax or sigmoid give it back.
    /// Other outputs are returned as they are.
    public func combineMembers(_ z: Tensor) throws -> Tensor {
        let m = ensembleMembers, k = task.outputs
        guard m > 1 else { return z }
        guard z.shape.count == 3, z.shape[1] == m, z.shape[2] == k else {
            throw EmberError.shapeMismatch("model", "expected ensemble outputs of shape [n, \(m), \(k)], got \(shapeString(z.shape))")
        }
        let n = z.shape[0], pz = z.unsafeReadPointer
        return Tensor.build(shape: [n, k]) { o in
            var row = [Float](repeating: 0, count: k)
            for i in 0..<n {
                for j in 0..<k { row[j] = 0 }
                for e in 0..<m {
                    let src = pz + (i * m + e) * k
                    switch task {
                    case .regression, .quantileRegression:
                        for j in 0..<k { row[j] += src[j] }
                    case .binary, .multilabel:
                        for j in 0..<k { row[j] += sigmoid(src[j]) }
                    case .multiclass:
                        var top = -Float.infinity
                        for j in 0..<k { top = Swift.max(top, src[j]) }
                        var total: Float = 0
                        for j in 0..<k { total += expf(src[j] - top) }
                        for j in 0..<k { row[j] += expf(src[j] - top) / total }
                    }
                }
                for j in 0..<k {
                    let mean = row[j] / Float(m)
                    switch task {
                    case .regression, .quantileRegression: o[i * k + j] = mean
                    case .binary, .multilabel:
                        let p = Swift.min(Swift.max(mean, 1e-7), 1 - 1e-7)
                        o[i * k + j] = logf(p) - log1pf(-p)
                    case .multiclass: o[i * k + j] = logf(Swift.max(mean, 1e-30))
                    }
                }
            }
        }
    }

    /// The loss of an ensemble's outputs [batch, members, K] (else the loss as it is): each
    /// member's output against the target, as the mean over members of the per-member loss (the
    /// members fold into the batch and each target row repeats once per member; a summed loss is
    /// divided by the members).
    func memberLoss(_ loss: LossFunction, _ out: Variable, _ y: Trainer.BatchTarget) throws -> Variable {
        let m = ensembleMembers
        guard m > 1 else { return try y.loss(loss, out) }
        let b = out.shape[0]
        let folded = try reshape(out, [b * m, task.outputs])
        let rows = (0..<(b * m)).map { $0 / m }
        let l: Variable
        switch y {
        case let .classes(c): l = try loss(folded, classes: try c.gatherRows(rows, op: "loss"))
        case let .values(t): l = try loss(folded, try t.gatherRows(rows))
        }
        return loss.reduction == .sum ? l * (1 / Float(m)) : l
    }

    /// Turns raw outputs into what `predict` returns.
    func probabilities(_ z: Tensor) -> Tensor {
        let n = z.shape[0]
        switch task {
        case .regression:
            let exp = outputLink == .exp
            return Tensor.build(shape: [n, 1]) { o in
                for i in 0..<n {
                    let v = z.unsafeReadPointer[i] * targetScaling.scale[0] + targetScaling.mean[0]
                    o[i] = exp ? expf(v) : v
                }
            }
        case .binary:
            // The probabilities in one vectorised pass (a scalar loop was ~3% of 10,000 rows'
            // predict), into the output's second half, then spread over the rows: row i reads
            // value n + i before writing 2i and 2i + 1, which are below n + i + 1.
            return Tensor.build(shape: [n, 2]) { o in
                guard let out = o.baseAddress else { return }
                cember_sigmoid(z.unsafeReadPointer, out + n, Int64(n))
                for i in 0..<n {
                    let p = out[n + i]
                    out[2 * i] = p
                    out[2 * i + 1] = 1 - p
                }
            }
        case .multiclass:
            return (try? z.softmax(axis: 1, log: false)) ?? z
        case let .quantileRegression(q):
            // NOTE: the network may output crossing quantiles (nothing in the loss forbids it); each
            // row is sorted, which keeps the set of values and makes them increase with the level.
            let k = q.count
            return Tensor.build(shape: [n, k]) { o in
                var row = [Float](repeating: 0, count: k)
                for i in 0..<n {
                    for j in 0..<k { row[j] = z.unsafeReadPointer[i * k + j] * targetScaling.scale[0] + targetScaling.mean[0] }
                    row.sort()
                    for j in 0..<k { o[i * k + j] = row[j] }
                }
            }
        case let .multilabel(k):
            return Tensor.build(shape: [n, k]) { o in
                if let out = o.baseAddress { cember_sigmoid(z.unsafeReadPointer, out, Int64(n * k)) }
            }
        }
    }

    /// Parameters and buffers by full name (weights only, for snapshots and fine-tuning).
    public var namedTensors: [(String, Tensor)] {
        network.namedParameters().map { ($0.0, $0.1.value) } + network.namedBuffers().map { ($0.0, $0.1.value) }
    }

    /// A copy of every parameter and buffer value (cheap: storage is shared until written).
    public func snapshotWeights() -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: namedTensors)
    }

    /// Restores values from a snapshot or a weights file. With `strict`, every parameter and
    /// buffer must be present and nothing else (errors list the missing names); shapes must match.
    /// Everything is checked before anything is loaded.
    public func loadWeights(_ tensors: [String: Tensor], strict: Bool = true) throws {
        var known = Set<String>()
        var missing: [String] = []
        var loads: [(Tensor, (Tensor) -> Void)] = []
        for (name, kind, current, assign, _) in weightSlots() {
            known.insert(name)
            guard let t = tensors[name] else {
                missing.append("\(kind) '\(name)'")
                continue
            }
            guard t.count == current.count else {
                throw EmberError(.shapeMismatch, "[weights] '\(name)' has shape \(shapeString(t.shape)); expected \(shapeString(current.shape))")
            }
            loads.append((try t.reshaped(current.shape), assign))
        }
        if strict {
            if !missing.isEmpty {
                let more = missing.count > 10 ? " and \(missing.count - 10) more" : ""
                throw EmberError(.corruptData, "[weights] \(missing.prefix(10).joined(separator: ", "))\(more) \(missing.count == 1 ? "is" : "are") missing")
            }
            let extra = tensors.keys.filter { !known.contains($0) }.sorted()
            if !extra.isEmpty {
                throw EmberError(.corruptData, "[weights] unexpected tensor(s) \(extra.map { "'\($0)'" }.joined(separator: ", ")) not in this network")
            }
        }
        for (value, assign) in loads { assign(value) }
    }

    /// Parameters and buffers, which load the same way: name, kind, current value, a setter and
    /// whether the slot is a counter (`Buffer.isCounter`).
    func weightSlots() -> [(String, String, Tensor, (Tensor) -> Void, Bool)] {
        network.namedParameters().map { p in (p.0, "parameter", p.1.value, { p.1.value = $0 }, false) }
            + network.namedBuffers().map { b in (b.0, "buffer", b.1.value, { b.1.value = $0 }, b.1.isCounter) }
    }

    /// What `loadMatchingWeights` did: the names loaded, those whose shape differs (kept as
    /// initialised, e.g. a head re-sized to a task with another number of classes), those this
    /// network has but `tensors` lacks, and those `tensors` has but this network lacks.
    public struct WeightMatch: Equatable, Sendable {
        /// A tensor whose size differs from the network's.
        public struct Mismatch: Equatable, Sendable {
            public var name: String
            public var given: [Int]
            public var expected: [Int]
        }
        public var loaded: [String] = []
        public var mismatched: [Mismatch] = []
        public var missing: [String] = []
        public var unused: [String] = []
    }

    /// Warm start: loads every parameter and buffer of `tensors` whose name and number of elements
    /// match this network's, leaves the others as initialised, and reports what it did (names in
    /// the network's order; unused names sorted).
    @discardableResult
    public func loadMatchingWeights(_ tensors: [String: Tensor]) throws -> WeightMatch {
        var match = WeightMatch()
        var known = Set<String>()
        for (name, _, current, assign, _) in weightSlots() {
            known.insert(name)
            guard let t = tensors[name] else {
                match.missing.append(name)
                continue
            }
            guard t.count == current.count else {
                match.mismatched.append(.init(name: name, given: t.shape, expected: current.shape))
                continue
            }
            assign(try t.reshaped(current.shape))
            match.loaded.append(name)
        }
        match.unused = tensors.keys.filter { !known.contains($0) }.sorted()
        return match
    }

    /// Sets the engine RNG state (host control between slices).
    public func setRNG(_ rng: RandomGenerator) { self.rng = rng }
}

/// How regression predictions follow from the network's output (`Model.outputLink`).
public enum OutputLink: String, Sendable, CaseIterable {
    /// The output itself (on the target's scale).
    case identity
    /// `exp` of the output: the network predicts a log-rate (Poisson regression).
    case exp
}
