import EmberCore
import Glibc

/// Per-epoch measures the trainer computes on predictions (hosts may score anything else on the
/// validation predictions they get back).
public enum Metric: String, CaseIterable, Sendable {
    case accuracy, balancedAccuracy = "balanced_accuracy", logloss, mse, mae, rmse

    /// Whether larger values are better.
    public var maximize: Bool { self == .accuracy || self == .balancedAccuracy }
    /// Whether it scores classification (else regression) predictions.
    public var classification: Bool { self == .accuracy || self == .balancedAccuracy || self == .logloss }

    /// The measure of `prediction` (probabilities [n, K] or values [n, 1]) against `target`.
    /// Throws for a classification measure on a regression task and vice versa.
    public func score(_ prediction: Tensor, _ target: Tensor, task: TaskKind) throws -> Double {
        let n = target.count
        guard n > 0 else { throw EmberError.invalidArgument("metric", "cannot score zero rows") }
        let p = prediction.storage.pointer, y = target.storage.pointer
        let k = prediction.count / n
        switch self {
        case .mse, .mae, .rmse:
            guard task == .regression else { throw EmberError.invalidArgument(rawValue, "is a regression measure") }
            var s = 0.0
            for i in 0..<n {
                let d = Double(p[i]) - Double(y[i])
                s += self == .mae ? Swift.abs(d) : d * d
            }
            return self == .rmse ? (s / Double(n)).squareRoot() : s / Double(n)
        case .accuracy, .balancedAccuracy, .logloss:
            guard task != .regression else { throw EmberError.invalidArgument(rawValue, "is a classification measure") }
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
