import CEmberKernels

/// Max, average and adaptive-average pooling over 1-d and 2-d windows (PyTorch's `max_pool1d/2d`,
/// `avg_pool1d/2d`, `adaptive_avg_pool2d`, with `ceil_mode = false` and no dilation).
///
/// Every (sample, channel) plane is pooled independently, so the loops run in parallel over
/// planes; a 1-d op is the 2-d one over planes of height 1. Max pooling keeps the position of
/// each maximum (the first one on ties, as PyTorch) for its backward pass. Max pooling whose
/// windows tile the input (stride = kernel, no padding: the default) runs vectorised kernels of
/// CEmberKernels/pooling.c; the loops below handle every other window.

/// Sizes of one pooling op, validated; 1-d ops have `inH = kH = outH = 1`.
struct PoolGeometry {
    /// Planes pooled independently: N · C.
    let planes: Int
    let inH: Int, inW: Int, kH: Int, kW: Int
    let strideH: Int, strideW: Int, padH: Int, padW: Int
    let outH: Int, outW: Int

    var inPlane: Int { inH * inW }
    var outPlane: Int { outH * outW }

    /// Validates the input shape and the window parameters of `op`; `kernel`, `stride` and
    /// `padding` hold one entry per spatial dimension.
    init(op: String, input xs: [Int], kernel: [Int], stride: [Int], padding: [Int]) throws {
        let s = kernel.count
        guard xs.count == s + 2 else {
            let layout = s == 1 ? "[N, C, L]" : "[N, C, H, W]"
            throw EmberError.shapeMismatch(op, "expected input of rank \(s + 2) \(layout), got \(shapeString(xs))")
        }
        guard kernel.allSatisfy({ $0 >= 1 }) else {
            throw EmberError.invalidArgument(op, "kernel size must be >= 1, got \(spatialString(kernel))")
        }
        try checkSpatialParameters(op, stride: stride, padding: padding, dilation: [Int](repeating: 1, count: s))
        // PyTorch's rule; it also guarantees that every window holds at least one input element.
        guard zip(padding, kernel).allSatisfy({ $0 <= $1 / 2 }) else {
            throw EmberError.invalidArgument(
                op, "padding \(spatialString(padding)) must be at most half the kernel size \(spatialString(kernel))")
        }
        let spatial = Array(xs[2...])
        var out: [Int] = []
        for d in 0..<s {
            guard let o = try slidingWindowCount(input: spatial[d], kernel: kernel[d], stride: stride[d],
                                                 padding: padding[d], dilation: 1, op: op) else {
                throw EmberError.shapeMismatch(
                    op, "input size \(spatialString(spatial)) with padding \(spatialString(padding)) is smaller than the kernel " +
                        "\(spatialString(kernel)) (input \(shapeString(xs)))")
            }
            out.append(o)
        }
        _ = try Tensor.elementCount([xs[0], xs[1]] + out, op: op)
        // Max pooling stores in-plane positions as Int32.
        guard try Tensor.elementCount(spatial, op: op) <= Int(Int32.max) else {
            throw EmberError(.overflow, "[\(op)] input planes of size \(spatialString(spatial)) exceed 2^31 elements")
        }
        planes = xs[0] * xs[1]
        inH = s == 1 ? 1 : spatial[0]
        inW = spatial[s - 1]
        kH = s == 1 ? 1 : kernel[0]
        kW = kernel[s - 1]
        strideH = s == 1 ? 1 : stride[0]
        strideW = stride[s - 1]
        padH = s == 1 ? 0 : padding[0]
        padW = padding[s - 1]
        outH = s == 1 ? 1 : out[0]
        outW = out[s - 1]
    }

    /// Minimum planes per thread.
    var minPlanes: Int { Swift.max(1, Parallel.minimumChunk / Swift.max(1, outPlane * kH * kW)) }

    /// Whether the windows tile the input: stride = kernel and no padding.
    var isTiled: Bool { strideH == kH && strideW == kW && padH == 0 && padW == 0 }

    /// Maximum of every window (padding reads -inf) and its in-plane position; NaN wins, as in PyTorch.
    func maxForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ positions: UnsafeMutablePointer<Int32>) {
        if isTiled {
            Parallel.forRange(planes, minChunk: minPlanes) { b, e in
                cember_max_pool_tiled(x + b * inPlane, Int64(e - b), Int64(inH), Int64(inW), Int64(kH), Int64(kW),
                                      y + b * outPlane, positions + b * outPlane)
            }
            return
        }
        if strideW <= 2 {
            // Overlapping or padded windows, stride 1 or 2 along the width (ResNet's 3×3/2): vectorised.
            Parallel.forRange(planes, minChunk: minPlanes) { b, e in
                _ = cember_max_pool_strided(x + b * inPlane, Int64(e - b), Int64(inH), Int64(inW), Int64(kH), Int64(kW),
                                            Int64(strideH), Int64(strideW), Int64(padH), Int64(padW), Int64(outH), Int64(outW),
                                            y + b * outPlane, positions + b * outPlane)
            }
            return
        }
        Parallel.forRange(planes, minChunk: minPlanes) { b, e in
            for pl in b..<e {
                let src = x + pl * inPlane, dst = y + pl * outPlane, pos = positions + pl * outPlane
                for oh in 0..<outH {
                    let h0 = oh * strideH - padH
                    let hs = Swift.max(h0, 0), he = Swift.min(h0 + kH, inH)
                    for ow in 0..<outW {
                        let w0 = ow * strideW - padW
                        let ws = Swift.max(w0, 0), we = Swift.min(w0 + kW, inW)
                        var best = -Float.infinity, at = hs * inW + ws
                        for ih in hs..<he {
                            let row = src + ih * inW
                            for iw in ws..<we {
                                let v = row[iw]
                                // NOTE: strict `>` keeps the first maximum on ties (the gradient goes there).
                                if v > best || v.isNaN {
                                    best = v
                                    at = ih * inW + iw
                                }
                            }
                        }
                        dst[oh * outW + ow] = best
                        pos[oh * outW + ow] = Int32(truncatingIfNeeded: at)
                    }
                }
            }
        }
    }

    /// Routes each output gradient to its window's maximum; `dx` is overwritten.
    func maxBackward(_ dy: UnsafePointer<Float>, _ positions: UnsafePointer<Int32>, _ dx: UnsafeMutablePointer<Float>) {
        if isTiled {
            Parallel.forRange(planes, minChunk: Swift.max(1, Parallel.minimumChunk / Swift.max(1, inPlane + outPlane))) { b, e in
                cember_max_pool_tiled_backward(dy + b * outPlane, positions + b * outPlane, Int64(e - b), Int64(inH), Int64(inW),
                                               Int64(kH), Int64(kW), dx + b * inPlane)
            }
            return
        }
        Parallel.forRange(planes, minChunk: Swift.max(1, Parallel.minimumChunk / Swift.max(1, inPlane + outPlane))) { b, e in
            for pl in b..<e {
                let g = dy + pl * outPlane, pos = positions + pl * outPlane, dst = dx + pl * inPlane
                dst.initialize(repeating: 0, count: inPlane)
                for o in 0..<outPlane { dst[Int(pos[o])] += g[o] }
            }
        }
    }

    /// The window of output (oh, ow) clipped to the input, and PyTorch's divisor: the window's
    /// size inside the padded input (`countIncludePad`) or the number of input elements in it.
    @inline(__always)
    func averageWindow(_ oh: Int, _ ow: Int, countIncludePad: Bool) -> (hs: Int, he: Int, ws: Int, we: Int, divisor: Float) {
        let h0 = oh * strideH - padH, w0 = ow * strideW - padW
        let paddedArea = (Swift.min(h0 + kH, inH + padH) - h0) * (Swift.min(w0 + kW, inW + padW) - w0)
        let hs = Swift.max(h0, 0), he = Swift.min(h0 + kH, inH)
        let ws = Swift.max(w0, 0), we = Swift.min(w0 + kW, inW)
        let divisor = countIncludePad ? paddedArea : (he - hs) * (we - ws)
        return (hs, he, ws, we, Float(divisor))
    }

    /// Average of every window.
    func avgForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, countIncludePad: Bool) {
        Parallel.forRange(planes, minChunk: minPlanes) { b, e in
            for pl in b..<e {
                let src = x + pl * inPlane, dst = y + pl * outPlane
                for oh in 0..<outH {
                    for ow in 0..<outW {
                        let w = averageWindow(oh, ow, countIncludePad: countIncludePad)
                        var sum: Float = 0
                        for ih in w.hs..<w.he {
                            let row = src + ih * inW
                            for iw in w.ws..<w.we { sum += row[iw] }
                        }
                        dst[oh * outW + ow] = sum / w.divisor
                    }
                }
            }
        }
    }

    /// Spreads each output gradient evenly (÷ divisor) over its window; `dx` is overwritten.
    func avgBackward(_ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, countIncludePad: Bool) {
        Parallel.forRange(planes, minChunk: minPlanes) { b, e in
            for pl in b..<e {
                let g = dy + pl * outPlane, dst = dx + pl * inPlane
                dst.initialize(repeating: 0, count: inPlane)
                for oh in 0..<outH {
                    for ow in 0..<outW {
                        let w = averageWindow(oh, ow, countIncludePad: countIncludePad)
                        let share = g[oh * outW + ow] / w.divisor
                        for ih in w.hs..<w.he {
                            let row = dst + ih * inW
                            for iw in w.ws..<w.we { row[iw] += share }
                        }
                    }
                }
            }
        }
    }
}

/// The output shape of a pooling of `geo` over an input of shape `xs` ([N, C, L] or [N, C, H, W]).
private func poolOutputShape(_ xs: [Int], _ geo: PoolGeometry) -> [Int] {
    xs.count == 3 ? [xs[0], xs[1], geo.outW] : [xs[0], xs[1], geo.outH, geo.outW]
}

/// Max pooling of validated geometry on the tape.
private func maxPool(_ x: Variable, _ geo: PoolGeometry) -> Variable {
    let count = geo.planes * geo.outPlane
    // NOTE: the argmax positions are Int32 kept in pooled float storage (same size and alignment),
    // so that a training step allocates nothing new; they are only ever read as Int32.
    let positions = TensorStorage(uninitializedCount: count)
    let y = Tensor.build(shape: poolOutputShape(x.shape, geo)) { out in
        positions.pointer.withMemoryRebound(to: Int32.self, capacity: Swift.max(count, 1)) { pos in
            geo.maxForward(x.value.storage.pointer, out.baseAddress.unsafelyUnwrapped, pos)
        }
    }
    return Variable(y, inputs: [x]) { [shape = x.shape] dy in
        [Tensor.build(shape: shape) { dx in
            positions.pointer.withMemoryRebound(to: Int32.self, capacity: Swift.max(count, 1)) { pos in
                geo.maxBackward(dy.storage.pointer, pos, dx.baseAddress.unsafelyUnwrapped)
            }
        }]
    }
}

/// Average pooling of validated geometry on the tape.
private func avgPool(_ x: Variable, _ geo: PoolGeometry, countIncludePad: Bool) -> Variable {
    let y = Tensor.build(shape: poolOutputShape(x.shape, geo)) { out in
        geo.avgForward(x.value.storage.pointer, out.baseAddress.unsafelyUnwrapped, countIncludePad: countIncludePad)
    }
    return Variable(y, inputs: [x]) { [shape = x.shape] dy in
        [Tensor.build(shape: shape) { dx in
            geo.avgBackward(dy.storage.pointer, dx.baseAddress.unsafelyUnwrapped, countIncludePad: countIncludePad)
        }]
    }
}

/// 1-d max pooling (PyTorch's `max_pool1d`, `ceil_mode = false`): `x` [N, C, L] → [N, C, L_out]
/// with `L_out = floor((L + 2·padding - kernel) / stride) + 1`; `stride` defaults to `kernel`.
///
/// Padding reads -inf and must be at most `kernel / 2`. The gradient of each output goes to the
/// position of its window's maximum (the first one on ties).
/// - Throws: `EmberError` naming `[max_pool1d]` on an invalid shape or parameter.
public func maxPool1d(_ x: Variable, kernel: Int, stride: Int? = nil, padding: Int = 0) throws -> Variable {
    let geo = try PoolGeometry(op: "max_pool1d", input: x.shape, kernel: [kernel], stride: [stride ?? kernel], padding: [padding])
    return maxPool(x, geo)
}

/// 2-d max pooling (PyTorch's `max_pool2d`, `ceil_mode = false`): `x` [N, C, H, W] →
/// [N, C, H_out, W_out]; parameters are (height, width) pairs, `stride` defaults to `kernel`.
///
/// Padding reads -inf and must be at most half the kernel. The gradient of each output goes to
/// the position of its window's maximum (the first one in row-major order on ties).
/// - Throws: `EmberError` naming `[max_pool2d]` on an invalid shape or parameter.
public func maxPool2d(_ x: Variable, kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0)) throws -> Variable {
    let s = stride ?? kernel
    let geo = try PoolGeometry(op: "max_pool2d", input: x.shape, kernel: [kernel.0, kernel.1], stride: [s.0, s.1],
                               padding: [padding.0, padding.1])
    return maxPool(x, geo)
}

/// 2-d max pooling with a square window (the same kernel, stride and padding along both axes).
public func maxPool2d(_ x: Variable, kernel: Int, stride: Int? = nil, padding: Int = 0) throws -> Variable {
    let s = stride ?? kernel
    return try maxPool2d(x, kernel: (kernel, kernel), stride: (s, s), padding: (padding, padding))
}

/// 1-d average pooling (PyTorch's `avg_pool1d`, `ceil_mode = false`): `x` [N, C, L] → [N, C, L_out];
/// `stride` defaults to `kernel`, padding (zeros) must be at most `kernel / 2`.
///
/// With `countIncludePad` every window is divided by the kernel size; without, by the number of
/// input elements it covers.
/// - Throws: `EmberError` naming `[avg_pool1d]` on an invalid shape or parameter.
public func avgPool1d(_ x: Variable, kernel: Int, stride: Int? = nil, padding: Int = 0,
                      countIncludePad: Bool = true) throws -> Variable {
    let geo = try PoolGeometry(op: "avg_pool1d", input: x.shape, kernel: [kernel], stride: [stride ?? kernel], padding: [padding])
    return avgPool(x, geo, countIncludePad: countIncludePad)
}

/// 2-d average pooling (PyTorch's `avg_pool2d`, `ceil_mode = false`, no divisor override):
/// `x` [N, C, H, W] → [N, C, H_out, W_out]; parameters are (height, width) pairs, `stride`
/// defaults to `kernel`, padding (zeros) must be at most half the kernel.
///
/// With `countIncludePad` every window is divided by the kernel area; without, by the number of
/// input elements it covers.
/// - Throws: `EmberError` naming `[avg_pool2d]` on an invalid shape or parameter.
public func avgPool2d(_ x: Variable, kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0),
                      countIncludePad: Bool = true) throws -> Variable {
    let s = stride ?? kernel
    let geo = try PoolGeometry(op: "avg_pool2d", input: x.shape, kernel: [kernel.0, kernel.1], stride: [s.0, s.1],
                               padding: [padding.0, padding.1])
    return avgPool(x, geo, countIncludePad: countIncludePad)
}

/// 2-d average pooling with a square window (the same kernel, stride and padding along both axes).
public func avgPool2d(_ x: Variable, kernel: Int, stride: Int? = nil, padding: Int = 0,
                      countIncludePad: Bool = true) throws -> Variable {
    let s = stride ?? kernel
    return try avgPool2d(x, kernel: (kernel, kernel), stride: (s, s), padding: (padding, padding), countIncludePad: countIncludePad)
}

// MARK: Adaptive average pooling

/// Sizes of one adaptive average pooling, validated. Output cell i along a dimension of input
/// size L and output size n averages `floor(i·L/n) ..< ceil((i+1)·L/n)` (PyTorch's windows).
struct AdaptivePoolGeometry {
    let planes: Int, inH: Int, inW: Int, outH: Int, outW: Int

    var inPlane: Int { inH * inW }
    var outPlane: Int { outH * outW }

    init(op: String, input xs: [Int], outputSize: [Int]) throws {
        guard xs.count == 4 else {
            throw EmberError.shapeMismatch(op, "expected input of rank 4 [N, C, H, W], got \(shapeString(xs))")
        }
        guard outputSize.allSatisfy({ $0 >= 1 }) else {
            throw EmberError.invalidArgument(op, "output size must be >= 1, got \(spatialString(outputSize))")
        }
        guard xs[2] >= 1 && xs[3] >= 1 else {
            throw EmberError.shapeMismatch(op, "expected non-empty spatial dimensions, got input \(shapeString(xs))")
        }
        _ = try Tensor.elementCount([xs[0], xs[1]] + outputSize, op: op)
        // The window bounds compute (i + 1) · L + n - 1 for i < n.
        for d in 0..<2 {
            let (next, o1) = outputSize[d].addingReportingOverflow(1)
            let (product, o2) = next.multipliedReportingOverflow(by: xs[d + 2])
            let (_, o3) = product.addingReportingOverflow(outputSize[d])
            guard !o1, !o2, !o3 else {
                throw EmberError(.overflow, "[\(op)] output size \(spatialString(outputSize)) for input \(shapeString(xs)) overflows")
            }
        }
        planes = xs[0] * xs[1]
        inH = xs[2]
        inW = xs[3]
        outH = outputSize[0]
        outW = outputSize[1]
    }

    @inline(__always)
    static func window(_ i: Int, input: Int, output: Int) -> (Int, Int) {
        (i * input / output, ((i + 1) * input + output - 1) / output)
    }

    var minPlanes: Int { Swift.max(1, Parallel.minimumChunk / Swift.max(1, inPlane + outPlane)) }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        Parallel.forRange(planes, minChunk: minPlanes) { b, e in
            for pl in b..<e {
                let src = x + pl * inPlane, dst = y + pl * outPlane
                for oh in 0..<outH {
                    let (hs, he) = AdaptivePoolGeometry.window(oh, input: inH, output: outH)
                    for ow in 0..<outW {
                        let (ws, we) = AdaptivePoolGeometry.window(ow, input: inW, output: outW)
                        var sum: Float = 0
                        for ih in hs..<he {
                            let row = src + ih * inW
                            for iw in ws..<we { sum += row[iw] }
                        }
                        // PyTorch divides by the height, then by the width.
                        dst[oh * outW + ow] = sum / Float(he - hs) / Float(we - ws)
                    }
                }
            }
        }
    }

    /// `dx` is overwritten.
    func backward(_ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>) {
        Parallel.forRange(planes, minChunk: minPlanes) { b, e in
            for pl in b..<e {
                let g = dy + pl * outPlane, dst = dx + pl * inPlane
                dst.initialize(repeating: 0, count: inPlane)
                for oh in 0..<outH {
                    let (hs, he) = AdaptivePoolGeometry.window(oh, input: inH, output: outH)
                    for ow in 0..<outW {
                        let (ws, we) = AdaptivePoolGeometry.window(ow, input: inW, output: outW)
                        let share = g[oh * outW + ow] / Float(he - hs) / Float(we - ws)
                        for ih in hs..<he {
                            let row = dst + ih * inW
                            for iw in ws..<we { row[iw] += share }
                        }
                    }
                }
            }
        }
    }
}

/// Adaptive 2-d average pooling (PyTorch's `adaptive_avg_pool2d`): `x` [N, C, H, W] →
/// [N, C, outputSize.0, outputSize.1], where output cell (i, j) averages rows
/// `floor(i·H/out_H) ..< ceil((i+1)·H/out_H)` and the matching columns (windows may overlap).
/// - Throws: `EmberError` naming `[adaptive_avg_pool2d]` on an invalid shape or output size.
public func adaptiveAvgPool2d(_ x: Variable, outputSize: (Int, Int)) throws -> Variable {
    let geo = try AdaptivePoolGeometry(op: "adaptive_avg_pool2d", input: x.shape, outputSize: [outputSize.0, outputSize.1])
    let xs = x.shape
    let y = Tensor.build(shape: [xs[0], xs[1], geo.outH, geo.outW]) { out in
        geo.forward(x.value.storage.pointer, out.baseAddress.unsafelyUnwrapped)
    }
    return Variable(y, inputs: [x]) { dy in
        [Tensor.build(shape: xs) { dx in geo.backward(dy.storage.pointer, dx.baseAddress.unsafelyUnwrapped) }]
    }
}

/// Adaptive 2-d average pooling to a square output (`outputSize` × `outputSize`).
public func adaptiveAvgPool2d(_ x: Variable, outputSize: Int) throws -> Variable {
    try adaptiveAvgPool2d(x, outputSize: (outputSize, outputSize))
}
