import EmberCore

/// What a model predicts; fixes the head and the loss.
public enum TaskKind: Equatable, Sendable {
    /// One real-valued output, MSE loss.
    case regression
    /// One logit for the positive class, BCE-with-logits loss.
    case binary
    /// K ≥ 2 logits, cross-entropy loss.
    case multiclass(classes: Int)
    /// Several quantiles of a real-valued target at once: one output per quantile level (levels
    /// strictly increasing in (0, 1)), the quantile (pinball) loss. The target is one value per
    /// row and its standardisation applies to every output alike.
    case quantileRegression(quantiles: [Float])
    /// K ≥ 2 independent binary labels: K logits, binary cross-entropy with logits per label. The
    /// target is a 0/1 matrix [n, K].
    case multilabel(labels: Int)

    /// Number of network outputs.
    public var outputs: Int {
        switch self {
        case .regression, .binary: return 1
        case let .multiclass(k): return k
        case let .quantileRegression(q): return q.count
        case let .multilabel(k): return k
        }
    }

    /// Number of columns `predict` returns: regression values, one probability per class
    /// (binary: positive class first), one value per quantile level, or one probability per label.
    public var predictionColumns: Int {
        switch self {
        case .regression: return 1
        case .binary: return 2
        case let .multiclass(k): return k
        case let .quantileRegression(q): return q.count
        case let .multilabel(k): return k
        }
    }

    /// Number of target values per row: one, or one per label (multilabel).
    public var targetColumns: Int {
        if case let .multilabel(k) = self { return k }
        return 1
    }

    /// Whether the target is real-valued (regression and quantile regression): it is then
    /// standardised for training and scored with the regression measures.
    public var isRegression: Bool {
        switch self {
        case .regression, .quantileRegression: return true
        case .binary, .multiclass, .multilabel: return false
        }
    }

    /// The quantile levels of a quantile regression (empty for other tasks).
    public var quantiles: [Float] {
        if case let .quantileRegression(q) = self { return q }
        return []
    }

    /// The prediction column that is the point prediction of a quantile regression: the level 0.5
    /// when present, else the middle level (the lower of the two middle ones for an even count);
    /// 0 for other tasks.
    public var responseColumn: Int {
        guard case let .quantileRegression(q) = self, !q.isEmpty else { return 0 }
        return q.firstIndex(of: 0.5) ?? (q.count - 1) / 2
    }

    /// The losses a model of this task trains with (the first is the default).
    public var losses: [Loss] {
        switch self {
        case .regression: return [.mse, .l1, .huber, .smoothL1, .poissonNLL, .expression]
        case .binary: return [.bceWithLogits, .sigmoidFocal, .expression]
        case .multiclass: return [.crossEntropy, .focal, .expression]
        case .quantileRegression: return [.quantile]
        case .multilabel: return [.bceWithLogits, .sigmoidFocal, .expression]
        }
    }

    /// The loss trained by default.
    public var loss: Loss { losses[0] }

    /// The default loss with the task's options (a quantile regression's levels).
    public var defaultLossFunction: LossFunction {
        var f = LossFunction(loss)
        f.quantiles = quantiles
        return f
    }

    /// Name used in model files.
    public var name: String {
        switch self {
        case .regression: return "regression"
        case .binary: return "binary"
        case .multiclass: return "multiclass"
        case .quantileRegression: return "quantile_regression"
        case .multilabel: return "multilabel"
        }
    }

    /// Checks the task's sizes: at least 2 classes or labels; quantile levels non-empty, each in
    /// (0, 1) and strictly increasing (unsorted or repeated levels are refused, not sorted, so
    /// that output `j` is always level `j` as given).
    public func validate() throws {
        switch self {
        case .regression, .binary: return
        case let .multiclass(k):
            guard k >= 2 else { throw EmberError.invalidArgument("model", "a multiclass task needs at least 2 classes, got \(k)") }
        case let .multilabel(k):
            guard k >= 2 else {
                throw EmberError(.invalidArgument, "[labels] a multilabel task needs at least 2 labels, got \(k) (one label is a binary task)",
                                 detail: EmberError.Detail(op: "model", argument: "labels", expected: "at least 2", got: "\(k)"))
            }
        case let .quantileRegression(q):
            try TaskKind.validateQuantiles(q)
        }
    }

    /// Checks quantile levels: at least one, each in (0, 1), strictly increasing.
    private static func validateQuantiles(_ q: [Float], argument: String = "quantiles") throws {
        func fail(_ message: String, _ expected: String, _ got: String, index: Int? = nil) -> EmberError {
            EmberError(.invalidArgument, "[\(argument)] \(message)",
                       detail: EmberError.Detail(op: "model", argument: argument, index: index, expected: expected, got: got))
        }
        guard !q.isEmpty else { throw fail("needs at least one quantile level", "levels in (0, 1)", "none") }
        for (i, v) in q.enumerated() where !(v > 0 && v < 1) {
            throw fail("\(ErrorIndex.describe(("level", i))) is \(v); quantile levels must lie in (0, 1)", "levels in (0, 1)", "\(v)", index: i)
        }
        for i in 1..<q.count where !(q[i] > q[i - 1]) {
            throw fail("levels must be strictly increasing (sorted, without repeats); \(ErrorIndex.describe(("level", i))) is \(q[i]) after \(q[i - 1])",
                       "strictly increasing levels", "\(q[i]) after \(q[i - 1])", index: i)
        }
    }
}
