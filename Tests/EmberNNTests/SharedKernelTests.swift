// The shared pointer kernels (losses, dropout, standardisation) against the tape and against
// plain reference formulas, and integer class targets from the dataset to the loss.
import EmberTestSupport
import EmberCore
@testable import EmberNN
import Glibc
import XCTest

final class SharedKernelTests: XCTestCase {
    var rng = RandomGenerator(seed: 31)

    /// The tape loss's value and gradient as floats.
    private func tape(_ f: LossFunction, _ out: Tensor, _ target: Tensor) throws -> (Float, [Float]) {
        let v = Variable(out, requiresGrad: true)
        let l = try f(v, target)
        try l.backward()
        return (try XCTUnwrap(l.value.scalarValue), try XCTUnwrap(v.grad).data)
    }

    func testRegressionKernelsMatchTapeAndReference() throws {
        for absolute in [false, true] {
            let out = randomTensor([37, 1], &rng, -3, 3), target = randomTensor([37], &rng, -3, 3)
            var grad = [Float](repeating: .nan, count: 37)
            let s = out.withUnsafeBufferPointer { o in
                target.withUnsafeBufferPointer { t in
                    LossKernels.regressionSum(o.baseAddress!, t.baseAddress!, 37, absolute: absolute)
                }
            }
            out.withUnsafeBufferPointer { o in
                target.withUnsafeBufferPointer { t in
                    LossKernels.regressionGradient(o.baseAddress!, t.baseAddress!, 37, absolute: absolute, g: 1 / 37, into: &grad)
                }
            }
            let (value, tapeGrad) = try tape(LossFunction(absolute ? .l1 : .mse), out, target)
            XCTAssertEqual(value, Float(s) * (1 / 37), "the tape's value is the kernel's, bit for bit")
            XCTAssertEqual(tapeGrad, grad)
            // Reference: plain double-precision formulas.
            let o = out.data.map(Double.init), t = target.data.map(Double.init)
            let reference = zip(o, t).map { absolute ? abs($0 - $1) : ($0 - $1) * ($0 - $1) }.reduce(0, +) / 37
            XCTAssertEqual(Double(value), reference, accuracy: 1e-5 * max(1, reference))
            for i in 0..<37 {
                let d = o[i] - t[i]
                XCTAssertEqual(Double(grad[i]), absolute ? (d > 0 ? 1 : -1) / 37 : 2 * d / 37, accuracy: 1e-6)
            }
        }
    }

    func testBCEKernelsMatchTapeAndReference() throws {
        let out = randomTensor([12, 3], &rng, -20, 20)
        let target = try Tensor(shape: [12, 3], data: (0..<36).map { Float($0 % 3) / 2 })
        for posWeight in [nil, [2] as [Float], [0.5, 1, 3] as [Float]] {
            var f = LossFunction(.bceWithLogits)
            f.posWeight = posWeight
            let (value, tapeGrad) = try tape(f, out, target)
            var grad = [Float](repeating: .nan, count: 36)
            let s = out.withUnsafeBufferPointer { o in
                target.withUnsafeBufferPointer { t in
                    LossKernels.bceWithLogitsSum(o.baseAddress!, t.baseAddress!, 36, posWeight: posWeight, cols: 3)
                }
            }
            out.withUnsafeBufferPointer { o in
                target.withUnsafeBufferPointer { t in
                    LossKernels.bceWithLogitsGradient(o.baseAddress!, t.baseAddress!, 36, posWeight: posWeight, cols: 3, g: 1 / 36, into: &grad)
                }
            }
            XCTAssertEqual(value, Float(s) * (1 / 36))
            XCTAssertEqual(tapeGrad, grad)
            // Reference: -p y log σ(x) - (1 - y) log(1 - σ(x)) in double precision.
            var reference = 0.0
            for i in 0..<36 {
                let x = Double(out.data[i]), y = Double(target.data[i]), p = Double(posWeight.map { $0.count == 1 ? $0[0] : $0[i % 3] } ?? 1)
                let logSig = -log1p(exp(-abs(x))) + min(x, 0), logOneMinus = -log1p(exp(-abs(x))) - max(x, 0)
                reference -= p * y * logSig + (1 - y) * logOneMinus
            }
            XCTAssertEqual(Double(value), reference / 36, accuracy: 1e-5 * max(1, abs(reference / 36)))
        }
    }

    func testCrossEntropyKernelsMatchTapeAndReference() throws {
        let out = randomTensor([9, 4], &rng, -5, 5)
        let classes = [3, 0, 1, 2, 2, 0, 3, 1, 0]
        for weights in [nil, [0.5, 2, 1, 0.25] as [Float]] {
            var f = LossFunction(.crossEntropy)
            f.classWeights = weights
            let (value, tapeGrad) = try tape(f, out, try Tensor(shape: [9], data: classes.map(Float.init)))
            // The integer entry point gives the same bits as float targets.
            let v = Variable(out, requiresGrad: true)
            let l = try f(v, classes: IndexTensor(classes))
            try l.backward()
            XCTAssertEqual(l.value.scalarValue, value)
            XCTAssertEqual(v.grad?.data, tapeGrad)
            // The kernels on the log-softmax.
            let lsm = logSoftmaxRows(out)
            let (total, weightSum) = lsm.withUnsafeBufferPointer { LossKernels.crossEntropySum($0.baseAddress!, classes: classes, 9, 4, weights: weights) }
            var grad = [Float](repeating: .nan, count: 36)
            lsm.withUnsafeBufferPointer {
                LossKernels.crossEntropyGradient($0.baseAddress!, classes: classes, 9, 4, weights: weights, g: 1 / Float(weightSum), into: &grad)
            }
            XCTAssertEqual(value, Float(total / weightSum))
            XCTAssertEqual(tapeGrad, grad)
            // Reference: weighted mean of -log softmax.
            var num = 0.0, den = 0.0
            for i in 0..<9 {
                let row = (0..<4).map { Double(out.data[i * 4 + $0]) }
                let m = row.max()!, lse = m + log(row.map { exp($0 - m) }.reduce(0, +))
                let w = Double(weights?[classes[i]] ?? 1)
                num += w * (lse - row[classes[i]])
                den += w
            }
            XCTAssertEqual(Double(value), num / den, accuracy: 1e-5)
        }
    }

    func testClassTargetLossesEqualFloatTargets() throws {
        let logits = randomTensor([6, 3], &rng, -2, 2), one = randomTensor([6, 1], &rng, -2, 2)
        let classes = [2, 0, 1, 1, 0, 2], binary = [1, 0, 0, 1, 1, 0]
        var ignoring = LossFunction(.crossEntropy)
        ignoring.ignoreIndex = 1
        var expression = LossFunction(.expression)
        expression.expression = try NetworkExpression(json: try JSONValue.parse(
            #"{"op": "mean", "args": [{"op": "abs", "args": [{"op": "sub", "args": [{"arg": 0}, {"arg": 1}]}]}]}"#))
        var smoothed = LossFunction(.crossEntropy)
        smoothed.labelSmoothing = 0.1
        let cases: [(LossFunction, Tensor, [Int])] = [
            (ignoring, logits, classes), (smoothed, logits, classes), (LossFunction(.focal), logits, classes),
            (LossFunction(.bceWithLogits), one, binary), (LossFunction(.sigmoidFocal), one, binary),
            (expression, logits, classes), (expression, one, binary),
        ]
        for (f, out, c) in cases {
            let a = Variable(out, requiresGrad: true), b = Variable(out, requiresGrad: true)
            let la = try f(a, try Tensor(shape: [6], data: c.map(Float.init))), lb = try f(b, classes: IndexTensor(c))
            try la.backward()
            try lb.backward()
            XCTAssertEqual(la.value.scalarValue, lb.value.scalarValue, "\(f.kind)")
            XCTAssertEqual(a.grad?.data, b.grad?.data, "\(f.kind)")
        }
        let out = Variable(logits)
        assertEmberError(.invalidArgument, ["[cross_entropy]", "target 1 is 3, expected a class index in 0..<3"]) {
            try LossFunction(.crossEntropy)(out, classes: IndexTensor([0, 3, 1, 1, 0, 2]))
        }
        assertEmberError(.invalidArgument, ["[focal]", "target 0 is -1, expected a class index in 0..<3"]) {
            try LossFunction(.focal)(out, classes: IndexTensor([-1, 0, 1, 1, 0, 2]))
        }
        assertEmberError(.invalidArgument, ["[expression]", "target 5 is 3, expected a class index in 0..<3"]) {
            try expression(out, classes: IndexTensor([0, 1, 1, 1, 0, 3]))
        }
        assertEmberError(.shapeMismatch, ["[cross_entropy]", "expected 6 targets for logits [6, 3], got 2"]) {
            try LossFunction(.crossEntropy)(out, classes: IndexTensor([0, 1]))
        }
    }

    func testDropoutMaskKernelIsTheTapeMask() throws {
        for p: Float in [0.1, 0.5, 0.9] {
            var a = RandomGenerator(seed: 8), b = RandomGenerator(seed: 8), c = RandomGenerator(seed: 8)
            let mask = try dropoutMask([40, 25], p: p, rng: &a)
            var filled = [Float](repeating: .nan, count: 1000)
            fillDropoutMask(&filled, count: 1000, p: p, rng: &b)
            XCTAssertEqual(mask.data, filled)
            XCTAssertEqual(a.next(), b.next(), "both draw one number per element")
            // The branching formula the kernel replaces: uniform() < keep.
            let keep = 1 - p
            XCTAssertEqual(filled, (0..<1000).map { _ in c.uniform() < keep ? 1 / keep : 0 })
            let x = randomTensor([40, 25], &rng)
            var applied = [Float](repeating: .nan, count: 1000)
            x.withUnsafeBufferPointer { applyDropoutMask($0.baseAddress!, filled, &applied, count: 1000) }
            XCTAssertEqual(try dropout(Variable(x), mask: mask).value.data, applied)
            XCTAssertEqual(applied, zip(x.data, filled).map { $0 * $1 })
        }
    }

    func testStandardizeRowsKernelIsApply() throws {
        let x = randomTensor([7, 4], &rng, -5, 5)
        let s = Standardization(mean: [1, -2, 0, 0.5], scale: [2, 0.5, 1, 3])
        var rows = x.data
        s.apply(rows: &rows, count: 7)
        XCTAssertEqual(s.apply(x).data, rows)
        for i in 0..<7 { for j in 0..<4 { XCTAssertEqual(rows[i * 4 + j], (x.data[i * 4 + j] - s.mean[j]) / s.scale[j]) } }
    }

    func testDatasetWithIntegerClasses() throws {
        let x = try Tensor(shape: [4, 2], data: [0, 1, 2, 3, 4, 5, 6, 7])
        let d = try Dataset(inputs: ["num": x], classes: IndexTensor([0, 2, 1, 2]))
        XCTAssertEqual(d.classes?.data, [0, 2, 1, 2])
        XCTAssertEqual(d.target?.data, [0, 2, 1, 2])
        assertEmberError(.invalidArgument, ["[dataset] class target 2 (0-based) is -1; expected a class index >= 0"]) {
            try Dataset(inputs: ["num": x], classes: IndexTensor([0, 1, -1, 0]))
        }
        assertEmberError(.shapeMismatch, ["[dataset] the class targets have shape [3]; expected one per row (4)"]) {
            try Dataset(inputs: ["num": x], classes: IndexTensor([0, 1, 1]))
        }
        let outOfRange = try Dataset(inputs: ["num": x], classes: IndexTensor([0, 3, 1, 2]))
        let model = try Model(spec: try Architectures.mlp(TabularInputs(numeric: 2), neurons: [4]), task: .multiclass(classes: 3), seed: 1)
        assertEmberError(.invalidArgument, ["[fit] target 1 (0-based) is 3.0; expected a class index in 0..<3"]) {
            try Trainer(model: model, config: TrainerConfig()).fit(outOfRange, epochs: 1)
        }
        let binary = try Model(spec: try Architectures.mlp(TabularInputs(numeric: 2), neurons: [4]), task: .binary, seed: 1)
        assertEmberError(.invalidArgument, ["[fit] target 1 (0-based) is 2.0; expected 0 or 1"]) {
            try Trainer(model: binary, config: TrainerConfig()).fit(d, epochs: 1)
        }
    }

    /// Integer and float class targets train to the same bits, on the compiled step and the tape.
    func testIntegerClassTargetsTrainLikeFloatTargets() throws {
        let x = try Tensor.normal([40, 5], rng: &rng)
        let codes = (0..<40).map { ($0 * 7) % 3 }
        for (task, labels) in [(TaskKind.multiclass(classes: 3), codes), (.binary, codes.map { $0 % 2 })] {
            var weights: [[String: Tensor]] = []
            for compiled in [false, true] {
                for integer in [false, true] {
                    let model = try Model(spec: try Architectures.mlp(TabularInputs(numeric: 5), neurons: [8], p: 0.2), task: task, seed: 2)
                    var config = TrainerConfig()
                    config.batchSize = 8
                    config.compiledStep = compiled
                    let trainer = try Trainer(model: model, config: config)
                    let data = integer ? try Dataset(inputs: ["num": x], classes: IndexTensor(labels))
                        : try Dataset(x: x, y: try Tensor(shape: [40], data: labels.map(Float.init)))
                    try trainer.fit(data, valid: data, epochs: 2)
                    weights.append(model.snapshotWeights())
                }
            }
            XCTAssertEqual(weights[0], weights[1], "\(task) tape")
            XCTAssertEqual(weights[2], weights[3], "\(task) compiled")
            XCTAssertEqual(weights[0], weights[2], "\(task) compiled = tape")
        }
    }
}

/// Categorical codes as integers: from the dataset to embedding, one-hot and the tokenizer.
final class IntegerCodesTests: XCTestCase {
    let cards = [3, 4]

    private func data(_ rows: Int, integer: Bool, classes: Bool = false) throws -> Dataset {
        var rng = RandomGenerator(seed: 12)
        let x = try Tensor.normal([rows, 2], rng: &rng)
        let codes = (0..<(rows * 2)).map { ($0 * 5 + $0 / 2) % cards[$0 % 2] }
        let y = (0..<rows).map { ($0 * 7) % 3 }
        let c = try IndexTensor(shape: [rows, 2], data: codes)
        if integer {
            return try Dataset(inputs: ["num": x], codes: ["categ": c], classes: IndexTensor(y))
        }
        return try Dataset(inputs: ["num": x, "categ": c.floatTensor], target: try Tensor(shape: [rows], data: y.map(Float.init)))
    }

    private func embeddingSpec() -> NetworkSpec {
        NetworkSpec(inputs: [InputSpec("num", .numeric(features: 2)), InputSpec("categ", .categorical(cardinalities: cards))], nodes: [
            NodeSpec("emb", .embedding, inputs: ["categ"], params: ["embedding_dim": .number(3)]),
            NodeSpec("flat", .flatten, inputs: ["emb"]),
            NodeSpec("cat", .mergeCat, inputs: ["num", "flat"]),
            NodeSpec("lin", .linear, inputs: ["cat"], params: ["out_features": .number(6)]),
            NodeSpec("act", .relu, inputs: ["lin"]),
            NodeSpec("head", .head, inputs: ["act"]),
        ], output: "head")
    }

    /// Integer and float codes give the same weights and predictions, bit for bit, through
    /// one-hot (MLP), embedding and the FT-Transformer's tokenizer.
    func testIntegerCodesTrainLikeFloatCodes() throws {
        let inputs = TabularInputs(numeric: 2, cardinalities: cards)
        let specs = [try Architectures.mlp(inputs, neurons: [8]), embeddingSpec(),
                     try Architectures.ftTransformer(inputs, nBlocks: 1, dToken: 8, heads: 2)]
        for spec in specs {
            var weights: [[String: Tensor]] = [], logits: [Tensor] = []
            for integer in [false, true] {
                let model = try Model(spec: spec, task: .multiclass(classes: 3), seed: 4)
                var config = TrainerConfig()
                config.batchSize = 8
                let trainer = try Trainer(model: model, config: config)
                let d = try data(24, integer: integer)
                try trainer.fit(d, valid: d, epochs: 2)
                weights.append(model.snapshotWeights())
                logits.append(try model.logits(d))
            }
            XCTAssertEqual(weights[0], weights[1])
            XCTAssertEqual(logits[0], logits[1])
        }
    }

    func testIntegerCodeErrors() throws {
        let x = try Tensor.zeros([2, 2])
        assertEmberError(.invalidArgument, ["[dataset] input 'categ': row 1, column 0 (0-based) holds code -1; expected a level index in 0..<2^24"]) {
            try Dataset(inputs: ["num": x], codes: ["categ": try IndexTensor(shape: [2, 2], data: [0, 1, -1, 0])])
        }
        assertEmberError(.invalidArgument, ["[dataset] input 'num' is given both as a tensor and as codes"]) {
            try Dataset(inputs: ["num": x], codes: ["num": try IndexTensor(shape: [2, 2], data: [0, 1, 1, 0])])
        }
        assertEmberError(.shapeMismatch, ["[dataset] input 'num' has shape [2, 2]; expected 3 rows like 'categ'"]) {
            try Dataset(inputs: ["num": x], codes: ["categ": try IndexTensor(shape: [3, 1], data: [0, 1, 1])])
        }
        assertEmberError(.shapeMismatch, ["[codes] codes of shape [3] do not fit a value of shape [2, 2]"]) {
            try Variable(x, codes: IndexTensor([0, 1, 2]))
        }
        // Out of the model's levels: the float path's message, once per fit.
        let model = try Model(spec: try Architectures.mlp(TabularInputs(numeric: 2, cardinalities: cards), neurons: [4]), task: .multiclass(classes: 3), seed: 1)
        let bad = try Dataset(inputs: ["num": x], codes: ["categ": try IndexTensor(shape: [2, 2], data: [0, 1, 2, 4])], classes: IndexTensor([0, 1]))
        assertEmberError(.invalidArgument, ["[fit] input 'categ': row 1, column 1 (0-based) holds code 4.0; expected an integer in 0..<4"]) {
            try Trainer(model: model, config: TrainerConfig()).fit(bad, epochs: 1)
        }
        // At prediction an unknown level one-hot encodes as zeros, as a float code does.
        let unknown = try Dataset(inputs: ["num": x], codes: ["categ": try IndexTensor(shape: [2, 2], data: [0, 1, 7, 4])])
        let floats = try Dataset(inputs: ["num": x, "categ": try Tensor(shape: [2, 2], data: [0, 1, 7, 4])])
        XCTAssertEqual(try model.logits(unknown), try model.logits(floats))
        // The embedding and the tokenizer refuse them.
        var rng = RandomGenerator(seed: 3)
        var ctx = ForwardContext(training: false)
        let embedding = try Embedding(3, 2, rng: &rng)
        assertEmberError(.invalidArgument, ["[embedding", "code 3.0 at position 1 is not an integer in 0..<3"]) {
            try embedding(try Variable(try Tensor(shape: [2], data: [0, 3]), codes: IndexTensor([0, 3])), &ctx)
        }
        let categ = try CategoricalTokenizer(cardinalities: [3, 2], dToken: 4, rng: &rng)
        assertEmberError(.invalidArgument, ["categorical feature 1 (0-based) has 2 levels, but row 1 (0-based) holds code 2.0; expected an integer in 0..<2"]) {
            try categ(try Variable(try Tensor(shape: [2, 2], data: [0, 1, 2, 2]), codes: IndexTensor(shape: [2, 2], data: [0, 1, 2, 2])), &ctx)
        }
    }
}
