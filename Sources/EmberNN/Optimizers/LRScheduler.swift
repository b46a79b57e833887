import EmberCore
import Glibc

/// Learning-rate schedules with PyTorch's formulas (`torch.optim.lr_scheduler`).
public enum LRSchedule: Equatable, Sendable {
    /// `StepLR`: lr = base · gamma^⌊epoch / step_size⌋.
    case step(stepSize: Int, gamma: Double = 0.1)
    /// `MultiplicativeLR` with a constant factor: lr ← lr · factor each epoch.
    case multiplicative(factor: Double)
    /// `CosineAnnealingLR` (PyTorch's recursive form): from base down to eta_min over t_max epochs.
    case cosineAnnealing(tMax: Int, etaMin: Double = 0)
    /// `OneCycleLR`, stepped per batch: warm up to max_lr, then anneal to max_lr/div/final_div;
    /// momentum (or Adam's beta1) cycles inversely when `cycleMomentum`.
    case oneCycle(maxLR: Double, totalSteps: Int, pctStart: Double = 0.3, cosine: Bool = true,
                  divFactor: Double = 25, finalDivFactor: Double = 1e4, cycleMomentum: Bool = true,
                  baseMomentum: Double = 0.85, maxMomentum: Double = 0.95)
    /// `ReduceLROnPlateau`, stepped with a validation score.
    case reduceOnPlateau(maximize: Bool = false, factor: Double = 0.1, patience: Int = 10, threshold: Double = 1e-4,
                         relativeThreshold: Bool = true, cooldown: Int = 0, minLR: Double = 0, eps: Double = 1e-8)
}

/// Drives an optimizer's learning rates (all groups) along a schedule.
///
/// As in PyTorch, creating the scheduler sets the initial learning rates (step 0); each `step()`
/// then advances one epoch (one batch for one-cycle); `step(metric:)` feeds reduce-on-plateau.
public final class LRScheduler {
    /// The schedule.
    public let schedule: LRSchedule?
    /// The optimizer whose learning rates are set.
    public let optimizer: Optimizer
    /// Steps taken (PyTorch's `last_epoch`).
    public private(set) var lastEpoch = 0
    let baseLRs: [Double]
    let lambda: ((Int) -> Double)?
    let lambdaIsMultiplicative: Bool
    // Reduce-on-plateau state.
    var best: Double = .nan
    var badEpochs = 0
    var cooldownCounter = 0

    /// A scheduler following `schedule`.
    public init(_ schedule: LRSchedule, optimizer: Optimizer) throws {
        self.schedule = schedule
        self.optimizer = optimizer
        self.lambda = nil
        self.lambdaIsMultiplicative = false
        try LRScheduler.validate(schedule)
        if case let .oneCycle(maxLR, _, _, _, div, _, cycle, _, maxMomentum) = schedule {
            for g in optimizer.groups { g.options["lr"] = maxLR / div }
            if cycle { try LRScheduler.setMomentum(optimizer, maxMomentum) }
        }
        self.baseLRs = optimizer.groups.map { $0["lr"] }
        if case let .reduceOnPlateau(maximize, _, _, _, _, _, _, _) = schedule { best = maximize ? -.infinity : .infinity }
        try apply()
    }

    /// `LambdaLR` (lr = base · f(epoch)) or, with `multiplicative`, `MultiplicativeLR`
    /// (lr ← lr · f(epoch) for epoch ≥ 1).
    public init(lambda: @escaping (Int) -> Double, multiplicative: Bool = false, optimizer: Optimizer) throws {
        self.schedule = nil
        self.optimizer = optimizer
        self.lambda = lambda
        self.lambdaIsMultiplicative = multiplicative
        self.baseLRs = optimizer.groups.map { $0["lr"] }
        try apply()
    }

    /// Sets the step counter when resuming from a checkpoint (learning rates are restored separately).
    func restore(lastEpoch: Int) { self.lastEpoch = lastEpoch }

    /// The current learning rate of each group.
    public var learningRates: [Double] { optimizer.groups.map { $0["lr"] } }

    /// Advances one epoch (or batch for one-cycle). Reduce-on-plateau needs `step(metric:)`.
    public func step() throws {
        if case .reduceOnPlateau = schedule {
            throw EmberError(.invalidState, "[lr_scheduler] reduce_on_plateau needs step(metric:) with a validation score")
        }
        lastEpoch += 1
        try apply()
    }

    /// Feeds a validation score to reduce-on-plateau (other schedules ignore it and step).
    public func step(metric: Double) throws {
        guard case let .reduceOnPlateau(maximize, factor, patience, threshold, relative, cooldown, minLR, eps) = schedule else {
            return try step()
        }
        guard metric.isFinite || metric.isInfinite else {
            throw EmberError.invalidArgument("lr_scheduler", "the validation score is NaN")
        }
        lastEpoch += 1
        let better: Bool
        switch (maximize, relative) {
        case (false, true): better = metric < best * (1 - threshold)
        case (false, false): better = metric < best - threshold
        case (true, true): better = metric > best * (threshold + 1)
        case (true, false): better = metric > best + threshold
        }
        if better {
            best = metric
            badEpochs = 0
        } else {
            badEpochs += 1
        }
        if cooldownCounter > 0 {
            cooldownCounter -= 1
            badEpochs = 0
        }
        if badEpochs > patience {
            for g in optimizer.groups {
                let old = g["lr"], new = max(old * factor, minLR)
                if old - new > eps { g.options["lr"] = new }
            }
            cooldownCounter = cooldown
            badEpochs = 0
        }
    }

    private func apply() throws {
        let e = lastEpoch
        if let lambda {
            for (i, g) in optimizer.groups.enumerated() {
                if lambdaIsMultiplicative {
                    if e > 0 { g.options["lr"] = g["lr"] * lambda(e) }
                } else {
                    g.options["lr"] = baseLRs[i] * lambda(e)
                }
            }
            return
        }
        guard let schedule else { return }
        switch schedule {
        case let .step(stepSize, gamma):
            for (i, g) in optimizer.groups.enumerated() { g.options["lr"] = baseLRs[i] * pow(gamma, Double(e / stepSize)) }
        case let .multiplicative(factor):
            if e > 0 { for g in optimizer.groups { g.options["lr"] = g["lr"] * factor } }
        case let .cosineAnnealing(tMax, etaMin):
            let t = Double(tMax)
            for (i, g) in optimizer.groups.enumerated() {
                let lr = g["lr"], base = baseLRs[i]
                if e == 0 {
                    g.options["lr"] = base
                } else if (e - 1 - tMax) % (2 * tMax) == 0 {
                    g.options["lr"] = lr + (base - etaMin) * (1 - cos(Double.pi / t)) / 2
                } else {
                    g.options["lr"] = (1 + cos(Double.pi * Double(e) / t)) / (1 + cos(Double.pi * Double(e - 1) / t))
                        * (lr - etaMin) + etaMin
                }
            }
        case let .oneCycle(maxLR, total, pct, cosine, div, finalDiv, cycle, baseM, maxM):
            // As PyTorch: step() may be called total_steps times (once after each batch; the last
            // learning rate is never used), not more.
            guard e <= total else {
                throw EmberError(.invalidState, "[lr_scheduler] one_cycle was stepped \(e) times; total_steps is \(total)")
            }
            let initial = maxLR / div, minimum = initial / finalDiv
            let phases: [(end: Double, lr: (Double, Double), m: (Double, Double))] = [
                (pct * Double(total) - 1, (initial, maxLR), (maxM, baseM)),
                (Double(total) - 1, (maxLR, minimum), (baseM, maxM)),
            ]
            var start = 0.0
            var lr = initial, momentum = maxM
            for (k, ph) in phases.enumerated() {
                if Double(e) <= ph.end || k == phases.count - 1 {
                    let p = (Double(e) - start) / (ph.end - start)
                    lr = LRScheduler.anneal(ph.lr.0, ph.lr.1, p, cosine)
                    momentum = LRScheduler.anneal(ph.m.0, ph.m.1, p, cosine)
                    break
                }
                start = ph.end
            }
            for g in optimizer.groups { g.options["lr"] = lr }
            if cycle { try LRScheduler.setMomentum(optimizer, momentum) }
        case .reduceOnPlateau:
            break
        }
    }

    static func anneal(_ start: Double, _ end: Double, _ pct: Double, _ cosine: Bool) -> Double {
        cosine ? end + (start - end) / 2 * (cos(Double.pi * pct) + 1) : (end - start) * pct + start
    }

    /// One-cycle's momentum: SGD's `momentum`, or Adam's/AdamW's `beta1`.
    static func setMomentum(_ optimizer: Optimizer, _ m: Double) throws {
        switch optimizer.kind {
        case .sgd, .rmsprop: for g in optimizer.groups { g.options["momentum"] = m }
        case .adam, .adamw: for g in optimizer.groups { g.options["beta1"] = m }
        case .adagrad:
            throw EmberError.invalidArgument("lr_scheduler", "one_cycle with cycle_momentum needs an optimizer with momentum; adagrad has none")
        }
    }

    static func validate(_ s: LRSchedule) throws {
        switch s {
        case let .step(stepSize, gamma):
            guard stepSize >= 1 else { throw EmberError.invalidArgument("lr_scheduler", "step_size must be >= 1, got \(stepSize)") }
            guard gamma.isFinite && gamma > 0 else { throw EmberError.invalidArgument("lr_scheduler", "gamma must be > 0, got \(gamma)") }
        case let .multiplicative(f):
            guard f.isFinite && f > 0 else { throw EmberError.invalidArgument("lr_scheduler", "factor must be > 0, got \(f)") }
        case let .cosineAnnealing(tMax, etaMin):
            guard tMax >= 1 else { throw EmberError.invalidArgument("lr_scheduler", "t_max must be >= 1, got \(tMax)") }
            guard etaMin.isFinite && etaMin >= 0 else { throw EmberError.invalidArgument("lr_scheduler", "eta_min must be >= 0, got \(etaMin)") }
        case let .oneCycle(maxLR, total, pct, _, div, finalDiv, _, baseM, maxM):
            guard maxLR.isFinite && maxLR > 0 else { throw EmberError.invalidArgument("lr_scheduler", "max_lr must be > 0, got \(maxLR)") }
            guard total >= 2 else { throw EmberError.invalidArgument("lr_scheduler", "total_steps must be >= 2, got \(total)") }
            guard pct > 0 && pct < 1 else { throw EmberError.invalidArgument("lr_scheduler", "pct_start must be in (0, 1), got \(pct)") }
            guard pct * Double(total) - 1 > 0 else {
                throw EmberError.invalidArgument("lr_scheduler", "pct_start · total_steps must exceed 1 (got \(pct) · \(total))")
            }
            guard div > 0 && finalDiv > 0 else { throw EmberError.invalidArgument("lr_scheduler", "div_factor and final_div_factor must be > 0") }
            guard baseM >= 0 && baseM < 1 && maxM >= 0 && maxM < 1 else {
                throw EmberError.invalidArgument("lr_scheduler", "base_momentum and max_momentum must lie in [0, 1)")
            }
        case let .reduceOnPlateau(_, factor, patience, threshold, _, cooldown, minLR, eps):
            guard factor > 0 && factor < 1 else { throw EmberError.invalidArgument("lr_scheduler", "factor must be in (0, 1), got \(factor)") }
            guard patience >= 0 && cooldown >= 0 else { throw EmberError.invalidArgument("lr_scheduler", "patience and cooldown must be >= 0") }
            guard threshold >= 0 && minLR >= 0 && eps >= 0 else {
                throw EmberError.invalidArgument("lr_scheduler", "threshold, min_lr and eps must be >= 0")
            }
        }
    }
}
