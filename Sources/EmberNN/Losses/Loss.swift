import EmberCore
import Glibc

/// The training losses, with PyTorch's semantics.
public enum Loss: String, Sendable, CaseIterable {
    /// Mean squared error; output and target have the same number of elements.
    case mse
    /// Mean absolute error (`nn.L1Loss`).
    case l1
    /// Cross-entropy over K logits (fused log-softmax + negative log-likelihood); target holds
    /// class indices 0..<K.
    case crossEntropy = "cross_entropy"
    /// Binary cross-entropy on logits, `max(x,0) - x·y + log(1 + e^-|x|)`; target holds values in [0, 1].
    case bceWithLogits = "bce_with_logits"
    /// Huber loss (`nn.HuberLoss`): `0.5 d²` for `|d| < delta`, else `delta (|d| - 0.5 delta)`.
    case huber
    /// Smooth L1 loss (`nn.SmoothL1Loss`): `0.5 d² / beta` for `|d| < beta`, else `|d| - 0.5 beta`.
    case smoothL1 = "smooth_l1"
    /// Focal loss over K logits (Lin et al. 2017): `-w_y (1 - p_y)^gamma log p_y` per row, with
    /// `p = softmax(x)` and class weights `w` (alpha); the mean is over the rows.
    case focal
    /// Sigmoid focal loss on logits (torchvision's `sigmoid_focal_loss`):
    /// `alpha_t · bce(x, y) · (1 - p_t)^gamma` with `p_t = p y + (1 - p)(1 - y)`, `p = sigmoid(x)`,
    /// `alpha_t = alpha y + (1 - alpha)(1 - y)` (no weighting when alpha < 0).
    case sigmoidFocal = "sigmoid_focal"
    /// Poisson negative log-likelihood (`nn.PoissonNLLLoss`): `exp(x) - y x` on log inputs
    /// (`logInput`), else `x - y log(x + eps)`; with `full`, Stirling's term
    /// `y log y - y + 0.5 log(2 pi y)` for y > 1. Targets are counts (>= 0).
    case poissonNLL = "poisson_nll"
    /// Quantile (pinball) loss of several quantile levels at once: the output has one column per
    /// level `q_j` (`LossFunction.quantiles`), the target one value per row; the loss is the mean
    /// over rows and levels of `max(q_j d, (q_j - 1) d)` with `d = y - output_j`. At `d = 0` the
    /// gradient is `0.5 - q_j`, as PyTorch's `torch.maximum` splits it between equal arguments.
    case quantile
    /// A custom loss: a `NetworkExpression` of the prediction (argument 0) and the target (argument 1)
    /// that gives one number. The target has the prediction's shape: values for regression, 0/1
    /// for two classes (one logit), one-hot rows for more classes.
    case expression

    /// The loss of `output` against `target` with default options (mean reduction).
    public func callAsFunction(_ output: Variable, _ target: Tensor) throws -> Variable {
        try LossFunction(self)(output, target)
    }
}

/// How per-element losses are combined.
public enum Reduction: String, Sendable {
    /// The (weighted) mean.
    case mean
    /// The sum.
    case sum
}

/// A loss with its options: reduction, class weights and ignore index (cross-entropy), positive
/// weights (BCE with logits).
public struct LossFunction: Equatable, Sendable {
    /// Which loss.
    public var kind: Loss
    /// Mean or sum.
    public var reduction: Reduction
    /// Cross-entropy: one weight per class (`weight` in PyTorch).
    public var classWeights: [Float]?
    /// Cross-entropy: a target value whose rows are left out (`ignore_index`).
    public var ignoreIndex: Int?
    /// BCE with logits: weight of positive examples, one per output column (`pos_weight`).
    public var posWeight: [Float]?
    /// Cross-entropy: PyTorch's `label_smoothing` in [0, 1]. BCE with logits: the same for the
    /// two classes of one logit, i.e. targets `y (1 - ε) + ε / 2` (what two-class cross-entropy
    /// with label smoothing computes).
    public var labelSmoothing: Float
    /// Huber: `delta` (> 0); smooth L1: `beta` (>= 0; 0 is the L1 loss).
    public var delta: Float
    /// Focal losses: the focusing exponent `gamma` (>= 0; 0 is cross-entropy).
    public var gamma: Float
    /// Sigmoid focal loss: the weight `alpha` of positives in [0, 1], or negative for none.
    public var alpha: Float
    /// The custom loss of kind `.expression`.
    public var expression: NetworkExpression?
    /// Poisson NLL: whether the output is a log-rate (PyTorch's `log_input`, default true).
    public var logInput: Bool = true
    /// Poisson NLL: add Stirling's approximation term (PyTorch's `full`).
    public var full: Bool = false
    /// Poisson NLL: `eps` in `log(x + eps)` without log inputs.
    public var eps: Float = 1e-8
    /// Quantile loss: the level of each output column, each in (0, 1).
    public var quantiles: [Float] = []

    /// Creates a loss; defaults match PyTorch (mean, no weights, no smoothing, delta and beta 1)
    /// and torchvision's focal loss (gamma 2, alpha 0.25).
    public init(_ kind: Loss, reduction: Reduction = .mean, classWeights: [Float]? = nil, ignoreIndex: Int? = nil,
                posWeight: [Float]? = nil, labelSmoothing: Float = 0, delta: Float = 1, gamma: Float = 2,
                alpha: Float = 0.25) {
        self.kind = kind
        self.reduction = reduction
        self.classWeights = classWeights
        self.ignoreIndex = ignoreIndex
        self.posWeight = posWeight
        self.labelSmoothing = labelSmoothing
        self.delta = delta
        self.gamma = gamma
        self.alpha = alpha
    }

    /// The loss of `output` against `target`, a scalar on the tape.
    public func callAsFunction(_ output: Variable, _ target: Tensor) throws -> Variable {
        switch kind {
        case .mse: return try regressionLoss(output, target, absolute: false)
        case .l1: return try regressionLoss(output, target, absolute: true)
        case .crossEntropy: return try crossEntropy(output, target)
        case .bceWithLogits: return try bceWithLogits(output, target)
        case .huber, .smoothL1: return try robustLoss(output, target)
        case .focal: return try focal(output, target)
        case .sigmoidFocal: return try sigmoidFocal(output, target)
        case .expression: return try expressionLoss(output, target)
        case .poissonNLL: return try poissonNLL(output, target)
        case .quantile: return try quantileLoss(output, target)
        }
    }

    /// The loss of `output` against integer class targets (binary: 0/1, multiclass: 0..<K), a
    /// scalar on the tape. Cross-entropy and focal loss index with them directly (range checks
    /// only); the other losses take them as float values, as `callAsFunction(_:_:)` does.
    public func callAsFunction(_ output: Variable, classes: IndexTensor) throws -> Variable {
        switch kind {
        case .crossEntropy:
            let (n, k) = try classShape(output, targets: classes.count)
            var rows = classes.data
            for (i, c) in rows.enumerated() {
                if let ignoreIndex, c == ignoreIndex {
                    rows[i] = -1
                    continue
                }
                guard c >= 0 && c < k else { throw badClass(i, "\(c)", k) }
            }
            return try crossEntropy(output, n: n, k: k, classes: rows)
        case .focal:
            let (n, k) = try classShape(output, targets: classes.count)
            for (i, c) in classes.data.enumerated() where c < 0 || c >= k { throw badClass(i, "\(c)", k) }
            return try focal(output, n: n, k: k, classes: classes.data)
        case .expression:
            return try expressionLoss(output, classes.floatTensor.reshaped([classes.count]), classes: classes.data)
        case .mse, .l1, .bceWithLogits, .huber, .smoothL1, .sigmoidFocal, .poissonNLL, .quantile:
            return try self(output, classes.floatTensor.reshaped([classes.count]))
        }
    }

    private var opName: String {
        switch kind {
        case .mse, .l1, .huber, .smoothL1: return kind.rawValue + "_loss"
        case .poissonNLL: return "poisson_nll_loss"
        case .quantile: return "quantile_loss"
        case .crossEntropy, .bceWithLogits, .focal, .sigmoidFocal, .expression: return kind.rawValue
        }
    }

    /// The number of elements of an elementwise loss: the output's, which the target must match.
    private func elementCount(_ output: Variable, _ target: Tensor) throws -> Int {
        let n = output.value.count
        guard target.count == n else {
            throw EmberError.shapeMismatch(opName, "output \(shapeString(output.shape)) has \(n) elements but the target \(shapeString(target.shape)) has \(target.count)")
        }
        guard n > 0 else { throw EmberError.invalidArgument(opName, "empty batch") }
        return n
    }

    /// Checks the options that apply to `kind` (the others keep their defaults).
    func validateOptions() throws {
        guard labelSmoothing >= 0 && labelSmoothing <= 1 else {
            throw EmberError.invalidArgument(opName, "label_smoothing must be in [0, 1], got \(labelSmoothing)")
        }
        if kind == .huber && !(delta > 0 && delta.isFinite) {
            throw EmberError.invalidArgument(opName, "delta must be a finite number > 0, got \(delta)")
        }
        if kind == .smoothL1 && !(delta >= 0 && delta.isFinite) {
            throw EmberError.invalidArgument(opName, "beta must be a finite number >= 0, got \(delta)")
        }
        guard gamma >= 0 && gamma.isFinite else { throw EmberError.invalidArgument(opName, "gamma must be a finite number >= 0, got \(gamma)") }
        guard alpha <= 1 && !alpha.isNaN else { throw EmberError.invalidArgument(opName, "alpha must be <= 1 (negative: none), got \(alpha)") }
    }

    /// The custom loss: the expression of the prediction and the target (shaped like the
    /// prediction: one-hot rows when the prediction has K > 1 columns and the target holds K-class
    /// indices), which must give one number.
    /// With `classes` (integer class targets, `target` their float view) the one-hot rows come
    /// from them with a range check only.
    private func expressionLoss(_ output: Variable, _ target: Tensor, classes: [Int]? = nil) throws -> Variable {
        guard let expression else { throw EmberError.invalidArgument(opName, "no expression is set") }
        let n = output.shape.first ?? 0
        guard n > 0 else { throw EmberError.invalidArgument(opName, "empty batch") }
        let k = output.value.count / n
        let t: Tensor
        if target.count == output.value.count {
            t = try target.reshaped(output.shape)
        } else if target.count == n && output.shape.count == 2 {
            let rows: [Int]
            if let classes {
                for (i, c) in classes.enumerated() where c < 0 || c >= k { throw badClass(i, "\(c)", k) }
                rows = classes
            } else {
                let codes = target.unsafeReadPointer
                for i in 0..<n where !(codes[i] >= 0 && codes[i] < Float(k) && codes[i] == codes[i].rounded()) {
                    throw badClass(i, "\(codes[i])", k)
                }
                rows = (0..<n).map { Int(codes[$0]) }
            }
            t = Tensor.build(shape: output.shape) { d in
                for i in 0..<(n * k) { d[i] = 0 }
                for i in 0..<n { d[i * k + rows[i]] = 1 }
            }
        } else {
            throw EmberError.shapeMismatch(opName, "target \(shapeString(target.shape)) does not fit the prediction \(shapeString(output.shape))")
        }
        let value = try expression.evaluate([output, Variable(t)])
        guard value.value.count == 1 else {
            throw EmberError.shapeMismatch(opName, "the loss expression must give one number, got shape \(shapeString(value.shape)) (reduce it with sum() or mean())")
        }
        return value.shape.isEmpty ? value : try reshape(value, [])
    }

    /// The quantile (pinball) loss of output [n, K] (one column per level) against target [n].
    private func quantileLoss(_ output: Variable, _ target: Tensor) throws -> Variable {
        let q = quantiles
        guard !q.isEmpty else { throw EmberError.invalidArgument(opName, "no quantile levels are set") }
        for (j, v) in q.enumerated() where !(v > 0 && v < 1) {
            throw EmberError.invalidArgument(opName, "quantile level \(j) is \(v); expected a level in (0, 1)", index: j)
        }
        let k = q.count
        guard output.shape.count == 2, output.shape[1] == k else {
            throw EmberError.shapeMismatch(opName, "expected an output [batch, \(k)] (one column per quantile level), got \(shapeString(output.shape))")
        }
        let n = output.shape[0]
        guard n > 0 else { throw EmberError.invalidArgument(opName, "empty batch") }
        guard target.count == n else {
            throw EmberError.shapeMismatch(opName, "expected one target per row (\(n)), got \(target.count) for the output \(shapeString(output.shape))")
        }
        let o = output.value.unsafeReadPointer, y = target.unsafeReadPointer
        var s = 0.0
        for i in 0..<n {
            for j in 0..<k {
                let d = y[i] - o[i * k + j]
                s += Double(max(q[j] * d, (q[j] - 1) * d))
            }
        }
        return elementwiseLoss(output, target, sum: s, count: n * k) { o, y, e in
            let j = e % k, d = y[e / k] - o[e]
            // d/d output of max(q d, (q - 1) d): -q above, 1 - q below, the mean at d = 0.
            return d > 0 ? -q[j] : (d < 0 ? 1 - q[j] : 0.5 - q[j])
        }
    }

    /// Poisson negative log-likelihood with PyTorch's options.
    private func poissonNLL(_ output: Variable, _ target: Tensor) throws -> Variable {
        let n = try elementCount(output, target)
        let x = output.value.unsafeReadPointer, y = target.unsafeReadPointer
        for i in 0..<n where !(y[i] >= 0 && y[i].isFinite) {
            throw EmberError.invalidArgument(opName, "target \(i) is \(y[i]), expected a count >= 0")
        }
        let logInput = self.logInput, eps = self.eps
        var s = 0.0
        for i in 0..<n {
            var l = logInput ? expf(x[i]) - y[i] * x[i] : x[i] - y[i] * logf(x[i] + eps)
            if full && y[i] > 1 { l += y[i] * logf(y[i]) - y[i] + 0.5 * logf(2 * Float.pi * y[i]) }
            s += Double(l)
        }
        let scale: Float = reduction == .mean ? 1 / Float(n) : 1
        let shape = output.shape
        return Variable(.scalar(Float(s) * scale), inputs: [output]) { [xv = output.value, target] dy in
            let g = dy.unsafeReadPointer[0] * scale
            let y = target.unsafeReadPointer  // the closure keeps the target alive
            return [Tensor.build(shape: shape) { d in
                let x = xv.unsafeReadPointer
                for i in 0..<n { d[i] = (logInput ? expf(x[i]) - y[i] : 1 - y[i] / (x[i] + eps)) * g }
            }]
        }
    }

    /// Huber and smooth L1: quadratic within `delta` (beta), linear outside.
    private func robustLoss(_ output: Variable, _ target: Tensor) throws -> Variable {
        try validateOptions()
        let n = try elementCount(output, target)
        let huber = kind == .huber, b = delta
        let o = output.value.unsafeReadPointer, t = target.unsafeReadPointer
        var s = 0.0
        for i in 0..<n {
            let d = o[i] - t[i], a = Swift.abs(d)
            let l: Float
            if huber {
                l = a < b ? 0.5 * d * d : b * (a - 0.5 * b)
            } else {
                l = a < b ? 0.5 * d * d / b : a - 0.5 * b
            }
            s += Double(l)
        }
        return elementwiseLoss(output, target, sum: s, count: n) { o, t, i in
            let d = o[i] - t[i], a = Swift.abs(d)
            let sign: Float = d > 0 ? 1 : (d < 0 ? -1 : 0)
            return a < b ? (huber ? d : d / b) : (huber ? b * sign : sign)
        }
    }

    /// The scalar loss `sum` over `count` elements (divided by `count` for the mean) on the tape,
    /// whose gradient with respect to output element `e` is `derivative(output, target, e)` times
    /// the incoming gradient and the reduction's scale. The closure keeps the target alive.
    private func elementwiseLoss(_ output: Variable, _ target: Tensor, sum s: Double, count: Int,
                                 _ derivative: @escaping (UnsafePointer<Float>, UnsafePointer<Float>, Int) -> Float) -> Variable {
        let scale: Float = reduction == .mean ? 1 / Float(count) : 1
        let shape = output.shape, n = output.value.count
        return Variable(.scalar(Float(s) * scale), inputs: [output]) { [ov = output.value, target] dy in
            let g = dy.unsafeReadPointer[0] * scale
            return [Tensor.build(shape: shape) { dx in
                let o = ov.unsafeReadPointer, t = target.unsafeReadPointer
                for e in 0..<n { dx[e] = derivative(o, t, e) * g }
            }]
        }
    }

    /// Softmax focal loss over K logits with optional class weights (alpha per class).
    private func focal(_ output: Variable, _ target: Tensor) throws -> Variable {
        try validateOptions()
        let (n, k, classes) = try classIndices(output, target)
        return try focal(output, n: n, k: k, classes: classes)
    }

    /// Focal loss of logits [n, k] against checked class indices.
    private func focal(_ output: Variable, n: Int, k: Int, classes: [Int]) throws -> Variable {
        try validateOptions()
        let lsm = logSoftmaxRows(output.value)
        let lp = lsm.unsafeReadPointer
        let gamma = self.gamma, weights = classWeights
        var total = 0.0
        for i in 0..<n {
            let c = classes[i]
            let logp = lp[i * k + c], q = 1 - expf(logp)
            total -= Double((weights?[c] ?? 1) * powf(max(q, 0), gamma) * logp)
        }
        let denom = reduction == .mean ? Double(n) : 1
        return Variable(.scalar(Float(total / denom)), inputs: [output]) { [lsm] dy in
            let lp = lsm.unsafeReadPointer  // the log-softmax, kept alive by this closure
            let g = dy.unsafeReadPointer[0] / Float(denom)
            return [Tensor.build(shape: [n, k]) { d in
                for i in 0..<n {
                    let c = classes[i]
                    let logp = lp[i * k + c], pt = expf(logp), q = max(1 - pt, 0)
                    // dL/dx_j = w [γ (1-p)^(γ-1) p log p - (1-p)^γ] (δ_jc - p_j); the first term is 0 at p = 1.
                    let first: Float = (q > 0 && gamma > 0) ? gamma * powf(q, gamma - 1) * pt * logp : 0
                    let factor = (weights?[c] ?? 1) * (first - powf(q, gamma)) * g
                    for j in 0..<k { d[i * k + j] = -factor * expf(lp[i * k + j]) }
                    d[i * k + c] += factor
                }
            }]
        }
    }

    /// Sigmoid focal loss on logits against targets in [0, 1].
    private func sigmoidFocal(_ output: Variable, _ target: Tensor) throws -> Variable {
        try validateOptions()
        let n = try elementCount(output, target)
        let x = output.value.unsafeReadPointer, y = target.unsafeReadPointer
        for i in 0..<n where !(y[i] >= 0 && y[i] <= 1) {
            throw EmberError.invalidArgument(opName, "target \(i) is \(y[i]), expected a value in [0, 1]")
        }
        let gamma = self.gamma, alpha = self.alpha
        @inline(__always) func parts(_ i: Int) -> (ce: Float, p: Float, q: Float, a: Float) {
            let ce = LossKernels.bceWithLogitsElement(x[i], y[i])
            let p = sigmoid(x[i])
            let q = max(1 - (p * y[i] + (1 - p) * (1 - y[i])), 0)
            let a = alpha >= 0 ? alpha * y[i] + (1 - alpha) * (1 - y[i]) : 1
            return (ce, p, q, a)
        }
        var s = 0.0
        for i in 0..<n {
            let v = parts(i)
            s += Double(v.a * v.ce * powf(v.q, gamma))
        }
        let scale: Float = reduction == .mean ? 1 / Float(n) : 1
        let shape = output.shape
        return Variable(.scalar(Float(s) * scale), inputs: [output]) { [target] dy in
            let g = dy.unsafeReadPointer[0] * scale
            // parts() reads the target through a pointer: keep the tensor alive while it runs.
            return withExtendedLifetime(target) { [Tensor.build(shape: shape) { d in
                for i in 0..<n {
                    let v = parts(i)
                    // d/dx [ce (1-pt)^γ] = (p - y)(1-pt)^γ - ce γ (1-pt)^(γ-1) (2y - 1) p (1 - p)
                    let second: Float = (v.q > 0 && gamma > 0) ? v.ce * gamma * powf(v.q, gamma - 1) * (2 * y[i] - 1) * v.p * (1 - v.p) : 0
                    d[i] = v.a * ((v.p - y[i]) * powf(v.q, gamma) - second) * g
                }
            }] }
        }
    }

    /// The rows n and classes K of logits [n, K] with `targets` class targets and the class weights.
    private func classShape(_ output: Variable, targets: Int) throws -> (Int, Int) {
        let s = output.shape
        guard s.count == 2 else {
            throw EmberError.shapeMismatch(opName, "expected logits of rank 2 [batch, classes], got \(shapeString(s))")
        }
        let n = s[0], k = s[1]
        guard targets == n else {
            throw EmberError.shapeMismatch(opName, "expected \(n) targets for logits \(shapeString(s)), got \(targets)")
        }
        guard n > 0 else { throw EmberError.invalidArgument(opName, "empty batch") }
        if let w = classWeights, w.count != k {
            throw EmberError.shapeMismatch(opName, "class weights have \(w.count) entries; expected one per class (\(k))")
        }
        return (n, k)
    }

    private func badClass(_ i: Int, _ v: String, _ k: Int) -> EmberError {
        EmberError.invalidArgument(opName, "target \(i) is \(v), expected a class index in 0..<\(k)")
    }

    /// The class index of each row of logits [n, K] from float targets (the public float API:
    /// each must be a whole number); -1 for rows whose target is `ignoring`.
    private func classIndices(_ output: Variable, _ target: Tensor, ignoring: Int? = nil) throws -> (Int, Int, [Int]) {
        let (n, k) = try classShape(output, targets: target.count)
        let t = target.unsafeReadPointer
        var classes = [Int](repeating: -1, count: n)
        for i in 0..<n {
            let v = t[i]
            if let ignoring, v == Float(ignoring) { continue }
            guard v >= 0, v < Float(k), v == v.rounded() else { throw badClass(i, "\(v)", k) }
            classes[i] = Int(v)
        }
        return (n, k, classes)
    }

    private func regressionLoss(_ output: Variable, _ target: Tensor, absolute: Bool) throws -> Variable {
        let n = try elementCount(output, target)
        let s = LossKernels.regressionSum(output.value.unsafeReadPointer, target.unsafeReadPointer, n, absolute: absolute)
        let scale: Float = reduction == .mean ? 1 / Float(n) : 1
        let value = Float(s) * scale
        let shape = output.shape
        return Variable(.scalar(value), inputs: [output]) { [ov = output.value, target] dy in
            let g = dy.unsafeReadPointer[0] * scale
            return [Tensor.build(shape: shape) { d in
                LossKernels.regressionGradient(ov.unsafeReadPointer, target.unsafeReadPointer, n, absolute: absolute, g: g,
                                               into: d.baseAddress.unsafelyUnwrapped)
            }]
        }
    }

    private func crossEntropy(_ output: Variable, _ target: Tensor) throws -> Variable {
        let (n, k, classes) = try classIndices(output, target, ignoring: ignoreIndex)
        return try crossEntropy(output, n: n, k: k, classes: classes)
    }

    /// Cross-entropy of logits [n, k] against checked class indices (-1: an ignored row).
    private func crossEntropy(_ output: Variable, n: Int, k: Int, classes: [Int]) throws -> Variable {
        try validateOptions()
        let lsm = logSoftmaxRows(output.value)
        let lp = lsm.unsafeReadPointer
        if labelSmoothing > 0 { return smoothedCrossEntropy(output, lp: lsm, classes: classes, n: n, k: k) }
        let (total, weightSum) = LossKernels.crossEntropySum(lp, classes: classes, n, k, weights: classWeights)
        // NOTE: with every row ignored the mean is 0/0 = NaN, as in PyTorch.
        let denom = reduction == .mean ? weightSum : 1
        let value = Float(total / denom)
        let weights = classWeights
        return Variable(.scalar(value), inputs: [output]) { [lsm] dy in
            // d/dx = w_y (softmax - onehot) / denominator, per kept row.
            let g = dy.unsafeReadPointer[0] / Float(denom)
            return [Tensor.build(shape: [n, k]) { d in
                // The log-softmax is kept alive by this closure.
                LossKernels.crossEntropyGradient(lsm.unsafeReadPointer, classes: classes, n, k, weights: weights, g: g,
                                                 into: d.baseAddress.unsafelyUnwrapped)
            }]
        }
    }

    /// Cross-entropy against the smoothed distribution `q_j = (1 - ε) w_y [j = y] + ε / K · w_j`
    /// (PyTorch's label_smoothing with class weights); the mean divides by Σ w_y over kept rows.
    private func smoothedCrossEntropy(_ output: Variable, lp lsm: Tensor, classes: [Int], n: Int, k: Int) -> Variable {
        let lp = lsm.unsafeReadPointer
        let eps = labelSmoothing, weights = classWeights
        var total = 0.0, weightSum = 0.0
        for i in 0..<n where classes[i] >= 0 {
            let c = classes[i]
            let wy = weights?[c] ?? 1
            var smooth = 0.0
            for j in 0..<k { smooth -= Double((weights?[j] ?? 1) * lp[i * k + j]) }
            total += Double(1 - eps) * Double(-wy * lp[i * k + c]) + Double(eps) / Double(k) * smooth
            weightSum += Double(wy)
        }
        let denom = reduction == .mean ? weightSum : 1
        return Variable(.scalar(Float(total / denom)), inputs: [output]) { [lsm] dy in
            let lp = lsm.unsafeReadPointer  // the log-softmax, kept alive by this closure
            // dL/dx_j = (Σ_m q_m) p_j - q_j per kept row.
            let g = dy.unsafeReadPointer[0] / Float(denom)
            return [Tensor.build(shape: [n, k]) { d in
                for i in 0..<n {
                    let c = classes[i]
                    if c < 0 {
                        for j in 0..<k { d[i * k + j] = 0 }
                        continue
                    }
                    var qsum: Float = (1 - eps) * (weights?[c] ?? 1)
                    for j in 0..<k { qsum += eps / Float(k) * (weights?[j] ?? 1) }
                    for j in 0..<k {
                        let q = eps / Float(k) * (weights?[j] ?? 1) + (j == c ? (1 - eps) * (weights?[c] ?? 1) : 0)
                        d[i * k + j] = (qsum * expf(lp[i * k + j]) - q) * g
                    }
                }
            }]
        }
    }

    private func bceWithLogits(_ output: Variable, _ target: Tensor) throws -> Variable {
        let n = try elementCount(output, target)
        let cols = output.shape.last ?? 1
        if let pw = posWeight, pw.count != cols && pw.count != 1 {
            throw EmberError.shapeMismatch(opName, "pos_weight has \(pw.count) entries; expected 1 or one per output column (\(cols))")
        }
        try validateOptions()
        let x = output.value.unsafeReadPointer
        let raw = target.unsafeReadPointer
        for i in 0..<n where !(raw[i] >= 0 && raw[i] <= 1) {
            throw EmberError.invalidArgument(opName, "target \(i) is \(raw[i]), expected a value in [0, 1]")
        }
        let eps = labelSmoothing
        // The (smoothed) targets, kept alive by the backward closure below.
        let targets = eps > 0 ? Tensor.build(shape: target.shape) { s in for i in 0..<n { s[i] = raw[i] * (1 - eps) + eps / 2 } } : target
        let pw = posWeight
        let s = LossKernels.bceWithLogitsSum(x, targets.unsafeReadPointer, n, posWeight: pw, cols: cols)
        let scale: Float = reduction == .mean ? 1 / Float(n) : 1
        let shape = output.shape
        return Variable(.scalar(Float(s) * scale), inputs: [output]) { [xv = output.value, targets] dy in
            let g = dy.unsafeReadPointer[0] * scale
            return [Tensor.build(shape: shape) { d in
                LossKernels.bceWithLogitsGradient(xv.unsafeReadPointer, targets.unsafeReadPointer, n, posWeight: pw, cols: cols,
                                                  g: g, into: d.baseAddress.unsafelyUnwrapped)
            }]
        }
    }
}

/// Mean squared error.
public func mseLoss(_ output: Variable, _ target: Tensor) throws -> Variable { try LossFunction(.mse)(output, target) }

/// Mean absolute error.
public func l1Loss(_ output: Variable, _ target: Tensor) throws -> Variable { try LossFunction(.l1)(output, target) }

/// Cross-entropy of K logits against class indices stored as floats 0, 1, …, K-1.
public func crossEntropyLoss(_ output: Variable, _ target: Tensor) throws -> Variable {
    try LossFunction(.crossEntropy)(output, target)
}

/// Binary cross-entropy with logits against targets in [0, 1].
public func bceWithLogitsLoss(_ output: Variable, _ target: Tensor) throws -> Variable {
    try LossFunction(.bceWithLogits)(output, target)
}

/// The logistic function, stable for large |x|.
@inlinable
public func sigmoid(_ x: Float) -> Float {
    if x >= 0 { return 1 / (1 + expf(-x)) }
    let e = expf(x)
    return e / (1 + e)
}
