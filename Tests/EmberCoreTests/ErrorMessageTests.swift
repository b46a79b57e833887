// Errors are API: kind and message text (op in brackets, the shapes, what was expected).
@testable import EmberCore
import EmberTestSupport
import XCTest

final class ErrorMessageTests: XCTestCase {
    func testTensorInitCountMismatch() {
        assertEmberError(.shapeMismatch, ["[tensor]", "shape [2, 3] needs 6 elements, got 5"]) {
            try Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5])
        }
    }

    func testTensorInitNegativeDimension() {
        assertEmberError(.invalidArgument, ["[tensor]", "negative dimension", "[2, -1]"]) {
            try Tensor(shape: [2, -1], data: [])
        }
        assertEmberError(.invalidArgument, ["[tensor]", "[-3]"]) { try Tensor(shape: [-3], repeating: 0) }
    }

    func testTensorInitOverflow() {
        assertEmberError(.overflow, ["[tensor]", "too many elements"]) {
            try Tensor(shape: [Int.max, 2], repeating: 0)
        }
    }

    func testTensorBasics() throws {
        let t = try Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(t.count, 6)
        XCTAssertEqual(t.rank, 2)
        XCTAssertNil(t.scalarValue)
        XCTAssertEqual(Tensor.scalar(2.5).scalarValue, 2.5)
        XCTAssertEqual(Tensor.scalar(2.5).shape, [])
        XCTAssertEqual(try Tensor.zeros([0, 4]).count, 0)
        XCTAssertEqual(try t.gatherRows([1, 1, 0]).data, [4, 5, 6, 4, 5, 6, 1, 2, 3])
        XCTAssertEqual(try t.gatherRows([1, 1, 0]).shape, [3, 3])
    }

    func testReshape() throws {
        let t = try Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])
        let r = try t.reshaped([3, 2])
        XCTAssertEqual(r.shape, [3, 2])
        XCTAssertEqual(r.data, t.data)
        XCTAssertEqual(try t.reshaped([6]).shape, [6])
        assertEmberError(.shapeMismatch, ["[reshape]", "cannot reshape [2, 3] (6 elements) to [4, 2]"]) {
            try t.reshaped([4, 2])
        }
        assertEmberError(.invalidArgument, ["[reshape]", "negative dimension", "[-2, -3]"]) {
            try t.reshaped([-2, -3])
        }
    }

    func testGatherRowsOutOfRange() throws {
        let t = try Tensor(shape: [2, 2], data: [1, 2, 3, 4])
        assertEmberError(.invalidArgument, ["[gather_rows]", "row index 2 out of range 0..<2"]) {
            try t.gatherRows([0, 2])
        }
        assertEmberError(.invalidArgument, ["[gather_rows]"]) { try Tensor.scalar(1).gatherRows([0]) }
        // Ranges (prediction batches) are copied in one piece, with the same checks.
        let rows = try Tensor(shape: [3, 2], data: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try rows.gatherRows(1..<3).data, [3, 4, 5, 6])
        XCTAssertEqual(try rows.gatherRows(1..<3).shape, [2, 2])
        XCTAssertEqual(try rows.gatherRows(2..<2).shape, [0, 2])
        XCTAssertEqual(try rows.gatherRows([2, 0][...]).data, [5, 6, 1, 2])
        assertEmberError(.invalidArgument, ["[gather_rows]", "row index 3 out of range 0..<3"]) { try rows.gatherRows(1..<5) }
        assertEmberError(.invalidArgument, ["[gather_rows]", "row index -1 out of range 0..<3"]) { try rows.gatherRows(-1..<2) }
        let codes = try IndexTensor(shape: [3, 2], data: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try codes.gatherRows(1..<3, op: "dataset").data, [3, 4, 5, 6])
        XCTAssertEqual(try codes.gatherRows(0..<0, op: "dataset").shape, [0, 2])
        XCTAssertEqual(try codes.gatherRows([2, 0], op: "dataset").data, [5, 6, 1, 2])
        assertEmberError(.invalidArgument, ["[dataset]", "row 3 out of range 0..<3"]) { try codes.gatherRows(2..<4, op: "dataset") }
    }

    func testLinearShapeMismatch() throws {
        let x = Variable(try Tensor(shape: [2, 4], repeating: 1))
        let w = Variable(try Tensor(shape: [5, 3], repeating: 1))
        assertEmberError(.shapeMismatch, ["[linear]", "expected input with 3 features, got 4", "[2, 4]", "[5, 3]"]) {
            try linear(x, weight: w, bias: nil)
        }
        let x3 = Variable(try Tensor(shape: [2, 3], repeating: 1))
        assertEmberError(.shapeMismatch, ["[linear]", "expected bias of shape [5], got [4]"]) {
            try linear(x3, weight: w, bias: Variable(try Tensor(shape: [4], repeating: 0)))
        }
        assertEmberError(.shapeMismatch, ["[linear]", "expected input with 3 features, got 6", "[6]"]) {
            try linear(Variable(try Tensor(shape: [6], repeating: 0)), weight: w, bias: nil)
        }
        assertEmberError(.shapeMismatch, ["[linear]", "weight of rank 2", "[3]"]) {
            try linear(x3, weight: Variable(try Tensor(shape: [3], repeating: 0)), bias: nil)
        }
    }

    func testOtherOpErrors() throws {
        assertEmberError(.invalidArgument, ["[log_softmax]", "axis 3 is out of range", "rank 3"]) {
            try logSoftmax(Variable(try Tensor(shape: [2, 2, 2], repeating: 0)), axis: 3)
        }
        assertEmberError(.invalidArgument, ["[mean]", "[0, 3]"]) {
            try mean(Variable(try Tensor(shape: [0, 3], repeating: 0)))
        }
        let x = Variable(try Tensor(shape: [2, 3], repeating: 1))
        assertEmberError(.shapeMismatch, ["[dropout]", "[3, 2]", "[2, 3]"]) {
            try dropout(x, mask: try Tensor(shape: [3, 2], repeating: 1))
        }
        var rng = RandomGenerator(seed: 1)
        assertEmberError(.invalidArgument, ["[dropout]", "p must be in [0, 1), got 1.0"]) {
            try dropout(x, p: 1, rng: &rng)
        }
        assertEmberError(.invalidArgument, ["[dropout]", "-0.5"]) { try dropout(x, p: -0.5, rng: &rng) }
        assertEmberError(.overflow, ["[matmul]", "m=4294967296"]) {
            var c: [Float] = [0]
            let a: [Float] = [0]
            try BLAS.gemm(transA: false, transB: false, m: 1 << 32, n: 1, k: 1, a: a, b: a, c: &c)
        }
        assertEmberError(.invalidArgument, ["[num_threads]", "got 0"]) { try BLAS.setNumThreads(0) }
    }

    func testEmberErrorDescriptionIsMessage() {
        let e = EmberError.shapeMismatch("op", "details")
        XCTAssertEqual(e.message, "[op] details")
        XCTAssertEqual(e.description, "[op] details")
        XCTAssertEqual(e.kind, .shapeMismatch)
        XCTAssertEqual(shapeString([]), "[]")
        XCTAssertEqual(shapeString([1, 22]), "[1, 22]")
    }
}
