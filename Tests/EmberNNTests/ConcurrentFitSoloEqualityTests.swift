import Dispatch
import Foundation
import EmberCore
@testable import EmberNN
import XCTest

/// Issue 16: two Swift threads training two models at once get the weights of training each
/// alone (models share nothing; the engine's pool and buffer pool are shared and thread-safe).
final class ConcurrentFitSoloEqualityTests: XCTestCase {
    static func train(seed: UInt64) throws -> [Tensor] {
        let (x, y) = try ReliabilityLimitsTests.irisLike(rows: 600)
        let model = try Model(spec: try Architectures.mlp(TabularInputs(numeric: 4), neurons: [64, 64], p: 0.1),
                              task: .multiclass(classes: 3), seed: seed)
        var config = TrainerConfig()
        config.batchSize = 16
        let trainer = try Trainer(model: model, config: config)
        try trainer.fit(try Dataset(x: x, y: y), epochs: 5)
        return model.namedTensors.map(\.1)
    }

    func testTwoThreadsTrainingAtOnceGetTheWeightsOfTrainingAlone() throws {
        let solo = [try Self.train(seed: 1), try Self.train(seed: 2)]
        for threads in [1, 2] {
            let saved = Engine.numThreads
            try Engine.setNumThreads(threads)
            defer { try? Engine.setNumThreads(saved) }
            nonisolated(unsafe) var together: [[Tensor]?] = [nil, nil]
            nonisolated(unsafe) var failures: [String] = []
            let lock = NSLock()
            DispatchQueue.concurrentPerform(iterations: 2) { i in
                do {
                    let w = try ConcurrentFitSoloEqualityTests.train(seed: UInt64(i + 1))
                    lock.lock()
                    together[i] = w
                    lock.unlock()
                } catch {
                    lock.lock()
                    failures.append("\(error)")
                    lock.unlock()
                }
            }
            XCTAssertEqual(failures, [])
            XCTAssertEqual(together[0], solo[0], "thread 1 with \(threads) engine thread(s)")
            XCTAssertEqual(together[1], solo[1], "thread 2 with \(threads) engine thread(s)")
        }
    }
}
