import EmberCore
import Glibc

extension RandomGenerator {
    /// A uniform Double in [low, high) from 53 random bits (torchvision draws its parameters with
    /// `uniform_(low, high)`).
    mutating func uniformDouble(_ low: Double, _ high: Double) -> Double {
        low + (high - low) * (Double(next() >> 11) * 0x1p-53)
    }
}

/// The parameters one random transform drew for one image (also read by the statistical tests).
extension ImageTransform {
    /// `RandomCrop.make_params`: the padding and the window origin in padded coordinates.
    static func sampleRandomCrop(_ o: RandomCropOptions, _ d: ImageDims, _ rng: inout RandomGenerator)
        -> (padding: ImagePadding, top: Int, left: Int) {
        let p = randomCropPadding(o, d)
        let ph = d.h + p.top + p.bottom, pw = d.w + p.left + p.right
        let top = ph > o.height ? rng.below(ph - o.height + 1) : 0
        let left = pw > o.width ? rng.below(pw - o.width + 1) : 0
        return (p, top, left)
    }

    /// `RandomResizedCrop.make_params`: ten attempts at an area fraction in `scale` and a
    /// log-uniform aspect ratio in `ratio` that fit the image, then the central crop of the
    /// nearest allowed ratio.
    static func sampleResizedCrop(_ o: RandomResizedCropOptions, _ d: ImageDims, _ rng: inout RandomGenerator)
        -> (top: Int, left: Int, height: Int, width: Int) {
        let area = Double(d.h) * Double(d.w)
        let logLow = log(o.ratio.lower), logHigh = log(o.ratio.upper)
        for _ in 0..<10 {
            let targetArea = area * rng.uniformDouble(o.scale.lower, o.scale.upper)
            let aspect = exp(rng.uniformDouble(logLow, logHigh))
            guard let w = roundedInt((targetArea * aspect).squareRoot()),
                  let h = roundedInt((targetArea / aspect).squareRoot()) else { continue }
            if w > 0, w <= d.w, h > 0, h <= d.h {
                let i = rng.below(d.h - h + 1)
                let j = rng.below(d.w - w + 1)
                return (i, j, h, w)
            }
        }
        let inRatio = Double(d.w) / Double(d.h)
        var w = d.w, h = d.h
        if inRatio < o.ratio.lower {
            h = roundedInt(Double(w) / o.ratio.lower) ?? d.h
        } else if inRatio > o.ratio.upper {
            w = roundedInt(Double(h) * o.ratio.upper) ?? d.w
        }
        // torchvision would crop nothing for an extreme ratio on a thin image; keep a pixel.
        h = Swift.min(Swift.max(h, 1), d.h)
        w = Swift.min(Swift.max(w, 1), d.w)
        return ((d.h - h) / 2, (d.w - w) / 2, h, w)
    }

    /// `RandomAffine.make_params`: angle, integer shifts (Python's `round`), scale and shears.
    static func sampleAffine(_ o: RandomAffineOptions, _ d: ImageDims, _ rng: inout RandomGenerator) -> AffineOptions {
        let angle = rng.uniformDouble(o.degrees.lower, o.degrees.upper)
        var tx = 0.0, ty = 0.0
        if let t = o.translate {
            let maxDx = t.x * Double(d.w), maxDy = t.y * Double(d.h)
            tx = Double(roundedInt(rng.uniformDouble(-maxDx, maxDx)) ?? 0)
            ty = Double(roundedInt(rng.uniformDouble(-maxDy, maxDy)) ?? 0)
        }
        let scale = o.scale.map { rng.uniformDouble($0.lower, $0.upper) } ?? 1
        let shearX = o.shearX.map { rng.uniformDouble($0.lower, $0.upper) } ?? 0
        let shearY = o.shearY.map { rng.uniformDouble($0.lower, $0.upper) } ?? 0
        return AffineOptions(angle: angle, translateX: tx, translateY: ty, scale: scale, shearX: shearX, shearY: shearY,
                             interpolation: o.interpolation, fill: o.fill)
    }

    /// `ColorJitter.make_params`: a random order of the three adjustments (0 brightness,
    /// 1 contrast, 2 saturation), then each factor drawn from its range (nil: not adjusted).
    static func sampleColorJitter(_ o: ColorJitterOptions, _ rng: inout RandomGenerator)
        -> (order: (Int, Int, Int), brightness: Double?, contrast: Double?, saturation: Double?) {
        var order = (0, 1, 2)
        // Fisher–Yates on three elements, without an array.
        let j2 = rng.below(3)
        if j2 == 0 { swap(&order.0, &order.2) } else if j2 == 1 { swap(&order.1, &order.2) }
        if rng.below(2) == 0 { swap(&order.0, &order.1) }
        // torchvision drops a range of exactly [1, 1] (no change, and no clamping either).
        func draw(_ r: ImageRange?) -> Double? {
            guard let r, !(r.lower == 1 && r.upper == 1) else { return nil }
            return rng.uniformDouble(r.lower, r.upper)
        }
        let b = draw(o.brightness), c = draw(o.contrast), s = draw(o.saturation)
        return (order, b, c, s)
    }

    /// `F.rotate` (expand off, about the centre), with its exact fast paths for multiples of 90°.
    static func rotate(_ src: UnsafePointer<Float>, _ d: ImageDims, angle: Double, interpolation: ImageInterpolation,
                       fill: [Float]?, _ dst: UnsafeMutablePointer<Float>) {
        var a = angle.truncatingRemainder(dividingBy: 360)
        if a < 0 { a += 360 }  // Python's angle % 360
        if a == 0 { dst.update(from: src, count: d.count); return }
        if a == 180 { ImageKernels.rot90(src, d, k: 2, dst); return }
        if d.h == d.w && a == 90 { ImageKernels.rot90(src, d, k: 1, dst); return }
        if d.h == d.w && a == 270 { ImageKernels.rot90(src, d, k: 3, dst); return }
        // The opposite sign of affine's angle, as torchvision.
        let m = ImageKernels.inverseAffineMatrix(angle: -a, translate: (0, 0), scale: 1, shear: (0, 0))
        ImageKernels.gridSample(src, d, matrix: m, interpolation: interpolation, fill: fill, dst)
    }

    /// `F.affine` about the centre.
    static func affine(_ src: UnsafePointer<Float>, _ d: ImageDims, _ o: AffineOptions, _ dst: UnsafeMutablePointer<Float>) {
        let m = ImageKernels.inverseAffineMatrix(angle: o.angle, translate: (o.translateX, o.translateY), scale: o.scale,
                                                 shear: (o.shearX, o.shearY))
        ImageKernels.gridSample(src, d, matrix: m, interpolation: o.interpolation, fill: o.fill, dst)
    }

    /// Runs this transform on one image of extents `d` (validated, giving `out`), drawing random
    /// parameters from `rng`. Writes every element of `dst`, which does not overlap `src`.
    func run(_ src: UnsafePointer<Float>, _ d: ImageDims, _ out: ImageDims, _ dst: UnsafeMutablePointer<Float>,
             _ rng: inout RandomGenerator, _ s: ImageScratch) {
        typealias K = ImageKernels
        switch self {
        case let .normalize(mean, std):
            K.normalize(src, d, mean: mean, std: std, dst)
        case .resize:
            K.resize(src, d, top: 0, left: 0, region: (d.h, d.w), out, dst, s)
        case let .pad(p, fill, mode):
            K.window(src, d, top: -p.top, left: -p.left, out, mode: mode, fill: fill, dst, s)
        case let .centerCrop(h, w):
            // torchvision zero-pads to at least the crop ((h - H) // 2 on the top …), then crops at
            // round((H' - h) / 2) of the padded image.
            let padTop = h > d.h ? (h - d.h) / 2 : 0, padLeft = w > d.w ? (w - d.w) / 2 : 0
            let top = roundedInt(Double(Swift.max(d.h, h) - h) / 2) ?? 0
            let left = roundedInt(Double(Swift.max(d.w, w) - w) / 2) ?? 0
            K.window(src, d, top: top - padTop, left: left - padLeft, out, mode: .constant, fill: [0], dst, s)
        case let .grayscale(k):
            K.grayscale(src, d, channels: k, dst)
        case let .crop(top, left, _, _):
            K.window(src, d, top: top, left: left, out, mode: .constant, fill: [0], dst, s)
        case .horizontalFlip:
            K.horizontalFlip(src, d, dst)
        case .verticalFlip:
            K.verticalFlip(src, d, dst)
        case let .resizedCrop(top, left, h, w, _, _):
            if top >= 0, left >= 0, top + h <= d.h, left + w <= d.w {
                K.resize(src, d, top: top, left: left, region: (h, w), out, dst, s)
            } else {
                // Outside the image the crop reads zeros: crop into the staging image first.
                let region = ImageDims(c: d.c, h: h, w: w)
                K.window(src, d, top: top, left: left, region, mode: .constant, fill: [0], s.images.2, s)
                K.resize(s.images.2, region, top: 0, left: 0, region: (h, w), out, dst, s)
            }
        case let .rotate(angle, interpolation, fill):
            ImageTransform.rotate(src, d, angle: angle, interpolation: interpolation, fill: fill, dst)
        case let .affine(o):
            ImageTransform.affine(src, d, o, dst)
        case let .adjustBrightness(f):
            K.brightness(src, d, factor: f, dst)
        case let .adjustContrast(f):
            K.contrast(src, d, factor: f, dst)
        case let .adjustSaturation(f):
            K.saturation(src, d, factor: f, dst)
        case let .randomHorizontalFlip(p):
            // torchvision skips when rand >= p.
            if rng.uniformDouble(0, 1) < p { K.horizontalFlip(src, d, dst) } else { dst.update(from: src, count: d.count) }
        case let .randomVerticalFlip(p):
            if rng.uniformDouble(0, 1) < p { K.verticalFlip(src, d, dst) } else { dst.update(from: src, count: d.count) }
        case let .randomCrop(o):
            let (p, top, left) = ImageTransform.sampleRandomCrop(o, d, &rng)
            K.window(src, d, top: top - p.top, left: left - p.left, out, mode: o.paddingMode, fill: o.fill, dst, s)
        case let .randomResizedCrop(o):
            let r = ImageTransform.sampleResizedCrop(o, d, &rng)
            K.resize(src, d, top: r.top, left: r.left, region: (r.height, r.width), out, dst, s)
        case let .randomRotation(degrees, interpolation, fill):
            let angle = rng.uniformDouble(degrees.lower, degrees.upper)
            ImageTransform.rotate(src, d, angle: angle, interpolation: interpolation, fill: fill, dst)
        case let .randomAffine(o):
            ImageTransform.affine(src, d, ImageTransform.sampleAffine(o, d, &rng), dst)
        case let .colorJitter(o):
            ImageTransform.jitter(src, d, ImageTransform.sampleColorJitter(o, &rng), dst, s)
        }
    }

    /// The adjustments `sampleColorJitter` chose, in its order, ping-ponging between `dst` and the
    /// staging image so that the last one writes `dst`.
    static func jitter(_ src: UnsafePointer<Float>, _ d: ImageDims,
                       _ j: (order: (Int, Int, Int), brightness: Double?, contrast: Double?, saturation: Double?),
                       _ dst: UnsafeMutablePointer<Float>, _ s: ImageScratch) {
        func factor(_ id: Int) -> Double? { id == 0 ? j.brightness : (id == 1 ? j.contrast : j.saturation) }
        let f = (factor(j.order.0), factor(j.order.1), factor(j.order.2))
        let active = (f.0 == nil ? 0 : 1) + (f.1 == nil ? 0 : 1) + (f.2 == nil ? 0 : 1)
        guard active > 0 else {
            dst.update(from: src, count: d.count)
            return
        }
        var current = src
        var target = active % 2 == 1 ? dst : s.images.2
        func adjust(_ id: Int, _ factor: Double?) {
            guard let factor else { return }
            switch id {
            case 0: ImageKernels.brightness(current, d, factor: factor, target)
            case 1: ImageKernels.contrast(current, d, factor: factor, target)
            default: ImageKernels.saturation(current, d, factor: factor, target)
            }
            current = UnsafePointer(target)
            target = target == dst ? s.images.2 : dst
        }
        adjust(j.order.0, f.0)
        adjust(j.order.1, f.1)
        adjust(j.order.2, f.2)
    }
}
