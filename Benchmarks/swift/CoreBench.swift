// Micro-benchmarks of EmberCore on one thread: matrix products, a small elementwise op and a tiny
// linear + relu + backward. torch_bench.py times the same calls the same way.
import EmberCore

/// Seconds per call of `body`: the median of 7 rounds, each of enough calls to last ≥ 50 ms.
func secondsPerCall(_ body: () throws -> Void) rethrows -> Double {
    try body()
    var calls = 1
    while true {
        let start = now()
        for _ in 0..<calls { try body() }
        if now() - start >= 0.05 { break }
        calls *= 2
    }
    var rounds: [Double] = []
    for _ in 0..<7 {
        let start = now()
        for _ in 0..<calls { try body() }
        rounds.append((now() - start) / Double(calls))
    }
    return median(rounds)
}

/// The shapes (m, k, n) of the matmul benchmark: MLP and CNN products, the weight-gradient shapes
/// of the paper grid's width-200 and width-400 layers (the batch of 32 as the inner dimension), and
/// a square one.
let matmulShapes = [(32, 1000, 100), (32, 400, 400), (200, 32, 200), (400, 32, 400), (128, 784, 256), (1024, 1024, 1024)]

func coreBench(_ o: Options) throws {
    try Engine.setNumThreads(try o.int("threads", 1))
    var rng = RandomGenerator(seed: 1)
    for (m, k, n) in matmulShapes {
        let a = try Tensor.uniform([m, k], low: -1, high: 1, rng: &rng)
        let b = try Tensor.uniform([k, n], low: -1, high: 1, rng: &rng)
        // Through the tensor op (result storage from the pool; the kernels BLAS.kernels picks by
        // default) and straight into BLAS.gemm with OpenBLAS's kernels and with Ember's.
        let op = try secondsPerCall { _ = try matmul(a, b) }
        let c = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
        defer { c.deallocate() }
        let chosen = BLAS.kernels
        var raw: [Double] = []
        for kernels in [BLAS.Kernels.openBLAS, .ember] {
            BLAS.kernels = kernels
            raw.append(try secondsPerCall {
                try BLAS.gemm(transA: false, transB: false, m: m, n: n, k: k, a: a.unsafeReadPointer, b: b.unsafeReadPointer, c: c)
            })
        }
        BLAS.kernels = chosen
        let flop = 2 * Double(m * n * k)
        emit([("system", .text("ember-swift")), ("bench", .text("matmul \(m)x\(k)·\(k)x\(n)")),
              ("gflops", .number(flop / op / 1e9)), ("gflops_blas", .number(flop / raw[0] / 1e9)),
              ("gflops_ember", .number(flop / raw[1] / 1e9))])
    }

    let x = try Tensor.uniform([32, 100], low: -1, high: 1, rng: &rng)
    let y = try Tensor.uniform([32, 100], low: -1, high: 1, rng: &rng)
    let add = try secondsPerCall { _ = try BinaryFunction.add.apply(x, y) }
    emit([("system", .text("ember-swift")), ("bench", .text("add 32x100")), ("ns", .number(add * 1e9))])
    let activation = secondsPerCall { _ = UnaryFunction.relu.apply(x) }
    emit([("system", .text("ember-swift")), ("bench", .text("relu 32x100")), ("ns", .number(activation * 1e9))])

    // y = relu(x·Wᵀ + b), then backward from sum(y) into W and b.
    let input = Variable(x)
    let weight = Variable(try Tensor.uniform([100, 100], low: -0.1, high: 0.1, rng: &rng), requiresGrad: true)
    let bias = Variable(try Tensor.uniform([100], low: -0.1, high: 0.1, rng: &rng), requiresGrad: true)
    let step = try secondsPerCall {
        let out = relu(try linear(input, weight: weight, bias: bias))
        try sum(out).backward()
        weight.grad = nil
        bias.grad = nil
    }
    emit([("system", .text("ember-swift")), ("bench", .text("linear+relu+backward 32x100·100x100")), ("ns", .number(step * 1e9))])
}
