import EmberCore
import Glibc

/// Per-epoch measures the trainer computes on predictions (hosts may score anything else on the
/// validation predictions they get back).
public enum Metric: String, CaseIterable, Sendable {
    case accuracy, balancedAccuracy = "balanced_accuracy", logloss, mse, mae, rmse
    /// Multilabel: the share of (row, label) pairs whose probability is on the side of 0.5 of the
    /// truth (probability >= 0.5 predicts the label).
    case hammingAccuracy = "hamming_accuracy"

    /// Whether larger values are better.
    public var maximize: Bool { self == .accuracy || self == .balancedAccuracy || self == .hammingAccuracy }
    /// Whether it scores classification predictions (binary or multiclass).
    public var classification: Bool { self == .accuracy || self == .balancedAccuracy || self == .logloss }

    /// The kind of task it scores: "classification" (binary and multiclass), "regression"
    /// (regression and quantile regression, on the point prediction) or "multilabel".
    public var taskGroup: String {
        if classification { return "classification" }
        return self == .hammingAccuracy ? "multilabel" : "regression"
    }

    /// Whether it scores models of `task`.
    public func applies(to task: TaskKind) -> Bool {
        switch task {
        case .regression, .quantileRegression: return taskGroup == "regression"
        case .binary, .multiclass: return classification
        case .multilabel: return taskGroup == "multilabel"
        }
    }

    /// The measure of `prediction` (`Model.predict`'s columns) against `target`. A quantile
    /// regression is scored on its point prediction (`TaskKind.responseColumn`). Throws for a
    /// measure of another kind of task.
    public func score(_ prediction: Tensor, _ target: Tensor, task: TaskKind) throws -> Double {
        guard applies(to: task) else {
            throw EmberError.invalidArgument(rawValue, "is a \(taskGroup) measure; the model is a \(task.name) model")
        }
        let n = target.count / max(task.targetColumns, 1)
        guard n > 0 else { throw EmberError.invalidArgument("metric", "cannot score zero rows") }
        guard prediction.count == n * task.predictionColumns, target.count == n * task.targetColumns else {
            throw EmberError.shapeMismatch(rawValue, "a \(task.name) model's \(n) rows need \(n * task.predictionColumns) predictions and \(n * task.targetColumns) targets, got \(prediction.count) and \(target.count)")
        }
        let p = prediction.unsafeReadPointer, y = target.unsafeReadPointer
        let k = prediction.count / n
        switch self {
        case .mse, .mae, .rmse:
            let c = task.responseColumn
            var s = 0.0
            for i in 0..<n {
                let d = Double(p[i * k + c]) - Double(y[i])
                s += self == .mae ? Swift.abs(d) : d * d
            }
            return self == .rmse ? (s / Double(n)).squareRoot() : s / Double(n)
        case .hammingAccuracy:
            var correct = 0
            for i in 0..<(n * k) where (p[i] >= 0.5) == (y[i] == 1) { correct += 1 }
            return Double(correct) / Double(n * k)
        case .accuracy, .balancedAccuracy, .logloss:
            // Probabilities: binary columns are (positive, negative); the class index of a binary
            // target is 0 for the positive class.
            func truth(_ i: Int) -> Int { task == .binary ? (y[i] == 1 ? 0 : 1) : Int(y[i]) }
            if self == .logloss {
                var s = 0.0
                for i in 0..<n { s -= log(max(Double(p[i * k + truth(i)]), 1e-15)) }
                return s / Double(n)
            }
            var correct = [Double](repeating: 0, count: k), total = [Double](repeating: 0, count: k)
            for i in 0..<n {
                var best = 0
                for j in 1..<k where p[i * k + j] > p[i * k + best] { best = j }
                let t = truth(i)
                total[t] += 1
                if best == t { correct[t] += 1 }
            }
            if self == .accuracy { return correct.reduce(0, +) / Double(n) }
            let present = (0..<k).filter { total[$0] > 0 }
            return present.map { correct[$0] / total[$0] }.reduce(0, +) / Double(present.count)
        }
    }
}
