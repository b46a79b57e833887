// A Swift program using Ember directly: trains an MLP to separate two interleaved spirals and
// a second one to fit y = sin(3x), then prints accuracy, RMSE and the BLAS core it ran on.
//
//     swift run -c release ember-mlp-example
import EmberCore
import EmberNN
import Glibc

func spirals(n: Int, rng: inout RandomGenerator) throws -> (Tensor, Tensor) {
    var x = [Float](), y = [Float]()
    for i in 0..<n {
        let label = i % 2
        let t = Float(i / 2) / Float(n / 2) * 3 * Float.pi
        let r = t / (3 * Float.pi) + 0.05 * rng.normal()
        let sign: Float = label == 0 ? 1 : -1
        x += [sign * r * cosf(t), sign * r * sinf(t)]
        y.append(Float(label))
    }
    return (try Tensor(shape: [n, 2], data: x), try Tensor(shape: [n], data: y))
}

do {
    print("Ember MLP example — BLAS core: \(BLAS.coreName), threads: \(BLAS.numThreads)")
    var rng = RandomGenerator(seed: 1)
    let (x, y) = try spirals(n: 1000, rng: &rng)
    let classifier = try MLPModel(spec: MLPSpec(task: .binary, inputs: 2, neurons: [64, 64]), seed: 42)
    try classifier.setTrainingOptions(TrainingOptions(batchSize: 32, optimizer: .adam(lr: 0.01)))
    let losses = try classifier.fit(x: x, y: y, epochs: 60)
    let p = try classifier.predict(x: x)
    var correct = 0
    for i in 0..<y.count where (p.data[2 * i] > 0.5 ? 1 : 0) == Int(y.data[i]) { correct += 1 }
    print("spirals: loss \(losses.first ?? .nan) -> \(losses.last ?? .nan), training accuracy \(Float(correct) / Float(y.count))")

    var xs = [Float](), ys = [Float]()
    for _ in 0..<500 {
        let v = rng.uniform(-1, 1)
        xs.append(v)
        ys.append(sinf(3 * v) + 0.05 * rng.normal())
    }
    let xr = try Tensor(shape: [500, 1], data: xs), yr = try Tensor(shape: [500], data: ys)
    let regressor = try MLPModel(spec: MLPSpec(task: .regression, inputs: 1, neurons: [32]), seed: 7)
    try regressor.setTrainingOptions(TrainingOptions(batchSize: 16, optimizer: .adam(lr: 0.01)))
    try regressor.fit(x: xr, y: yr, epochs: 100)
    let pr = try regressor.predict(x: xr)
    var se: Float = 0
    for i in 0..<500 { se += (pr.data[i] - ys[i]) * (pr.data[i] - ys[i]) }
    print("sin(3x): training RMSE \((se / 500).squareRoot()) (noise sd 0.05)")

    // Round trip through the model file format.
    let bytes = regressor.serialized()
    let reloaded = try MLPModel(serialized: bytes)
    print("model file: \(bytes.count) bytes; reloaded predictions identical: \(try reloaded.predict(x: xr) == pr)")
} catch {
    print("error: \(error)")
    exit(1)
}
