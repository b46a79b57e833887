// Convolution and pooling: forward and every gradient against PyTorch (Fixtures/conv.json, written by
// tools/golden/generate_conv.py), central-difference gradient checks, and the error messages of every
// kind of bad argument. Tolerances: docs/architecture.md#numerics-contract (`.reduction` throughout).
import CEmberKernels
@testable import EmberCore
import EmberTestSupport
import Foundation
import XCTest

final class ConvolutionTests: XCTestCase {
    var ops: Case!
    var rng = RandomGenerator(seed: 7)

    override func setUpWithError() throws {
        ops = try Case(try Fixture.load("conv").root["ops"])
    }

    /// One fixture case: {"name", "params", "inputs", "seed", "output", "grads"} (core.json's layout).
    struct Golden {
        let name: String
        let params: Case, inputs: Case, grads: Case
        let seed: Tensor, output: Tensor

        init(_ c: Case) throws {
            name = try c.string("name")
            params = try Case(c.any("params"))
            inputs = try Case(c.any("inputs"))
            grads = try Case(c.any("grads"))
            seed = try c.tensor("seed")
            output = try c.tensor("output")
        }

        /// A parameter that is an int for 1-d ops.
        func int(_ key: String) throws -> Int { try params.int(key) }

        /// A 2-d parameter stored as [h, w].
        func pair(_ key: String) throws -> (Int, Int) {
            guard let a = try params.any(key) as? [Int], a.count == 2 else { throw FixtureError.malformed("\(key) is not an [h, w] pair") }
            return (a[0], a[1])
        }

        /// A pooling stride, absent when it is the default (the kernel).
        func optionalInt(_ key: String) throws -> Int? { params.dict[key] == nil ? nil : try int(key) }
        func optionalPair(_ key: String) throws -> (Int, Int)? { params.dict[key] == nil ? nil : try pair(key) }
    }

    func cases(_ op: String) throws -> [Golden] {
        let list = try ops.cases(op).map(Golden.init)
        XCTAssertFalse(list.isEmpty, "no golden cases for \(op)")
        return list
    }

    /// Runs `build` on the case's inputs (all requiring gradients) and checks the output and
    /// every gradient.
    func checkGolden(_ c: Golden, _ what: String, _ build: (Variable, Variable?, Variable?) throws -> Variable) throws {
        let name = "\(what)[\(c.name)]"
        let x = Variable(try c.inputs.tensor("x"), requiresGrad: true)
        let w = try c.inputs.optionalTensor("weight").map { Variable($0, requiresGrad: true) }
        let b = try c.inputs.optionalTensor("bias").map { Variable($0, requiresGrad: true) }
        let y = try build(x, w, b)
        assertClose(y.value, c.output, .reduction, "\(name) output")
        try y.backward(seed: c.seed)
        assertClose(x.grad, try c.grads.tensor("x"), .reduction, "\(name) dx")
        if let w { assertClose(w.grad, try c.grads.tensor("weight"), .reduction, "\(name) dweight") }
        if let b { assertClose(b.grad, try c.grads.tensor("bias"), .reduction, "\(name) dbias") }
        XCTAssertEqual(Set(c.grads.dict.keys), Set(c.inputs.dict.keys), "\(name): a gradient for every input")
    }

    // MARK: Fixture coverage

    func testFixtureCoversEveryConvolutionAndPoolingOp() throws {
        let kinds: [OpKind] = [.conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d]
        for name in kinds.map(\.rawValue) + ["adaptive_avg_pool2d"] {
            XCTAssertGreaterThan(try ops.cases(name).count, 2, name)
        }
        // The variants the brief asks for are all present.
        let conv2d = try cases("conv2d")
        XCTAssertTrue(try conv2d.contains { try $0.pair("stride") == (2, 2) })
        XCTAssertTrue(try conv2d.contains { try $0.pair("dilation") == (2, 2) })
        XCTAssertTrue(try conv2d.contains { try $0.int("groups") == 2 })
        XCTAssertTrue(try conv2d.contains { try $0.int("groups") == $0.inputs.tensor("x").shape[1] && $0.int("groups") > 2 })
        XCTAssertTrue(conv2d.contains { $0.inputs.dict["bias"] == nil })
        XCTAssertTrue(try conv2d.contains { try $0.inputs.tensor("x").shape[0] == 1 })
        XCTAssertTrue(try conv2d.contains { try $0.inputs.tensor("weight").shape[2] != $0.inputs.tensor("weight").shape[3] })
        XCTAssertTrue(try cases("conv1d").contains { try $0.int("groups") == $0.inputs.tensor("x").shape[1] })
        for op in ["avg_pool1d", "avg_pool2d"] {
            XCTAssertEqual(Set(try cases(op).map { try $0.params.bool("count_include_pad") }), [true, false], op)
        }
        // Max-pool inputs hold distinct values, so no window has a tie.
        for op in ["max_pool1d", "max_pool2d"] {
            for c in try cases(op) {
                let values = try c.inputs.tensor("x").data, name = c.name
                XCTAssertEqual(Set(values).count, values.count, "\(op)[\(name)] has repeated values")
            }
        }
    }

    // MARK: Golden forward and backward

    func testConv1dMatchesTorch() throws {
        // Int.max: one chunk of samples per im2col buffer; 1 and 2 force the per-sample and the
        // uneven chunked paths. Both the BLAS and the direct kernels (depthwise cases run their
        // own loops whatever is asked).
        for kernels in [ConvKernels.blas, .direct] {
            for limit in [Int.max, 1, 2] {
                for c in try cases("conv1d") {
                    try checkGolden(c, "conv1d(\(kernels), chunk \(limit))") { x, w, b in
                        try conv1d(x, weight: try XCTUnwrap(w), bias: b, stride: try c.int("stride"), padding: try c.int("padding"),
                                   dilation: try c.int("dilation"), groups: try c.int("groups"), maxSamplesPerChunk: limit,
                                   kernels: kernels)
                    }
                }
            }
        }
    }

    func testConv2dMatchesTorch() throws {
        for kernels in [ConvKernels.blas, .direct] {
            for limit in [Int.max, 1, 2] {
                for c in try cases("conv2d") {
                    try checkGolden(c, "conv2d(\(kernels), chunk \(limit))") { x, w, b in
                        try conv2d(x, weight: try XCTUnwrap(w), bias: b, stride: try c.pair("stride"), padding: try c.pair("padding"),
                                   dilation: try c.pair("dilation"), groups: try c.int("groups"), maxSamplesPerChunk: limit,
                                   kernels: kernels)
                    }
                }
            }
        }
    }

    /// The public entry points (tuple and square-Int forms) give the golden values too.
    func testConv2dPublicOverloads() throws {
        for c in try cases("conv2d") {
            let s = try c.pair("stride"), p = try c.pair("padding"), d = try c.pair("dilation")
            try checkGolden(c, "conv2d(tuples)") { x, w, b in
                try conv2d(x, weight: try XCTUnwrap(w), bias: b, stride: s, padding: p, dilation: d, groups: try c.int("groups"))
            }
            guard s.0 == s.1, p.0 == p.1, d.0 == d.1 else { continue }
            try checkGolden(c, "conv2d(ints)") { x, w, b in
                try conv2d(x, weight: try XCTUnwrap(w), bias: b, stride: s.0, padding: p.0, dilation: d.0, groups: try c.int("groups"))
            }
        }
        for c in try cases("conv1d") {
            try checkGolden(c, "conv1d(public)") { x, w, b in
                try conv1d(x, weight: try XCTUnwrap(w), bias: b, stride: try c.int("stride"), padding: try c.int("padding"),
                           dilation: try c.int("dilation"), groups: try c.int("groups"))
            }
        }
    }

    /// Only the inputs that require a gradient receive one; the others' work is skipped.
    func testConvolutionConstantInputs() throws {
        for c in try cases("conv2d") {
            let name = c.name
            let s = try c.pair("stride"), p = try c.pair("padding"), d = try c.pair("dilation"), g = try c.int("groups")
            // Constant input: weight and bias gradients only.
            let x = Variable(try c.inputs.tensor("x"))
            let w = Variable(try c.inputs.tensor("weight"), requiresGrad: true)
            let b = try c.inputs.optionalTensor("bias").map { Variable($0, requiresGrad: true) }
            try conv2d(x, weight: w, bias: b, stride: s, padding: p, dilation: d, groups: g).backward(seed: c.seed)
            XCTAssertNil(x.grad)
            assertClose(w.grad, try c.grads.tensor("weight"), .reduction, "conv2d[\(name)] dweight with constant x")
            if let b { assertClose(b.grad, try c.grads.tensor("bias"), .reduction, "conv2d[\(name)] dbias with constant x") }
            // Constant weight and bias: input gradient only.
            let x2 = Variable(try c.inputs.tensor("x"), requiresGrad: true)
            let w2 = Variable(try c.inputs.tensor("weight"))
            let b2 = try c.inputs.optionalTensor("bias").map { Variable($0) }
            try conv2d(x2, weight: w2, bias: b2, stride: s, padding: p, dilation: d, groups: g).backward(seed: c.seed)
            XCTAssertNil(w2.grad)
            assertClose(x2.grad, try c.grads.tensor("x"), .reduction, "conv2d[\(name)] dx with constant weight")
        }
    }

    func testMaxPool1dMatchesTorch() throws {
        for c in try cases("max_pool1d") {
            let stride = try c.optionalInt("stride")
            try checkGolden(c, "max_pool1d") { x, _, _ in
                try maxPool1d(x, kernel: try c.int("kernel"), stride: stride, padding: try c.int("padding"))
            }
        }
    }

    func testMaxPool2dMatchesTorch() throws {
        for c in try cases("max_pool2d") {
            let k = try c.pair("kernel"), p = try c.pair("padding")
            let stride = try c.optionalPair("stride")
            try checkGolden(c, "max_pool2d") { x, _, _ in
                try maxPool2d(x, kernel: k, stride: stride, padding: p)
            }
            guard k.0 == k.1, p.0 == p.1, stride.map({ $0.0 == $0.1 }) ?? true else { continue }
            try checkGolden(c, "max_pool2d(ints)") { x, _, _ in
                try maxPool2d(x, kernel: k.0, stride: stride?.0, padding: p.0)
            }
        }
    }

    func testAvgPool1dMatchesTorch() throws {
        for c in try cases("avg_pool1d") {
            let stride = try c.optionalInt("stride")
            try checkGolden(c, "avg_pool1d") { x, _, _ in
                try avgPool1d(x, kernel: try c.int("kernel"), stride: stride, padding: try c.int("padding"),
                              countIncludePad: try c.params.bool("count_include_pad"))
            }
        }
    }

    func testAvgPool2dMatchesTorch() throws {
        for c in try cases("avg_pool2d") {
            let k = try c.pair("kernel"), p = try c.pair("padding"), include = try c.params.bool("count_include_pad")
            let stride = try c.optionalPair("stride")
            try checkGolden(c, "avg_pool2d") { x, _, _ in
                try avgPool2d(x, kernel: k, stride: stride, padding: p, countIncludePad: include)
            }
            guard k.0 == k.1, p.0 == p.1, stride.map({ $0.0 == $0.1 }) ?? true else { continue }
            try checkGolden(c, "avg_pool2d(ints)") { x, _, _ in
                try avgPool2d(x, kernel: k.0, stride: stride?.0, padding: p.0, countIncludePad: include)
            }
        }
    }

    func testAdaptiveAvgPool2dMatchesTorch() throws {
        for c in try cases("adaptive_avg_pool2d") {
            let size = try c.pair("output_size")
            try checkGolden(c, "adaptive_avg_pool2d") { x, _, _ in
                try adaptiveAvgPool2d(x, outputSize: size)
            }
            guard size.0 == size.1 else { continue }
            try checkGolden(c, "adaptive_avg_pool2d(int)") { x, _, _ in
                try adaptiveAvgPool2d(x, outputSize: size.0)
            }
        }
    }

    // MARK: Edge cases

    /// An empty batch gives an empty output and zero weight/bias gradients.
    func testEmptyBatch() throws {
        let x = Variable(try Tensor.zeros([0, 2, 5, 5]), requiresGrad: true)
        let w = Variable(randomTensor([3, 2, 3, 3], &rng), requiresGrad: true)
        let b = Variable(randomTensor([3], &rng), requiresGrad: true)
        let y = try conv2d(x, weight: w, bias: b, padding: 1)
        XCTAssertEqual(y.shape, [0, 3, 5, 5])
        try y.backward(seed: try Tensor.zeros([0, 3, 5, 5]))
        XCTAssertEqual(x.grad?.shape, [0, 2, 5, 5])
        XCTAssertEqual(w.grad, try Tensor.zeros([3, 2, 3, 3]))
        XCTAssertEqual(b.grad, try Tensor.zeros([3]))
        XCTAssertEqual(try maxPool2d(Variable(try Tensor.zeros([0, 2, 4, 4])), kernel: 2).shape, [0, 2, 2, 2])
        XCTAssertEqual(try avgPool1d(Variable(try Tensor.zeros([2, 0, 4])), kernel: 2).shape, [2, 0, 2])
    }

    /// Max pooling: -inf padding never wins, and a window of all -inf picks its first input.
    func testMaxPoolInfinities() throws {
        let x = Variable(try Tensor(shape: [1, 1, 4], data: [-.infinity, -.infinity, -5, -.infinity]), requiresGrad: true)
        let y = try maxPool1d(x, kernel: 2, padding: 1)
        XCTAssertEqual(y.value.data, [-.infinity, -5, -.infinity])
        try y.backward(seed: try Tensor(shape: [1, 1, 3], data: [1, 2, 4]))
        XCTAssertEqual(x.grad?.data, [1, 0, 2, 4])
    }

    /// Overlapping windows that share a maximum add their gradients there.
    func testMaxPoolOverlappingWindowsAccumulate() throws {
        let x = Variable(try Tensor(shape: [1, 1, 5], data: [0, 9, 1, 2, 3]), requiresGrad: true)
        let y = try maxPool1d(x, kernel: 3, stride: 1)
        XCTAssertEqual(y.value.data, [9, 9, 3])
        try y.backward(seed: try Tensor(shape: [1, 1, 3], data: [1, 10, 100]))
        XCTAssertEqual(x.grad?.data, [0, 11, 0, 0, 100])
    }

    /// With ties the gradient goes to the first maximum (PyTorch's choice), row-major in 2-d.
    func testMaxPoolTiesGoToFirstMaximum() throws {
        let x = Variable(try Tensor(shape: [1, 1, 2, 2], data: [1, 7, 7, 7]), requiresGrad: true)
        let y = try maxPool2d(x, kernel: 2)
        try y.backward(seed: try Tensor(shape: [1, 1, 1, 1], data: [3]))
        XCTAssertEqual(x.grad?.data, [0, 3, 0, 0])
    }

    /// Extreme but valid parameters compute (one output position) instead of overflowing.
    func testHugeStrideGivesOneOutput() throws {
        let x = Variable(try Tensor(shape: [1, 1, 5], data: [1, 2, 3, 4, 5]), requiresGrad: true)
        let w = Variable(try Tensor(shape: [1, 1, 3], data: [1, 10, 100]), requiresGrad: true)
        let y = try conv1d(x, weight: w, bias: nil, stride: Int.max, padding: 2)
        XCTAssertEqual(y.value.data, [100])  // window over [pad, pad, 1]
        try y.backward(seed: try Tensor(shape: [1, 1, 1], data: [2]))
        XCTAssertEqual(x.grad?.data, [200, 0, 0, 0, 0])
        XCTAssertEqual(w.grad?.data, [0, 0, 2])
        let y2 = try conv2d(Variable(try x.value.reshaped([1, 1, 1, 5])), weight: Variable(try w.value.reshaped([1, 1, 1, 3])),
                            bias: nil, stride: (Int.max, Int.max), padding: (0, 2))
        XCTAssertEqual(y2.value.data, [100])
        XCTAssertEqual(try maxPool1d(x, kernel: 4, stride: Int.max, padding: 2).value.data, [2])
        XCTAssertEqual(try avgPool1d(x, kernel: 4, stride: Int.max, padding: 2, countIncludePad: false).value.data, [1.5])
    }

    /// Without recording, no pullback is kept.
    func testInferenceModeRecordsNothing() throws {
        let x = Variable(randomTensor([1, 2, 5, 5], &rng), requiresGrad: true)
        let w = Variable(randomTensor([2, 2, 3, 3], &rng), requiresGrad: true)
        let y = try GradientMode.withoutGradients { try maxPool2d(try conv2d(x, weight: w, bias: nil), kernel: 2) }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertEqual(y.shape, [1, 2, 1, 1])
    }

    // MARK: Sizes that run the parallel loops

    /// Direct-summation convolution in Double: output, and the gradients for upstream `seed`.
    func referenceConv2d(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ seed: Tensor, stride: (Int, Int), padding: (Int, Int),
                         dilation: (Int, Int), groups: Int) -> (y: [Double], dx: [Double], dw: [Double], db: [Double]) {
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (o, cg, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        let (oh, ow) = (seed.shape[2], seed.shape[3])
        let xs = x.data, ws = w.data, g = seed.data, og = o / groups
        var y = [Double](repeating: 0, count: n * o * oh * ow)
        var dx = [Double](repeating: 0, count: xs.count), dw = [Double](repeating: 0, count: ws.count)
        var db = [Double](repeating: 0, count: o)
        for s in 0..<n {
            for oc in 0..<o {
                for i in 0..<oh {
                    for j in 0..<ow {
                        let yi = ((s * o + oc) * oh + i) * ow + j
                        var acc = Double(b?.data[oc] ?? 0)
                        for ci in 0..<cg {
                            let ic = (oc / og) * cg + ci
                            for a in 0..<kh {
                                for e in 0..<kw {
                                    let ih = i * stride.0 - padding.0 + a * dilation.0, iw = j * stride.1 - padding.1 + e * dilation.1
                                    guard ih >= 0, ih < h, iw >= 0, iw < wd else { continue }
                                    let xi = ((s * c + ic) * h + ih) * wd + iw, wi = ((oc * cg + ci) * kh + a) * kw + e
                                    acc += Double(xs[xi]) * Double(ws[wi])
                                    dx[xi] += Double(g[yi]) * Double(ws[wi])
                                    dw[wi] += Double(g[yi]) * Double(xs[xi])
                                }
                            }
                        }
                        y[yi] = acc
                        db[oc] += Double(g[yi])
                    }
                }
            }
        }
        return (y, dx, dw, db)
    }

    func tensor(_ values: [Double], _ shape: [Int]) throws -> Tensor { try Tensor(shape: shape, data: values.map { Float($0) }) }

    /// `.reduction` with atol scaled to the largest expected magnitude.
    ///
    /// Loosened on purpose, for comparisons with exact (Double) sums only: a float32 sum of
    /// thousands of terms (dW sums N·P ≈ 3000 products here) has an absolute error proportional
    /// to the terms' size, so an entry that cancels to near zero cannot meet rtol 1e-5 on its own
    /// value. PyTorch's float32 results carry the same error; the golden tests keep `.reduction`.
    func normwise(_ expected: [Double]) -> Tolerance {
        Tolerance(rtol: 1e-5, atol: 1e-5 * (expected.map(Swift.abs).max() ?? 0))
    }

    /// conv2d of `x`, `w`, `b` on the given path and its gradients for a random seed, checked
    /// against `referenceConv2d`; returns the weight gradient and its reference.
    func checkConv2dAgainstDirectSummation(_ x: Tensor, _ w: Tensor, _ b: Tensor, stride: (Int, Int), padding: (Int, Int),
                                           dilation: (Int, Int), groups: Int, limit: Int, kernels: ConvKernels,
                                           _ what: String) throws -> ([Float], [Double]) {
        let xv = Variable(x, requiresGrad: true), wv = Variable(w, requiresGrad: true), bv = Variable(b, requiresGrad: true)
        let y = try conv2d(xv, weight: wv, bias: bv, stride: stride, padding: padding, dilation: dilation,
                           groups: groups, maxSamplesPerChunk: limit, kernels: kernels)
        let seed = randomTensor(y.shape, &rng)
        try y.backward(seed: seed)
        let ref = referenceConv2d(x, w, b, seed, stride: stride, padding: padding, dilation: dilation, groups: groups)
        assertClose(y.value, try tensor(ref.y, y.shape), normwise(ref.y), "\(what) y")
        assertClose(xv.grad, try tensor(ref.dx, x.shape), normwise(ref.dx), "\(what) dx")
        assertClose(wv.grad, try tensor(ref.dw, w.shape), normwise(ref.dw), "\(what) dw")
        assertClose(bv.grad, try tensor(ref.db, b.shape), normwise(ref.db), "\(what) db")
        return (try XCTUnwrap(wv.grad).data, ref.dw)
    }

    /// Inputs big enough for the im2col, col2im, scatter and depthwise loops to run on several
    /// threads (at least 2 · `Parallel.minimumChunk` elements of work), against direct summation
    /// in Double.
    func testLargeConvolutionsMatchDirectSummation() throws {
        // Two threads whatever an earlier test left set: the point is the parallel loops.
        let threads = Engine.numThreads
        try Engine.setNumThreads(2)
        defer { try? Engine.setNumThreads(threads) }
        XCTAssertGreaterThan(Parallel.numThreads, 1, "these sizes only exercise the parallel loops with more than one thread")
        let configs: [(x: [Int], w: [Int], stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int), groups: Int)] = [
            ([4, 8, 32, 32], [16, 8, 3, 3], (1, 1), (1, 1), (1, 1), 1),
            ([5, 8, 25, 24], [6, 4, 3, 2], (2, 1), (2, 1), (2, 3), 2),
            ([5, 8, 24, 24], [16, 1, 3, 3], (1, 1), (1, 1), (1, 1), 8),
            ([5, 8, 24, 24], [8, 1, 3, 3], (2, 2), (1, 1), (2, 1), 8),
            // 32 and more output channels per group: the direct path's block products run through BLAS.
            ([4, 8, 12, 12], [40, 8, 3, 3], (1, 1), (1, 1), (1, 1), 1),
            ([3, 8, 9, 9], [64, 4, 3, 3], (2, 2), (1, 1), (1, 1), 2),
            // One sample per block, 12 blocks in 8 slots of partial weight and bias gradients.
            ([12, 16, 16, 16], [32, 16, 3, 3], (1, 1), (1, 1), (1, 1), 1),
        ]
        for (k, cfg) in configs.enumerated() {
            let x = randomTensor(cfg.x, &rng), w = randomTensor(cfg.w, &rng), b = randomTensor([cfg.w[0]], &rng)
            for (limit, kernels) in [(Int.max, ConvKernels.blas), (2, .blas), (Int.max, .direct), (2, .direct), (Int.max, .dense)] {
                _ = try checkConv2dAgainstDirectSummation(x, w, b, stride: cfg.stride, padding: cfg.padding, dilation: cfg.dilation,
                                                          groups: cfg.groups, limit: limit, kernels: kernels,
                                                          "conv2d config \(k), \(kernels), chunk \(limit)")
            }
        }
        // conv1d is the 2-d kernel over height 1.
        let x1 = randomTensor([6, 16, 300], &rng), w1 = randomTensor([12, 8, 5], &rng)
        let xv = Variable(x1, requiresGrad: true), wv = Variable(w1, requiresGrad: true)
        let y = try conv1d(xv, weight: wv, bias: nil, stride: 2, padding: 3, dilation: 2, groups: 2)
        let seed = randomTensor(y.shape, &rng)
        try y.backward(seed: seed)
        let ref = referenceConv2d(try x1.reshaped([6, 16, 1, 300]), try w1.reshaped([12, 8, 1, 5]), nil,
                                  try seed.reshaped([6, 12, 1, y.shape[2]]), stride: (1, 2), padding: (0, 3), dilation: (1, 2), groups: 2)
        assertClose(y.value, try tensor(ref.y, y.shape), normwise(ref.y), "conv1d y")
        assertClose(xv.grad, try tensor(ref.dx, x1.shape), normwise(ref.dx), "conv1d dx")
        assertClose(wv.grad, try tensor(ref.dw, w1.shape), normwise(ref.dw), "conv1d dw")
    }

    /// Kernels narrowed to their live taps (small maps with padding: only some taps ever read the
    /// input) and convolutions whose one window is the whole input (run as a fully connected
    /// layer), against direct summation: values and all three gradients, the dead taps' weight
    /// gradient exactly zero; on the BLAS and the direct kernels, whole and chunked batches.
    func testDeadTapsAndWholeInputWindowsMatchDirectSummation() throws {
        let configs: [(x: [Int], w: [Int], stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int), groups: Int,
                       kernel: (Int, Int)?, linear: Bool)] = [
            // ResNet's last stage at 32×32: 3×3 on a 1×1 map (one live tap), then 3×3/2 on 2×2 (2×2 taps, the whole input).
            ([6, 16, 1, 1], [20, 16, 3, 3], (1, 1), (1, 1), (1, 1), 1, (1, 1), true),
            ([6, 12, 2, 2], [20, 12, 3, 3], (2, 2), (1, 1), (1, 1), 1, (2, 2), true),
            // The 1×1/2 downsample: one output position, but not the whole input.
            ([6, 12, 2, 2], [20, 12, 1, 1], (2, 2), (0, 0), (1, 1), 1, nil, false),
            // Narrowed along the width only, with dilation; grouped.
            ([5, 6, 5, 1], [8, 6, 3, 3], (1, 1), (2, 2), (2, 2), 1, (3, 1), false),
            ([4, 8, 1, 1], [12, 4, 3, 3], (1, 1), (1, 1), (1, 1), 2, (1, 1), false),
        ]
        for (k, cfg) in configs.enumerated() {
            let geo = try ConvGeometry(op: "conv2d", input: cfg.x, weight: cfg.w, bias: [cfg.w[0]],
                                       stride: [cfg.stride.0, cfg.stride.1], padding: [cfg.padding.0, cfg.padding.1],
                                       dilation: [cfg.dilation.0, cfg.dilation.1], groups: cfg.groups)
            let crop = geo.cropped()
            XCTAssertEqual(crop.map { [$0.geometry.kH, $0.geometry.kW] }, cfg.kernel.map { [$0.0, $0.1] }, "config \(k): narrowed kernel")
            XCTAssertEqual((crop?.geometry ?? geo).isLinear, cfg.linear, "config \(k): whole-input window")
            let x = randomTensor(cfg.x, &rng), w = randomTensor(cfg.w, &rng), b = randomTensor([cfg.w[0]], &rng)
            for (limit, kernels) in [(Int.max, ConvKernels.blas), (2, .blas), (Int.max, .direct), (2, .direct), (Int.max, .dense)] {
                let what = "config \(k), \(kernels), chunk \(limit)"
                let (dw, ref) = try checkConv2dAgainstDirectSummation(x, w, b, stride: cfg.stride, padding: cfg.padding,
                                                                      dilation: cfg.dilation, groups: cfg.groups, limit: limit,
                                                                      kernels: kernels, what)
                for (i, r) in ref.enumerated() where r == 0 {
                    XCTAssertEqual(dw[i], 0, "\(what): dead tap \(i) has a weight gradient")
                }
            }
        }
    }

    /// [y, dx, dw, db] of relu(conv2d) on the BLAS path, then of conv2d with a fused ReLU on the
    /// `fused` path, for one random seed.
    func fusedReLUAndBLAS(_ x: Tensor, _ w: Tensor, _ b: Tensor, stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int),
                          fused: ConvKernels) throws -> [[Tensor]] {
        var grads: [[Tensor]] = []
        var seed: Tensor?
        for kernels in [ConvKernels.blas, fused] {
            let isFused = grads.count == 1
            let xv = Variable(x, requiresGrad: true), wv = Variable(w, requiresGrad: true), bv = Variable(b, requiresGrad: true)
            let y = try conv2d(xv, weight: wv, bias: bv, stride: stride, padding: padding, dilation: dilation, groups: 1,
                               fusedReLU: isFused, maxSamplesPerChunk: Int.max, kernels: kernels)
            let out = isFused ? y : relu(y)
            if seed == nil { seed = randomTensor(out.shape, &rng) }
            try out.backward(seed: try XCTUnwrap(seed))
            grads.append([out.value, try XCTUnwrap(xv.grad), try XCTUnwrap(wv.grad), try XCTUnwrap(bv.grad)])
        }
        return grads
    }

    /// Winograd's F(2×2, 3×3) in training (Convolution+Winograd.swift: the forward pass and, with
    /// padding 1, the input gradient of 3×3 stride-1 convolutions): the automatic choice, values
    /// and all gradients against direct summation (forced, also on narrow maps and channels where
    /// the automatic choice would not take it; within 1e-5 of the largest magnitude), with a fused
    /// ReLU against relu(conv) on the BLAS path, and central differences.
    func testWinogradConvolutionMatchesDirectSummationAndGradientChecks() throws {
        let configs: [(x: [Int], w: [Int], padding: Int)] = [
            ([3, 16, 8, 8], [24, 16, 3, 3], 1),
            ([2, 5, 7, 9], [6, 5, 3, 3], 1),
            // Rows of 8 tiles and more (the transforms' whole-row variant).
            ([2, 20, 17, 16], [18, 20, 3, 3], 1),
            // Padding 0: the forward pass through Winograd, the input gradient through im2col.
            ([3, 4, 6, 5], [7, 4, 3, 3], 0),
        ]
        for (k, cfg) in configs.enumerated() {
            let x = randomTensor(cfg.x, &rng), w = randomTensor(cfg.w, &rng), b = randomTensor([cfg.w[0]], &rng)
            _ = try checkConv2dAgainstDirectSummation(x, w, b, stride: (1, 1), padding: (cfg.padding, cfg.padding), dilation: (1, 1),
                                                      groups: 1, limit: Int.max, kernels: .winograd, "winograd config \(k)")
            let grads = try fusedReLUAndBLAS(x, w, b, stride: (1, 1), padding: (cfg.padding, cfg.padding), dilation: (1, 1),
                                             fused: .winograd)
            XCTAssertTrue(grads[1][0].data.contains(0), "config \(k): the ReLU cuts some outputs")
            for (name, (winograd, blas)) in zip(["y", "dx", "dw", "db"], zip(grads[1], grads[0])) {
                let scale = Double(blas.data.map { abs($0) }.max() ?? 0)
                assertClose(winograd, blas, Tolerance(rtol: 1e-5, atol: 1e-5 * scale),
                            "config \(k): fused ReLU, Winograd \(name) against relu(conv) on the BLAS path")
            }
        }
        func geometry(_ x: [Int], _ w: [Int], padding: Int = 1) throws -> ConvGeometry {
            try ConvGeometry(op: "conv2d", input: x, weight: w, bias: nil, stride: [1, 1], padding: [padding, padding],
                             dilation: [1, 1], groups: 1)
        }
        let layer1 = try geometry([128, 64, 16, 16], [64, 64, 3, 3])
        XCTAssertTrue(layer1.usesWinograd(.automatic), "ResNet-18's 16×16 maps run Winograd")
        XCTAssertNotNil(try layer1.winogradInputGradientGeometry(.automatic), "and so does their input gradient")
        XCTAssertNil(try layer1.winogradInputGradientGeometry(.blas))
        XCTAssertNil(try geometry([8, 16, 8, 8], [16, 16, 3, 3], padding: 0).winogradInputGradientGeometry(.winograd),
                     "padding 0: the input gradient needs padding 2")
        XCTAssertFalse(try geometry([128, 256, 2, 2], [256, 256, 3, 3]).usesWinograd(.automatic), "2×2 maps run densely")
        let xs = randomTensor([2, 3, 4, 5], &rng), ws = randomTensor([4, 3, 3, 3], &rng), bs = randomTensor([4], &rng)
        try gradientCheck([xs, ws, bs], seed: randomTensor([2, 4, 4, 5], &rng), "conv2d(Winograd, 4×5 map, padding 1)") { v in
            try conv2d(v[0], weight: v[1], bias: v[2], stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 1,
                       maxSamplesPerChunk: Int.max, kernels: .winograd)
        }
    }

    /// The dense path (maps smaller than the kernel as one matrix product, Convolution+Dense.swift)
    /// on ResNet's 2×2 maps and odd shapes: chosen automatically, forward and gradients against
    /// direct summation, with a fused ReLU against relu(conv) on the BLAS path, and central
    /// differences.
    func testDenseConvolutionMatchesDirectSummationAndGradientChecks() throws {
        let configs: [(x: [Int], w: [Int], stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int))] = [
            ([17, 12, 2, 2], [20, 12, 3, 3], (1, 1), (1, 1), (1, 1)),
            ([16, 7, 2, 3], [9, 7, 3, 3], (1, 1), (1, 1), (1, 1)),
            ([20, 4, 3, 3], [6, 4, 5, 5], (2, 2), (2, 2), (1, 1)),
            ([16, 3, 3, 2], [70, 3, 3, 3], (1, 1), (1, 1), (1, 1)),
        ]
        for (k, cfg) in configs.enumerated() {
            let geo = try ConvGeometry(op: "conv2d", input: cfg.x, weight: cfg.w, bias: [cfg.w[0]],
                                       stride: [cfg.stride.0, cfg.stride.1], padding: [cfg.padding.0, cfg.padding.1],
                                       dilation: [cfg.dilation.0, cfg.dilation.1], groups: 1)
            XCTAssertTrue(geo.runsDense, "config \(k): a map smaller than the kernel runs densely")
            let fewer = try ConvGeometry(op: "conv2d", input: [ConvGeometry.denseMinimumBatch - 1] + cfg.x.dropFirst(), weight: cfg.w,
                                         bias: nil, stride: [cfg.stride.0, cfg.stride.1], padding: [cfg.padding.0, cfg.padding.1],
                                         dilation: [cfg.dilation.0, cfg.dilation.1], groups: 1)
            XCTAssertFalse(fewer.runsDense, "config \(k): small batches run im2col")
            XCTAssertTrue(geo.usesDense(.automatic) && !geo.usesDense(.blas), "config \(k)")
            let x = randomTensor(cfg.x, &rng), w = randomTensor(cfg.w, &rng), b = randomTensor([cfg.w[0]], &rng)
            _ = try checkConv2dAgainstDirectSummation(x, w, b, stride: cfg.stride, padding: cfg.padding, dilation: cfg.dilation,
                                                      groups: 1, limit: Int.max, kernels: .automatic, "dense config \(k)")
            let grads = try fusedReLUAndBLAS(x, w, b, stride: cfg.stride, padding: cfg.padding, dilation: cfg.dilation, fused: .dense)
            XCTAssertTrue(grads[1][0].data.contains(0), "config \(k): the ReLU cuts some outputs")
            for (name, (dense, blas)) in zip(["y", "dx", "dw", "db"], zip(grads[1], grads[0])) {
                assertClose(dense, blas, .reduction, "config \(k): fused ReLU, dense \(name) against relu(conv) on the BLAS path")
            }
        }
        let x = randomTensor([2, 3, 2, 2], &rng), w = randomTensor([4, 3, 3, 3], &rng), b = randomTensor([4], &rng)
        try gradientCheck([x, w, b], seed: randomTensor([2, 4, 2, 2], &rng), "conv2d(dense, 2×2 map, padding 1)") { v in
            try conv2d(v[0], weight: v[1], bias: v[2], stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 1,
                       maxSamplesPerChunk: Int.max, kernels: .dense)
        }
    }

    /// The BLAS path's im2col and col2im (cember_im2col_exact or cember_im2col_small, cember_col2im:
    /// samples side by side in rows of exactly P columns) on ResNet's shapes at odd sizes (7×7/2 stem, 3×3/2, 1×1/2, 3×3
    /// over rows of more than two vectors) against direct summation, and with the same bits in
    /// every instruction-set variant this CPU runs.
    func testBLASConvolutionIm2colMatchesDirectSummationInEveryInstructionSet() throws {
        // The matrix products run OpenBLAS's kernels, whatever the cap: Ember's own baseline
        // variant rounds differently by design (no FMA; GemmKernelTests).
        let kernels = BLAS.kernels
        BLAS.kernels = .openBLAS
        defer {
            _ = cember_kernels_force_isa(-1)
            BLAS.kernels = kernels
        }
        let configs: [(x: [Int], w: [Int], stride: Int, padding: Int)] = [
            ([3, 3, 13, 11], [70, 3, 7, 7], 2, 3), ([3, 5, 9, 9], [70, 5, 3, 3], 2, 1),
            ([3, 6, 9, 7], [70, 6, 1, 1], 2, 0), ([3, 4, 6, 37], [70, 4, 3, 3], 1, 1),
            // Maps of at most 16 positions (cember_im2col_small): 3×3, 3×3/2 to 2×2, 1×1/2 to 3×2.
            ([4, 3, 3, 3], [70, 3, 3, 3], 1, 1), ([5, 6, 4, 4], [70, 6, 3, 3], 2, 1), ([7, 6, 5, 3], [70, 6, 1, 1], 2, 0),
        ]
        for (k, cfg) in configs.enumerated() {
            let x = randomTensor(cfg.x, &rng), w = randomTensor(cfg.w, &rng), b = randomTensor([cfg.w[0]], &rng)
            var seed: Tensor?
            var reference: [Tensor]?
            for isa in [-1, 1, 0] {
                _ = cember_kernels_force_isa(Int32(isa))
                let xv = Variable(x, requiresGrad: true), wv = Variable(w, requiresGrad: true), bv = Variable(b, requiresGrad: true)
                let y = try conv2d(xv, weight: wv, bias: bv, stride: (cfg.stride, cfg.stride), padding: (cfg.padding, cfg.padding),
                                   dilation: (1, 1), groups: 1, maxSamplesPerChunk: Int.max, kernels: .blas)
                if seed == nil { seed = randomTensor(y.shape, &rng) }
                try y.backward(seed: try XCTUnwrap(seed))
                let results = [y.value, try XCTUnwrap(xv.grad), try XCTUnwrap(wv.grad), try XCTUnwrap(bv.grad)]
                if let reference {
                    for (name, (r, e)) in zip(["y", "dx", "dw", "db"], zip(results, reference)) {
                        XCTAssertEqual(r.data, e.data, "config \(k), isa cap \(isa): \(name) differs")
                    }
                } else {
                    reference = results
                    let ref = referenceConv2d(x, w, b, try XCTUnwrap(seed), stride: (cfg.stride, cfg.stride),
                                              padding: (cfg.padding, cfg.padding), dilation: (1, 1), groups: 1)
                    assertClose(y.value, try tensor(ref.y, y.shape), normwise(ref.y), "config \(k) y")
                    assertClose(xv.grad, try tensor(ref.dx, x.shape), normwise(ref.dx), "config \(k) dx")
                    assertClose(wv.grad, try tensor(ref.dw, w.shape), normwise(ref.dw), "config \(k) dw")
                }
            }
        }
    }

    /// The direct kernels give the same bits on one thread and on two, and in every instruction-set
    /// variant this CPU can run (AVX-512, AVX2, baseline): blocks of samples depend on the shapes
    /// only, and every long sum is added in one fixed order (CEmberKernels/convolution.c).
    func testDirectConvolutionIsBitIdenticalAcrossThreadsAndInstructionSets() throws {
        // The matrix products some gradients take run OpenBLAS's kernels, whatever the cap: Ember's
        // own baseline variant rounds differently by design (no FMA; GemmKernelTests).
        let threads = Engine.numThreads, kernels = BLAS.kernels
        BLAS.kernels = .openBLAS
        defer {
            try? Engine.setNumThreads(threads)
            _ = cember_kernels_force_isa(-1)
            BLAS.kernels = kernels
        }
        // LeNet's two convolutions (uneven blocks: 13 samples) and a strided, dilated, grouped one.
        let configs: [(x: [Int], w: [Int], stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int), groups: Int)] = [
            ([13, 1, 28, 28], [6, 1, 5, 5], (1, 1), (2, 2), (1, 1), 1),
            ([13, 6, 14, 14], [16, 6, 5, 5], (1, 1), (0, 0), (1, 1), 1),
            ([5, 8, 25, 24], [6, 4, 3, 2], (2, 1), (2, 1), (2, 3), 2),
            // Stride 2 along the width (vectorised im2col): a 7×7/2 stem over two vectors of output, 3×3/2 at odd sizes.
            ([3, 3, 19, 37], [6, 3, 7, 7], (2, 2), (3, 3), (1, 1), 1), ([4, 5, 9, 11], [7, 5, 3, 3], (2, 2), (1, 1), (1, 1), 1),
            // The BLAS variant: 12 one-sample blocks accumulated in 8 slots.
            ([12, 16, 16, 16], [32, 16, 3, 3], (1, 1), (1, 1), (1, 1), 1),
        ]
        for (k, cfg) in configs.enumerated() {
            let x = randomTensor(cfg.x, &rng), w = randomTensor(cfg.w, &rng), b = randomTensor([cfg.w[0]], &rng)
            var seed: Tensor?
            var reference: [Tensor]?
            for (nThreads, isa) in [(1, -1), (2, -1), (1, 1), (1, 0)] {
                try Engine.setNumThreads(nThreads)
                _ = cember_kernels_force_isa(Int32(isa))
                let xv = Variable(x, requiresGrad: true), wv = Variable(w, requiresGrad: true), bv = Variable(b, requiresGrad: true)
                let y = try conv2d(xv, weight: wv, bias: bv, stride: cfg.stride, padding: cfg.padding, dilation: cfg.dilation,
                                   groups: cfg.groups, maxSamplesPerChunk: Int.max, kernels: .direct)
                if seed == nil { seed = randomTensor(y.shape, &rng) }
                try y.backward(seed: try XCTUnwrap(seed))
                let results = [y.value, try XCTUnwrap(xv.grad), try XCTUnwrap(wv.grad), try XCTUnwrap(bv.grad)]
                if let reference {
                    for (name, (r, e)) in zip(["y", "dx", "dw", "db"], zip(results, reference)) {
                        XCTAssertEqual(r.data, e.data, "config \(k), \(nThreads) threads, isa cap \(isa): \(name) differs")
                    }
                } else {
                    reference = results
                }
            }
        }
    }

    /// A fused ReLU gives the bits of relu(conv) and of its gradients on every path: the direct
    /// kernels (ReLU in the GEMM's store, the mask applied while staging dY), BLAS and depthwise
    /// (ReLU before and after the unfused op), for conv1d and conv2d.
    func testFusedReLUEqualsConvolutionThenReLU() throws {
        let configs: [(x: [Int], w: [Int], padding: Int, groups: Int, kernels: ConvKernels)] = [
            ([5, 3, 12, 11], [6, 3, 3, 3], 1, 1, .direct), ([5, 3, 12, 11], [6, 3, 3, 3], 1, 1, .blas),
            ([3, 4, 9, 9], [8, 1, 3, 3], 1, 4, .automatic), ([4, 2, 30], [5, 2, 4], 2, 1, .direct),
            ([5, 3, 12, 11], [40, 3, 3, 3], 1, 1, .direct),
        ]
        for (k, cfg) in configs.enumerated() {
            // Exact zeros in the output (bias 0, an all-zero sample) exercise relu'(0) = 0.
            var xs = randomTensor(cfg.x, &rng).data
            for i in 0..<(xs.count / cfg.x[0]) { xs[i] = 0 }
            let x = try Tensor(shape: cfg.x, data: xs), w = randomTensor(cfg.w, &rng)
            let b = try Tensor(shape: [cfg.w[0]], data: (0..<cfg.w[0]).map { $0 == 0 ? 0 : Float($0) * 0.1 - 0.2 })
            var results: [[Tensor]] = []
            var seed: Tensor?
            for fused in [false, true] {
                let xv = Variable(x, requiresGrad: true), wv = Variable(w, requiresGrad: true), bv = Variable(b, requiresGrad: true)
                let y: Variable
                if cfg.x.count == 3 {
                    y = try conv1d(xv, weight: wv, bias: bv, stride: 1, padding: cfg.padding, dilation: 1, groups: cfg.groups,
                                   fusedReLU: fused, maxSamplesPerChunk: 2, kernels: cfg.kernels)
                } else {
                    y = try conv2d(xv, weight: wv, bias: bv, stride: (1, 1), padding: (cfg.padding, cfg.padding), dilation: (1, 1),
                                   groups: cfg.groups, fusedReLU: fused, maxSamplesPerChunk: 2, kernels: cfg.kernels)
                }
                let out = fused ? y : relu(y)
                if seed == nil { seed = randomTensor(out.shape, &rng) }
                try out.backward(seed: try XCTUnwrap(seed))
                results.append([out.value, try XCTUnwrap(xv.grad), try XCTUnwrap(wv.grad), try XCTUnwrap(bv.grad)])
            }
            XCTAssertTrue(results[1][0].data.contains(0), "config \(k): some outputs are cut by the ReLU")
            for (name, (fused, unfused)) in zip(["y", "dx", "dw", "db"], zip(results[1], results[0])) {
                XCTAssertEqual(fused.data.map(\.bitPattern), unfused.data.map(\.bitPattern), "config \(k): fused \(name) differs")
            }
        }
    }

    /// max_pool2d of `x` and its gradient for `seed` give exactly `y` and `dx` on one and two
    /// threads and in every instruction-set variant (the caller resets threads and variant).
    func checkMaxPool2dOnEveryPath(_ x: Tensor, _ seed: Tensor, kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int),
                                   y: [Float], dx: [Float], _ what: String) throws {
        for (nThreads, isa) in [(1, -1), (2, -1), (1, 1), (1, 0)] {
            try Engine.setNumThreads(nThreads)
            _ = cember_kernels_force_isa(Int32(isa))
            let xv = Variable(x, requiresGrad: true)
            let out = try maxPool2d(xv, kernel: kernel, stride: stride, padding: padding)
            try out.backward(seed: seed)
            XCTAssertEqual(out.value.data.map(\.bitPattern), y.map(\.bitPattern), "\(what), \(nThreads) threads, isa cap \(isa): values")
            XCTAssertEqual(try XCTUnwrap(xv.grad).data, dx, "\(what), \(nThreads) threads, isa cap \(isa): gradient")
        }
    }

    /// Max pooling whose windows tile the input (vectorised kernels for 2×2) against direct loops,
    /// on values with many ties and some NaN (the first maximum wins, NaN wins over numbers), odd
    /// sizes that leave a row and a column uncovered, one and two threads and every instruction set.
    func testTiledMaxPoolingMatchesDirectLoopsWithTiesAndNaN() throws {
        let threads = Engine.numThreads
        defer {
            try? Engine.setNumThreads(threads)
            _ = cember_kernels_force_isa(-1)
        }
        for (shape, kernel) in [([6, 7, 29, 27], (2, 2)), ([3, 5, 40, 36], (2, 2)), ([4, 3, 11, 13], (3, 2)), ([5, 4, 1, 31], (1, 2))] {
            let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
            let values: [Float] = (0..<(n * c * h * w)).map { _ in
                let r = Int(rng.next() % 20)
                return r == 0 ? .nan : Float(r % 7)
            }
            let x = try Tensor(shape: shape, data: values)
            let (oh, ow) = (h / kernel.0, w / kernel.1)
            let seed = randomTensor([n, c, oh, ow], &rng)
            var y = [Float](), dx = [Float](repeating: 0, count: values.count)
            for plane in 0..<(n * c) {
                for i in 0..<oh {
                    for j in 0..<ow {
                        var best = -Float.infinity, at = (plane * h + i * kernel.0) * w + j * kernel.1
                        for a in 0..<kernel.0 {
                            for e in 0..<kernel.1 {
                                let k = (plane * h + i * kernel.0 + a) * w + j * kernel.1 + e
                                if values[k] > best || values[k].isNaN { best = values[k]; at = k }
                            }
                        }
                        y.append(best)
                        dx[at] += seed.data[(plane * oh + i) * ow + j]
                    }
                }
            }
            try checkMaxPool2dOnEveryPath(x, seed, kernel: kernel, stride: kernel, padding: (0, 0), y: y, dx: dx,
                                          "max_pool2d \(kernel) on \(shape)")
        }
    }

    /// Max pooling with overlapping or padded windows (cember_max_pool_strided for a width stride
    /// of 1 or 2, ResNet's 3×3/2 with padding 1 among them; stride 3 takes the scalar loops)
    /// against direct loops, on values with ties, NaN and -inf (the first maximum wins, NaN wins,
    /// a window of -inf keeps its first element inside the input), rows of several vectors, one and
    /// two threads and every instruction set.
    func testStridedMaxPoolingMatchesDirectLoopsWithTiesAndNaN() throws {
        let threads = Engine.numThreads
        defer {
            try? Engine.setNumThreads(threads)
            _ = cember_kernels_force_isa(-1)
        }
        let configs: [(shape: [Int], kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int))] = [
            ([6, 7, 17, 37], (3, 3), (2, 2), (1, 1)), ([3, 5, 9, 40], (3, 2), (1, 1), (1, 1)),
            ([4, 3, 11, 13], (2, 3), (2, 2), (0, 1)), ([5, 4, 7, 31], (3, 3), (3, 3), (1, 1)), ([2, 3, 1, 50], (1, 5), (1, 2), (0, 2)),
        ]
        for cfg in configs {
            let (n, c, h, w) = (cfg.shape[0], cfg.shape[1], cfg.shape[2], cfg.shape[3])
            let values: [Float] = (0..<(n * c * h * w)).map { _ in
                let r = Int(rng.next() % 24)
                return r == 0 ? .nan : r == 1 ? -.infinity : Float(r % 7)
            }
            let x = try Tensor(shape: cfg.shape, data: values)
            let oh = (h + 2 * cfg.padding.0 - cfg.kernel.0) / cfg.stride.0 + 1
            let ow = (w + 2 * cfg.padding.1 - cfg.kernel.1) / cfg.stride.1 + 1
            let seed = randomTensor([n, c, oh, ow], &rng)
            var y = [Float](), dx = [Float](repeating: 0, count: values.count)
            for plane in 0..<(n * c) {
                for i in 0..<oh {
                    for j in 0..<ow {
                        let h0 = i * cfg.stride.0 - cfg.padding.0, w0 = j * cfg.stride.1 - cfg.padding.1
                        let rows = Swift.max(h0, 0)..<Swift.min(h0 + cfg.kernel.0, h), cols = Swift.max(w0, 0)..<Swift.min(w0 + cfg.kernel.1, w)
                        var best = -Float.infinity, at = (plane * h + rows.lowerBound) * w + cols.lowerBound
                        for a in rows {
                            for e in cols {
                                let k = (plane * h + a) * w + e
                                if values[k] > best || values[k].isNaN { best = values[k]; at = k }
                            }
                        }
                        y.append(best)
                        dx[at] += seed.data[(plane * oh + i) * ow + j]
                    }
                }
            }
            try checkMaxPool2dOnEveryPath(x, seed, kernel: cfg.kernel, stride: cfg.stride, padding: cfg.padding, y: y, dx: dx,
                                          "max_pool2d \(cfg.kernel)/\(cfg.stride) padding \(cfg.padding) on \(cfg.shape)")
        }
    }

    /// Pooling over enough planes to run in parallel, against direct loops in the test.
    func testLargePoolingMatchesDirectLoops() throws {
        let (n, c, h, w) = (10, 8, 30, 31)
        // Distinct values for the maxima (no ties); values in [-1, 1) for the averages.
        let xm = try distinctTensor([n, c, h, w]), x = randomTensor([n, c, h, w], &rng)
        let ms = xm.data, xs = x.data
        // max_pool2d 3×3, stride 2, padding 1 and avg_pool2d 3×3, stride 2, padding 1 without the padding count.
        let (oh, ow) = ((h + 2 - 3) / 2 + 1, (w + 2 - 3) / 2 + 1)
        var maxY = [Double](), avgY = [Double]()
        var maxDx = [Double](repeating: 0, count: xs.count), avgDx = [Double](repeating: 0, count: xs.count)
        let seed = randomTensor([n, c, oh, ow], &rng)
        for plane in 0..<(n * c) {
            for i in 0..<oh {
                for j in 0..<ow {
                    var best = -Double.infinity, at = 0, sum = 0.0, cnt = 0
                    for a in (i * 2 - 1)..<(i * 2 + 2) where a >= 0 && a < h {
                        for e in (j * 2 - 1)..<(j * 2 + 2) where e >= 0 && e < w {
                            let k = (plane * h + a) * w + e
                            if Double(ms[k]) > best { best = Double(ms[k]); at = k }
                            sum += Double(xs[k])
                            cnt += 1
                        }
                    }
                    let g = Double(seed.data[(plane * oh + i) * ow + j])
                    maxY.append(best)
                    maxDx[at] += g
                    avgY.append(sum / Double(cnt))
                    for a in (i * 2 - 1)..<(i * 2 + 2) where a >= 0 && a < h {
                        for e in (j * 2 - 1)..<(j * 2 + 2) where e >= 0 && e < w { avgDx[(plane * h + a) * w + e] += g / Double(cnt) }
                    }
                }
            }
        }
        let xv = Variable(xm, requiresGrad: true)
        let ym = try maxPool2d(xv, kernel: 3, stride: 2, padding: 1)
        try ym.backward(seed: seed)
        assertClose(ym.value, try tensor(maxY, ym.shape), .reduction, "max_pool2d y")
        assertClose(xv.grad, try tensor(maxDx, xm.shape), .reduction, "max_pool2d dx")
        let xa = Variable(x, requiresGrad: true)
        let ya = try avgPool2d(xa, kernel: 3, stride: 2, padding: 1, countIncludePad: false)
        try ya.backward(seed: seed)
        assertClose(ya.value, try tensor(avgY, ya.shape), .reduction, "avg_pool2d y")
        assertClose(xa.grad, try tensor(avgDx, x.shape), .reduction, "avg_pool2d dx")
        // Adaptive pooling to 1×1 is the mean of each plane; its gradient spreads evenly.
        let xg = Variable(x, requiresGrad: true)
        let yg = try adaptiveAvgPool2d(xg, outputSize: 1)
        let seed1 = randomTensor([n, c, 1, 1], &rng)
        try yg.backward(seed: seed1)
        var means = [Double](), spread = [Double]()
        for plane in 0..<(n * c) {
            means.append(xs[(plane * h * w)..<((plane + 1) * h * w)].reduce(0.0) { $0 + Double($1) } / Double(h * w))
            spread += [Double](repeating: Double(seed1.data[plane]) / Double(h * w), count: h * w)
        }
        assertClose(yg.value, try tensor(means, [n, c, 1, 1]), .reduction, "adaptive_avg_pool2d y")
        assertClose(xg.grad, try tensor(spread, x.shape), .reduction, "adaptive_avg_pool2d dx")
    }

    // MARK: Central-difference gradient checks

    func testConv1dGradients() throws {
        let x = randomTensor([2, 4, 9], &rng), w = randomTensor([6, 2, 3], &rng), b = randomTensor([6], &rng)
        // Output length: floor((9 + 2 - 2·2 - 1) / 2) + 1 = 4.
        try gradientCheck([x, w, b], seed: randomTensor([2, 6, 4], &rng), "conv1d(stride 2, padding 1, dilation 2, groups 2)") { v in
            try conv1d(v[0], weight: v[1], bias: v[2], stride: 2, padding: 1, dilation: 2, groups: 2)
        }
        let w1 = randomTensor([3, 4, 2], &rng)
        try gradientCheck([x, w1], seed: randomTensor([2, 3, 8], &rng), "conv1d(no bias)") { v in
            try conv1d(v[0], weight: v[1], bias: nil)
        }
    }

    func testConv2dGradients() throws {
        let x = randomTensor([2, 3, 5, 5], &rng), w = randomTensor([4, 3, 3, 3], &rng), b = randomTensor([4], &rng)
        try gradientCheck([x, w, b], seed: randomTensor([2, 4, 5, 5], &rng), "conv2d(padding 1)") { v in
            try conv2d(v[0], weight: v[1], bias: v[2], padding: 1)
        }
        // Groups, non-square kernel, stride, dilation and padding together; chunks of one sample.
        let xg = randomTensor([2, 4, 6, 7], &rng), wg = randomTensor([6, 2, 2, 3], &rng), bg = randomTensor([6], &rng)
        // Output: H floor((6 + 2 - 2 - 1) / 2) + 1 = 3, W floor((7 + 0 - 4 - 1) / 1) + 1 = 3.
        try gradientCheck([xg, wg, bg], seed: randomTensor([2, 6, 3, 3], &rng), "conv2d(groups 2, stride (2, 1), dilation (2, 2))") { v in
            try conv2d(v[0], weight: v[1], bias: v[2], stride: (2, 1), padding: (1, 0), dilation: (2, 2), groups: 2,
                       maxSamplesPerChunk: 1)
        }
        // Depthwise.
        let xd = randomTensor([1, 3, 4, 4], &rng), wd = randomTensor([3, 1, 3, 3], &rng)
        try gradientCheck([xd, wd], seed: randomTensor([1, 3, 2, 2], &rng), "conv2d(depthwise)") { v in
            try conv2d(v[0], weight: v[1], bias: nil, groups: 3)
        }
    }

    /// A tensor of distinct values 0.1 apart in random order: with a 1e-2 step no window's maximum
    /// changes place (test points away from ties).
    func distinctTensor(_ shape: [Int]) throws -> Tensor {
        let n = shape.reduce(1, *)
        return try Tensor(shape: shape, data: rng.permutation(n).map { (Float($0) - Float(n) / 2) * 0.1 })
    }

    func testMaxPoolGradients() throws {
        let x1 = try distinctTensor([2, 2, 9])
        try gradientCheck([x1], seed: randomTensor([2, 2, 5], &rng), "max_pool1d(3, stride 2, padding 1)") { v in
            try maxPool1d(v[0], kernel: 3, stride: 2, padding: 1)
        }
        let x2 = try distinctTensor([2, 2, 6, 7])
        try gradientCheck([x2], seed: randomTensor([2, 2, 7, 4], &rng), "max_pool2d((2, 3), stride (1, 2), padding (1, 1))") { v in
            try maxPool2d(v[0], kernel: (2, 3), stride: (1, 2), padding: (1, 1))
        }
    }

    func testAvgPoolGradients() throws {
        let x1 = randomTensor([2, 2, 9], &rng)
        for include in [true, false] {
            try gradientCheck([x1], seed: randomTensor([2, 2, 5], &rng), "avg_pool1d(count_include_pad \(include))") { v in
                try avgPool1d(v[0], kernel: 3, stride: 2, padding: 1, countIncludePad: include)
            }
        }
        let x2 = randomTensor([1, 2, 6, 7], &rng)
        for include in [true, false] {
            try gradientCheck([x2], seed: randomTensor([1, 2, 7, 4], &rng), "avg_pool2d(count_include_pad \(include))") { v in
                try avgPool2d(v[0], kernel: (2, 3), stride: (1, 2), padding: (1, 1), countIncludePad: include)
            }
        }
        let x3 = randomTensor([1, 2, 5, 7], &rng)
        try gradientCheck([x3], seed: randomTensor([1, 2, 3, 4], &rng), "adaptive_avg_pool2d") { v in
            try adaptiveAvgPool2d(v[0], outputSize: (3, 4))
        }
    }

    // MARK: Errors

    func v(_ shape: [Int]) throws -> Variable { Variable(try Tensor.zeros(shape)) }

    func testConvolutionShapeErrors() throws {
        assertEmberError(.shapeMismatch, ["[conv2d] expected input with 3 channels, got 4 (input [2, 4, 8, 8], weight [6, 3, 3, 3])"]) {
            try conv2d(try v([2, 4, 8, 8]), weight: try v([6, 3, 3, 3]), bias: nil)
        }
        assertEmberError(.shapeMismatch, ["[conv1d]", "expected input with 4 channels (2 per group × 2 groups), got 6",
                                          "input [1, 6, 5]", "weight [4, 2, 3]"]) {
            try conv1d(try v([1, 6, 5]), weight: try v([4, 2, 3]), bias: nil, groups: 2)
        }
        assertEmberError(.shapeMismatch, ["[conv2d] expected input of rank 4 [N, C_in, H, W], got [3, 8, 8]"]) {
            try conv2d(try v([3, 8, 8]), weight: try v([6, 3, 3, 3]), bias: nil)
        }
        assertEmberError(.shapeMismatch, ["[conv1d] expected input of rank 3 [N, C_in, L], got [2, 3, 4, 4]"]) {
            try conv1d(try v([2, 3, 4, 4]), weight: try v([6, 3, 3]), bias: nil)
        }
        assertEmberError(.shapeMismatch, ["[conv2d] expected weight of rank 4 [C_out, C_in/groups, kH, kW], got [6, 3, 3]"]) {
            try conv2d(try v([2, 3, 8, 8]), weight: try v([6, 3, 3]), bias: nil)
        }
        assertEmberError(.shapeMismatch, ["[conv2d] expected bias of shape [6], got [5]"]) {
            try conv2d(try v([2, 3, 8, 8]), weight: try v([6, 3, 3, 3]), bias: try v([5]))
        }
        assertEmberError(.shapeMismatch, ["[conv2d] kernel size must be >= 1, got (0, 3) (weight [6, 3, 0, 3])"]) {
            try conv2d(try v([2, 3, 8, 8]), weight: try v([6, 3, 0, 3]), bias: nil)
        }
        assertEmberError(.shapeMismatch, ["[conv2d] input size (2, 8) with padding (0, 0) is smaller than the kernel (3, 3) with dilation (1, 1)",
                                          "(input [1, 3, 2, 8], weight [6, 3, 3, 3])"]) {
            try conv2d(try v([1, 3, 2, 8]), weight: try v([6, 3, 3, 3]), bias: nil)
        }
        assertEmberError(.shapeMismatch, ["[conv1d] input size 5 with padding 0 is smaller than the kernel 3 with dilation 3"]) {
            try conv1d(try v([1, 1, 5]), weight: try v([1, 1, 3]), bias: nil, dilation: 3)
        }
    }

    func testConvolutionArgumentErrors() throws {
        let x = try v([2, 4, 8, 8]), w = try v([6, 2, 3, 3])
        assertEmberError(.invalidArgument, ["[conv2d] groups 3 must divide the input channels 4", "input [2, 4, 8, 8]"]) {
            try conv2d(x, weight: try v([6, 1, 3, 3]), bias: nil, groups: 3)
        }
        assertEmberError(.invalidArgument, ["[conv2d] groups 2 must divide the output channels 5", "weight [5, 2, 3, 3]"]) {
            try conv2d(x, weight: try v([5, 2, 3, 3]), bias: nil, groups: 2)
        }
        assertEmberError(.invalidArgument, ["[conv2d] groups must be >= 1, got 0"]) {
            try conv2d(x, weight: w, bias: nil, groups: 0)
        }
        assertEmberError(.invalidArgument, ["[conv2d] stride must be >= 1, got (0, 1)"]) {
            try conv2d(x, weight: w, bias: nil, stride: (0, 1), groups: 2)
        }
        assertEmberError(.invalidArgument, ["[conv1d] stride must be >= 1, got -1"]) {
            try conv1d(try v([1, 2, 5]), weight: try v([1, 2, 3]), bias: nil, stride: -1)
        }
        assertEmberError(.invalidArgument, ["[conv2d] dilation must be >= 1, got (1, 0)"]) {
            try conv2d(x, weight: w, bias: nil, stride: (1, 1), dilation: (1, 0), groups: 2)
        }
        assertEmberError(.invalidArgument, ["[conv2d] padding must be >= 0, got (-1, -1)"]) {
            try conv2d(x, weight: w, bias: nil, padding: -1, groups: 2)
        }
        assertEmberError(.overflow, ["[conv1d]", "overflow"]) {
            try conv1d(try v([1, 2, 5]), weight: try v([1, 2, 3]), bias: nil, padding: Int.max / 2 + 1)
        }
        assertEmberError(.overflow, ["[conv2d]", "dilation"]) {
            try conv2d(x, weight: w, bias: nil, stride: (1, 1), dilation: (Int.max, 1), groups: 2)
        }
        assertEmberError(.shapeMismatch, ["[conv2d] expected input with channels 2 per group × \(Int.max) groups, got 0"]) {
            try conv2d(try v([2, 0, 8, 8]), weight: try v([0, 2, 3, 3]), bias: nil, groups: Int.max)
        }
    }

    func testPoolingErrors() throws {
        let x1 = try v([2, 3, 8]), x2 = try v([2, 3, 8, 8])
        assertEmberError(.shapeMismatch, ["[max_pool1d] expected input of rank 3 [N, C, L], got [3, 8]"]) {
            try maxPool1d(try v([3, 8]), kernel: 2)
        }
        assertEmberError(.shapeMismatch, ["[avg_pool2d] expected input of rank 4 [N, C, H, W], got [2, 3, 8]"]) {
            try avgPool2d(x1, kernel: 2)
        }
        assertEmberError(.invalidArgument, ["[max_pool2d] kernel size must be >= 1, got (0, 2)"]) {
            try maxPool2d(x2, kernel: (0, 2))
        }
        assertEmberError(.invalidArgument, ["[avg_pool1d] stride must be >= 1, got 0"]) {
            try avgPool1d(x1, kernel: 2, stride: 0)
        }
        assertEmberError(.invalidArgument, ["[max_pool1d] padding must be >= 0, got -1"]) {
            try maxPool1d(x1, kernel: 2, padding: -1)
        }
        assertEmberError(.invalidArgument, ["[max_pool2d] padding (2, 1) must be at most half the kernel size (3, 3)"]) {
            try maxPool2d(x2, kernel: (3, 3), padding: (2, 1))
        }
        assertEmberError(.invalidArgument, ["[avg_pool2d] padding (1, 1) must be at most half the kernel size (1, 1)"]) {
            try avgPool2d(x2, kernel: 1, padding: 1)
        }
        assertEmberError(.shapeMismatch, ["[max_pool2d] input size (8, 8) with padding (0, 0) is smaller than the kernel (9, 2)",
                                          "input [2, 3, 8, 8]"]) {
            try maxPool2d(x2, kernel: (9, 2))
        }
        assertEmberError(.shapeMismatch, ["[avg_pool1d] input size 8 with padding 0 is smaller than the kernel 9"]) {
            try avgPool1d(x1, kernel: 9)
        }
        assertEmberError(.overflow, ["[max_pool1d]"]) {
            try maxPool1d(x1, kernel: Int.max, padding: Int.max / 2)
        }
        assertEmberError(.shapeMismatch, ["[adaptive_avg_pool2d] expected input of rank 4 [N, C, H, W], got [2, 3, 8]"]) {
            try adaptiveAvgPool2d(x1, outputSize: 2)
        }
        assertEmberError(.invalidArgument, ["[adaptive_avg_pool2d] output size must be >= 1, got (0, 2)"]) {
            try adaptiveAvgPool2d(x2, outputSize: (0, 2))
        }
        assertEmberError(.shapeMismatch, ["[adaptive_avg_pool2d] expected non-empty spatial dimensions, got input [2, 3, 0, 8]"]) {
            try adaptiveAvgPool2d(try v([2, 3, 0, 8]), outputSize: 2)
        }
        assertEmberError(.overflow, ["[adaptive_avg_pool2d]", "too many elements"]) {
            try adaptiveAvgPool2d(x2, outputSize: (Int.max, 1))
        }
        // The output fits, but the window bounds (i + 1) · H would not.
        assertEmberError(.overflow, ["[adaptive_avg_pool2d]", "overflows"]) {
            try adaptiveAvgPool2d(try v([1, 1, 8, 8]), outputSize: (Int.max / 8, 1))
        }
    }
}
