import Glibc

/// An elementwise function with its derivative: the unary math ops and the activations of
/// mlr3torch/PyTorch, with PyTorch's parameters and defaults.
public enum UnaryFunction: Equatable, Sendable {
    case neg, exp, log, sqrt, abs, square, reciprocal, sin, cos, log1p
    case tanh, sigmoid, relu
    /// `x + c`.
    case addScalar(Float)
    /// `x · c`.
    case mulScalar(Float)
    /// `x^p` (for x > 0 unless p is an integer).
    case powScalar(Float)
    /// `x > 0 ? x : alpha (eˣ - 1)`.
    case elu(alpha: Float = 1)
    /// `max(0, x) + min(0, alpha (e^{x/alpha} - 1))`.
    case celu(alpha: Float = 1)
    /// `scale · elu(x, alpha)` with the self-normalising constants.
    case selu
    /// `x > 0 ? x : slope · x`.
    case leakyRelu(slope: Float = 0.01)
    /// `min(max(x, min), max)`.
    case hardtanh(min: Float = -1, max: Float = 1)
    /// `min(max(x, 0), 6)`.
    case relu6
    /// `relu6(x + 3) / 6`.
    case hardsigmoid
    /// `|x| > lambda ? x : 0`.
    case hardshrink(lambda: Float = 0.5)
    /// `x - lambda·sign(x)` where `|x| > lambda`, else 0.
    case softshrink(lambda: Float = 0.5)
    /// `log(1 + e^{beta x}) / beta`, linear above `threshold`.
    case softplus(beta: Float = 1, threshold: Float = 20)
    /// `x / (1 + |x|)`.
    case softsign
    /// `x - tanh(x)`.
    case tanhshrink
    /// `log(sigmoid(x))`, computed stably.
    case logSigmoid
    /// `x > threshold ? x : value`.
    case threshold(threshold: Float, value: Float)
    /// `x Φ(x)`, exact (erf) or with PyTorch's tanh approximation.
    case gelu(tanhApproximation: Bool = false)

    /// The name used in error messages and golden fixtures.
    public var name: String {
        switch self {
        case .neg: return "neg"
        case .exp: return "exp"
        case .log: return "log"
        case .sqrt: return "sqrt"
        case .abs: return "abs"
        case .square: return "square"
        case .reciprocal: return "reciprocal"
        case .sin: return "sin"
        case .cos: return "cos"
        case .log1p: return "log1p"
        case .tanh: return "tanh"
        case .sigmoid: return "sigmoid"
        case .relu: return "relu"
        case .addScalar: return "add_scalar"
        case .mulScalar: return "mul_scalar"
        case .powScalar: return "pow_scalar"
        case .elu: return "elu"
        case .celu: return "celu"
        case .selu: return "selu"
        case .leakyRelu: return "leaky_relu"
        case .hardtanh: return "hardtanh"
        case .relu6: return "relu6"
        case .hardsigmoid: return "hardsigmoid"
        case .hardshrink: return "hardshrink"
        case .softshrink: return "softshrink"
        case .softplus: return "softplus"
        case .softsign: return "softsign"
        case .tanhshrink: return "tanhshrink"
        case .logSigmoid: return "log_sigmoid"
        case .threshold: return "threshold"
        case .gelu(let t): return t ? "gelu_tanh" : "gelu"
        }
    }
}

let seluAlpha: Float = 1.6732632423543772848170429916717
let seluScale: Float = 1.0507009873554804934193349852946
let sqrt2OverPi: Float = 0.7978845608028654
let invSqrt2: Float = 0.7071067811865476
let invSqrt2Pi: Float = 0.3989422804014327

/// Where an elementwise kernel reads and writes: `n` values from `x` (and for gradients `dy`, `y`)
/// into `out`. Tensor ops and compiled training steps share these kernels.
@usableFromInline
struct ElementwiseOperands {
    let x: UnsafePointer<Float>
    let y: UnsafePointer<Float>
    let dy: UnsafePointer<Float>
    let out: UnsafeMutablePointer<Float>
    let n: Int
}

/// `f` applied to elements `b..<e`.
@inline(__always)
func mapElements(_ o: ElementwiseOperands, _ b: Int, _ e: Int, _ f: (Float) -> Float) {
    let src = o.x, dst = o.out
    for i in b..<e { dst[i] = f(src[i]) }
}

/// `dy · g(x, y)` for elements `b..<e` (the backward of a unary op).
@inline(__always)
func mapGradient(_ o: ElementwiseOperands, _ b: Int, _ e: Int, _ g: (Float, Float) -> Float) {
    let pdy = o.dy, px = o.x, py = o.y, dst = o.out
    for i in b..<e { dst[i] = pdy[i] * g(px[i], py[i]) }
}

@inline(__always) func stableSigmoid(_ x: Float) -> Float {
    if x >= 0 { return 1 / (1 + expf(-x)) }
    let e = expf(x)
    return e / (1 + e)
}

extension UnaryFunction {
    /// The forward values.
    public func apply(_ x: Tensor) -> Tensor {
        Tensor.build(shape: x.shape) { out in
            apply(x.storage.pointer, out.baseAddress.unsafelyUnwrapped, out.count)
        }
    }

    /// `dy · f'(x)`, given the input `x` and the forward result `y`.
    public func gradient(_ dy: Tensor, x: Tensor, y: Tensor) -> Tensor {
        Tensor.build(shape: dy.shape) { out in
            gradient(dy.storage.pointer, x.storage.pointer, y.storage.pointer, out.baseAddress.unsafelyUnwrapped, out.count)
        }
    }

    /// The forward values of `n` elements from `x` into `out` (which may equal `x`).
    public func apply(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        let o = ElementwiseOperands(x: x, y: x, dy: x, out: out, n: n)
        forward(o)
    }

    /// `dy · f'(x)` for `n` elements, given the input `x` and the forward result `y`.
    public func gradient(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
                         _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        let o = ElementwiseOperands(x: x, y: y, dy: dy, out: out, n: n)
        backward(o)
    }

    /// Over several threads for large inputs. NOTE: the loops are written per function inside the
    /// chunk's code (`forward(_:_:_:)`): a loop closure shared by every function and handed to the
    /// pool would call the function once per element instead of inlining it.
    private func forward(_ o: ElementwiseOperands) {
        Parallel.forRange(o.n) { b, e in forward(o, b, e) }
    }

    private func forward(_ o: ElementwiseOperands, _ b: Int, _ e: Int) {
        switch self {
        case .neg: return mapElements(o, b, e) { -$0 }
        case .exp: return mapElements(o, b, e) { expf($0) }
        case .log: return mapElements(o, b, e) { logf($0) }
        case .sqrt: return mapElements(o, b, e) { sqrtf($0) }
        case .abs: return mapElements(o, b, e) { Swift.abs($0) }
        case .square: return mapElements(o, b, e) { $0 * $0 }
        case .reciprocal: return mapElements(o, b, e) { 1 / $0 }
        case .sin: return mapElements(o, b, e) { sinf($0) }
        case .cos: return mapElements(o, b, e) { cosf($0) }
        case .log1p: return mapElements(o, b, e) { log1pf($0) }
        case .tanh: return mapElements(o, b, e) { tanhf($0) }
        case .sigmoid: return mapElements(o, b, e) { stableSigmoid($0) }
        case .relu: return mapElements(o, b, e) { $0 > 0 ? $0 : 0 }
        case let .addScalar(c): return mapElements(o, b, e) { $0 + c }
        case let .mulScalar(c): return mapElements(o, b, e) { $0 * c }
        case let .powScalar(p): return mapElements(o, b, e) { powf($0, p) }
        case let .elu(a): return mapElements(o, b, e) { $0 > 0 ? $0 : a * expm1f($0) }
        case let .celu(a): return mapElements(o, b, e) { max(0, $0) + min(0, a * expm1f($0 / a)) }
        case .selu: return mapElements(o, b, e) { seluScale * ($0 > 0 ? $0 : seluAlpha * expm1f($0)) }
        case let .leakyRelu(s): return mapElements(o, b, e) { $0 > 0 ? $0 : s * $0 }
        case let .hardtanh(lo, hi): return mapElements(o, b, e) { min(max($0, lo), hi) }
        case .relu6: return mapElements(o, b, e) { min(max($0, 0), 6) }
        case .hardsigmoid: return mapElements(o, b, e) { min(max($0 + 3, 0), 6) / 6 }
        case let .hardshrink(l): return mapElements(o, b, e) { $0 > l || $0 < -l ? $0 : 0 }
        case let .softshrink(l): return mapElements(o, b, e) { $0 > l ? $0 - l : ($0 < -l ? $0 + l : 0) }
        case let .softplus(beta, th): return mapElements(o, b, e) { beta * $0 > th ? $0 : log1pf(expf(beta * $0)) / beta }
        case .softsign: return mapElements(o, b, e) { $0 / (1 + Swift.abs($0)) }
        case .tanhshrink: return mapElements(o, b, e) { $0 - tanhf($0) }
        case .logSigmoid: return mapElements(o, b, e) { min($0, 0) - log1pf(expf(-Swift.abs($0))) }
        case let .threshold(th, v): return mapElements(o, b, e) { $0 > th ? $0 : v }
        case let .gelu(approx):
            if approx {
                return mapElements(o, b, e) { 0.5 * $0 * (1 + tanhf(sqrt2OverPi * ($0 + 0.044715 * $0 * $0 * $0))) }
            }
            return mapElements(o, b, e) { 0.5 * $0 * (1 + erff($0 * invSqrt2)) }
        }
    }

    private func backward(_ o: ElementwiseOperands) {
        Parallel.forRange(o.n) { b, e in backward(o, b, e) }
    }

    /// NOTE: at kinks the derivative is PyTorch's choice (relu'(0) = 0, hardtanh' = 0 at the edges).
    private func backward(_ o: ElementwiseOperands, _ b: Int, _ e: Int) {
        switch self {
        case .neg: return mapGradient(o, b, e) { _, _ in -1 }
        case .exp: return mapGradient(o, b, e) { _, y in y }
        case .log: return mapGradient(o, b, e) { x, _ in 1 / x }
        case .sqrt: return mapGradient(o, b, e) { _, y in 0.5 / y }
        case .abs: return mapGradient(o, b, e) { x, _ in x > 0 ? 1 : (x < 0 ? -1 : 0) }
        case .square: return mapGradient(o, b, e) { x, _ in 2 * x }
        case .reciprocal: return mapGradient(o, b, e) { _, y in -y * y }
        case .sin: return mapGradient(o, b, e) { x, _ in cosf(x) }
        case .cos: return mapGradient(o, b, e) { x, _ in -sinf(x) }
        case .log1p: return mapGradient(o, b, e) { x, _ in 1 / (1 + x) }
        case .tanh: return mapGradient(o, b, e) { _, y in 1 - y * y }
        case .sigmoid: return mapGradient(o, b, e) { _, y in y * (1 - y) }
        case .relu: return mapGradient(o, b, e) { x, _ in x > 0 ? 1 : 0 }
        case .addScalar: return mapGradient(o, b, e) { _, _ in 1 }
        case let .mulScalar(c): return mapGradient(o, b, e) { _, _ in c }
        case let .powScalar(p): return mapGradient(o, b, e) { x, _ in p * powf(x, p - 1) }
        case let .elu(a): return mapGradient(o, b, e) { x, y in x > 0 ? 1 : y + a }
        case let .celu(a): return mapGradient(o, b, e) { x, _ in x > 0 ? 1 : expf(x / a) }
        case .selu: return mapGradient(o, b, e) { x, _ in x > 0 ? seluScale : seluScale * seluAlpha * expf(x) }
        case let .leakyRelu(s): return mapGradient(o, b, e) { x, _ in x > 0 ? 1 : s }
        case let .hardtanh(lo, hi): return mapGradient(o, b, e) { x, _ in x > lo && x < hi ? 1 : 0 }
        case .relu6: return mapGradient(o, b, e) { x, _ in x > 0 && x < 6 ? 1 : 0 }
        case .hardsigmoid: return mapGradient(o, b, e) { x, _ in x > -3 && x < 3 ? 1.0 / 6 : 0 }
        case let .hardshrink(l): return mapGradient(o, b, e) { x, _ in x > l || x < -l ? 1 : 0 }
        case let .softshrink(l): return mapGradient(o, b, e) { x, _ in x > l || x < -l ? 1 : 0 }
        case let .softplus(beta, th): return mapGradient(o, b, e) { x, _ in beta * x > th ? 1 : stableSigmoid(beta * x) }
        case .softsign: return mapGradient(o, b, e) { x, _ in let d = 1 + Swift.abs(x); return 1 / (d * d) }
        case .tanhshrink: return mapGradient(o, b, e) { x, _ in let t = tanhf(x); return t * t }
        case .logSigmoid: return mapGradient(o, b, e) { x, _ in stableSigmoid(-x) }
        case let .threshold(th, _): return mapGradient(o, b, e) { x, _ in x > th ? 1 : 0 }
        case let .gelu(approx):
            if approx {
                return mapGradient(o, b, e) { x, _ in
                    let inner = sqrt2OverPi * (x + 0.044715 * x * x * x)
                    let t = tanhf(inner)
                    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * sqrt2OverPi * (1 + 3 * 0.044715 * x * x)
                }
            }
            return mapGradient(o, b, e) { x, _ in
                0.5 * (1 + erff(x * invSqrt2)) + x * invSqrt2Pi * expf(-0.5 * x * x)
            }
        }
    }
}

/// Applies an elementwise function on the tape.
public func unary(_ x: Variable, _ f: UnaryFunction) -> Variable {
    let y = f.apply(x.value)
    return Variable(y, inputs: [x]) { [xv = x.value] dy in [f.gradient(dy, x: xv, y: y)] }
}

/// Rectified linear unit, `max(x, 0)`. NOTE: the gradient at exactly 0 is 0, as in PyTorch.
public func relu(_ x: Variable) -> Variable { unary(x, .relu) }
/// The logistic function.
public func sigmoid(_ x: Variable) -> Variable { unary(x, .sigmoid) }
/// Hyperbolic tangent.
public func tanh(_ x: Variable) -> Variable { unary(x, .tanh) }
/// eˣ.
public func exp(_ x: Variable) -> Variable { unary(x, .exp) }
/// Natural logarithm.
public func log(_ x: Variable) -> Variable { unary(x, .log) }
/// Square root.
public func sqrt(_ x: Variable) -> Variable { unary(x, .sqrt) }
/// Absolute value.
public func abs(_ x: Variable) -> Variable { unary(x, .abs) }

/// ReGLU over the last dimension as one tape op: x [..., 2h] → a · relu(b) [..., h], with
/// a = x[..., 0..<h] and b = x[..., h..<2h] read in place (no slices, no gradient buffers for the
/// halves). Forward and backward give the same bits as
/// `binary(slice(x, 0..<h), relu(slice(x, h..<2h)), .mul)` (relu'(0) = 0, as in PyTorch).
///
/// - Throws: when the last dimension is missing, zero or odd.
public func reglu(_ x: Variable) throws -> Variable {
    let s = x.shape
    guard let width = s.last, width > 0, width % 2 == 0 else {
        throw EmberError.shapeMismatch("reglu", "expected an even, non-zero last dimension, got \(shapeString(s))")
    }
    let h = width / 2, rows = x.value.count / width
    var outShape = s
    outShape[s.count - 1] = h
    let xv = x.value
    let minRows = max(1, Parallel.minimumChunk / width)
    let y = Tensor.build(shape: outShape) { out in
        guard let py = out.baseAddress else { return }
        let px = xv.unsafeReadPointer
        Parallel.forRange(rows, minChunk: minRows) { first, end in
            for r in first..<end {
                let a = px + r * width, b = a + h, o = py + r * h
                for i in 0..<h { o[i] = a[i] * (b[i] > 0 ? b[i] : 0) }
            }
        }
    }
    return Variable(y, inputs: [x]) { dy in
        let g = Tensor.build(shape: s) { out in
            guard let pg = out.baseAddress else { return }
            let px = xv.unsafeReadPointer, pdy = dy.unsafeReadPointer
            Parallel.forRange(rows, minChunk: minRows) { first, end in
                for r in first..<end {
                    let a = px + r * width, b = a + h, d = pdy + r * h
                    let ga = pg + r * width, gb = ga + h
                    for i in 0..<h {
                        // d(a · relu(b)): dy · relu(b) for a; (dy · a) · relu'(b) for b. `0 +` as the
                        // slices' gradients add into zeros: -0 becomes +0, the same bits.
                        ga[i] = 0 + d[i] * (b[i] > 0 ? b[i] : 0)
                        gb[i] = 0 + (d[i] * a[i]) * (b[i] > 0 ? 1 : 0)
                    }
                }
            }
        }
        return [g]
    }
}
