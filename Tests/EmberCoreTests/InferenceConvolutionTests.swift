// InferenceConvolution (prediction-time convolutions): bit for bit conv2d/conv1d + add + relu on the
// im2col paths (direct micro-kernels, direct BLAS blocks, whole-chunk BLAS, depthwise, narrowed
// kernels, whole-input windows), the dense path on maps smaller than the kernel and the Winograd
// path of 3×3 stride-1 convolutions within float rounding of them, and the error messages.
@testable import EmberCore
import CEmberKernels
import EmberTestSupport
import XCTest

final class InferenceConvolutionTests: XCTestCase {
    var rng = RandomGenerator(seed: 11)

    struct Config {
        var x: [Int], w: [Int]
        var stride = [1, 1], padding = [0, 0], dilation = [1, 1], groups = 1
    }

    /// conv + residual + relu through the separate ops of the tape (what the network ran before).
    /// With `im2col`, the convolution runs im2col + BLAS even where it would run densely.
    func reference(_ c: Config, _ x: Tensor, _ w: Tensor, _ b: Tensor?, residual: Tensor?, relu: Bool, im2col: Bool) throws -> Tensor {
        try GradientMode.withoutGradients {
            var y: Variable
            let kernels: ConvKernels = im2col ? .blas : .automatic
            if c.x.count == 3 {
                y = try conv1d(Variable(x), weight: Variable(w), bias: b.map { Variable($0) }, stride: c.stride[0], padding: c.padding[0],
                               dilation: c.dilation[0], groups: c.groups, maxSamplesPerChunk: Int.max, kernels: kernels)
            } else {
                y = try conv2d(Variable(x), weight: Variable(w), bias: b.map { Variable($0) }, stride: (c.stride[0], c.stride[1]),
                               padding: (c.padding[0], c.padding[1]), dilation: (c.dilation[0], c.dilation[1]), groups: c.groups,
                               maxSamplesPerChunk: Int.max, kernels: kernels)
            }
            if let residual { y = try binary(y, Variable(residual), .add) }
            return (relu ? EmberCore.relu(y) : y).value
        }
    }

    func op(_ c: Config, _ w: Tensor, _ b: Tensor?, winograd: InferenceConvolution.WinogradChoice = .automatic) throws -> InferenceConvolution {
        let d = c.x.count - 2
        let conv = try InferenceConvolution(weight: w, bias: b, stride: Array(c.stride.prefix(d)), padding: Array(c.padding.prefix(d)),
                                            dilation: Array(c.dilation.prefix(d)), groups: c.groups)
        conv.winograd = winograd
        return conv
    }

    /// Every combination of bias, residual and ReLU, twice (the second call reuses what the first
    /// prepared) and on a batch of another size; `exact` compares bits with the separate ops,
    /// else values with im2col's within 1e-5 of the output's largest magnitude. Returns how many
    /// outputs the ReLU cut.
    @discardableResult
    func check(_ c: Config, exact: Bool, _ what: String) throws -> Int {
        try check(c, exact: exact, what) { _ in }
    }

    /// `check`, then `inspect` on each op's prepared runs.
    func check(_ c: Config, exact: Bool, _ what: String, winograd: InferenceConvolution.WinogradChoice = .automatic,
               inspect: (InferenceConvolution) -> Void) throws -> Int {
        let w = randomTensor(c.w, &rng), b = randomTensor([c.w[0]], &rng)
        var cut = 0
        for bias in [nil, b] {
            let conv = try op(c, w, bias, winograd: winograd)
            for batch in [c.x[0], c.x[0] + 2, c.x[0]] {
                let x = randomTensor([batch] + c.x.dropFirst(), &rng)
                let plain = try reference(c, x, w, bias, residual: nil, relu: false, im2col: !exact)
                let r = randomTensor(plain.shape, &rng)
                for (residual, relu) in [(nil, false), (nil, true), (r, false), (r, true)] as [(Tensor?, Bool)] {
                    let got = try conv(x, residual: residual, relu: relu)
                    let expected = try reference(c, x, w, bias, residual: residual, relu: relu, im2col: !exact)
                    let label = "\(what): bias \(bias != nil), residual \(residual != nil), relu \(relu), batch \(batch)"
                    XCTAssertEqual(got.shape, expected.shape, label)
                    if exact {
                        XCTAssertEqual(got.data.map(\.bitPattern), expected.data.map(\.bitPattern), label)
                    } else {
                        let scale = Double(expected.data.map { abs($0) }.max() ?? 0)
                        assertClose(got, expected, Tolerance(rtol: 1e-5, atol: 1e-5 * scale), label)
                    }
                    if relu { cut += got.data.filter { $0 == 0 }.count }
                }
            }
            inspect(conv)
        }
        return cut
    }

    func testIm2colPathsEqualTheSeparateOpsBitForBit() throws {
        let configs: [(String, Config)] = [
            ("direct micro-kernels", Config(x: [3, 5, 9, 7], w: [6, 5, 3, 3], padding: [1, 1])),
            ("direct BLAS blocks", Config(x: [2, 5, 9, 7], w: [40, 5, 3, 3], padding: [1, 1])),
            ("whole-chunk BLAS, stride 2", Config(x: [2, 8, 6, 5], w: [70, 8, 3, 3], stride: [2, 2], padding: [1, 1])),
            ("1×1 stride 2, batch 1", Config(x: [1, 8, 5, 5], w: [70, 8, 1, 1], stride: [2, 2])),
            ("odd strides, padding and dilation", Config(x: [2, 3, 7, 9], w: [65, 3, 2, 3], stride: [2, 1], padding: [1, 0], dilation: [1, 2])),
            ("depthwise with a multiplier", Config(x: [3, 4, 9, 9], w: [8, 1, 3, 3], padding: [1, 1], groups: 4)),
            ("groups", Config(x: [2, 6, 5, 5], w: [9, 2, 3, 3], padding: [1, 1], groups: 3)),
            ("conv1d", Config(x: [4, 2, 30], w: [5, 2, 4], padding: [2, 0])),
            ("narrowed kernel (a 3×1 map)", Config(x: [2, 6, 3, 1], w: [70, 6, 3, 3], padding: [1, 1])),
            ("whole-input window (a 1×1 map)", Config(x: [2, 6, 1, 1], w: [70, 6, 3, 3], padding: [1, 1])),
        ]
        for (what, c) in configs {
            let cut = try check(c, exact: true, what) { conv in
                for (shape, run) in conv.prepared {
                    if case .dense = run { XCTFail("\(what): \(shape) runs densely") }
                }
            }
            XCTAssertGreaterThan(cut, 0, "\(what): the ReLU cuts some outputs")
        }
    }

    func testDensePathOnMapsSmallerThanTheKernelMatchesIm2col() throws {
        let configs: [(String, Config)] = [
            ("2×2 map, 3×3 kernel (ResNet's last stage)", Config(x: [17, 7, 2, 2], w: [9, 7, 3, 3], padding: [1, 1])),
            ("2×3 map", Config(x: [16, 5, 2, 3], w: [70, 5, 3, 3], padding: [1, 1])),
            ("3×3 map, 5×5 kernel, stride 2", Config(x: [18, 4, 3, 3], w: [6, 4, 5, 5], stride: [2, 2], padding: [2, 2])),
            ("conv1d", Config(x: [16, 3, 2], w: [4, 3, 3], padding: [1, 0])),
        ]
        for (what, var c) in configs {
            let cut = try check(c, exact: false, what) { conv in
                XCTAssertEqual(conv.prepared.count, 2, "\(what): one preparation per input shape")
                for (shape, run) in conv.prepared {
                    guard case .dense = run else { return XCTFail("\(what): \(shape) does not run densely") }
                }
            }
            XCTAssertGreaterThan(cut, 0, "\(what): the ReLU cuts some outputs")
            // A batch of one runs im2col, bit for bit the separate ops.
            c.x[0] = 1
            _ = try check(c, exact: true, "\(what), batch 1") { conv in
                for (shape, run) in conv.prepared {
                    if case .dense = run, shape[0] < ConvGeometry.denseMinimumBatch { XCTFail("\(what): \(shape) runs densely") }
                }
            }
        }
    }

    /// Winograd F(2×2, 3×3), forced wherever it fits, against im2col: within 1e-5 of the output's
    /// largest magnitude (relative 1e-5), on maps from 1×1 to 17×17 (odd sizes end in ragged tiles),
    /// padding 0 and 1, batches of one and more, with and without bias, residual and ReLU.
    func testWinogradMatchesIm2col() throws {
        let configs: [(String, Config)] = [
            ("1×1 map", Config(x: [2, 3, 1, 1], w: [5, 3, 3, 3], padding: [1, 1])),
            ("2×2 map", Config(x: [1, 4, 2, 2], w: [3, 4, 3, 3], padding: [1, 1])),
            ("3×5 map, odd sizes", Config(x: [3, 7, 3, 5], w: [6, 7, 3, 3], padding: [1, 1])),
            ("4×4 map, ResNet's widths", Config(x: [2, 64, 4, 4], w: [64, 64, 3, 3], padding: [1, 1])),
            ("8×8 map, more outputs than inputs", Config(x: [5, 16, 8, 8], w: [40, 16, 3, 3], padding: [1, 1])),
            ("9×7 map, batch 1", Config(x: [1, 17, 9, 7], w: [33, 17, 3, 3], padding: [1, 1])),
            ("17×17 map, many chunks", Config(x: [6, 20, 17, 17], w: [24, 20, 3, 3], padding: [1, 1])),
            ("5×40 map, rows of more than 16 tiles", Config(x: [2, 16, 5, 40], w: [18, 16, 3, 3], padding: [1, 1])),
            ("16×16 map, padding 0", Config(x: [2, 8, 16, 16], w: [12, 8, 3, 3])),
            ("7×6 map, padding 0 (ragged tiles)", Config(x: [3, 5, 7, 6], w: [9, 5, 3, 3])),
            ("3×3 map, padding 0 (one output)", Config(x: [2, 6, 3, 3], w: [4, 6, 3, 3])),
            ("padding (1, 0)", Config(x: [2, 6, 5, 8], w: [7, 6, 3, 3], padding: [1, 0])),
        ]
        for (what, c) in configs {
            let cut = try check(c, exact: false, what, winograd: .always) { conv in
                XCTAssertEqual(conv.prepared.count, 2, "\(what): one preparation per input shape")
                var transformed = Set<ObjectIdentifier>()
                for (shape, run) in conv.prepared {
                    guard case let .winograd(u) = run else { return XCTFail("\(what): \(shape) does not run Winograd") }
                    transformed.insert(ObjectIdentifier(u))
                }
                XCTAssertEqual(transformed.count, 1, "\(what): batch sizes share the transformed weight")
            }
            XCTAssertGreaterThan(cut, 0, "\(what): the ReLU cuts some outputs")
        }
    }

    /// The automatic choice: Winograd for 3×3 stride-1 convolutions with padding 0 or 1, one
    /// group, output maps of 4×4 and more and 16 or more channels in and out.
    func testWinogradSelection() throws {
        func geometry(_ c: Config) throws -> ConvGeometry {
            try ConvGeometry(op: "conv2d", input: c.x, weight: c.w, bias: nil, stride: c.stride, padding: c.padding,
                             dilation: c.dilation, groups: c.groups)
        }
        let runs: [(String, Config, Bool)] = [
            ("ResNet-18, 16×16 maps", Config(x: [128, 64, 16, 16], w: [64, 64, 3, 3], padding: [1, 1]), true),
            ("ResNet-18, 4×4 maps", Config(x: [128, 512, 4, 4], w: [512, 512, 3, 3], padding: [1, 1]), true),
            ("padding 0, 6×6 input", Config(x: [2, 16, 6, 6], w: [16, 16, 3, 3]), true),
            ("2×2 maps", Config(x: [128, 256, 2, 2], w: [256, 256, 3, 3], padding: [1, 1]), false),
            ("3×8 maps", Config(x: [4, 32, 3, 8], w: [32, 32, 3, 3], padding: [1, 1]), false),
            ("stride 2", Config(x: [4, 32, 16, 16], w: [32, 32, 3, 3], stride: [2, 2], padding: [1, 1]), false),
            ("dilation 2", Config(x: [4, 32, 16, 16], w: [32, 32, 3, 3], padding: [2, 2], dilation: [2, 2]), false),
            ("padding 2", Config(x: [4, 32, 16, 16], w: [32, 32, 3, 3], padding: [2, 2]), false),
            ("groups", Config(x: [4, 32, 16, 16], w: [32, 16, 3, 3], padding: [1, 1], groups: 2), false),
            ("5×5 kernel", Config(x: [4, 32, 16, 16], w: [32, 32, 5, 5], padding: [2, 2]), false),
            ("1×1 kernel", Config(x: [4, 32, 16, 16], w: [32, 32, 1, 1]), false),
            ("8 input channels", Config(x: [4, 8, 16, 16], w: [32, 8, 3, 3], padding: [1, 1]), false),
            ("8 output channels", Config(x: [4, 32, 16, 16], w: [8, 32, 3, 3], padding: [1, 1]), false),
        ]
        for (what, c, expected) in runs {
            XCTAssertEqual(try geometry(c).runsWinograd, expected, what)
            let w = randomTensor(c.w, &rng)
            let conv = try op(c, w, nil)
            _ = try conv(randomTensor([1] + c.x.dropFirst(), &rng))
            var winograd = false
            for run in conv.prepared.values { if case .winograd = run { winograd = true } }
            XCTAssertEqual(winograd, expected, what)
            XCTAssertEqual(try geometry(c).usesWinograd(.automatic), expected, "\(what): conv2d's choice")
            XCTAssertFalse(try geometry(c).usesWinograd(.blas), what)
        }
        // Forced, it still takes only what fits.
        let strided = try op(Config(x: [1, 4, 6, 6], w: [4, 4, 3, 3], stride: [2, 2]), randomTensor([4, 4, 3, 3], &rng), nil,
                             winograd: .always)
        _ = try strided(randomTensor([1, 4, 6, 6], &rng))
        for run in strided.prepared.values { if case .winograd = run { XCTFail("stride 2 runs Winograd") } }
    }

    /// The Winograd path splits tiles into chunks by the geometry only: one thread and two give
    /// the same bits.
    func testWinogradSameBitsOnOneAndTwoThreads() throws {
        let saved = Engine.numThreads
        defer { XCTAssertNoThrow(try Engine.setNumThreads(saved)) }
        let c = Config(x: [8, 24, 9, 9], w: [32, 24, 3, 3], padding: [1, 1])
        let g = try ConvGeometry(op: "conv2d", input: c.x, weight: c.w, bias: nil, stride: c.stride, padding: c.padding,
                                 dilation: c.dilation, groups: 1)
        XCTAssertGreaterThanOrEqual((g.winogradTiles + g.winogradTilesPerChunk - 1) / g.winogradTilesPerChunk, 2, "several chunks")
        let w = randomTensor(c.w, &rng), b = randomTensor([c.w[0]], &rng), x = randomTensor(c.x, &rng)
        let r = randomTensor([8, 32, 9, 9], &rng)
        var results: [[UInt32]] = []
        for threads in [1, 2] {
            try Engine.setNumThreads(threads)
            let conv = try op(c, w, b)
            let y = try conv(x, residual: r, relu: true)
            guard case .winograd? = conv.prepared[c.x] else { return XCTFail("does not run Winograd") }
            results.append(y.data.map(\.bitPattern))
        }
        XCTAssertTrue(results[0] == results[1], "1 and 2 threads differ")
    }

    /// The transforms' instruction-set variants (AVX-512, AVX2, baseline, as far as this CPU runs
    /// them) give the same bits, ragged tiles, bias, residual and ReLU included, on narrow maps
    /// (tiles gathered) and wide ones (whole rows loaded).
    func testWinogradSameBitsInEveryInstructionSet() throws {
        // The matrix products run OpenBLAS's kernels, whatever the cap: Ember's own baseline
        // variant rounds differently by design (no FMA; GemmKernelTests).
        let kernels = BLAS.kernels
        BLAS.kernels = .openBLAS
        defer {
            _ = cember_kernels_force_isa(-1)
            BLAS.kernels = kernels
        }
        for c in [Config(x: [3, 18, 7, 9], w: [20, 18, 3, 3], padding: [1, 1]), Config(x: [5, 18, 5, 5], w: [20, 18, 3, 3], padding: [1, 1]),
                  Config(x: [2, 17, 6, 37], w: [19, 17, 3, 3], padding: [1, 1])] {
            let w = randomTensor(c.w, &rng), b = randomTensor([c.w[0]], &rng), x = randomTensor(c.x, &rng)
            let r = randomTensor([c.x[0], c.w[0], c.x[2], c.x[3]], &rng)
            var results: [[UInt32]] = []
            for isa in [-1, 1, 0] {
                _ = cember_kernels_force_isa(Int32(isa))
                let conv = try op(c, w, b, winograd: .always)
                results.append(try conv(x, residual: r, relu: true).data.map(\.bitPattern))
            }
            XCTAssertTrue(results[0] == results[1], "\(c.x): AVX2 differs")
            XCTAssertTrue(results[0] == results[2], "\(c.x): baseline differs")
        }
    }

    func testErrorsNameTheArgument() throws {
        let w = try Tensor.zeros([6, 3, 3, 3])
        assertEmberError(.shapeMismatch, ["[conv2d] expected weight of rank 3 [C_out, C_in/groups, K] or 4", "got [6, 3]"]) {
            try InferenceConvolution(weight: try Tensor.zeros([6, 3]), bias: nil, stride: [1], padding: [0], dilation: [1], groups: 1)
        }
        assertEmberError(.invalidArgument, ["[conv2d] stride, padding and dilation need 2 entries each, got 1, 2 and 2"]) {
            try InferenceConvolution(weight: w, bias: nil, stride: [1], padding: [0, 0], dilation: [1, 1], groups: 1)
        }
        assertEmberError(.invalidArgument, ["[conv1d] stride must be >= 1, got 0"]) {
            try InferenceConvolution(weight: try Tensor.zeros([6, 3, 3]), bias: nil, stride: [0], padding: [0], dilation: [1], groups: 1)
        }
        let conv = try InferenceConvolution(weight: w, bias: nil, stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1)
        assertEmberError(.shapeMismatch, ["[conv2d] expected residual of the output's shape [2, 6, 8, 8], got [2, 6, 8, 7]"]) {
            try conv(try Tensor.zeros([2, 3, 8, 8]), residual: try Tensor.zeros([2, 6, 8, 7]))
        }
        assertEmberError(.shapeMismatch, ["[conv2d] expected input with 3 channels, got 4 (input [2, 4, 8, 8], weight [6, 3, 3, 3])"]) {
            try conv(try Tensor.zeros([2, 4, 8, 8]))
        }
        assertEmberError(.shapeMismatch, ["[conv2d] expected bias of shape [6], got [5]"]) {
            try InferenceConvolution(weight: w, bias: try Tensor.zeros([5]), stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1)(
                try Tensor.zeros([1, 3, 4, 4]))
        }
    }
}
