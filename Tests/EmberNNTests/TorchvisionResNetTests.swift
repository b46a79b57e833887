import EmberTestSupport
import Foundation
import XCTest

@testable import EmberCore
@testable import EmberNN

/// torchvision's ResNets in Ember (`Architectures.resnet18/34/50`) against torchvision
/// (tools/golden/generate_resnet.py): the same parameter names, shapes and counts, and the same
/// outputs from weights saved by `safetensors.torch.save_file(model.state_dict())`. The weights
/// file is rebuilt byte for byte from its committed header and a closed formula (see the
/// generator), so no multi-megabyte file is committed.
final class TorchvisionResNetTests: XCTestCase {
    /// The generator's formula: float32(a + b · h(p, i)), h(p, i) = ((i · 2654435761 + p · 40503 +
    /// 12345) mod 2001 − 1000) / 1000, in float64 as in numpy.
    static func formula(seed p: Int, a: Double, b: Double, count n: Int) -> [Float] {
        (0..<n).map { i in
            let k = (i * 2654435761 + p * 40503 + 12345) % 2001 - 1000
            return Float(a + b * (Double(k) / 1000))
        }
    }

    static func fnv1a64(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    /// The safetensors file torchvision wrote: 8-byte header length, the committed header, then
    /// each tensor's formula values at its offsets (F32 little-endian, or the int64 `a`).
    static func rebuildFile(_ c: Case) throws -> [UInt8] {
        let header = Array(try c.string("header").utf8)
        let length = try c.int("file_length")
        var formulas: [String: (seed: Int, a: Double, b: Double)] = [:]
        for t in try c.cases("tensors") { formulas[try t.string("name")] = (try t.int("seed"), try t.double("a"), try t.double("b")) }
        var bytes = [UInt8](repeating: 0, count: length)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { for k in 0..<8 { bytes[k] = $0[k] } }
        bytes.replaceSubrange(8..<(8 + header.count), with: header)
        guard case let .object(entries) = try JSONValue.parse(header) else { throw FixtureError.malformed("header") }
        let base = 8 + header.count
        for (name, entry) in entries where name != "__metadata__" {
            guard let f = formulas[name], let offsets = entry["data_offsets"]?.arrayValue, let begin = offsets.first?.intValue,
                  let shape = entry["shape"]?.arrayValue?.compactMap(\.intValue) else { throw FixtureError.malformed(name) }
            switch entry["dtype"]?.stringValue {
            case "F32":
                for (e, v) in formula(seed: f.seed, a: f.a, b: f.b, count: shape.reduce(1, *)).enumerated() {
                    withUnsafeBytes(of: v.bitPattern.littleEndian) { for k in 0..<4 { bytes[base + begin + 4 * e + k] = $0[k] } }
                }
            case "I64":
                withUnsafeBytes(of: Int64(f.a).littleEndian) { for k in 0..<8 { bytes[base + begin + k] = $0[k] } }
            default: throw FixtureError.malformed("\(name): dtype")
            }
        }
        return bytes
    }

    /// The Ember model of a fixture case: resnet18 or resnet50 for its image shape and classes.
    static func model(_ c: Case) throws -> Model {
        let shape = Array((try c.any("input_shape") as? [Int] ?? []).dropFirst())
        let spec = try c.string("name").hasPrefix("resnet50") ? Architectures.resnet50(imageShape: shape)
                                                              : Architectures.resnet18(imageShape: shape)
        return try Model(spec: spec, task: .multiclass(classes: try c.int("classes")), seed: 1)
    }

    static func input(_ c: Case) throws -> Tensor {
        let shape = try c.any("input_shape") as? [Int] ?? []
        let f = try Case(try c.any("input"))
        return try Tensor(shape: shape, data: formula(seed: try f.int("seed"), a: try f.double("a"), b: try f.double("b"),
                                                      count: shape.reduce(1, *)))
    }

    func testNamesShapesAndParameterCountsAreTorchvisions() throws {
        let f = try Fixture.load("resnet_names")
        let builders = [("resnet18", Architectures.resnet18), ("resnet34", Architectures.resnet34), ("resnet50", Architectures.resnet50)]
        for (name, build) in builders {
            let expected = try Case(f.root[name])
            var rng = RandomGenerator(seed: 1)
            let net = try GraphNetwork(try build([3, 224, 224]), headOutputs: 1000, rng: &rng)
            let ours = net.namedParameters().map { ($0.0, $0.1.value.shape, "float32") }
                + net.namedBuffers().map { ($0.0, $0.1.value.shape, $0.1.isCounter ? "int64" : "float32") }
            let theirs = try XCTUnwrap(try expected.any("tensors") as? [[Any]]).map { ($0[0] as? String ?? "", $0[1] as? [Int] ?? [], $0[2] as? String ?? "") }
            XCTAssertEqual(ours.count, theirs.count, name)
            let ourMap = Dictionary(uniqueKeysWithValues: ours.map { ($0.0, "\($0.1) \($0.2)") })
            for (n, shape, dtype) in theirs { XCTAssertEqual(ourMap[n], "\(shape) \(dtype)", "\(name): \(n)") }
            XCTAssertEqual(net.parameters.reduce(0) { $0 + $1.value.count }, try expected.int("parameters"), name)
        }
        XCTAssertEqual(try Case(f.root["resnet18"]).int("parameters"), 11_689_512)
        XCTAssertEqual(try Case(f.root["resnet50"]).int("parameters"), 25_557_032)
    }

    /// Logits in evaluation and training mode and the running statistics after the training-mode
    /// pass, within rtol 1e-4 and atol 1e-4 (from the fixture). Looser than `.reduction`: the
    /// values pass through 18 or 50 convolutions, each summed in another order than PyTorch's,
    /// and as many batch norms, which in training mode renormalise over as few as 12 values (the
    /// 2×2 maps of the last stage, 3 images) and amplify rounding. The generator checks that
    /// PyTorch's own float32 logits lie within 1e-5 of float64 ones (ResNet-50 in training mode:
    /// 9e-6), a tenth of the tolerance; the measured worst differences are printed.
    func testTorchvisionWeightsReproduceTorchvisionOutputs() throws {
        let f = try Fixture.load("resnet_weights")
        let tol = Tolerance(rtol: try Case(f.root).double("rtol"), atol: try Case(f.root).double("atol"))
        for c in try Case(f.root).cases("cases") {
            let name = try c.string("name")
            let bytes = try Self.rebuildFile(c)
            XCTAssertEqual(bytes.count, try c.int("file_length"), name)
            XCTAssertEqual(String(Self.fnv1a64(bytes)), try c.string("file_fnv1a64"), "\(name): the rebuilt file is torchvision's, byte for byte")

            let model = try Self.model(c)
            try model.loadWeights(safetensors: bytes)
            let counters = model.network.namedBuffers().filter { $0.1.isCounter }
            let seeds = Dictionary(uniqueKeysWithValues: try c.cases("tensors").map { (try $0.string("name"), try $0.double("a")) })
            for (n, b) in counters { XCTAssertEqual(Double(b.value.scalarValue ?? -1), seeds[n], "\(name): int64 \(n) read") }

            let x = try Self.input(c)
            let eval = try model.logits(try Dataset(inputs: ["image": x]))
            assertClose(eval, try c.tensor("logits_eval"), tol, "\(name): evaluation-mode logits")
            // The prediction plan (batch norms folded, sums and ReLUs fused; InferencePlan) on the
            // images repeated to a batch of 18, where the last stage's 2×2 maps run densely.
            let copies = 6, expected = try c.tensor("logits_eval")
            func tile(_ t: Tensor) throws -> Tensor {
                try Tensor(shape: [t.shape[0] * copies] + t.shape.dropFirst(), data: Array(repeating: t.data, count: copies).flatMap { $0 })
            }
            var planned = ForwardContext(training: false)
            planned.inference = InferenceCache()
            let folded = try GradientMode.withoutGradients { try model.network.forward([Variable(try tile(x))], &planned) }.value
            assertClose(folded, try tile(expected), tol, "\(name): evaluation-mode logits through the prediction plan")
            print("\(name): worst |Δ| through the prediction plan \(maxDifference(folded, try tile(expected)))")
            var ctx = ForwardContext(training: true)
            let train = try GradientMode.withoutGradients { try model.network.forward([Variable(x)], &ctx) }.value
            assertClose(train, try c.tensor("logits_train"), tol, "\(name): training-mode logits (batch statistics)")
            print("\(name): worst |Δ| eval \(maxDifference(eval, try c.tensor("logits_eval"))), train \(maxDifference(train, try c.tensor("logits_train")))")

            let buffers = Dictionary(uniqueKeysWithValues: model.network.namedBuffers().map { ($0.0, $0.1.value) })
            let stats = try Case(try c.any("running_stats"))
            XCTAssertFalse(stats.dict.isEmpty)
            for layer in stats.dict.keys.sorted() {
                let s = try Case(try stats.any(layer))
                assertClose(buffers["\(layer).running_mean"], try s.tensor("running_mean"), tol, "\(name): \(layer).running_mean")
                assertClose(buffers["\(layer).running_var"], try s.tensor("running_var"), tol, "\(name): \(layer).running_var")
                XCTAssertEqual(buffers["\(layer).num_batches_tracked"]?.scalarValue, Float(try s.int("num_batches_tracked")), "\(name): \(layer)")
            }
        }
    }

    func maxDifference(_ a: Tensor, _ b: Tensor) -> Float {
        zip(a.data, b.data).map { abs($0 - $1) }.max() ?? .nan
    }

    /// Weights of another shape, missing weights and integer tensors where floats belong are
    /// errors that name the tensors; nothing is loaded then.
    func testLoadingErrorsNameTheTensors() throws {
        let f = try Fixture.load("resnet_weights")
        let cases = try Case(f.root).cases("cases")
        let rgb = try XCTUnwrap(cases.first { (try? $0.string("name")) == "resnet18" })
        let bytes = try Self.rebuildFile(rgb)

        // RGB weights into a grey-image resnet18.
        let grey = try Model(spec: try Architectures.resnet18(imageShape: [1, 40, 48]), task: .multiclass(classes: 10), seed: 1)
        let before = grey.snapshotWeights()
        assertEmberError(.shapeMismatch, ["[weights]", "'conv1.weight' has shape [64, 3, 7, 7]; expected [64, 1, 7, 7]"]) {
            try grey.loadWeights(safetensors: bytes)
        }
        XCTAssertEqual(grey.snapshotWeights(), before, "nothing loaded")

        // Strict loading lists the missing names (ten, then how many more).
        let model = try Self.model(rgb)
        var tensors = try model.weights(safetensors: bytes)
        for n in ["fc.weight", "fc.bias", "layer4.1.bn2.running_var"] { tensors[n] = nil }
        assertEmberError(.corruptData, ["[weights]", "parameter 'fc.weight', parameter 'fc.bias', buffer 'layer4.1.bn2.running_var' are missing"]) {
            try model.loadWeights(tensors)
        }
        for n in tensors.keys where n.hasPrefix("layer4.") { tensors[n] = nil }
        assertEmberError(.corruptData, ["[weights]", "parameter 'layer4.0.conv1.weight'", "more are missing"]) { try model.loadWeights(tensors) }
        try model.loadWeights(tensors, strict: false)

        // Integer dtypes: counters are fine, a parameter or float buffer is not.
        func file(_ name: String, dtype: String, shape: [Int]) -> [UInt8] {
            let n = shape.reduce(1, *)
            var header = Array(#"{"\#(name)":{"dtype":"\#(dtype)","shape":\#(shape),"data_offsets":[0,\#(8 * n)]}}"#.utf8)
            while header.count % 8 != 0 { header.append(0x20) }
            var out = [UInt8](repeating: 0, count: 8 + header.count + 8 * n)
            withUnsafeBytes(of: UInt64(header.count).littleEndian) { for k in 0..<8 { out[k] = $0[k] } }
            out.replaceSubrange(8..<(8 + header.count), with: header)
            return out
        }
        assertEmberError(.corruptData, ["[weights]", "parameter 'fc.bias' is stored as I64; expected a float dtype"]) {
            try model.loadWeights(safetensors: file("fc.bias", dtype: "I64", shape: [10]), strict: false)
        }
        assertEmberError(.corruptData, ["buffer 'bn1.running_var' is stored as I64"]) {
            try model.loadWeights(safetensors: file("bn1.running_var", dtype: "I64", shape: [64]), strict: false)
        }
        XCTAssertNoThrow(try model.loadWeights(safetensors: file("bn1.num_batches_tracked", dtype: "I64", shape: []), strict: false))
        XCTAssertNoThrow(try model.loadWeights(safetensors: file("fc.bias", dtype: "F64", shape: [10]), strict: false))
    }

    func testImageShapesAndInitialisation() throws {
        assertEmberError(.invalidArgument, ["resnet18", "[channels, height, width]", "[32, 32]"]) { try Architectures.resnet18(imageShape: [32, 32]) }
        assertEmberError(.invalidArgument, ["resnet50", "at least 1 channel and images of at least 1×1 pixels", "[3, 0, 32]"]) {
            try Architectures.resnet50(imageShape: [3, 0, 32])
        }
        assertEmberError(.invalidArgument, ["resnet34", "at least 1 channel", "[0, 32, 32]"]) { try Architectures.resnet34(imageShape: [0, 32, 32]) }
        assertEmberError(.invalidArgument, ["depth must be 18, 34 or 50, got 101"]) { try Architectures.torchvisionResNet(depth: 101, imageShape: [3, 32, 32]) }

        // As in torchvision, every stride-2 step keeps at least one pixel: a 1×1 image works, and
        // odd sizes round up (⌊(h − 1)/2⌋ + 1).
        for (shape, last) in [([2, 1, 1], [512, 1, 1]), ([5, 37, 20], [512, 2, 1])] {
            let model = try Model(spec: try Architectures.resnet18(imageShape: shape), task: .multiclass(classes: 3), seed: 2)
            let out = try model.logits(try Dataset(inputs: ["image": try Tensor.zeros([2] + shape)]))
            XCTAssertEqual(out.shape, [2, 3])
            var rng = RandomGenerator(seed: 1)
            let net = try GraphNetwork(try Architectures.resnet18(imageShape: shape), headOutputs: 3, rng: &rng)
            let pool = try XCTUnwrap(net.spec.nodes.firstIndex { $0.id == "avgpool" })
            let body = NetworkSpec(inputs: net.spec.inputs, nodes: Array(net.spec.nodes[..<pool]), output: net.spec.nodes[pool - 1].id)
            XCTAssertEqual(try GraphNetwork(body, headOutputs: 3, rng: &rng).outputShape, last, "\(shape)")
        }

        // torchvision's initialisation: convolutions normal with std √(2 / fan_out), BN 1 and 0.
        var rng = RandomGenerator(seed: 3)
        let net = try GraphNetwork(try Architectures.resnet50(imageShape: [3, 64, 64]), headOutputs: 10, rng: &rng)
        let params = Dictionary(uniqueKeysWithValues: net.namedParameters().map { ($0.0, $0.1.value) })
        for (name, fanOut) in [("layer3.0.conv2.weight", 256 * 9), ("layer4.0.conv3.weight", 2048)] {
            let w = try XCTUnwrap(params[name]).data
            let mean = w.reduce(0, +) / Float(w.count)
            let std = (w.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(w.count)).squareRoot()
            XCTAssertEqual(std, (2 / Float(fanOut)).squareRoot(), accuracy: 0.02 * (2 / Float(fanOut)).squareRoot(), name)
            XCTAssertEqual(mean, 0, accuracy: 0.02 * std, name)
        }
        XCTAssertEqual(params["layer1.0.bn1.weight"]?.data, [Float](repeating: 1, count: 64))
        XCTAssertEqual(params["layer1.0.bn1.bias"]?.data, [Float](repeating: 0, count: 64))
        let fc = try XCTUnwrap(params["fc.weight"]).data
        XCTAssertLessThanOrEqual(fc.map(abs).max() ?? 1, 1 / Float(2048).squareRoot(), "fc as nn.Linear: uniform in ±1/√2048")
        XCTAssertNil(params["conv1.bias"], "convolutions without bias")
    }

    /// Node ids may spell module paths with dots; two nodes may not produce the same name.
    func testDottedNodeIdsAndNameCollisions() throws {
        let input = [InputSpec("num", .numeric(features: 3))]
        let lin: [String: JSONValue] = ["out_features": .number(2)]
        var rng = RandomGenerator(seed: 1)
        let net = try GraphNetwork(NetworkSpec(inputs: input, nodes: [NodeSpec("a.0.lin", .linear, inputs: ["num"], params: lin),
                                                                      NodeSpec("head", .head, inputs: ["a.0.lin"])], output: "head"),
                                   headOutputs: 1, rng: &rng)
        XCTAssertEqual(net.namedParameters().map(\.0), ["a.0.lin.weight", "a.0.lin.bias", "head.weight", "head.bias"])
        for bad in [".a", "a.", "a..b"] {
            assertEmberError(.invalidArgument, ["node id '\(bad)' must not start or end with '.' or contain '..'"]) {
                try GraphNetwork(NetworkSpec(inputs: input, nodes: [NodeSpec(bad, .head, inputs: ["num"])], output: bad), headOutputs: 1, rng: &rng)
            }
        }
        let body = NetworkSpec(inputs: [InputSpec("x", .tensor(shape: [2]))], nodes: [NodeSpec("lin", .linear, inputs: ["x"], params: lin)], output: "lin")
        assertEmberError(.invalidArgument, ["nodes 'a.0.lin' and 'a' both name a parameter or buffer 'a.0.lin.weight'"]) {
            try GraphNetwork(NetworkSpec(inputs: input, nodes: [
                NodeSpec("a.0.lin", .linear, inputs: ["num"], params: lin),
                NodeSpec("a", .repeat, inputs: ["a.0.lin"], params: ["times": .number(1)], body: body),
            ], output: "a"), headOutputs: 1, rng: &rng)
        }
    }
}
