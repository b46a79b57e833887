// Forward and backward of every differentiable EmberCore op against PyTorch: the "ops" section
// of Fixtures/core.json (tools/golden/generate.py) and, for convolution and pooling,
// Fixtures/conv.json (tools/golden/generate_conv.py). Each case holds the inputs, the op's
// parameters, an upstream gradient `seed`, PyTorch's output and the gradient of every
// differentiable input for loss = Σ output · seed. Tolerances: docs/architecture.md#numerics-contract.
@testable import EmberCore
import EmberTestSupport
import Foundation
import XCTest

/// How the engine runs one op of the fixture, and how closely it must agree.
private struct GoldenRunner {
    /// Tolerance of the forward output.
    var output: Tolerance
    /// Tolerance of the gradient of an input of `inputShape` when the output has `outputShape`.
    var gradient: (_ inputShape: [Int], _ outputShape: [Int]) -> Tolerance
    /// Builds the output from the case's parameters and its inputs (by fixture name).
    var build: (_ params: Case, _ inputs: [String: Variable]) throws -> Variable

    init(output: Tolerance, gradient: Tolerance, build: @escaping (Case, [String: Variable]) throws -> Variable) {
        self.output = output
        self.gradient = { _, _ in gradient }
        self.build = build
    }

    /// Elementwise tolerances where a gradient is elementwise too; `Tolerance.reduction` for the
    /// gradient of an operand that was broadcast, because that gradient is a sum over the
    /// broadcast dimensions (a reduction, summed in another order than PyTorch's).
    static func broadcasting(_ build: @escaping (Case, [String: Variable]) throws -> Variable) -> GoldenRunner {
        var r = GoldenRunner(output: .elementwise, gradient: .elementwise, build: build)
        r.gradient = { input, output in input == output ? .elementwise : .reduction }
        return r
    }
}

final class OpGoldenTests: XCTestCase {
    /// The "ops" object of a fixture, by op name.
    private static func goldenOps(_ fixture: Fixture) throws -> [String: [Case]] {
        guard let ops = fixture.root["ops"] as? [String: Any] else { throw FixtureError.malformed("no \"ops\" object") }
        var out: [String: [Case]] = [:]
        for (name, list) in ops {
            guard let a = list as? [Any] else { throw FixtureError.malformed("ops.\(name) is not a list") }
            out[name] = try a.map { try Case($0) }
        }
        return out
    }

    /// The "ops" of core.json.
    private var coreOps: [String: [Case]] = [:]

    override func setUpWithError() throws {
        coreOps = try Self.goldenOps(try Fixture.load("core"))
    }

    /// The convolution/pooling cases; an absent conv.json counts as no cases.
    private static func convOps() throws -> [String: [Case]] {
        do {
            return try goldenOps(try Fixture.load("conv"))
        } catch FixtureError.missing {
            return [:]
        }
    }

    // MARK: Coverage

    /// Every differentiable op has at least one PyTorch reference case (core.json or conv.json).
    func testEveryOpHasAGoldenCase() throws {
        var covered = coreOps
        for (name, cases) in try Self.convOps() { covered[name, default: []] += cases }
        let missing = OpKind.allCases.map(\.rawValue).filter { covered[$0]?.isEmpty ?? true }
        XCTAssertTrue(missing.isEmpty, "ops without a golden case: \(missing.joined(separator: ", "))")
    }

    /// Every op of core.json is an OpKind and is run by one of the tests below.
    func testEveryCoreGoldenOpIsRun() throws {
        for name in coreOps.keys {
            guard let op = OpKind(rawValue: name) else {
                XCTFail("core.json has cases for \"\(name)\", which is not an OpKind")
                continue
            }
            XCTAssertNotNil(runner(op), "no runner for \(name)")
        }
    }

    // MARK: Runner

    /// Runs every case of `op`: forward, then backward from the case's seed into every input
    /// that has a reference gradient (the others are constants). Returns the number of cases.
    @discardableResult
    private func check(_ op: OpKind, file: StaticString = #filePath, line: UInt = #line) throws -> Int {
        guard let runner = runner(op) else {
            XCTFail("no runner for \(op.rawValue)", file: file, line: line)
            return 0
        }
        let cases = coreOps[op.rawValue] ?? []
        XCTAssertFalse(cases.isEmpty, "no golden case for \(op.rawValue)", file: file, line: line)
        for c in cases {
            let label = "\(op.rawValue)[\(try c.string("name"))]"
            let inputs = try Case(c.any("inputs")), grads = try Case(c.any("grads"))
            var vars: [String: Variable] = [:]
            for key in inputs.dict.keys {
                vars[key] = Variable(try inputs.tensor(key), requiresGrad: grads.dict[key] != nil)
            }
            let y = try runner.build(try Case(c.any("params")), vars)
            let expected = try c.tensor("output")
            assertClose(y.value, expected, runner.output, "\(label) output", file: file, line: line)
            try y.backward(seed: try c.tensor("seed"))
            XCTAssertFalse(grads.dict.isEmpty, "\(label) has no gradient to check", file: file, line: line)
            for key in grads.dict.keys.sorted() {
                let v = try XCTUnwrap(vars[key], "\(label): gradient of unknown input \(key)", file: file, line: line)
                assertClose(v.grad, try grads.tensor(key), runner.gradient(v.shape, expected.shape),
                            "\(label) d\(key)", file: file, line: line)
            }
        }
        return cases.count
    }

    private func input(_ inputs: [String: Variable], _ key: String) throws -> Variable {
        guard let v = inputs[key] else { throw FixtureError.missing("input \(key)") }
        return v
    }

    /// Nested integer lists as an index tensor.
    private func indices(_ p: Case, _ key: String) throws -> IndexTensor {
        let t = try p.tensor(key)
        return try IndexTensor(shape: t.shape, data: t.data.map { Int($0) })
    }

    private func ints(_ p: Case, _ key: String) throws -> [Int] {
        guard let a = try p.any(key) as? [NSNumber] else { throw FixtureError.malformed("\(key) is not a list of integers") }
        return a.map(\.intValue)
    }

    /// The ops run through `unary(_:_:)`.
    private static let unaryOps: Set<OpKind> = [
        .neg, .exp, .log, .sqrt, .abs, .square, .reciprocal, .sin, .cos, .log1p, .tanh, .sigmoid, .relu,
        .addScalar, .mulScalar, .powScalar, .elu, .celu, .selu, .leakyRelu, .hardtanh, .relu6, .hardsigmoid,
        .hardshrink, .softshrink, .softplus, .softsign, .tanhshrink, .logSigmoid, .threshold, .gelu, .geluTanh,
    ]

    /// The engine's function for a unary op, with the fixture's (PyTorch-named) parameters.
    private func unaryFunction(_ op: OpKind, _ p: Case) throws -> UnaryFunction? {
        switch op {
        case .neg: return .neg
        case .exp: return .exp
        case .log: return .log
        case .sqrt: return .sqrt
        case .abs: return .abs
        case .square: return .square
        case .reciprocal: return .reciprocal
        case .sin: return .sin
        case .cos: return .cos
        case .log1p: return .log1p
        case .tanh: return .tanh
        case .sigmoid: return .sigmoid
        case .relu: return .relu
        case .addScalar: return .addScalar(try p.float("c"))
        case .mulScalar: return .mulScalar(try p.float("c"))
        case .powScalar: return .powScalar(try p.float("exponent"))
        case .elu: return .elu(alpha: try p.float("alpha"))
        case .celu: return .celu(alpha: try p.float("alpha"))
        case .selu: return .selu
        case .leakyRelu: return .leakyRelu(slope: try p.float("negative_slope"))
        case .hardtanh: return .hardtanh(min: try p.float("min_val"), max: try p.float("max_val"))
        case .relu6: return .relu6
        case .hardsigmoid: return .hardsigmoid
        case .hardshrink: return .hardshrink(lambda: try p.float("lambd"))
        case .softshrink: return .softshrink(lambda: try p.float("lambd"))
        case .softplus: return .softplus(beta: try p.float("beta"), threshold: try p.float("threshold"))
        case .softsign: return .softsign
        case .tanhshrink: return .tanhshrink
        case .logSigmoid: return .logSigmoid
        case .threshold: return .threshold(threshold: try p.float("threshold"), value: try p.float("value"))
        case .gelu, .geluTanh:
            let approximate = try p.string("approximate")
            guard approximate == (op == .gelu ? "none" : "tanh") else {
                throw FixtureError.malformed("\(op.rawValue) with approximate=\(approximate)")
            }
            return .gelu(tanhApproximation: op == .geluTanh)
        default: return nil
        }
    }

    /// How the engine runs `op`; nil for ops this file does not cover (convolution, pooling).
    private func runner(_ op: OpKind) -> GoldenRunner? {
        if Self.unaryOps.contains(op) {
            return GoldenRunner(output: .elementwise, gradient: .elementwise) { p, v in
                guard let f = try self.unaryFunction(op, p) else { throw FixtureError.malformed(op.rawValue) }
                return unary(try self.input(v, "x"), f)
            }
        }
        if let f = BinaryFunction(rawValue: op.rawValue) {
            return .broadcasting { _, v in try binary(try self.input(v, "a"), try self.input(v, "b"), f) }
        }
        switch op {
        case .where:
            return .broadcasting { _, v in
                try `where`(try self.input(v, "condition").value, try self.input(v, "a"), try self.input(v, "b"))
            }
        case .sum, .mean:
            return GoldenRunner(output: .reduction, gradient: .reduction) { p, v in
                let axes = p.dict["axes"] as? [Int], keep = try p.bool("keepdim")
                let x = try self.input(v, "x")
                return op == .sum ? try sum(x, axes: axes, keepDims: keep) : try mean(x, axes: axes, keepDims: keep)
            }
        case .max:
            return GoldenRunner(output: .reduction, gradient: .reduction) { p, v in
                try max(try self.input(v, "x"), axis: try p.int("axis"), keepDims: try p.bool("keepdim"))
            }
        case .softmax, .logSoftmax:
            return GoldenRunner(output: .reduction, gradient: .reduction) { p, v in
                let x = try self.input(v, "x"), axis = try p.int("axis")
                return op == .softmax ? try softmax(x, axis: axis) : try logSoftmax(x, axis: axis)
            }
        case .matmul, .batchedMatmul:
            return GoldenRunner(output: .reduction, gradient: .reduction) { p, v in
                try matmul(try self.input(v, "a"), try self.input(v, "b"),
                           transposeA: try p.bool("transpose_a"), transposeB: try p.bool("transpose_b"))
            }
        case .linear:
            return GoldenRunner(output: .reduction, gradient: .reduction) { _, v in
                try linear(try self.input(v, "x"), weight: try self.input(v, "weight"), bias: v["bias"])
            }
        case .reshape:
            return GoldenRunner(output: .elementwise, gradient: .elementwise) { p, v in
                try reshape(try self.input(v, "x"), try self.ints(p, "shape"))
            }
        case .permute:
            return GoldenRunner(output: .elementwise, gradient: .elementwise) { p, v in
                try permute(try self.input(v, "x"), try self.ints(p, "dims"))
            }
        case .transpose:
            return GoldenRunner(output: .elementwise, gradient: .elementwise) { p, v in
                try transpose(try self.input(v, "x"), try p.int("dim0"), try p.int("dim1"))
            }
        case .slice:
            return GoldenRunner(output: .elementwise, gradient: .elementwise) { p, v in
                try slice(try self.input(v, "x"), axis: try p.int("axis"), start: try p.int("start"),
                          end: try p.int("end"), step: try p.int("step"))
            }
        case .concat:
            return GoldenRunner(output: .elementwise, gradient: .elementwise) { p, v in
                let parts = try (0..<p.int("count")).map { try self.input(v, "x\($0)") }
                XCTAssertEqual(parts.count, v.count, "concat uses every input")
                return try concat(parts, axis: try p.int("axis"))
            }
        case .expand:
            // The gradient sums over the expanded dimensions: a reduction.
            return GoldenRunner(output: .elementwise, gradient: .reduction) { p, v in
                try expand(try self.input(v, "x"), to: try self.ints(p, "shape"))
            }
        case .gatherRows:
            return GoldenRunner(output: .elementwise, gradient: .elementwise) { p, v in
                try gatherRows(try self.input(v, "x"), try self.indices(p, "indices"))
            }
        case .embedding:
            return GoldenRunner(output: .elementwise, gradient: .elementwise) { p, v in
                try embedding(try self.indices(p, "codes"), weight: try self.input(v, "weight"))
            }
        case .dropout:
            return GoldenRunner(output: .elementwise, gradient: .elementwise) { p, v in
                let mask = try self.input(v, "mask").value
                let scale = 1 / (1 - (try p.float("p")))
                XCTAssertTrue(mask.data.allSatisfy { $0 == 0 || $0 == scale }, "dropout mask holds 0 and 1/(1-p)")
                return try dropout(try self.input(v, "x"), mask: mask)
            }
        default:
            return nil
        }
    }

    // MARK: Unary functions

    func testUnaryMath() throws {
        for op: OpKind in [.neg, .exp, .log, .sqrt, .abs, .square, .reciprocal, .sin, .cos, .log1p, .tanh, .sigmoid, .relu] {
            try check(op)
        }
    }

    func testScalarOps() throws {
        XCTAssertGreaterThanOrEqual(try check(.addScalar), 2)
        XCTAssertGreaterThanOrEqual(try check(.mulScalar), 2)
        XCTAssertGreaterThanOrEqual(try check(.powScalar), 4, "integer, fractional and negative exponents")
    }

    func testActivations() throws {
        for op: OpKind in [.selu, .relu6, .hardsigmoid, .softsign, .tanhshrink, .logSigmoid, .gelu, .geluTanh] {
            try check(op)
        }
        // Parametric activations: PyTorch's defaults and at least one other setting.
        for op: OpKind in [.elu, .celu, .leakyRelu, .hardtanh, .hardshrink, .softshrink, .softplus, .threshold] {
            XCTAssertGreaterThanOrEqual(try check(op), 2, "\(op.rawValue): default and non-default parameters")
        }
    }

    /// Ember's default parameters are PyTorch's: the "default" cases record PyTorch's defaults.
    func testActivationDefaultsMatchPyTorch() throws {
        let defaults: [(OpKind, UnaryFunction)] = [
            (.elu, .elu()), (.celu, .celu()), (.leakyRelu, .leakyRelu()), (.hardtanh, .hardtanh()),
            (.hardshrink, .hardshrink()), (.softshrink, .softshrink()), (.softplus, .softplus()), (.gelu, .gelu()),
        ]
        let ops = coreOps
        for (op, f) in defaults {
            let name = op == .gelu ? "approximate=none" : "default"
            let c = try XCTUnwrap(ops[op.rawValue]?.first { (try? $0.string("name")) == name }, "\(op.rawValue) default")
            XCTAssertEqual(try unaryFunction(op, try Case(c.any("params"))), f, "\(op.rawValue) defaults")
        }
    }

    // MARK: Binary functions

    /// Same shapes, a [n, k] + [k] bias, an [n, 1] · [1, k] outer broadcast, scalars on either
    /// side and a rank-3 broadcast; maximum/minimum without ties.
    func testBinaryOps() throws {
        for f in BinaryFunction.allCases {
            let op = try XCTUnwrap(OpKind(rawValue: f.rawValue))
            XCTAssertGreaterThanOrEqual(try check(op), 6, "\(f.rawValue): every broadcast pattern")
        }
    }

    func testWhere() throws {
        XCTAssertGreaterThanOrEqual(try check(.where), 3)
    }

    // MARK: Reductions and normalisations

    /// Along every axis of a rank-3 tensor, two axes, and all axes; keepDims both ways.
    func testSum() throws { XCTAssertGreaterThanOrEqual(try check(.sum), 14) }

    func testMean() throws { XCTAssertGreaterThanOrEqual(try check(.mean), 14) }

    /// The gradient goes to the argmax (no ties in the fixture).
    func testMax() throws { XCTAssertGreaterThanOrEqual(try check(.max), 8) }

    /// Along each axis, including logits of ±1e4.
    func testSoftmax() throws { XCTAssertGreaterThanOrEqual(try check(.softmax), 6) }

    func testLogSoftmax() throws { XCTAssertGreaterThanOrEqual(try check(.logSoftmax), 6) }

    // MARK: Products

    func testMatmulTransposeCombinations() throws { XCTAssertEqual(try check(.matmul), 4) }

    /// Equal batches, a shared rank-2 right or left operand, a rank-4 batch; with transposes.
    func testBatchedMatmul() throws { XCTAssertGreaterThanOrEqual(try check(.batchedMatmul), 7) }

    func testLinear() throws { XCTAssertGreaterThanOrEqual(try check(.linear), 4) }

    // MARK: Shape and indexing

    func testReshape() throws { try check(.reshape) }

    func testPermute() throws { try check(.permute) }

    func testTranspose() throws { try check(.transpose) }

    /// With steps, along several axes.
    func testSlice() throws { try check(.slice) }

    /// Along each axis of rank-3 tensors.
    func testConcat() throws { try check(.concat) }

    func testExpand() throws { try check(.expand) }

    /// Repeated indices: their gradients accumulate.
    func testGatherRows() throws { try check(.gatherRows) }

    func testEmbedding() throws { try check(.embedding) }

    // MARK: Stochastic

    /// PyTorch's own dropout draw, injected as the mask.
    func testDropoutWithPyTorchMask() throws { XCTAssertGreaterThanOrEqual(try check(.dropout), 2) }
}
