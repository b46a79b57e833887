import EmberCore
import Glibc

/// The pointer-level loss kernels, in one place: the tape losses (`LossFunction`) and the compiled
/// training step (`ChainPlan`) both call them, so the two paths give the same bits by construction.
///
/// Each loss has a value kernel (the unreduced sum, accumulated in `Double` in element order) and a
/// gradient kernel that writes d loss / d output given `g`, the incoming gradient times the
/// reduction's scale. Callers validate the shapes and the targets; the kernels do not check.
enum LossKernels {
    // MARK: MSE and L1

    /// `Σ (o - t)²`, or `Σ |o - t|` when `absolute`, over `n` elements.
    static func regressionSum(_ o: UnsafePointer<Float>, _ t: UnsafePointer<Float>, _ n: Int, absolute: Bool) -> Double {
        var s = 0.0
        for i in 0..<n {
            let d = Double(o[i] - t[i])
            s += absolute ? Swift.abs(d) : d * d
        }
        return s
    }

    /// `2 (o - t) g`, or `sign(o - t) g` when `absolute`, into `d`.
    static func regressionGradient(_ o: UnsafePointer<Float>, _ t: UnsafePointer<Float>, _ n: Int, absolute: Bool, g: Float,
                                   into d: UnsafeMutablePointer<Float>) {
        for i in 0..<n {
            let diff = o[i] - t[i]
            d[i] = absolute ? (diff > 0 ? g : (diff < 0 ? -g : 0)) : 2 * diff * g
        }
    }

    // MARK: BCE with logits

    /// The positive weight of element `i` of a [rows, `cols`] output: 1 without weights, else
    /// the single weight or the column's.
    @inline(__always)
    static func positiveWeight(_ posWeight: [Float]?, _ i: Int, cols: Int) -> Float {
        guard let pw = posWeight else { return 1 }
        return pw.count == 1 ? pw[0] : pw[i % cols]
    }

    /// One element of the binary cross-entropy with logits: `(1 - y) x + l (log(1 + e^{-|x|}) + max(-x, 0))`
    /// for logit `x`, target `y` in [0, 1] and weight `l = 1 + (p - 1) y` (1 without a positive
    /// weight); stable for any x. The focal loss builds on it.
    @inline(__always)
    static func bceWithLogitsElement(_ x: Float, _ y: Float, weight l: Float = 1) -> Float {
        (1 - y) * x + l * (log1pf(expf(-Swift.abs(x))) + max(-x, 0))
    }

    /// `Σ (1 - y) x + (1 + (p - 1) y) (log(1 + e^{-|x|}) + max(-x, 0))` over `n` logits `x` and
    /// targets `y` in [0, 1] (stable for any x), with positive weights `p` (`positiveWeight`).
    static func bceWithLogitsSum(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int, posWeight: [Float]?,
                                 cols: Int) -> Double {
        var s = 0.0
        for i in 0..<n {
            let l = 1 + (positiveWeight(posWeight, i, cols: cols) - 1) * y[i]
            s += Double(bceWithLogitsElement(x[i], y[i], weight: l))
        }
        return s
    }

    /// `(sigmoid(x) (1 + (p - 1) y) - p y) g` into `d`.
    static func bceWithLogitsGradient(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int, posWeight: [Float]?,
                                      cols: Int, g: Float, into d: UnsafeMutablePointer<Float>) {
        for i in 0..<n {
            let p = positiveWeight(posWeight, i, cols: cols)
            d[i] = (sigmoid(x[i]) * (1 + (p - 1) * y[i]) - p * y[i]) * g
        }
    }

    // MARK: Cross-entropy

    /// `-Σ w_c log p_c` over the kept rows (class >= 0) of a row-wise log-softmax `lp` [n, k],
    /// and the sum of their weights `Σ w_c` (the mean's denominator); `w` is 1 without class weights.
    static func crossEntropySum(_ lp: UnsafePointer<Float>, classes: UnsafePointer<Int>, _ n: Int, _ k: Int,
                                weights: [Float]?) -> (total: Double, weightSum: Double) {
        var total = 0.0, weightSum = 0.0
        for i in 0..<n where classes[i] >= 0 {
            let w = Double(weights?[classes[i]] ?? 1)
            total -= w * Double(lp[i * k + classes[i]])
            weightSum += w
        }
        return (total, weightSum)
    }

    /// `w_c (softmax - onehot(c)) g` per kept row, 0 for ignored rows (class < 0), into `d` [n, k].
    static func crossEntropyGradient(_ lp: UnsafePointer<Float>, classes: UnsafePointer<Int>, _ n: Int, _ k: Int,
                                     weights: [Float]?, g: Float, into d: UnsafeMutablePointer<Float>) {
        for i in 0..<n {
            let c = classes[i]
            if c < 0 {
                for j in 0..<k { d[i * k + j] = 0 }
                continue
            }
            let wg = (weights?[c] ?? 1) * g
            for j in 0..<k { d[i * k + j] = expf(lp[i * k + j]) * wg }
            d[i * k + c] -= wg
        }
    }
}
