import EmberCore
import Glibc

/// An optimizer updates parameters in place from their gradients.
public protocol Optimizer: AnyObject {
    /// The learning rate (hosts may change it between steps).
    var learningRate: Float { get set }
    /// One update of every parameter that has a gradient.
    func step(_ parameters: [Parameter]) throws
}

/// Which optimizer to build, with PyTorch's hyperparameter names and defaults.
public enum OptimizerConfig: Equatable, Sendable {
    /// `torch.optim.SGD(lr, momentum = 0, dampening = 0, weight_decay = 0, nesterov = FALSE)`.
    case sgd(lr: Float, momentum: Float = 0, dampening: Float = 0, weightDecay: Float = 0, nesterov: Bool = false)
    /// `torch.optim.Adam(lr = 1e-3, betas = (0.9, 0.999), eps = 1e-8, weight_decay = 0)`.
    case adam(lr: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0)
    /// `torch.optim.AdamW(lr = 1e-3, betas = (0.9, 0.999), eps = 1e-8, weight_decay = 0.01)`.
    case adamw(lr: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0.01)

    /// Validates hyperparameters and builds the optimizer.
    public func make() throws -> Optimizer {
        switch self {
        case let .sgd(lr, momentum, dampening, weightDecay, nesterov):
            try check(lr: lr, weightDecay: weightDecay)
            guard momentum >= 0 && momentum.isFinite else {
                throw EmberError.invalidArgument("sgd", "momentum must be >= 0, got \(momentum)")
            }
            if nesterov && (momentum <= 0 || dampening != 0) {
                throw EmberError.invalidArgument("sgd", "nesterov needs momentum > 0 and dampening = 0")
            }
            return SGD(lr: lr, momentum: momentum, dampening: dampening, weightDecay: weightDecay, nesterov: nesterov)
        case let .adam(lr, b1, b2, eps, wd):
            try check(lr: lr, weightDecay: wd)
            try checkBetas(b1, b2, eps, "adam")
            return Adam(lr: lr, beta1: b1, beta2: b2, eps: eps, weightDecay: wd, decoupled: false)
        case let .adamw(lr, b1, b2, eps, wd):
            try check(lr: lr, weightDecay: wd)
            try checkBetas(b1, b2, eps, "adamw")
            return Adam(lr: lr, beta1: b1, beta2: b2, eps: eps, weightDecay: wd, decoupled: true)
        }
    }

    private func check(lr: Float, weightDecay: Float) throws {
        guard lr >= 0 && lr.isFinite else { throw EmberError.invalidArgument("opt.lr", "must be a finite number >= 0, got \(lr)") }
        guard weightDecay >= 0 && weightDecay.isFinite else {
            throw EmberError.invalidArgument("opt.weight_decay", "must be a finite number >= 0, got \(weightDecay)")
        }
    }

    private func checkBetas(_ b1: Float, _ b2: Float, _ eps: Float, _ name: String) throws {
        guard b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1 else {
            throw EmberError.invalidArgument(name, "betas must lie in [0, 1), got (\(b1), \(b2))")
        }
        guard eps >= 0 && eps.isFinite else { throw EmberError.invalidArgument(name, "eps must be >= 0, got \(eps)") }
    }
}

/// Stochastic gradient descent with PyTorch's update rule:
/// g ← ∇ + λ·p; b ← μ·b + (1-τ)·g (b ← g on the first step); g ← g + μ·b (nesterov) or b; p ← p - lr·g.
public final class SGD: Optimizer {
    public var learningRate: Float
    let momentum: Float, dampening: Float, weightDecay: Float, nesterov: Bool
    var buffers: [ObjectIdentifier: [Float]] = [:]

    init(lr: Float, momentum: Float, dampening: Float, weightDecay: Float, nesterov: Bool) {
        self.learningRate = lr
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
    }

    public func step(_ parameters: [Parameter]) throws {
        for p in parameters {
            guard let grad = p.variable.grad else { continue }
            let key = ObjectIdentifier(p)
            // An empty buffer means "first step": PyTorch then initialises it with the gradient.
            var buf = momentum != 0 ? (buffers[key] ?? []) : []
            let first = buf.isEmpty
            if momentum != 0 && first { buf = [Float](repeating: 0, count: grad.count) }
            var value = p.value
            let gradient = grad.data
            value.withUnsafeMutableBufferPointer { w in
                for i in 0..<w.count {
                    var g = gradient[i]
                    if weightDecay != 0 { g += weightDecay * w[i] }
                    if momentum != 0 {
                        let b = first ? g : momentum * buf[i] + (1 - dampening) * g
                        buf[i] = b
                        g = nesterov ? g + momentum * b : b
                    }
                    w[i] -= learningRate * g
                }
            }
            p.value = value
            if momentum != 0 { buffers[key] = buf }
        }
    }
}

/// Adam (L2 weight decay added to the gradient) and AdamW (decoupled decay p ← p·(1 - lr·λ)),
/// with PyTorch's bias-corrected update p ← p - (lr/(1-β₁ᵗ)) · m / (√v/√(1-β₂ᵗ) + ε).
public final class Adam: Optimizer {
    public var learningRate: Float
    let beta1: Float, beta2: Float, eps: Float, weightDecay: Float, decoupled: Bool
    var state: [ObjectIdentifier: (step: Int, m: [Float], v: [Float])] = [:]

    init(lr: Float, beta1: Float, beta2: Float, eps: Float, weightDecay: Float, decoupled: Bool) {
        self.learningRate = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        self.decoupled = decoupled
    }

    public func step(_ parameters: [Parameter]) throws {
        for p in parameters {
            guard let grad = p.variable.grad else { continue }
            let key = ObjectIdentifier(p)
            var s = state.removeValue(forKey: key)
                ?? (0, [Float](repeating: 0, count: grad.count), [Float](repeating: 0, count: grad.count))
            s.step += 1
            // Bias corrections in double precision, as PyTorch computes them on Python floats.
            let bc1 = 1 - pow(Double(beta1), Double(s.step))
            let bc2Sqrt = (1 - pow(Double(beta2), Double(s.step))).squareRoot()
            let stepSize = Float(Double(learningRate) / bc1)
            let bc2 = Float(bc2Sqrt)
            let decay = decoupled ? 1 - learningRate * weightDecay : 1
            var value = p.value
            let gradient = grad.data
            value.withUnsafeMutableBufferPointer { w in
                for i in 0..<w.count {
                    var g = gradient[i]
                    if decoupled {
                        w[i] *= decay
                    } else if weightDecay != 0 {
                        g += weightDecay * w[i]
                    }
                    s.m[i] = beta1 * s.m[i] + (1 - beta1) * g
                    s.v[i] = beta2 * s.v[i] + (1 - beta2) * g * g
                    let denom = s.v[i].squareRoot() / bc2 + eps
                    w[i] -= stepSize * (s.m[i] / denom)
                }
            }
            p.value = value
            state[key] = s
        }
    }
}
