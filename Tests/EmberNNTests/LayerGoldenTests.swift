// Layers against PyTorch (Fixtures/nn_layers.json, written by tools/golden/generate_nn.py): batch
// norm (training steps with running statistics, then evaluation), layer norm, embedding, PReLU,
// GLU/ReGLU/GEGLU, RReLU (evaluation), merges and flatten, forward and backward; central-difference
// gradient checks through modules (inputs and parameters); training versus evaluation mode; freezing;
// hierarchical parameter names. Tolerance: docs/architecture.md#numerics-contract (layers rtol 1e-5,
// atol 1e-6; elementwise layers rtol 1e-6, atol 1e-7).
import EmberTestSupport
import EmberCore
@testable import EmberNN
import Foundation
import XCTest

/// Central differences through a module: the objective `Σ forward(x) · seed` (seed drawn at
/// random, fixed) is differentiated with respect to every element of the input and of every
/// parameter, in float32 with step `h`; the analytic gradients come from one backward pass.
/// A numeric derivative n and an analytic a must satisfy |n - a| <= atol + rtol · max(|n|, |a|).
func moduleGradientMismatches(_ module: Module, _ x: Tensor, training: Bool, step h: Float = 1e-2,
                              rtol: Double = 1e-2, atol: Double = 1e-3) throws -> [String] {
    func forward(_ input: Variable) throws -> Variable {
        var ctx = ForwardContext(training: training)
        return try module(input, &ctx)
    }
    var rng = RandomGenerator(seed: 99)
    let shape = try GradientMode.withoutGradients { try forward(Variable(x)) }.shape
    let seed = randomTensor(shape, &rng)
    for p in module.parameters { p.grad = nil }
    let xv = Variable(x, requiresGrad: true)
    try forward(xv).backward(seed: seed)
    func objective(_ input: Tensor) throws -> Double {
        let y = try GradientMode.withoutGradients { try forward(Variable(input)) }
        return y.value.withUnsafeBufferPointer { py in
            seed.withUnsafeBufferPointer { ps in (0..<py.count).reduce(0.0) { $0 + Double(py[$1]) * Double(ps[$1]) } }
        }
    }
    func perturbed(_ t: Tensor, _ j: Int, _ d: Float) -> Tensor {
        var c = t
        c.withUnsafeMutableBufferPointer { $0[j] += d }
        return c
    }
    var problems: [String] = []
    func compare(_ what: String, _ j: Int, _ numeric: Double, _ analytic: Double) {
        if !(abs(numeric - analytic) <= atol + rtol * max(abs(numeric), abs(analytic))) {
            problems.append("\(what)[\(j)]: analytic \(analytic), numeric \(numeric)")
        }
    }
    guard let dx = xv.grad else { return ["the input received no gradient"] }
    for j in 0..<x.count {
        let plus = perturbed(x, j, h), minus = perturbed(x, j, -h)
        let numeric = (try objective(plus) - objective(minus)) / (Double(plus.data[j]) - Double(minus.data[j]))
        compare("input", j, numeric, Double(dx.data[j]))
    }
    for p in module.parameters {
        guard let analytic = p.grad else {
            problems.append("\(p.name) received no gradient")
            continue
        }
        let original = p.value
        for j in 0..<original.count {
            let plus = perturbed(original, j, h), minus = perturbed(original, j, -h)
            p.value = plus
            let up = try objective(x)
            p.value = minus
            let down = try objective(x)
            p.value = original
            compare(p.name, j, (up - down) / (Double(plus.data[j]) - Double(minus.data[j])), Double(analytic.data[j]))
        }
    }
    return problems
}

/// Asserts that `moduleGradientMismatches` finds nothing.
func moduleGradientCheck(_ module: Module, _ x: Tensor, training: Bool, _ what: String,
                         file: StaticString = #filePath, line: UInt = #line) throws {
    let problems = try moduleGradientMismatches(module, x, training: training)
    XCTAssertTrue(problems.isEmpty, "\(what): " + problems.joined(separator: "; "), file: file, line: line)
}

final class LayerGoldenTests: XCTestCase {
    var fixture: Fixture!

    override func setUpWithError() throws {
        fixture = try Fixture.load("nn_layers")
    }

    func cases(_ key: String) throws -> [Case] { try Case(fixture.root).cases(key) }

    /// Runs `module` on the inputs and back-propagates `g`: the output and the input gradients.
    func forwardBackward(_ module: Module, _ inputs: [Tensor], _ g: Tensor, training: Bool = false) throws -> (Tensor, [Tensor?]) {
        let vars = inputs.map { Variable($0, requiresGrad: true) }
        var ctx = ForwardContext(training: training)
        let y = vars.count == 1 ? try module(vars[0], &ctx) : try module.forward(vars, &ctx)
        try y.backward(seed: g)
        return (y.value, vars.map(\.grad))
    }

    func makeBatchNorm(_ c: Case) throws -> BatchNorm {
        let bn = try BatchNorm(try c.int("num_features"), spatialDims: try c.int("spatial_dims"), eps: try c.float("eps"),
                               momentum: try c.float("momentum"), affine: try c.bool("affine"))
        if let w = bn.weight, let b = bn.bias {
            w.value = try c.tensor("weight")
            b.value = try c.tensor("bias")
        }
        bn.assignNames(prefix: "bn")
        return bn
    }

    // MARK: Golden values

    /// Three training steps on fresh batches (output, gradients, running statistics with
    /// momentum, num_batches_tracked), then one step in evaluation mode.
    func testBatchNormMatchesTorch() throws {
        let all = try cases("batch_norm")
        XCTAssertEqual(all.count, 6)
        for c in all {
            let name = try c.string("name")
            let bn = try makeBatchNorm(c)
            XCTAssertEqual(bn.kind, try c.int("spatial_dims") == 1 ? "batch_norm1d" : "batch_norm2d")
            for (k, s) in try c.cases("steps").enumerated() {
                let training = try s.bool("training")
                let what = "\(name) step \(k + 1) (\(training ? "training" : "eval"))"
                for p in bn.parameters { p.grad = nil }
                let (y, dx) = try forwardBackward(bn, [try s.tensor("x")], try s.tensor("g"), training: training)
                assertClose(y, try s.tensor("y"), .reduction, "\(what): output")
                assertClose(dx[0], try s.tensor("dx"), .reduction, "\(what): d/dx")
                if let w = bn.weight, let b = bn.bias {
                    assertClose(w.grad, try s.tensor("dweight"), .reduction, "\(what): d/dweight")
                    assertClose(b.grad, try s.tensor("dbias"), .reduction, "\(what): d/dbias")
                }
                assertClose(bn.runningMean.value, try s.tensor("running_mean"), .reduction, "\(what): running_mean")
                assertClose(bn.runningVar.value, try s.tensor("running_var"), .reduction, "\(what): running_var")
                XCTAssertEqual(bn.numBatchesTracked.value.scalarValue, Float(try s.int("num_batches_tracked")), what)
            }
        }
    }

    /// Prediction (evaluation, no gradients: one pass, no x̂ kept) gives the bits of the evaluation
    /// step with a tape, hence PyTorch's values; batch norm's per-channel loops give the same bits
    /// on one thread and on two (sizes that split them, rows with a partial last vector).
    func testBatchNormWithoutGradientsAndOnTwoThreads() throws {
        for c in try cases("batch_norm") {
            let name = try c.string("name")
            let step = try c.cases("steps")[3]
            XCTAssertFalse(try step.bool("training"), name)
            let bn = try makeBatchNorm(c)
            bn.runningMean.value = try step.tensor("running_mean")
            bn.runningVar.value = try step.tensor("running_var")
            let (taped, _) = try forwardBackward(bn, [try step.tensor("x")], try step.tensor("g"), training: false)
            var ctx = ForwardContext(training: false)
            let y = try GradientMode.withoutGradients { try bn(Variable(try step.tensor("x")), &ctx) }
            XCTAssertFalse(y.requiresGrad, name)
            XCTAssertEqual(y.value.data.map(\.bitPattern), taped.data.map(\.bitPattern), "\(name): prediction differs from the taped step")
            assertClose(y.value, try step.tensor("y"), .reduction, "\(name): prediction")
        }
        let threads = Engine.numThreads
        defer { try? Engine.setNumThreads(threads) }
        var rng = RandomGenerator(seed: 7)
        let x = try Tensor.uniform([8, 16, 24, 23], rng: &rng), g = try Tensor.uniform([8, 16, 24, 23], rng: &rng)
        let gamma = try Tensor.uniform([16], rng: &rng)
        var results: [[[UInt32]]] = []
        for nThreads in [1, 2] {
            try Engine.setNumThreads(nThreads)
            let bn = try BatchNorm(16, spatialDims: 2)
            bn.weight?.value = gamma
            var outputs: [[UInt32]] = []
            for training in [true, false] {
                let (y, dx) = try forwardBackward(bn, [x], g, training: training)
                outputs += [y.data, try XCTUnwrap(dx[0]).data, try XCTUnwrap(bn.weight?.grad).data, try XCTUnwrap(bn.bias?.grad).data,
                            bn.runningMean.value.data, bn.runningVar.value.data].map { $0.map(\.bitPattern) }
            }
            results.append(outputs)
        }
        XCTAssertEqual(results[0], results[1], "batch norm differs between one and two threads")
    }

    /// Batch norm with a fused ReLU gives the bits of relu(batch norm) and of its gradients, in
    /// training and in evaluation, with exact zeros (an all-zero channel) at the ReLU's kink.
    func testBatchNormFusedReLUEqualsBatchNormThenReLU() throws {
        var rng = RandomGenerator(seed: 11)
        var xs = try Tensor.uniform([4, 6, 5, 7], low: -1, high: 1, rng: &rng).data
        for i in 0..<(5 * 7) { xs[i + 2 * 5 * 7] = 0 }  // sample 0, channel 2
        let x = try Tensor(shape: [4, 6, 5, 7], data: xs), g = try Tensor.uniform([4, 6, 5, 7], low: -1, high: 1, rng: &rng)
        let gamma = try Tensor.uniform([6], rng: &rng), beta = try Tensor(shape: [6], data: [0, 0.1, -0.2, 0.3, 0, -0.1])
        for training in [true, false] {
            var results: [[[UInt32]]] = []
            for fused in [false, true] {
                let bn = try BatchNorm(6, spatialDims: 2)
                bn.weight?.value = gamma
                bn.bias?.value = beta
                let xv = Variable(x, requiresGrad: true)
                var ctx = ForwardContext(training: training)
                let y = fused ? try bn.forward(xv, &ctx, fusedReLU: true) : relu(try bn(xv, &ctx))
                try y.backward(seed: g)
                results.append([y.value.data, try XCTUnwrap(xv.grad).data, try XCTUnwrap(bn.weight?.grad).data,
                                try XCTUnwrap(bn.bias?.grad).data, bn.runningMean.value.data, bn.runningVar.value.data]
                    .map { $0.map(\.bitPattern) })
            }
            XCTAssertTrue(results[1][0].contains(0), "some outputs are cut by the ReLU")
            for (k, name) in ["y", "dx", "dweight", "dbias", "running_mean", "running_var"].enumerated() {
                XCTAssertEqual(results[1][k], results[0][k], "\(training ? "training" : "eval"): fused \(name) differs")
            }
        }
        // A network fuses each batch norm that only a ReLU reads: ResNet-18's stem and first block halves.
        let net = try GraphNetwork(try Architectures.resnet18(imageShape: [3, 32, 32]), headOutputs: 10, rng: &rng)
        let ids = net.steps.map(\.node.id)
        let pairs = Set(net.fusedReLUs.map { ids[$0.key] + " -> " + ids[$0.value] })
        XCTAssertEqual(pairs.count, 9, "\(pairs.sorted())")
        XCTAssertTrue(pairs.isSuperset(of: ["bn1 -> relu", "layer1.0.bn1 -> layer1.0.relu1", "layer4.1.bn1 -> layer4.1.relu1"]),
                      "\(pairs.sorted())")
    }

    func testLayerNormMatchesTorch() throws {
        for c in try cases("layer_norm") {
            let name = try c.string("name")
            let ln = try LayerNorm(try c.int("size"), eps: try c.float("eps"), affine: try c.bool("affine"))
            XCTAssertEqual(ln.parameters.count, try c.bool("affine") ? 2 : 0)
            if let w = ln.weight, let b = ln.bias {
                w.value = try c.tensor("weight")
                b.value = try c.tensor("bias")
            }
            let (y, dx) = try forwardBackward(ln, [try c.tensor("x")], try c.tensor("g"))
            assertClose(y, try c.tensor("y"), .reduction, "\(name): output")
            assertClose(dx[0], try c.tensor("dx"), .reduction, "\(name): d/dx")
            if let w = ln.weight, let b = ln.bias {
                assertClose(w.grad, try c.tensor("dweight"), .reduction, "\(name): d/dweight")
                assertClose(b.grad, try c.tensor("dbias"), .reduction, "\(name): d/dbias")
            }
        }
    }

    /// Repeated codes accumulate their gradients in one row; unused rows get exactly zero.
    func testEmbeddingMatchesTorch() throws {
        let c = try Case(fixture.root["embedding"])
        var rng = RandomGenerator(seed: 1)
        let emb = try Embedding(try c.int("num_embeddings"), try c.int("dim"), rng: &rng)
        emb.weight.value = try c.tensor("weight")
        let codes = try c.tensor("codes")
        var ctx = ForwardContext(training: true)
        let y = try emb(Variable(codes), &ctx)
        assertClose(y.value, try c.tensor("y"), .elementwise, "embedding: output")
        try y.backward(seed: try c.tensor("g"))
        let dweight = try XCTUnwrap(emb.weight.grad)
        assertClose(dweight, try c.tensor("dweight"), .reduction, "embedding: d/dweight")
        for row in [3, 4] {
            XCTAssertEqual(Array(dweight.data[(row * 3)..<(row * 3 + 3)]), [0, 0, 0], "row \(row) is unused")
        }
    }

    func testPReLUMatchesTorch() throws {
        for c in try cases("prelu") {
            let name = try c.string("name")
            let m = try PReLU(numParameters: try c.int("num_parameters"))
            XCTAssertEqual(m.weight.value.data, [Float](repeating: 0.25, count: try c.int("num_parameters")), "PyTorch's initial slope")
            m.weight.value = try c.tensor("weight")
            let (y, dx) = try forwardBackward(m, [try c.tensor("x")], try c.tensor("g"))
            assertClose(y, try c.tensor("y"), .elementwise, "\(name): output")
            assertClose(dx[0], try c.tensor("dx"), .elementwise, "\(name): d/dx")
            assertClose(m.weight.grad, try c.tensor("dweight"), .reduction, "\(name): d/dweight")
        }
    }

    func testGatedLinearUnitsMatchTorch() throws {
        let all = try cases("glu")
        XCTAssertEqual(Set(try all.map { try $0.string("name") }), ["glu", "reglu", "geglu"])
        for c in all {
            let name = try c.string("name")
            let m: GatedLinearUnit = name == "glu" ? .glu() : name == "reglu" ? .reglu() : .geglu()
            XCTAssertEqual(m.kind, name)
            let (y, dx) = try forwardBackward(m, [try c.tensor("x")], try c.tensor("g"))
            assertClose(y, try c.tensor("y"), .elementwise, "\(name): output")
            assertClose(dx[0], try c.tensor("dx"), .elementwise, "\(name): d/dx")
        }
    }

    /// In evaluation mode RReLU is a leaky ReLU with the mean slope (lower + upper) / 2.
    func testRReLUEvalMatchesTorch() throws {
        for c in try cases("rrelu_eval") {
            let name = try c.string("name")
            let m = try RReLU(lower: try c.float("lower"), upper: try c.float("upper"))
            let (y, dx) = try forwardBackward(m, [try c.tensor("x")], try c.tensor("g"), training: false)
            assertClose(y, try c.tensor("y"), .elementwise, "\(name): output")
            assertClose(dx[0], try c.tensor("dx"), .elementwise, "\(name): d/dx")
        }
    }

    /// Sum and product (with broadcasting: the gradients are reduced to each input's shape) and
    /// concatenation along an axis.
    func testMergesMatchTorch() throws {
        for c in try cases("merge") {
            let name = try c.string("name")
            guard let kind = MergeKind(rawValue: try c.string("kind")) else { throw FixtureError.malformed("merge kind") }
            let m = Merge(kind, axis: try c.int("axis"))
            guard let raw = try c.any("inputs") as? [Any], let rawGrads = try c.any("dinputs") as? [Any] else {
                throw FixtureError.malformed("inputs")
            }
            let inputs = try raw.map(tensorFrom), expected = try rawGrads.map(tensorFrom)
            let (y, grads) = try forwardBackward(m, inputs, try c.tensor("g"))
            assertClose(y, try c.tensor("y"), .elementwise, "\(name): output")
            for (i, (g, e)) in zip(grads, expected).enumerated() {
                assertClose(g, e, .reduction, "\(name): d/d input \(i)")
            }
        }
    }

    func testFlattenMatchesTorch() throws {
        for c in try cases("flatten") {
            let m = Flatten(startDim: try c.int("start_dim"), endDim: try c.int("end_dim"))
            let name = "flatten(\(m.startDim), \(m.endDim))"
            let (y, dx) = try forwardBackward(m, [try c.tensor("x")], try c.tensor("g"))
            XCTAssertEqual(y, try c.tensor("y"), name)
            XCTAssertEqual(dx[0], try c.tensor("dx"), name)
        }
        let x = Variable(try Tensor.zeros([2, 3]))
        var ctx = ForwardContext(training: false)
        assertEmberError(.invalidArgument, ["[flatten]", "start_dim 1 is after end_dim 0"]) {
            try Flatten(startDim: 1, endDim: 0)(x, &ctx)
        }
    }

    // MARK: Gradient checks

    /// The module gradient check is not vacuous: it reports a wrong input gradient and a wrong
    /// parameter gradient.
    func testModuleGradientCheckDetectsWrongGradients() throws {
        final class Scale: Module {
            let weight = Parameter(try! Tensor(shape: [3], data: [0.5, -1, 2]), name: "weight")
            let wrongInput: Bool
            init(wrongInput: Bool) {
                self.wrongInput = wrongInput
                super.init()
            }
            override var localParameters: [(String, Parameter)] { [("weight", weight)] }
            override func forward(_ x: Variable, _ ctx: inout ForwardContext) throws -> Variable {
                let w = weight.value
                let y = try BinaryFunction.mul.apply(x.value, w)
                return Variable(y, inputs: [x, weight.variable]) { [wrongInput, xv = x.value] dy in
                    let dx = try BinaryFunction.mul.apply(dy, w)
                    let dw = reduceGradient(try BinaryFunction.mul.apply(dy, xv), toShape: [3])
                    return wrongInput ? [try BinaryFunction.mul.apply(dx, try Tensor.full([3], 1.1)), dw]
                                      : [dx, try BinaryFunction.mul.apply(dw, try Tensor.full([3], 0.9))]
                }
            }
        }
        var rng = RandomGenerator(seed: 6)
        let x = randomTensor([4, 3], &rng)
        let badInput = try moduleGradientMismatches(Scale(wrongInput: true), x, training: true)
        XCTAssertTrue(badInput.contains { $0.hasPrefix("input") } && !badInput.contains { $0.hasPrefix("weight") }, "\(badInput)")
        let badWeight = try moduleGradientMismatches(Scale(wrongInput: false), x, training: true)
        XCTAssertTrue(badWeight.contains { $0.hasPrefix("weight") } && !badWeight.contains { $0.hasPrefix("input") }, "\(badWeight)")
    }

    func testBatchNormGradientCheck() throws {
        for c in try cases("batch_norm") {
            let name = try c.string("name")
            let steps = try c.cases("steps")
            // Training mode (batch statistics) on the first batch.
            try moduleGradientCheck(try makeBatchNorm(c), try steps[0].tensor("x"), training: true, "\(name) (training)")
            // Evaluation mode with PyTorch's running statistics after three steps.
            let bn = try makeBatchNorm(c)
            bn.runningMean.value = try steps[3].tensor("running_mean")
            bn.runningVar.value = try steps[3].tensor("running_var")
            try moduleGradientCheck(bn, try steps[3].tensor("x"), training: false, "\(name) (eval)")
        }
    }

    func testLayerNormGradientCheck() throws {
        for c in try cases("layer_norm") {
            let ln = try LayerNorm(try c.int("size"), eps: try c.float("eps"), affine: try c.bool("affine"))
            if let w = ln.weight, let b = ln.bias {
                w.value = try c.tensor("weight")
                b.value = try c.tensor("bias")
            }
            ln.assignNames(prefix: "ln")
            try moduleGradientCheck(ln, try c.tensor("x"), training: true, try c.string("name"))
        }
    }

    /// Inputs at least 0.1 away from the kink at 0 (the step is 1e-2).
    func testPReLUGradientCheck() throws {
        for c in try cases("prelu") {
            let m = try PReLU(numParameters: try c.int("num_parameters"))
            m.weight.value = try c.tensor("weight")
            m.assignNames(prefix: "prelu")
            try moduleGradientCheck(m, try c.tensor("x"), training: true, try c.string("name"))
        }
    }

    /// Inputs at least 0.1 away from 0, so ReGLU's gate is away from relu's kink.
    func testGatedLinearUnitGradientCheck() throws {
        for c in try cases("glu") {
            let name = try c.string("name")
            let m: GatedLinearUnit = name == "glu" ? .glu() : name == "reglu" ? .reglu() : .geglu()
            try moduleGradientCheck(m, try c.tensor("x"), training: true, name)
        }
    }

    // MARK: Training versus evaluation

    func testDropoutTrainingVersusEvaluation() throws {
        let p: Float = 0.3
        let layer = try Dropout(p)
        var rng = RandomGenerator(seed: 5)
        let x = randomTensor([100, 100], &rng, 0.5, 1.5)
        // Evaluation: the identity, and no draw from the RNG.
        var eval = ForwardContext(training: false, rng: RandomGenerator(seed: 7))
        let before = eval.rng
        XCTAssertEqual(try layer(Variable(x), &eval).value, x)
        XCTAssertEqual(eval.rng, before)
        // Training: each element dropped or scaled by 1/(1-p); the drop rate is p; the gradient
        // is the mask.
        var train = ForwardContext(training: true, rng: RandomGenerator(seed: 7))
        let xv = Variable(x, requiresGrad: true)
        let y = try layer(xv, &train)
        XCTAssertNotEqual(train.rng, before)
        try y.backward(seed: try Tensor.ones(x.shape))
        let yd = y.value.data, xd = x.data, g = try XCTUnwrap(xv.grad).data
        var dropped = 0
        for i in 0..<yd.count {
            if yd[i] == 0 {
                dropped += 1
                XCTAssertEqual(g[i], 0)
            } else {
                XCTAssertEqual(yd[i], xd[i] / (1 - p), accuracy: 1e-6)
                XCTAssertEqual(g[i], 1 / (1 - p), accuracy: 1e-6)
            }
        }
        let n = Double(yd.count), rate = Double(dropped) / n
        XCTAssertEqual(rate, Double(p), accuracy: 5 * (Double(p) * Double(1 - p) / n).squareRoot(), "drop rate")
        // p = 0 is the identity even in training, and draws nothing.
        var zero = ForwardContext(training: true, rng: RandomGenerator(seed: 7))
        XCTAssertEqual(try Dropout(0)(Variable(x), &zero).value, x)
        XCTAssertEqual(zero.rng, before)
    }

    /// Training normalises with the batch statistics and updates the running statistics;
    /// evaluation normalises with the running statistics and leaves them alone.
    func testBatchNormTrainingVersusEvaluation() throws {
        let bn = try BatchNorm(3)
        bn.weight?.value = try Tensor(shape: [3], data: [1.5, 0.5, 2])
        bn.bias?.value = try Tensor(shape: [3], data: [0.1, -0.2, 0.3])
        var rng = RandomGenerator(seed: 8)
        let x = randomTensor([8, 3], &rng, -2, 3)
        var evalCtx = ForwardContext(training: false), trainCtx = ForwardContext(training: true)
        // Fresh running statistics (mean 0, var 1): evaluation is γ x / √(1 + eps) + β.
        let e0 = try bn(Variable(x), &evalCtx).value
        for i in 0..<8 {
            for ch in 0..<3 {
                let expected = x.data[i * 3 + ch] / (1 + bn.eps).squareRoot() * bn.weight!.value.data[ch] + bn.bias!.value.data[ch]
                XCTAssertEqual(e0.data[i * 3 + ch], expected, accuracy: 1e-6)
            }
        }
        XCTAssertEqual(bn.runningMean.value.data, [0, 0, 0], "evaluation leaves the running mean")
        XCTAssertEqual(bn.runningVar.value.data, [1, 1, 1], "evaluation leaves the running variance")
        XCTAssertEqual(bn.numBatchesTracked.value.scalarValue, 0)
        // Training: per channel, (y - β)/γ has mean 0 and biased variance ≈ 1.
        let t = try bn(Variable(x), &trainCtx).value
        XCTAssertNotEqual(t, e0)
        for ch in 0..<3 {
            let z = (0..<8).map { Double((t.data[$0 * 3 + ch] - bn.bias!.value.data[ch]) / bn.weight!.value.data[ch]) }
            let mean = z.reduce(0, +) / 8
            let variance = z.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 8
            XCTAssertEqual(mean, 0, accuracy: 1e-5)
            XCTAssertEqual(variance, 1, accuracy: 1e-3)  // eps = 1e-5 against variances of order 1
        }
        XCTAssertEqual(bn.numBatchesTracked.value.scalarValue, 1)
        XCTAssertNotEqual(bn.runningMean.value.data, [0, 0, 0])
        // Evaluation now uses the updated statistics, and repeated evaluation is deterministic.
        let e1 = try bn(Variable(x), &evalCtx).value
        XCTAssertNotEqual(e1, e0)
        XCTAssertEqual(try bn(Variable(x), &evalCtx).value, e1)
        XCTAssertEqual(bn.numBatchesTracked.value.scalarValue, 1)
    }

    /// Training draws one slope per negative element from [lower, upper] (mean (lower+upper)/2)
    /// and leaves non-negative elements alone; the gradient is the slope used. Evaluation uses
    /// the mean slope and draws nothing.
    func testRReLUTrainingVersusEvaluation() throws {
        let lower: Float = 0.1, upper: Float = 0.4
        let m = try RReLU(lower: lower, upper: upper)
        var rng = RandomGenerator(seed: 9)
        let x = randomTensor([200, 100], &rng, -2, 1)
        var evalCtx = ForwardContext(training: false, rng: RandomGenerator(seed: 3))
        let before = evalCtx.rng
        let e = try m(Variable(x), &evalCtx).value
        XCTAssertEqual(evalCtx.rng, before)
        for (xi, yi) in zip(x.data, e.data) { XCTAssertEqual(yi, xi >= 0 ? xi : xi * (lower + upper) / 2, accuracy: 1e-6) }
        var trainCtx = ForwardContext(training: true, rng: RandomGenerator(seed: 3))
        let xv = Variable(x, requiresGrad: true)
        let y = try m(xv, &trainCtx)
        XCTAssertNotEqual(trainCtx.rng, before)
        try y.backward(seed: try Tensor.ones(x.shape))
        let g = try XCTUnwrap(xv.grad).data
        var slopes: [Double] = []
        for (i, (xi, yi)) in zip(x.data, y.value.data).enumerated() {
            if xi >= 0 {
                XCTAssertEqual(yi, xi)
                XCTAssertEqual(g[i], 1)
            } else {
                let slope = g[i]
                XCTAssertTrue(slope >= lower && slope <= upper, "slope \(slope) in [lower, upper]")
                XCTAssertEqual(yi, xi * slope, accuracy: 1e-6)
                slopes.append(Double(slope))
            }
        }
        let n = Double(slopes.count)
        XCTAssertGreaterThan(n, 10_000)
        let mean = slopes.reduce(0, +) / n
        let sd = Double(upper - lower) / 12.0.squareRoot()
        XCTAssertEqual(mean, Double(lower + upper) / 2, accuracy: 5 * sd / n.squareRoot(), "mean slope")
        XCTAssertNotEqual(y.value, e, "training differs from evaluation")
    }

    /// PyTorch refuses a training batch with one value per channel; so does Ember, naming the
    /// layer. Evaluation with a batch of one is fine, and so is training on [1, C, L] with L > 1.
    func testBatchNormWithOneValuePerChannelInTrainingIsAnError() throws {
        var rng = RandomGenerator(seed: 2)
        let net = Sequential([try Linear(4, 3, rng: &rng), try BatchNorm(3)])
        net.assignNames(prefix: "blocks")
        var train = ForwardContext(training: true), eval = ForwardContext(training: false)
        let one = Variable(try Tensor(shape: [1, 4], data: [0.1, 0.2, 0.3, 0.4]))
        assertEmberError(.invalidArgument, ["[batch_norm1d 'blocks.1']", "more than 1 value per channel when training", "[1, 3]"]) {
            try net(one, &train)
        }
        let bn1 = try BatchNorm(2)
        bn1.assignNames(prefix: "bn")
        assertEmberError(.invalidArgument, ["[batch_norm1d 'bn']", "[1, 2, 1]"]) {
            try bn1(Variable(try Tensor.zeros([1, 2, 1])), &train)
        }
        let bn2 = try BatchNorm(2, spatialDims: 2)
        bn2.assignNames(prefix: "head.norm")
        assertEmberError(.invalidArgument, ["[batch_norm2d 'head.norm']", "[1, 2, 1, 1]"]) {
            try bn2(Variable(try Tensor.zeros([1, 2, 1, 1])), &train)
        }
        // The failed call changed nothing.
        XCTAssertEqual(bn2.numBatchesTracked.value.scalarValue, 0)
        XCTAssertEqual(try net(one, &eval).shape, [1, 3])
        XCTAssertEqual(try bn1(Variable(try Tensor(shape: [1, 2, 3], data: [1, 2, 3, 4, 5, 7])), &train).shape, [1, 2, 3])
        assertEmberError(.shapeMismatch, ["[batch_norm2d 'head.norm']", "expected input of shape [N, 2, H, W], got [4, 2]"]) {
            try bn2(Variable(try Tensor.zeros([4, 2])), &train)
        }
    }

    // MARK: Freezing and names

    /// Frozen parameters stay bit-identical through optimizer steps (weight decay included) and
    /// get no gradient while the others move; after unfreezing they train again.
    func testFrozenParametersStayBitIdentical() throws {
        let configs: [OptimizerConfig] = [.sgd(lr: 0.1, momentum: 0.9, weightDecay: 0.1), .adam(lr: 0.05, weightDecay: 0.1),
                                          .adamw(lr: 0.05, weightDecay: 0.5), .rmsprop(lr: 0.01, weightDecay: 0.1, momentum: 0.5),
                                          .adagrad(lr: 0.1, weightDecay: 0.1)]
        for config in configs {
            let what = config.kind.rawValue
            var rng = RandomGenerator(seed: 12)
            let net = Sequential([try Linear(3, 4, rng: &rng), try BatchNorm(4), Activation(.tanh), try Linear(4, 2, rng: &rng)])
            net.assignNames()
            let x = randomTensor([8, 3], &rng), target = randomTensor([8, 2], &rng)
            XCTAssertEqual(net.freeze(matching: "0.*"), 2)
            XCTAssertEqual(net.freeze(matching: "1.weight"), 1)
            XCTAssertEqual(net.freeze(matching: "nothing.*"), 0)
            let frozen = ["0.weight", "0.bias", "1.weight"]
            let optimizer = try config.make(net.parameters)
            func train(_ steps: Int) throws {
                for _ in 0..<steps {
                    optimizer.zeroGrad()
                    var ctx = ForwardContext(training: true)
                    try mseLoss(try net(Variable(x), &ctx), target).backward()
                    try optimizer.step()
                }
            }
            let start = Dictionary(uniqueKeysWithValues: net.namedParameters().map { ($0.0, $0.1.value) })
            try train(3)
            for (name, p) in net.namedParameters() {
                if frozen.contains(name) {
                    XCTAssertTrue(p.isFrozen, "\(what): \(name)")
                    XCTAssertNil(p.grad, "\(what): frozen \(name) gets no gradient")
                    XCTAssertEqual(p.value, start[name], "\(what): frozen \(name) is bit-identical")
                } else {
                    XCTAssertNotEqual(p.value, start[name], "\(what): \(name) trains")
                }
            }
            // The optimizer keeps no advancing state for frozen parameters.
            for (key, t) in optimizer.stateTensors() where frozen.contains(where: { key.hasPrefix($0 + ".") }) {
                if key.hasSuffix(".step") { XCTAssertEqual(t.scalarValue, 0, "\(what): \(key)") }
            }
            // Unfreezing resumes training of those parameters only.
            XCTAssertEqual(net.unfreeze(matching: "0.*"), 2)
            let mid = Dictionary(uniqueKeysWithValues: net.namedParameters().map { ($0.0, $0.1.value) })
            try train(2)
            for (name, p) in net.namedParameters() {
                if name == "1.weight" {
                    XCTAssertEqual(p.value, mid[name], "\(what): still frozen \(name)")
                } else {
                    XCTAssertNotEqual(p.value, mid[name], "\(what): \(name) trains after unfreezing")
                }
            }
        }
    }

    /// Names are hierarchical and match PyTorch's: a Sequential of Sequentials gives
    /// `0.1.weight`; buffers and module paths likewise; the names are stable (re-assigning,
    /// rebuilding) and a prefix is prepended.
    func testParameterNamesAreHierarchicalAndStable() throws {
        func build() throws -> Sequential {
            var rng = RandomGenerator(seed: 4)
            return Sequential([
                Sequential([try Linear(2, 3, rng: &rng), try Linear(3, 3, rng: &rng)]),
                Sequential([try BatchNorm(3), try Linear(3, 1, rng: &rng)]),
            ])
        }
        let expected = try Case(fixture.root["names"])
        guard let params = try expected.any("parameters") as? [String], let buffers = try expected.any("buffers") as? [String],
              let modules = try expected.any("modules") as? [String] else { throw FixtureError.malformed("names") }
        XCTAssertTrue(params.contains("0.1.weight"))
        let net = try build()
        net.assignNames()
        XCTAssertEqual(net.parameters.map(\.name), params)
        XCTAssertEqual(net.namedParameters().map(\.0), params)
        XCTAssertEqual(net.namedBuffers().map(\.0), buffers)
        XCTAssertEqual(net.namedBuffers().map(\.1.name), buffers)
        XCTAssertEqual(net.namedModules().map(\.0), modules)
        XCTAssertEqual(net.namedModules().map(\.1.path), modules)
        // Stable: assigning again and rebuilding give the same names.
        net.assignNames()
        XCTAssertEqual(net.parameters.map(\.name), params)
        let again = try build()
        again.assignNames()
        XCTAssertEqual(again.parameters.map(\.name), params)
        // A prefix.
        net.assignNames(prefix: "model")
        XCTAssertEqual(net.parameters.map(\.name), params.map { "model." + $0 })
        XCTAssertEqual(net.namedParameters(prefix: "model").map(\.0), params.map { "model." + $0 })
        // Freezing by pattern sees the hierarchical names, relative to the module it is called on
        // (as PyTorch's named_parameters()), whatever prefix assignNames was given.
        XCTAssertEqual(net.freeze(matching: "1.*"), 4)
        XCTAssertEqual(net.freeze(matching: "?.?.bias"), 4)
        XCTAssertEqual(net.freeze(matching: "model.*"), 0)
        XCTAssertEqual(net.parameters.filter(\.isFrozen).map(\.name),
                       ["model.0.0.bias", "model.0.1.bias", "model.1.0.weight", "model.1.0.bias", "model.1.1.weight", "model.1.1.bias"])
        XCTAssertEqual(net.layers[0].freeze(matching: "1.weight"), 1, "a child's own names")
        XCTAssertTrue(net.parameters[2].isFrozen)
        // Errors name the layer by its path.
        var ctx = ForwardContext(training: false)
        assertEmberError(.shapeMismatch, ["[linear 'model.0.0']", "expected input with 2 features, got 5"]) {
            try net(Variable(try Tensor.zeros([2, 5])), &ctx)
        }
    }
}
