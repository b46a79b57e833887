// The FT-Transformer's last block computed for the CLS token alone (GraphNetwork.lastTokenSteps,
// TransformerBlock.forwardLastToken): which steps take the path, and that it gives the values,
// parameter gradients and random stream of the full computation, in training (all dropouts on)
// and in evaluation, pre- and post-norm, with and without a `repeat` of blocks.
import EmberCore
import EmberTestSupport
@testable import EmberNN
import XCTest

final class FTTransformerLastTokenTests: XCTestCase {
    /// The FT-Transformer's description; `spare` adds a second reader of the last block (a second
    /// `select_cls`, not on the way to the output), which turns the last-token path off.
    private func spec(blocks: Int, spare: Bool, prenorm: Bool = true, residual: Double = 0.1) throws -> NetworkSpec {
        var s = try Architectures.ftTransformer(TabularInputs(numeric: 5, cardinalities: [3]), nBlocks: blocks, dToken: 8,
                                                heads: 2, residualDropout: residual)
        if !prenorm {
            s.nodes = s.nodes.map { node in
                var n = node
                n.params["prenormalization"] = .bool(false)
                n.body = n.body.map { body in
                    var b = body
                    b.nodes = b.nodes.map { var m = $0; m.params["prenormalization"] = .bool(false); return m }
                    return b
                }
                return n
            }
        }
        if spare {
            let last = blocks > 1 ? "blocks" : "block_0"
            s.nodes.insert(NodeSpec("spare", .selectCls, inputs: [last]), at: s.nodes.count - 1)
        }
        return s
    }

    private func inputs(_ rng: inout RandomGenerator) throws -> [Variable] {
        let num = randomTensor([6, 5], &rng, -2, 2)
        let categ = try Tensor(shape: [6, 1], data: [0, 1, 2, 2, 1, 0])
        return [Variable(num), Variable(categ)]
    }

    func testTheLastBlockReadOnlyBySelectClsTakesThePath() throws {
        for (blocks, step) in [(1, "block_0"), (3, "blocks")] {
            var rng = RandomGenerator(seed: 1)
            let net = try GraphNetwork(try spec(blocks: blocks, spare: false), headOutputs: 1, rng: &rng)
            let pairs = net.lastTokenSteps.map { net.steps[$0.key].node.id + " -> " + net.steps[$0.value].node.id }
            XCTAssertEqual(pairs, ["\(step) -> select_cls"])
            var rng2 = RandomGenerator(seed: 1)
            let spared = try GraphNetwork(try spec(blocks: blocks, spare: true), headOutputs: 1, rng: &rng2)
            XCTAssertTrue(spared.lastTokenSteps.isEmpty, "a second reader keeps the full block")
        }
        // A block that is the network's output keeps all its tokens.
        var rng = RandomGenerator(seed: 1)
        let own = NetworkSpec(inputs: [InputSpec("x", .tensor(shape: [4, 8]))],
                              nodes: [NodeSpec("block", .transformerBlock, inputs: ["x"], params: ["n_heads": .number(2)])],
                              output: "block")
        XCTAssertTrue(try GraphNetwork(own, headOutputs: 1, rng: &rng).lastTokenSteps.isEmpty)
    }

    func testSameValuesGradientsAndRandomStreamAsTheFullBlocks() throws {
        let cases = [1, 3].flatMap { b in [true, false].flatMap { p in [true, false].map { t in (b, p, t) } } }
        for (blocks, prenorm, training) in cases {
            let what = "\(blocks) block(s), prenorm \(prenorm), training \(training)"
            var r1 = RandomGenerator(seed: 7), r2 = r1
            let fast = try GraphNetwork(try spec(blocks: blocks, spare: false, prenorm: prenorm), headOutputs: 1, rng: &r1)
            let full = try GraphNetwork(try spec(blocks: blocks, spare: true, prenorm: prenorm), headOutputs: 1, rng: &r2)
            XCTAssertFalse(fast.lastTokenSteps.isEmpty, what)
            XCTAssertTrue(full.lastTokenSteps.isEmpty, what)
            var rng = RandomGenerator(seed: 3)
            let x = try inputs(&rng)
            var c1 = ForwardContext(training: training, rng: RandomGenerator(seed: 11)), c2 = c1
            let y1 = try fast.forward(x, &c1), y2 = try full.forward(x, &c2)
            XCTAssertEqual(c1.rng, c2.rng, "\(what): as many random draws")
            assertClose(y1.value, y2.value, .reduction, "output, \(what)")
            let seed = randomTensor(y1.shape, &rng)
            try y1.backward(seed: seed)
            try y2.backward(seed: seed)
            let p1 = fast.namedParameters(), p2 = Dictionary(uniqueKeysWithValues: full.namedParameters())
            XCTAssertEqual(p1.count, p2.count)
            for (name, p) in p1 {
                let q = try XCTUnwrap(p2[name], name)
                assertClose(p.grad, try XCTUnwrap(q.grad, name), Tolerance(rtol: 1e-4, atol: 1e-6), "d/\(name), \(what)")
            }
        }
    }

    /// The block on its own: the last row of `forward`, all dropouts on, pre- and post-norm.
    func testForwardLastTokenIsTheLastRowOfForward() throws {
        var rng = RandomGenerator(seed: 5)
        for (prenorm, first) in [(true, false), (true, true), (false, false)] {
            let block = try TransformerBlock(dToken: 8, heads: 2, attentionDropout: 0.2, ffnHidden: 6, ffnDropout: 0.1,
                                             residualDropout: 0.3, prenormalization: prenorm, firstBlock: first, rng: &rng)
            let x = Variable(randomTensor([3, 5, 8], &rng), requiresGrad: true)
            var c1 = ForwardContext(training: true, rng: RandomGenerator(seed: 2)), c2 = c1
            let last = try block.forwardLastToken(x, &c1)
            let all = try block.forward(x, &c2)
            XCTAssertEqual(c1.rng, c2.rng)
            XCTAssertEqual(last.shape, [3, 1, 8])
            assertClose(last.value, try all.value.sliced(axis: 1, start: 4, end: 5), .reduction, "prenorm \(prenorm), first \(first)")
        }
        let block = try TransformerBlock(dToken: 8, heads: 2, ffnHidden: 6, firstBlock: false, rng: &rng)
        var ctx = ForwardContext(training: false)
        assertEmberError(.shapeMismatch, ["transformer_block", "[batch, tokens, 8]", "[3, 0, 8]"]) {
            _ = try block.forwardLastToken(Variable(try Tensor.zeros([3, 0, 8])), &ctx)
        }
    }
}
