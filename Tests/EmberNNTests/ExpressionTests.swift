// Custom layers (node op `fn`) and losses (`Loss.expression`): expressions of EmberCore's tape
// ops, parsed from JSON, evaluated, differentiated (central differences) and checked against the
// built-in layers and losses they can express.
import EmberTestSupport
import EmberCore
@testable import EmberNN
import XCTest

final class ExpressionTests: XCTestCase {
    func parse(_ text: String) throws -> NetworkExpression { try NetworkExpression(json: try JSONValue.parse(text)) }

    func testSwishLayerAsANodeMatchesItsDefinitionAndGradientCheck() throws {
        let swish = try parse(#"{"op": "mul", "args": [{"arg": 0}, {"op": "sigmoid", "args": [{"arg": 0}]}]}"#)
        XCTAssertEqual(try NetworkExpression(json: swish.json), swish, "JSON round trip")
        let spec = NetworkSpec(inputs: [InputSpec("num", .numeric(features: 3))], nodes: [
            NodeSpec("act", .fn, inputs: ["num"], params: ["expr": swish.json]),
        ], output: "act")
        var rng = RandomGenerator(seed: 1)
        let net = try GraphNetwork(spec, headOutputs: 1, rng: &rng)
        XCTAssertEqual(net.outputShape, [3])
        let x = try Tensor(shape: [2, 3], data: [-2, -0.5, 0.1, 0.7, 1.5, 3])
        var ctx = ForwardContext(training: false)
        let out = try net.forward([Variable(x)], &ctx)
        for (o, v) in zip(out.value.data, x.data) { XCTAssertEqual(o, v * EmberNN.sigmoid(v), accuracy: 1e-6) }
        try gradientCheck([x], "swish") { v in
            var c = ForwardContext(training: false)
            return try sum(try net.forward([v[0]], &c))
        }
    }

    func testEveryOpEvaluatesAndDifferentiates() throws {
        // (x0 - x1)^2 / 2 + pmax(x0, x1) ... every op once, on values away from kinks.
        let ops = [
            #"{"op": "add", "args": [{"arg": 0}, {"const": 1.5}]}"#, #"{"op": "sub", "args": [{"arg": 0}, {"arg": 1}]}"#,
            #"{"op": "div", "args": [{"arg": 0}, {"op": "exp", "args": [{"arg": 1}]}]}"#,
            #"{"op": "pow", "args": [{"arg": 0}, {"const": 3}]}"#, #"{"op": "maximum", "args": [{"arg": 0}, {"arg": 1}]}"#,
            #"{"op": "minimum", "args": [{"arg": 0}, {"arg": 1}]}"#, #"{"op": "neg", "args": [{"arg": 0}]}"#,
            #"{"op": "log", "args": [{"op": "square", "args": [{"arg": 0}]}]}"#, #"{"op": "sqrt", "args": [{"op": "abs", "args": [{"arg": 0}]}]}"#,
            #"{"op": "log1p", "args": [{"op": "exp", "args": [{"arg": 1}]}]}"#, #"{"op": "sin", "args": [{"arg": 0}]}"#,
            #"{"op": "cos", "args": [{"arg": 0}]}"#, #"{"op": "tanh", "args": [{"arg": 0}]}"#, #"{"op": "relu", "args": [{"arg": 0}]}"#,
            #"{"op": "sum", "args": [{"arg": 0}], "dim": 1}"#, #"{"op": "mean", "args": [{"arg": 0}], "dim": -1}"#,
            #"{"op": "softmax", "args": [{"arg": 0}], "dim": 1}"#, #"{"op": "log_softmax", "args": [{"arg": 0}], "dim": 1}"#,
            #"{"op": "select", "args": [{"arg": 0}], "dim": 1, "index": 2}"#,
        ]
        let a = try Tensor(shape: [2, 3], data: [-1.3, 0.4, 0.9, 1.7, -0.6, 2.2])
        let b = try Tensor(shape: [2, 3], data: [0.5, -0.2, 1.4, -1.1, 0.8, 0.3])
        for text in ops {
            let e = try parse(text)
            // Both leaves take part (an unread one with a zero gradient).
            try gradientCheck([a, b], text) { v in try sum(try e.evaluate(v)) + (try sum(v[0]) + (try sum(v[1]))) * 0 }
        }
        let selected = try parse(ops.last!).evaluate([Variable(a)])
        XCTAssertEqual(selected.shape, [2])
        XCTAssertEqual(selected.value.data, [0.9, 2.2])
    }

    func testCustomLossesEqualTheBuiltInOnes() throws {
        let mae = try parse(#"{"op": "mean", "args": [{"op": "abs", "args": [{"op": "sub", "args": [{"arg": 0}, {"arg": 1}]}]}]}"#)
        let ce = try parse(#"{"op": "neg", "args": [{"op": "mean", "args": [{"op": "sum", "args": [{"op": "mul", "args": [{"arg": 1}, {"op": "log_softmax", "args": [{"arg": 0}], "dim": 1}]}], "dim": 1}]}]}"#)
        let pred = try Tensor(shape: [4, 1], data: [0.3, -1.2, 2.5, 0.9])
        let y = try Tensor(shape: [4], data: [0.1, -0.4, 1.0, 2.0])
        for (custom, builtin, output, target) in [(mae, LossFunction(.l1), pred, y),
                                                 (ce, LossFunction(.crossEntropy), try Tensor(shape: [2, 3], data: [0.2, -1, 0.5, 1, 2, -0.5]),
                                                  try Tensor(shape: [2], data: [2, 0]))] {
            var f = LossFunction(.expression)
            f.expression = custom
            let o1 = Variable(output, requiresGrad: true), o2 = Variable(output, requiresGrad: true)
            let v1 = try f(o1, target), v2 = try builtin(o2, target)
            XCTAssertEqual(v1.value.data[0], v2.value.data[0], accuracy: 1e-6)
            try v1.backward()
            try v2.backward()
            assertClose(o1.grad, try XCTUnwrap(o2.grad), .reduction, "\(builtin.kind.rawValue) gradient")
        }
    }

    func testErrorsNameTheNodeAndTheProblem() throws {
        func build(_ expr: String, features: Int = 3) throws {
            let spec = NetworkSpec(inputs: [InputSpec("num", .numeric(features: features))], nodes: [
                NodeSpec("custom", .fn, inputs: ["num"], params: ["expr": try JSONValue.parse(expr)]),
            ], output: "custom")
            var rng = RandomGenerator(seed: 1)
            _ = try GraphNetwork(spec, headOutputs: 1, rng: &rng)
        }
        assertEmberError(.invalidArgument, ["node 'custom' (fn)", "'sum' in a layer needs a 'dim' other than 0"]) {
            try build(#"{"op": "sum", "args": [{"arg": 0}]}"#)
        }
        assertEmberError(.invalidArgument, ["node 'custom' (fn)", "reads input 2; the node has 1"]) {
            try build(#"{"op": "add", "args": [{"arg": 0}, {"arg": 1}]}"#)
        }
        assertEmberError(.invalidArgument, ["node 'custom' (fn)", "unknown op \"gamma\""]) {
            try build(#"{"op": "gamma", "args": [{"arg": 0}]}"#)
        }
        assertEmberError(.invalidArgument, ["node 'custom' (fn)", "'select' index 5 is out of range"]) {
            try build(#"{"op": "select", "args": [{"arg": 0}], "dim": 1, "index": 5}"#)
        }
        var deep = #"{"arg": 0}"#
        for _ in 0..<110 { deep = #"{"op": "neg", "args": ["# + deep + "]}" }
        assertEmberError(.invalidArgument, ["nested deeper than 100 levels"]) { try build(deep) }
        var f = LossFunction(.expression)
        f.expression = try parse(#"{"op": "sub", "args": [{"arg": 0}, {"arg": 1}]}"#)
        assertEmberError(.shapeMismatch, ["[expression]", "must give one number, got shape [2, 1]"]) {
            try f(Variable(try Tensor(shape: [2, 1], data: [1, 2])), try Tensor(shape: [2], data: [0, 1]))
        }
    }
}
