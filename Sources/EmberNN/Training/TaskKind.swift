/// What a model predicts; fixes the head and the loss.
public enum TaskKind: Equatable, Sendable {
    /// One real-valued output, MSE loss.
    case regression
    /// One logit for the positive class, BCE-with-logits loss.
    case binary
    /// K ≥ 2 logits, cross-entropy loss.
    case multiclass(classes: Int)

    /// Number of network outputs.
    public var outputs: Int {
        switch self {
        case .regression, .binary: return 1
        case let .multiclass(k): return k
        }
    }

    /// Number of columns `predict` returns: regression values, or one probability per class
    /// (binary: positive class first).
    public var predictionColumns: Int {
        switch self {
        case .regression: return 1
        case .binary: return 2
        case let .multiclass(k): return k
        }
    }

    /// The losses a model of this task trains with (the first is the default).
    public var losses: [Loss] {
        switch self {
        case .regression: return [.mse, .l1, .huber, .smoothL1, .poissonNLL, .expression]
        case .binary: return [.bceWithLogits, .sigmoidFocal, .expression]
        case .multiclass: return [.crossEntropy, .focal, .expression]
        }
    }

    /// The loss trained by default.
    public var loss: Loss {
        switch self {
        case .regression: return .mse
        case .binary: return .bceWithLogits
        case .multiclass: return .crossEntropy
        }
    }

    /// Name used in model files.
    public var name: String {
        switch self {
        case .regression: return "regression"
        case .binary: return "binary"
        case .multiclass: return "multiclass"
        }
    }
}
