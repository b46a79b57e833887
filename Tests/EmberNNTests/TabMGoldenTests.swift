import EmberCore
@testable import EmberNN
import EmberTestSupport
import Foundation
import XCTest

/// TabM against the `tabm` package (tools/golden/generate_tabm.py): the members' outputs, the
/// averaged prediction, the loss over members with its gradients, and one AdamW step through the
/// trainer; plus the package's initialisation and finite-difference gradients of the layers.
final class TabMGoldenTests: XCTestCase {
    /// The Ember model of a fixture case (as built by the generator) with its initial weights.
    func model(_ name: String, load: Bool = true) throws -> Model {
        let tab: TabularInputs, task: TaskKind, spec: NetworkSpec
        switch name {
        case "tabm":
            tab = TabularInputs(numeric: 3, cardinalities: [2, 3])
            task = .multiclass(classes: 3)
            spec = try Architectures.tabm(tab, archType: "tabm", k: 4, nBlocks: 2, dBlock: 8, dropout: 0)
        case "mini_periodic":
            tab = TabularInputs(numeric: 3, cardinalities: [2, 3])
            task = .regression
            spec = try Architectures.tabm(tab, archType: "tabm-mini", k: 4, nBlocks: 2, dBlock: 8, dropout: 0, numEmbeddings:
                .periodic(dEmbedding: 4, nFrequencies: 5, frequencyInitScale: 0.1, activation: true, lite: false))
        case "piecewise":
            tab = TabularInputs(numeric: 3, cardinalities: [2, 3])
            task = .multiclass(classes: 3)
            spec = try Architectures.tabm(tab, archType: "tabm", k: 4, nBlocks: 2, dBlock: 8, dropout: 0, numEmbeddings:
                .piecewiseLinear(dEmbedding: 4, nBins: 4, activation: false))
        default:
            tab = TabularInputs(numeric: 3)
            task = .multiclass(classes: 3)
            spec = try Architectures.tabm(tab, archType: "tabm", k: 4, nBlocks: 2, dBlock: 8, dropout: 0, numEmbeddings: .linearReLU(dEmbedding: 4))
        }
        let model = try Model(spec: spec, task: task, standardize: ["num": [false, false, false]], standardizeTarget: false, seed: 7)
        XCTAssertEqual(model.ensembleMembers, 4)
        let bytes = try Fixture.bytes("tabm_\(name)_initial.safetensors")
        let (initial, _) = try Safetensors.decode(bytes)
        XCTAssertEqual(Set(model.namedTensors.map(\.0)), Set(initial.keys), "\(name): the package's parameter names")
        if load { try model.loadWeights(safetensors: bytes) }
        return model
    }

    func testMatchesTheTabMPackage() throws {
        let fixture = try Case(Fixture.load("tabm").root)
        let cases = try fixture.cases("cases")
        XCTAssertEqual(cases.count, 4)
        for c in cases {
            let name = try c.string("name")
            let model = try model(name)
            var inputs = ["num": try c.tensor("x_num")]
            if let codes = try c.optionalTensor("x_cat") { inputs["categ"] = codes }
            let data = try Dataset(inputs: inputs, target: try c.tensor("target"))
            let n = data.count
            if name == "piecewise" {
                // The engine's bins from the training data are rtdl's compute_bins.
                let fresh = try self.model(name, load: false)
                try fresh.fitScaling(data)
                let (initial, _) = try Safetensors.decode(try Fixture.bytes("tabm_piecewise_initial.safetensors"))
                let mine = Dictionary(uniqueKeysWithValues: fresh.namedTensors)
                for key in ["num_module.impl.weight", "num_module.impl.bias"] {
                    assertClose(mine[key], try XCTUnwrap(initial[key]), .elementwise, "piecewise: \(key) from the training data")
                }
                XCTAssertTrue(try XCTUnwrap(mine["num_module.linear.weight"]).data.allSatisfy { $0 == 0 }, "zeros initially")
            }

            // The members' outputs in evaluation mode, and the prediction averaged over members.
            let xs = try model.prepare(data, rows: 0..<n, training: false)
            var eval = ForwardContext(training: false)
            let members = try GradientMode.withoutGradients { try model.network.forward(xs, &eval) }
            assertClose(members.value, try c.tensor("members_before"), .reduction, "\(name): members' outputs")
            let expected = try c.tensor("prediction_before")
            let predicted = try model.predict(data)
            assertClose(predicted, model.task.isRegression ? try expected.reshaped([n, 1]) : expected, .reduction, "\(name): averaged prediction")

            // The loss over members and its gradients.
            let loss = model.task.defaultLossFunction
            var train = ForwardContext(training: true)
            let out = try model.network.forward(try model.prepare(data, rows: 0..<n, training: true), &train)
            let target: Trainer.BatchTarget = model.task.isRegression
                ? .values(try model.prepareTarget(data, rows: 0..<n)) : .classes(try model.prepareClasses(data, rows: 0..<n))
            let l = try model.memberLoss(loss, out, target)
            assertClose(l.value, try c.tensor("loss"), .reduction, "\(name): loss over members")
            try l.backward()
            let gradients = try Case(try c.any("gradients"))
            for (pname, p) in model.network.namedParameters() {
                assertClose(p.grad, try gradients.tensor(pname), .reduction, "\(name): gradient of \(pname)")
            }

            // One AdamW step through the trainer (one batch of all rows).
            var config = TrainerConfig()
            config.batchSize = n
            config.shuffle = false
            config.optimizer = .adamw(lr: try fixture.double("lr"), weightDecay: try fixture.double("weight_decay"))
            let records = try Trainer(model: model, config: config).fit(data, epochs: 1)
            XCTAssertEqual(records.first?.trainLoss ?? .nan, Double(try c.tensor("loss").data[0]), accuracy: 1e-5, "\(name): training loss")
            let (stepped, _) = try Safetensors.decode(try Fixture.bytes("tabm_\(name)_step.safetensors"))
            for (pname, value) in model.namedTensors {
                assertClose(value, try XCTUnwrap(stepped[pname]), .optimizer, "\(name): \(pname) after one AdamW step")
            }
            let after = try GradientMode.withoutGradients { try model.network.forward(try model.prepare(data, rows: 0..<n, training: false), &eval) }
            assertClose(after.value, try c.tensor("members_after"), .reduction, "\(name): members' outputs after the step")
        }
    }

    /// The package's initialisation: the first layer's r one random sign (or normal value) per
    /// member and feature chunk (a factor's one-hot columns share it), s and the later r ones,
    /// the bias one draw shared by the members; TabM-mini's affine weight chunked likewise.
    func testInitialisationAsThePackage() throws {
        let tab = TabularInputs(numeric: 2, cardinalities: [3])
        let model = try Model(spec: try Architectures.tabm(tab, k: 5, nBlocks: 2, dBlock: 6), task: .multiclass(classes: 3), seed: 3)
        let w = Dictionary(uniqueKeysWithValues: model.namedTensors)
        let r0 = try XCTUnwrap(w["backbone.blocks.0.0.r"])
        XCTAssertEqual(r0.shape, [5, 5])
        for m in 0..<5 {
            let row = Array(r0.data[(m * 5)..<(m * 5 + 5)])
            XCTAssertTrue(row.allSatisfy { $0 == 1 || $0 == -1 }, "random signs: \(row)")
            XCTAssertEqual(row[2], row[3], "one sign for the factor's columns")
            XCTAssertEqual(row[3], row[4], "one sign for the factor's columns")
        }
        XCTAssertTrue(r0.data.contains(1) && r0.data.contains(-1))
        for name in ["backbone.blocks.0.0.s", "backbone.blocks.1.0.r", "backbone.blocks.1.0.s"] {
            XCTAssertTrue(try XCTUnwrap(w[name]).data.allSatisfy { $0 == 1 }, "\(name) is ones")
        }
        let bias = try XCTUnwrap(w["backbone.blocks.0.0.bias"])
        XCTAssertEqual(bias.shape, [5, 6])
        for m in 1..<5 { XCTAssertEqual(Array(bias.data[(m * 6)..<(m * 6 + 6)]), Array(bias.data[0..<6]), "bias shared at initialisation") }
        XCTAssertEqual(try XCTUnwrap(w["output.weight"]).shape, [5, 6, 3])
        XCTAssertEqual(w.keys.filter { $0.hasPrefix("backbone.blocks.2") }, [], "n_blocks 2")

        let mini = try Model(spec: try Architectures.tabm(tab, archType: "tabm-mini", k: 5, nBlocks: 1, dBlock: 6, startScalingInit: .normal),
                             task: .regression, seed: 3)
        let mw = Dictionary(uniqueKeysWithValues: mini.namedTensors)
        let affine = try XCTUnwrap(mw["backbone.affine.weight"])
        XCTAssertEqual(affine.shape, [5, 5])
        for m in 0..<5 { XCTAssertEqual(affine.data[m * 5 + 2], affine.data[m * 5 + 4]) }
        XCTAssertFalse(affine.data.allSatisfy { $0 == 1 || $0 == -1 }, "normal values")
        XCTAssertEqual(try XCTUnwrap(mw["backbone.blocks.0.0.weight"]).shape, [6, 5], "a shared linear layer")
        XCTAssertNil(mw["backbone.blocks.0.0.r"])
        // Defaults of the package's TabM.make: 3 blocks without embeddings, 2 with.
        let plain = try Architectures.tabm(tab)
        XCTAssertTrue(plain.nodes.contains { $0.id == "backbone.blocks.2.0" })
        let embedded = try Architectures.tabm(tab, numEmbeddings: .linearReLU(dEmbedding: 4))
        XCTAssertFalse(embedded.nodes.contains { $0.id == "backbone.blocks.2.0" })
        XCTAssertEqual(embedded.nodes.first { $0.id == "backbone.blocks.0.0" }?.params["first_scaling_init"], .string("normal"))
    }

    /// Gradients of the layers w.r.t. their inputs by central differences.
    func testLayerGradientsByFiniteDifferences() throws {
        var rng = RandomGenerator(seed: 5)
        let x = randomTensor([3, 4, 5], &rng)
        let batchEnsemble = try LinearBatchEnsemble(5, 6, k: 4, rInit: .normal, sInit: .normal, rng: &rng)
        let ensemble = try LinearEnsemble(5, 2, k: 4, rng: &rng)
        let affine = try ElementwiseAffine(k: 4, d: 5, bias: true, scalingInit: .normal, rng: &rng)
        for (name, layer) in [("linear_batch_ensemble", batchEnsemble), ("linear_ensemble", ensemble), ("elementwise_affine", affine)] as [(String, Module)] {
            try gradientCheck([x], name) { v in
                var ctx = ForwardContext(training: false)
                return try layer.forward(v[0], &ctx)
            }
        }
        let periodic = try PeriodicEmbeddings(nFeatures: 3, dEmbedding: 4, nFrequencies: 2, frequencyInitScale: 0.5, activation: false, lite: false, rng: &rng)
        let lite = try PeriodicEmbeddings(nFeatures: 3, dEmbedding: 4, nFrequencies: 2, frequencyInitScale: 0.5, activation: true, lite: true, rng: &rng)
        let xn = randomTensor([2, 3], &rng)
        for (name, layer) in [("periodic", periodic), ("periodic lite", lite)] {
            try gradientCheck([xn], step: 1e-3, name) { v in
                var ctx = ForwardContext(training: false)
                return try layer.forward(v[0], &ctx)
            }
        }
        // Input shapes are checked, not trapped on.
        var ctx = ForwardContext(training: false)
        assertEmberError(.shapeMismatch, ["linear_batch_ensemble", "[batch, 4, 5]", "[3, 5]"]) {
            _ = try batchEnsemble.forward(Variable(try Tensor.zeros([3, 5])), &ctx)
        }
    }

    func testPiecewiseBinsNeedVaryingFeaturesAndEnoughRows() throws {
        let spec = try Architectures.tabm(TabularInputs(numeric: 2), k: 2, dBlock: 4, numEmbeddings: .piecewiseLinear(dEmbedding: 2, nBins: 3, activation: false))
        let model = try Model(spec: spec, task: .regression, seed: 1)
        let constant = try Dataset(inputs: ["num": try Tensor(shape: [5, 2], data: [1, 0, 2, 0, 3, 0, 4, 0, 5, 0])], target: try Tensor.zeros([5]))
        assertEmberError(.invalidArgument, ["piecewise_linear_embeddings", "is constant in the training data"]) { try model.fitScaling(constant) }
        let few = try Dataset(inputs: ["num": try Tensor(shape: [3, 2], data: [1, 2, 3, 4, 5, 7])], target: try Tensor.zeros([3]))
        let model2 = try Model(spec: spec, task: .regression, seed: 1)
        assertEmberError(.invalidArgument, ["n_bins (3) must be less than the training rows (3)"]) { try model2.fitScaling(few) }
        // A feature with repeated values gets fewer bins: its last one stays in the last column.
        let repeated = try Dataset(inputs: ["num": try Tensor(shape: [6, 2], data: [0, 0, 0, 1, 0, 2, 0, 3, 0, 4, 1, 5])], target: try Tensor.zeros([6]))
        let model3 = try Model(spec: spec, task: .regression, standardize: ["num": [false, false]], seed: 1)
        try model3.fitScaling(repeated)
        let w = try XCTUnwrap(Dictionary(uniqueKeysWithValues: model3.namedTensors)["num_module.impl.weight"])
        XCTAssertEqual(Array(w.data[0..<3]), [0, 0, 1], "one bin [0, 1]: only the last column")
        XCTAssertTrue(w.data[3...].allSatisfy { $0 > 0 }, "three bins")
        // Piecewise-linear embeddings must read a numeric network input.
        var bad = spec
        bad.nodes.insert(NodeSpec("scaled", .relu, inputs: ["num"]), at: 0)
        bad.nodes[1].inputs = ["scaled"]
        assertEmberError(.invalidArgument, ["must read a numeric network input", "scaled"]) { _ = try Model(spec: bad, task: .regression, seed: 1) }
    }

    func testBadOptionsAreErrors() throws {
        let tab = TabularInputs(numeric: 2)
        assertEmberError(.invalidArgument, ["tabm", "arch_type", "tabm-packed"]) { _ = try Architectures.tabm(tab, archType: "tabm-packed") }
        assertEmberError(.invalidArgument, ["tabm", "k, n_blocks and d_block must be >= 1", "0"]) { _ = try Architectures.tabm(tab, k: 0) }
        assertEmberError(.invalidArgument, ["tabm", "dropout", "[0, 1)"]) { _ = try Architectures.tabm(tab, dropout: 1) }
        assertEmberError(.invalidArgument, ["tabm", "num_embeddings needs numeric features"]) {
            _ = try Architectures.tabm(TabularInputs(numeric: 0, cardinalities: [2]), numEmbeddings: .linearReLU(dEmbedding: 4))
        }
        assertEmberError(.invalidArgument, ["tabm", "start_scaling_init"]) { _ = try Architectures.tabm(tab, startScalingInit: .ones) }
        assertEmberError(.invalidArgument, ["periodic_embeddings", "frequency_init_scale", "> 0"]) {
            var rng = RandomGenerator(seed: 1)
            _ = try PeriodicEmbeddings(nFeatures: 2, dEmbedding: 2, nFrequencies: 2, frequencyInitScale: 0, activation: true, lite: false, rng: &rng)
        }
    }
}
