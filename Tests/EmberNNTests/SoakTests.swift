import EmberCore
@testable import EmberNN
import EmberTestSupport
import Glibc
import XCTest

/// Resident set size of this process in KiB (/proc/self/statm).
func residentKiB() -> Double {
    guard let f = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 256)
    guard fgets(&line, Int32(line.count), f) != nil else { return 0 }
    let fields = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).split(separator: " ")
    guard fields.count >= 2, let pages = Double(fields[1]) else { return 0 }
    return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1024
}

/// Least-squares slope of `y` against its index over `y[from...]`.
func leastSquaresSlope(_ y: [Double], from: Int) -> Double {
    let xs = (from..<y.count).map(Double.init), ys = Array(y[from...])
    let m = Double(xs.count)
    guard m >= 2 else { return 0 }
    let sx = xs.reduce(0, +), sy = ys.reduce(0, +)
    let sxx = xs.reduce(0) { $0 + $1 * $1 }, sxy = zip(xs, ys).reduce(0) { $0 + $1.0 * $1.1 }
    return (m * sxy - sx * sy) / (m * sxx - sx * sx)
}

/// An environment variable as a number, or `fallback`.
func environmentNumber(_ name: String, _ fallback: Double) -> Double {
    guard let v = getenv(name), let d = Double(String(cString: v)) else { return fallback }
    return d
}

/// Issue 16: fit / predict / serialize / save / load cycles in one process keep memory flat and
/// free every object. `EMBER_SOAK_CYCLES` (100 here; `make soak` runs 1000) and
/// `EMBER_SOAK_SLOPE_KIB` (the bound on the RSS slope over the second half, KiB per cycle).
final class SoakTests: XCTestCase {
    func testCyclesKeepMemoryFlatAndFreeEverything() throws {
        let cycles = max(4, Int(environmentNumber("EMBER_SOAK_CYCLES", 100)))
        let bound = environmentNumber("EMBER_SOAK_SLOPE_KIB", 8)
        var rng = RandomGenerator(seed: 3)
        let y = try Tensor(shape: [150], data: (0..<150).map { Float($0 % 3) })
        let x = Tensor.build(shape: [150, 4]) { o in
            for i in 0..<150 { for j in 0..<4 { o[i * 4 + j] = Float(i % 3) * Float(j + 1) + rng.uniform(0, 1) } }
        }
        let data = try Dataset(x: x, y: y)
        let spec = try Architectures.mlp(TabularInputs(numeric: 4), neurons: [32, 32])
        let path = "/tmp/ember-swift-soak-\(getpid()).safetensors"
        defer { unlink(path) }
        var config = TrainerConfig()
        config.batchSize = 16
        config.optimizer = .adam(lr: 0.01)
        var rss: [Double] = []
        for i in 0..<cycles {
            weak var weakModel: Model?, weakLoaded: Model?, weakTrainer: Trainer?
            do {
                let model = try Model(spec: spec, task: .multiclass(classes: 3), seed: UInt64(i + 1))
                let trainer = try Trainer(model: model, config: config)
                try trainer.fit(data, epochs: 2)
                try trainer.finish()
                let p = try model.predict(data)
                let copy = try Model(serialized: model.serialized())
                try copy.save(to: path)
                let loaded = try Model(contentsOf: path)
                XCTAssertEqual(try loaded.predict(data), p, "cycle \(i): the loaded model predicts the same")
                (weakModel, weakLoaded, weakTrainer) = (model, loaded, trainer)
            }
            XCTAssertNil(weakModel, "cycle \(i): the model is freed")
            XCTAssertNil(weakLoaded, "cycle \(i): the loaded model is freed")
            XCTAssertNil(weakTrainer, "cycle \(i): the trainer is freed")
            rss.append(residentKiB())
        }
        let slope = leastSquaresSlope(rss, from: cycles / 2)
        print("Swift soak: \(cycles) cycles, RSS \(Int(rss[0])) -> \(Int(rss[cycles - 1])) KiB, slope over the second half \(slope) KiB/cycle")
        XCTAssertLessThan(slope, bound, "RSS grows by \(slope) KiB per cycle")
    }
}
