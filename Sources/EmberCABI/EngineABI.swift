import CEmberSupport
import EmberCore
import EmberNN

// Engine-wide functions of include/ember.h: version, errors, BLAS and threads, handle counts,
// architectures and byte buffers. Each validates every argument, runs in `guarded` and never lets
// a Swift error or trap reach the caller.

/// The engine's version.
let emberVersion = String(cString: cember_engine_version())

/// The ABI version (EMBER_ABI_VERSION).
@_cdecl("ember_abi_version")
public func ember_abi_version() -> Int32 { cember_abi_version() }

/// The calling thread's last error message.
@_cdecl("ember_last_error")
public func ember_last_error() -> UnsafePointer<CChar>? { cember_last_error() }

/// The last error's structured detail (`ember_error_detail`, filled by C, which knows its layout).
@_cdecl("ember_last_error_detail")
public func ember_last_error_detail(_ out: UnsafeMutableRawPointer?) -> Int32 {
    // NOTE: not `guarded`: reading the last error must not clear it.
    guard let out else { return EmberError.Kind.invalidArgument.rawValue }
    cember_fill_error_detail(out)
    return Status.ok
}

/// Holds a C string for the lifetime of the process.
func staticCString(_ text: String) -> UnsafePointer<CChar> {
    let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: text.utf8.count + 1)
    for (i, b) in text.utf8.enumerated() { buffer[i] = CChar(bitPattern: b) }
    buffer[text.utf8.count] = 0
    return UnsafePointer(buffer)
}

enum StaticStrings {
    nonisolated(unsafe) static let version = staticCString(emberVersion)
    nonisolated(unsafe) static let blasCore = staticCString(BLAS.coreName)
    nonisolated(unsafe) static let blasAdvice = BLAS.coreAdvice.map(staticCString)
    nonisolated(unsafe) static let vocabulary = staticCString(vocabularyJSON().text)
}

/// What the engine offers, as data, so that hosts derive their lists from it instead of keeping
/// copies: the ops of network descriptions, the activations, the engine measures with their
/// task and direction, the expression ops, the losses of each task kind, the predefined
/// architectures with their defaults, the input each reads ("tabular" or "image") and what it does
/// with an unseen categorical level ("warn" or "error"), the optimizers with their hyperparameters'
/// defaults, and the image transforms.
func vocabularyJSON() -> JSONValue {
    let strings = { (names: [String]) in JSONValue.array(names.map { .string($0) }) }
    let measures = Metric.allCases.map { m in
        JSONValue.object([("name", .string(m.rawValue)), ("task", .string(m.taskGroup)),
                          ("maximize", .bool(m.maximize))])
    }
    let tasks: [TaskKind] = [.regression, .binary, .multiclass(classes: 3), .quantileRegression(quantiles: [0.5]), .multilabel(labels: 2)]
    return .object([
        ("ops", strings(LayerOp.allCases.map(\.rawValue))),
        ("activations", strings(LayerOp.activations.map(\.rawValue))),
        ("measures", .array(measures)),
        ("expression_ops", strings(NetworkExpressionOp.allCases.map(\.rawValue))),
        ("losses", .object(tasks.map { ($0.name, strings($0.losses.map(\.rawValue))) })),
        ("architectures", .object(architectureDefaults.map { ($0.0, .object($0.1)) })),
        ("architecture_inputs", .object(architectureDefaults.map { ($0.0, .string(imageArchitectures.contains($0.0) ? "image" : "tabular")) })),
        ("unseen_levels", .object(architectureDefaults.map { ($0.0, .string(architecturesRefusingUnseenLevels.contains($0.0) ? "error" : "warn")) })),
        ("optimizers", .object(OptimizerKind.allCases.map { k in
            (k.rawValue, .object(k.defaults.sorted { $0.key < $1.key }.map { ($0.key, .number($0.value)) }))
        })),
        ("transforms", strings(ImageTransform.names)),
    ])
}

/// The engine version.
@_cdecl("ember_version")
public func ember_version(_ out: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    guarded {
        guard let out else { throw EmberError.invalidArgument("out_version", "is NULL") }
        out.pointee = StaticStrings.version
    }
}

/// The OpenBLAS core name.
@_cdecl("ember_blas_core_name")
public func ember_blas_core_name(_ out: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    guarded {
        guard let out else { throw EmberError.invalidArgument("out_name", "is NULL") }
        out.pointee = StaticStrings.blasCore
    }
}

/// How to make OpenBLAS use this CPU's vector units (static string), or NULL when it already does.
@_cdecl("ember_blas_core_advice")
public func ember_blas_core_advice(_ out: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    guarded {
        guard let out else { throw EmberError.invalidArgument("out_advice", "is NULL") }
        out.pointee = StaticStrings.blasAdvice
    }
}

/// The engine's vocabulary as JSON (a static string; see include/ember.h).
@_cdecl("ember_vocabulary")
public func ember_vocabulary(_ out: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    guarded {
        guard let out else { throw EmberError.invalidArgument("out_json", "is NULL") }
        out.pointee = StaticStrings.vocabulary
    }
}

/// Threads used by the engine and BLAS.
@_cdecl("ember_get_num_threads")
public func ember_get_num_threads(_ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded {
        guard let out else { throw EmberError.invalidArgument("out_threads", "is NULL") }
        out.pointee = Int32(clamping: Engine.numThreads)
    }
}

/// Sets the thread count.
@_cdecl("ember_set_num_threads")
public func ember_set_num_threads(_ threads: Int32) -> Int32 {
    guarded { try Engine.setNumThreads(Int(threads)) }
}

/// How error messages count rows, columns and elements (0 or 1).
@_cdecl("ember_set_message_index_base")
public func ember_set_message_index_base(_ base: Int32) -> Int32 {
    guarded { try ErrorIndex.setBase(Int(base)) }
}

/// Sets the host's interrupt check (NULL removes it).
@_cdecl("ember_set_interrupt_check")
public func ember_set_interrupt_check(_ check: Interrupts.Check?, _ context: UnsafeMutableRawPointer?) -> Int32 {
    guarded { Interrupts.set(check, context: context) }
}

/// Live handle counts.
@_cdecl("ember_live_handles")
public func ember_live_handles(_ models: UnsafeMutablePointer<Int64>?, _ datasets: UnsafeMutablePointer<Int64>?,
                               _ trainers: UnsafeMutablePointer<Int64>?, _ bytes: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded {
        let r = HandleRegistry.shared
        models?.pointee = Int64(r.count(ModelBox.self))
        datasets?.pointee = Int64(r.count(DatasetBox.self))
        trainers?.pointee = Int64(r.count(TrainerBox.self))
        bytes?.pointee = Int64(r.count(BytesBox.self))
    }
}

/// A predefined architecture's network description.
@_cdecl("ember_architecture")
public func ember_architecture(_ name: UnsafePointer<CChar>?, _ options: UnsafePointer<CChar>?,
                               _ out: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    guarded {
        let n = try string(name, "name")
        let json = try parseJSON(try string(options, "options_json"), "options_json")
        guard let out else { throw EmberError.invalidArgument("out_network_json", "is NULL") }
        try returnText(try makeArchitecture(n, json).json.text, out)
    }
}

/// The bytes of a buffer.
@_cdecl("ember_bytes_data")
public func ember_bytes_data(_ bytes: OpaquePointer?, _ outData: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
                             _ outSize: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded {
        let box = try HandleRegistry.shared.lookup(bytes, BytesBox.self, "bytes")
        guard let outData else { throw EmberError.invalidArgument("out_data", "is NULL") }
        guard let outSize else { throw EmberError.invalidArgument("out_size", "is NULL") }
        outData.pointee = UnsafePointer(box.bytes.baseAddress)
        outSize.pointee = Int64(box.count)
    }
}

/// Frees a byte buffer.
@_cdecl("ember_bytes_free")
public func ember_bytes_free(_ bytes: OpaquePointer?) -> Int32 {
    guarded { try HandleRegistry.shared.free(bytes, BytesBox.self, "bytes") }
}

/// Registers bytes and writes the handle.
func returnBytes(_ bytes: [UInt8], _ out: UnsafeMutablePointer<OpaquePointer?>) {
    out.pointee = HandleRegistry.shared.register(BytesBox(bytes))
}
