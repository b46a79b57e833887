import EmberCore
import Glibc

/// The architecture and input handling of an MLP model; stored in the model file.
public struct MLPSpec: Equatable, Sendable {
    /// What is predicted.
    public var task: TaskKind
    /// Number of input columns (after the host's encoding, e.g. one-hot factors).
    public var inputs: Int
    /// Hidden layer widths; empty for a linear model.
    public var neurons: [Int]
    /// Dropout probability after each hidden activation.
    public var dropout: Float
    /// Which input columns are standardised inside the model (true for numeric columns).
    public var standardize: [Bool]
    /// Whether a regression target is standardised for training (predictions are unscaled).
    public var standardizeTarget: Bool

    /// Describes an MLP; `standardize` defaults to every column.
    public init(task: TaskKind, inputs: Int, neurons: [Int] = [64], dropout: Float = 0,
                standardize: [Bool]? = nil, standardizeTarget: Bool = true) {
        self.task = task
        self.inputs = inputs
        self.neurons = neurons
        self.dropout = dropout
        self.standardize = standardize ?? [Bool](repeating: true, count: max(inputs, 0))
        self.standardizeTarget = standardizeTarget
    }

    /// The largest network the engine builds (2³¹ parameters, 8 GiB of float32), so that a typo
    /// or a corrupt model file gives an error rather than an out-of-memory crash.
    public static let maxParameters = 1 << 31

    /// Shapes of the parameters, in `MLP.parameters` order (weight [out, in], bias [out]).
    public var parameterShapes: [[Int]] {
        let widths = [inputs] + neurons + [task.outputs]
        return (0..<(widths.count - 1)).flatMap { [[widths[$0 + 1], widths[$0]], [widths[$0 + 1]]] }
    }

    /// Total number of parameters; throws on arithmetic overflow.
    public func parameterCount() throws -> Int {
        var total = 0
        for shape in parameterShapes {
            let (sum, overflow) = total.addingReportingOverflow(try Tensor.elementCount(shape, op: "mlp"))
            guard !overflow else { throw EmberError(.overflow, "[mlp] parameter count overflows") }
            total = sum
        }
        return total
    }

    /// Checks every field; errors name the field and what was expected.
    public func validate() throws {
        guard inputs >= 1 && inputs <= 1 << 24 else {
            throw EmberError.invalidArgument("mlp", "inputs must be in 1...16777216, got \(inputs)")
        }
        if case let .multiclass(k) = task, k < 2 || k > 1 << 20 {
            throw EmberError.invalidArgument("mlp", "a multiclass task needs 2...1048576 classes, got \(k)")
        }
        for (i, w) in neurons.enumerated() where w < 1 || w > 1 << 20 {
            throw EmberError.invalidArgument("neurons", "layer \(i) has width \(w); expected 1...1048576")
        }
        guard dropout >= 0 && dropout < 1 else {
            throw EmberError.invalidArgument("p", "dropout probability must be in [0, 1), got \(dropout)")
        }
        let count = try parameterCount()
        guard count <= MLPSpec.maxParameters else {
            throw EmberError(.overflow,
                "[mlp] the network would have \(count) parameters; the limit is \(MLPSpec.maxParameters)")
        }
        guard standardize.count == inputs else {
            throw EmberError.shapeMismatch("mlp", "standardize has \(standardize.count) entries, expected one per input (\(inputs))")
        }
    }
}

/// How to train: batch size, shuffling, optimizer.
public struct TrainingOptions: Equatable, Sendable {
    /// Rows per mini-batch (the last batch may be smaller).
    public var batchSize: Int
    /// Whether rows are visited in a fresh random order each epoch (engine RNG).
    public var shuffle: Bool
    /// The optimizer and its hyperparameters.
    public var optimizer: OptimizerConfig

    /// Creates options; defaults follow mlr3torch (batch size 32, shuffle, adam with lr 1e-3).
    public init(batchSize: Int = 32, shuffle: Bool = true, optimizer: OptimizerConfig = .adam()) {
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.optimizer = optimizer
    }
}

/// A trainable MLP with its preprocessing, training state and history.
///
/// Weights are drawn from an engine RNG seeded with `seed`; the same generator then shuffles
/// rows and draws dropout masks, so the same seed, data and options give bit-identical weights.
public final class MLPModel {
    /// The architecture.
    public let spec: MLPSpec
    /// The network.
    public let network: MLP
    /// Input scaling, fitted on the first `fit` call.
    public internal(set) var inputScaling: Standardization
    /// Target scaling (regression), fitted on the first `fit` call.
    public internal(set) var targetScaling: Standardization
    /// Whether scalings have been fitted (the model has seen data).
    public internal(set) var isFitted = false
    /// Mean training loss per completed epoch.
    public internal(set) var history: [Float] = []
    /// The engine RNG driving init, shuffling and dropout.
    public internal(set) var rng: RandomGenerator
    var options = TrainingOptions()
    var optimizer: Optimizer?

    /// Builds a model with freshly initialised weights.
    public init(spec: MLPSpec, seed: UInt64) throws {
        try spec.validate()
        self.spec = spec
        var rng = RandomGenerator(seed: seed)
        self.network = try MLP(inputs: spec.inputs, neurons: spec.neurons, outputs: spec.task.outputs,
                               dropout: spec.dropout, rng: &rng)
        self.rng = rng
        self.inputScaling = .identity(spec.inputs)
        self.targetScaling = .identity(1)
    }

    /// Rebuilds a model from stored parts (used by deserialisation).
    init(spec: MLPSpec, network: MLP, inputScaling: Standardization, targetScaling: Standardization,
         isFitted: Bool, history: [Float], rng: RandomGenerator) {
        self.spec = spec
        self.network = network
        self.inputScaling = inputScaling
        self.targetScaling = targetScaling
        self.isFitted = isFitted
        self.history = history
        self.rng = rng
    }

    /// All parameters, in a stable order.
    public var parameters: [Parameter] { network.parameters }

    /// Sets how the next `fit` calls train. Changing the optimizer resets its state.
    public func setTrainingOptions(_ options: TrainingOptions) throws {
        guard options.batchSize >= 1 else {
            throw EmberError.invalidArgument("batch_size", "must be >= 1, got \(options.batchSize)")
        }
        let newOptimizer = try options.optimizer.make(parameters)
        if options.optimizer != self.options.optimizer || optimizer == nil { optimizer = newOptimizer }
        self.options = options
    }

    /// Trains for `epochs` more epochs on `x` [n, inputs] and targets `y` [n] (class indices for
    /// classification, 0/1 with 1 = positive class for binary). Returns the mean loss per epoch.
    /// Call repeatedly to train in slices; optimizer state and RNG carry over.
    @discardableResult
    public func fit(x: Tensor, y: Tensor, epochs: Int) throws -> [Float] {
        try checkInput(x, op: "fit")
        let n = x.shape[0]
        guard n >= 1 else { throw EmberError.invalidArgument("fit", "needs at least one row") }
        guard y.count == n else {
            throw EmberError.shapeMismatch("fit", "x has \(n) rows but y has \(y.count) values")
        }
        guard epochs >= 0 else { throw EmberError.invalidArgument("epochs", "must be >= 0, got \(epochs)") }
        for (i, v) in x.data.enumerated() where !v.isFinite {
            throw EmberError.invalidArgument("fit", "x contains a non-finite value at row \(i / spec.inputs), column \(i % spec.inputs)")
        }
        try checkTargets(y)
        if !isFitted {
            inputScaling = Standardization.fit(x, mask: spec.standardize)
            if spec.task == .regression && spec.standardizeTarget {
                targetScaling = Standardization.fit(try y.reshaped([n, 1]), mask: [true])
            }
            isFitted = true
        }
        if optimizer == nil { try setTrainingOptions(options) }
        guard let optimizer else { throw EmberError(.invalidState, "[fit] no optimizer") }
        let xs = inputScaling.apply(x)
        let ys = spec.task == .regression ? targetScaling.apply(try y.reshaped([n, 1])) : y
        let loss = spec.task.loss
        var losses: [Float] = []
        try withDenormalsFlushed {
            for _ in 0..<epochs {
                let order = options.shuffle ? rng.permutation(n) : Array(0..<n)
                var total = 0.0
                var start = 0
                while start < n {
                    let end = min(start + options.batchSize, n)
                    let rows = order[start..<end]
                    let xb = Variable(try xs.gatherRows(rows))
                    let yb = try ys.gatherRows(rows)
                    optimizer.zeroGrad()
                    let out = try network(xb, training: true, rng: &rng)
                    let l = try loss(out, yb)
                    try l.backward()
                    try optimizer.step()
                    total += Double(l.value.data[0]) * Double(end - start)
                    start = end
                }
                let epochLoss = Float(total / Double(n))
                losses.append(epochLoss)
                history.append(epochLoss)
            }
        }
        optimizer.zeroGrad()
        return losses
    }

    /// Predicts for `x` [n, inputs]: regression values [n, 1] on the target's scale, or class
    /// probabilities [n, K] (binary: [n, 2], positive class first).
    public func predict(x: Tensor, batchSize: Int = 4096) throws -> Tensor {
        try checkInput(x, op: "predict")
        guard batchSize >= 1 else { throw EmberError.invalidArgument("batch_size_predict", "must be >= 1, got \(batchSize)") }
        let n = x.shape[0]
        let cols = spec.task.predictionColumns
        var out = [Float](repeating: 0, count: n * cols)
        let xs = inputScaling.apply(x)
        var unusedRNG = rng
        try GradientMode.withoutGradients {
            try withDenormalsFlushed {
                var start = 0
                while start < n {
                    let end = min(start + batchSize, n)
                    let xb = Variable(try xs.gatherRows(start..<end))
                    let o = try network(xb, training: false, rng: &unusedRNG).value.data
                    for r in 0..<(end - start) {
                        let row = start + r
                        switch spec.task {
                        case .regression:
                            out[row] = o[r] * targetScaling.scale[0] + targetScaling.mean[0]
                        case .binary:
                            let p = sigmoid(o[r])
                            out[row * 2] = p
                            out[row * 2 + 1] = 1 - p
                        case let .multiclass(k):
                            var m = -Float.infinity
                            for j in 0..<k { m = max(m, o[r * k + j]) }
                            var s: Float = 0
                            for j in 0..<k { s += expf(o[r * k + j] - m) }
                            for j in 0..<k { out[row * k + j] = expf(o[r * k + j] - m) / s }
                        }
                    }
                    start = end
                }
            }
        }
        return try Tensor(shape: [n, cols], data: out)
    }

    private func checkInput(_ x: Tensor, op: String) throws {
        guard x.rank == 2, x.shape[1] == spec.inputs else {
            throw EmberError.shapeMismatch(op, "expected x of shape [n, \(spec.inputs)], got \(shapeString(x.shape))")
        }
    }

    private func checkTargets(_ y: Tensor) throws {
        for (i, t) in y.data.enumerated() {
            switch spec.task {
            case .regression:
                guard t.isFinite else { throw EmberError.invalidArgument("fit", "y[\(i)] is \(t); expected a finite value") }
            case .binary:
                guard t == 0 || t == 1 else { throw EmberError.invalidArgument("fit", "y[\(i)] is \(t); expected 0 or 1") }
            case let .multiclass(k):
                guard t >= 0, t < Float(k), t == t.rounded() else {
                    throw EmberError.invalidArgument("fit", "y[\(i)] is \(t); expected a class index in 0..<\(k)")
                }
            }
        }
    }
}
