@testable import EmberCore
@testable import EmberNN
import EmberTestSupport
import Glibc
import XCTest

/// Issue 16: limits instead of kills. Memory beyond what the machine has is refused before
/// allocation with `.memory` stating the bytes; a non-finite loss stops training with the last
/// finite weights; an interrupt check stops long calls between batches with objects intact.
final class ReliabilityLimitsTests: XCTestCase {
    /// Iris-like features (three clusters in four columns) of `rows` rows and their classes.
    static func irisLike(rows: Int = 96) throws -> (x: Tensor, classes: Tensor) {
        var rng = RandomGenerator(seed: 5)
        let x = Tensor.build(shape: [rows, 4]) { o in
            for i in 0..<rows { for j in 0..<4 { o[i * 4 + j] = Float(i % 3) * Float(j + 1) + rng.uniform(0, 1) } }
        }
        return (x, try Tensor(shape: [rows], data: (0..<rows).map { Float($0 % 3) }))
    }

    func irisLike() throws -> Dataset {
        let (x, y) = try ReliabilityLimitsTests.irisLike()
        return try Dataset(x: x, y: y)
    }

    /// Runs `body` with EMBER_MEMORY_LIMIT set to `bytes`.
    func withMemoryLimit<T>(_ bytes: Int, _ body: () throws -> T) rethrows -> T {
        setenv("EMBER_MEMORY_LIMIT", "\(bytes)", 1)
        defer { unsetenv("EMBER_MEMORY_LIMIT") }
        return try body()
    }

    func testNetworkBeyondTheMachineIsRefusedStatingTheBytes() throws {
        // 10^12 weights: 4 TB, more than any test machine has; refused before allocation.
        let spec = try Architectures.mlp(TabularInputs(numeric: 4), neurons: [1_000_000, 1_000_000])
        assertEmberError(.memory, ["[network]", "node 'linear_1'", "4000", "bytes", "available", "use fewer or narrower layers"]) {
            try Model(spec: spec, task: .regression, seed: 1)
        }
        XCTAssertNotNil(MemoryBudget.availableBytes(), "this machine reports its available memory")
    }

    func testSmallRequestsAreComparedWithTheEnvironmentVariableOnly() throws {
        // Requests up to 1 MiB skip /proc/meminfo, but EMBER_MEMORY_LIMIT still applies to them.
        try withMemoryLimit(100) {
            assertEmberError(.memory, ["[predict] one row needs 101 bytes", "100 bytes are available: ask less"]) {
                try MemoryBudget.check(101, "one row", op: "predict", advice: "ask less")
            }
            XCTAssertNoThrow(try MemoryBudget.check(100, "one row", op: "predict"))
        }
        XCTAssertNoThrow(try MemoryBudget.check(MemoryBudget.smallRequestBytes, "one row", op: "predict"))
        // Beyond 1 MiB the machine's memory counts: 2^62 bytes are more than it has.
        assertEmberError(.memory, ["[predict] everything needs 4611686018427387904 bytes"]) {
            try MemoryBudget.check(1 << 62, "everything", op: "predict")
        }
    }

    func testMeminfoFieldsAreReadFromTheStartOfTheirLine() throws {
        let text = Array("MemTotal:       24576000 kB\nXMemAvailable: 7 kB\nMemFree:         1000 kB\nMemAvailable:   20480000 kB\nBad:    12x kB\nHuge: 1234567890123456789 kB\nLast: 42".utf8)
        XCTAssertEqual(MemoryBudget.meminfoValue("MemTotal:", in: text), 24_576_000)
        XCTAssertEqual(MemoryBudget.meminfoValue("MemAvailable:", in: text), 20_480_000, "not the line that only contains it")
        XCTAssertEqual(MemoryBudget.meminfoValue("MemFree:", in: text), 1000)
        XCTAssertEqual(MemoryBudget.meminfoValue("Last:", in: text), 42, "the last line needs no newline")
        XCTAssertNil(MemoryBudget.meminfoValue("Bad:", in: text), "digits followed by other characters are no number")
        XCTAssertNil(MemoryBudget.meminfoValue("Huge:", in: text), "19 digits are no memory size")
        XCTAssertNil(MemoryBudget.meminfoValue("Cached:", in: text))
        XCTAssertNil(MemoryBudget.meminfoValue("MemAvailable:", in: []))
        // The machine's own file agrees with the text reading of it.
        let own = try XCTUnwrap(MemoryBudget.readText("/proc/meminfo"))
        let line = try XCTUnwrap(own.split(separator: "\n").first { $0.hasPrefix("MemTotal:") })
        XCTAssertEqual(MemoryBudget.meminfoKilobytes("MemTotal:"), Int(line.split(separator: " ")[1]))
    }

    func testLimitsOfTheEnvironmentVariableApplyToNetworkTrainingAndBatches() throws {
        let spec = try Architectures.mlp(TabularInputs(numeric: 4), neurons: [1000])
        // 8,003 weights need 32,012 bytes.
        withMemoryLimit(32_011) {
            assertEmberError(.memory, ["needs 32012 bytes (31.3 KiB)", "32011 bytes (31.3 KiB) are available"]) {
                try Model(spec: spec, task: .multiclass(classes: 3), seed: 1)
            }
        }
        let model = try Model(spec: spec, task: .multiclass(classes: 3), seed: 1)
        // Training state: five more floats per parameter.
        withMemoryLimit(100_000) {
            assertEmberError(.memory, ["[fit] training a network of 8003 parameters", "160060 bytes"]) {
                try Trainer(model: model, config: TrainerConfig())
            }
        }
        var config = TrainerConfig()
        config.batchSize = 64
        let trainer = try Trainer(model: model, config: config)
        let data = try irisLike()
        try withMemoryLimit(200_000) {
            do {
                try trainer.fit(data, epochs: 1)
                XCTFail("a batch beyond the limit trains")
            } catch let e as EmberError {
                XCTAssertEqual(e.kind, .memory)
                XCTAssertTrue(e.message.contains("a training batch of 64 rows"), e.message)
                XCTAssertEqual(e.detail.argument, "batch_size")
                XCTAssertEqual(e.detail.expected, "at most 200000 bytes")
            }
            XCTAssertEqual(trainer.epoch, 0, "nothing trained")
            assertEmberError(.memory, ["[predict] predicting 96 rows", "bytes"]) { try model.predict(data, batchSize: 64) }
        }
        XCTAssertEqual(try trainer.fit(data, epochs: 1).count, 1, "without the limit, the same call trains")
    }

    func testANonFiniteLossStopsTrainingWithTheWeightsBeforeThePreviousBatch() throws {
        func trainer(_ lr: Double) throws -> Trainer {
            let model = try Model(spec: try Architectures.mlp(TabularInputs(numeric: 4), neurons: [16]), task: .regression, seed: 7)
            var config = TrainerConfig()
            config.batchSize = 8
            config.shuffle = false
            config.optimizer = .sgd(lr: lr)
            return try Trainer(model: model, config: config)
        }
        let regression = try Dataset(x: try ReliabilityLimitsTests.irisLike().x, y: try Tensor(shape: [96], data: (0..<96).map { Float($0) }))
        let diverging = try trainer(5)
        let records = try diverging.fit(regression, epochs: 50)
        guard let f = diverging.nonFiniteLoss else { return XCTFail("the loss never became non-finite at lr 5") }
        XCTAssertTrue(diverging.stopped)
        XCTAssertFalse(f.loss.isFinite)
        XCTAssertEqual(records.count, f.epoch - 1, "the epochs before the non-finite loss are recorded")
        let global = (f.epoch - 1) * 12 + f.batch  // 12 batches per epoch
        XCTAssertGreaterThan(global, 2, "diverges gradually (the test compares with a shorter run)")
        // The same training stopped after global - 2 batches has the weights kept.
        let twin = try trainer(5)
        try twin.fit(regression, epochs: 50, maxBatches: global - 2)
        for ((name, a), (_, b)) in zip(diverging.model.namedTensors, twin.model.namedTensors) {
            XCTAssertEqual(a, b, "\(name) is the twin's after \(global - 2) batches")
            XCTAssertTrue(a.data.allSatisfy(\.isFinite), "\(name) is finite")
        }
        XCTAssertTrue(try diverging.model.predict(regression).data.allSatisfy(\.isFinite), "the kept model predicts finite values")
        XCTAssertEqual(try diverging.fit(regression, epochs: 1), [], "a stopped trainer trains no more")
    }
}

/// The interrupt check of the tests: asks to stop from its `stopAt`-th call on.
nonisolated(unsafe) var interruptCalls = 0
nonisolated(unsafe) var interruptStopAt = Int.max
let countingInterruptCheck: Interrupts.Check = { _ in
    interruptCalls += 1
    return interruptCalls >= interruptStopAt ? 1 : 0
}

final class InterruptTests: XCTestCase {
    override func tearDown() {
        Interrupts.set(nil, context: nil)
        interruptCalls = 0
        interruptStopAt = Int.max
    }

    func testAnInterruptStopsTrainingBetweenBatchesAndTheRunContinuesAsIfUninterrupted() throws {
        let data = try Dataset(x: try ReliabilityLimitsTests.irisLike().x, y: try ReliabilityLimitsTests.irisLike().classes)
        func make() throws -> Trainer {
            let model = try Model(spec: try Architectures.mlp(TabularInputs(numeric: 4), neurons: [16]), task: .multiclass(classes: 3), seed: 3)
            var config = TrainerConfig()
            config.batchSize = 8
            return try Trainer(model: model, config: config)
        }
        let plain = try make()
        try plain.fit(data, epochs: 2)
        let interrupted = try make()
        Interrupts.set(countingInterruptCheck, context: nil)
        interruptStopAt = 4
        assertEmberError(.interrupted, ["[fit] interrupted by the user in epoch 1 after 3 batch(es)"]) { try interrupted.fit(data, epochs: 2) }
        XCTAssertEqual(interrupted.batchesInEpoch, 3, "the batches before the interrupt trained")
        Interrupts.set(nil, context: nil)
        try interrupted.fit(data, epochs: 2)
        XCTAssertEqual(interrupted.model.namedTensors.map(\.1), plain.model.namedTensors.map(\.1), "the same weights as without the interrupt")
    }

    func testAnInterruptStopsPredictionAndValidationWithTheModelIntact() throws {
        let data = try Dataset(x: try ReliabilityLimitsTests.irisLike().x, y: try ReliabilityLimitsTests.irisLike().classes)
        let model = try Model(spec: try Architectures.mlp(TabularInputs(numeric: 4), neurons: [16]), task: .multiclass(classes: 3), seed: 3)
        let before = try model.predict(data, batchSize: 10)
        Interrupts.set(countingInterruptCheck, context: nil)
        interruptStopAt = 3
        assertEmberError(.interrupted, ["[predict] interrupted by the user after 20 of 96 rows"]) { try model.predict(data, batchSize: 10) }
        interruptCalls = 0
        var config = TrainerConfig()
        config.batchSize = 96
        config.batchSizePredict = 10
        let trainer = try Trainer(model: model, config: config)
        interruptStopAt = 2  // the training batch passes, validation's second batch stops
        assertEmberError(.interrupted, ["[predict] interrupted"]) { try trainer.fit(data, valid: data, epochs: 1) }
        Interrupts.set(nil, context: nil)
        XCTAssertEqual(trainer.epoch, 1)
        XCTAssertTrue(try model.predict(data).data.allSatisfy(\.isFinite))
        XCTAssertNotEqual(try model.predict(data, batchSize: 10), before, "the trained batch counts")
    }
}
