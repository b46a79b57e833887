import CEmberSupport
import EmberCore
import EmberNN

// Model functions of include/ember.h.

/// A `const char **` out-parameter.
public typealias TextOut = UnsafeMutablePointer<UnsafePointer<CChar>?>

/// Creates a model from a JSON configuration.
@_cdecl("ember_model_new")
public func ember_model_new(_ out: UnsafeMutablePointer<OpaquePointer?>?, _ config: UnsafePointer<CChar>?) -> Int32 {
    guarded {
        guard let out else { throw EmberError.invalidArgument("out_model", "is NULL") }
        let model = try makeModel(try parseJSON(try string(config, "config_json"), "config_json"))
        out.pointee = HandleRegistry.shared.register(ModelBox(model))
    }
}

/// Frees a model.
@_cdecl("ember_model_free")
public func ember_model_free(_ model: OpaquePointer?) -> Int32 {
    guarded { try HandleRegistry.shared.free(model, ModelBox.self, "model") }
}

/// The model's description as JSON.
@_cdecl("ember_model_info")
public func ember_model_info(_ model: OpaquePointer?, _ out: TextOut?) -> Int32 {
    guarded {
        let m = try HandleRegistry.shared.lookup(model, ModelBox.self, "model").model
        guard let out else { throw EmberError.invalidArgument("out_json", "is NULL") }
        try returnText(modelInfo(m).text, out)
    }
}

func modelInfo(_ m: Model) -> JSONValue {
    let params = m.network.parameters.reduce(0) { $0 + $1.value.count }
    return .object([
        ("task", .string(m.task.name)),
        ("class_names", .array(m.classNames.map { .string($0) })),
        ("outputs", .number(Double(m.task.outputs))),
        ("prediction_columns", .number(Double(m.task.predictionColumns))),
        ("target_columns", .number(Double(m.task.targetColumns))),
        ("quantiles", .array(m.task.quantiles.map { .number(Double($0)) })),
        ("response_column", .number(Double(m.task.responseColumn))),
        ("inputs", m.spec.json["inputs"] ?? .array([])),
        ("network", m.spec.json),
        ("standardize", .object(m.standardize.sorted { $0.key < $1.key }.map { ($0.key, .array($0.value.map { .bool($0) })) })),
        ("standardize_target", .bool(m.standardizeTarget)),
        ("fitted", .bool(m.isFitted)),
        ("epochs", .number(Double(m.history.count))),
        ("history", .array(m.history.map(\.json))),
        ("host", .object(m.hostMetadata.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
        ("n_parameters", .number(Double(params))),
        ("transforms", .object(m.inputTransforms.sorted { $0.key < $1.key }.map { ($0.key, $0.value.json) })),
    ])
}

/// Sets or removes a host metadata entry.
@_cdecl("ember_model_set_host_metadata")
public func ember_model_set_host_metadata(_ model: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ value: UnsafePointer<CChar>?) -> Int32 {
    guarded {
        let m = try HandleRegistry.shared.lookup(model, ModelBox.self, "model").model
        let k = try string(key, "key")
        guard !k.isEmpty else { throw EmberError.invalidArgument("key", "must not be empty") }
        m.hostMetadata[k] = value == nil ? nil : try string(value, "value")
    }
}

/// Number of prediction columns.
@_cdecl("ember_model_prediction_columns")
public func ember_model_prediction_columns(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded {
        let m = try HandleRegistry.shared.lookup(model, ModelBox.self, "model").model
        guard let out else { throw EmberError.invalidArgument("out_columns", "is NULL") }
        out.pointee = Int32(clamping: m.task.predictionColumns)
    }
}

/// Predictions or logits for a dataset, written in the caller's layout.
func predictInto(_ model: OpaquePointer?, _ data: OpaquePointer?, _ batchSize: Int32, _ layout: Int32,
                 _ out: UnsafeMutablePointer<Double>?, _ outLen: Int64, logits: Bool) throws {
    let m = try HandleRegistry.shared.lookup(model, ModelBox.self, "model").model
    let d = try HandleRegistry.shared.lookup(data, DatasetBox.self, "data").dataset("data")
    guard batchSize >= 0 else { throw EmberError.invalidArgument("batch_size", "must be >= 0 (0: default), got \(batchSize)") }
    let columnMajor = try checkedLayout(layout)
    guard let out else { throw EmberError.invalidArgument("out", "is NULL") }
    let k = logits ? m.task.outputs : m.task.predictionColumns
    let (need, overflow) = d.count.multipliedReportingOverflow(by: k)
    guard !overflow, outLen == Int64(need) else {
        throw EmberError(.shapeMismatch, "[out_len] out must hold \(d.count) × \(k) = \(need) values, got out_len \(outLen)",
                         detail: EmberError.Detail(op: logits ? "logits" : "predict", argument: "out_len", expected: "\(need)", got: "\(outLen)"))
    }
    let bs = batchSize == 0 ? 4096 : Int(batchSize)
    let t = logits ? try m.logits(d, batchSize: bs) : try m.predict(d, batchSize: bs)
    write(t, rows: d.count, cols: k, columnMajor: columnMajor, to: out)
}

/// Predicts.
@_cdecl("ember_model_predict")
public func ember_model_predict(_ model: OpaquePointer?, _ data: OpaquePointer?, _ batchSize: Int32, _ layout: Int32,
                                _ out: UnsafeMutablePointer<Double>?, _ outLen: Int64) -> Int32 {
    guarded { try predictInto(model, data, batchSize, layout, out, outLen, logits: false) }
}

/// Raw outputs.
@_cdecl("ember_model_logits")
public func ember_model_logits(_ model: OpaquePointer?, _ data: OpaquePointer?, _ batchSize: Int32, _ layout: Int32,
                               _ out: UnsafeMutablePointer<Double>?, _ outLen: Int64) -> Int32 {
    guarded { try predictInto(model, data, batchSize, layout, out, outLen, logits: true) }
}

/// Gradient × input attributions of one float input (see include/ember.h).
@_cdecl("ember_model_attributions")
public func ember_model_attributions(_ model: OpaquePointer?, _ data: OpaquePointer?, _ input: UnsafePointer<CChar>?,
                                     _ outputs: UnsafePointer<Int32>?, _ nOutputs: Int64, _ batchSize: Int32, _ layout: Int32,
                                     _ out: UnsafeMutablePointer<Double>?, _ outLen: Int64) -> Int32 {
    guarded {
        let m = try HandleRegistry.shared.lookup(model, ModelBox.self, "model").model
        let d = try HandleRegistry.shared.lookup(data, DatasetBox.self, "data").dataset("data")
        let name = try string(input, "input")
        let count = try checkedCount(nOutputs, "n_outputs", max: Int64(max(d.count, 1)))
        guard let outputs, count >= 1 else { throw EmberError.invalidArgument("outputs", "must hold 1 or n_rows output columns") }
        guard batchSize >= 0 else { throw EmberError.invalidArgument("batch_size", "must be >= 0 (0: default), got \(batchSize)") }
        let columnMajor = try checkedLayout(layout)
        guard let out else { throw EmberError.invalidArgument("out", "is NULL") }
        guard let spec = m.spec.inputs.first(where: { $0.name == name }) else {
            throw EmberError(.invalidArgument, "[input] the network has no input '\(name)'; its inputs are \(m.spec.inputs.map(\.name).joined(separator: ", "))",
                             detail: EmberError.Detail(op: "attributions", argument: "input", got: name))
        }
        let width = spec.sampleShape.reduce(1, *)
        let (need, overflow) = d.count.multipliedReportingOverflow(by: width)
        guard !overflow, outLen == Int64(need) else {
            throw EmberError(.shapeMismatch, "[out_len] out must hold \(d.count) × \(width) = \(need) values, got out_len \(outLen)",
                             detail: EmberError.Detail(op: "attributions", argument: "out_len", expected: "\(need)", got: "\(outLen)"))
        }
        let columns = (0..<count).map { Int(outputs[$0]) }
        let t = try m.attributions(d, input: name, outputs: columns, batchSize: batchSize == 0 ? 256 : Int(batchSize))
        write(try t.reshaped([d.count, width]), rows: d.count, cols: width, columnMajor: columnMajor, to: out)
    }
}

/// Serializes a model into a byte buffer.
@_cdecl("ember_model_serialize")
public func ember_model_serialize(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let m = try HandleRegistry.shared.lookup(model, ModelBox.self, "model").model
        guard let out else { throw EmberError.invalidArgument("out_bytes", "is NULL") }
        returnBytes(m.serialized(), out)
    }
}

/// Reads bytes of a caller buffer.
func callerBytes(_ bytes: UnsafePointer<UInt8>?, _ length: Int64) throws -> [UInt8] {
    let n = try checkedCount(length, "length", max: Int64(Int.max / 2))
    guard let bytes else { throw EmberError.invalidArgument("bytes", "is NULL") }
    return Array(UnsafeBufferPointer(start: bytes, count: n))
}

/// Deserializes a model.
@_cdecl("ember_model_deserialize")
public func ember_model_deserialize(_ out: UnsafeMutablePointer<OpaquePointer?>?, _ bytes: UnsafePointer<UInt8>?, _ length: Int64) -> Int32 {
    guarded {
        guard let out else { throw EmberError.invalidArgument("out_model", "is NULL") }
        let model = try Model(serialized: try callerBytes(bytes, length))
        out.pointee = HandleRegistry.shared.register(ModelBox(model))
    }
}

/// Writes a model file.
@_cdecl("ember_model_save")
public func ember_model_save(_ model: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    guarded {
        let m = try HandleRegistry.shared.lookup(model, ModelBox.self, "model").model
        try m.save(to: try string(path, "path"))
    }
}

/// Reads a model file.
@_cdecl("ember_model_load")
public func ember_model_load(_ out: UnsafeMutablePointer<OpaquePointer?>?, _ path: UnsafePointer<CChar>?) -> Int32 {
    guarded {
        guard let out else { throw EmberError.invalidArgument("out_model", "is NULL") }
        let model = try Model(contentsOf: try string(path, "path"))
        out.pointee = HandleRegistry.shared.register(ModelBox(model))
    }
}

/// Weights as safetensors bytes.
@_cdecl("ember_model_snapshot_weights")
public func ember_model_snapshot_weights(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let m = try HandleRegistry.shared.lookup(model, ModelBox.self, "model").model
        guard let out else { throw EmberError.invalidArgument("out_bytes", "is NULL") }
        returnBytes(Safetensors.encode(tensors: m.namedTensors, metadata: []), out)
    }
}

/// Restores weights from safetensors bytes.
@_cdecl("ember_model_restore_weights")
public func ember_model_restore_weights(_ model: OpaquePointer?, _ bytes: UnsafePointer<UInt8>?, _ length: Int64, _ strict: Int32) -> Int32 {
    guarded {
        let m = try HandleRegistry.shared.lookup(model, ModelBox.self, "model").model
        try m.loadWeights(safetensors: try callerBytes(bytes, length), strict: strict != 0)
    }
}

/// Warm start: loads the tensors of safetensors `bytes` whose names and sizes match the model's and
/// reports, as JSON, {"loaded", "mismatched": [{"name", "given", "expected"}], "missing", "unused"}.
@_cdecl("ember_model_restore_matching")
public func ember_model_restore_matching(_ model: OpaquePointer?, _ bytes: UnsafePointer<UInt8>?, _ length: Int64,
                                         _ out: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    guarded {
        let m = try HandleRegistry.shared.lookup(model, ModelBox.self, "model").model
        guard let out else { throw EmberError.invalidArgument("out_json", "is NULL") }
        let match = try m.loadMatchingWeights(try m.weights(safetensors: try callerBytes(bytes, length)))
        let names = { (n: [String]) in JSONValue.array(n.map { .string($0) }) }
        let shape = { (s: [Int]) in JSONValue.array(s.map { .number(Double($0)) }) }
        try returnText(JSONValue.object([
            ("loaded", names(match.loaded)),
            ("mismatched", .array(match.mismatched.map { .object([("name", .string($0.name)), ("given", shape($0.given)),
                                                                   ("expected", shape($0.expected))]) })),
            ("missing", names(match.missing)), ("unused", names(match.unused)),
        ]).text, out)
    }
}

/// The engine RNG state.
@_cdecl("ember_model_get_rng_state")
public func ember_model_get_rng_state(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<UInt64>?) -> Int32 {
    guarded {
        let m = try HandleRegistry.shared.lookup(model, ModelBox.self, "model").model
        guard let out else { throw EmberError.invalidArgument("out_state", "is NULL") }
        let s = m.rng.state
        out[0] = s.0
        out[1] = s.1
        out[2] = s.2
        out[3] = s.3
    }
}

/// Sets the engine RNG state.
@_cdecl("ember_model_set_rng_state")
public func ember_model_set_rng_state(_ model: OpaquePointer?, _ state: UnsafePointer<UInt64>?) -> Int32 {
    guarded {
        let m = try HandleRegistry.shared.lookup(model, ModelBox.self, "model").model
        guard let state else { throw EmberError.invalidArgument("state", "is NULL") }
        m.setRNG(try RandomGenerator(state: (state[0], state[1], state[2], state[3])))
    }
}

/// Parameters and buffers with their shapes.
@_cdecl("ember_model_parameters")
public func ember_model_parameters(_ model: OpaquePointer?, _ out: TextOut?) -> Int32 {
    guarded {
        let m = try HandleRegistry.shared.lookup(model, ModelBox.self, "model").model
        guard let out else { throw EmberError.invalidArgument("out_json", "is NULL") }
        func entry(_ name: String, _ shape: [Int], _ kind: String, _ frozen: Bool) -> JSONValue {
            .object([("name", .string(name)), ("shape", .array(shape.map { .number(Double($0)) })),
                     ("kind", .string(kind)), ("frozen", .bool(frozen))])
        }
        let list = m.network.namedParameters().map { entry($0.0, $0.1.value.shape, "parameter", $0.1.isFrozen) }
            + m.network.namedBuffers().map { entry($0.0, $0.1.value.shape, "buffer", false) }
        try returnText(JSONValue.array(list).text, out)
    }
}

/// The network node by node (see include/ember.h).
@_cdecl("ember_model_summary")
public func ember_model_summary(_ model: OpaquePointer?, _ out: TextOut?) -> Int32 {
    guarded {
        let m = try HandleRegistry.shared.lookup(model, ModelBox.self, "model").model
        guard let out else { throw EmberError.invalidArgument("out_json", "is NULL") }
        let number = { (v: Int) in JSONValue.number(Double(v)) }
        let shape = { (s: [Int]) in JSONValue.array(s.map(number)) }
        let nodes = m.network.summary().map { n in
            JSONValue.object([("id", .string(n.id)), ("op", .string(n.op)), ("output_shape", shape(n.outputShape)),
                              ("trainable", number(n.trainableParameters)), ("frozen", number(n.frozenParameters)),
                              ("flops", number(n.flopsPerSample)), ("activation_bytes", number(n.activationBytesPerSample))])
        }
        let inputs = m.spec.inputs.map { JSONValue.object([("name", .string($0.name)), ("shape", shape($0.sampleShape))]) }
        try returnText(JSONValue.object([("inputs", .array(inputs)), ("nodes", .array(nodes))]).text, out)
    }
}

/// The value of a parameter or buffer by name, and a setter for it.
func namedValue(_ m: Model, _ name: String) throws -> (get: Tensor, set: (Tensor) -> Void) {
    if let p = m.network.namedParameters().first(where: { $0.0 == name })?.1 { return (p.value, { p.value = $0 }) }
    if let b = m.network.namedBuffers().first(where: { $0.0 == name })?.1 { return (b.value, { b.value = $0 }) }
    throw EmberError(.invalidArgument, "[name] the model has no parameter or buffer '\(name)'",
                     detail: EmberError.Detail(op: "parameter", argument: "name", expected: "a name listed by ember_model_parameters", got: name))
}

/// Copies a parameter's values.
@_cdecl("ember_model_get_parameter")
public func ember_model_get_parameter(_ model: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<Double>?, _ outLen: Int64) -> Int32 {
    guarded {
        let m = try HandleRegistry.shared.lookup(model, ModelBox.self, "model").model
        let t = try namedValue(m, try string(name, "name")).get
        guard let out else { throw EmberError.invalidArgument("out", "is NULL") }
        guard outLen == Int64(t.count) else {
            throw EmberError(.shapeMismatch, "[out_len] the parameter has \(t.count) values, got out_len \(outLen)",
                             detail: EmberError.Detail(op: "parameter", argument: "out_len", expected: "\(t.count)", got: "\(outLen)"))
        }
        let p = t.unsafeReadPointer
        for i in 0..<t.count { out[i] = Double(p[i]) }
    }
}

/// Sets a parameter's values.
@_cdecl("ember_model_set_parameter")
public func ember_model_set_parameter(_ model: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ values: UnsafePointer<Double>?, _ length: Int64) -> Int32 {
    guarded {
        let m = try HandleRegistry.shared.lookup(model, ModelBox.self, "model").model
        let (t, set) = try namedValue(m, try string(name, "name"))
        guard length == Int64(t.count) else {
            throw EmberError(.shapeMismatch, "[length] the parameter \(shapeString(t.shape)) has \(t.count) values, got length \(length)",
                             detail: EmberError.Detail(op: "parameter", argument: "length", expected: "\(t.count)", got: "\(length)"))
        }
        guard let values else { throw EmberError.invalidArgument("values", "is NULL") }
        var data = [Float](repeating: 0, count: t.count)
        for i in 0..<t.count {
            guard values[i].isFinite else {
                throw EmberError(.invalidArgument, "[values] element \(i) is \(values[i]); expected finite values",
                                 detail: EmberError.Detail(op: "parameter", argument: "values", index: i, expected: "finite values", got: "\(values[i])"))
            }
            data[i] = Float(values[i])
        }
        set(try Tensor(shape: t.shape, data: data))
    }
}

/// Freezes or unfreezes parameters by pattern.
@_cdecl("ember_model_freeze")
public func ember_model_freeze(_ model: OpaquePointer?, _ pattern: UnsafePointer<CChar>?, _ frozen: Int32, _ outMatched: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded {
        let m = try HandleRegistry.shared.lookup(model, ModelBox.self, "model").model
        let p = try string(pattern, "pattern")
        guard m.network.namedParameters().contains(where: { globMatch(p, $0.0) }) else {
            throw EmberError(.invalidArgument, "[pattern] '\(p)' matches no parameter",
                             detail: EmberError.Detail(op: "freeze", argument: "pattern", expected: "a pattern matching parameter names", got: p))
        }
        let n = frozen != 0 ? m.network.freeze(matching: p) : m.network.unfreeze(matching: p)
        outMatched?.pointee = Int64(n)
    }
}
