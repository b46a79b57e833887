// Prediction-time evaluation plans (InferencePlan): which steps fuse, and that predicting with
// batch norms folded into the convolutions and sums and ReLUs fused gives the unfused network's
// values within 1e-5 relative. (Against torchvision: TorchvisionResNetTests' evaluation logits go
// through the plan.)
import EmberTestSupport
import XCTest

@testable import EmberCore
@testable import EmberNN

final class InferencePlanTests: XCTestCase {
    /// Non-trivial batch norm statistics and affine parameters, so that folding changes the weights.
    func perturbBatchNorms(_ model: Model, _ rng: inout RandomGenerator) throws {
        for (_, b) in model.network.namedBuffers() where !b.isCounter {
            let isVar = b.name.hasSuffix("running_var")
            b.value = randomTensor(b.value.shape, &rng, isVar ? 0.5 : -0.3, isVar ? 2 : 0.3)
        }
        for (name, p) in model.network.namedParameters() where name.contains("bn") || name.contains("downsample.1") {
            p.value = randomTensor(p.value.shape, &rng, name.hasSuffix("weight") ? 0.5 : -0.2, name.hasSuffix("weight") ? 1.5 : 0.2)
        }
    }

    /// The network's logits without a plan (each module's own forward pass), in batches of
    /// `batchSize` as `Model.logits` evaluates them.
    func unfusedLogits(_ model: Model, _ x: Tensor, batchSize: Int) throws -> [Float] {
        var ctx = ForwardContext(training: false)
        XCTAssertNil(ctx.inference)
        var out: [Float] = []
        let n = x.shape[0]
        for start in stride(from: 0, to: n, by: batchSize) {
            let rows = try x.gatherRows(start..<min(n, start + batchSize))
            out += try GradientMode.withoutGradients { try model.network.forward([Variable(rows)], &ctx) }.value.data
        }
        return out
    }

    func testResNet18PlanFusesEveryConvolutionChain() throws {
        var rng = RandomGenerator(seed: 1)
        let net = try GraphNetwork(try Architectures.resnet18(imageShape: [3, 32, 32]), headOutputs: 10, rng: &rng)
        let plan = try InferencePlan(net)
        var convolutions = 0, residuals = 0, relus = 0, fused = 0, linears = 0
        for step in plan.steps {
            switch step {
            case .module: break
            case .fused: fused += 1
            case let .convolution(_, _, residual, relu):
                convolutions += 1
                if residual != nil { residuals += 1 }
                if relu { relus += 1 }
            case let .linear(_, _, relu):
                linears += 1
                XCTAssertFalse(relu, "the head's linear layer is the output")
            case .linearOneHot: XCTFail("a ResNet has no one-hot input")
            }
        }
        // 20 convolutions (stem, 16 in the blocks, 3 downsamples), each with its batch norm; the
        // second convolution of each of the 8 blocks takes the sum and the block's ReLU; the stem
        // and the first convolution of each block take their ReLU.
        XCTAssertEqual(convolutions, 20)
        XCTAssertEqual(residuals, 8)
        XCTAssertEqual(relus, 17)
        XCTAssertEqual(fused, 20 + 8 + 17, "batch norms, sums and ReLUs computed by the convolutions")
        XCTAssertEqual(linears, 1)
        let modules = zip(net.steps, plan.steps).compactMap { step, p -> String? in
            if case .module = p { return step.node.id } else { return nil }
        }
        XCTAssertEqual(modules, ["maxpool", "avgpool", "flatten"])
    }

    /// A convolution whose value is read twice, or that is the output, keeps its batch norm.
    func testValuesReadElsewhereAreNotFused() throws {
        let spec = NetworkSpec(inputs: [InputSpec("image", .tensor(shape: [2, 5, 5]))], nodes: [
            NodeSpec("conv", .conv2d, inputs: ["image"], params: ["out_channels": .number(3), "kernel_size": .number(3), "padding": .number(1)]),
            NodeSpec("bn", .batchNorm, inputs: ["conv"]),
            NodeSpec("relu", .relu, inputs: ["bn"]),
            NodeSpec("sum", .mergeSum, inputs: ["relu", "conv"]),
            NodeSpec("conv2", .conv2d, inputs: ["sum"], params: ["out_channels": .number(3), "kernel_size": .number(1)]),
        ], output: "conv2")
        var rng = RandomGenerator(seed: 3)
        let net = try GraphNetwork(spec, headOutputs: 1, rng: &rng)
        let plan = try InferencePlan(net)
        let kinds = plan.steps.map { step -> String in
            switch step {
            case .module: return "module"
            case .fused: return "fused"
            case let .convolution(_, _, residual, relu): return "conv residual \(residual != nil) relu \(relu)"
            case let .linear(_, _, relu): return "linear relu \(relu)"
            case .linearOneHot: return "linear one-hot"
            }
        }
        XCTAssertEqual(kinds, ["conv residual false relu false", "module", "module", "module", "conv residual false relu false"])
    }

    func testFoldedPredictionsMatchTheUnfusedNetwork() throws {
        var rng = RandomGenerator(seed: 5)
        // 32×32 and 64×64 (ResNet's last stages on 2×2 maps run densely), odd sizes, a last
        // batch of one sample; runs of fewer than `minimumSamples` samples run unfused.
        let small = InferencePlan.minimumSamples - 1
        for (shape, batch) in [([3, 32, 32], 64), ([3, 64, 64], 65), ([3, 37, 20], small)] {
            let model = try Model(spec: try Architectures.resnet18(imageShape: shape), task: .multiclass(classes: 10), seed: 2)
            try perturbBatchNorms(model, &rng)
            let x = randomTensor([batch] + shape, &rng, 0, 1)
            let planned = try model.logits(try Dataset(inputs: ["image": x]), batchSize: 32)
            let unfused = try unfusedLogits(model, x, batchSize: 32)
            if batch < InferencePlan.minimumSamples {
                XCTAssertEqual(planned.data.map(\.bitPattern), unfused.map(\.bitPattern), "\(shape): \(batch) samples run unfused")
                continue
            }
            let scale = Double(unfused.map { abs($0) }.max() ?? 0)
            XCTAssertGreaterThan(scale, 0)
            let worst = zip(planned.data, unfused).map { Double(abs($0 - $1)) }.max() ?? .nan
            XCTAssertLessThanOrEqual(worst, 1e-5 * scale, "\(shape): folded logits within 1e-5 of the largest (\(scale))")
            XCTAssertNotEqual(planned.data, unfused, "\(shape): folding rounds differently, so the plan did run")
        }
    }

    /// Linear layers run with the ReLU that alone reads them (the MLP's hidden layers, in a
    /// repeated block), a linear layer whose value is read twice without its ReLU; predictions of
    /// the plan equal the unfused network's bit for bit with Ember's kernels everywhere (the bias and
    /// the ReLU in the product's epilogue give the bits of the separate passes), and within float
    /// rounding with the default kernels (OpenBLAS's products for batches of more than 64 rows in
    /// the unfused network, except on AVX2-only CPUs). Batches of 1 to 300 rows (k > 256 in the
    /// first layer: two k blocks).
    func testLinearLayersFuseTheirReLUAndMatchTheUnfusedNetwork() throws {
        let spec = NetworkSpec(inputs: [InputSpec("x", .numeric(features: 300))], nodes: [
            NodeSpec("fc1", .linear, inputs: ["x"], params: ["out_features": .number(40)]),
            NodeSpec("relu1", .relu, inputs: ["fc1"]),
            NodeSpec("fc2", .linear, inputs: ["relu1"], params: ["out_features": .number(7)]),
            NodeSpec("relu2", .relu, inputs: ["fc2"]),
            NodeSpec("sum", .mergeSum, inputs: ["relu2", "fc2"]),
        ], output: "sum")
        var rng = RandomGenerator(seed: 9)
        let net = try GraphNetwork(spec, headOutputs: 3, rng: &rng)
        let kinds = try InferencePlan(net).steps.map { step -> String in
            switch step {
            case .module: return "module"
            case .fused: return "fused"
            case .convolution: return "conv"
            case let .linear(_, _, relu): return "linear relu \(relu)"
            case .linearOneHot: return "linear one-hot"
            }
        }
        // fc2's value is read by relu2 and by the sum: it keeps its own step.
        XCTAssertEqual(kinds, ["fused", "linear relu true", "linear relu false", "module", "module"])

        let model = try Model(spec: try Architectures.mlp(TabularInputs(numeric: 300), neurons: [64, 64], p: 0.2),
                              task: .multiclass(classes: 3), seed: 4)
        let saved = BLAS.kernels
        defer { BLAS.kernels = saved }
        for n in [1, 63, 64, 65, 300] {
            let x = randomTensor([n, 300], &rng, -2, 2)
            for kernels in [BLAS.Kernels.ember, .byShape] {
                BLAS.kernels = kernels
                let planned = try model.logits(try Dataset(inputs: ["num": x]), batchSize: 128)
                let unfused = try unfusedLogits(model, x, batchSize: 128)
                if kernels == .ember || n < InferencePlan.minimumSamples {
                    XCTAssertEqual(planned.data.map(\.bitPattern), unfused.map(\.bitPattern), "\(n) rows, \(kernels)")
                } else {
                    let scale = Double(unfused.map { abs($0) }.max() ?? 0)
                    let worst = zip(planned.data, unfused).map { Double(abs($0 - $1)) }.max() ?? .nan
                    XCTAssertLessThanOrEqual(worst, 1e-5 * scale, "\(n) rows, \(kernels)")
                    // Where by shape the unfused first product runs OpenBLAS's kernels (not on AVX2-only
                    // CPUs, where x·Wᵀ of depth 300 and 64 columns runs Ember's), the bits differ.
                    if n == 300 && !BLAS.usesEmber(rows: n, columns: 64, depth: 300, transA: false) {
                        XCTAssertNotEqual(planned.data, unfused, "the plan ran (Ember's kernels, not OpenBLAS's)")
                    }
                }
            }
        }
        // With the default kernels a row's prediction has the same bits whatever else is predicted
        // with it: one row, 5 rows (no plan) and the same rows among 300 (the plan, batches of 128).
        BLAS.kernels = BLAS.defaultKernels
        let x = randomTensor([300, 300], &rng, -2, 2)
        let all = try model.logits(try Dataset(inputs: ["num": x]), batchSize: 128).data
        let five = try model.logits(try Dataset(inputs: ["num": try x.gatherRows(130..<135)]), batchSize: 128).data
        XCTAssertEqual(five.map(\.bitPattern), all[(130 * 3)..<(135 * 3)].map(\.bitPattern))
        let one = try model.logits(try Dataset(inputs: ["num": try x.gatherRows(299..<300)]), batchSize: 128).data
        XCTAssertEqual(one.map(\.bitPattern), all[(299 * 3)...].map(\.bitPattern))
    }

    /// The plan's steps as short names.
    func kinds(_ net: GraphNetwork) throws -> [String] {
        try InferencePlan(net).steps.map { step -> String in
            switch step {
            case .module: return "module"
            case .fused: return "fused"
            case .convolution: return "conv"
            case let .linear(_, _, relu): return "linear relu \(relu)"
            case let .linearOneHot(_, dense, _, relu): return "one-hot linear\(dense == nil ? "" : " after dense") relu \(relu)"
            }
        }
    }

    /// A linear layer reading one-hot columns (after numeric features, or alone) adds its weight's
    /// columns at the codes instead of multiplying by the one-hot matrix: the unfused network's
    /// bits with Ember's kernels, its values within float rounding with the others; unseen codes
    /// (outside the levels) add nothing, as their zero one-hot rows do; float codes (no integer
    /// codes) take the modules' path.
    func testOneHotColumnsFoldIntoTheLinearLayerReadingThem() throws {
        var rng = RandomGenerator(seed: 17)
        let saved = BLAS.kernels
        defer { BLAS.kernels = saved }
        for inputs in [TabularInputs(numeric: 8, cardinalities: [5, 3]), TabularInputs(numeric: 0, cardinalities: [4])] {
            let spec = try Architectures.mlp(inputs, neurons: [64, 32])
            let model = try Model(spec: spec, task: .binary, seed: 3)
            let numeric = inputs.numeric > 0
            XCTAssertEqual(try kinds(model.network), (numeric ? ["fused", "fused"] : ["fused"])
                           + ["fused", "one-hot linear\(numeric ? " after dense" : "") relu true", "fused", "linear relu true", "linear relu false"],
                           "the one-hot step\(numeric ? " and the concatenation" : "") fold into linear_0")
            for n in [64, 65, 300] {
                let k = inputs.cardinalities.count
                // Codes of every level and beyond (5 and 9 are unseen for 5 levels; 3 and 4 for 3 and 4).
                let codes = try IndexTensor(shape: [n, k], data: (0..<(n * k)).map { ($0 * 7 + $0 / k) % (inputs.cardinalities[$0 % k] + 2) })
                let x = randomTensor([n, max(inputs.numeric, 1)], &rng, -3, 3)
                let data = try Dataset(inputs: numeric ? ["num": x] : [:], codes: ["categ": codes])
                for kernels in [BLAS.Kernels.ember, .byShape, .openBLAS] {
                    BLAS.kernels = kernels
                    let planned = try model.logits(data, batchSize: 128).data
                    var ctx = ForwardContext(training: false)
                    var unfused: [Float] = []
                    for start in stride(from: 0, to: n, by: 128) {
                        let xs = try model.prepare(data, rows: start..<min(n, start + 128), training: false)
                        unfused += try GradientMode.withoutGradients { try model.network.forward(xs, &ctx) }.value.data
                    }
                    if kernels == .ember {
                        XCTAssertEqual(planned.map(\.bitPattern), unfused.map(\.bitPattern), "\(n) rows, \(inputs.cardinalities)")
                    } else {
                        let scale = Double(unfused.map { abs($0) }.max() ?? 0)
                        let worst = zip(planned, unfused).map { Double(abs($0 - $1)) }.max() ?? .nan
                        XCTAssertLessThanOrEqual(worst, 1e-5 * scale, "\(n) rows, \(kernels)")
                    }
                }
                // The same codes as floats: no integer codes, so the modules' path, the same values.
                BLAS.kernels = .ember
                let floats = try Dataset(inputs: (numeric ? ["num": x] : [:]).merging(["categ": codes.floatTensor]) { a, _ in a })
                XCTAssertEqual(try model.logits(floats, batchSize: 128).data.map(\.bitPattern),
                               try model.logits(data, batchSize: 128).data.map(\.bitPattern), "\(n) rows from float codes")
                // With the default kernels a row's prediction has the same bits whatever else is
                // predicted with it: one row (no plan) and the same row among n (the fold).
                BLAS.kernels = BLAS.defaultKernels
                let all = try model.logits(data, batchSize: 128).data
                let row = n - 2
                let one = try Dataset(inputs: numeric ? ["num": try x.gatherRows(row..<(row + 1))] : [:],
                                      codes: ["categ": try codes.gatherRows(row..<(row + 1), op: "test")])
                XCTAssertEqual(try model.logits(one, batchSize: 128).data.map(\.bitPattern), [all[row].bitPattern], "row \(row) alone")
            }
        }
        // A batch of 4,000 rows with two engine threads: the one-pass layer's rows are spread over
        // them (chunks from 1,638 rows for this layer), the same bits as one thread and as the
        // unfused network.
        do {
            let savedThreads = Engine.numThreads
            defer { XCTAssertNoThrow(try Engine.setNumThreads(savedThreads)) }
            BLAS.kernels = .ember
            let inputs = TabularInputs(numeric: 8, cardinalities: [5, 3]), n = 4000
            let model = try Model(spec: try Architectures.mlp(inputs, neurons: [64, 32]), task: .binary, seed: 7)
            let codes = try IndexTensor(shape: [n, 2], data: (0..<(2 * n)).map { ($0 * 7 + $0 / 2) % (inputs.cardinalities[$0 % 2] + 2) })
            let data = try Dataset(inputs: ["num": randomTensor([n, 8], &rng, -3, 3)], codes: ["categ": codes])
            try Engine.setNumThreads(1)
            let one = try model.logits(data, batchSize: 4096).data.map(\.bitPattern)
            var ctx = ForwardContext(training: false)
            let xs = try model.prepare(data, rows: 0..<n, training: false)
            XCTAssertEqual(one, try GradientMode.withoutGradients { try model.network.forward(xs, &ctx) }.value.data.map(\.bitPattern),
                           "\(n) rows, one thread, against the unfused network")
            try Engine.setNumThreads(2)
            XCTAssertEqual(try model.logits(data, batchSize: 4096).data.map(\.bitPattern), one, "\(n) rows, two threads")
        }
        // More than one depth block (8 + 300 inputs): not folded (the blocks would group the one-hot
        // weights otherwise), the unfused layer's bits.
        let wide = try Model(spec: try Architectures.mlp(TabularInputs(numeric: 8, cardinalities: [200, 100]), neurons: [16]),
                             task: .binary, seed: 5)
        XCTAssertEqual(try kinds(wide.network), ["module", "module", "fused", "linear relu true", "linear relu false"])
        let n = 80
        let wideCodes = try IndexTensor(shape: [n, 2], data: (0..<(2 * n)).map { $0 % 2 == 0 ? ($0 * 37) % 200 : ($0 * 11) % 100 })
        let wideData = try Dataset(inputs: ["num": randomTensor([n, 8], &rng, -3, 3)], codes: ["categ": wideCodes])
        BLAS.kernels = .ember
        var ctx = ForwardContext(training: false)
        let xs = try wide.prepare(wideData, rows: 0..<n, training: false)
        XCTAssertEqual(try wide.logits(wideData, batchSize: 128).data.map(\.bitPattern),
                       try GradientMode.withoutGradients { try wide.network.forward(xs, &ctx) }.value.data.map(\.bitPattern))
        // A one-hot value read by another step too keeps its own step (and the linear layer its product).
        let spec = NetworkSpec(inputs: [InputSpec("categ", .categorical(cardinalities: [3]))], nodes: [
            NodeSpec("one_hot", .oneHot, inputs: ["categ"]),
            NodeSpec("fc", .linear, inputs: ["one_hot"], params: ["out_features": .number(4)]),
            NodeSpec("both", .mergeCat, inputs: ["fc", "one_hot"], params: ["dim": .number(-1)]),
        ], output: "both")
        XCTAssertEqual(try kinds(try GraphNetwork(spec, headOutputs: 1, rng: &rng)), ["module", "linear relu false", "module"])
    }
}
