// Multi-head attention and the FT-Transformer pieces (tokenizers, CLS token, transformer block)
// against PyTorch/rtdl (Fixtures/nn_attention.json, written by tools/golden/generate_attention.py):
// forward values and the gradients of the input and of every parameter, set by PyTorch name.
// Then central-difference gradient checks, dropout in evaluation and training mode,
// initialisation, names and error messages. Tolerances: docs/architecture.md#numerics-contract.
import EmberTestSupport
import EmberCore
@testable import EmberNN
import Foundation
import XCTest

final class AttentionTests: XCTestCase {
    var fixture: Fixture!

    override func setUpWithError() throws {
        fixture = try Fixture.load("nn_attention")
    }

    // MARK: Golden values

    /// Builds each case's module with `make`, loads the PyTorch parameters by name, and compares
    /// the output and the gradients of `Σ out · seed` for the input and every parameter.
    func checkGolden(_ section: String, names expected: [String], inputIsCodes: Bool = false,
                     _ make: (Case) throws -> Module) throws {
        let cases = try Case(fixture.root).cases(section)
        XCTAssertEqual(try cases.map { try $0.string("name") }, expected, section)
        for c in cases {
            let what = "\(section)[\(try c.string("name"))]"
            let module = try make(try Case(c.any("config")))
            module.assignNames()
            let params = try Case(c.any("params")), grads = try Case(c.any("grads"))
            let named = module.namedParameters()
            // The parameter names are PyTorch's: the state dict maps one to one.
            XCTAssertEqual(Set(named.map(\.0)), Set(params.dict.keys), "\(what): parameter names")
            for (name, p) in named {
                let t = try params.tensor(name)
                XCTAssertEqual(p.value.shape, t.shape, "\(what): shape of \(name)")
                p.value = t
            }
            let x = Variable(try c.tensor("x"), requiresGrad: !inputIsCodes)
            var ctx = ForwardContext(training: false)
            let out = try module(x, &ctx)
            assertClose(out.value, try c.tensor("out"), .reduction, "\(what): output")
            try out.backward(seed: try c.tensor("seed"))
            if !inputIsCodes {
                assertClose(x.grad, try c.tensor("grad_x"), .reduction, "\(what): d/dx")
            }
            for (name, p) in named {
                assertClose(p.grad, try grads.tensor(name), .reduction, "\(what): d/d \(name)")
            }
        }
    }

    func testMultiheadAttentionMatchesTorch() throws {
        try checkGolden("multihead_attention",
                        names: ["heads1_bias", "heads1_nobias", "heads2_bias", "heads2_nobias", "heads4_bias", "heads4_nobias"]) { c in
            var rng = RandomGenerator(seed: 0)
            return try MultiheadAttention(embedDim: try c.int("embed_dim"), numHeads: try c.int("num_heads"),
                                          bias: try c.bool("bias"), rng: &rng)
        }
    }

    /// The network-description op `multihead_attention` builds the same layer: PyTorch's
    /// parameters loaded under the node's id give PyTorch's outputs.
    func testMultiheadAttentionNodeMatchesTorch() throws {
        for c in try Case(fixture.root).cases("multihead_attention") {
            let config = try Case(c.any("config"))
            let x = try c.tensor("x")
            let spec = NetworkSpec(inputs: [InputSpec("tokens", .tensor(shape: Array(x.shape.dropFirst())))], nodes: [
                NodeSpec("attn", .multiheadAttention, inputs: ["tokens"],
                         params: ["num_heads": .number(Double(try config.int("num_heads"))), "bias": .bool(try config.bool("bias"))]),
            ], output: "attn")
            var rng = RandomGenerator(seed: 0)
            let net = try GraphNetwork(spec, headOutputs: 1, rng: &rng)
            let params = try Case(c.any("params"))
            XCTAssertEqual(Set(net.namedParameters().map(\.0)), Set(params.dict.keys.map { "attn." + $0 }))
            for (name, p) in net.namedParameters() { p.value = try params.tensor(String(name.dropFirst("attn.".count))) }
            var ctx = ForwardContext(training: false)
            let out = try net.forward([Variable(x)], &ctx)
            assertClose(out.value, try c.tensor("out"), .reduction, "multihead_attention node [\(try c.string("name"))]")
        }
        let bad = NetworkSpec(inputs: [InputSpec("tokens", .tensor(shape: [3, 6]))], nodes: [
            NodeSpec("attn", .multiheadAttention, inputs: ["tokens"], params: ["num_heads": .number(4)]),
        ], output: "attn")
        var rng = RandomGenerator(seed: 0)
        XCTAssertThrowsError(try GraphNetwork(bad, headOutputs: 1, rng: &rng)) { error in
            XCTAssertTrue("\(error)".contains("node 'attn'") && "\(error)".contains("not divisible by num_heads 4"), "\(error)")
        }
    }

    func testNumericTokenizerMatchesTorch() throws {
        try checkGolden("numeric_tokenizer", names: ["bias", "nobias"]) { c in
            var rng = RandomGenerator(seed: 0)
            return try NumericTokenizer(nFeatures: try c.int("n_features"), dToken: try c.int("d_token"),
                                        bias: try c.bool("bias"), rng: &rng)
        }
    }

    func testCategoricalTokenizerMatchesTorch() throws {
        try checkGolden("categorical_tokenizer", names: ["bias", "nobias"], inputIsCodes: true) { c in
            var rng = RandomGenerator(seed: 0)
            guard let cards = try c.any("cardinalities") as? [Int] else { throw FixtureError.malformed("cardinalities") }
            return try CategoricalTokenizer(cardinalities: cards, dToken: try c.int("d_token"), bias: try c.bool("bias"), rng: &rng)
        }
    }

    func testCLSTokenMatchesTorch() throws {
        try checkGolden("cls_token", names: ["default"]) { c in
            var rng = RandomGenerator(seed: 0)
            return try CLSToken(dToken: try c.int("d_token"), rng: &rng)
        }
    }

    func testTransformerBlockMatchesTorch() throws {
        try checkGolden("transformer_block",
                        names: ["first_reglu", "nonfirst_reglu", "first_geglu", "nonfirst_geglu", "postnorm_relu"]) { c in
            var rng = RandomGenerator(seed: 0)
            let activation: FeedForwardActivation
            switch try c.string("activation") {
            case "reglu": activation = .reglu
            case "geglu": activation = .geglu
            case "relu": activation = .relu
            case let other: throw FixtureError.malformed("activation \(other)")
            }
            return try TransformerBlock(dToken: try c.int("d_token"), heads: try c.int("heads"), ffnHidden: try c.int("ffn_hidden"),
                                        activation: activation, prenormalization: try c.bool("prenormalization"),
                                        firstBlock: try c.bool("first_block"), rng: &rng)
        }
    }

    // MARK: Central differences

    /// Central-difference check of `Σ module(x) · seed` with respect to every element of `x` and
    /// of every parameter (float32, step h; tolerances as `gradientMismatches`).
    func moduleGradientMismatches(_ module: Module, x: Tensor, seed: Tensor, step h: Float = 1e-2,
                                  rtol: Double = 1e-2, atol: Double = 1e-3) throws -> [String] {
        module.assignNames()
        let xv = Variable(x, requiresGrad: true)
        var ctx = ForwardContext(training: false)
        try module(xv, &ctx).backward(seed: seed)
        func objective(_ input: Tensor) throws -> Double {
            let out = try GradientMode.withoutGradients { try module(Variable(input), &ctx) }
            var s = 0.0
            for i in 0..<out.value.count { s += Double(out.value.data[i]) * Double(seed.data[i]) }
            return s
        }
        var problems: [String] = []
        func compare(_ what: String, _ j: Int, _ analytic: Tensor?, _ plus: Double, _ minus: Double, _ delta: Double) {
            guard let analytic else {
                problems.append("\(what): no gradient")
                return
            }
            let numeric = (plus - minus) / delta, a = Double(analytic.data[j])
            if !(abs(numeric - a) <= atol + rtol * max(abs(numeric), abs(a))) {
                problems.append("\(what)[\(j)]: analytic \(a), numeric \(numeric)")
            }
        }
        for j in 0..<x.count {
            var plus = x, minus = x
            plus.withUnsafeMutableBufferPointer { $0[j] += h }
            minus.withUnsafeMutableBufferPointer { $0[j] -= h }
            compare("x", j, xv.grad, try objective(plus), try objective(minus), Double(plus.data[j]) - Double(minus.data[j]))
        }
        for (name, p) in module.namedParameters() {
            let original = p.value
            for j in 0..<original.count {
                var plus = original, minus = original
                plus.withUnsafeMutableBufferPointer { $0[j] += h }
                minus.withUnsafeMutableBufferPointer { $0[j] -= h }
                p.value = plus
                let fPlus = try objective(x)
                p.value = minus
                let fMinus = try objective(x)
                compare(name, j, p.grad, fPlus, fMinus, Double(plus.data[j]) - Double(minus.data[j]))
            }
            p.value = original
        }
        return problems
    }

    /// Moves every parameter off its constant initial value (zero biases, unit layer-norm scales)
    /// so the check runs at a generic point.
    func randomizeParameters(_ module: Module, _ rng: inout RandomGenerator) {
        for p in module.parameters {
            p.value = randomTensor(p.value.shape, &rng, -0.6, 0.6)
        }
    }

    func testMultiheadAttentionGradientCheck() throws {
        var rng = RandomGenerator(seed: 11)
        for (heads, bias) in [(1, true), (2, true), (2, false)] {
            let mha = try MultiheadAttention(embedDim: 4, numHeads: heads, bias: bias, rng: &rng)
            randomizeParameters(mha, &rng)
            let x = randomTensor([2, 3, 4], &rng)
            let seed = randomTensor([2, 3, 4], &rng)
            let problems = try moduleGradientMismatches(mha, x: x, seed: seed)
            XCTAssertTrue(problems.isEmpty, "heads \(heads), bias \(bias): " + problems.joined(separator: "; "))
        }
    }

    func testTransformerBlockGradientCheck() throws {
        var rng = RandomGenerator(seed: 12)
        // GEGLU keeps the objective smooth (ReGLU's kink is covered by the golden cases, whose
        // gates are kept away from 0). Pre-norm non-first and first, and post-norm.
        for (prenorm, first) in [(true, false), (true, true), (false, false)] {
            let block = try TransformerBlock(dToken: 4, heads: 2, ffnHidden: 3, activation: .geglu,
                                             prenormalization: prenorm, firstBlock: first, rng: &rng)
            randomizeParameters(block, &rng)
            let x = randomTensor([2, 3, 4], &rng)
            let seed = randomTensor([2, 3, 4], &rng)
            let problems = try moduleGradientMismatches(block, x: x, seed: seed)
            XCTAssertTrue(problems.isEmpty, "prenorm \(prenorm), first \(first): " + problems.joined(separator: "; "))
        }
    }

    func testTokenizerAndCLSGradientCheck() throws {
        var rng = RandomGenerator(seed: 13)
        let num = try NumericTokenizer(nFeatures: 3, dToken: 2, rng: &rng)
        let x = randomTensor([4, 3], &rng)
        var problems = try moduleGradientMismatches(num, x: x, seed: randomTensor([4, 3, 2], &rng))
        XCTAssertTrue(problems.isEmpty, "numeric tokenizer: " + problems.joined(separator: "; "))
        let cls = try CLSToken(dToken: 3, rng: &rng)
        problems = try moduleGradientMismatches(cls, x: randomTensor([2, 2, 3], &rng), seed: randomTensor([2, 3, 3], &rng))
        XCTAssertTrue(problems.isEmpty, "cls token: " + problems.joined(separator: "; "))
    }

    // MARK: Dropout

    /// The attention weights are dropped in training only, with a mask drawn from the context's
    /// RNG: the output equals the attention computed by hand with that mask injected.
    func testAttentionDropoutOnlyInTrainingAndDeterministicPerSeed() throws {
        var rng = RandomGenerator(seed: 21)
        let mha = try MultiheadAttention(embedDim: 4, numHeads: 2, dropout: 0.5, rng: &rng)
        randomizeParameters(mha, &rng)
        let x = Variable(randomTensor([2, 3, 4], &rng))

        // Evaluation: no RNG draws, deterministic, and equal to the same weights with p = 0.
        var evalCtx = ForwardContext(training: false, rng: RandomGenerator(seed: 5))
        let e1 = try mha(x, &evalCtx).value
        let e2 = try mha(x, &evalCtx).value
        XCTAssertEqual(e1, e2)
        XCTAssertEqual(evalCtx.rng, RandomGenerator(seed: 5))
        let noDropout = try MultiheadAttention(embedDim: 4, numHeads: 2, dropout: 0, rng: &rng)
        for ((_, p), (_, q)) in zip(noDropout.namedParameters(), mha.namedParameters()) { p.value = q.value }
        var trainCtx0 = ForwardContext(training: true, rng: RandomGenerator(seed: 5))
        XCTAssertEqual(try noDropout(x, &trainCtx0).value, e1, "p = 0 in training is the evaluation output")
        XCTAssertEqual(trainCtx0.rng, RandomGenerator(seed: 5), "p = 0 draws nothing")

        // Training: the RNG advances, the output changes, and the same seed repeats it exactly.
        var t1Ctx = ForwardContext(training: true, rng: RandomGenerator(seed: 7))
        var t2Ctx = ForwardContext(training: true, rng: RandomGenerator(seed: 7))
        var t3Ctx = ForwardContext(training: true, rng: RandomGenerator(seed: 8))
        let t1 = try mha(x, &t1Ctx).value, t2 = try mha(x, &t2Ctx).value, t3 = try mha(x, &t3Ctx).value
        XCTAssertNotEqual(t1Ctx.rng, RandomGenerator(seed: 7))
        XCTAssertNotEqual(t1, e1)
        XCTAssertEqual(t1, t2, "same seed, same output")
        XCTAssertNotEqual(t1, t3, "another seed, another mask")

        // By hand: softmax(q kᵀ/√dh) masked by the mask drawn from seed 7, then · v and out_proj.
        var maskRng = RandomGenerator(seed: 7)
        let mask = try dropoutMask([2, 2, 3, 3], p: 0.5, rng: &maskRng)
        XCTAssertEqual(maskRng, t1Ctx.rng, "one mask of shape [batch, heads, tokens, tokens] is drawn")
        let w = mha.inProjWeight.value, b = try XCTUnwrap(mha.inProjBias).value
        let qkv = try linear(x, weight: Variable(w), bias: Variable(b))
        func part(_ i: Int) throws -> Variable {
            try permute(try reshape(try slice(qkv, axis: 2, start: 4 * i, end: 4 * i + 4), [2, 3, 2, 2]), [0, 2, 1, 3])
        }
        let scores = try matmul(try part(0), try part(1), transposeB: true) * Float(1 / 2.0.squareRoot())
        let weights = try dropout(try softmax(scores, axis: -1), mask: mask)
        let merged = try reshape(try permute(try matmul(weights, try part(2)), [0, 2, 1, 3]), [2, 3, 4])
        let expected = try linear(merged, weight: mha.outProj.weight.variable, bias: mha.outProj.bias?.variable)
        assertClose(t1, expected.value, .reduction, "training output with the injected mask")
    }

    /// A block with every dropout active: evaluation is deterministic and draws nothing; training
    /// draws, changes the output and repeats per seed.
    func testTransformerBlockDropoutOnlyInTraining() throws {
        var rng = RandomGenerator(seed: 22)
        let block = try TransformerBlock(dToken: 4, heads: 2, attentionDropout: 0.3, ffnHidden: 5, ffnDropout: 0.3,
                                         residualDropout: 0.2, firstBlock: false, rng: &rng)
        let x = Variable(randomTensor([3, 4, 4], &rng))
        var evalCtx = ForwardContext(training: false, rng: RandomGenerator(seed: 1))
        let e1 = try block(x, &evalCtx).value
        XCTAssertEqual(try block(x, &evalCtx).value, e1)
        XCTAssertEqual(evalCtx.rng, RandomGenerator(seed: 1))
        var a = ForwardContext(training: true, rng: RandomGenerator(seed: 2))
        var b = ForwardContext(training: true, rng: RandomGenerator(seed: 2))
        let t1 = try block(x, &a).value
        XCTAssertEqual(try block(x, &b).value, t1)
        XCTAssertNotEqual(t1, e1)
        XCTAssertNotEqual(a.rng, RandomGenerator(seed: 2))
    }

    // MARK: Structure and initialisation

    func testMultiheadAttentionInitialisationAsTorch() throws {
        var rng = RandomGenerator(seed: 31)
        let d = 64
        let mha = try MultiheadAttention(embedDim: d, numHeads: 8, rng: &rng)
        mha.assignNames(prefix: "attn")
        XCTAssertEqual(mha.parameters.map(\.name),
                       ["attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight", "attn.out_proj.bias"])
        XCTAssertEqual(mha.parameters.map(\.value.shape), [[3 * d, d], [3 * d], [d, d], [d]])
        XCTAssertEqual(mha.headDim, 8)
        // xavier_uniform_ on [3d, d]: bound √(6 / (d + 3d)); the support is used up to the bound.
        let xavier = (6 / Double(4 * d)).squareRoot()
        let w = mha.inProjWeight.value.data.map(Double.init)
        XCTAssertTrue(w.allSatisfy { abs($0) <= xavier })
        XCTAssertGreaterThan(w.max() ?? 0, 0.99 * xavier)
        XCTAssertLessThan(w.min() ?? 0, -0.99 * xavier)
        let variance = w.map { $0 * $0 }.reduce(0, +) / Double(w.count)
        XCTAssertEqual(variance, xavier * xavier / 3, accuracy: 0.1 * xavier * xavier / 3)
        // Biases are zero; out_proj.weight keeps Linear's ±1/√d.
        XCTAssertTrue(try XCTUnwrap(mha.inProjBias).value.data.allSatisfy { $0 == 0 })
        XCTAssertTrue(try XCTUnwrap(mha.outProj.bias).value.data.allSatisfy { $0 == 0 })
        let linearBound = 1 / Float(d).squareRoot()
        XCTAssertTrue(mha.outProj.weight.value.data.allSatisfy { abs($0) <= linearBound })
        XCTAssertGreaterThan(mha.outProj.weight.value.data.max() ?? 0, 0.99 * linearBound)
        // Without bias there are no bias parameters at all (PyTorch's bias = FALSE).
        let noBias = try MultiheadAttention(embedDim: 4, numHeads: 2, bias: false, rng: &rng)
        noBias.assignNames()
        XCTAssertEqual(noBias.namedParameters().map(\.0), ["in_proj_weight", "out_proj.weight"])
        // The same seed gives the same layer.
        var r1 = RandomGenerator(seed: 3), r2 = RandomGenerator(seed: 3)
        XCTAssertEqual(try MultiheadAttention(embedDim: 4, numHeads: 2, rng: &r1).inProjWeight.value,
                       try MultiheadAttention(embedDim: 4, numHeads: 2, rng: &r2).inProjWeight.value)
    }

    func testTokenInitialisationUniformInInverseSqrtD() throws {
        var rng = RandomGenerator(seed: 32)
        let d = 16
        let bound = 1 / Float(d).squareRoot()
        let num = try NumericTokenizer(nFeatures: 50, dToken: d, rng: &rng)
        let categ = try CategoricalTokenizer(cardinalities: [20, 30], dToken: d, rng: &rng)
        let cls = try CLSToken(dToken: d, rng: &rng)
        let tensors: [(String, Tensor)] = [
            ("num.weight", num.weight.value), ("num.bias", try XCTUnwrap(num.bias).value),
            ("categ.embeddings.weight", categ.embeddings.weight.value), ("categ.bias", try XCTUnwrap(categ.bias).value),
            ("cls.weight", cls.weight.value),
        ]
        for (name, t) in tensors {
            XCTAssertTrue(t.data.allSatisfy { abs($0) <= bound }, "\(name) within ±1/√d")
            XCTAssertGreaterThan(t.data.max() ?? 0, 0.7 * bound, name)
            XCTAssertLessThan(t.data.min() ?? 0, -0.7 * bound, name)
        }
        XCTAssertEqual(categ.embeddings.weight.value.shape, [50, d])
        XCTAssertEqual(categ.bias?.value.shape, [2, d])
        categ.assignNames()
        XCTAssertEqual(categ.namedParameters().map(\.0), ["bias", "embeddings.weight"])
        XCTAssertTrue(categ.namedBuffers().isEmpty, "category offsets are not persisted (rtdl: persistent = False)")
    }

    func testCLSTokenIsAppendedLast() throws {
        var rng = RandomGenerator(seed: 33)
        let cls = try CLSToken(dToken: 3, rng: &rng)
        let x = randomTensor([2, 4, 3], &rng)
        var ctx = ForwardContext(training: false)
        let y = try cls(Variable(x), &ctx).value
        XCTAssertEqual(y.shape, [2, 5, 3])
        XCTAssertEqual(try y.sliced(axis: 1, start: 0, end: 4), x)
        for b in 0..<2 {
            XCTAssertEqual(try y.sliced(axis: 0, start: b, end: b + 1).sliced(axis: 1, start: 4, end: 5).data, cls.weight.value.data)
        }
    }

    func testTransformerBlockStructure() throws {
        var rng = RandomGenerator(seed: 34)
        let first = try TransformerBlock(dToken: 8, heads: 2, ffnHidden: 6, firstBlock: true, rng: &rng)
        first.assignNames(prefix: "blocks.0")
        XCTAssertEqual(first.parameters.map(\.name), [
            "blocks.0.attention.in_proj_weight", "blocks.0.attention.in_proj_bias",
            "blocks.0.attention.out_proj.weight", "blocks.0.attention.out_proj.bias",
            "blocks.0.ffn_normalization.weight", "blocks.0.ffn_normalization.bias",
            "blocks.0.ffn.linear_first.weight", "blocks.0.ffn.linear_first.bias",
            "blocks.0.ffn.linear_second.weight", "blocks.0.ffn.linear_second.bias",
        ])
        // ReGLU (the default) halves its input: the first layer is 2 · ffn_hidden wide.
        XCTAssertEqual(first.ffn.linearFirst.weight.value.shape, [12, 8])
        XCTAssertEqual(first.ffn.linearSecond.weight.value.shape, [8, 6])
        XCTAssertNil(first.attentionNormalization)
        let second = try TransformerBlock(dToken: 8, heads: 2, ffnHidden: 6, activation: .relu, firstBlock: false, rng: &rng)
        second.assignNames()
        XCTAssertEqual(Array(second.namedParameters().map(\.0).prefix(2)),
                       ["attention_normalization.weight", "attention_normalization.bias"])
        XCTAssertEqual(second.ffn.linearFirst.weight.value.shape, [6, 8])
        // Post-norm blocks always normalise after attention, first or not.
        let post = try TransformerBlock(dToken: 8, heads: 2, ffnHidden: 6, prenormalization: false, firstBlock: true, rng: &rng)
        XCTAssertNotNil(post.attentionNormalization)
        XCTAssertEqual(second.namedModules().map(\.0), [
            "", "attention_normalization", "attention", "attention.out_proj", "attention_residual_dropout",
            "ffn_normalization", "ffn", "ffn.linear_first", "ffn.activation", "ffn.dropout", "ffn.linear_second",
            "ffn_residual_dropout",
        ])
    }

    // MARK: Errors

    func testMultiheadAttentionErrors() throws {
        var rng = RandomGenerator(seed: 41)
        assertEmberError(.invalidArgument, ["[multihead_attention]", "embed_dim 10 is not divisible by num_heads 3"]) {
            try MultiheadAttention(embedDim: 10, numHeads: 3, rng: &rng)
        }
        assertEmberError(.invalidArgument, ["[multihead_attention]", "must be >= 1, got 4 and 0"]) {
            try MultiheadAttention(embedDim: 4, numHeads: 0, rng: &rng)
        }
        assertEmberError(.invalidArgument, ["[multihead_attention]", "dropout must be in [0, 1), got 1.0"]) {
            try MultiheadAttention(embedDim: 4, numHeads: 2, dropout: 1, rng: &rng)
        }
        let mha = try MultiheadAttention(embedDim: 4, numHeads: 2, rng: &rng)
        let net = Sequential([mha])
        net.assignNames(prefix: "encoder")
        var ctx = ForwardContext(training: false)
        assertEmberError(.shapeMismatch, ["[multihead_attention 'encoder.0']", "expected input of shape [batch, tokens, 4]", "got [2, 4]"]) {
            try net(Variable(try Tensor.zeros([2, 4])), &ctx)
        }
        assertEmberError(.shapeMismatch, ["[multihead_attention 'encoder.0']", "[batch, tokens, 4]", "got [2, 3, 5]"]) {
            try net(Variable(try Tensor.zeros([2, 3, 5])), &ctx)
        }
    }

    func testTokenizerErrors() throws {
        var rng = RandomGenerator(seed: 42)
        var ctx = ForwardContext(training: false)
        let categ = try CategoricalTokenizer(cardinalities: [3, 2], dToken: 4, rng: &rng)
        categ.assignNames(prefix: "tokenizer")
        // Row 1 holds level 2 for the second feature, which has only levels 0 and 1.
        let codes = try Tensor(shape: [2, 2], data: [0, 1, 2, 2])
        assertEmberError(.invalidArgument, ["[tokenizer_categ 'tokenizer']", "categorical feature 1", "has 2 levels",
                                            "row 1 (0-based) holds code 2.0", "0..<2"]) {
            try categ(Variable(codes), &ctx)
        }
        assertEmberError(.invalidArgument, ["categorical feature 0", "code -1.0"]) {
            try categ(Variable(try Tensor(shape: [1, 2], data: [-1, 0])), &ctx)
        }
        assertEmberError(.invalidArgument, ["categorical feature 0", "code 0.5", "expected an integer"]) {
            try categ(Variable(try Tensor(shape: [1, 2], data: [0.5, 0])), &ctx)
        }
        assertEmberError(.invalidArgument, ["categorical feature 1", "code nan"]) {
            try categ(Variable(try Tensor(shape: [1, 2], data: [0, .nan])), &ctx)
        }
        assertEmberError(.shapeMismatch, ["[tokenizer_categ 'tokenizer']", "expected codes of shape [batch, 2], got [4, 3]"]) {
            try categ(Variable(try Tensor.zeros([4, 3])), &ctx)
        }
        assertEmberError(.invalidArgument, ["[tokenizer_categ]", "cardinalities must be >= 1, got 0 for feature 1"]) {
            try CategoricalTokenizer(cardinalities: [2, 0], dToken: 4, rng: &rng)
        }
        assertEmberError(.invalidArgument, ["[tokenizer_categ]", "cardinalities must not be empty"]) {
            try CategoricalTokenizer(cardinalities: [], dToken: 4, rng: &rng)
        }
        let num = try NumericTokenizer(nFeatures: 3, dToken: 4, rng: &rng)
        num.assignNames(prefix: "num")
        assertEmberError(.shapeMismatch, ["[tokenizer_num 'num']", "expected input of shape [batch, 3], got [5, 2]"]) {
            try num(Variable(try Tensor.zeros([5, 2])), &ctx)
        }
        assertEmberError(.invalidArgument, ["[tokenizer_num]", "got 0 and 4"]) {
            try NumericTokenizer(nFeatures: 0, dToken: 4, rng: &rng)
        }
        let cls = try CLSToken(dToken: 4, rng: &rng)
        cls.assignNames(prefix: "cls")
        assertEmberError(.shapeMismatch, ["[cls_token 'cls']", "expected input of shape [batch, tokens, 4], got [2, 3]"]) {
            try cls(Variable(try Tensor.zeros([2, 3])), &ctx)
        }
        assertEmberError(.invalidArgument, ["[cls_token]", "d_token must be >= 1, got 0"]) {
            try CLSToken(dToken: 0, rng: &rng)
        }
    }

    func testTransformerBlockErrors() throws {
        var rng = RandomGenerator(seed: 43)
        assertEmberError(.invalidArgument, ["[transformer_block]", "d_token 6 is not divisible by heads 4"]) {
            try TransformerBlock(dToken: 6, heads: 4, ffnHidden: 4, firstBlock: false, rng: &rng)
        }
        assertEmberError(.invalidArgument, ["[transformer_block]", "residual_dropout must be in [0, 1), got 1.5"]) {
            try TransformerBlock(dToken: 4, heads: 2, ffnHidden: 4, residualDropout: 1.5, firstBlock: false, rng: &rng)
        }
        assertEmberError(.invalidArgument, ["[transformer_block]", "got 4, 2 and 0"]) {
            try TransformerBlock(dToken: 4, heads: 2, ffnHidden: 0, firstBlock: false, rng: &rng)
        }
        let block = try TransformerBlock(dToken: 4, heads: 2, ffnHidden: 4, firstBlock: true, rng: &rng)
        let net = Sequential([block])
        net.assignNames(prefix: "blocks")
        var ctx = ForwardContext(training: false)
        assertEmberError(.shapeMismatch, ["[transformer_block 'blocks.0']", "expected input of shape [batch, tokens, 4], got [2, 3, 8]"]) {
            try net(Variable(try Tensor.zeros([2, 3, 8])), &ctx)
        }
    }
}
