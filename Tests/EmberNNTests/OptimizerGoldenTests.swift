// Every optimizer and option against PyTorch (Fixtures/nn_optim.json, written by
// tools/golden/generate_nn.py): five steps on fixed parameters with fixed gradients, parameter groups
// (with a learning rate changed mid-way), the optimizer state after three steps by PyTorch's
// state_dict names, and state save/restore round trips. Tolerance:
// docs/architecture.md#numerics-contract (optimizer steps rtol 1e-5, atol 1e-6).
import EmberTestSupport
import EmberCore
@testable import EmberNN
import Foundation
import XCTest

/// The flags among PyTorch's optimizer hyperparameters (JSON booleans; Ember stores 0/1).
let torchOptimizerFlags: Set<String> = ["nesterov", "amsgrad", "centered"]

/// Reads hyperparameters written with PyTorch's names (all of them, booleans included) as Ember
/// options; `kind` is skipped.
func torchOptimizerOptions(_ c: Case) throws -> [String: Double] {
    var out: [String: Double] = [:]
    for key in c.dict.keys where key != "kind" {
        out[key] = torchOptimizerFlags.contains(key) ? (try c.bool(key) ? 1 : 0) : try c.double(key)
    }
    return out
}

/// The Ember configuration of a fixture's full PyTorch configuration (every hyperparameter given).
func torchOptimizerConfig(_ c: Case) throws -> OptimizerConfig {
    let name = try c.string("kind")
    guard let kind = OptimizerKind(rawValue: name) else { throw FixtureError.malformed("optimizer kind \(name)") }
    let options = try torchOptimizerOptions(c)
    // The fixture spells out every hyperparameter Ember knows, and nothing else.
    XCTAssertEqual(Set(options.keys), Set(kind.defaults.keys), "hyperparameters of \(name)")
    return OptimizerConfig(kind, options)
}

final class OptimizerGoldenTests: XCTestCase {
    var fixture: Fixture!
    /// Parameter names in fixture order ("w" [3, 4], "b" [4]).
    var names: [String] = []
    var initial: [String: Tensor] = [:]
    /// grads[name][step]
    var grads: [String: [Tensor]] = [:]

    override func setUpWithError() throws {
        fixture = try Fixture.load("nn_optim")
        names = []
        for p in try Case(fixture.root).cases("params") {
            let n = try p.string("name")
            names.append(n)
            initial[n] = try p.tensor("value")
            guard let gs = try p.any("grads") as? [Any] else { throw FixtureError.malformed("grads") }
            grads[n] = try gs.map(tensorFrom)
            XCTAssertEqual(grads[n]?.count, 5)
        }
        XCTAssertEqual(names, ["w", "b"])
    }

    /// Fresh parameters holding the initial values (or `values`), named as in the fixture.
    func makeParameters(_ values: [String: Tensor]? = nil) -> [Parameter] {
        names.map { Parameter((values ?? initial)[$0]!, name: $0) }
    }

    /// Sets the fixture's gradients of step `step` (0-based) and steps.
    func step(_ optimizer: Optimizer, _ params: [Parameter], _ step: Int) throws {
        for p in params { p.grad = grads[p.name]![step] }
        try optimizer.step()
    }

    /// after[name][step] from a case.
    func expectedAfter(_ c: Case) throws -> [String: [Tensor]] {
        let a = try Case(c.any("after"))
        var out: [String: [Tensor]] = [:]
        for n in names {
            guard let steps = try a.any(n) as? [Any] else { throw FixtureError.malformed("after.\(n)") }
            out[n] = try steps.map(tensorFrom)
        }
        return out
    }

    /// The parameter groups of a case: parameters by name, each group with its overrides.
    func groupSpecs(_ c: Case, _ params: [Parameter]) throws -> [([Parameter], [String: Double])] {
        let byName = Dictionary(uniqueKeysWithValues: params.map { ($0.name, $0) })
        return try c.cases("groups").map { g in
            guard let pnames = try g.any("params") as? [String] else { throw FixtureError.malformed("params") }
            return (pnames.map { byName[$0]! }, try torchOptimizerOptions(try Case(g.any("options"))))
        }
    }

    // MARK: Steps

    func testEveryOptimizerOptionMatchesTorch() throws {
        let cases = try Case(fixture.root).cases("cases")
        let kinds = Set(try cases.map { try Case($0.any("config")).string("kind") })
        XCTAssertEqual(kinds, Set(OptimizerKind.allCases.map(\.rawValue)), "every optimizer is covered")
        // Every hyperparameter of every optimizer is set away from its default in some case.
        for kind in OptimizerKind.allCases {
            for (option, value) in kind.defaults {
                let varied = try cases.contains { c in
                    let cfg = try Case(c.any("config"))
                    return try cfg.string("kind") == kind.rawValue && (try torchOptimizerOptions(cfg))[option] != value
                }
                XCTAssertTrue(varied, "\(kind.rawValue).\(option) is exercised away from its default")
            }
        }
        for c in cases {
            let name = try c.string("name")
            let params = makeParameters()
            let optimizer = try torchOptimizerConfig(try Case(c.any("config"))).make(params)
            let after = try expectedAfter(c)
            for k in 0..<5 {
                let before = params.map(\.value)
                try step(optimizer, params, k)
                for (i, p) in params.enumerated() {
                    XCTAssertNotEqual(p.value, before[i], "\(name): \(p.name) moved at step \(k + 1)")
                    assertClose(p.value, after[p.name]![k], .optimizer, "\(name): \(p.name) after step \(k + 1)")
                }
            }
        }
    }

    // MARK: Parameter groups

    func testParameterGroupsMatchTorch() throws {
        let cases = try Case(fixture.root).cases("groups")
        XCTAssertEqual(cases.count, 3)
        for c in cases {
            let name = try c.string("name")
            let config = try torchOptimizerConfig(try Case(c.any("config")))
            let params = makeParameters()
            let groups = try groupSpecs(c, params)
            let optimizer = try config.make(groups: groups)
            XCTAssertEqual(optimizer.groups.count, groups.count)
            for (i, g) in groups.enumerated() {
                // Each group holds the base options overridden by its own.
                for (k, v) in config.options { XCTAssertEqual(optimizer.groups[i][k], g.1[k] ?? v, "\(name): group \(i) \(k)") }
            }
            let after = try expectedAfter(c)
            let changes = try c.cases("changes")
            for k in 0..<5 {
                for ch in changes where try ch.int("before_step") == k + 1 {
                    let g = try ch.int("group"), option = try ch.string("name"), value = try ch.double("value")
                    try optimizer.setOption(option, value, group: g)
                    XCTAssertEqual(optimizer.groups[g][option], value)
                    XCTAssertNotEqual(optimizer.groups[1 - g][option], value, "\(name): only group \(g) changed")
                }
                try step(optimizer, params, k)
                for p in params {
                    assertClose(p.value, after[p.name]![k], .optimizer, "\(name): \(p.name) after step \(k + 1)")
                }
            }
        }
    }

    func testSetOptionValidatesAndNamesTheGroup() throws {
        let params = makeParameters()
        let optimizer = try OptimizerConfig.adam().make(groups: [([params[0]], [:]), ([params[1]], ["lr": 0.1])])
        assertEmberError(.invalidArgument, ["[opt.lr]", "(group 1)", "got -1.0"]) {
            try optimizer.setOption("lr", -1, group: 1)
        }
        assertEmberError(.invalidArgument, ["[optimizer]", "group 2 does not exist; there are 2"]) {
            try optimizer.setOption("lr", 0.1, group: 2)
        }
        assertEmberError(.invalidArgument, ["[adam]", "unknown hyperparameter 'momentum'"]) {
            try optimizer.setOption("momentum", 0.9)
        }
        // A failed update leaves the options unchanged.
        XCTAssertEqual(optimizer.groups[1]["lr"], 0.1)
        try optimizer.setOption("lr", 0.5)
        XCTAssertEqual(optimizer.groups.map { $0["lr"] }, [0.5, 0.5])
    }

    // MARK: State

    /// Ember's state after three steps holds PyTorch's state_dict entries under the same names
    /// (`<parameter>.<state name>`), shapes and values.
    ///
    /// NOTE (deliberate difference): Ember records a step count for SGD too (`w.step`); PyTorch's
    /// SGD keeps none (and no state at all without momentum).
    func testStateAfterThreeStepsMatchesTorchStateDict() throws {
        for c in try Case(fixture.root).cases("cases") + (try Case(fixture.root).cases("groups")) {
            let name = try c.string("name")
            let config = try torchOptimizerConfig(try Case(c.any("config")))
            let params = makeParameters()
            let grouped = c.dict["groups"] != nil
            let optimizer = grouped ? try config.make(groups: try groupSpecs(c, params)) : try config.make(params)
            let changes = grouped ? try c.cases("changes") : []
            for k in 0..<3 {
                for ch in changes where try ch.int("before_step") == k + 1 {
                    try optimizer.setOption(try ch.string("name"), try ch.double("value"), group: try ch.int("group"))
                }
                try step(optimizer, params, k)
            }
            let expected = try Case(c.any("state_after_3"))
            var ember = Dictionary(uniqueKeysWithValues: optimizer.stateTensors())
            if config.kind == .sgd {
                for n in names {
                    XCTAssertEqual(ember.removeValue(forKey: "\(n).step")?.scalarValue, 3, "\(name): Ember's SGD step count")
                }
            }
            XCTAssertEqual(Set(ember.keys), Set(expected.dict.keys), "\(name): state names")
            for (key, t) in ember {
                guard expected.dict[key] != nil else { continue }
                if key.hasSuffix(".step") {
                    XCTAssertEqual(t.shape, [], "\(name): \(key) is a scalar")
                    XCTAssertEqual(Double(t.scalarValue ?? -1), try expected.double(key), "\(name): \(key)")
                } else {
                    assertClose(t, try expected.tensor(key), .optimizer, "\(name): state \(key)")
                }
            }
        }
    }

    /// stateTensors after three steps, loaded into a new optimizer over new parameter objects (same
    /// names and values), continues bit-identically to the uninterrupted optimizer, and both match
    /// PyTorch.
    func testStateRoundTripContinuesIdentically() throws {
        for c in try Case(fixture.root).cases("cases") {
            let name = try c.string("name")
            let config = try torchOptimizerConfig(try Case(c.any("config")))
            let after = try expectedAfter(c)
            let straight = makeParameters()
            let optimizer = try config.make(straight)
            for k in 0..<3 { try step(optimizer, straight, k) }
            let saved = optimizer.stateTensors()
            let resumed = makeParameters(Dictionary(uniqueKeysWithValues: straight.map { ($0.name, $0.value) }))
            let restored = try config.make(resumed)
            let state = Dictionary(uniqueKeysWithValues: saved)
            try restored.loadState(state)
            // The restored state reads back the same, names, shapes and values.
            XCTAssertEqual(restored.stateTensors().map(\.0), saved.map(\.0), name)
            XCTAssertEqual(restored.stateTensors().map(\.1), saved.map(\.1), name)
            for k in 3..<5 {
                try step(optimizer, straight, k)
                try step(restored, resumed, k)
                for (a, b) in zip(straight, resumed) {
                    XCTAssertEqual(a.value, b.value, "\(name): \(a.name) after step \(k + 1) (bit-identical)")
                    assertClose(b.value, after[b.name]![k], .optimizer, "\(name): resumed \(b.name) after step \(k + 1)")
                }
            }
            // Loading does not alias the caller's tensors: the state handed in is unchanged.
            for (key, t) in saved { XCTAssertEqual(state[key], t, "\(name): \(key) left as loaded") }
        }
    }

    /// The same saved state loaded into two optimizers gives two identical, independent runs.
    func testLoadingOneStateTwiceGivesIndependentOptimizers() throws {
        for config in [OptimizerConfig.adam(lr: 0.01, amsgrad: true), .sgd(lr: 0.1, momentum: 0.9),
                       .rmsprop(momentum: 0.5, centered: true), .adagrad()] {
            let source = makeParameters()
            let optimizer = try config.make(source)
            for k in 0..<2 { try step(optimizer, source, k) }
            let state = Dictionary(uniqueKeysWithValues: optimizer.stateTensors())
            let values = Dictionary(uniqueKeysWithValues: source.map { ($0.name, $0.value) })
            let p1 = makeParameters(values), p2 = makeParameters(values)
            let o1 = try config.make(p1), o2 = try config.make(p2)
            try o1.loadState(state)
            for k in 2..<5 { try step(o1, p1, k) }
            try o2.loadState(state)
            for k in 2..<5 { try step(o2, p2, k) }
            for (a, b) in zip(p1, p2) { XCTAssertEqual(a.value, b.value, "\(config.kind): \(a.name)") }
        }
    }

    /// PyTorch's own state after three steps, loaded into Ember, continues as PyTorch does.
    func testTorchStateLoadsAndContinues() throws {
        for c in try Case(fixture.root).cases("cases") {
            let name = try c.string("name")
            let config = try torchOptimizerConfig(try Case(c.any("config")))
            let after = try expectedAfter(c)
            let params = makeParameters(Dictionary(uniqueKeysWithValues: names.map { ($0, after[$0]![2]) }))
            let optimizer = try config.make(params)
            let torchState = try Case(c.any("state_after_3"))
            var state: [String: Tensor] = [:]
            for key in torchState.dict.keys {
                state[key] = key.hasSuffix(".step") ? Tensor.scalar(try torchState.float(key)) : try torchState.tensor(key)
            }
            try optimizer.loadState(state)
            for k in 3..<5 {
                try step(optimizer, params, k)
                for p in params {
                    assertClose(p.value, after[p.name]![k], .optimizer, "\(name): \(p.name) after step \(k + 1) from PyTorch's state")
                }
            }
        }
    }

    func testLoadStateErrors() throws {
        let params = makeParameters()
        let optimizer = try OptimizerConfig.adam().make(params)
        assertEmberError(.corruptData, ["[optimizer]", "'v.exp_avg' belongs to no parameter"]) {
            try optimizer.loadState(["v.exp_avg": try Tensor.zeros([4])])
        }
        assertEmberError(.corruptData, ["[optimizer]", "'b.exp_avg' has 3 elements; the parameter has 4"]) {
            try optimizer.loadState(["b.exp_avg": try Tensor.zeros([3])])
        }
        assertEmberError(.corruptData, ["[optimizer]", "'w.step' is not a step count"]) {
            try optimizer.loadState(["w.step": Tensor.scalar(1.5)])
        }
        assertEmberError(.corruptData, ["[optimizer]", "'step' does not name a parameter"]) {
            try optimizer.loadState(["step": Tensor.scalar(1)])
        }
    }

    // MARK: Keeping the values before a step

    /// Every fixture configuration on parameters of several blocks (`Optimizer.keepBlock`) with a
    /// ragged end: keeping the values does not change a bit of the updates, and
    /// `restoreValuesBeforeLastStep()` puts back exactly the values before the last step, only for
    /// the parameters that step updated.
    func testKeepingTheValuesBeforeAStepChangesNoBitAndUndoesExactlyTheLastStep() throws {
        var rng = RandomGenerator(seed: 11)
        let size = 2 * Optimizer.keepBlock + 37
        let start = try [Tensor.normal([size], rng: &rng), Tensor.normal([5], rng: &rng)]
        let gradients = try (0..<3).map { _ in try [Tensor.normal([size], rng: &rng), Tensor.normal([5], rng: &rng)] }
        for c in try Case(fixture.root).cases("cases") {
            let name = try c.string("name"), config = try torchOptimizerConfig(try Case(c.any("config")))
            let plain = [Parameter(start[0], name: "w"), Parameter(start[1], name: "b")]
            let keeping = [Parameter(start[0], name: "w"), Parameter(start[1], name: "b")]
            let a = try config.make(plain), b = try config.make(keeping)
            b.keepsValuesBeforeStep = true
            XCTAssertFalse(b.restoreValuesBeforeLastStep(), "\(name): nothing to restore before a step")
            var beforeLast: [Tensor] = []
            for (k, g) in gradients.enumerated() {
                // The last step updates only "w": "b" has no gradient then.
                for (i, p) in plain.enumerated() { p.grad = k == 2 && i == 1 ? nil : g[i] }
                for (i, p) in keeping.enumerated() { p.grad = k == 2 && i == 1 ? nil : g[i] }
                beforeLast = keeping.map(\.value)
                try a.step()
                try b.step()
                for i in 0..<2 {
                    XCTAssertEqual(plain[i].value.data, keeping[i].value.data, "\(name): the same bits at step \(k + 1)")
                }
            }
            XCTAssertNotEqual(keeping[0].value, beforeLast[0], "\(name): the last step moved w")
            XCTAssertTrue(b.restoreValuesBeforeLastStep())
            XCTAssertEqual(keeping[0].value.data, beforeLast[0].data, "\(name): w is back to its values before the last step")
            XCTAssertEqual(keeping[1].value.data, plain[1].value.data, "\(name): b, not updated by the last step, stays")
            let afterLast = plain[0].value
            XCTAssertFalse(a.restoreValuesBeforeLastStep(), "\(name): without keeping, nothing is restored")
            XCTAssertEqual(plain[0].value.data, afterLast.data, "\(name): and nothing changes")
        }
    }

    /// An update fused into a product (`fusedUpdate`) with the values kept writes the new values
    /// next to the old ones and keeps the old tensor (the two buffers alternate: no allocation in
    /// the steady state), or for large parameters copies the old values and updates in place:
    /// either way restoring gives exactly the values before the last update, and tensors shared
    /// elsewhere (the start values, a snapshot) never change. Without keeping, it writes in place.
    /// The step count advances.
    func testFusedUpdatesKeepTheOldValuesWithoutACopy() throws {
        var rng = RandomGenerator(seed: 13)
        let start = try Tensor.normal([3, 50], rng: &rng), startValues = start.data
        // The values after u updates (added one at a time, as the updates round).
        var after = [startValues]
        for _ in 0..<7 { after.append(after[after.count - 1].map { $0 + 1 }) }
        func plusOne(_ current: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>) {
            for i in 0..<150 { target[i] = current[i] + 1 }
        }
        for (keep, nextTo) in [(true, true), (true, false), (false, true)] {
            let p = Parameter(start, name: "w")
            let optimizer = try OptimizerConfig(.sgd, ["lr": 0.1]).make([p])
            optimizer.keepsValuesBeforeStep = keep
            XCTAssertTrue(optimizer.fusedUpdatesWriteNextToKept, "150 floats fit in any cache")
            optimizer.fusedUpdatesWriteNextToKept = nextTo
            var snapshot = start, pointers: [UnsafePointer<Float>] = []
            for u in 1...6 {
                let before = p.value.data
                // The update belongs to the step() after it (p has no gradient: step() moves nothing).
                optimizer.fusedUpdate(of: p, plusOne)
                try optimizer.step()
                XCTAssertEqual(p.value.shape, [3, 50])
                XCTAssertEqual(p.value.data, before.map { $0 + 1 }, "keep \(keep) next to \(nextTo): update \(u)")
                if u == 1 { snapshot = p.value }
                pointers.append(p.value.unsafeReadPointer)
            }
            XCTAssertEqual(start.data, startValues, "keep \(keep): the start values never change")
            XCTAssertEqual(snapshot.data, after[1], "keep \(keep): a snapshot never changes")
            let steps = optimizer.stateTensors().filter { $0.0.hasSuffix(".step") }.map { $0.1.data }
            XCTAssertEqual(steps, [[6]], "keep \(keep): six updates counted")
            if keep {
                if nextTo {
                    XCTAssertEqual(pointers[5], pointers[3], "the buffers alternate in the steady state")
                    XCTAssertNotEqual(pointers[5], pointers[4])
                } else {
                    XCTAssertEqual(Set(pointers.dropFirst()).count, 1, "copied, then updated in place")
                }
                XCTAssertTrue(optimizer.restoreValuesBeforeLastStep())
                XCTAssertEqual(p.value.data, after[5], "back to the values before the last update")
                optimizer.fusedUpdate(of: p, plusOne)
                try optimizer.step()
                XCTAssertEqual(p.value.data, after[6], "an update after the restore")
                XCTAssertTrue(optimizer.restoreValuesBeforeLastStep())
                XCTAssertEqual(p.value.data, after[5], "and its restore")
            } else {
                XCTAssertEqual(Set(pointers.dropFirst()).count, 1, "in place (after the copies of the shared start and snapshot)")
                XCTAssertFalse(optimizer.restoreValuesBeforeLastStep())
                XCTAssertEqual(p.value.data, after[6])
            }
        }
    }

    /// A parameter large enough to be updated over two threads gets the same bits as on one, with
    /// and without keeping its values (and the kept values are those before the last step), for
    /// every optimizer.
    func testTwoThreadsUpdateLargeParametersBitForBit() throws {
        let threads = Engine.numThreads
        defer { try? Engine.setNumThreads(threads) }
        var rng = RandomGenerator(seed: 12)
        let size = 3 * Parallel.minimumChunk + 101
        let start = try Tensor.normal([size], rng: &rng), gradient = try Tensor.normal([size], rng: &rng)
        for c in try Case(fixture.root).cases("cases") {
            let name = try c.string("name"), config = try torchOptimizerConfig(try Case(c.any("config")))
            var results: [[Float]] = [], firsts: [[Float]] = []
            for (n, keep) in [(1, false), (2, false), (2, true)] {
                try Engine.setNumThreads(n)
                let p = Parameter(start, name: "w")
                let optimizer = try config.make([p])
                optimizer.keepsValuesBeforeStep = keep
                for k in 0..<2 {
                    p.grad = gradient
                    try optimizer.step()
                    if k == 0 { firsts.append(p.value.data) }
                }
                results.append(p.value.data)
                if keep {
                    XCTAssertTrue(optimizer.restoreValuesBeforeLastStep())
                    XCTAssertTrue(p.value.data == firsts[0], "\(name): restored to the values after the first step")
                }
            }
            XCTAssertFalse(results[0] == start.data, "\(name): the parameter moved")
            XCTAssertTrue(results[0] == results[1], "\(name): 1 and 2 threads give the same bits")
            XCTAssertTrue(results[0] == results[2], "\(name): 2 threads and keeping give the same bits")
        }
    }
}
