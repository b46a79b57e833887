// InferenceConvolution (prediction-time convolutions): bit for bit conv2d/conv1d + add + relu on the
// im2col paths (direct micro-kernels, direct BLAS blocks, whole-chunk BLAS, depthwise, narrowed
// kernels, whole-input windows), the dense path on maps smaller than the kernel within float
// rounding of them, and the error messages.
@testable import EmberCore
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

    func op(_ c: Config, _ w: Tensor, _ b: Tensor?) throws -> InferenceConvolution {
        let d = c.x.count - 2
        return try InferenceConvolution(weight: w, bias: b, stride: Array(c.stride.prefix(d)), padding: Array(c.padding.prefix(d)),
                                        dilation: Array(c.dilation.prefix(d)), groups: c.groups)
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
    func check(_ c: Config, exact: Bool, _ what: String, inspect: (InferenceConvolution) -> Void) throws -> Int {
        let w = randomTensor(c.w, &rng), b = randomTensor([c.w[0]], &rng)
        var cut = 0
        for bias in [nil, b] {
            let conv = try op(c, w, bias)
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
