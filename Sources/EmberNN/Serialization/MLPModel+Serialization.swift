import EmberCore

extension MLPModel {
    /// Format tag and version written into every model file.
    public static let formatName = "ember.mlp"
    /// Current model file version; readers reject newer versions.
    public static let formatVersion = 1

    /// The model in the safetensors layout: weights and scalings as F32 tensors, and the
    /// architecture, training history and RNG state as JSON under `__metadata__["ember"]`.
    public func serialized() -> [UInt8] {
        var classes = 0
        if case let .multiclass(k) = spec.task { classes = k }
        let s = rng.state
        let meta: JSONValue = .object([
            ("format", .string(MLPModel.formatName)),
            ("version", .number(Double(MLPModel.formatVersion))),
            ("task", .string(spec.task.name)),
            ("classes", .number(Double(classes))),
            ("inputs", .number(Double(spec.inputs))),
            ("neurons", .array(spec.neurons.map { .number(Double($0)) })),
            ("dropout", .number(Double(spec.dropout))),
            ("standardize", .array(spec.standardize.map { .bool($0) })),
            ("standardize_target", .bool(spec.standardizeTarget)),
            ("fitted", .bool(isFitted)),
            ("history", .array(history.map { .number(Double($0)) })),
            ("rng", .array([s.0, s.1, s.2, s.3].map { .string(String($0)) })),
        ])
        var tensors: [(String, Tensor)] = parameters.map { ($0.name, $0.value) }
        tensors.append(("input.mean", Tensor(uncheckedVector: inputScaling.mean)))
        tensors.append(("input.scale", Tensor(uncheckedVector: inputScaling.scale)))
        tensors.append(("target.mean", Tensor(uncheckedVector: targetScaling.mean)))
        tensors.append(("target.scale", Tensor(uncheckedVector: targetScaling.scale)))
        return Safetensors.encode(tensors: tensors, metadata: [("ember", meta.text)])
    }

    /// Reads a model written by `serialized()`. Throws `EmberError.corruptData` on malformed or
    /// incompatible bytes; never traps.
    public convenience init(serialized bytes: [UInt8]) throws {
        let (tensors, metadata) = try Safetensors.decode(bytes)
        guard let text = metadata["ember"] else {
            throw EmberError(.corruptData, "[model] not an Ember model: __metadata__ has no 'ember' entry")
        }
        let meta = try JSONValue.parse(text)
        guard meta["format"]?.stringValue == MLPModel.formatName else {
            throw EmberError(.corruptData, "[model] unknown format '\(meta["format"]?.stringValue ?? "?")'; expected '\(MLPModel.formatName)'")
        }
        guard let version = meta["version"]?.intValue, version >= 1, version <= MLPModel.formatVersion else {
            throw EmberError(.corruptData, "[model] unsupported model file version; this engine reads up to \(MLPModel.formatVersion)")
        }
        func field<T>(_ name: String, _ get: (JSONValue) -> T?) throws -> T {
            guard let v = meta[name], let t = get(v) else {
                throw EmberError(.corruptData, "[model] metadata field '\(name)' is missing or malformed")
            }
            return t
        }
        let task: TaskKind
        switch try field("task", { $0.stringValue }) {
        case "regression": task = .regression
        case "binary": task = .binary
        case "multiclass": task = .multiclass(classes: try field("classes", { $0.intValue }))
        case let other: throw EmberError(.corruptData, "[model] unknown task '\(other)'")
        }
        let neurons: [Int] = try field("neurons") { v in v.arrayValue.flatMap { a in
            let ints = a.compactMap { $0.intValue }
            return ints.count == a.count ? ints : nil
        } }
        let standardize: [Bool] = try field("standardize") { v in v.arrayValue.flatMap { a in
            let bools = a.compactMap { $0.boolValue }
            return bools.count == a.count ? bools : nil
        } }
        // NOTE: JSON has no inf/NaN; a diverged epoch's loss is written as null and read as NaN.
        let history: [Float] = try field("history") { v in v.arrayValue.flatMap { a in
            let nums = a.compactMap { $0 == .null ? Float.nan : $0.numberValue.map(Float.init) }
            return nums.count == a.count ? nums : nil
        } }
        let rngWords: [UInt64] = try field("rng") { v in v.arrayValue.flatMap { a in
            let words = a.compactMap { $0.stringValue.flatMap { UInt64($0) } }
            return words.count == 4 ? words : nil
        } }
        let spec = MLPSpec(task: task, inputs: try field("inputs", { $0.intValue }), neurons: neurons,
                           dropout: Float(try field("dropout", { $0.numberValue })),
                           standardize: standardize,
                           standardizeTarget: try field("standardize_target", { $0.boolValue }))
        try spec.validate()
        // Check every stored tensor against the architecture before allocating the network, so
        // that a corrupt header cannot make us allocate more than the file holds.
        for (i, shape) in spec.parameterShapes.enumerated() {
            let name = "layers.\(i / 2).\(i % 2 == 0 ? "weight" : "bias")"
            guard let t = tensors[name] else { throw EmberError(.corruptData, "[model] tensor '\(name)' is missing") }
            guard t.shape == shape else {
                throw EmberError(.corruptData,
                    "[model] tensor '\(name)' has shape \(shapeString(t.shape)); expected \(shapeString(shape))")
            }
        }
        var scratch = RandomGenerator(seed: 0)
        let network = try MLP(inputs: spec.inputs, neurons: spec.neurons, outputs: spec.task.outputs,
                              dropout: spec.dropout, rng: &scratch)
        for p in network.parameters {
            guard let t = tensors[p.name] else { throw EmberError(.corruptData, "[model] tensor '\(p.name)' is missing") }
            guard t.shape == p.value.shape else {
                throw EmberError(.corruptData,
                    "[model] tensor '\(p.name)' has shape \(shapeString(t.shape)); expected \(shapeString(p.value.shape))")
            }
            p.value = t
        }
        func vector(_ name: String, _ count: Int) throws -> [Float] {
            guard let t = tensors[name], t.shape == [count] else {
                throw EmberError(.corruptData, "[model] tensor '\(name)' is missing or not of shape [\(count)]")
            }
            return t.data
        }
        let inputScaling = Standardization(mean: try vector("input.mean", spec.inputs), scale: try vector("input.scale", spec.inputs))
        let targetScaling = Standardization(mean: try vector("target.mean", 1), scale: try vector("target.scale", 1))
        let rng = try RandomGenerator(state: (rngWords[0], rngWords[1], rngWords[2], rngWords[3]))
        self.init(spec: spec, network: network, inputScaling: inputScaling, targetScaling: targetScaling,
                  isFitted: try field("fitted", { $0.boolValue }), history: history, rng: rng)
    }
}

extension Tensor {
    /// A rank-1 tensor holding `values`.
    init(uncheckedVector values: [Float]) {
        // Shape [count] always matches; the throwing initializer cannot fail here.
        self = (try? Tensor(shape: [values.count], data: values)) ?? Tensor.scalar(0)
    }
}
