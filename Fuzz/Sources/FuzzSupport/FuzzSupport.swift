import CFuzzDriver
import EmberCore
import EmberNN
import Glibc

// What every fuzz target shares: libFuzzer's driver loop, and the bound that keeps a target from
// asking the engine for more memory than the fuzzer allows (a network of 10⁹ units is a valid
// description, just not one to build 1000 times a second).

nonisolated(unsafe) private var fuzzBody: (([UInt8]) -> Void)?

/// Runs libFuzzer (its command line is this program's) with `body` as the target: `body` gets
/// each input and must return normally for every input that is not a bug; a trap, a sanitizer
/// report or a leak of the input's memory is a finding.
public func runFuzzer(_ body: @escaping ([UInt8]) -> Void) -> Never {
    fuzzBody = body
    // One engine thread: the findings do not depend on scheduling and reproduce from the input.
    try? Engine.setNumThreads(1)
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
        fuzzBody?(bytes)
        return 0
    }
    exit(status)
}

/// The sizes a target builds from a description: every number in it at most this.
public let buildableNumber = 64.0

/// Whether every number in `value` is at most `buildableNumber` in magnitude (and finite), so that
/// building what it describes takes little memory.
public func isSmall(_ value: JSONValue) -> Bool {
    switch value {
    case let .number(d): return d.isFinite && abs(d) <= buildableNumber
    case let .array(a): return a.allSatisfy(isSmall)
    case let .object(m): return m.allSatisfy { isSmall($0.1) }
    case let .string(s):
        // Network descriptions may be nested as JSON text (a model configuration's "network").
        if let first = s.first, first == "{" || first == "[", let inner = try? JSONValue.parse(s) { return isSmall(inner) }
        return true
    case .null, .bool: return true
    }
}

/// The input as text (invalid UTF-8 is repaired, as the C interface's callers would send it).
public func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// A small multiclass MLP with batch norm (3 numeric features, 3 classes): the model the trainer
/// configurations are read for and weights are loaded into.
public let smallModelConfig = #"""
{"network": {"inputs": [{"name": "num", "kind": "numeric", "features": 3}],
             "nodes": [{"id": "linear_0", "op": "linear", "inputs": ["num"], "params": {"out_features": 4}},
                       {"id": "bn", "op": "batch_norm", "inputs": ["linear_0"]},
                       {"id": "head", "op": "head", "inputs": ["bn"]}],
             "output": "head"},
 "task": "multiclass", "n_classes": 3, "seed": "1"}
"""#
