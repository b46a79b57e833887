import CEmberSupport
import EmberCore
import Foundation
import XCTest

@testable import EmberCABI

/// Drives the exported C functions the way a C caller does, including every error path:
/// nothing may trap, every failure is a status code plus a message and a structured detail
/// naming the argument, and out-parameters stay untouched on failure.
final class CABITests: XCTestCase {
    let ok: Int32 = 0, invalid: Int32 = 1, shape: Int32 = 2, state: Int32 = 3, corrupt: Int32 = 4

    func lastError() -> String { String(cString: cember_last_error()) }

    func expectError(_ status: Int32, _ code: Int32, _ needle: String, argument: String? = nil,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(status, code, "status (message: \(lastError()))", file: file, line: line)
        XCTAssertTrue(lastError().contains(needle), "'\(lastError())' should contain '\(needle)'", file: file, line: line)
        if let argument {
            XCTAssertEqual(String(cString: cember_last_error_field(2)), argument, "detail.argument of '\(lastError())'", file: file, line: line)
        }
    }

    func check(_ status: Int32, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(status, ok, lastError(), file: file, line: line)
    }

    func text(_ call: (UnsafeMutablePointer<UnsafePointer<CChar>?>) -> Int32, file: StaticString = #filePath, line: UInt = #line) -> String {
        var p: UnsafePointer<CChar>?
        check(call(&p), file: file, line: line)
        return p.map { String(cString: $0) } ?? ""
    }

    func json(_ s: String) -> Any { (try? JSONSerialization.jsonObject(with: Data(s.utf8), options: [.fragmentsAllowed])) ?? NSNull() }

    func architecture(_ name: String, _ options: String) -> String {
        text { ember_architecture(name, options, $0) }
    }

    /// A multiclass MLP over 2 numeric features.
    private func makeModel(task: String = "multiclass", classes: String = "[\"a\", \"b\", \"c\"]", seed: String = "7") throws -> OpaquePointer {
        let net = architecture("mlp", #"{"inputs": {"numeric": 2}, "neurons": [8]}"#)
        var model: OpaquePointer?
        check(ember_model_new(&model, #"{"network": \#(net), "task": "\#(task)", "class_names": \#(classes), "seed": "\#(seed)"}"#))
        return try XCTUnwrap(model)
    }

    /// Three separable clusters, column-major, with targets 0, 1, 2.
    private func clusters(_ n: Int = 30) -> (x: [Double], y: [Double]) {
        var x = [Double](repeating: 0, count: n * 2), y = [Double](repeating: 0, count: n)
        for i in 0..<n {
            let c = i % 3
            x[i] = Double(c) * 3 + Double(i % 5) * 0.1
            x[n + i] = Double(c == 1 ? 1 : -1) + Double(i % 4) * 0.1
            y[i] = Double(c)
        }
        return (x, y)
    }

    private func makeData(_ x: [Double], _ y: [Double]?, rows: Int) throws -> OpaquePointer {
        var d: OpaquePointer?
        check(ember_dataset_new(&d, Int64(rows)))
        check(ember_dataset_add_numeric(d, "num", x, 2, 1))
        if let y { check(ember_dataset_set_target(d, y, Int64(rows))) }
        return try XCTUnwrap(d)
    }

    func testEngineFunctions() throws {
        // The ABI and engine versions are written once, in include/ember.h; the engine reports them.
        let header = try String(contentsOfFile: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../include/ember.h").standardizedFileURL.path, encoding: .utf8)
        let line = try XCTUnwrap(header.split(separator: "\n").first { $0.hasPrefix("#define EMBER_ABI_VERSION ") })
        XCTAssertEqual(ember_abi_version(), Int32(try XCTUnwrap(line.split(separator: " ").last.flatMap { Int32($0) })))
        let version = try XCTUnwrap(header.split(separator: "\n").first { $0.hasPrefix("#define EMBER_VERSION ") })
        XCTAssertEqual("\"" + text { ember_version($0) } + "\"", version.split(separator: " ").last.map(String.init))
        XCTAssertTrue(text { ember_version($0) }.wholeMatch(of: /[0-9]+\.[0-9]+\.[0-9]+/) != nil)
        XCTAssertFalse(text { ember_blas_core_name($0) }.isEmpty)
        var advice: UnsafePointer<CChar>? = UnsafePointer(bitPattern: 1)
        check(ember_blas_core_advice(&advice))
        XCTAssertEqual(advice.map { String(cString: $0) }, BLAS.coreAdvice, "NULL exactly when the engine has no advice")
        check(ember_set_num_threads(1))
        var threads: Int32 = 0
        check(ember_get_num_threads(&threads))
        XCTAssertEqual(threads, 1)
        expectError(ember_set_num_threads(0), invalid, "num_threads", argument: "num_threads")
        expectError(ember_set_num_threads(66), invalid, "1...65")
        expectError(ember_get_num_threads(nil), invalid, "out_threads")
        expectError(ember_version(nil), invalid, "out_version")
        expectError(ember_blas_core_name(nil), invalid, "out_name")
        expectError(ember_blas_core_advice(nil), invalid, "out_advice")
        check(ember_live_handles(nil, nil, nil, nil))
    }

    func testMessagesCountFromTheHostsBase() throws {
        var data: OpaquePointer?
        check(ember_dataset_new(&data, 3))
        defer { _ = ember_dataset_free(data) }
        let x: [Double] = [1, 2, .nan, 4, 5, 6]  // column-major 3 × 2: row 2, column 0 is NaN
        expectError(ember_dataset_add_numeric(data, "num", x, 2, 1), invalid, "input 'num': row 2, column 0 (0-based) is nan")
        check(ember_set_message_index_base(1))
        defer { _ = ember_set_message_index_base(0) }
        expectError(ember_dataset_add_numeric(data, "num", x, 2, 1), invalid, "input 'num': row 3, column 1 is nan")
        XCTAssertFalse(lastError().contains("0-based"), lastError())
        XCTAssertEqual(cember_last_error_index(), 2, "the structured index stays 0-based")
        XCTAssertEqual(ErrorIndex.describe(("row", 0), ("label", 4)), "row 1, label 5")
        expectError(ember_set_message_index_base(2), invalid, "[base] the message index base must be 0 or 1, got 2", argument: "base")
        check(ember_set_message_index_base(0))
        XCTAssertEqual(ErrorIndex.describe(("transform", 1)), "transform 1 (0-based)")
    }

    /// A numeric input from separate columns equals the same values as one column-major matrix
    /// (the same predictions, bit for bit); a NULL column, a non-finite value (named by row and
    /// column) and a missing array are refused.
    func testNumericInputFromSeparateColumns() throws {
        let model = try makeModel()
        defer { _ = ember_model_free(model) }
        let (x, _) = clusters(31)
        let n = 31
        let matrix = try makeData(x, nil, rows: n)
        defer { _ = ember_dataset_free(matrix) }
        var columns: OpaquePointer?
        check(ember_dataset_new(&columns, Int64(n)))
        defer { _ = ember_dataset_free(columns) }
        let first = Array(x[0..<n]), second = Array(x[n..<(2 * n)])
        first.withUnsafeBufferPointer { a in
            second.withUnsafeBufferPointer { b in
                let pointers: [UnsafePointer<Double>?] = [a.baseAddress, b.baseAddress]
                check(ember_dataset_add_numeric_columns(columns, "num", pointers, 2))
            }
        }
        var viaMatrix = [Double](repeating: 0, count: n * 3), viaColumns = viaMatrix
        check(ember_model_predict(model, matrix, 7, 1, &viaMatrix, Int64(viaMatrix.count)))
        check(ember_model_predict(model, columns, 7, 1, &viaColumns, Int64(viaColumns.count)))
        XCTAssertEqual(viaColumns, viaMatrix)

        var data: OpaquePointer?
        check(ember_dataset_new(&data, 3))
        defer { _ = ember_dataset_free(data) }
        let good: [Double] = [1, 2, 3], bad: [Double] = [4, .infinity, 6]
        good.withUnsafeBufferPointer { a in
            bad.withUnsafeBufferPointer { b in
                expectError(ember_dataset_add_numeric_columns(data, "num", [a.baseAddress, b.baseAddress], 2), invalid,
                            "input 'num': row 1, column 1 (0-based) is inf; expected finite values", argument: "num")
                expectError(ember_dataset_add_numeric_columns(data, "num", [a.baseAddress, nil], 2), invalid,
                            "input 'num': column 1 (0-based) is NULL; expected 3 values", argument: "columns")
            }
        }
        expectError(ember_dataset_add_numeric_columns(data, "num", nil, 2), invalid, "columns", argument: "columns")
        expectError(ember_dataset_add_numeric_columns(data, "num", nil, 0), invalid, "n_cols")
    }

    func testErrorDetailIsStructuredAndClearedBySuccess() throws {
        var d = ember_error_detail_layout()
        var data: OpaquePointer?
        check(ember_dataset_new(&data, 3))
        defer { _ = ember_dataset_free(data) }
        let x: [Double] = [1, 2, .nan, 4, 5, 6]  // column-major 3 × 2: row 2, column 0 is NaN
        expectError(ember_dataset_add_numeric(data, "num", x, 2, 1), invalid, "row 2, column 0")
        XCTAssertEqual(withUnsafeMutableBytes(of: &d) { ember_last_error_detail($0.baseAddress) }, ok)
        XCTAssertEqual(d.code, invalid)
        XCTAssertEqual(String(cString: d.argument), "num")
        XCTAssertEqual(d.index, 2)
        XCTAssertEqual(String(cString: d.expected), "finite values")
        XCTAssertEqual(String(cString: d.got), "nan")
        XCTAssertEqual(String(cString: d.message), lastError())
        XCTAssertEqual(String(cString: d.op), "dataset")
        // Reading the detail does not clear it; a successful call does.
        XCTAssertEqual(withUnsafeMutableBytes(of: &d) { ember_last_error_detail($0.baseAddress) }, ok)
        XCTAssertEqual(d.code, invalid)
        var rows: Int64 = 0
        check(ember_dataset_rows(data, &rows))
        XCTAssertEqual(withUnsafeMutableBytes(of: &d) { ember_last_error_detail($0.baseAddress) }, ok)
        XCTAssertEqual(d.code, ok)
        XCTAssertEqual(d.index, -1)
        XCTAssertEqual(String(cString: d.argument), "")
        XCTAssertEqual(lastError(), "")
        XCTAssertEqual(ember_last_error_detail(nil), invalid)
    }

    func testArchitectures() {
        for (name, options) in [("mlp", #"{"inputs": {"numeric": 3, "cardinalities": [2, 4]}, "neurons": [16, 8], "p": 0.1, "activation": "gelu"}"#),
                                ("tab_resnet", #"{"inputs": {"numeric": 3}, "n_blocks": 1, "d_block": 8}"#),
                                ("ft_transformer", #"{"inputs": {"numeric": 3, "cardinalities": [2]}, "n_blocks": 1, "d_token": 8, "attention_n_heads": 2}"#),
                                ("tabm", #"{"inputs": {"numeric": 3, "cardinalities": [2]}, "k": 4, "d_block": 8, "arch_type": "tabm-mini", "num_embeddings": "periodic"}"#),
                                ("tabm", #"{"inputs": {"numeric": 2}, "k": 2, "d_block": 4, "num_embeddings": "piecewise_linear", "n_bins": 4}"#),
                                ("featureless", #"{"inputs": {"numeric": 1}}"#),
                                ("lenet", #"{"inputs": {"image": [1, 28, 28]}}"#),
                                ("resnet", #"{"inputs": {"image": [3, 8, 8]}, "channels": 4, "n_blocks": 1}"#),
                                ("resnet18", #"{"inputs": {"image": [3, 32, 32]}}"#),
                                ("resnet34", #"{"inputs": {"image": [1, 16, 20]}}"#),
                                ("resnet50", #"{"inputs": {"image": [3, 32, 32]}}"#)] {
            let net = architecture(name, options)
            XCTAssertEqual((json(net) as? [String: Any])?["format"] as? String, "ember.network", name)
        }
        // Every architecture is in the vocabulary, the hosts' list.
        let vocabulary = json(text { ember_vocabulary($0) }) as? [String: Any]
        let listed = (vocabulary?["architectures"] as? [String: Any]).map { Set($0.keys) }
        XCTAssertEqual(listed, ["mlp", "tab_resnet", "ft_transformer", "tabm", "featureless", "lenet", "resnet", "resnet18", "resnet34", "resnet50"])
        XCTAssertEqual((vocabulary?["architectures"] as? [String: [String: Any]])?["resnet18"]?.count, 0, "no options")

        // A torchvision ResNet from C: torchvision's parameter names.
        let resnet = architecture("resnet18", #"{"inputs": {"image": [1, 28, 28]}}"#)
        var model: OpaquePointer?
        check(ember_model_new(&model, #"{"network": \#(resnet), "task": "multiclass", "n_classes": 10, "seed": "1"}"#))
        defer { _ = ember_model_free(model) }
        var bn = [Double](repeating: -1, count: 128)
        check(ember_model_get_parameter(model, "layer2.0.downsample.1.running_var", &bn, 128))
        XCTAssertEqual(bn, [Double](repeating: 1, count: 128))
        var conv = [Double](repeating: 0, count: 64 * 49)
        check(ember_model_get_parameter(model, "conv1.weight", &conv, Int64(conv.count)))
        XCTAssertNotEqual(conv.map(abs).max(), 0)
        let names = (json(text { ember_model_parameters(model, $0) }) as? [[String: Any]])?.compactMap { $0["name"] as? String } ?? []
        XCTAssertEqual(names.first, "conv1.weight")
        XCTAssertTrue(names.contains("fc.bias"), "\(names.suffix(3))")

        var out: UnsafePointer<CChar>?
        expectError(ember_architecture("perceptron", #"{"inputs": {"numeric": 1}}"#, &out), invalid,
                    "unknown architecture 'perceptron'; expected one of mlp, tab_resnet, ft_transformer, tabm, featureless, lenet, resnet, resnet18, resnet34, resnet50",
                    argument: "name")
        expectError(ember_architecture("resnet18", #"{"inputs": {"image": [3, 32, 32]}, "channels": 8}"#, &out), invalid, "not a known option", argument: "channels")
        expectError(ember_architecture("resnet50", #"{"inputs": {"image": [3, 0, 32]}}"#, &out), invalid, "integers >= 1", argument: "inputs.image")
        expectError(ember_architecture("mlp", "{", &out), invalid, "not valid JSON", argument: "options_json")
        expectError(ember_architecture("tabm", #"{"inputs": {"numeric": 2}, "arch_type": "tabm-packed"}"#, &out), invalid,
                    "\"tabm-mini\"", argument: "arch_type")
        expectError(ember_architecture("tabm", #"{"inputs": {"numeric": 2}, "num_embeddings": "periodic", "lite": true, "embedding_activation": false}"#, &out),
                    invalid, "lite = true needs embedding_activation = true", argument: "lite")
        expectError(ember_architecture("tabm", #"{"inputs": {"numeric": 2}, "n_bins": 1}"#, &out), invalid, "integer in 2", argument: "n_bins")
        expectError(ember_architecture("mlp", "{}", &out), invalid, "inputs", argument: "inputs")
        expectError(ember_architecture("mlp", #"{"inputs": {"numeric": 2}, "neuron": [3]}"#, &out), invalid, "not a known option", argument: "neuron")
        expectError(ember_architecture("mlp", #"{"inputs": {"numeric": 2}, "neurons": [0]}"#, &out), invalid, "integers >= 1", argument: "neurons")
        expectError(ember_architecture("mlp", #"{"inputs": {"numeric": 2}, "p": 1}"#, &out), invalid, "[0, 1)", argument: "p")
        expectError(ember_architecture("mlp", #"{"inputs": {"numeric": 2}, "activation": "swoosh"}"#, &out), invalid, "activation", argument: "activation")
        expectError(ember_architecture("mlp", #"{"inputs": {"numeric": 0}}"#, &out), invalid, "at least one feature")
        expectError(ember_architecture("lenet", #"{"inputs": {"image": [28, 28]}}"#, &out), invalid, "[channels, height, width]")
        expectError(ember_architecture("ft_transformer", #"{"inputs": {"numeric": 2}, "d_token": 10, "attention_n_heads": 3}"#, &out), invalid, "divisible")
        expectError(ember_architecture(nil, "{}", &out), invalid, "name")
        expectError(ember_architecture("mlp", nil, &out), invalid, "options_json")
        expectError(ember_architecture("mlp", #"{"inputs": {"numeric": 2}}"#, nil), invalid, "out_network_json")
        XCTAssertNil(out, "out-parameters are written only on success")
    }

    func testModelConfigErrors() throws {
        let net = architecture("mlp", #"{"inputs": {"numeric": 2}}"#)
        var model: OpaquePointer?
        func new(_ config: String) -> Int32 { ember_model_new(&model, config) }
        expectError(ember_model_new(nil, "{}"), invalid, "out_model")
        expectError(ember_model_new(&model, nil), invalid, "config_json")
        expectError(new("[1"), invalid, "not valid JSON")
        expectError(new("[]"), invalid, "JSON object")
        expectError(new(#"{"task": "binary", "seed": "1"}"#), invalid, "network", argument: "network")
        expectError(new(#"{"network": \#(net), "task": "ranking", "seed": "1"}"#), invalid, "\"ranking\"", argument: "task")
        expectError(new(#"{"network": \#(net), "task": "binary", "class_names": ["a"], "seed": "1"}"#), invalid, "2 class names", argument: "class_names")
        expectError(new(#"{"network": \#(net), "task": "multiclass", "class_names": ["a"], "seed": "1"}"#), invalid, "at least 2 classes")
        expectError(new(#"{"network": \#(net), "task": "multiclass", "class_names": ["a", "a"], "seed": "1"}"#), invalid, "unique")
        expectError(new(#"{"network": \#(net), "task": "regression", "seed": "-1"}"#), invalid, "decimal string", argument: "seed")
        expectError(new(#"{"network": \#(net), "task": "regression"}"#), invalid, "seed")
        expectError(new(#"{"network": \#(net), "task": "regression", "seed": "1", "sede": 2}"#), invalid, "not a known option", argument: "sede")
        expectError(new(#"{"network": \#(net), "task": "regression", "seed": "1", "standardize": {"num": [true]}}"#), shape, "standardize")
        expectError(new(#"{"network": \#(net), "task": "regression", "seed": "1", "standardize": {"num": [1, 0]}}"#), invalid, "true/false")
        expectError(new(#"{"network": \#(net), "task": "regression", "seed": "1", "host": {"k": 1}}"#), invalid, "string", argument: "host.k")
        expectError(new(#"{"network": {"inputs": [], "nodes": [], "output": "x"}, "task": "regression", "seed": "1"}"#), invalid, "network")
        XCTAssertNil(model)
        // The largest 64-bit seed is fine.
        check(new(#"{"network": \#(net), "task": "regression", "seed": "18446744073709551615"}"#))
        check(ember_model_free(model))
    }

    /// Quantile regression and multilabel models through the C interface: their configuration
    /// and its errors, a target matrix, training, predictions, model info and serialization.
    func testQuantileAndMultilabelModels() throws {
        let net = architecture("mlp", #"{"inputs": {"numeric": 2}, "neurons": [8]}"#)
        var model: OpaquePointer?
        func new(_ rest: String) -> Int32 { ember_model_new(&model, #"{"network": \#(net), "seed": "1", \#(rest)}"#) }
        expectError(new(#""task": "quantile_regression""#), invalid, "is required for a quantile_regression task", argument: "quantiles")
        expectError(new(#""task": "quantile_regression", "quantiles": [0.1, 1.2]"#), invalid, "level 1 (0-based) is 1.2; quantile levels must lie in (0, 1)", argument: "quantiles")
        expectError(new(#""task": "quantile_regression", "quantiles": [0.9, 0.5]"#), invalid, "strictly increasing", argument: "quantiles")
        expectError(new(#""task": "quantile_regression", "quantiles": [0.5, 0.5]"#), invalid, "strictly increasing", argument: "quantiles")
        expectError(new(#""task": "quantile_regression", "quantiles": "0.5""#), invalid, "array of numbers", argument: "quantiles")
        expectError(new(#""task": "regression", "quantiles": [0.5]"#), invalid, "applies to a quantile_regression task only", argument: "quantiles")
        expectError(new(#""task": "quantile_regression", "quantiles": [0.5], "output_link": "exp", "standardize_target": false"#), invalid, "output_link")
        expectError(new(#""task": "multilabel""#), invalid, "at least 2 labels", argument: "class_names")
        expectError(new(#""task": "multilabel", "class_names": ["a"]"#), invalid, "one label is a binary task", argument: "class_names")
        expectError(new(#""task": "multilabel", "n_labels": 3, "class_names": ["a", "b"]"#), invalid, "has 2 names for 3 labels", argument: "class_names")
        expectError(new(#""task": "multilabel", "n_labels": 1"#), invalid, "integer in 2", argument: "n_labels")
        XCTAssertNil(model)

        // Quantile regression: one output per level, sorted predictions, the levels in the info.
        let n = 40
        var x = [Double](repeating: 0, count: 2 * n), y = [Double](repeating: 0, count: n)
        for i in 0..<n {
            x[i] = Double(i) / Double(n)
            x[n + i] = Double(i % 7) / 7
            y[i] = 10 * x[i] + Double(i % 5) + 100
        }
        check(new(#""task": "quantile_regression", "quantiles": [0.1, 0.5, 0.9]"#))
        let quantile = try XCTUnwrap(model)
        defer { _ = ember_model_free(quantile) }
        let data = try makeData(x, y, rows: n)
        defer { _ = ember_dataset_free(data) }
        var t: OpaquePointer?
        expectError(ember_trainer_new(&t, quantile, #"{"loss": {"kind": "mse"}}"#), invalid, "'mse' does not fit a quantile_regression model; expected quantile", argument: "loss.kind")
        expectError(ember_trainer_new(&t, quantile, #"{"measures_valid": ["accuracy"]}"#), invalid, "'accuracy' is a classification measure; the model is a quantile_regression model", argument: "measures_valid")
        check(ember_trainer_new(&t, quantile, #"{"batch_size": 8, "optimizer": {"lr": 0.01}, "loss": {"kind": "quantile", "reduction": "sum"}, "measures_train": ["mae"]}"#))
        var records = text { ember_trainer_fit(t, data, data, 5, 0, 5, $0) }
        _ = ember_trainer_free(t)
        var list = try XCTUnwrap(json(records) as? [[String: Any]])
        XCTAssertNotNil((list.last?["train"] as? [String: Any])?["mae"])
        var info = try XCTUnwrap(json(text { ember_model_info(quantile, $0) }) as? [String: Any])
        XCTAssertEqual(info["task"] as? String, "quantile_regression")
        let levels = try XCTUnwrap(info["quantiles"] as? [Double])
        XCTAssertEqual(levels.count, 3)
        for (a, b) in zip(levels, [0.1, 0.5, 0.9]) { XCTAssertEqual(a, b, accuracy: 1e-7) }
        XCTAssertEqual(info["outputs"] as? Int, 3)
        XCTAssertEqual(info["prediction_columns"] as? Int, 3)
        XCTAssertEqual(info["response_column"] as? Int, 1)
        var q = [Double](repeating: 0, count: 3 * n)
        check(ember_model_predict(quantile, data, 0, 0, &q, Int64(3 * n)))
        for i in 0..<n { XCTAssertTrue(q[3 * i] <= q[3 * i + 1] && q[3 * i + 1] <= q[3 * i + 2], "row \(i) sorted") }
        XCTAssertGreaterThan(q[1], 50, "on the target's scale")
        var bytes: OpaquePointer?
        check(ember_model_serialize(quantile, &bytes))
        var p: UnsafePointer<UInt8>?
        var size: Int64 = 0
        check(ember_bytes_data(bytes, &p, &size))
        var copy: OpaquePointer?
        check(ember_model_deserialize(&copy, p, size))
        _ = ember_bytes_free(bytes)
        var q2 = [Double](repeating: 0, count: 3 * n)
        check(ember_model_predict(copy, data, 0, 0, &q2, Int64(3 * n)))
        XCTAssertEqual(q, q2)
        XCTAssertEqual((json(text { ember_model_info(copy, $0) }) as? [String: Any])?["quantiles"] as? [Double], info["quantiles"] as? [Double])
        _ = ember_model_free(copy)

        // Multilabel: a 0/1 target matrix (column-major), one pos_weight per label, hamming accuracy.
        model = nil
        check(new(#""task": "multilabel", "class_names": ["p", "q", "r"]"#))
        let multilabel = try XCTUnwrap(model)
        defer { _ = ember_model_free(multilabel) }
        var labels = [Double](repeating: 0, count: 3 * n)
        for i in 0..<n {
            labels[i] = x[i] > 0.5 ? 1 : 0
            labels[n + i] = x[n + i] > 0.4 ? 1 : 0
            labels[2 * n + i] = i % 2 == 0 ? 1 : 0
        }
        var ml: OpaquePointer?
        check(ember_dataset_new(&ml, Int64(n)))
        defer { _ = ember_dataset_free(ml) }
        check(ember_dataset_add_numeric(ml, "num", x, 2, 1))
        expectError(ember_dataset_set_target_matrix(ml, labels, 0, 1), invalid, "n_cols", argument: "n_cols")
        expectError(ember_dataset_set_target_matrix(ml, labels, 3, 7), invalid, "layout", argument: "layout")
        expectError(ember_dataset_set_target_matrix(ml, nil, 3, 1), invalid, "y", argument: "y")
        var withNaN = labels
        withNaN[n + 2] = .nan
        expectError(ember_dataset_set_target_matrix(ml, withNaN, 3, 1), invalid, "target row 2, column 1 (0-based) is nan", argument: "y")
        expectError(ember_trainer_new(&t, multilabel, #"{"loss": {"pos_weight": [1, 2]}}"#), invalid, "1 or 3 numbers > 0 (one per label)", argument: "loss.pos_weight")
        expectError(ember_trainer_new(&t, multilabel, #"{"loss": {"kind": "quantile"}}"#), invalid, "does not fit a multilabel model", argument: "loss.kind")
        expectError(ember_trainer_new(&t, multilabel, #"{"measures_valid": ["accuracy"]}"#), invalid, "'accuracy' is a classification measure; the model is a multilabel model", argument: "measures_valid")
        check(ember_trainer_new(&t, multilabel, #"{"batch_size": 8, "optimizer": {"lr": 0.02}, "loss": {"pos_weight": [1, 2, 0.5]}, "measures_valid": ["hamming_accuracy"]}"#))
        defer { _ = ember_trainer_free(t) }
        // A target of one value per row does not fit a multilabel model.
        expectError(ember_trainer_fit(t, data, nil, 1, 0, 0, nil), shape, "a multilabel model needs 3 per row")
        var badLabels = labels
        badLabels[4] = 0.5
        var bad: OpaquePointer?
        check(ember_dataset_new(&bad, Int64(n)))
        defer { _ = ember_dataset_free(bad) }
        check(ember_dataset_add_numeric(bad, "num", x, 2, 1))
        check(ember_dataset_set_target_matrix(bad, badLabels, 3, 1))
        expectError(ember_trainer_fit(t, bad, nil, 1, 0, 0, nil), invalid, "target row 4, label 0 (0-based) is 0.5; expected 0 or 1")
        check(ember_dataset_set_target_matrix(ml, labels, 3, 1))
        records = text { ember_trainer_fit(t, ml, ml, 30, 0, 30, $0) }
        list = try XCTUnwrap(json(records) as? [[String: Any]])
        let hamming = try XCTUnwrap((list.last?["valid"] as? [String: Any])?["hamming_accuracy"] as? Double)
        XCTAssertGreaterThan(hamming, 0.75)
        info = try XCTUnwrap(json(text { ember_model_info(multilabel, $0) }) as? [String: Any])
        XCTAssertEqual(info["task"] as? String, "multilabel")
        XCTAssertEqual(info["target_columns"] as? Int, 3)
        XCTAssertEqual(info["class_names"] as? [String], ["p", "q", "r"])
        var probs = [Double](repeating: 0, count: 3 * n)
        check(ember_model_predict(multilabel, ml, 0, 1, &probs, Int64(3 * n)))
        XCTAssertTrue(probs.allSatisfy { $0 > 0 && $0 < 1 })
        let vocabulary = json(text { ember_vocabulary($0) }) as? [String: Any]
        XCTAssertEqual((vocabulary?["losses"] as? [String: [String]])?["quantile_regression"], ["quantile"])
        XCTAssertEqual((vocabulary?["losses"] as? [String: [String]])?["multilabel"]?.first, "bce_with_logits")
        XCTAssertTrue(((vocabulary?["measures"] as? [[String: Any]]) ?? []).contains { $0["name"] as? String == "hamming_accuracy" && $0["task"] as? String == "multilabel" })
    }

    func testTrainPredictSerializeSaveLoad() throws {
        let model = try makeModel()
        defer { _ = ember_model_free(model) }
        let (x, y) = clusters()
        let data = try makeData(x, y, rows: 30)
        defer { _ = ember_dataset_free(data) }
        var trainer: OpaquePointer?
        check(ember_trainer_new(&trainer, model, #"{"batch_size": 4, "optimizer": {"kind": "adam", "lr": 0.05, "betas": [0.9, 0.99]}, "measures_train": ["accuracy"]}"#))
        defer { _ = ember_trainer_free(trainer) }
        let records = text { ember_trainer_fit(trainer, data, nil, 40, 0, 40, $0) }
        let list = try XCTUnwrap(json(records) as? [[String: Any]])
        XCTAssertEqual(list.count, 40)
        let first = try XCTUnwrap(list.first?["train_loss"] as? Double), last = try XCTUnwrap(list.last?["train_loss"] as? Double)
        XCTAssertLessThan(last, first * 0.2)
        XCTAssertNotNil((list.last?["train"] as? [String: Any])?["accuracy"])
        let info = try XCTUnwrap(json(text { ember_model_info(model, $0) }) as? [String: Any])
        XCTAssertEqual(info["epochs"] as? Int, 40)
        XCTAssertEqual(info["class_names"] as? [String], ["a", "b", "c"])
        XCTAssertEqual(info["prediction_columns"] as? Int, 3)

        var cols: Int32 = 0
        check(ember_model_prediction_columns(model, &cols))
        XCTAssertEqual(cols, 3)
        var prob = [Double](repeating: 0, count: 90)
        check(ember_model_predict(model, data, 7, 1, &prob, 90))
        for i in 0..<30 {
            let row = (0..<3).map { prob[$0 * 30 + i] }
            XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-6)
            XCTAssertEqual(row.firstIndex(of: row.max() ?? 0), Int(y[i]))
        }
        var rowMajor = [Double](repeating: 0, count: 90)
        check(ember_model_predict(model, data, 0, 0, &rowMajor, 90))
        XCTAssertEqual(rowMajor[1], prob[30], "row-major: row 0, column 1")
        var logits = [Double](repeating: 0, count: 90)
        check(ember_model_logits(model, data, 0, 1, &logits, 90))
        expectError(ember_model_predict(model, data, 0, 1, &prob, 89), shape, "out_len", argument: "out_len")
        expectError(ember_model_predict(model, data, -1, 1, &prob, 90), invalid, "batch_size")
        expectError(ember_model_predict(model, data, 0, 2, &prob, 90), invalid, "layout", argument: "layout")
        expectError(ember_model_predict(model, data, 0, 1, nil, 90), invalid, "out")
        expectError(ember_model_predict(model, nil, 0, 1, &prob, 90), invalid, "data")
        expectError(ember_model_predict(model, model, 0, 1, &prob, 90), invalid, "not a live ember_dataset")
        expectError(ember_model_prediction_columns(model, nil), invalid, "out_columns")
        // A dataset lacking the model's input, or with the wrong width.
        var other: OpaquePointer?
        check(ember_dataset_new(&other, 2))
        defer { _ = ember_dataset_free(other) }
        expectError(ember_model_predict(model, other, 0, 1, &prob, 6), state, "no inputs")
        check(ember_dataset_add_numeric(other, "numbers", [1, 2], 1, 1))
        expectError(ember_model_predict(model, other, 0, 1, &prob, 6), invalid, "lacks input 'num'")
        var narrow: OpaquePointer?
        check(ember_dataset_new(&narrow, 2))
        defer { _ = ember_dataset_free(narrow) }
        check(ember_dataset_add_numeric(narrow, "num", [1, 2, 3, 4, 5, 6], 3, 1))
        expectError(ember_model_predict(model, narrow, 0, 1, &prob, 6), shape, "input 'num' has shape [2, 3]")

        // Bytes, serialization, files.
        var bytes: OpaquePointer?
        check(ember_model_serialize(model, &bytes))
        var p: UnsafePointer<UInt8>?
        var size: Int64 = 0
        check(ember_bytes_data(bytes, &p, &size))
        XCTAssertGreaterThan(size, 8)
        let copyBytes = Array(UnsafeBufferPointer(start: p, count: Int(size)))
        check(ember_bytes_free(bytes))
        expectError(ember_bytes_data(bytes, &p, &size), invalid, "not a live ember_bytes")
        expectError(ember_model_serialize(model, nil), invalid, "out_bytes")
        var copy: OpaquePointer?
        check(ember_model_deserialize(&copy, copyBytes, size))
        defer { _ = ember_model_free(copy) }
        var prob2 = [Double](repeating: 0, count: 90)
        check(ember_model_predict(copy, data, 0, 1, &prob2, 90))
        XCTAssertEqual(prob, prob2)
        let path = NSTemporaryDirectory() + "/ember-cabi-\(getpid()).safetensors"
        defer { unlink(path) }
        check(ember_model_set_host_metadata(model, "r.encoding", "{\"x\": 1}"))
        check(ember_model_save(model, path))
        var loaded: OpaquePointer?
        check(ember_model_load(&loaded, path))
        defer { _ = ember_model_free(loaded) }
        let loadedInfo = try XCTUnwrap(json(text { ember_model_info(loaded, $0) }) as? [String: Any])
        XCTAssertEqual((loadedInfo["host"] as? [String: String])?["r.encoding"], "{\"x\": 1}")
        check(ember_model_set_host_metadata(model, "r.encoding", nil))
        expectError(ember_model_set_host_metadata(model, "", "v"), invalid, "key")
        var bad: OpaquePointer?
        expectError(ember_model_load(&bad, "/nonexistent/model.safetensors"), invalid, "cannot open", argument: "path")
        expectError(ember_model_save(model, "/nonexistent/dir/model.safetensors"), invalid, "cannot open", argument: "path")
        expectError(ember_model_load(&bad, nil), invalid, "path")
        expectError(ember_model_deserialize(&bad, [1, 2, 3], 3), corrupt, "safetensors")
        expectError(ember_model_deserialize(&bad, nil, 3), invalid, "bytes")
        expectError(ember_model_deserialize(&bad, [0], -1), invalid, "length")
        var truncated = copyBytes
        truncated.removeLast(10)
        expectError(ember_model_deserialize(&bad, truncated, Int64(truncated.count)), corrupt, "safetensors")
        var garbled = copyBytes
        garbled[9] = UInt8(ascii: "!")
        expectError(ember_model_deserialize(&bad, garbled, Int64(garbled.count)), corrupt, "json")
        XCTAssertNil(bad)
    }

    func testDatasetErrors() throws {
        var d: OpaquePointer?
        expectError(ember_dataset_new(nil, 2), invalid, "out_dataset")
        expectError(ember_dataset_new(&d, 0), invalid, "n_rows", argument: "n_rows")
        expectError(ember_dataset_new(&d, -5), invalid, "n_rows")
        XCTAssertNil(d)
        check(ember_dataset_new(&d, 2))
        defer { _ = ember_dataset_free(d) }
        let x: [Double] = [1, 2, 3, 4]
        expectError(ember_dataset_add_numeric(d, "num", x, 0, 1), invalid, "n_cols")
        expectError(ember_dataset_add_numeric(d, "num", nil, 2, 1), invalid, "x")
        expectError(ember_dataset_add_numeric(d, nil, x, 2, 1), invalid, "name")
        expectError(ember_dataset_add_numeric(d, "", x, 2, 1), invalid, "non-empty")
        expectError(ember_dataset_add_numeric(d, "num", x, 2, 7), invalid, "layout")
        expectError(ember_dataset_add_numeric(d, "num", [1, .infinity, 3, 4], 2, 0), invalid, "row 0, column 1", argument: "num")
        expectError(ember_dataset_add_numeric(d, "num", x, Int64.max, 1), invalid, "n_cols")
        check(ember_dataset_add_numeric(d, "num", x, 2, 1))
        expectError(ember_dataset_add_numeric(d, "num", x, 2, 1), invalid, "already has an input")
        expectError(ember_dataset_add_categorical(d, "categ", [0, -1], 1, 1), invalid, "code -1", argument: "categ")
        // Two columns: the first bad code in the caller's layout is reported with its row and column.
        expectError(ember_dataset_add_categorical(d, "c2", [0, 1, 5, -2], 2, 1), invalid, "row 1, column 1 (0-based) holds code -2", argument: "c2")
        expectError(ember_dataset_add_categorical(d, "c2", [0, -3, -4, 1], 2, 0), invalid, "row 0, column 1 (0-based) holds code -3", argument: "c2")
        expectError(ember_dataset_add_categorical(d, "c2", [0, 1, 1 << 24, 0], 2, 0), invalid, "row 1, column 0 (0-based) holds code 16777216")
        expectError(ember_dataset_add_categorical(d, "categ", nil, 1, 1), invalid, "codes")
        check(ember_dataset_add_categorical(d, "categ", [0, 2], 1, 1))
        let dims: [Int64] = [2, 1, 2]
        expectError(ember_dataset_add_tensor(d, "image", x, dims, 1, 1), invalid, "rank")
        expectError(ember_dataset_add_tensor(d, "image", x, dims, 6, 1), invalid, "rank")
        expectError(ember_dataset_add_tensor(d, "image", x, nil, 3, 1), invalid, "shape")
        expectError(ember_dataset_add_tensor(d, "image", x, [3, 1, 2], 3, 1), shape, "shape[0] is 3")
        expectError(ember_dataset_add_tensor(d, "image", x, [2, 0, 2], 3, 1), invalid, "shape")
        expectError(ember_dataset_add_tensor(d, "image", [1, 2, .nan, 4], dims, 3, 1), invalid, "row 0", argument: "image")
        check(ember_dataset_add_tensor(d, "image", x, dims, 3, 1))
        let bytes: [UInt8] = [0, 255, 51, 102]
        expectError(ember_dataset_add_bytes(d, "pixels", bytes, dims, 1, 1), invalid, "rank")
        expectError(ember_dataset_add_bytes(d, "pixels", nil, dims, 3, 1), invalid, "x")
        expectError(ember_dataset_add_bytes(d, "pixels", bytes, [3, 1, 2], 3, 1), shape, "shape[0] is 3")
        expectError(ember_dataset_add_bytes(d, "pixels", bytes, dims, 3, .nan), invalid, "finite and non-zero", argument: "scale")
        expectError(ember_dataset_add_bytes(d, "pixels", bytes, dims, 3, 0), invalid, "non-zero", argument: "scale")
        expectError(ember_dataset_add_bytes(d, "image", bytes, dims, 3, 1), invalid, "already has an input named 'image'")
        check(ember_dataset_add_bytes(d, "pixels", bytes, dims, 3, 1.0 / 255))
        expectError(ember_dataset_set_target(d, [1], 1), shape, "one value per row", argument: "length")
        expectError(ember_dataset_set_target(d, nil, 2), invalid, "y")
        expectError(ember_dataset_set_target(d, [1, .nan], 2), invalid, "target 1", argument: "y")
        check(ember_dataset_set_target(d, [1, 0], 2))
        expectError(ember_dataset_rows(d, nil), invalid, "out_rows")
        expectError(ember_dataset_rows(nil, nil), invalid, "dataset")
    }

    func testIntegerClassTargets() throws {
        var d: OpaquePointer?
        check(ember_dataset_new(&d, 3))
        defer { _ = ember_dataset_free(d) }
        check(ember_dataset_add_numeric(d, "num", [0, 1, 2, 3, 4, 5], 2, 1))
        expectError(ember_dataset_set_target_classes(d, [0, 1], 2), shape, "[length] the target needs one class per row (3), got 2", argument: "length")
        expectError(ember_dataset_set_target_classes(d, nil, 3), invalid, "[y] is NULL", argument: "y")
        expectError(ember_dataset_set_target_classes(d, [0, -2, 1], 3), invalid, "[y] target 1 (0-based) is -2; expected a class index >= 0", argument: "y")
        expectError(ember_dataset_set_target_classes(nil, [0, 1, 2], 3), invalid, "dataset")
        var detail = ember_error_detail_layout()
        check(ember_dataset_set_target_classes(d, [0, 1, 2], 3))
        XCTAssertEqual(withUnsafeMutableBytes(of: &detail) { ember_last_error_detail($0.baseAddress) }, ok)

        // Training on integer targets gives exactly the weights of the same targets as doubles,
        // and a class out of the model's range is named with its row.
        let (x, y) = clusters()
        let floats = try makeData(x, y, rows: 30)
        defer { _ = ember_dataset_free(floats) }
        let ints = try makeData(x, nil, rows: 30)
        defer { _ = ember_dataset_free(ints) }
        check(ember_dataset_set_target_classes(ints, y.map { Int32($0) }, 30))
        var weights: [[Double]] = []
        for data in [floats, ints] {
            let model = try makeModel()
            defer { _ = ember_model_free(model) }
            var t: OpaquePointer?
            check(ember_trainer_new(&t, model, #"{"batch_size": 8, "optimizer": {"lr": 0.05}, "measures_valid": ["accuracy"]}"#))
            defer { _ = ember_trainer_free(t) }
            _ = text { ember_trainer_fit(t, data, data, 3, 0, 3, $0) }
            // The first layer's weight [8, 2].
            let names = (json(text { ember_model_parameters(model, $0) }) as? [[String: Any]])?.compactMap { $0["name"] as? String } ?? []
            var w = [Double](repeating: 0, count: 8 * 2)
            check(ember_model_get_parameter(model, try XCTUnwrap(names.first), &w, 16))
            weights.append(w)
        }
        XCTAssertEqual(weights[0], weights[1])
        XCTAssertNotEqual(weights[0], [Double](repeating: 0, count: 16))
        let model = try makeModel()
        defer { _ = ember_model_free(model) }
        var t: OpaquePointer?
        check(ember_trainer_new(&t, model, "{}"))
        defer { _ = ember_trainer_free(t) }
        check(ember_dataset_set_target_classes(ints, (0..<30).map { $0 == 4 ? 3 : 0 }, 30))
        expectError(ember_trainer_fit(t, ints, nil, 1, 0, 0, nil), invalid, "target 4 (0-based) is 3.0; expected a class index in 0..<3", argument: "target")
    }

    func testTensorLayoutsAgree() throws {
        // A [2, 1, 2, 3] tensor: column-major (R) and row-major (C) copies give the same tensor.
        let dims = [2, 1, 2, 3]
        var rowMajor = [Double](repeating: 0, count: 12), colMajor = [Double](repeating: 0, count: 12)
        for n in 0..<2 { for h in 0..<2 { for w in 0..<3 {
            let v = Double(100 * n + 10 * h + w)
            rowMajor[((n * 1) * 2 + h) * 3 + w] = v
            colMajor[n + 2 * (0 + 1 * (h + 2 * w))] = v
        } } }
        let t1 = try tensor(from: rowMajor, shape: dims, columnMajor: false, argument: "x")
        let t2 = try tensor(from: colMajor, shape: dims, columnMajor: true, argument: "x")
        XCTAssertEqual(t1.data, t2.data)
        XCTAssertEqual(t1.data[3], 10, "row-major order: n, c, h, w (element [0, 0, 1, 0])")
    }

    func testTrainerConfigErrors() throws {
        let model = try makeModel()
        defer { _ = ember_model_free(model) }
        var t: OpaquePointer?
        func new(_ config: String) -> Int32 { ember_trainer_new(&t, model, config) }
        expectError(ember_trainer_new(nil, model, "{}"), invalid, "out_trainer")
        expectError(ember_trainer_new(&t, nil, "{}"), invalid, "model")
        expectError(ember_trainer_new(&t, model, nil), invalid, "config_json")
        expectError(new(#"{"batch_size": 0}"#), invalid, "integer in 1", argument: "batch_size")
        expectError(new(#"{"batch_size": 2.5}"#), invalid, "integer", argument: "batch_size")
        expectError(new(#"{"shuffle": 1}"#), invalid, "true or false", argument: "shuffle")
        expectError(new(#"{"optimizer": {"kind": "adamax"}}"#), invalid, "\"sgd\"", argument: "optimizer.kind")
        expectError(new(#"{"optimizer": {"kind": "sgd", "beta1": 0.9}}"#), invalid, "not an option of sgd", argument: "optimizer.beta1")
        expectError(new(#"{"optimizer": {"kind": "adam", "lr": -1}}"#), invalid, "opt.lr")
        expectError(new(#"{"optimizer": {"kind": "adam", "betas": [0.9]}}"#), invalid, "two numbers", argument: "optimizer.betas")
        expectError(new(#"{"optimizer": {"kind": "sgd", "nesterov": true}}"#), invalid, "nesterov")
        expectError(new(#"{"loss": {"kind": "mse"}}"#), invalid, "does not fit a multiclass model", argument: "loss.kind")
        expectError(new(#"{"loss": {"kind": "cross_entropy", "class_weights": [1, 2]}}"#), invalid, "one weight", argument: "loss.class_weights")
        expectError(new(#"{"loss": {"kind": "cross_entropy", "pos_weight": [2]}}"#), invalid, "bce_with_logits only")
        expectError(new(#"{"loss": {"reduction": "median"}}"#), invalid, "\"mean\"", argument: "loss.reduction")
        expectError(new(#"{"measures_valid": ["rmse"]}"#), invalid, "regression measure", argument: "measures_valid")
        expectError(new(#"{"measures_valid": ["auc"]}"#), invalid, "unknown measure")
        expectError(new(#"{"schedule": {"kind": "step"}}"#), invalid, "step_size")
        expectError(new(#"{"schedule": {"kind": "warmup"}}"#), invalid, "\"step\"", argument: "schedule.kind")
        expectError(new(#"{"patience": -1}"#), invalid, "patience")
        expectError(new(#"{"min_delta": -0.1}"#), invalid, ">= 0", argument: "min_delta")
        expectError(new(#"{"epochs": 3}"#), invalid, "not a known option", argument: "epochs")
        XCTAssertNil(t)
        check(new(#"{"optimizer": {"kind": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": true}, "loss": {"kind": "cross_entropy", "class_weights": [1, 2, 1], "reduction": "sum"}, "schedule": {"kind": "one_cycle", "max_lr": 0.1, "total_steps": 100}}"#))
        check(ember_trainer_free(t))
    }

    func testSlicesValidationHostScoringAndOptions() throws {
        let model = try makeModel()
        defer { _ = ember_model_free(model) }
        let (x, y) = clusters()
        let data = try makeData(x, y, rows: 30)
        defer { _ = ember_dataset_free(data) }
        let unlabelled = try makeData(x, nil, rows: 30)
        defer { _ = ember_dataset_free(unlabelled) }
        var t: OpaquePointer?
        check(ember_trainer_new(&t, model, #"{"batch_size": 4, "patience": 1, "host_scoring": true, "measures_valid": ["accuracy"]}"#))
        defer { _ = ember_trainer_free(t) }
        var rows: Int64 = 0, cols: Int64 = 0
        var buffer = [Double](repeating: 0, count: 90)
        expectError(ember_trainer_valid_predictions(t, 1, nil, 0, &rows, &cols), state, "no validation has run yet")
        // 30 rows in batches of 4: 8 batches an epoch; 3 batches stop inside the first epoch.
        XCTAssertEqual(text { ember_trainer_fit(t, data, data, 1, 3, 0, $0) }, "[]")
        var st = try XCTUnwrap(json(text { ember_trainer_state(t, $0) }) as? [String: Any])
        XCTAssertEqual(st["epoch_in_progress"] as? Bool, true)
        XCTAssertEqual(st["batches_in_epoch"] as? Int, 3)
        let rec = try XCTUnwrap(json(text { ember_trainer_fit(t, data, data, 1, 0, 0, $0) }) as? [[String: Any]])
        XCTAssertEqual(rec.count, 1)
        XCTAssertNotNil(rec[0]["valid_loss"])
        XCTAssertNotNil((rec[0]["valid"] as? [String: Any])?["accuracy"])
        check(ember_trainer_valid_predictions(t, 1, nil, 0, &rows, &cols))
        XCTAssertEqual([rows, cols], [30, 3])
        check(ember_trainer_valid_predictions(t, 1, &buffer, 90, nil, nil))
        XCTAssertEqual(buffer[0] + buffer[30] + buffer[60], 1, accuracy: 1e-6)
        expectError(ember_trainer_valid_predictions(t, 1, &buffer, 10, nil, nil), shape, "out_len")
        var stop: Int32 = -1
        check(ember_trainer_report_score(t, 0.9, 1, &stop))
        XCTAssertEqual(stop, 0)
        expectError(ember_trainer_report_score(t, .nan, 1, &stop), invalid, "finite", argument: "score")
        check(ember_trainer_fit(t, data, data, 1, 0, 0, nil))
        check(ember_trainer_report_score(t, 0.5, 1, &stop))
        XCTAssertEqual(stop, 1, "patience 1: one validation without improvement stops")
        st = try XCTUnwrap(json(text { ember_trainer_state(t, $0) }) as? [String: Any])
        XCTAssertEqual(st["stopped"] as? Bool, true)
        XCTAssertEqual(st["best_epoch"] as? Int, 1)
        check(ember_trainer_finish(t))

        check(ember_trainer_set_option(t, "lr", 0.01, -1))
        check(ember_trainer_set_option(t, "lr", 0.02, 0))
        st = try XCTUnwrap(json(text { ember_trainer_state(t, $0) }) as? [String: Any])
        XCTAssertEqual(st["lr"] as? [Double], [0.02])
        expectError(ember_trainer_set_option(t, "learning_rate", 0.1, -1), invalid, "unknown hyperparameter")
        expectError(ember_trainer_set_option(t, "lr", 0.1, 3), invalid, "group 3 does not exist")
        expectError(ember_trainer_set_option(t, "lr", 0.1, -2), invalid, "group")
        expectError(ember_trainer_set_option(t, "lr", .nan, -1), invalid, "finite")
        expectError(ember_trainer_set_option(t, nil, 0.1, -1), invalid, "name")

        var fresh: OpaquePointer?
        check(ember_trainer_new(&fresh, model, "{}"))
        defer { _ = ember_trainer_free(fresh) }
        expectError(ember_trainer_fit(fresh, unlabelled, nil, 1, 0, 0, nil), invalid, "no target")
        expectError(ember_trainer_fit(fresh, data, unlabelled, 1, 0, 0, nil), invalid, "validation data has no target")
        expectError(ember_trainer_fit(fresh, data, nil, -1, 0, 0, nil), invalid, "max_epochs")
        expectError(ember_trainer_fit(fresh, data, nil, 1, -1, 0, nil), invalid, "max_batches")
        expectError(ember_trainer_fit(fresh, data, nil, 1, 0, -1, nil), invalid, "planned_epochs")
        expectError(ember_trainer_fit(fresh, nil, nil, 1, 0, 0, nil), invalid, "train")
        expectError(ember_trainer_fit(fresh, data, model, 1, 0, 0, nil), invalid, "not a live ember_dataset", argument: "valid")
        expectError(ember_trainer_fit(model, data, nil, 1, 0, 0, nil), invalid, "not a live ember_trainer")
        // A bad target is reported with its row.
        var badTarget: OpaquePointer?
        check(ember_dataset_new(&badTarget, 2))
        defer { _ = ember_dataset_free(badTarget) }
        check(ember_dataset_add_numeric(badTarget, "num", [1, 2, 3, 4], 2, 1))
        check(ember_dataset_set_target(badTarget, [0, 5], 2))
        expectError(ember_trainer_fit(fresh, badTarget, nil, 1, 0, 0, nil), invalid, "target 1 (0-based) is 5.0", argument: "target")
        expectError(ember_trainer_state(fresh, nil), invalid, "out_json")
        expectError(ember_trainer_finish(nil), invalid, "trainer")
    }

    func testParametersRNGFreezeAndSnapshots() throws {
        let model = try makeModel()
        defer { _ = ember_model_free(model) }
        let list = try XCTUnwrap(json(text { ember_model_parameters(model, $0) }) as? [[String: Any]])
        XCTAssertEqual(list.map { $0["name"] as? String }, ["linear_0.weight", "linear_0.bias", "head.weight", "head.bias"])
        XCTAssertEqual(list[0]["shape"] as? [Int], [8, 2])
        var w = [Double](repeating: 0, count: 16)
        check(ember_model_get_parameter(model, "linear_0.weight", &w, 16))
        expectError(ember_model_get_parameter(model, "linear_0.weight", &w, 15), shape, "16 values", argument: "out_len")
        expectError(ember_model_get_parameter(model, "linear_9.weight", &w, 16), invalid, "no parameter or buffer", argument: "name")
        expectError(ember_model_get_parameter(model, "linear_0.weight", nil, 16), invalid, "out")
        var snapshot: OpaquePointer?
        check(ember_model_snapshot_weights(model, &snapshot))
        defer { _ = ember_bytes_free(snapshot) }
        var sp: UnsafePointer<UInt8>?
        var ss: Int64 = 0
        check(ember_bytes_data(snapshot, &sp, &ss))
        let twice = w.map { $0 * 2 }
        check(ember_model_set_parameter(model, "linear_0.weight", twice, 16))
        var back = [Double](repeating: 0, count: 16)
        check(ember_model_get_parameter(model, "linear_0.weight", &back, 16))
        XCTAssertEqual(back, twice.map { Double(Float($0)) })
        expectError(ember_model_set_parameter(model, "linear_0.weight", twice, 3), shape, "16 values", argument: "length")
        expectError(ember_model_set_parameter(model, "linear_0.weight", [Double](repeating: .nan, count: 16), 16), invalid, "finite", argument: "values")
        check(ember_model_restore_weights(model, sp, ss, 1))
        check(ember_model_get_parameter(model, "linear_0.weight", &back, 16))
        XCTAssertEqual(back, w)
        expectError(ember_model_restore_weights(model, [1, 2, 3], 3, 1), corrupt, "safetensors")
        expectError(ember_model_restore_weights(model, nil, 3, 1), invalid, "bytes")

        var s0: [UInt64] = [0, 0, 0, 0], s1: [UInt64] = [0, 0, 0, 0]
        check(ember_model_get_rng_state(model, &s0))
        check(ember_model_set_rng_state(model, [1, 2, 3, 4]))
        check(ember_model_get_rng_state(model, &s1))
        XCTAssertEqual(s1, [1, 2, 3, 4])
        expectError(ember_model_set_rng_state(model, [0, 0, 0, 0]), invalid, "all zeros")
        expectError(ember_model_set_rng_state(model, nil), invalid, "state")
        expectError(ember_model_get_rng_state(model, nil), invalid, "out_state")

        var matched: Int64 = 0
        check(ember_model_freeze(model, "linear_0.*", 1, &matched))
        XCTAssertEqual(matched, 2)
        let frozen = try XCTUnwrap(json(text { ember_model_parameters(model, $0) }) as? [[String: Any]])
        XCTAssertEqual(frozen.map { $0["frozen"] as? Bool }, [true, true, false, false])
        expectError(ember_model_freeze(model, "encoder.*", 1, &matched), invalid, "matches no parameter", argument: "pattern")
        expectError(ember_model_freeze(model, nil, 1, &matched), invalid, "pattern")
        // A frozen layer does not move in training.
        let (x, y) = clusters()
        let data = try makeData(x, y, rows: 30)
        defer { _ = ember_dataset_free(data) }
        var t: OpaquePointer?
        check(ember_trainer_new(&t, model, #"{"batch_size": 8}"#))
        defer { _ = ember_trainer_free(t) }
        check(ember_trainer_fit(t, data, nil, 2, 0, 0, nil))
        check(ember_model_get_parameter(model, "linear_0.weight", &back, 16))
        XCTAssertEqual(back, w)
        check(ember_model_freeze(model, "*", 0, nil))
    }

    func testSameSeedSameWeightsThroughTheABI() throws {
        func run() throws -> [Double] {
            let model = try makeModel(seed: "123456789012345")
            defer { _ = ember_model_free(model) }
            let (x, y) = clusters()
            let data = try makeData(x, y, rows: 30)
            defer { _ = ember_dataset_free(data) }
            var t: OpaquePointer?
            check(ember_trainer_new(&t, model, #"{"batch_size": 4}"#))
            defer { _ = ember_trainer_free(t) }
            check(ember_trainer_fit(t, data, nil, 3, 0, 0, nil))
            var w = [Double](repeating: 0, count: 16)
            check(ember_model_get_parameter(model, "linear_0.weight", &w, 16))
            return w
        }
        XCTAssertEqual(try run(), try run())
    }

    func testHandlesAreCheckedAndCounted() throws {
        func counts() -> [Int64] {
            var a: Int64 = 0, b: Int64 = 0, c: Int64 = 0, d: Int64 = 0
            check(ember_live_handles(&a, &b, &c, &d))
            return [a, b, c, d]
        }
        let before = counts()
        let m = try makeModel()
        var t: OpaquePointer?
        check(ember_trainer_new(&t, m, "{}"))
        XCTAssertEqual(counts(), [before[0] + 1, before[1], before[2] + 1, before[3]])
        check(ember_model_free(m))
        // The trainer keeps its own reference: training state survives the model handle.
        var s: UnsafePointer<CChar>?
        check(ember_trainer_state(t, &s))
        expectError(ember_model_free(m), invalid, "not a live ember_model")
        var cols: Int32 = 0
        expectError(ember_model_prediction_columns(m, &cols), invalid, "not a live ember_model")
        expectError(ember_trainer_free(m), invalid, "not a live ember_trainer")
        expectError(ember_dataset_free(t), invalid, "not a live ember_dataset")
        check(ember_trainer_free(t))
        for free in [ember_model_free, ember_dataset_free, ember_trainer_free, ember_bytes_free] { check(free(nil)) }
        XCTAssertEqual(counts(), before)
        XCTAssertEqual(lastError(), "", "a successful call clears the last error")
    }

    func testEveryNullOutParameterIsAnError() throws {
        let model = try makeModel()
        defer { _ = ember_model_free(model) }
        let (x, y) = clusters()
        let data = try makeData(x, y, rows: 30)
        defer { _ = ember_dataset_free(data) }
        var t: OpaquePointer?
        check(ember_trainer_new(&t, model, "{}"))
        defer { _ = ember_trainer_free(t) }
        var bytes: OpaquePointer?
        check(ember_model_serialize(model, &bytes))
        defer { _ = ember_bytes_free(bytes) }
        var p: UnsafePointer<UInt8>?
        var n: Int64 = 0
        expectError(ember_bytes_data(bytes, nil, &n), invalid, "out_data")
        expectError(ember_bytes_data(bytes, &p, nil), invalid, "out_size")
        expectError(ember_model_info(model, nil), invalid, "out_json")
        expectError(ember_model_parameters(model, nil), invalid, "out_json")
        expectError(ember_model_snapshot_weights(model, nil), invalid, "out_bytes")
        expectError(ember_model_deserialize(nil, [0], 1), invalid, "out_model")
        expectError(ember_model_load(nil, "x"), invalid, "out_model")
        expectError(ember_model_logits(model, data, 0, 1, nil, 30), invalid, "out")
        expectError(ember_dataset_add_categorical(nil, "c", [0], 1, 1), invalid, "dataset")
        expectError(ember_dataset_add_tensor(data, nil, x, [30, 2], 2, 1), invalid, "name")
        var other: OpaquePointer?
        expectError(ember_trainer_new(&other, model, #"{"batch_size": 1"#), invalid, "not valid JSON")
        XCTAssertNil(other)
        expectError(ember_trainer_report_score(nil, 1, 1, nil), invalid, "trainer")
        expectError(ember_trainer_valid_predictions(t, 5, nil, 0, nil, nil), invalid, "layout")
        expectError(ember_model_set_host_metadata(model, nil, "v"), invalid, "key")
        expectError(ember_model_get_parameter(nil, "head.bias", nil, 0), invalid, "model")
        expectError(ember_model_set_parameter(model, "head.bias", nil, 3), invalid, "values")
        expectError(ember_model_freeze(nil, "*", 1, nil), invalid, "model")
        check(ember_model_set_host_metadata(model, "k", String(repeating: "v", count: 100_000)))
    }

    /// ember_vocabulary, ember_model_restore_matching, ember_trainer_checkpoint and
    /// ember_trainer_resume, as a C caller uses them.
    func testVocabularyWarmStartAndResume() throws {
        let vocabulary = json(text { ember_vocabulary($0) }) as? [String: Any]
        XCTAssertTrue((vocabulary?["ops"] as? [String])?.contains("fn") ?? false)
        XCTAssertEqual((vocabulary?["losses"] as? [String: [String]])?["binary"]?.first, "bce_with_logits")
        XCTAssertEqual((vocabulary?["measures"] as? [[String: Any]])?.first?["name"] as? String, "accuracy")

        let (x, y) = clusters()
        let data = try makeData(x, y, rows: 30)
        defer { _ = ember_dataset_free(data) }
        // Train 2 epochs, checkpoint, continue 2 more on a copy: equals 4 epochs in one go.
        func trained(_ epochs: Int32) throws -> (OpaquePointer, OpaquePointer) {
            let m = try makeModel()
            var t: OpaquePointer?
            check(ember_trainer_new(&t, m, #"{"batch_size": 8}"#))
            check(ember_trainer_fit(t, data, nil, epochs, 0, 0, nil))
            return (m, try XCTUnwrap(t))
        }
        let (full, fullTrainer) = try trained(4)
        let (part, partTrainer) = try trained(2)
        defer { for p in [full, part] { _ = ember_model_free(p) }; for t in [fullTrainer, partTrainer] { _ = ember_trainer_free(t) } }
        // The contents of an ember_bytes result, copied out; the handle is freed.
        func bytes(_ produce: (UnsafeMutablePointer<OpaquePointer?>) -> Int32) -> [UInt8] {
            var b: OpaquePointer?
            check(produce(&b))
            defer { _ = ember_bytes_free(b) }
            var p: UnsafePointer<UInt8>?
            var n: Int64 = 0
            check(ember_bytes_data(b, &p, &n))
            return Array(UnsafeBufferPointer(start: p, count: Int(n)))
        }
        func weights(_ m: OpaquePointer?) -> [UInt8] { bytes { ember_model_snapshot_weights(m, $0) } }
        let checkpoint = bytes { ember_trainer_checkpoint(partTrainer, $0) }
        let serialized = bytes { ember_model_serialize(part, $0) }
        var copy: OpaquePointer?
        check(ember_model_deserialize(&copy, serialized, Int64(serialized.count)))
        defer { _ = ember_model_free(copy) }
        var resumed: OpaquePointer?
        check(ember_trainer_new(&resumed, copy, #"{"batch_size": 8}"#))
        defer { _ = ember_trainer_free(resumed) }
        check(ember_trainer_resume(resumed, checkpoint, Int64(checkpoint.count)))
        check(ember_trainer_fit(resumed, data, nil, 2, 0, 0, nil))
        XCTAssertEqual(weights(copy), weights(full), "2 + 2 epochs equal 4")
        expectError(ember_trainer_resume(resumed, [1, 2, 3], 3), corrupt, "[safetensors] need at least 8 bytes")
        expectError(ember_trainer_checkpoint(resumed, nil), invalid, "out_bytes")

        // Warm start into a binary model: the body loads, the head is reported.
        let binary = try makeModel(task: "binary", classes: "[\"yes\", \"no\"]")
        defer { _ = ember_model_free(binary) }
        let w = weights(full)
        let report = json(text { out in w.withUnsafeBufferPointer { ember_model_restore_matching(binary, $0.baseAddress, Int64(w.count), out) } }) as? [String: Any]
        XCTAssertEqual(report?["loaded"] as? [String], ["linear_0.weight", "linear_0.bias"])
        XCTAssertEqual((report?["mismatched"] as? [[String: Any]])?.map { $0["name"] as? String }, ["head.weight", "head.bias"])
        expectError(ember_model_restore_matching(binary, [0], 1, nil), invalid, "out_json")
    }

    func testLastErrorIsPerThread() throws {
        expectError(ember_set_num_threads(0), invalid, "num_threads")
        let t = Thread { XCTAssertEqual(String(cString: cember_last_error()), "") }
        t.start()
        while !t.isFinished { usleep(1000) }
        XCTAssertTrue(lastError().contains("num_threads"))
    }
}

/// The layout of `ember_error_detail` (include/ember.h), for reading it from Swift.
struct ember_error_detail_layout {
    var code: Int32 = 0
    var message: UnsafePointer<CChar> = StaticStrings.version
    var op: UnsafePointer<CChar> = StaticStrings.version
    var layer: UnsafePointer<CChar> = StaticStrings.version
    var argument: UnsafePointer<CChar> = StaticStrings.version
    var index: Int64 = 0
    var expected: UnsafePointer<CChar> = StaticStrings.version
    var got: UnsafePointer<CChar> = StaticStrings.version
}

/// Image transforms and byte inputs through the C ABI.
extension CABITests {
    func testTransformsOutputShape() {
        var out = [Int64](repeating: 0, count: 3)
        XCTAssertEqual(ember_transforms_output_shape(#"[{"op": "center_crop", "size": 20}, {"op": "grayscale"}]"#, [3, 32, 30], 3, &out), 0)
        XCTAssertEqual(out, [1, 20, 20])
        XCTAssertEqual(ember_transforms_output_shape(#"[{"op": "random_crop", "size": 40}]"#, [3, 32, 30], 3, &out), shape)
        XCTAssertTrue(lastError().contains("random_crop"), lastError())
        XCTAssertEqual(ember_transforms_output_shape(#"[{"op": "blur"}]"#, [3, 32, 30], 3, &out), invalid)
        XCTAssertTrue(lastError().contains("blur"), lastError())
        XCTAssertEqual(ember_transforms_output_shape("[]", [3, 32], 2, &out), invalid)
        XCTAssertTrue(lastError().contains("rank"), lastError())
        XCTAssertEqual(ember_transforms_output_shape("[]", [3, 32, 30], 3, nil), invalid)
    }

    func testModelConfigTransformsAndReadInput() throws {
        var net: UnsafePointer<CChar>?
        XCTAssertEqual(ember_architecture("lenet", #"{"inputs": {"image": [1, 12, 12]}}"#, &net), 0)
        guard let net else { return XCTFail("no network") }
        let description = String(cString: net)
        var model: OpaquePointer?
        let transforms = #"{"image": {"data_shape": [1, 16, 16], "transforms": [{"op": "center_crop", "size": 12}, {"op": "random_horizontal_flip"}]}}"#
        XCTAssertEqual(ember_model_new(&model, #"{"network": \#(description), "task": "binary", "seed": "1", "transforms": \#(transforms)}"#), 0, lastError())
        defer { _ = ember_model_free(model) }
        let wrong = #"{"image": {"data_shape": [1, 16, 16], "transforms": [{"op": "center_crop", "size": 10}]}}"#
        var other: OpaquePointer?
        XCTAssertEqual(ember_model_new(&other, #"{"network": \#(description), "task": "binary", "seed": "1", "transforms": \#(wrong)}"#), shape)
        XCTAssertTrue(lastError().contains("the network reads [1, 12, 12]"), lastError())

        // Bytes in, read back as the engine reads them (byte / 255), and predicted on.
        var data: OpaquePointer?
        XCTAssertEqual(ember_dataset_new(&data, 2), 0)
        defer { _ = ember_dataset_free(data) }
        let bytes = (0..<512).map { UInt8($0 % 256) }
        XCTAssertEqual(ember_dataset_add_bytes(data, "image", bytes, [2, 1, 16, 16], 4, 1.0 / 255), 0)
        var values = [Double](repeating: 0, count: 512)
        XCTAssertEqual(ember_dataset_read_input(data, "image", &values, 512), 0)
        XCTAssertEqual(values, bytes.map { Double(Float($0) / 255) })
        XCTAssertEqual(ember_dataset_read_input(data, "image", &values, 511), shape)
        XCTAssertEqual(ember_dataset_read_input(data, "pixels", &values, 512), invalid)
        XCTAssertTrue(lastError().contains("no input 'pixels'"), lastError())
        var logits = [Double](repeating: 0, count: 2)
        XCTAssertEqual(ember_model_logits(model, data, 2, 0, &logits, 2), 0, lastError())
        XCTAssertTrue(logits.allSatisfy(\.isFinite))
    }
}
