import CEmberKernels
import Glibc

/// Elementwise functions of two tensors, with broadcasting.
public enum BinaryFunction: String, CaseIterable, Sendable {
    case add, sub, mul, div, maximum, minimum, pow
}

/// Comparisons; results are 1 where true and 0 elsewhere (no gradient).
public enum Comparison: String, CaseIterable, Sendable {
    case greater = "gt", greaterEqual = "ge", less = "lt", lessEqual = "le", equal = "eq", notEqual = "ne"
}

/// A run of `count` output elements from `a` and `b`, each read with step 1 (contiguous) or 0
/// (one value repeated): `(count, a, aStep, b, bStep, out)`.
typealias BroadcastRun = (Int, UnsafePointer<Float>, Int, UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>) -> Void

/// Fills the broadcast shape of `a` and `b` with `rows`: the whole tensor at once, in parallel
/// chunks, when the shapes match or one side is a single value; else one run per row of the last
/// dimension.
@inline(__always)
func broadcastRows(_ a: Tensor, _ b: Tensor, op: String, _ rows: BroadcastRun) throws -> Tensor {
    let pa = a.storage.pointer, pb = b.storage.pointer
    if a.shape == b.shape {
        return Tensor.build(shape: a.shape) { out in
            let dst = out.baseAddress.unsafelyUnwrapped
            Parallel.forRange(out.count) { s, e in rows(e - s, pa + s, 1, pb + s, 1, dst + s) }
        }
    }
    let shape = try broadcastShapes(a.shape, b.shape, op: op)
    if b.count == 1 && shape == a.shape {
        return Tensor.build(shape: shape) { out in
            let dst = out.baseAddress.unsafelyUnwrapped
            Parallel.forRange(out.count) { s, e in rows(e - s, pa + s, 1, pb, 0, dst + s) }
        }
    }
    if a.count == 1 && shape == b.shape {
        return Tensor.build(shape: shape) { out in
            let dst = out.baseAddress.unsafelyUnwrapped
            Parallel.forRange(out.count) { s, e in rows(e - s, pa, 0, pb + s, 1, dst + s) }
        }
    }
    let sa = broadcastStrides(a.shape, to: shape), sb = broadcastStrides(b.shape, to: shape)
    return Tensor.build(shape: shape) { out in
        let dst = out.baseAddress.unsafelyUnwrapped
        let r = shape.count
        let inner = shape[r - 1], ia = sa[r - 1], ib = sb[r - 1]
        var index = [Int](repeating: 0, count: r)
        var oa = 0, ob = 0, o = 0
        while o < out.count {
            rows(inner, pa + oa, ia, pb + ob, ib, dst + o)
            o += inner
            var d = r - 2
            while d >= 0 {
                index[d] += 1
                oa += sa[d]
                ob += sb[d]
                if index[d] < shape[d] { break }
                oa -= sa[d] * shape[d]
                ob -= sb[d] * shape[d]
                index[d] = 0
                d -= 1
            }
        }
    }
}

/// `f(a, b)` elementwise over the broadcast shape of `a` and `b`, for the functions without a
/// C kernel (pow, local derivatives); `kernel` below is the fast path.
@inline(__always)
func broadcastMap(_ a: Tensor, _ b: Tensor, op: String, _ f: (Float, Float) -> Float) throws -> Tensor {
    try broadcastRows(a, b, op: op) { n, pa, ia, pb, ib, dst in
        for k in 0..<n { dst[k] = f(pa[k &* ia], pb[k &* ib]) }
    }
}

/// The C kernel (CEmberKernels/elementwise.c) `code` over the broadcast shape of `a` and `b`.
func broadcastKernel(_ a: Tensor, _ b: Tensor, op: String, code: Int32) throws -> Tensor {
    try broadcastRows(a, b, op: op) { n, pa, ia, pb, ib, dst in
        cember_binary(code, Int64(n), pa, Int64(ia), pb, Int64(ib), dst)
    }
}

/// Sums `grad` over the dimensions along which a tensor of `shape` was broadcast, giving a tensor
/// of `shape`: the one helper every broadcasting op's backward uses.
public func reduceGradient(_ grad: Tensor, toShape shape: [Int]) -> Tensor {
    if grad.shape == shape { return grad }
    let strides = broadcastStrides(shape, to: grad.shape)
    return Tensor.build(shape: shape) { out in
        let dst = out.baseAddress.unsafelyUnwrapped
        dst.initialize(repeating: 0, count: out.count)
        let src = grad.storage.pointer
        forEachBroadcastIndex(grad.shape, strides) { o, t in dst[t] += src[o] }
    }
}

extension BinaryFunction {
    /// The C kernel of this function; nil for pow (powf per element).
    var kernelCode: Int32? {
        switch self {
        case .add: return Int32(CEMBER_ADD)
        case .sub: return Int32(CEMBER_SUB)
        case .mul: return Int32(CEMBER_MUL)
        case .div: return Int32(CEMBER_DIV)
        case .maximum: return Int32(CEMBER_MAX)
        case .minimum: return Int32(CEMBER_MIN)
        case .pow: return nil
        }
    }

    /// The forward values.
    public func apply(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        guard let code = kernelCode else { return try broadcastMap(a, b, op: rawValue) { powf($0, $1) } }
        return try broadcastKernel(a, b, op: rawValue, code: code)
    }

    /// Gradients for `a` and `b` (already reduced to their shapes).
    /// NOTE: maximum/minimum send a tie's gradient half to each side, as PyTorch does.
    func gradients(_ dy: Tensor, _ a: Tensor, _ b: Tensor, _ y: Tensor, needA: Bool, needB: Bool) throws -> (Tensor?, Tensor?) {
        func ga(_ f: (Float, Float) -> Float) throws -> Tensor? {
            guard needA else { return nil }
            let local = try broadcastMap(a, b, op: rawValue, f)
            return reduceGradient(try BinaryFunction.mul.apply(dy, local), toShape: a.shape)
        }
        func gb(_ f: (Float, Float) -> Float) throws -> Tensor? {
            guard needB else { return nil }
            let local = try broadcastMap(a, b, op: rawValue, f)
            return reduceGradient(try BinaryFunction.mul.apply(dy, local), toShape: b.shape)
        }
        switch self {
        case .add:
            return (needA ? reduceGradient(dy, toShape: a.shape) : nil, needB ? reduceGradient(dy, toShape: b.shape) : nil)
        case .sub:
            return (needA ? reduceGradient(dy, toShape: a.shape) : nil,
                    needB ? reduceGradient(UnaryFunction.neg.apply(dy), toShape: b.shape) : nil)
        // mul and div on the C kernels, in the same roundings as dy · (local derivative).
        case .mul:
            return (needA ? reduceGradient(try BinaryFunction.mul.apply(dy, b), toShape: a.shape) : nil,
                    needB ? reduceGradient(try BinaryFunction.mul.apply(dy, a), toShape: b.shape) : nil)
        case .div:
            let da = needA ? try BinaryFunction.mul.apply(dy, UnaryFunction.reciprocal.apply(b)) : nil
            let db = needB ? try BinaryFunction.mul.apply(
                dy, UnaryFunction.neg.apply(try BinaryFunction.div.apply(a, try BinaryFunction.mul.apply(b, b)))) : nil
            return (da.map { reduceGradient($0, toShape: a.shape) }, db.map { reduceGradient($0, toShape: b.shape) })
        case .maximum: return (try ga { a, b in a > b ? 1 : (a == b ? 0.5 : 0) }, try gb { a, b in b > a ? 1 : (a == b ? 0.5 : 0) })
        case .minimum: return (try ga { a, b in a < b ? 1 : (a == b ? 0.5 : 0) }, try gb { a, b in b < a ? 1 : (a == b ? 0.5 : 0) })
        case .pow:
            return (try ga { a, b in b * powf(a, b - 1) }, try gb { a, b in a > 0 ? powf(a, b) * logf(a) : 0 })
        }
    }
}

/// Applies a broadcasting binary function on the tape.
public func binary(_ a: Variable, _ b: Variable, _ f: BinaryFunction) throws -> Variable {
    let y = try f.apply(a.value, b.value)
    return Variable(y, inputs: [a, b]) { [av = a.value, bv = b.value, needA = a.requiresGrad, needB = b.requiresGrad] dy in
        let (ga, gb) = try f.gradients(dy, av, bv, y, needA: needA, needB: needB)
        return [ga, gb]
    }
}

/// 1 where `compare(a, b)` holds, else 0 (broadcasting; no gradient).
public func compare(_ a: Tensor, _ b: Tensor, _ c: Comparison) throws -> Tensor {
    let code: Int32
    switch c {
    case .greater: code = Int32(CEMBER_GT)
    case .greaterEqual: code = Int32(CEMBER_GE)
    case .less: code = Int32(CEMBER_LT)
    case .lessEqual: code = Int32(CEMBER_LE)
    case .equal: code = Int32(CEMBER_EQ)
    case .notEqual: code = Int32(CEMBER_NE)
    }
    return try broadcastKernel(a, b, op: c.rawValue, code: code)
}

/// `condition ≠ 0 ? a : b` elementwise, broadcasting all three; gradients flow to the chosen side.
public func `where`(_ condition: Tensor, _ a: Variable, _ b: Variable) throws -> Variable {
    let shape = try broadcastShapes(try broadcastShapes(condition.shape, a.shape, op: "where"), b.shape, op: "where")
    let c = try condition.expanded(to: shape)
    let ax = try a.value.expanded(to: shape), bx = try b.value.expanded(to: shape)
    let y = Tensor.build(shape: shape) { out in
        let pc = c.storage.pointer, pa = ax.storage.pointer, pb = bx.storage.pointer
        for i in 0..<out.count { out[i] = pc[i] != 0 ? pa[i] : pb[i] }
    }
    return Variable(y, inputs: [a, b]) { [aShape = a.shape, bShape = b.shape] dy in
        let mask = c
        let da = try broadcastMap(dy, mask, op: "where") { g, m in m != 0 ? g : 0 }
        let db = try broadcastMap(dy, mask, op: "where") { g, m in m != 0 ? 0 : g }
        return [reduceGradient(da, toShape: aShape), reduceGradient(db, toShape: bShape)]
    }
}

/// a + b (broadcasting).
public func + (a: Variable, b: Variable) throws -> Variable { try binary(a, b, .add) }
/// a - b (broadcasting).
public func - (a: Variable, b: Variable) throws -> Variable { try binary(a, b, .sub) }
/// a · b elementwise (broadcasting).
public func * (a: Variable, b: Variable) throws -> Variable { try binary(a, b, .mul) }
/// a / b elementwise (broadcasting).
public func / (a: Variable, b: Variable) throws -> Variable { try binary(a, b, .div) }
/// a + c.
public func + (a: Variable, c: Float) -> Variable { unary(a, .addScalar(c)) }
/// a · c.
public func * (a: Variable, c: Float) -> Variable { unary(a, .mulScalar(c)) }
/// -a.
public prefix func - (a: Variable) -> Variable { unary(a, .neg) }
