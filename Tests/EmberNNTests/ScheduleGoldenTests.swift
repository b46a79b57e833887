// Learning-rate schedules against PyTorch's torch.optim.lr_scheduler (Fixtures/nn_schedules.json,
// written by tools/golden/generate_nn.py): the learning rate of every parameter group after
// creation and after each of 15 steps, and for one-cycle the momentum (SGD, RMSprop) or beta1
// (Adam, AdamW). Tolerance: docs/architecture.md#numerics-contract, 1e-9 relative in Double.
import EmberTestSupport
import EmberCore
@testable import EmberNN
import Foundation
import XCTest

final class ScheduleGoldenTests: XCTestCase {
    var fixture: Fixture!
    var steps = 0

    override func setUpWithError() throws {
        fixture = try Fixture.load("nn_schedules")
        steps = try Case(fixture.root).int("steps")
        XCTAssertEqual(steps, 15)
    }

    /// `|actual - expected| <= 1e-9 · |expected|`; an expected 0 (cosine annealing to eta_min 0)
    /// must come out as 0 up to 1e-18.
    func assertScheduleClose(_ actual: Double, _ expected: Double, _ what: String, file: StaticString = #filePath,
                             line: UInt = #line) {
        XCTAssertTrue(abs(actual - expected) <= 1e-9 * abs(expected) + 1e-18,
                      "\(what): \(actual) != \(expected)", file: file, line: line)
    }

    func cases(_ type: String) throws -> [Case] {
        let all = try Case(fixture.root).cases("cases")
        let selected = try all.filter { try Case($0.any("schedule")).string("type") == type }
        XCTAssertFalse(selected.isEmpty, "fixture has \(type) cases")
        return selected
    }

    /// The optimizer of a case: one parameter per group, each group with its own initial lr.
    func makeOptimizer(_ c: Case) throws -> Optimizer {
        let config = try torchOptimizerConfig(try Case(c.any("optimizer")))
        guard let lrs = try c.any("group_lrs") as? [NSNumber] else { throw FixtureError.malformed("group_lrs") }
        return try config.make(groups: lrs.map { ([Parameter(try Tensor.zeros([2]))], ["lr": $0.doubleValue]) })
    }

    func makeScheduler(_ c: Case, _ optimizer: Optimizer) throws -> LRScheduler {
        let s = try Case(c.any("schedule"))
        switch try s.string("type") {
        case "step":
            return try LRScheduler(.step(stepSize: try s.int("step_size"), gamma: try s.double("gamma")), optimizer: optimizer)
        case "multiplicative":
            return try LRScheduler(.multiplicative(factor: try s.double("factor")), optimizer: optimizer)
        case "multiplicative_lambda":
            let odd = try s.double("odd"), even = try s.double("even")
            return try LRScheduler(lambda: { $0 % 2 == 1 ? odd : even }, multiplicative: true, optimizer: optimizer)
        case "lambda":
            let base = try s.double("base")
            return try LRScheduler(lambda: { pow(base, Double($0)) }, optimizer: optimizer)
        case "cosine":
            return try LRScheduler(.cosineAnnealing(tMax: try s.int("t_max"), etaMin: try s.double("eta_min")), optimizer: optimizer)
        case "one_cycle":
            return try LRScheduler(.oneCycle(maxLR: try s.double("max_lr"), totalSteps: try s.int("total_steps"),
                                             pctStart: try s.double("pct_start"), cosine: try s.bool("cosine"),
                                             divFactor: try s.double("div_factor"), finalDivFactor: try s.double("final_div_factor"),
                                             cycleMomentum: try s.bool("cycle_momentum"), baseMomentum: try s.double("base_momentum"),
                                             maxMomentum: try s.double("max_momentum")), optimizer: optimizer)
        case "plateau":
            let mode = try s.string("mode"), thresholdMode = try s.string("threshold_mode")
            XCTAssertTrue(["min", "max"].contains(mode) && ["rel", "abs"].contains(thresholdMode))
            return try LRScheduler(.reduceOnPlateau(maximize: mode == "max", factor: try s.double("factor"),
                                                    patience: try s.int("patience"), threshold: try s.double("threshold"),
                                                    relativeThreshold: thresholdMode == "rel", cooldown: try s.int("cooldown"),
                                                    minLR: try s.double("min_lr"), eps: try s.double("eps")), optimizer: optimizer)
        case let other:
            throw FixtureError.malformed("schedule type \(other)")
        }
    }

    func doubles(_ any: Any) throws -> [[Double]] {
        guard let rows = any as? [[NSNumber]] else { throw FixtureError.malformed("expected a list of lists of numbers") }
        return rows.map { $0.map(\.doubleValue) }
    }

    /// Runs a case: creation (epoch 0), then 15 steps (fed the case's metrics, if any), comparing
    /// every group's lr (and one-cycle's momentum) with PyTorch's after each.
    func run(_ c: Case) throws {
        let name = try c.string("name")
        let optimizer = try makeOptimizer(c)
        let scheduler = try makeScheduler(c, optimizer)
        let lrs = try doubles(try c.any("lrs"))
        let momenta = c.dict["momenta"] == nil ? nil : try doubles(try c.any("momenta"))
        let cycles = try Case(c.any("schedule")).dict["cycle_momentum"] as? Bool ?? false
        let momentumName = [OptimizerKind.adam, .adamw].contains(optimizer.kind) ? "beta1" : "momentum"
        let metrics = c.dict["metrics"] == nil ? nil : try (c.any("metrics") as? [NSNumber]).map { $0.map(\.doubleValue) }
        XCTAssertEqual(lrs.count, steps + 1, name)
        for epoch in 0...steps {
            if epoch > 0 {
                if let metrics { try scheduler.step(metric: metrics[epoch - 1]) } else { try scheduler.step() }
            }
            XCTAssertEqual(scheduler.lastEpoch, epoch, name)
            XCTAssertEqual(scheduler.learningRates.count, lrs[epoch].count, name)
            for (g, (actual, expected)) in zip(scheduler.learningRates, lrs[epoch]).enumerated() {
                assertScheduleClose(actual, expected, "\(name): lr of group \(g) at epoch \(epoch)")
                XCTAssertEqual(optimizer.groups[g]["lr"], actual, "\(name): the optimizer uses the scheduled lr")
            }
            if let momenta, cycles {
                for (g, expected) in momenta[epoch].enumerated() {
                    assertScheduleClose(optimizer.groups[g][momentumName], expected, "\(name): \(momentumName) of group \(g) at epoch \(epoch)")
                }
            }
        }
    }

    func testStepLR() throws { for c in try cases("step") { try run(c) } }

    func testMultiplicativeLR() throws {
        for c in try cases("multiplicative") + cases("multiplicative_lambda") { try run(c) }
    }

    func testLambdaLR() throws { for c in try cases("lambda") { try run(c) } }

    /// Includes epochs beyond T_max, where PyTorch's recursive form climbs back up.
    func testCosineAnnealingLR() throws { for c in try cases("cosine") { try run(c) } }

    /// Cosine and linear annealing; SGD and RMSprop (momentum) and Adam/AdamW (beta1) cycling;
    /// Adagrad without momentum cycling. With total_steps 15, the 15th step reaches
    /// last_epoch == total_steps, which PyTorch allows (the canonical loop calls step() once per
    /// batch); a further step is an error.
    func testOneCycleLR() throws {
        let all = try cases("one_cycle")
        XCTAssertEqual(Set(try all.map { try $0.string("name") }).count, 8)
        for c in all {
            try run(c)
            let schedule = try Case(c.any("schedule"))
            let total = try schedule.int("total_steps")
            let optimizer = try makeOptimizer(c)
            let scheduler = try makeScheduler(c, optimizer)
            for _ in 0..<total { try scheduler.step() }
            assertEmberError(.invalidState, ["[lr_scheduler]", "one_cycle", "total_steps is \(total)"]) {
                try scheduler.step()
            }
        }
    }

    func testOneCycleNeedsMomentumToCycle() throws {
        let optimizer = try OptimizerConfig.adagrad().make([Parameter(try Tensor.zeros([1]))])
        assertEmberError(.invalidArgument, ["[lr_scheduler]", "adagrad has none"]) {
            try LRScheduler(.oneCycle(maxLR: 0.1, totalSteps: 10), optimizer: optimizer)
        }
    }

    /// Min and max mode, relative and absolute thresholds, cooldown, min_lr and eps, fed the
    /// fixture's metric sequences.
    func testReduceLROnPlateau() throws {
        let all = try cases("plateau")
        for c in all { try run(c) }
        // Every option is exercised.
        let schedules = try all.map { try Case($0.any("schedule")) }
        XCTAssertTrue(try schedules.contains { try $0.string("mode") == "max" })
        XCTAssertTrue(try schedules.contains { try $0.string("threshold_mode") == "abs" })
        XCTAssertTrue(try schedules.contains { try $0.int("cooldown") > 0 })
        XCTAssertTrue(try schedules.contains { try $0.double("min_lr") > 0 })
        XCTAssertTrue(try schedules.contains { try $0.double("eps") != 1e-8 })
    }

    func testReduceLROnPlateauNeedsAMetric() throws {
        let optimizer = try OptimizerConfig.sgd(lr: 0.1).make([Parameter(try Tensor.zeros([1]))])
        let scheduler = try LRScheduler(.reduceOnPlateau(), optimizer: optimizer)
        assertEmberError(.invalidState, ["[lr_scheduler]", "reduce_on_plateau needs step(metric:)"]) { try scheduler.step() }
        // NOTE (deliberate difference): PyTorch accepts a NaN metric (never an improvement); Ember refuses it.
        assertEmberError(.invalidArgument, ["[lr_scheduler]", "NaN"]) { try scheduler.step(metric: .nan) }
        XCTAssertEqual(scheduler.lastEpoch, 0)
    }
}
