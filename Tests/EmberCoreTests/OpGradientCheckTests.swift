// Central-difference gradient checks (float32, step 1e-2 unless noted, rtol 1e-2, atol 1e-3) for
// every differentiable OpKind except convolution and pooling (checked beside their own code).
// The objective is Σ output · seed with a random seed (a seed of ones would hide softmax's
// gradient, which sums to zero). Test points stay at least 0.05 (five steps) from every kink:
// relu/abs/leaky_relu at 0, hardtanh/relu6/hardsigmoid edges, shrink lambdas, thresholds,
// softplus's switch to the linear branch, ties of max/maximum/minimum.
@testable import EmberCore
import EmberTestSupport
import XCTest

/// One gradient check: leaves, and the op applied to them.
private struct GradCheck {
    let name: String
    let leaves: [Tensor]
    var step: Float = 1e-2
    let build: ([Variable]) throws -> Variable
}

/// Moves every element at least `margin` away from each of `points`.
private func awayFrom(_ t: Tensor, _ points: [Float], by margin: Float) -> Tensor {
    var t = t
    t.withUnsafeMutableBufferPointer { p in
        for i in 0..<p.count {
            for c in points where Swift.abs(p[i] - c) < margin { p[i] = p[i] >= c ? c + margin : c - margin }
        }
    }
    return t
}

/// Uniform values in [low, high) with a random sign.
private func signedUniform(_ shape: [Int], _ rng: inout RandomGenerator, _ low: Float, _ high: Float) -> Tensor {
    var t = randomTensor(shape, &rng, low, high)
    t.withUnsafeMutableBufferPointer { p in for i in 0..<p.count where rng.uniform() < 0.5 { p[i] = -p[i] } }
    return t
}

/// Distinct values (gaps of at least 0.1) in random order: no two are within a step of each other.
private func distinctValues(_ shape: [Int], _ rng: inout RandomGenerator) -> Tensor {
    let n = shape.reduce(1, *)
    let order = rng.permutation(n)
    return try! Tensor(shape: shape, data: order.map { Float($0) * 0.1 - Float(n) * 0.05 + rng.uniform(0, 0.02) })
}

final class OpGradientCheckTests: XCTestCase {
    /// Convolution and pooling ops (conv1d, max_pool2d, …) have their checks beside their code.
    private static func isConvolutionOrPooling(_ op: OpKind) -> Bool {
        op.rawValue.hasPrefix("conv") || op.rawValue.contains("pool")
    }

    /// The checks of `op` (empty for convolution, pooling and ops not known here, which
    /// `testEveryDifferentiableOpHasAGradientCheck` then reports).
    private func checks(_ op: OpKind) throws -> [GradCheck] {
        var rng = RandomGenerator(seed: 0xE3B0 &+ UInt64(op.rawValue.utf8.reduce(0) { $0 &* 31 &+ Int($1) } & 0xFFFF))
        let shape = [3, 4]
        func normal(_ scale: Float = 2) -> Tensor { randomTensor(shape, &rng, -scale, scale) }
        func unaryCheck(_ name: String, _ f: UnaryFunction, _ x: Tensor, step: Float = 1e-2) -> GradCheck {
            GradCheck(name: name, leaves: [x], step: step) { v in unary(v[0], f) }
        }
        switch op {
        case .neg: return [unaryCheck("neg", .neg, normal())]
        case .exp: return [unaryCheck("exp", .exp, normal())]
        case .log: return [unaryCheck("log", .log, randomTensor(shape, &rng, 0.3, 3))]
        case .sqrt: return [unaryCheck("sqrt", .sqrt, randomTensor(shape, &rng, 0.3, 3))]
        case .abs: return [unaryCheck("abs", .abs, awayFrom(normal(), [0], by: 0.05))]
        case .square: return [unaryCheck("square", .square, normal())]
        case .reciprocal: return [unaryCheck("reciprocal", .reciprocal, signedUniform(shape, &rng, 0.5, 2))]
        case .sin: return [unaryCheck("sin", .sin, normal(3))]
        case .cos: return [unaryCheck("cos", .cos, normal(3))]
        case .log1p: return [unaryCheck("log1p", .log1p, randomTensor(shape, &rng, -0.6, 3))]
        case .tanh: return [unaryCheck("tanh", .tanh, normal())]
        case .sigmoid: return [unaryCheck("sigmoid", .sigmoid, normal(4))]
        case .relu: return [unaryCheck("relu", .relu, awayFrom(normal(), [0], by: 0.05))]
        case .addScalar: return [unaryCheck("add_scalar", .addScalar(2.5), normal())]
        case .mulScalar: return [unaryCheck("mul_scalar", .mulScalar(-1.5), normal())]
        case .powScalar:
            return [2, 3, 0.5, -1.5, 2.7].map { p in
                unaryCheck("pow_scalar(\(p))", .powScalar(p), randomTensor(shape, &rng, 0.5, 2.5))
            }
        case .elu: return [unaryCheck("elu", .elu(), normal()), unaryCheck("elu(0.5)", .elu(alpha: 0.5), normal())]
        case .celu: return [unaryCheck("celu", .celu(), normal()), unaryCheck("celu(2)", .celu(alpha: 2), normal())]
        case .selu: return [unaryCheck("selu", .selu, normal())]
        case .leakyRelu:
            return [unaryCheck("leaky_relu", .leakyRelu(), awayFrom(normal(), [0], by: 0.05)),
                    unaryCheck("leaky_relu(0.2)", .leakyRelu(slope: 0.2), awayFrom(normal(), [0], by: 0.05))]
        case .hardtanh:
            return [unaryCheck("hardtanh", .hardtanh(), awayFrom(normal(), [-1, 1], by: 0.05)),
                    unaryCheck("hardtanh(-2, 0.5)", .hardtanh(min: -2, max: 0.5), awayFrom(normal(3), [-2, 0.5], by: 0.05))]
        case .relu6: return [unaryCheck("relu6", .relu6, awayFrom(randomTensor(shape, &rng, -3, 9), [0, 6], by: 0.05))]
        case .hardsigmoid:
            return [unaryCheck("hardsigmoid", .hardsigmoid, awayFrom(randomTensor(shape, &rng, -5, 5), [-3, 3], by: 0.05))]
        case .hardshrink:
            return [unaryCheck("hardshrink", .hardshrink(), awayFrom(normal(), [-0.5, 0.5], by: 0.05)),
                    unaryCheck("hardshrink(1.2)", .hardshrink(lambda: 1.2), awayFrom(normal(3), [-1.2, 1.2], by: 0.05))]
        case .softshrink:
            return [unaryCheck("softshrink", .softshrink(), awayFrom(normal(), [-0.5, 0.5], by: 0.05)),
                    unaryCheck("softshrink(1.2)", .softshrink(lambda: 1.2), awayFrom(normal(3), [-1.2, 1.2], by: 0.05))]
        case .softplus:
            // beta 2, threshold 5: the linear branch starts at x = 2.5, where the value jumps by
            // log1p(e⁻⁵)/2 ≈ 0.003; no point is within a step of it.
            return [unaryCheck("softplus", .softplus(), normal(4)),
                    unaryCheck("softplus(linear region)", .softplus(), randomTensor(shape, &rng, 21, 30)),
                    unaryCheck("softplus(2, 5)", .softplus(beta: 2, threshold: 5),
                               awayFrom(randomTensor(shape, &rng, -3, 6), [2.5], by: 0.05))]
        case .softsign: return [unaryCheck("softsign", .softsign, awayFrom(normal(), [0], by: 0.05))]
        case .tanhshrink: return [unaryCheck("tanhshrink", .tanhshrink, normal())]
        case .logSigmoid: return [unaryCheck("log_sigmoid", .logSigmoid, normal(5))]
        case .threshold:
            return [unaryCheck("threshold(0.3, -2)", .threshold(threshold: 0.3, value: -2), awayFrom(normal(), [0.3], by: 0.05))]
        case .gelu: return [unaryCheck("gelu", .gelu(), normal(3))]
        case .geluTanh: return [unaryCheck("gelu_tanh", .gelu(tanhApproximation: true), normal(3))]

        case .add, .sub, .mul, .div, .maximum, .minimum, .pow:
            let f = BinaryFunction(rawValue: op.rawValue)!
            let patterns: [(String, [Int], [Int])] = [
                ("same shape", [3, 4], [3, 4]), ("bias", [3, 4], [4]), ("outer", [3, 1], [1, 4]),
                ("scalar", [3, 4], []), ("rank 3", [2, 1, 4], [3, 1]),
            ]
            return try patterns.map { name, sa, sb in
                var a = randomTensor(sa, &rng, -2, 2), b = randomTensor(sb, &rng, -2, 2)
                switch f {
                case .div: b = signedUniform(sb, &rng, 0.5, 2)
                case .pow:
                    a = randomTensor(sa, &rng, 0.5, 2)
                case .maximum, .minimum:
                    // Redraw until no broadcast pair is within 0.05 (a tie's gradient is split).
                    while try compare(UnaryFunction.abs.apply(try BinaryFunction.sub.apply(a, b)), .scalar(0.05), .less)
                        .data.contains(1) {
                        a = randomTensor(sa, &rng, -2, 2)
                        b = randomTensor(sb, &rng, -2, 2)
                    }
                default: break
                }
                return GradCheck(name: "\(op.rawValue) \(name)", leaves: [a, b]) { v in try binary(v[0], v[1], f) }
            }
        case .where:
            let c = try Tensor(shape: [2, 1, 4], data: [1, 0, 0, 1, 0, 1, 1, 0])
            return [GradCheck(name: "where broadcast", leaves: [randomTensor([3, 4], &rng), randomTensor([2, 3, 1], &rng)]) { v in
                try `where`(c, v[0], v[1])
            }]

        case .sum, .mean:
            let axesList: [[Int]?] = [nil, [0], [1], [2], [0, 2]]
            return axesList.flatMap { axes in
                [false, true].map { keep in
                    GradCheck(name: "\(op.rawValue) axes \(axes.map { "\($0)" } ?? "all") keepDims \(keep)",
                              leaves: [randomTensor([2, 3, 4], &rng)]) { v in
                        op == .sum ? try sum(v[0], axes: axes, keepDims: keep) : try mean(v[0], axes: axes, keepDims: keep)
                    }
                }
            }
        case .max:
            return [0, 1, 2].flatMap { axis in
                [false, true].map { keep in
                    GradCheck(name: "max axis \(axis) keepDims \(keep)", leaves: [distinctValues([2, 3, 4], &rng)]) { v in
                        try max(v[0], axis: axis, keepDims: keep)
                    }
                }
            }
        case .softmax, .logSoftmax:
            return [0, 1, 2].map { axis in
                GradCheck(name: "\(op.rawValue) axis \(axis)", leaves: [randomTensor([2, 3, 4], &rng, -3, 3)]) { v in
                    op == .softmax ? try softmax(v[0], axis: axis) : try logSoftmax(v[0], axis: axis)
                }
            }

        case .matmul:
            return [(false, false), (false, true), (true, false), (true, true)].map { ta, tb in
                GradCheck(name: "matmul transposeA \(ta) transposeB \(tb)",
                          leaves: [randomTensor(ta ? [4, 3] : [3, 4], &rng), randomTensor(tb ? [5, 4] : [4, 5], &rng)]) { v in
                    try matmul(v[0], v[1], transposeA: ta, transposeB: tb)
                }
            }
        case .batchedMatmul:
            let specs: [(String, [Int], [Int], Bool, Bool)] = [
                ("equal batches", [2, 3, 4], [2, 4, 5], false, false),
                ("equal batches, transposed", [2, 4, 3], [2, 5, 4], true, true),
                ("shared rhs", [2, 3, 4], [4, 5], false, false),
                ("shared lhs", [3, 4], [2, 4, 5], false, false),
                ("shared lhs, transposed", [4, 3], [2, 4, 5], true, false),
                ("rank-4 batch", [2, 2, 3, 4], [2, 2, 4, 2], false, false),
            ]
            return specs.map { name, sa, sb, ta, tb in
                GradCheck(name: "batched_matmul \(name)", leaves: [randomTensor(sa, &rng), randomTensor(sb, &rng)]) { v in
                    try matmul(v[0], v[1], transposeA: ta, transposeB: tb)
                }
            }
        case .linear:
            return [
                GradCheck(name: "linear rank-3 input", leaves: [randomTensor([2, 3, 4], &rng), randomTensor([5, 4], &rng),
                                                                randomTensor([5], &rng)]) { v in
                    try linear(v[0], weight: v[1], bias: v[2])
                },
                GradCheck(name: "linear rank-1 input, no bias", leaves: [randomTensor([4], &rng), randomTensor([5, 4], &rng)]) { v in
                    try linear(v[0], weight: v[1], bias: nil)
                },
            ]

        case .reshape:
            return [GradCheck(name: "reshape [-1, 2]", leaves: [randomTensor([2, 3, 4], &rng)]) { v in try reshape(v[0], [-1, 2]) }]
        case .permute:
            return [GradCheck(name: "permute [2, 0, 1]", leaves: [randomTensor([2, 3, 4], &rng)]) { v in try permute(v[0], [2, 0, 1]) }]
        case .transpose:
            return [GradCheck(name: "transpose 0, 2", leaves: [randomTensor([2, 3, 4], &rng)]) { v in try transpose(v[0], 0, 2) }]
        case .slice:
            return [GradCheck(name: "slice axis 1 step 2", leaves: [randomTensor([2, 5, 3], &rng)]) { v in
                try slice(v[0], axis: 1, start: 1, end: 5, step: 2)
            }]
        case .concat:
            return [0, 1, 2].map { axis in
                var shapes = [[2, 3, 4], [2, 3, 4]]
                shapes[1][axis] = 2
                return GradCheck(name: "concat axis \(axis)", leaves: shapes.map { randomTensor($0, &rng) }) { v in
                    try concat(v, axis: axis)
                }
            }
        case .expand:
            return [GradCheck(name: "expand [3, 1] to [2, 3, 4]", leaves: [randomTensor([3, 1], &rng)]) { v in
                try expand(v[0], to: [2, 3, 4])
            }]
        case .gatherRows:
            let idx = try IndexTensor(shape: [2, 3], data: [0, 2, 2, 4, 0, 2])
            return [GradCheck(name: "gather_rows repeated", leaves: [randomTensor([5, 3], &rng)]) { v in try gatherRows(v[0], idx) }]
        case .embedding:
            let codes = try IndexTensor(shape: [2, 2], data: [1, 3, 3, 0])
            return [GradCheck(name: "embedding", leaves: [randomTensor([4, 3], &rng)]) { v in try embedding(codes, weight: v[0]) }]

        case .dropout:
            let mask = try dropoutMask([3, 4], p: 0.4, rng: &rng)
            return [GradCheck(name: "dropout(mask)", leaves: [normal()]) { v in try dropout(v[0], mask: mask) }]

        default:
            return []  // convolution and pooling: checked by their own tests
        }
    }

    /// Runs the checks of `ops`, each with a random seed of the output's shape.
    private func run(_ ops: [OpKind], file: StaticString = #filePath, line: UInt = #line) throws {
        var seedRNG = RandomGenerator(seed: 77)
        for op in ops {
            let list = try checks(op)
            XCTAssertFalse(list.isEmpty, "no gradient check for \(op.rawValue)", file: file, line: line)
            for c in list {
                let shape = try GradientMode.withoutGradients { try c.build(c.leaves.map { Variable($0) }) }.shape
                try gradientCheck(c.leaves, seed: randomTensor(shape, &seedRNG), step: c.step, c.name,
                                  file: file, line: line, c.build)
            }
        }
    }

    func testEveryDifferentiableOpHasAGradientCheck() throws {
        let missing = try OpKind.allCases.filter { op in
            guard !Self.isConvolutionOrPooling(op) else { return false }
            return try checks(op).isEmpty
        }
        XCTAssertEqual(missing, [], "ops without a gradient check")
    }

    func testUnaryMathGradients() throws {
        try run([.neg, .exp, .log, .sqrt, .abs, .square, .reciprocal, .sin, .cos, .log1p, .tanh, .sigmoid, .relu,
                 .addScalar, .mulScalar, .powScalar])
    }

    func testActivationGradients() throws {
        try run([.elu, .celu, .selu, .leakyRelu, .hardtanh, .relu6, .hardsigmoid, .hardshrink, .softshrink, .softplus,
                 .softsign, .tanhshrink, .logSigmoid, .threshold, .gelu, .geluTanh])
    }

    func testBinaryGradients() throws {
        try run([.add, .sub, .mul, .div, .maximum, .minimum, .pow, .where])
    }

    func testReductionAndSoftmaxGradients() throws {
        try run([.sum, .mean, .max, .softmax, .logSoftmax])
    }

    func testProductGradients() throws {
        try run([.matmul, .batchedMatmul, .linear])
    }

    func testShapeAndIndexingGradients() throws {
        try run([.reshape, .permute, .transpose, .slice, .concat, .expand, .gatherRows, .embedding, .dropout])
    }

    /// The checker is not vacuous for these ops: a pullback that drops the broadcast reduction
    /// or mis-scales is caught (here: maximum's gradient sent to the wrong side).
    func testCheckerCatchesAWrongBinaryGradient() throws {
        var rng = RandomGenerator(seed: 5)
        let a = randomTensor([2, 3], &rng), b = randomTensor([2, 3], &rng)
        let problems = try gradientMismatches([a, b], seed: randomTensor([2, 3], &rng)) { v in
            let y = try binary(v[0], v[1], .maximum)
            return Variable(y.value, inputs: [v[0], v[1]]) { dy in
                let (ga, gb) = try BinaryFunction.maximum.gradients(dy, v[0].value, v[1].value, y.value, needA: true, needB: true)
                return [gb, ga]
            }
        }
        XCTAssertFalse(problems.isEmpty)
    }
}
