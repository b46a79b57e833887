import EmberCore
import EmberNN

// The JSON configurations of include/ember.h: models, trainers and architectures. Every field is
// checked; errors name the field by its path (`optimizer.lr`) so that hosts can map it to their
// own argument names.

/// Reads fields of a JSON object, remembering which were used so that unknown names are errors.
struct ConfigReader {
    let path: String
    let members: [(String, JSONValue)]
    private(set) var used: Set<String> = []

    init(_ value: JSONValue, path: String) throws {
        guard case let .object(m) = value else {
            throw ConfigReader.error(path.isEmpty ? "config" : path, "must be a JSON object", expected: "an object", got: value.text)
        }
        self.path = path
        self.members = m
    }

    static func error(_ argument: String, _ message: String, expected: String? = nil, got: String? = nil) -> EmberError {
        EmberError(.invalidArgument, "[\(argument)] \(message)",
                   detail: EmberError.Detail(op: "config", argument: argument, expected: expected, got: got))
    }

    func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    mutating func value(_ key: String) -> JSONValue? {
        used.insert(key)
        guard let v = members.first(where: { $0.0 == key })?.1, v != .null else { return nil }
        return v
    }

    mutating func double(_ key: String, _ ok: (Double) -> Bool = { _ in true }, _ expected: String = "a number") throws -> Double? {
        guard let v = value(key) else { return nil }
        guard let d = v.numberValue, d.isFinite, ok(d) else { throw ConfigReader.error(name(key), "must be \(expected), got \(v.text)", expected: expected, got: v.text) }
        return d
    }

    mutating func int(_ key: String, min: Int = Int.min, max: Int = Int(Int32.max)) throws -> Int? {
        guard let v = value(key) else { return nil }
        guard let i = v.intValue, i >= min, i <= max else {
            let expected = min == Int.min ? "an integer" : "an integer in \(min)...\(max)"
            throw ConfigReader.error(name(key), "must be \(expected), got \(v.text)", expected: expected, got: v.text)
        }
        return i
    }

    mutating func bool(_ key: String) throws -> Bool? {
        guard let v = value(key) else { return nil }
        guard let b = v.boolValue else { throw ConfigReader.error(name(key), "must be true or false, got \(v.text)", expected: "true or false", got: v.text) }
        return b
    }

    mutating func string(_ key: String, allowed: [String]? = nil) throws -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v.stringValue else { throw ConfigReader.error(name(key), "must be a string, got \(v.text)", expected: "a string", got: v.text) }
        if let allowed, !allowed.contains(s) {
            let expected = "one of " + allowed.map { "\"\($0)\"" }.joined(separator: ", ")
            throw ConfigReader.error(name(key), "is \"\(s)\"; expected \(expected)", expected: expected, got: s)
        }
        return s
    }

    mutating func strings(_ key: String) throws -> [String]? {
        guard let v = value(key) else { return nil }
        guard let a = v.arrayValue else { throw ConfigReader.error(name(key), "must be an array of strings, got \(v.text)", expected: "an array of strings", got: v.text) }
        return try a.map {
            guard let s = $0.stringValue else { throw ConfigReader.error(name(key), "must hold strings, got \($0.text)", expected: "strings", got: $0.text) }
            return s
        }
    }

    mutating func numbers(_ key: String) throws -> [Double]? {
        guard let v = value(key) else { return nil }
        if let d = v.numberValue, d.isFinite { return [d] }
        guard let a = v.arrayValue else { throw ConfigReader.error(name(key), "must be an array of numbers, got \(v.text)", expected: "an array of numbers", got: v.text) }
        return try a.map {
            guard let d = $0.numberValue, d.isFinite else { throw ConfigReader.error(name(key), "must hold finite numbers, got \($0.text)", expected: "finite numbers", got: $0.text) }
            return d
        }
    }

    mutating func ints(_ key: String, min: Int = 0) throws -> [Int]? {
        guard let ds = try numbers(key) else { return nil }
        return try ds.map {
            guard $0 == $0.rounded(), $0 >= Double(min), $0 <= Double(Int32.max) else {
                throw ConfigReader.error(name(key), "must hold integers >= \(min), got \($0)", expected: "integers >= \(min)", got: "\($0)")
            }
            return Int($0)
        }
    }

    mutating func object(_ key: String) throws -> ConfigReader? {
        guard let v = value(key) else { return nil }
        return try ConfigReader(v, path: name(key))
    }

    /// Throws for members never read.
    func finish() throws {
        for (k, v) in members where !used.contains(k) {
            let known = used.sorted().joined(separator: ", ")
            throw ConfigReader.error(name(k), "is not a known option here (known: \(known))", expected: known, got: v.text)
        }
    }
}

/// Parses JSON text given through the C interface.
func parseJSON(_ text: String, _ argument: String) throws -> JSONValue {
    do {
        return try JSONValue.parse(text)
    } catch let e as EmberError {
        throw EmberError(.invalidArgument, "[\(argument)] is not valid JSON: \(e.message)",
                         detail: EmberError.Detail(op: "config", argument: argument, expected: "JSON text"))
    }
}

// MARK: Models

/// Builds a model from `ember_model_new`'s configuration.
func makeModel(_ json: JSONValue) throws -> Model {
    var r = try ConfigReader(json, path: "")
    guard let network = r.value("network") else {
        throw ConfigReader.error("network", "is required: a network description", expected: "a network description")
    }
    let spec: NetworkSpec
    if let text = network.stringValue { spec = try NetworkSpec(jsonText: text) } else { spec = try NetworkSpec(json: network) }
    let taskNames = ["regression", "binary", "multiclass", "quantile_regression", "multilabel"]
    guard let taskName = try r.string("task", allowed: taskNames) else {
        throw ConfigReader.error("task", "is required", expected: taskNames.map { "\"\($0)\"" }.joined(separator: ", "))
    }
    let classNames = try r.strings("class_names") ?? []
    let task: TaskKind
    let quantiles = try r.numbers("quantiles")
    if quantiles != nil && taskName != "quantile_regression" {
        throw ConfigReader.error("quantiles", "applies to a quantile_regression task only; this is a \(taskName) task",
                                 expected: "no quantiles", got: "\(quantiles ?? [])")
    }
    switch taskName {
    case "regression", "quantile_regression":
        guard classNames.isEmpty else { throw ConfigReader.error("class_names", "must be empty for a \(taskName) task", expected: "[]", got: "\(classNames.count) names") }
        if taskName == "regression" {
            task = .regression
        } else {
            guard let q = quantiles else {
                throw ConfigReader.error("quantiles", "is required for a quantile_regression task: the levels, e.g. [0.1, 0.5, 0.9]",
                                         expected: "levels in (0, 1)", got: "none")
            }
            task = .quantileRegression(quantiles: q.map(Float.init))
            try task.validate()
        }
    case "multilabel":
        let k = try r.int("n_labels", min: 2) ?? classNames.count
        guard k >= 2 else {
            throw ConfigReader.error("class_names", "a multilabel task needs at least 2 labels (names or n_labels), got \(k); one label is a binary task",
                                     expected: "at least 2", got: "\(k)")
        }
        guard classNames.isEmpty || classNames.count == k else {
            throw ConfigReader.error("class_names", "has \(classNames.count) names for \(k) labels", expected: "\(k)", got: "\(classNames.count)")
        }
        task = .multilabel(labels: k)
    case "binary":
        guard classNames.isEmpty || classNames.count == 2 else {
            throw ConfigReader.error("class_names", "a binary task needs 2 class names (positive first), got \(classNames.count)", expected: "2", got: "\(classNames.count)")
        }
        task = .binary
    default:
        let k = try r.int("n_classes", min: 2) ?? classNames.count
        guard k >= 2 else {
            throw ConfigReader.error("class_names", "a multiclass task needs at least 2 classes, got \(k)", expected: "at least 2", got: "\(k)")
        }
        guard classNames.isEmpty || classNames.count == k else {
            throw ConfigReader.error("class_names", "has \(classNames.count) names for \(k) classes", expected: "\(k)", got: "\(classNames.count)")
        }
        task = .multiclass(classes: k)
    }
    guard Set(classNames).count == classNames.count else {
        throw ConfigReader.error("class_names", "must be unique", expected: "unique names")
    }
    var standardize: [String: [Bool]] = [:]
    if let s = r.value("standardize") {
        guard case let .object(members) = s else { throw ConfigReader.error("standardize", "must be an object of masks per numeric input", expected: "an object") }
        for (name, mask) in members {
            guard let a = mask.arrayValue, a.allSatisfy({ $0.boolValue != nil }) else {
                throw ConfigReader.error("standardize.\(name)", "must be an array of true/false", expected: "booleans", got: mask.text)
            }
            standardize[name] = a.compactMap(\.boolValue)
        }
    }
    let standardizeTarget = try r.bool("standardize_target") ?? true
    let link = try r.string("output_link", allowed: OutputLink.allCases.map(\.rawValue)).flatMap(OutputLink.init(rawValue:)) ?? .identity
    if link != .identity && (task != .regression || standardizeTarget) {
        throw ConfigReader.error("output_link", "'\(link.rawValue)' applies to regression models with standardize_target = false",
                                 expected: "identity", got: link.rawValue)
    }
    let seed = try parseSeed(r.value("seed"))
    var transforms: [String: InputTransforms] = [:]
    if let t = r.value("transforms") {
        guard case let .object(members) = t else {
            throw ConfigReader.error("transforms", "must be an object: per image input, {\"data_shape\": [C, H, W], \"transforms\": [...]}", expected: "an object", got: t.text)
        }
        for (name, v) in members { transforms[name] = try InputTransforms(json: v) }
    }
    var host: [String: String] = [:]
    if let h = r.value("host") {
        guard case let .object(members) = h else { throw ConfigReader.error("host", "must be an object of strings", expected: "an object") }
        for (k, v) in members {
            guard let s = v.stringValue else { throw ConfigReader.error("host.\(k)", "must be a string", expected: "a string", got: v.text) }
            host[k] = s
        }
    }
    try r.finish()
    let model = try Model(spec: spec, task: task, classNames: classNames, standardize: standardize,
                          standardizeTarget: standardizeTarget, seed: seed)
    model.hostMetadata = host
    model.outputLink = link
    try model.setInputTransforms(transforms)
    return model
}

/// A seed: a decimal string of any 64-bit value, or an integral number below 2⁵³.
func parseSeed(_ v: JSONValue?) throws -> UInt64 {
    guard let v else { throw ConfigReader.error("seed", "is required (a decimal string)", expected: "a decimal string") }
    if let s = v.stringValue, let u = UInt64(s) { return u }
    if let d = v.numberValue, d >= 0, d < 9007199254740992, d == d.rounded() { return UInt64(d) }
    throw ConfigReader.error("seed", "must be a decimal string of an unsigned 64-bit integer, got \(v.text)", expected: "a decimal string", got: v.text)
}

// MARK: Trainers

/// Builds a trainer configuration from `ember_trainer_new`'s JSON for a model of `task`.
func makeTrainerConfig(_ json: JSONValue, task: TaskKind) throws -> TrainerConfig {
    var r = try ConfigReader(json, path: "")
    var c = TrainerConfig()
    if let v = try r.int("batch_size", min: 1) { c.batchSize = v }
    if let v = try r.bool("shuffle") { c.shuffle = v }
    if let v = try r.bool("drop_last") { c.dropLast = v }
    if var o = try r.object("optimizer") { c.optimizer = try optimizerConfig(&o) }
    if var l = try r.object("loss") { c.loss = try lossFunction(&l, task: task) }
    if var s = try r.object("schedule") { c.schedule = try schedule(&s) }
    if let v = try r.int("eval_freq", min: 1) { c.evalFreq = v }
    if let v = try r.strings("measures_train") { c.measuresTrain = try metrics(v, "measures_train", task: task) }
    if let v = try r.strings("measures_valid") { c.measuresValid = try metrics(v, "measures_valid", task: task) }
    if let v = try r.int("patience", min: 0) { c.patience = v }
    if let v = try r.double("min_delta", { $0 >= 0 }, "a number >= 0") { c.minDelta = v }
    if let v = try r.bool("restore_best_weights") { c.restoreBestWeights = v }
    if let v = try r.int("batch_size_predict", min: 1) { c.batchSizePredict = v }
    if let v = try r.bool("host_scoring") { c.hostScoring = v }
    try r.finish()
    return c
}

func metrics(_ names: [String], _ argument: String, task: TaskKind) throws -> [Metric] {
    try names.map { name in
        guard let m = Metric(rawValue: name) else {
            let expected = Metric.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigReader.error(argument, "unknown measure '\(name)'; expected one of \(expected)", expected: expected, got: name)
        }
        guard m.applies(to: task) else {
            let fitting = Metric.allCases.filter { $0.applies(to: task) }.map(\.rawValue).joined(separator: ", ")
            throw ConfigReader.error(argument, "'\(name)' is a \(m.taskGroup) measure; the model is a \(task.name) model",
                                     expected: fitting.isEmpty ? "no measure" : fitting, got: name)
        }
        return m
    }
}

func optimizerConfig(_ r: inout ConfigReader) throws -> OptimizerConfig {
    let names = OptimizerKind.allCases.map(\.rawValue)
    let kindName = try r.string("kind", allowed: names) ?? "adam"
    guard let kind = OptimizerKind(rawValue: kindName) else { throw ConfigReader.error("optimizer.kind", "unknown optimizer '\(kindName)'") }
    var options: [String: Double] = [:]
    if let betas = try r.numbers("betas") {
        guard betas.count == 2, kind == .adam || kind == .adamw else {
            throw ConfigReader.error("optimizer.betas", "must be two numbers, for adam or adamw", expected: "[beta1, beta2]", got: "\(betas)")
        }
        options["beta1"] = betas[0]
        options["beta2"] = betas[1]
    }
    try optimizerOptions(&r, kind, into: &options, skipping: ["kind", "betas", "param_groups"])
    var groups: [ParameterGroupSpec] = []
    if let list = r.value("param_groups") {
        guard let items = list.arrayValue, !items.isEmpty else {
            throw ConfigReader.error("optimizer.param_groups", "must be a non-empty array of groups", expected: "an array", got: list.text)
        }
        for (i, item) in items.enumerated() {
            var g = try ConfigReader(item, path: "optimizer.param_groups[\(i + 1)]")
            let one = g.members.first { $0.0 == "params" }?.1.stringValue
            guard let patterns = try one.map({ _ in [try g.string("params") ?? ""] }) ?? (try g.strings("params")),
                  !patterns.isEmpty, !patterns.contains("") else {
                throw ConfigReader.error("optimizer.param_groups[\(i + 1)].params", "is required: parameter name patterns",
                                         expected: "patterns such as \"linear_0.*\"", got: "none")
            }
            var overrides: [String: Double] = [:]
            if let betas = try g.numbers("betas") {
                guard betas.count == 2, kind == .adam || kind == .adamw else {
                    throw ConfigReader.error("optimizer.param_groups[\(i + 1)].betas", "must be two numbers, for adam or adamw")
                }
                overrides["beta1"] = betas[0]
                overrides["beta2"] = betas[1]
            }
            try optimizerOptions(&g, kind, into: &overrides, skipping: ["params", "betas"])
            try g.finish()
            groups.append(ParameterGroupSpec(patterns: patterns, options: overrides))
        }
    }
    try r.finish()
    let config = OptimizerConfig(kind, options, parameterGroups: groups)
    // Validates the values (ranges, flags) of every group before any trainer exists.
    _ = try config.make(groups: [([], [:])] + groups.map { ([], $0.options) })
    return config
}

/// Reads the optimizer's numeric and flag options of `r` (those `kind` knows) into `options`.
func optimizerOptions(_ r: inout ConfigReader, _ kind: OptimizerKind, into options: inout [String: Double],
                      skipping: Set<String>) throws {
    for (key, _) in r.members where !skipping.contains(key) {
        guard let value = r.value(key) else { continue }
        guard kind.defaults[key] != nil else {
            let known = (kind.defaults.keys.sorted() + (kind == .adam || kind == .adamw ? ["betas"] : [])).joined(separator: ", ")
            throw ConfigReader.error(r.name(key), "is not an option of \(kind.rawValue); expected one of \(known)", expected: known, got: key)
        }
        if let b = value.boolValue {
            options[key] = b ? 1 : 0
        } else if let d = value.numberValue, d.isFinite {
            options[key] = d
        } else {
            throw ConfigReader.error(r.name(key), "must be a finite number, got \(value.text)", expected: "a finite number", got: value.text)
        }
    }
}

func lossFunction(_ r: inout ConfigReader, task: TaskKind) throws -> LossFunction {
    let allowed = task.losses
    let kindName = try r.string("kind", allowed: Loss.allCases.map(\.rawValue)) ?? task.loss.rawValue
    guard let kind = Loss(rawValue: kindName), allowed.contains(kind) else {
        let expected = allowed.map(\.rawValue).joined(separator: " or ")
        throw ConfigReader.error("loss.kind", "'\(kindName)' does not fit a \(task.name) model; expected \(expected)", expected: expected, got: kindName)
    }
    var f = task.defaultLossFunction
    f.kind = kind
    if let red = try r.string("reduction", allowed: ["mean", "sum"]) { f.reduction = red == "sum" ? .sum : .mean }
    if let w = try r.numbers("class_weights") {
        guard kind == .crossEntropy || kind == .focal else {
            throw ConfigReader.error("loss.class_weights", "applies to cross_entropy and focal only")
        }
        guard w.count == task.outputs, w.allSatisfy({ $0 >= 0 }) else {
            throw ConfigReader.error("loss.class_weights", "needs one weight >= 0 per class (\(task.outputs)), got \(w.count)", expected: "\(task.outputs) weights >= 0", got: "\(w.count)")
        }
        f.classWeights = w.map(Float.init)
    }
    if let i = try r.int("ignore_index") {
        guard kind == .crossEntropy else { throw ConfigReader.error("loss.ignore_index", "applies to cross_entropy only") }
        f.ignoreIndex = i
    }
    if let w = try r.numbers("pos_weight") {
        guard kind == .bceWithLogits else { throw ConfigReader.error("loss.pos_weight", "applies to bce_with_logits only") }
        // Multilabel: one weight per label (or one for all), as PyTorch's pos_weight.
        let counts = task.outputs > 1 ? [1, task.outputs] : [1]
        guard counts.contains(w.count), w.allSatisfy({ $0 > 0 }) else {
            let expected = task.outputs > 1 ? "1 or \(task.outputs) numbers > 0 (one per label)" : "one number > 0"
            throw ConfigReader.error("loss.pos_weight", "must be \(expected), got \(w.count) value(s)", expected: expected, got: "\(w)")
        }
        f.posWeight = w.map(Float.init)
    }
    // Options of one loss each, with their ranges (as LossFunction.validateOptions checks them).
    let options: [(String, [Loss], WritableKeyPath<LossFunction, Float>, (Double) -> Bool, String)] = [
        ("label_smoothing", [.crossEntropy, .bceWithLogits], \.labelSmoothing, { $0 >= 0 && $0 <= 1 }, "a number in [0, 1]"),
        ("delta", [.huber], \.delta, { $0 > 0 && $0 < 1e30 }, "a number > 0"),
        ("beta", [.smoothL1], \.delta, { $0 >= 0 && $0 < 1e30 }, "a number >= 0"),
        ("gamma", [.focal, .sigmoidFocal], \.gamma, { $0 >= 0 && $0 < 1e30 }, "a number >= 0"),
        ("alpha", [.sigmoidFocal], \.alpha, { $0 <= 1 && $0 > -1e30 }, "a number <= 1 (negative: no weighting)"),
    ]
    for (name, path) in [("log_input", \LossFunction.logInput), ("full", \LossFunction.full)] {
        guard let v = try r.bool(name) else { continue }
        guard kind == .poissonNLL else { throw ConfigReader.error("loss.\(name)", "applies to poisson_nll only") }
        f[keyPath: path] = v
    }
    if let v = try r.double("eps", { $0 > 0 && $0 < 1 }, "a number in (0, 1)") {
        guard kind == .poissonNLL else { throw ConfigReader.error("loss.eps", "applies to poisson_nll only") }
        f.eps = Float(v)
    }
    if let e = r.value("expr") {
        guard kind == .expression else { throw ConfigReader.error("loss.expr", "applies to the expression loss only") }
        do { f.expression = try NetworkExpression(json: e) } catch let err as EmberError { throw ConfigReader.error("loss.expr", err.message) }
        guard f.expression?.arity ?? 0 <= 2 else {
            throw ConfigReader.error("loss.expr", "a loss reads the prediction (argument 0) and the target (argument 1) only")
        }
    } else if kind == .expression {
        throw ConfigReader.error("loss.expr", "the expression loss needs 'expr'", expected: "an expression", got: "none")
    }
    for (name, kinds, path, ok, expected) in options {
        guard let v = try r.double(name, ok, expected) else { continue }
        guard kinds.contains(kind) else {
            throw ConfigReader.error("loss.\(name)", "applies to \(kinds.map(\.rawValue).joined(separator: " and ")) only")
        }
        f[keyPath: path] = Float(v)
    }
    try r.finish()
    return f
}

func schedule(_ r: inout ConfigReader) throws -> LRSchedule {
    let kinds = ["step", "multiplicative", "cosine_annealing", "one_cycle", "reduce_on_plateau"]
    guard let kind = try r.string("kind", allowed: kinds) else {
        throw ConfigReader.error("schedule.kind", "is required", expected: kinds.joined(separator: ", "))
    }
    let positive: (Double) -> Bool = { $0 > 0 }
    let s: LRSchedule
    switch kind {
    case "step":
        guard let size = try r.int("step_size", min: 1) else { throw ConfigReader.error("schedule.step_size", "is required") }
        s = .step(stepSize: size, gamma: try r.double("gamma", positive, "> 0") ?? 0.1)
    case "multiplicative":
        guard let f = try r.double("factor", positive, "> 0") else { throw ConfigReader.error("schedule.factor", "is required") }
        s = .multiplicative(factor: f)
    case "cosine_annealing":
        guard let t = try r.int("t_max", min: 1) else { throw ConfigReader.error("schedule.t_max", "is required") }
        s = .cosineAnnealing(tMax: t, etaMin: try r.double("eta_min", { $0 >= 0 }, ">= 0") ?? 0)
    case "one_cycle":
        guard let maxLR = try r.double("max_lr", positive, "> 0") else { throw ConfigReader.error("schedule.max_lr", "is required") }
        guard let total = try r.int("total_steps", min: 1) else { throw ConfigReader.error("schedule.total_steps", "is required") }
        s = .oneCycle(maxLR: maxLR, totalSteps: total, pctStart: try r.double("pct_start", { $0 >= 0 && $0 <= 1 }, "in [0, 1]") ?? 0.3,
                      cosine: (try r.string("anneal_strategy", allowed: ["cos", "linear"]) ?? "cos") == "cos",
                      divFactor: try r.double("div_factor", positive, "> 0") ?? 25,
                      finalDivFactor: try r.double("final_div_factor", positive, "> 0") ?? 1e4,
                      cycleMomentum: try r.bool("cycle_momentum") ?? true,
                      baseMomentum: try r.double("base_momentum") ?? 0.85, maxMomentum: try r.double("max_momentum") ?? 0.95)
    default:
        s = .reduceOnPlateau(maximize: (try r.string("mode", allowed: ["min", "max"]) ?? "min") == "max",
                             factor: try r.double("factor", { $0 > 0 && $0 < 1 }, "in (0, 1)") ?? 0.1,
                             patience: try r.int("patience", min: 0) ?? 10,
                             threshold: try r.double("threshold", { $0 >= 0 }, ">= 0") ?? 1e-4,
                             relativeThreshold: (try r.string("threshold_mode", allowed: ["rel", "abs"]) ?? "rel") == "rel",
                             cooldown: try r.int("cooldown", min: 0) ?? 0, minLR: try r.double("min_lr", { $0 >= 0 }, ">= 0") ?? 0,
                             eps: try r.double("eps", { $0 >= 0 }, ">= 0") ?? 1e-8)
    }
    try r.finish()
    return s
}

// MARK: Architectures

/// The predefined architectures and the defaults of their options, in one place: `makeArchitecture`
/// reads them and names them in its errors, and `ember_vocabulary` reports them so that hosts
/// derive their lists and check their defaults (tested in R). Architectures without options have
/// an empty list.
let architectureDefaults: [(String, [(String, JSONValue)])] = [
    ("mlp", [("neurons", .array([.number(64)])), ("p", .number(0)), ("activation", .string("relu"))]),
    ("tab_resnet", [("n_blocks", .number(2)), ("d_block", .number(64)), ("d_hidden_multiplier", .number(2)),
                    ("dropout1", .number(0.1)), ("dropout2", .number(0.1))]),
    ("ft_transformer", [("n_blocks", .number(3)), ("d_token", .number(192)), ("attention_n_heads", .number(8)),
                        ("attention_dropout", .number(0.2)), ("ffn_d_hidden_multiplier", .number(4.0 / 3.0)),
                        ("ffn_dropout", .number(0.1)), ("residual_dropout", .number(0)), ("ffn_activation", .string("reglu"))]),
    // null: the default depends on num_embeddings (as the `tabm` package's `TabM.make`).
    ("tabm", [("arch_type", .string("tabm")), ("k", .number(32)), ("n_blocks", .null), ("d_block", .number(512)),
              ("dropout", .number(0.1)), ("activation", .string("relu")), ("start_scaling_init", .null),
              ("num_embeddings", .string("none")), ("d_embedding", .null), ("n_frequencies", .number(48)),
              ("frequency_init_scale", .number(0.01)), ("lite", .bool(false)), ("embedding_activation", .null),
              ("n_bins", .number(48))]),
    ("featureless", []),
    ("lenet", []),
    ("resnet", [("channels", .number(16)), ("n_blocks", .number(2))]),
    ("resnet18", []),
    ("resnet34", []),
    ("resnet50", []),
]

/// The predefined architectures that read one image input `[channels, height, width]`; the
/// others read tabular inputs (numeric columns and categorical codes). Reported by
/// `ember_vocabulary` as `architecture_inputs`.
let imageArchitectures: Set<String> = ["lenet", "resnet", "resnet18", "resnet34", "resnet50"]

/// The predefined architectures that cannot represent a categorical level unseen in training
/// (the FT-Transformer embeds every level; one-hot encodings give an unseen level all zeros):
/// hosts refuse such rows instead of warning. Reported by `ember_vocabulary` as `unseen_levels`.
let architecturesRefusingUnseenLevels: Set<String> = ["ft_transformer"]

/// An architecture option's default (`architectureDefaults` holds every one read here).
private func archDefault(_ arch: String, _ key: String) -> JSONValue {
    architectureDefaults.first { $0.0 == arch }?.1.first { $0.0 == key }?.1 ?? .null
}
private func defaultInt(_ arch: String, _ key: String) -> Int { archDefault(arch, key).intValue ?? 0 }
private func defaultDouble(_ arch: String, _ key: String) -> Double { archDefault(arch, key).numberValue ?? 0 }
private func defaultString(_ arch: String, _ key: String) -> String { archDefault(arch, key).stringValue ?? "" }

/// A predefined architecture from `ember_architecture`'s name and options.
func makeArchitecture(_ name: String, _ json: JSONValue) throws -> NetworkSpec {
    var r = try ConfigReader(json, path: "")
    guard var inputs = try r.object("inputs") else { throw ConfigReader.error("inputs", "is required", expected: "an object") }
    let spec: NetworkSpec
    switch name {
    case "mlp", "tab_resnet", "ft_transformer", "tabm", "featureless":
        let tab = TabularInputs(numeric: try inputs.int("numeric", min: 0) ?? 0, cardinalities: try inputs.ints("cardinalities", min: 1) ?? [])
        try inputs.finish()
        switch name {
        case "mlp":
            let act = try r.string("activation") ?? defaultString("mlp", "activation")
            guard let op = LayerOp(rawValue: act) else { throw ConfigReader.error("activation", "unknown activation '\(act)'", got: act) }
            var actParams: [String: JSONValue] = [:]
            if let a = r.value("activation_args") {
                guard case let .object(m) = a else { throw ConfigReader.error("activation_args", "must be an object", expected: "an object") }
                for (k, v) in m { actParams[k] = v }
            }
            let neurons = archDefault("mlp", "neurons").arrayValue?.compactMap(\.intValue) ?? []
            spec = try Architectures.mlp(tab, neurons: try r.ints("neurons", min: 1) ?? neurons, activation: op, activationParams: actParams,
                                         p: try r.double("p", { $0 >= 0 && $0 < 1 }, "in [0, 1)") ?? defaultDouble("mlp", "p"))
        case "tab_resnet":
            let a = "tab_resnet"
            spec = try Architectures.tabResNet(tab, nBlocks: try r.int("n_blocks", min: 1) ?? defaultInt(a, "n_blocks"),
                                               dBlock: try r.int("d_block", min: 1) ?? defaultInt(a, "d_block"),
                                               dHidden: try r.int("d_hidden", min: 1),
                                               dHiddenMultiplier: try r.double("d_hidden_multiplier", { $0 > 0 }, "> 0") ?? defaultDouble(a, "d_hidden_multiplier"),
                                               dropout1: try r.double("dropout1", { $0 >= 0 && $0 < 1 }, "in [0, 1)") ?? defaultDouble(a, "dropout1"),
                                               dropout2: try r.double("dropout2", { $0 >= 0 && $0 < 1 }, "in [0, 1)") ?? defaultDouble(a, "dropout2"))
        case "ft_transformer":
            let a = "ft_transformer"
            spec = try Architectures.ftTransformer(
                tab, nBlocks: try r.int("n_blocks", min: 1) ?? defaultInt(a, "n_blocks"),
                dToken: try r.int("d_token", min: 1) ?? defaultInt(a, "d_token"),
                heads: try r.int("attention_n_heads", min: 1) ?? defaultInt(a, "attention_n_heads"),
                attentionDropout: try r.double("attention_dropout", { $0 >= 0 && $0 < 1 }, "in [0, 1)") ?? defaultDouble(a, "attention_dropout"),
                ffnDHiddenMultiplier: try r.double("ffn_d_hidden_multiplier", { $0 > 0 }, "> 0") ?? defaultDouble(a, "ffn_d_hidden_multiplier"),
                ffnDropout: try r.double("ffn_dropout", { $0 >= 0 && $0 < 1 }, "in [0, 1)") ?? defaultDouble(a, "ffn_dropout"),
                residualDropout: try r.double("residual_dropout", { $0 >= 0 && $0 < 1 }, "in [0, 1)") ?? defaultDouble(a, "residual_dropout"),
                ffnActivation: try r.string("ffn_activation", allowed: ["reglu", "geglu", "glu", "relu", "gelu"]) ?? defaultString(a, "ffn_activation"))
        case "tabm":
            spec = try tabmArchitecture(tab, &r)
        default:
            spec = try Architectures.featureless(tab)
        }
    case _ where imageArchitectures.contains(name):
        guard let image = try inputs.ints("image", min: 1), image.count == 3 else {
            throw ConfigReader.error("inputs.image", "must be [channels, height, width]", expected: "3 sizes >= 1")
        }
        try inputs.finish()
        switch name {
        case "lenet": spec = try Architectures.lenet(imageShape: image)
        case "resnet18": spec = try Architectures.resnet18(imageShape: image)
        case "resnet34": spec = try Architectures.resnet34(imageShape: image)
        case "resnet50": spec = try Architectures.resnet50(imageShape: image)
        default:
            spec = try Architectures.smallResNet(imageShape: image, channels: try r.int("channels", min: 1) ?? defaultInt("resnet", "channels"),
                                                 nBlocks: try r.int("n_blocks", min: 1) ?? defaultInt("resnet", "n_blocks"))
        }
    default:
        let known = architectureDefaults.map(\.0).joined(separator: ", ")
        throw EmberError(.invalidArgument, "[name] unknown architecture '\(name)'; expected one of \(known)",
                         detail: EmberError.Detail(op: "architecture", argument: "name", expected: known, got: name))
    }
    try r.finish()
    return spec
}

/// TabM from `ember_architecture`'s options (`architectureDefaults`; `d_embedding` defaults to 32
/// for "linear_relu", 24 for "periodic" and 16 for "piecewise_linear", `embedding_activation` to
/// false for "piecewise_linear", else true, as in mlr3torch).
private func tabmArchitecture(_ tab: TabularInputs, _ r: inout ConfigReader) throws -> NetworkSpec {
    let a = "tabm"
    let activations = LayerOp.activations.filter { ![.glu, .reglu, .geglu, .prelu, .rrelu].contains($0) }.map(\.rawValue)
    let act = try r.string("activation", allowed: activations) ?? defaultString(a, "activation")
    let embeddings = try r.string("num_embeddings", allowed: ["none", "linear_relu", "periodic", "piecewise_linear"]) ?? defaultString(a, "num_embeddings")
    let dEmbedding = try r.int("d_embedding", min: 1)
    let nFrequencies = try r.int("n_frequencies", min: 1) ?? defaultInt(a, "n_frequencies")
    let scale = try r.double("frequency_init_scale", { $0 > 0 }, "> 0") ?? defaultDouble(a, "frequency_init_scale")
    let lite = try r.bool("lite") ?? (archDefault(a, "lite").boolValue ?? false)
    let embeddingActivation = try r.bool("embedding_activation") ?? (embeddings != "piecewise_linear")
    let nBins = try r.int("n_bins", min: 2) ?? defaultInt(a, "n_bins")
    let num: Architectures.NumericEmbeddings
    switch embeddings {
    case "none": num = .none
    case "linear_relu": num = .linearReLU(dEmbedding: dEmbedding ?? 32)
    case "periodic":
        guard embeddingActivation || !lite else {
            throw ConfigReader.error("lite", "lite = true needs embedding_activation = true", expected: "false", got: "true")
        }
        num = .periodic(dEmbedding: dEmbedding ?? 24, nFrequencies: nFrequencies, frequencyInitScale: scale, activation: embeddingActivation, lite: lite)
    default: num = .piecewiseLinear(dEmbedding: dEmbedding ?? 16, nBins: nBins, activation: embeddingActivation)
    }
    let scaling = try r.string("start_scaling_init", allowed: ["random-signs", "normal"]).flatMap(ScalingInit.init(rawValue:))
    return try Architectures.tabm(
        tab, archType: try r.string("arch_type", allowed: ["tabm", "tabm-mini"]) ?? defaultString(a, "arch_type"),
        k: try r.int("k", min: 1) ?? defaultInt(a, "k"), nBlocks: try r.int("n_blocks", min: 1),
        dBlock: try r.int("d_block", min: 1) ?? defaultInt(a, "d_block"),
        dropout: try r.double("dropout", { $0 >= 0 && $0 < 1 }, "in [0, 1)") ?? defaultDouble(a, "dropout"),
        activation: LayerOp(rawValue: act) ?? .relu, startScalingInit: scaling, numEmbeddings: num)
}
