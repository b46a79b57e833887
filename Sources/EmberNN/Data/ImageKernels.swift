import EmberCore
import Glibc

/// Reusable per-thread memory of the image kernels: two images the pipeline's steps ping-pong
/// between, a staging image for a step's own intermediate (colour jitter, a resized crop reaching
/// outside the image) and the index and weight tables of one resize or window, sized once per
/// batch, so that no kernel allocates.
final class ImageScratch {
    let images: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>)
    let rows: UnsafeMutablePointer<Int>
    let cols: UnsafeMutablePointer<Int>
    let rowWeights: UnsafeMutablePointer<Float>
    let colWeights: UnsafeMutablePointer<Float>
    let axisCapacity: Int

    /// Room for images of `imageCount` floats and axes of `axis` pixels.
    init(imageCount: Int, axis: Int) {
        let n = Swift.max(imageCount, 1)
        images = (.allocate(capacity: n), .allocate(capacity: n), .allocate(capacity: n))
        axisCapacity = Swift.max(axis, 1)
        // Two entries per output pixel: the two source indices or weights of bilinear resizing.
        rows = .allocate(capacity: 2 * axisCapacity)
        cols = .allocate(capacity: 2 * axisCapacity)
        rowWeights = .allocate(capacity: 2 * axisCapacity)
        colWeights = .allocate(capacity: 2 * axisCapacity)
    }

    deinit {
        images.0.deallocate()
        images.1.deallocate()
        images.2.deallocate()
        rows.deallocate()
        cols.deallocate()
        rowWeights.deallocate()
        colWeights.deallocate()
    }
}

/// `fill[c]`, or the single value for all channels (validated counts; never out of bounds).
@inline(__always)
func fillValue(_ fill: [Float], _ c: Int) -> Float {
    fill.isEmpty ? 0 : fill[Swift.min(c, fill.count - 1)]
}

/// Python's `round()` (half to even) of a Double, as an Int; nil when it does not fit.
@inline(__always)
func roundedInt(_ x: Double) -> Int? {
    let r = x.rounded(.toNearestOrEven)
    return r.isFinite && abs(r) < 1e15 ? Int(r) : nil
}

/// The loops of the image transforms on one contiguous `[C, H, W]` image. Sources and
/// destinations never overlap; every kernel writes every element of its destination.
enum ImageKernels {
    // MARK: Windows: crop, pad, center crop, random crop

    /// For output positions `0..<outLen` of one axis, the source index of position `offset + i`
    /// of an axis of `inLen` extended by `mode`, or -1 where the constant fill applies.
    static func windowAxis(offset: Int, outLen: Int, inLen: Int, mode: ImagePaddingMode, into map: UnsafeMutablePointer<Int>) {
        for i in 0..<outLen {
            var j = offset + i
            if j < 0 || j >= inLen {
                switch mode {
                case .constant: j = -1
                case .edge: j = j < 0 ? 0 : inLen - 1
                case .reflect: j = j < 0 ? -j : 2 * (inLen - 1) - j
                case .symmetric: j = j < 0 ? -j - 1 : 2 * inLen - 1 - j
                }
                // Validation keeps reflections inside the image; never read outside it regardless.
                if mode != .constant { j = Swift.min(Swift.max(j, 0), inLen - 1) }
            }
            map[i] = j
        }
    }

    /// The `out.h` × `out.w` window at (`top`, `left`) of the image extended by `mode` (constant:
    /// `fill` per channel). Crop, pad, center crop and random crop are all such windows.
    static func window(_ src: UnsafePointer<Float>, _ d: ImageDims, top: Int, left: Int, _ out: ImageDims,
                       mode: ImagePaddingMode, fill: [Float], _ dst: UnsafeMutablePointer<Float>, _ s: ImageScratch) {
        windowAxis(offset: top, outLen: out.h, inLen: d.h, mode: mode, into: s.rows)
        windowAxis(offset: left, outLen: out.w, inLen: d.w, mode: mode, into: s.cols)
        // The longest run of columns that read the source in order, copied as one block.
        var runStart = 0, runEnd = 0
        var i = 0
        while i < out.w {
            if s.cols[i] < 0 { i += 1; continue }
            var j = i + 1
            while j < out.w, s.cols[j] == s.cols[j - 1] + 1 { j += 1 }
            if j - i > runEnd - runStart { (runStart, runEnd) = (i, j) }
            i = j
        }
        let runSource = runEnd > runStart ? s.cols[runStart] : 0
        for c in 0..<d.c {
            let f = fillValue(fill, c)
            let plane = src + c * d.plane
            for y in 0..<out.h {
                let o = dst + (c * out.h + y) * out.w
                let r = s.rows[y]
                if r < 0 {
                    o.update(repeating: f, count: out.w)
                    continue
                }
                let row = plane + r * d.w
                for x in 0..<runStart { let k = s.cols[x]; o[x] = k < 0 ? f : row[k] }
                (o + runStart).update(from: row + runSource, count: runEnd - runStart)
                for x in runEnd..<out.w { let k = s.cols[x]; o[x] = k < 0 ? f : row[k] }
            }
        }
    }

    // MARK: Flips and quarter turns

    static func horizontalFlip(_ src: UnsafePointer<Float>, _ d: ImageDims, _ dst: UnsafeMutablePointer<Float>) {
        for r in 0..<(d.c * d.h) {
            let i = src + r * d.w, o = dst + r * d.w
            var x = 0, y = d.w - 1
            while y >= 0 { o[x] = i[y]; x += 1; y -= 1 }
        }
    }

    static func verticalFlip(_ src: UnsafePointer<Float>, _ d: ImageDims, _ dst: UnsafeMutablePointer<Float>) {
        for c in 0..<d.c {
            for y in 0..<d.h {
                (dst + (c * d.h + y) * d.w).update(from: src + (c * d.h + d.h - 1 - y) * d.w, count: d.w)
            }
        }
    }

    /// `torch.rot90(k)` over the last two dimensions for k = 1, 2, 3 (square images for odd k).
    static func rot90(_ src: UnsafePointer<Float>, _ d: ImageDims, k: Int, _ dst: UnsafeMutablePointer<Float>) {
        let h = d.h, w = d.w
        for c in 0..<d.c {
            let i = src + c * d.plane, o = dst + c * d.plane
            switch k {
            case 1:  // out[a][b] = in[b][w - 1 - a], out is w × h
                for a in 0..<w { for b in 0..<h { o[a * h + b] = i[b * w + (w - 1 - a)] } }
            case 3:  // out[a][b] = in[h - 1 - b][a]
                for a in 0..<w { for b in 0..<h { o[a * h + b] = i[(h - 1 - b) * w + a] } }
            default:  // 180°
                for a in 0..<d.plane { o[a] = i[d.plane - 1 - a] }
            }
        }
    }

    // MARK: Bilinear resize (align_corners = False, no antialiasing)

    /// PyTorch's source indices and weights of one axis (`compute_indices_weights_linear`, float
    /// arithmetic as `upsample_bilinear2d` on float32): output i reads `idx[2i]`, `idx[2i+1]`
    /// with weights `lambda[2i]`, `lambda[2i+1]`; `offset` shifts the indices (a crop's origin).
    static func linearAxis(inLen: Int, outLen: Int, offset: Int, idx: UnsafeMutablePointer<Int>, lambda: UnsafeMutablePointer<Float>) {
        let scale = Float(inLen) / Float(outLen)
        for i in 0..<outLen {
            var i0 = i, l1: Float = 0
            if inLen != outLen {
                var real = scale * (Float(i) + 0.5) - 0.5
                if real < 0 { real = 0 }
                i0 = Swift.min(Int(real.rounded(.down)), inLen - 1)
                l1 = Swift.min(Swift.max(real - Float(i0), 0), 1)
            }
            let i1 = i0 + (i0 < inLen - 1 ? 1 : 0)
            idx[2 * i] = offset + i0
            idx[2 * i + 1] = offset + i1
            lambda[2 * i] = 1 - l1
            lambda[2 * i + 1] = l1
        }
    }

    /// Bilinear resize of the `region.h` × `region.w` region at (`top`, `left`) of a `d` image
    /// (inside it) to `out`.
    static func resize(_ src: UnsafePointer<Float>, _ d: ImageDims, top: Int, left: Int, region: (h: Int, w: Int),
                       _ out: ImageDims, _ dst: UnsafeMutablePointer<Float>, _ s: ImageScratch) {
        if region.h == out.h && region.w == out.w {
            // torchvision returns the input unchanged when the size does not change.
            window(src, d, top: top, left: left, out, mode: .constant, fill: [0], dst, s)
            return
        }
        linearAxis(inLen: region.h, outLen: out.h, offset: top, idx: s.rows, lambda: s.rowWeights)
        linearAxis(inLen: region.w, outLen: out.w, offset: left, idx: s.cols, lambda: s.colWeights)
        for c in 0..<d.c {
            let plane = src + c * d.plane
            var o = dst + c * out.plane
            for y in 0..<out.h {
                let r0 = plane + s.rows[2 * y] * d.w, r1 = plane + s.rows[2 * y + 1] * d.w
                let h0 = s.rowWeights[2 * y], h1 = s.rowWeights[2 * y + 1]
                for x in 0..<out.w {
                    let c0 = s.cols[2 * x], c1 = s.cols[2 * x + 1]
                    let w0 = s.colWeights[2 * x], w1 = s.colWeights[2 * x + 1]
                    // PyTorch's order: each row interpolated along x, then the rows along y.
                    let t0 = r0[c0] * w0 + r0[c1] * w1
                    let t1 = r1[c0] * w0 + r1[c1] * w1
                    o[x] = t0 * h0 + t1 * h1
                }
                o += out.w
            }
        }
    }

    // MARK: Affine grid sampling (rotate, affine)

    /// torchvision's `_get_inverse_affine_matrix` (Double, as Python): the output → input map
    /// `[a, b, c, d, e, f]` in pixel coordinates centred on the image.
    static func inverseAffineMatrix(angle: Double, translate: (Double, Double), scale: Double,
                                    shear: (Double, Double)) -> [Double] {
        let rot = angle * Double.pi / 180
        let sx = shear.0 * Double.pi / 180, sy = shear.1 * Double.pi / 180
        let (tx, ty) = translate
        let cosSy = cos(sy), tanSx = tan(sx)
        let a = cos(rot - sy) / cosSy
        let b = -(a * tanSx + sin(rot))
        let c = sin(rot - sy) / cosSy
        let d = cos(rot) - c * tanSx
        var m = [d / scale, -b / scale, 0.0, -c / scale, a / scale, 0.0]
        // Centre (0, 0): cx + tx = tx.
        m[2] += 0 - m[0] * tx - m[1] * ty
        m[5] += 0 - m[3] * tx - m[4] * ty
        return m
    }

    /// `grid_sample` (zeros padding, align_corners = False) on torchvision's `_affine_grid` of the
    /// inverse `matrix`, in float32 as torchvision computes it for float images, then the `fill`
    /// blend of `_apply_grid_transform` when fill is given.
    static func gridSample(_ src: UnsafePointer<Float>, _ d: ImageDims, matrix m: [Double],
                           interpolation: ImageInterpolation, fill: [Float]?, _ dst: UnsafeMutablePointer<Float>) {
        guard m.count == 6 else { return }
        let halfW = Float(0.5 * Double(d.w)), halfH = Float(0.5 * Double(d.h))
        // rescaled_theta = thetaᵀ / [0.5 w, 0.5 h]
        let r00 = Float(m[0]) / halfW, r10 = Float(m[1]) / halfW, r20 = Float(m[2]) / halfW
        let r01 = Float(m[3]) / halfH, r11 = Float(m[4]) / halfH, r21 = Float(m[5]) / halfH
        let x0 = Float(1 - d.w) * 0.5, y0 = Float(1 - d.h) * 0.5
        let sizeW = Float(d.w), sizeH = Float(d.h)
        let plane = d.plane
        for oy in 0..<d.h {
            let by = y0 + Float(oy)
            for ox in 0..<d.w {
                let bx = x0 + Float(ox)
                let gx = bx * r00 + by * r10 + r20
                let gy = bx * r01 + by * r11 + r21
                // unnormalize (align_corners = False): ((g + 1) · size − 1) / 2
                let ix = (gx + 1) * (sizeW / 2) - 0.5
                let iy = (gy + 1) * (sizeH / 2) - 0.5
                let p = oy * d.w + ox
                // Far outside (or NaN): every tap reads the zero padding.
                let inside = ix > -2 && ix < sizeW + 1 && iy > -2 && iy < sizeH + 1
                switch interpolation {
                case .nearest:
                    var k = -1
                    if inside {
                        let nx = Int(ix.rounded(.toNearestOrEven)), ny = Int(iy.rounded(.toNearestOrEven))
                        if nx >= 0, nx < d.w, ny >= 0, ny < d.h { k = ny * d.w + nx }
                    }
                    for c in 0..<d.c {
                        if k >= 0 {
                            dst[c * plane + p] = src[c * plane + k]
                        } else {
                            dst[c * plane + p] = fill.map { fillValue($0, c) } ?? 0
                        }
                    }
                case .bilinear:
                    guard inside else {
                        for c in 0..<d.c { dst[c * plane + p] = fill.map { fillValue($0, c) } ?? 0 }
                        continue
                    }
                    let fx = ix.rounded(.down), fy = iy.rounded(.down)
                    let xw = Int(fx), yn = Int(fy)
                    let w = ix - fx, e = 1 - w
                    let n = iy - fy, s = 1 - n
                    let nw = s * e, ne = s * w, sw = n * e, se = n * w
                    let inW0 = xw >= 0 && xw < d.w, inW1 = xw + 1 >= 0 && xw + 1 < d.w
                    let inN = yn >= 0 && yn < d.h, inS = yn + 1 >= 0 && yn + 1 < d.h
                    let kNW = (inN && inW0) ? yn * d.w + xw : -1
                    let kNE = (inN && inW1) ? yn * d.w + xw + 1 : -1
                    let kSW = (inS && inW0) ? (yn + 1) * d.w + xw : -1
                    let kSE = (inS && inW1) ? (yn + 1) * d.w + xw + 1 : -1
                    let mask = (kNW >= 0 ? nw : 0) + (kNE >= 0 ? ne : 0) + (kSW >= 0 ? sw : 0) + (kSE >= 0 ? se : 0)
                    for c in 0..<d.c {
                        let i = src + c * plane
                        let v = (kNW >= 0 ? i[kNW] : 0) * nw + (kNE >= 0 ? i[kNE] : 0) * ne
                            + (kSW >= 0 ? i[kSW] : 0) * sw + (kSE >= 0 ? i[kSE] : 0) * se
                        if let fill {
                            let f = fillValue(fill, c)
                            dst[c * plane + p] = (v - f) * mask + f
                        } else {
                            dst[c * plane + p] = v
                        }
                    }
                }
            }
        }
    }

    // MARK: Colour and intensity

    /// `(x - mean) / std` per channel.
    static func normalize(_ src: UnsafePointer<Float>, _ d: ImageDims, mean: [Float], std: [Float], _ dst: UnsafeMutablePointer<Float>) {
        for c in 0..<d.c {
            let m = fillValue(mean, c), s = fillValue(std, c)
            let i = src + c * d.plane, o = dst + c * d.plane
            for k in 0..<d.plane { o[k] = (i[k] - m) / s }
        }
    }

    /// torchvision's luma of one pixel: `r·0.2989 + g·0.587 + b·0.114`, in that order.
    @inline(__always)
    static func luma(_ r: Float, _ g: Float, _ b: Float) -> Float {
        var l = r * 0.2989
        l = l + g * 0.587
        return l + b * 0.114
    }

    /// Grey levels in `k` (1 or 3) channels; a one-channel image is copied or repeated.
    static func grayscale(_ src: UnsafePointer<Float>, _ d: ImageDims, channels k: Int, _ dst: UnsafeMutablePointer<Float>) {
        let n = d.plane
        if d.c == 1 {
            for c in 0..<k { (dst + c * n).update(from: src, count: n) }
            return
        }
        let r = src, g = src + n, b = src + 2 * n
        for p in 0..<n { dst[p] = luma(r[p], g[p], b[p]) }
        for c in 1..<Swift.max(k, 1) { (dst + c * n).update(from: dst, count: n) }
    }

    /// torchvision's float clamp to [0, 1] (NaN stays NaN).
    @inline(__always)
    static func clamp01(_ v: Float) -> Float { v < 0 ? 0 : (v > 1 ? 1 : v) }

    /// `clamp(x · factor, 0, 1)`.
    static func brightness(_ src: UnsafePointer<Float>, _ d: ImageDims, factor: Double, _ dst: UnsafeMutablePointer<Float>) {
        let f = Float(factor)
        for k in 0..<d.count { dst[k] = clamp01(src[k] * f) }
    }

    /// `_blend(image, mean grey, factor)`: `clamp(x · factor + mean · (1 − factor), 0, 1)`.
    static func contrast(_ src: UnsafePointer<Float>, _ d: ImageDims, factor: Double, _ dst: UnsafeMutablePointer<Float>) {
        let n = d.plane
        var sum = 0.0
        if d.c == 3 {
            for p in 0..<n { sum += Double(luma(src[p], src[n + p], src[2 * n + p])) }
        } else {
            for p in 0..<d.count { sum += Double(src[p]) }
        }
        let mean = Float(sum / Double(Swift.max(d.c == 3 ? n : d.count, 1)))
        let ratio = Float(factor), alpha = Float(1.0 - factor)
        let other = alpha * mean
        for k in 0..<d.count { dst[k] = clamp01(src[k] * ratio + other) }
    }

    /// `_blend(image, grey, factor)` per pixel; a one-channel image is copied (as torchvision).
    static func saturation(_ src: UnsafePointer<Float>, _ d: ImageDims, factor: Double, _ dst: UnsafeMutablePointer<Float>) {
        guard d.c == 3 else {
            dst.update(from: src, count: d.count)
            return
        }
        let n = d.plane
        let ratio = Float(factor), alpha = Float(1.0 - factor)
        for p in 0..<n {
            let r = src[p], g = src[n + p], b = src[2 * n + p]
            let other = alpha * luma(r, g, b)
            dst[p] = clamp01(r * ratio + other)
            dst[n + p] = clamp01(g * ratio + other)
            dst[2 * n + p] = clamp01(b * ratio + other)
        }
    }
}
