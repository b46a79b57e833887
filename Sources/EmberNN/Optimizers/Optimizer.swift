import CEmberKernels
import EmberCore
import Glibc

/// The optimizers, with PyTorch's names.
public enum OptimizerKind: String, CaseIterable, Sendable {
    case sgd, adam, adamw, rmsprop, adagrad

    /// Hyperparameters (PyTorch's names; booleans as 0/1) and their defaults.
    public var defaults: [String: Double] {
        switch self {
        case .sgd: return ["lr": 1e-3, "momentum": 0, "dampening": 0, "weight_decay": 0, "nesterov": 0]
        case .adam: return ["lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0, "amsgrad": 0]
        case .adamw: return ["lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 1e-2, "amsgrad": 0]
        case .rmsprop: return ["lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0, "momentum": 0, "centered": 0]
        case .adagrad: return ["lr": 1e-2, "lr_decay": 0, "weight_decay": 0, "initial_accumulator_value": 0, "eps": 1e-10]
        }
    }
}

/// Which optimizer to build and its hyperparameters: a plain value that hosts (R, C) fill in.
public struct OptimizerConfig: Equatable, Sendable {
    /// The optimizer.
    public var kind: OptimizerKind
    /// Hyperparameters by PyTorch name; missing ones take `kind.defaults`.
    public var options: [String: Double]
    /// Parameter groups with their own hyperparameters (PyTorch's `param_groups`), e.g. a
    /// pretrained body at a tenth of the head's learning rate. A parameter belongs to the first
    /// group with a matching name pattern; the parameters no group matches form a last group with
    /// `options`. Empty: one group of all parameters.
    public var parameterGroups: [ParameterGroupSpec]

    /// Creates a configuration; unknown names are rejected when the optimizer is built.
    public init(_ kind: OptimizerKind, _ options: [String: Double] = [:], parameterGroups: [ParameterGroupSpec] = []) {
        self.kind = kind
        self.options = options
        self.parameterGroups = parameterGroups
    }

    /// Builds the optimizer over named parameters, split into `parameterGroups`.
    public func make(named parameters: [(String, Parameter)]) throws -> Optimizer {
        guard !parameterGroups.isEmpty else { return try make(parameters.map(\.1)) }
        var members = [[Parameter]](repeating: [], count: parameterGroups.count)
        var rest: [Parameter] = []
        for (name, p) in parameters {
            if let g = parameterGroups.firstIndex(where: { $0.patterns.contains { globMatch($0, name) } }) {
                members[g].append(p)
            } else {
                rest.append(p)
            }
        }
        for (i, m) in members.enumerated() where m.isEmpty {
            throw EmberError.invalidArgument("optimizer", "param_groups[\(i + 1)] (\(parameterGroups[i].patterns.joined(separator: ", "))) matches no parameter that an earlier group left")
        }
        var groups = zip(members, parameterGroups).map { ($0.0, $0.1.options) }
        if !rest.isEmpty { groups.append((rest, [:])) }
        return try make(groups: groups)
    }

    /// `torch.optim.SGD`.
    public static func sgd(lr: Double = 1e-3, momentum: Double = 0, dampening: Double = 0, weightDecay: Double = 0,
                           nesterov: Bool = false) -> OptimizerConfig {
        OptimizerConfig(.sgd, ["lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weightDecay,
                               "nesterov": nesterov ? 1 : 0])
    }

    /// `torch.optim.Adam`.
    public static func adam(lr: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8,
                            weightDecay: Double = 0, amsgrad: Bool = false) -> OptimizerConfig {
        OptimizerConfig(.adam, ["lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weightDecay,
                                "amsgrad": amsgrad ? 1 : 0])
    }

    /// `torch.optim.AdamW`.
    public static func adamw(lr: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8,
                             weightDecay: Double = 1e-2, amsgrad: Bool = false) -> OptimizerConfig {
        OptimizerConfig(.adamw, ["lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weightDecay,
                                 "amsgrad": amsgrad ? 1 : 0])
    }

    /// `torch.optim.RMSprop`.
    public static func rmsprop(lr: Double = 1e-2, alpha: Double = 0.99, eps: Double = 1e-8, weightDecay: Double = 0,
                               momentum: Double = 0, centered: Bool = false) -> OptimizerConfig {
        OptimizerConfig(.rmsprop, ["lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weightDecay,
                                   "momentum": momentum, "centered": centered ? 1 : 0])
    }

    /// `torch.optim.Adagrad`.
    public static func adagrad(lr: Double = 1e-2, lrDecay: Double = 0, weightDecay: Double = 0,
                               initialAccumulatorValue: Double = 0, eps: Double = 1e-10) -> OptimizerConfig {
        OptimizerConfig(.adagrad, ["lr": lr, "lr_decay": lrDecay, "weight_decay": weightDecay,
                                   "initial_accumulator_value": initialAccumulatorValue, "eps": eps])
    }

    /// Builds the optimizer over one group of parameters.
    public func make(_ parameters: [Parameter]) throws -> Optimizer {
        try make(groups: [(parameters, [:])])
    }

    /// Builds the optimizer over parameter groups, each with overrides of this configuration.
    public func make(groups: [([Parameter], [String: Double])]) throws -> Optimizer {
        var built: [ParameterGroup] = []
        for (i, (params, overrides)) in groups.enumerated() {
            var opts = kind.defaults
            for (k, v) in options { opts[k] = v }
            for (k, v) in overrides { opts[k] = v }
            let g = ParameterGroup(parameters: params, options: opts, index: i)
            try Optimizer.validate(kind, opts, group: i)
            built.append(g)
        }
        return Optimizer(kind: kind, groups: built)
    }
}

/// A parameter group of `OptimizerConfig`: name patterns (`*` any run, `?` one character) and
/// hyperparameters that override the optimizer's.
public struct ParameterGroupSpec: Equatable, Sendable {
    public var patterns: [String]
    public var options: [String: Double]

    public init(patterns: [String], options: [String: Double]) {
        self.patterns = patterns
        self.options = options
    }
}

/// Parameters that share hyperparameters.
public final class ParameterGroup {
    /// The parameters updated with these options.
    public let parameters: [Parameter]
    /// Hyperparameters by PyTorch name.
    public internal(set) var options: [String: Double]
    let index: Int

    init(parameters: [Parameter], options: [String: Double], index: Int) {
        self.parameters = parameters
        self.options = options
        self.index = index
    }

    /// A hyperparameter (0 if unknown; names are validated when set).
    public subscript(_ name: String) -> Double { options[name] ?? 0 }
}

/// Per-parameter optimizer state: a step count and named buffers (PyTorch's state names).
struct ParameterState {
    var step = 0
    var buffers: [String: Tensor] = [:]
}

/// Updates parameters from their gradients with PyTorch's rules, one fused pass per parameter.
///
/// Frozen parameters and parameters without a gradient are skipped (their state does not advance).
public final class Optimizer {
    /// Which optimizer this is.
    public let kind: OptimizerKind
    /// The parameter groups.
    public let groups: [ParameterGroup]
    var state: [ObjectIdentifier: ParameterState] = [:]

    init(kind: OptimizerKind, groups: [ParameterGroup]) {
        self.kind = kind
        self.groups = groups
        if kind == .adagrad {
            // PyTorch initialises Adagrad's sum at construction.
            for g in groups {
                for p in g.parameters {
                    let v = Float(g["initial_accumulator_value"])
                    state[ObjectIdentifier(p)] = ParameterState(step: 0, buffers: ["sum": (try? Tensor(shape: p.value.shape, repeating: v)) ?? p.value])
                }
            }
        }
    }

    /// The learning rate of group 0 (convenience for single-group use).
    public var learningRate: Double {
        get { groups.first?["lr"] ?? 0 }
        set { for g in groups { g.options["lr"] = newValue } }
    }

    /// Sets a hyperparameter of one group (or all when `group` is nil), validating it.
    public func setOption(_ name: String, _ value: Double, group: Int? = nil) throws {
        let targets: [ParameterGroup]
        if let group {
            guard group >= 0 && group < groups.count else {
                throw EmberError.invalidArgument("optimizer", "group \(group) does not exist; there are \(groups.count)")
            }
            targets = [groups[group]]
        } else {
            targets = groups
        }
        for g in targets {
            var opts = g.options
            opts[name] = value
            try Optimizer.validate(kind, opts, group: g.index)
            g.options = opts
        }
    }

    /// Clears every gradient.
    public func zeroGrad() {
        for g in groups { for p in g.parameters { p.grad = nil } }
    }

    /// Whether `step()` keeps each parameter's values from before its update, so that
    /// `restoreValuesBeforeLastStep()` can undo the last step's changes to the parameters. In
    /// `step()` the copy is taken inside the update, a block at a time just before the update reads
    /// the block, with non-temporal stores (`cember_copy_streaming`): no separate pass over every
    /// weight. An update fused into a product (`fusedUpdate`) copies nothing when the two copies of
    /// all parameters fit in half the last-level cache (`fusedUpdatesWriteNextToKept`): it writes
    /// the new values next to the old ones, which are kept; otherwise it streams a copy of the
    /// parameter before the product. Off by default.
    public var keepsValuesBeforeStep = false {
        didSet { if !keepsValuesBeforeStep { valuesBeforeStep = [:] } }
    }

    /// The values before their last update of the parameters updated by the last step (tagged with
    /// that step's number), when `keepsValuesBeforeStep`.
    private var valuesBeforeStep: [ObjectIdentifier: (step: Int, values: Tensor)] = [:]
    /// Calls of `step()` so far.
    private var steps = 0

    /// Puts back the values the parameters had before the last `step()` (those it updated; the
    /// others did not change in it). Returns false when nothing was kept (`keepsValuesBeforeStep`
    /// was off during the last step, or no step was taken). The parameters get the kept tensors
    /// (copy-on-write: a later step writes into storage of its own). The optimizer's state
    /// (moments, step counts) is not rolled back.
    @discardableResult
    public func restoreValuesBeforeLastStep() -> Bool {
        guard keepsValuesBeforeStep, steps > 0 else { return false }
        for g in groups {
            for p in g.parameters {
                guard let kept = valuesBeforeStep[ObjectIdentifier(p)], kept.step == steps,
                      kept.values.shape == p.value.shape else { continue }
                p.value = kept.values
            }
        }
        return true
    }

    // MARK: Updates fused into a product

    /// The group of each parameter.
    private lazy var groupOf: [ObjectIdentifier: ParameterGroup] = {
        var out: [ObjectIdentifier: ParameterGroup] = [:]
        for g in groups { for p in g.parameters { out[ObjectIdentifier(p)] = g } }
        return out
    }()

    /// When this optimizer's next update of `p` is W ← W + scale·G (plain SGD: no momentum, no
    /// weight decay, on a parameter that is not frozen), `scale` (−lr); nil otherwise. A caller
    /// that computes G as a matrix product may then fold the update into it (C = W, alpha = scale,
    /// beta = 1): G is never written, nor read again by `step()`. The product's rounding of
    /// W + scale·G may differ from `step()`'s in the last bit (one rounding instead of two).
    func fusedUpdateScale(for p: Parameter) -> Float? {
        guard kind == .sgd, !p.isFrozen, let g = groupOf[ObjectIdentifier(p)], g["momentum"] == 0,
              g["weight_decay"] == 0 else { return nil }
        return -Float(g["lr"])
    }

    /// Whether an update fused into a product writes the new values next to the old ones, which
    /// are then kept without a copy (`fusedUpdate`), rather than copying the old values first and
    /// updating in place: when the two copies of every parameter fit in half the last-level cache
    /// (`Engine.lastLevelCacheBytes`). Beyond that the buffer written next comes from memory, its
    /// lines read before they are written, while the copy streams past the caches: on a Zen 3 with
    /// 32 MiB of L3 the SGD steps of the MLP grid gained 4–7% up to 8 × 400 and lost at 16 × 400 (23
    /// MB for the two copies); the figures are in docs/architecture.md, "What a step writes besides
    /// the products". Settable for tests.
    lazy var fusedUpdatesWriteNextToKept: Bool = {
        let floats = groups.reduce(0) { $0 + $1.parameters.reduce(0) { $0 + $1.value.count } }
        return 2 * floats * MemoryLayout<Float>.size <= Engine.lastLevelCacheBytes / 2
    }()

    /// Runs an update of `p` that the caller fuses into a product (`fusedUpdateScale`), as part of
    /// the `step()` that follows: `body(current, target)` writes p's new values to `target`,
    /// reading its current ones at `current`, and p then holds them. Without
    /// `keepsValuesBeforeStep` the two are the same memory (in place). With it, either `target` is
    /// other memory (the values kept at p's previous update, no longer needed) and p's current
    /// tensor itself becomes the kept values, nothing copied; or, for parameters too large for the
    /// caches (`fusedUpdatesWriteNextToKept`), the current values are first copied to the kept
    /// ones with non-temporal stores, then updated in place. Advances p's step count. Give p no
    /// gradient, so that `step()` does not update it again. If `body` throws, p's update is not
    /// counted and p keeps the values it had (unless `body` wrote them in place), but the values
    /// kept at its previous update are dropped: a restore then leaves p as it is.
    func fusedUpdate(of p: Parameter,
                     _ body: (_ current: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>) throws -> Void) rethrows {
        let key = ObjectIdentifier(p)
        func inPlace() throws {
            try p.variable.value.withUnsafeMutableBufferPointer { w in
                guard let w = w.baseAddress else { return }
                try body(UnsafePointer(w), w)
            }
        }
        if keepsValuesBeforeStep && fusedUpdatesWriteNextToKept {
            let current = p.value
            var target = takeKeptValues(key, shape: current.shape)
            try target.withUnsafeMutableBufferPointer { t in
                guard let t = t.baseAddress else { return }
                try body(current.unsafeReadPointer, t)
            }
            p.value = target
            // Tagged with the number of the step() this update belongs to.
            valuesBeforeStep[key] = (steps + 1, current)
        } else if keepsValuesBeforeStep {
            var kept = takeKeptValues(key, shape: p.value.shape)
            let values = p.value.unsafeReadPointer, n = p.value.count
            kept.withUnsafeMutableBufferPointer { k in
                guard let k = k.baseAddress else { return }
                Parallel.forRange(n) { lo, hi in cember_copy_streaming(k + lo, values + lo, Int64(hi - lo)) }
            }
            try inPlace()
            valuesBeforeStep[key] = (steps + 1, kept)
        } else {
            try inPlace()
        }
        var st = state.removeValue(forKey: key) ?? ParameterState()
        st.step += 1
        state[key] = st
    }

    /// The tensor that receives a parameter's values before its update (or, for an update fused
    /// into a product, its new values): the one of its last update (no allocation in the steady
    /// state), taken out of `valuesBeforeStep`, or a new one. Its values are overwritten.
    private func takeKeptValues(_ key: ObjectIdentifier, shape: [Int]) -> Tensor {
        if let kept = valuesBeforeStep.removeValue(forKey: key)?.values, kept.shape == shape { return kept }
        return Tensor.build(shape: shape) { _ in }
    }

    /// One update of every parameter that has a gradient.
    public func step() throws {
        steps += 1
        for g in groups {
            for p in g.parameters where !p.isFrozen {
                guard let grad = p.grad else { continue }
                guard grad.shape == p.value.shape else {
                    throw EmberError.shapeMismatch("\(kind.rawValue)", "gradient of '\(p.name)' has shape \(shapeString(grad.shape)); expected \(shapeString(p.value.shape))")
                }
                let key = ObjectIdentifier(p)
                var st = state.removeValue(forKey: key) ?? ParameterState()
                st.step += 1
                // In place: the tape released its references in backward(), so this does not copy.
                if keepsValuesBeforeStep {
                    var kept = takeKeptValues(key, shape: p.value.shape)
                    p.variable.value.withUnsafeMutableBufferPointer { w in
                        grad.withUnsafeBufferPointer { gr in
                            kept.withUnsafeMutableBufferPointer { k in update(w, gr, &st, g, keep: k.baseAddress) }
                        }
                    }
                    valuesBeforeStep[key] = (steps, kept)
                } else {
                    p.variable.value.withUnsafeMutableBufferPointer { w in
                        grad.withUnsafeBufferPointer { gr in update(w, gr, &st, g, keep: nil) }
                    }
                }
                state[key] = st
            }
        }
    }

    /// A zero (or `fill`) state buffer of the parameter's size, created on first use.
    private func buffer(_ st: inout ParameterState, _ name: String, _ n: Int, fill: Float = 0) -> UnsafeMutablePointer<Float> {
        if st.buffers[name] == nil {
            st.buffers[name] = (try? Tensor(shape: [n], repeating: fill)) ?? Tensor.scalar(0)
        }
        // Buffers are never shared (stateTensors() hands out copies), so this does not copy; the
        // pointer stays valid while `st` holds the buffer.
        return st.buffers[name, default: Tensor.scalar(0)].withUnsafeMutableBufferPointer { $0.baseAddress.unsafelyUnwrapped }
    }

    /// Floats per block of `update` when it keeps the values before the update: the copy and the
    /// update of a block run back to back, the block still in L1.
    static let keepBlock = 2048

    /// Updates one parameter, over Ember's threads when it is large (`Parallel.forRange`); with
    /// `keep`, first copies each block of its values there. The kernels are elementwise, so
    /// blocks and threads give the same bits as one call.
    private func update(_ w: UnsafeMutableBufferPointer<Float>, _ g: UnsafeBufferPointer<Float>, _ st: inout ParameterState,
                        _ group: ParameterGroup, keep: UnsafeMutablePointer<Float>?) {
        let n = w.count
        guard let wp = w.baseAddress, let gp = g.baseAddress, n > 0 else { return }
        let lr = Float(group["lr"]), wd = Float(group["weight_decay"])
        /// Runs `body(offset, count)` over the parameter: over each thread's range at once, or block
        /// by block after copying each block to `keep`.
        func blocks(_ body: (Int, Int) -> Void) {
            Parallel.forRange(n) { lo, hi in
                guard let keep else { return body(lo, hi - lo) }
                var offset = lo
                while offset < hi {
                    let count = Swift.min(Optimizer.keepBlock, hi - offset)
                    cember_copy_streaming(keep + offset, wp + offset, Int64(count))
                    body(offset, count)
                    offset += count
                }
            }
        }
        // The fused loops live in CEmberKernels (vectorised, dispatched per CPU; see optimizers.c).
        switch kind {
        case .sgd:
            let momentum = Float(group["momentum"]), dampening = Float(group["dampening"])
            let nesterov: Int32 = group["nesterov"] != 0 ? 1 : 0
            let first: Int32 = st.buffers["momentum_buffer"] == nil ? 1 : 0
            let buf = momentum != 0 ? buffer(&st, "momentum_buffer", n) : nil
            blocks { o, c in cember_sgd(wp + o, gp + o, buf.map { $0 + o }, Int64(c), lr, wd, momentum, dampening, nesterov, first) }
        case .adam, .adamw:
            // Bias corrections in double precision, as PyTorch computes them on Python floats.
            let bc1 = 1 - pow(group["beta1"], Double(st.step))
            let bc2Sqrt = Float((1 - pow(group["beta2"], Double(st.step))).squareRoot())
            let m = buffer(&st, "exp_avg", n), v = buffer(&st, "exp_avg_sq", n)
            let vmax = group["amsgrad"] != 0 ? buffer(&st, "max_exp_avg_sq", n) : nil
            let stepSize = Float(group["lr"] / bc1), beta1 = Float(group["beta1"]), beta2 = Float(group["beta2"])
            let eps = Float(group["eps"]), decoupled: Int32 = kind == .adamw ? 1 : 0
            blocks { o, c in
                cember_adam(wp + o, gp + o, m + o, v + o, vmax.map { $0 + o }, Int64(c), stepSize, beta1, beta2, eps, bc2Sqrt,
                            wd, 1 - lr * wd, decoupled)
            }
        case .rmsprop:
            let momentum = Float(group["momentum"]), alpha = Float(group["alpha"]), eps = Float(group["eps"])
            let sq = buffer(&st, "square_avg", n)
            let ga = group["centered"] != 0 ? buffer(&st, "grad_avg", n) : nil
            let buf = momentum > 0 ? buffer(&st, "momentum_buffer", n) : nil
            blocks { o, c in
                cember_rmsprop(wp + o, gp + o, sq + o, ga.map { $0 + o }, buf.map { $0 + o }, Int64(c), lr, alpha, eps, wd, momentum)
            }
        case .adagrad:
            let clr = Float(group["lr"] / (1 + Double(st.step - 1) * group["lr_decay"]))
            let sum = buffer(&st, "sum", n, fill: Float(group["initial_accumulator_value"]))
            let eps = Float(group["eps"])
            blocks { o, c in cember_adagrad(wp + o, gp + o, sum + o, Int64(c), clr, eps, wd) }
        }
    }

    // MARK: State

    /// Optimizer state as named tensors (`<parameter name>.<state name>`, plus `.step`), for
    /// checkpoints; parameters are identified by name, so names must be unique.
    public func stateTensors() -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        for g in groups {
            for p in g.parameters {
                guard let st = state[ObjectIdentifier(p)] else { continue }
                out.append(("\(p.name).step", Tensor.scalar(Float(st.step))))
                // Copies, in the parameter's shape (as PyTorch's state_dict): the optimizer keeps
                // updating its own (flat) buffers in place.
                for (k, t) in st.buffers.sorted(by: { $0.key < $1.key }) {
                    let shape = t.count == p.value.count ? p.value.shape : t.shape
                    out.append(("\(p.name).\(k)", Tensor.build(shape: shape) { d in
                        t.withUnsafeBufferPointer { s in for i in 0..<s.count { d[i] = s[i] } }
                    }))
                }
            }
        }
        return out
    }

    /// Restores state written by `stateTensors()`; every tensor must belong to a known parameter.
    public func loadState(_ tensors: [String: Tensor]) throws {
        var byName: [String: Parameter] = [:]
        for g in groups { for p in g.parameters { byName[p.name] = p } }
        var restored: [ObjectIdentifier: ParameterState] = [:]
        for (key, t) in tensors {
            guard let dot = key.lastIndex(of: ".") else {
                throw EmberError(.corruptData, "[optimizer] state tensor '\(key)' does not name a parameter")
            }
            let pname = String(key[..<dot]), field = String(key[key.index(after: dot)...])
            guard let p = byName[pname] else {
                throw EmberError(.corruptData, "[optimizer] state tensor '\(key)' belongs to no parameter of this optimizer")
            }
            var st = restored[ObjectIdentifier(p)] ?? ParameterState()
            if field == "step" {
                guard let s = t.scalarValue, s >= 0, s < 1e15, s == s.rounded() else {
                    throw EmberError(.corruptData, "[optimizer] '\(key)' is not a step count")
                }
                st.step = Int(s)
            } else {
                guard t.count == p.value.count else {
                    throw EmberError(.corruptData, "[optimizer] '\(key)' has \(t.count) elements; the parameter has \(p.value.count)")
                }
                // A copy: the optimizer updates its buffers in place, never the caller's tensors.
                var buffer = try t.reshaped([t.count])
                buffer.makeUnique()
                st.buffers[field] = buffer
            }
            restored[ObjectIdentifier(p)] = st
        }
        state = restored
    }

    /// Checks hyperparameters: known names, finite values in range.
    static func validate(_ kind: OptimizerKind, _ opts: [String: Double], group: Int) throws {
        let known = kind.defaults
        let op = kind.rawValue
        for (k, v) in opts {
            guard known[k] != nil else {
                throw EmberError.invalidArgument(op, "unknown hyperparameter '\(k)'; expected one of \(known.keys.sorted().joined(separator: ", "))")
            }
            guard v.isFinite else { throw EmberError.invalidArgument("opt.\(k)", "must be finite, got \(v)") }
        }
        func check(_ name: String, _ ok: (Double) -> Bool, _ expected: String) throws {
            if let v = opts[name], !ok(v) {
                throw EmberError.invalidArgument("opt.\(name)", "must be \(expected), got \(v)\(group > 0 ? " (group \(group))" : "")")
            }
        }
        try check("lr", { $0 >= 0 }, "a finite number >= 0")
        try check("weight_decay", { $0 >= 0 }, "a finite number >= 0")
        try check("momentum", { $0 >= 0 }, ">= 0")
        try check("eps", { $0 >= 0 }, ">= 0")
        try check("beta1", { $0 >= 0 && $0 < 1 }, "in [0, 1)")
        try check("beta2", { $0 >= 0 && $0 < 1 }, "in [0, 1)")
        try check("alpha", { $0 >= 0 }, ">= 0")
        try check("lr_decay", { $0 >= 0 }, ">= 0")
        try check("initial_accumulator_value", { $0 >= 0 }, ">= 0")
        for flag in ["nesterov", "amsgrad", "centered"] { try check(flag, { $0 == 0 || $0 == 1 }, "0 or 1") }
        if kind == .sgd, opts["nesterov"] == 1, (opts["momentum"] ?? 0) <= 0 || (opts["dampening"] ?? 0) != 0 {
            throw EmberError.invalidArgument("sgd", "nesterov needs momentum > 0 and dampening = 0")
        }
    }
}
