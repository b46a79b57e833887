import EmberCore
import Glibc

extension Model {
    /// Format tag and version of model files; readers reject newer versions.
    public static let fileFormat = "ember.model"
    /// Current model file version.
    public static let fileVersion = 1

    /// The model in the safetensors layout: parameters and buffers under their hierarchical names,
    /// the scalings as `preprocess.<input>.mean|scale` and `target.mean|scale`, and in
    /// `__metadata__`: `ember.network` (the network description, JSON), `ember.model` (task,
    /// classes (or labels of a multilabel task), quantile levels of a quantile regression,
    /// standardisation masks, history, RNG state; JSON) and `ember.host` (host metadata).
    /// Python's `safetensors` reads it; `extra` adds tensors (checkpoints add optimizer state).
    public func serialized(extra: [(String, Tensor)] = [], extraMetadata: [(String, String)] = []) -> [UInt8] {
        var tensors = namedTensors
        for input in spec.inputs {
            guard let s = inputScaling[input.name] else { continue }
            tensors.append(("preprocess.\(input.name).mean", Tensor(uncheckedVector: s.mean)))
            tensors.append(("preprocess.\(input.name).scale", Tensor(uncheckedVector: s.scale)))
        }
        tensors.append(("target.mean", Tensor(uncheckedVector: targetScaling.mean)))
        tensors.append(("target.scale", Tensor(uncheckedVector: targetScaling.scale)))
        tensors += extra
        var classes = 0
        if case let .multiclass(k) = task { classes = k }
        if case let .multilabel(k) = task { classes = k }
        let s = rng.state
        let meta: JSONValue = .object([
            ("format", .string(Model.fileFormat)),
            ("version", .number(Double(Model.fileVersion))),
            ("task", .string(task.name)),
            ("classes", .number(Double(classes))),
            ("class_names", .array(classNames.map { .string($0) })),
            ("standardize", .object(standardize.sorted { $0.key < $1.key }.map { ($0.key, .array($0.value.map { .bool($0) })) })),
            ("standardize_target", .bool(standardizeTarget)),
            ("fitted", .bool(isFitted)),
            ("history", .array(history.map { $0.json })),
            ("rng", .array([s.0, s.1, s.2, s.3].map { .string(String($0)) })),
        ] + (task.quantiles.isEmpty ? [] : [("quantiles", JSONValue.array(task.quantiles.map { .number(Double($0)) }))])
          + (outputLink == .identity ? [] : [("output_link", JSONValue.string(outputLink.rawValue))])
          + (inputTransforms.isEmpty ? [] : [("input_transforms", JSONValue.object(inputTransforms.sorted { $0.key < $1.key }.map { ($0.key, $0.value.json) }))]))
        let host: JSONValue = .object(hostMetadata.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })
        return Safetensors.encode(tensors: tensors, metadata: [
            ("ember.network", spec.json.text), ("ember.model", meta.text), ("ember.host", host.text),
        ] + extraMetadata)
    }

    /// Reads a model written by `serialized()`. Throws `EmberError.corruptData` on malformed,
    /// truncated or incompatible bytes; never traps.
    public convenience init(serialized bytes: [UInt8]) throws {
        let (tensors, metadata) = try Safetensors.decode(bytes)
        try self.init(tensors: tensors, metadata: metadata)
    }

    /// Reads a model from decoded safetensors parts (used for files and checkpoints).
    public convenience init(tensors: [String: Tensor], metadata: [String: String]) throws {
        guard let netText = metadata["ember.network"], let modelText = metadata["ember.model"] else {
            throw EmberError(.corruptData, "[model] not an Ember model file: __metadata__ lacks 'ember.network' or 'ember.model'")
        }
        let meta = try JSONValue.parse(modelText)
        guard meta["format"]?.stringValue == Model.fileFormat else {
            throw EmberError(.corruptData, "[model] unknown format '\(meta["format"]?.stringValue ?? "?")'; expected '\(Model.fileFormat)'")
        }
        guard let version = meta["version"]?.intValue, version >= 1, version <= Model.fileVersion else {
            throw EmberError(.corruptData, "[model] unsupported model file version \(meta["version"]?.text ?? "?"); this engine reads up to \(Model.fileVersion)")
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
        case "multilabel": task = .multilabel(labels: try field("classes", { $0.intValue }))
        case "quantile_regression":
            task = .quantileRegression(quantiles: try field("quantiles") { v in
                v.arrayValue.flatMap { a in let q = a.compactMap(\.numberValue); return q.count == a.count ? q.map(Float.init) : nil }
            })
        case let other: throw EmberError(.corruptData, "[model] unknown task '\(other)'")
        }
        do { try task.validate() } catch let e as EmberError { throw EmberError(.corruptData, "[model] task '\(task.name)': \(e.message)") }
        let classNames: [String] = try field("class_names") { v in
            v.arrayValue.flatMap { a in let s = a.compactMap(\.stringValue); return s.count == a.count ? s : nil }
        }
        var standardize: [String: [Bool]] = [:]
        if case let .object(members)? = meta["standardize"] {
            for (k, v) in members {
                guard let a = v.arrayValue else { throw EmberError(.corruptData, "[model] standardize mask of '\(k)' is malformed") }
                let b = a.compactMap(\.boolValue)
                guard b.count == a.count else { throw EmberError(.corruptData, "[model] standardize mask of '\(k)' is malformed") }
                standardize[k] = b
            }
        }
        let spec = try NetworkSpec(jsonText: netText)
        let words: [UInt64] = try field("rng") { v in
            v.arrayValue.flatMap { a in let w = a.compactMap { $0.stringValue.flatMap { UInt64($0) } }; return w.count == 4 ? w : nil }
        }
        // Check the stored weights against the described network before any big allocation:
        // a corrupt description cannot make us allocate more than the file holds.
        try self.init(spec: spec, task: task, classNames: classNames, standardize: standardize,
                      standardizeTarget: try field("standardize_target", { $0.boolValue }), seed: 0)
        var weights: [String: Tensor] = [:]
        for (name, _) in namedTensors {
            guard let t = tensors[name] else { throw EmberError(.corruptData, "[model] tensor '\(name)' is missing") }
            weights[name] = t
        }
        try loadWeights(weights)
        for input in spec.inputs where inputScaling[input.name] != nil {
            let n = input.sampleShape[0]
            guard let m = tensors["preprocess.\(input.name).mean"], let s = tensors["preprocess.\(input.name).scale"],
                  m.shape == [n], s.shape == [n] else {
                throw EmberError(.corruptData, "[model] the scaling of input '\(input.name)' is missing or not of shape [\(n)]")
            }
            inputScaling[input.name] = Standardization(mean: m.data, scale: s.data)
        }
        guard let tm = tensors["target.mean"], let ts = tensors["target.scale"], tm.shape == [1], ts.shape == [1] else {
            throw EmberError(.corruptData, "[model] the target scaling is missing or malformed")
        }
        targetScaling = Standardization(mean: tm.data, scale: ts.data)
        isFitted = try field("fitted", { $0.boolValue })
        history = try field("history") { v in
            v.arrayValue.flatMap { a in let r = a.compactMap(EpochRecord.init(json:)); return r.count == a.count ? r : nil }
        }
        rng = try RandomGenerator(state: (words[0], words[1], words[2], words[3]))
        if let link = meta["output_link"] {
            guard let l = link.stringValue.flatMap(OutputLink.init(rawValue:)) else {
                throw EmberError(.corruptData, "[model] unknown output_link \(link.text)")
            }
            outputLink = l
        }
        if let t = meta["input_transforms"] {
            guard case let .object(members) = t else { throw EmberError(.corruptData, "[model] input_transforms is malformed") }
            do {
                try setInputTransforms(Dictionary(try members.map { ($0.0, try InputTransforms(json: $0.1)) }, uniquingKeysWith: { a, _ in a }))
            } catch {
                throw EmberError(.corruptData, "[model] input_transforms: \(error)")
            }
        }
        if let hostText = metadata["ember.host"], case let .object(members) = try JSONValue.parse(hostText) {
            for (k, v) in members { hostMetadata[k] = v.stringValue ?? v.text }
        }
    }

    /// Writes the model file to `path`.
    public func save(to path: String) throws { try writeFile(path, serialized()) }

    /// Reads a model file.
    public convenience init(contentsOf path: String) throws {
        try self.init(serialized: try readFile(path))
    }

    /// Loads weights from a safetensors file written by PyTorch (`safetensors.torch.save_file`
    /// of a `state_dict` with the same parameter names, e.g. a torchvision ResNet's into
    /// `Architectures.resnet18`) for fine-tuning. Counters such as batch norm's int64
    /// `num_batches_tracked` are accepted; a missing, extra or mis-shaped tensor is an error
    /// (with `strict`), and so is a parameter or float buffer stored with an integer dtype.
    public func loadWeights(safetensors bytes: [UInt8], strict: Bool = true) throws {
        try loadWeights(try weights(safetensors: bytes), strict: strict)
    }

    /// The tensors of safetensors `bytes` for `loadWeights` or `loadMatchingWeights`: those this
    /// network has must be stored with a float dtype (F32, F64, F16, BF16), except counters
    /// (`Buffer.isCounter`), which PyTorch stores as int64. Other names are not checked here.
    public func weights(safetensors bytes: [UInt8]) throws -> [String: Tensor] {
        let file = try Safetensors.read(bytes)
        for (name, kind, _, _, isCounter) in weightSlots() where !isCounter {
            guard let dtype = file.dtypes[name], !Safetensors.floatDTypes.contains(dtype) else { continue }
            throw EmberError(.corruptData, "[weights] \(kind) '\(name)' is stored as \(dtype); expected a float dtype (F32, F64, F16 or BF16): only counters such as num_batches_tracked may be integers")
        }
        return file.tensors
    }
}

extension EpochRecord {
    public var json: JSONValue {
        var m: [(String, JSONValue)] = [("epoch", .number(Double(epoch))), ("train_loss", .number(trainLoss)),
                                        ("lr", .number(learningRate))]
        if let v = validLoss { m.append(("valid_loss", .number(v))) }
        if !trainMetrics.isEmpty { m.append(("train", .object(trainMetrics.sorted { $0.key < $1.key }.map { ($0.key, .number($0.value)) }))) }
        if !validMetrics.isEmpty { m.append(("valid", .object(validMetrics.sorted { $0.key < $1.key }.map { ($0.key, .number($0.value)) }))) }
        return .object(m)
    }

    init?(json: JSONValue) {
        guard let e = json["epoch"]?.intValue else { return nil }
        // NOTE: JSON has no inf/NaN; a diverged loss is written as null and read back as NaN.
        func number(_ v: JSONValue?) -> Double? { v.map { $0 == .null ? .nan : ($0.numberValue ?? .nan) } }
        func dict(_ v: JSONValue?) -> [String: Double] {
            guard case let .object(m)? = v else { return [:] }
            return Dictionary(uniqueKeysWithValues: m.map { ($0.0, $0.1.numberValue ?? .nan) })
        }
        self.init(epoch: e, trainLoss: number(json["train_loss"]) ?? .nan, validLoss: number(json["valid_loss"]),
                  trainMetrics: dict(json["train"]), validMetrics: dict(json["valid"]),
                  learningRate: number(json["lr"]) ?? .nan)
    }
}

/// Reads a whole file; errors name the path.
func readFile(_ path: String) throws -> [UInt8] {
    guard let f = fopen(path, "rb") else { throw EmberError.invalidArgument("path", "cannot open '\(path)' for reading") }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
        if n > 0 { out.append(contentsOf: buffer[0..<n]) }
        if n < buffer.count {
            if ferror(f) != 0 { throw EmberError.invalidArgument("path", "error reading '\(path)'") }
            break
        }
    }
    return out
}

/// Writes a whole file (via a temporary name, then rename, so a crash never leaves half a file).
func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    let tmp = path + ".tmp"
    guard let f = fopen(tmp, "wb") else { throw EmberError.invalidArgument("path", "cannot open '\(path)' for writing") }
    let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
    let closed = fclose(f)
    guard written == bytes.count, closed == 0, rename(tmp, path) == 0 else {
        unlink(tmp)
        throw EmberError.invalidArgument("path", "error writing '\(path)'")
    }
}

extension Tensor {
    /// A rank-1 tensor holding `values`.
    init(uncheckedVector values: [Float]) {
        // Shape [count] always matches; the throwing initializer cannot fail here.
        self = (try? Tensor(shape: [values.count], data: values)) ?? Tensor.scalar(0)
    }
}
