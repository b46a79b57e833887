import CEmberSupport
import Foundation
import XCTest

@testable import EmberCABI

/// Drives the exported C functions the way a C caller does, including every error path:
/// nothing may trap, every failure is a status code plus a message naming the argument.
final class CABITests: XCTestCase {
    private func lastError() -> String { String(cString: cember_last_error()) }

    private func expectError(_ status: Int32, _ code: Int32, _ needle: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(status, code, "status (message: \(lastError()))", file: file, line: line)
        XCTAssertTrue(lastError().contains(needle), "'\(lastError())' should contain '\(needle)'", file: file, line: line)
    }

    private func makeModel(task: Int32 = 2, classes: Int32 = 3, inputs: Int32 = 2) throws -> OpaquePointer {
        var model: OpaquePointer?
        var neurons: [Int32] = [8]
        XCTAssertEqual(ember_mlp_new(&model, task, classes, inputs, &neurons, 1, 0, nil, 1, 7), 0, lastError())
        return try XCTUnwrap(model)
    }

    func testTrainPredictSerializeRoundTrip() throws {
        let model = try makeModel()
        defer { _ = ember_model_free(model) }
        XCTAssertEqual(ember_model_set_training(model, 4, 1, 1, 0.05, 0, 0, 0.9, 0.999, 1e-8), 0, lastError())
        // Three separable clusters, column-major.
        let n = 30
        var x = [Double](repeating: 0, count: n * 2)
        var y = [Double](repeating: 0, count: n)
        for i in 0..<n {
            let c = i % 3
            x[i] = Double(c) * 3 + Double(i % 5) * 0.1
            x[n + i] = Double(c == 1 ? 1 : -1) + Double(i % 4) * 0.1
            y[i] = Double(c)
        }
        var data: OpaquePointer?
        XCTAssertEqual(ember_dataset_new(&data, x, Int64(n), 2, y), 0, lastError())
        defer { _ = ember_dataset_free(data) }
        var losses = [Double](repeating: 0, count: 40)
        XCTAssertEqual(ember_model_fit(model, data, 40, &losses), 0, lastError())
        XCTAssertLessThan(losses[39], losses[0] * 0.2)
        var epochs: Int32 = 0
        XCTAssertEqual(ember_model_epochs(model, &epochs), 0)
        XCTAssertEqual(epochs, 40)

        var prob = [Double](repeating: 0, count: n * 3)
        XCTAssertEqual(ember_model_predict(model, x, Int64(n), 2, &prob, Int64(n * 3)), 0, lastError())
        for i in 0..<n {
            let row = (0..<3).map { prob[$0 * n + i] }
            XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-6)
            XCTAssertEqual(row.firstIndex(of: row.max()!), Int(y[i]))
        }

        var size: Int64 = 0
        XCTAssertEqual(ember_model_serialize(model, nil, 0, &size), 0)
        var bytes = [UInt8](repeating: 0, count: Int(size))
        expectError(ember_model_serialize(model, &bytes, size - 1, &size), 1, "capacity")
        XCTAssertEqual(ember_model_serialize(model, &bytes, size, &size), 0)
        var copy: OpaquePointer?
        XCTAssertEqual(ember_model_deserialize(&copy, bytes, size), 0, lastError())
        defer { _ = ember_model_free(copy) }
        var prob2 = [Double](repeating: 0, count: n * 3)
        XCTAssertEqual(ember_model_predict(copy, x, Int64(n), 2, &prob2, Int64(n * 3)), 0)
        XCTAssertEqual(prob, prob2)
    }

    func testArgumentErrors() throws {
        var model: OpaquePointer?
        var neurons: [Int32] = [4, 0]
        expectError(ember_mlp_new(nil, 0, 0, 2, &neurons, 1, 0, nil, 1, 1), 1, "out_model")
        expectError(ember_mlp_new(&model, 3, 0, 2, &neurons, 1, 0, nil, 1, 1), 1, "task")
        expectError(ember_mlp_new(&model, 2, 1, 2, &neurons, 1, 0, nil, 1, 1), 1, "n_classes")
        expectError(ember_mlp_new(&model, 0, 0, 0, &neurons, 1, 0, nil, 1, 1), 1, "n_inputs")
        expectError(ember_mlp_new(&model, 0, 0, 2, &neurons, 2, 0, nil, 1, 1), 1, "neurons")
        expectError(ember_mlp_new(&model, 0, 0, 2, nil, 1, 0, nil, 1, 1), 1, "neurons")
        expectError(ember_mlp_new(&model, 0, 0, 2, &neurons, -1, 0, nil, 1, 1), 1, "n_hidden")
        expectError(ember_mlp_new(&model, 0, 0, 2, &neurons, 1, .nan, nil, 1, 1), 1, "dropout")
        XCTAssertNil(model)

        let m = try makeModel(task: 0, classes: 0, inputs: 2)
        defer { _ = ember_model_free(m) }
        expectError(ember_model_set_training(m, 0, 1, 1, 0.1, 0, 0, 0.9, 0.999, 1e-8), 1, "batch_size")
        expectError(ember_model_set_training(m, 8, 1, 9, 0.1, 0, 0, 0.9, 0.999, 1e-8), 1, "optimizer")
        expectError(ember_model_set_training(m, 8, 1, 1, .infinity, 0, 0, 0.9, 0.999, 1e-8), 1, "opt.lr")
        expectError(ember_model_set_training(m, 8, 1, 1, 0.1, -1, 0, 0.9, 0.999, 1e-8), 1, "weight_decay")
        expectError(ember_model_set_training(m, 8, 1, 1, 0.1, 0, 0, 1.5, 0.999, 1e-8), 1, "opt.beta1")

        let x: [Double] = [1, 2, 3, 4]
        var data: OpaquePointer?
        expectError(ember_dataset_new(&data, x, 0, 2, x), 1, "n_rows")
        expectError(ember_dataset_new(&data, x, 2, -3, x), 1, "n_cols")
        expectError(ember_dataset_new(&data, nil, 2, 2, x), 1, "x")
        expectError(ember_dataset_new(&data, x, 2, 2, nil), 1, "y")
        XCTAssertEqual(ember_dataset_new(&data, x, 2, 2, [0, .nan]), 0)
        defer { _ = ember_dataset_free(data) }
        expectError(ember_model_fit(m, data, 1, nil), 1, "target 1 is nan")
        expectError(ember_model_fit(m, data, -1, nil), 1, "epochs")
        expectError(ember_model_fit(m, nil, 1, nil), 1, "dataset")
        expectError(ember_model_fit(m, m, 1, nil), 1, "not a live ember_dataset")

        var out = [Double](repeating: 0, count: 2)
        expectError(ember_model_predict(m, x, 2, 3, &out, 2), 2, "expects 2 input columns, got 3")
        expectError(ember_model_predict(m, x, 2, 2, &out, 3), 2, "out_len")
        expectError(ember_model_predict(m, x, 2, 2, nil, 2), 1, "out")
        expectError(ember_model_predict(m, x, -2, 2, &out, 2), 1, "n_rows")

        var copy: OpaquePointer?
        expectError(ember_model_deserialize(&copy, [1, 2, 3], 3), 4, "safetensors")
        expectError(ember_model_deserialize(&copy, nil, 3), 1, "bytes")
        expectError(ember_model_deserialize(&copy, [0], -1), 1, "length")
        expectError(ember_set_num_threads(0), 1, "num_threads")
        expectError(ember_blas_core_name(nil), 1, "out_name")
    }

    func testHandlesAreCheckedAndCounted() throws {
        var before: (Int64, Int64) = (0, 0)
        XCTAssertEqual(ember_live_handles(&before.0, &before.1), 0)
        let m = try makeModel()
        var now: (Int64, Int64) = (0, 0)
        XCTAssertEqual(ember_live_handles(&now.0, &now.1), 0)
        XCTAssertEqual(now.0, before.0 + 1)
        XCTAssertEqual(ember_model_free(m), 0)
        expectError(ember_model_free(m), 1, "not a live ember_model")
        var cols: Int32 = 0
        expectError(ember_model_prediction_columns(m, &cols), 1, "not a live ember_model")
        XCTAssertEqual(ember_model_free(nil), 0)
        XCTAssertEqual(ember_dataset_free(nil), 0)
        XCTAssertEqual(ember_live_handles(&now.0, &now.1), 0)
        XCTAssertEqual(now.0, before.0)
        XCTAssertEqual(String(cString: ember_last_error()!), "", "a successful call clears the last error")
    }

    func testLastErrorIsPerThread() throws {
        expectError(ember_set_num_threads(0), 1, "num_threads")
        let t = Thread { XCTAssertEqual(String(cString: cember_last_error()), "") }
        t.start()
        while !t.isFinished { usleep(1000) }
        XCTAssertTrue(lastError().contains("num_threads"))
    }
}
