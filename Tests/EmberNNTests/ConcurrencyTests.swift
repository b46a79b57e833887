@testable import EmberCore
import EmberNN
import Foundation
import XCTest

/// Issue 16: models trained at the same time from several threads of the host (R's callbacks,
/// a C program's threads) share only the engine's thread pool; each gives the bits it gives alone.
/// `make sanitize` runs these under ThreadSanitizer.
final class ConcurrencyTests: XCTestCase {
    /// A training run: the weights and predictions it ends with.
    struct Run: Equatable {
        var weights: [String: [UInt32]]
        var predictions: [UInt32]
    }

    /// Trains one of two different networks (an MLP on a multiclass task, a small ResNet on
    /// images) for two epochs, large enough that their loops are split over the pool's threads.
    static func train(_ which: Int) throws -> Run {
        var rng = RandomGenerator(seed: UInt64(10 + which))
        let model: Model
        let data: Dataset
        if which == 0 {
            let x = try Tensor.normal([512, 20], rng: &rng)
            let y = try Tensor(shape: [512], data: (0..<512).map { Float($0 % 3) })
            data = try Dataset(x: x, y: y)
            model = try Model(spec: try Architectures.mlp(TabularInputs(numeric: 20), neurons: [256, 128]),
                              task: .multiclass(classes: 3), seed: 1)
        } else {
            let images = try Tensor.normal([64, 1, 12, 12], rng: &rng)
            let y = try Tensor(shape: [64], data: (0..<64).map { Float($0 % 2) })
            data = try Dataset(inputs: ["image": images], target: y)
            model = try Model(spec: try Architectures.smallResNet(imageShape: [1, 12, 12], channels: 8, nBlocks: 1),
                              task: .binary, seed: 2)
        }
        var config = TrainerConfig()
        config.batchSize = which == 0 ? 256 : 32
        config.optimizer = .adam(lr: 0.01)
        let trainer = try Trainer(model: model, config: config)
        try trainer.fit(data, epochs: 2)
        let p = try model.predict(data)
        return Run(weights: model.snapshotWeights().mapValues { $0.data.map(\.bitPattern) },
                   predictions: p.data.map(\.bitPattern))
    }

    /// Two models trained concurrently from two threads end bit for bit as each does alone, with
    /// one and with two engine threads (with two, one fit gets the pool, the other's loops run
    /// serially when the pool is busy, and serial loops give the same bits as split ones).
    func testTwoModelsTrainedConcurrentlyEqualTheirSoloRuns() throws {
        let saved = Engine.numThreads
        defer { XCTAssertNoThrow(try Engine.setNumThreads(saved)) }
        for threads in [1, 2] {
            try Engine.setNumThreads(threads)
            try checkConcurrentRunsEqualSoloRuns(threads: threads)
        }
    }

    /// A run's bits do not follow the pool's topology measurement (`Parallel.threadsOnTwoDies`,
    /// taken again every 50 ms; a virtual machine's vCPUs can cross its threshold between two
    /// runs): the MLP, some of whose products `.byShape` gives OpenBLAS, trained at two engine
    /// threads with the round trip forced near, far, and inside a serial region, ends with the same
    /// weights (before OpenBLAS's products were cut by the measurement, near and far differed).
    func testTrainingBitsDoNotFollowTheTopologyMeasurement() throws {
        let saved = Engine.numThreads
        defer {
            XCTAssertNoThrow(try Engine.setNumThreads(saved))
            Parallel.forceRoundTrip(nil)
        }
        try Engine.setNumThreads(2)
        Parallel.forceRoundTrip(60)
        let near = try Self.train(0)
        Parallel.forceRoundTrip(1000)
        let far = try Self.train(0)
        let serial = try Parallel.serially { try Self.train(0) }
        XCTAssertTrue(far == near, "round trip far against near: the same weights and predictions")
        XCTAssertTrue(serial == near, "serially against near: the same weights and predictions")
    }

    func checkConcurrentRunsEqualSoloRuns(threads: Int) throws {
        let solo = [try Self.train(0), try Self.train(1)]

        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var runs: [Int: Result<Run, Error>] = [:]
        }
        let results = Results()
        let done = DispatchSemaphore(value: 0)
        for which in 0..<2 {
            let t = Thread {
                let r = Result { try Self.train(which) }
                results.lock.lock()
                results.runs[which] = r
                results.lock.unlock()
                done.signal()
            }
            t.stackSize = 8 << 20
            t.start()
        }
        done.wait()
        done.wait()
        results.lock.lock()
        defer { results.lock.unlock() }
        for which in 0..<2 {
            let run = try XCTUnwrap(results.runs[which], "thread \(which) reported nothing").get()
            XCTAssertEqual(run.weights.keys.sorted(), solo[which].weights.keys.sorted(), "model \(which)")
            XCTAssertTrue(run.weights == solo[which].weights, "model \(which), \(threads) engine thread(s): weights differ from the solo run")
            XCTAssertTrue(run.predictions == solo[which].predictions, "model \(which), \(threads) engine thread(s): predictions differ from the solo run")
        }
    }
}
