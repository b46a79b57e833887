import EmberCore

/// The extents `[C, H, W]` of one image.
struct ImageDims: Equatable, Sendable {
    var c: Int
    var h: Int
    var w: Int

    var plane: Int { h * w }
    var count: Int { c * h * w }
    var shape: [Int] { [c, h, w] }
}

/// Errors of one transform: `[name] transform i: argument: what` (the position when the transform
/// is part of a pipeline), with the transform, argument and position in the structured detail.
struct TransformErrors {
    let op: String
    let index: Int?

    private var prefix: String { "[\(op)] " + (index.map { ErrorIndex.describe(("transform", $0)) + ": " } ?? "") }

    func invalid(_ argument: String, _ what: String) -> EmberError {
        EmberError(.invalidArgument, prefix + "\(argument) \(what)",
                   detail: EmberError.Detail(op: op, argument: argument, index: index))
    }

    func shape(_ argument: String, _ what: String, expected: String, got: String) -> EmberError {
        EmberError(.shapeMismatch, prefix + "\(argument) \(what)",
                   detail: EmberError.Detail(op: op, argument: argument, index: index, expected: expected, got: got))
    }
}

private func list<T>(_ values: [T]) -> String { "[" + values.map { "\($0)" }.joined(separator: ", ") + "]" }

extension ImageTransform {
    /// Checks the arguments that do not depend on the image (signs, ranges, probabilities).
    /// - Parameter index: the position in a pipeline, named in the message.
    /// - Throws: `EmberError.invalidArgument` naming the transform and the argument.
    public func validate(index: Int? = nil) throws {
        let e = TransformErrors(op: name, index: index)
        func positive(_ argument: String, _ v: Int) throws {
            guard v >= 1 else { throw e.invalid(argument, "must be >= 1, got \(v)") }
        }
        func finite(_ argument: String, _ v: Double) throws {
            guard v.isFinite else { throw e.invalid(argument, "must be finite, got \(v)") }
        }
        func factor(_ argument: String, _ v: Double) throws {
            guard v.isFinite, v >= 0 else { throw e.invalid(argument, "must be a finite number >= 0, got \(v)") }
        }
        func fillValues(_ fill: [Float], _ argument: String = "fill") throws {
            guard !fill.isEmpty else { throw e.invalid(argument, "must hold one value or one per channel, got []") }
            guard fill.allSatisfy({ $0.isFinite }) else { throw e.invalid(argument, "must be finite, got \(list(fill))") }
        }
        func padding(_ p: ImagePadding, _ argument: String = "padding") throws {
            guard p.left >= 0, p.top >= 0, p.right >= 0, p.bottom >= 0 else {
                throw e.invalid(argument, "must be >= 0 on every side, got \(list(p.array)) ([left, top, right, bottom])")
            }
        }
        func range(_ argument: String, _ r: ImageRange, minimum: Double? = nil, positive: Bool = false) throws {
            guard r.lower.isFinite, r.upper.isFinite else {
                throw e.invalid(argument, "must be finite, got [\(r.lower), \(r.upper)]")
            }
            guard r.lower <= r.upper else {
                throw e.invalid(argument, "must be [min, max] with min <= max, got [\(r.lower), \(r.upper)]")
            }
            if let minimum, r.lower < minimum {
                throw e.invalid(argument, "must be >= \(minimum), got [\(r.lower), \(r.upper)]")
            }
            if positive, !(r.lower > 0) {
                throw e.invalid(argument, "must be > 0, got [\(r.lower), \(r.upper)]")
            }
        }
        func probability(_ p: Double) throws {
            guard p >= 0, p <= 1 else { throw e.invalid("p", "must be a probability in [0, 1], got \(p)") }
        }

        switch self {
        case let .normalize(mean, std):
            guard !mean.isEmpty else { throw e.invalid("mean", "must hold one value or one per channel, got []") }
            guard !std.isEmpty else { throw e.invalid("std", "must hold one value or one per channel, got []") }
            guard mean.allSatisfy({ $0.isFinite }) else { throw e.invalid("mean", "must be finite, got \(list(mean))") }
            guard std.allSatisfy({ $0.isFinite && $0 != 0 }) else {
                throw e.invalid("std", "must be finite and non-zero (it divides), got \(list(std))")
            }
        case let .resize(target):
            switch target {
            case let .size(h, w): try positive("size", min(h, w))
            case let .shorterSide(s): try positive("size", s)
            }
        case let .pad(p, fill, _):
            try padding(p)
            try fillValues(fill)
        case let .centerCrop(h, w):
            try positive("size", min(h, w))
        case let .grayscale(k):
            guard k == 1 || k == 3 else { throw e.invalid("num_output_channels", "must be 1 or 3, got \(k)") }
        case let .crop(_, _, h, w):
            try positive("height", h)
            try positive("width", w)
        case .horizontalFlip, .verticalFlip:
            break
        case let .resizedCrop(_, _, h, w, oh, ow):
            try positive("height", h)
            try positive("width", w)
            try positive("size", min(oh, ow))
        case let .rotate(angle, _, fill):
            try finite("angle", angle)
            if let fill { try fillValues(fill) }
        case let .affine(o):
            try finite("angle", o.angle)
            try finite("translate", o.translateX)
            try finite("translate", o.translateY)
            guard o.scale.isFinite, o.scale > 0 else { throw e.invalid("scale", "must be a finite number > 0, got \(o.scale)") }
            try finite("shear", o.shearX)
            try finite("shear", o.shearY)
            // tan and 1/cos of the shear angles: ±90° (mod 180) makes the matrix infinite.
            for s in [o.shearX, o.shearY] where abs(abs(s.truncatingRemainder(dividingBy: 180)) - 90) < 1e-3 {
                throw e.invalid("shear", "must not be ±90 degrees (the shear would be infinite), got \(s)")
            }
            if let fill = o.fill { try fillValues(fill) }
        case let .adjustBrightness(f): try factor("brightness_factor", f)
        case let .adjustContrast(f): try factor("contrast_factor", f)
        case let .adjustSaturation(f): try factor("saturation_factor", f)
        case let .randomHorizontalFlip(p), let .randomVerticalFlip(p):
            try probability(p)
        case let .randomCrop(o):
            try positive("size", min(o.height, o.width))
            try padding(o.padding)
            try fillValues(o.fill)
        case let .randomResizedCrop(o):
            try positive("size", min(o.height, o.width))
            try range("scale", o.scale, minimum: 0)
            guard o.scale.upper > 0 else { throw e.invalid("scale", "must have max > 0, got [\(o.scale.lower), \(o.scale.upper)]") }
            try range("ratio", o.ratio, positive: true)
        case let .randomRotation(degrees, _, fill):
            try range("degrees", degrees)
            try fillValues(fill)
        case let .randomAffine(o):
            try range("degrees", o.degrees)
            if let t = o.translateFractions {
                guard t.count == 2, t.allSatisfy({ $0 >= 0 && $0 <= 1 }) else {
                    throw e.invalid("translate", "must be two fractions in [0, 1], got \(list(t))")
                }
            }
            if let s = o.scale { try range("scale", s, positive: true) }
            for (argument, r) in [("shear", o.shearX), ("shear", o.shearY)] {
                guard let r else { continue }
                try range(argument, r)
                guard r.lower > -89.999, r.upper < 89.999 else {
                    throw e.invalid(argument, "must lie within (-90, 90) degrees, got [\(r.lower), \(r.upper)]")
                }
            }
            try fillValues(o.fill)
        case let .colorJitter(o):
            if let r = o.brightness { try range("brightness", r, minimum: 0) }
            if let r = o.contrast { try range("contrast", r, minimum: 0) }
            if let r = o.saturation { try range("saturation", r, minimum: 0) }
        }
    }

    /// The padding `random_crop` applies to an image of `dims`: its `padding`, plus the missing
    /// amount on both sides when `pad_if_needed` (torchvision's `RandomCrop.make_params`).
    static func randomCropPadding(_ o: RandomCropOptions, _ dims: ImageDims) -> ImagePadding {
        var p = o.padding
        if o.padIfNeeded {
            let ph = dims.h + p.top + p.bottom, pw = dims.w + p.left + p.right
            if ph < o.height {
                p.top += o.height - ph
                p.bottom += o.height - ph
            }
            if pw < o.width {
                p.left += o.width - pw
                p.right += o.width - pw
            }
        }
        return p
    }

    /// The output extents for an input of `dims`, validating everything that depends on them.
    func outputDims(_ dims: ImageDims, index: Int? = nil) throws -> ImageDims {
        try validate(index: index)
        let e = TransformErrors(op: name, index: index)
        let image = shapeString(dims.shape)
        func channels(_ argument: String, _ values: [Float]) throws {
            guard values.count == 1 || values.count == dims.c else {
                throw e.shape(argument, "has \(values.count) values; expected 1 or one per channel (\(dims.c)) for an image \(image)",
                              expected: "1 or \(dims.c) values", got: "\(values.count)")
            }
        }
        func colour() throws {
            guard dims.c == 1 || dims.c == 3 else {
                throw e.shape("image", "must have 1 or 3 channels, got \(dims.c) (image \(image))", expected: "1 or 3 channels", got: "\(dims.c)")
            }
        }
        func padLimits(_ p: ImagePadding, _ mode: ImagePaddingMode, _ argument: String) throws {
            // Reflection reads inside the image: at most h - 1 (reflect) or h (symmetric) rows.
            let limitH = mode == .reflect ? dims.h - 1 : dims.h
            let limitW = mode == .reflect ? dims.w - 1 : dims.w
            guard mode == .reflect || mode == .symmetric else { return }
            guard max(p.top, p.bottom) <= limitH, max(p.left, p.right) <= limitW else {
                let rule = mode == .reflect ? "smaller than" : "at most"
                throw e.shape(argument, "\(list(p.array)) in \(mode.rawValue) mode must be \(rule) the image's extent (image \(image))",
                              expected: "\(rule) [\(dims.h), \(dims.w)]", got: list(p.array))
            }
        }
        // Scratch images and index tables are sized from these extents: keep them allocatable.
        func limit(_ c: Int, _ h: Int, _ w: Int) throws {
            let (ch, o1) = c.multipliedReportingOverflow(by: h)
            let (n, o2) = ch.multipliedReportingOverflow(by: w)
            guard !o1, !o2, n <= Int(Int32.max) else {
                let shape = shapeString([c, h, w])
                throw EmberError(.overflow, "[\(name)] " + (index.map { ErrorIndex.describe(("transform", $0)) + ": " } ?? "") +
                                 "an image of \(shape) exceeds 2^31 elements",
                                 detail: EmberError.Detail(op: name, index: index, expected: "at most 2^31 - 1 elements", got: shape))
            }
        }
        func sized(_ c: Int, _ h: Int, _ w: Int) throws -> ImageDims {
            guard h >= 1, w >= 1 else {
                throw e.shape("size", "would make the image \(image) empty ([\(c), \(h), \(w)])", expected: "at least 1 × 1", got: "\(h) × \(w)")
            }
            try limit(c, h, w)
            return ImageDims(c: c, h: h, w: w)
        }

        switch self {
        case let .normalize(mean, std):
            try channels("mean", mean)
            try channels("std", std)
            return dims
        case let .resize(.size(h, w)):
            return try sized(dims.c, h, w)
        case let .resize(.shorterSide(s)):
            let short = min(dims.h, dims.w), long = max(dims.h, dims.w)
            guard short >= 1 else { return try sized(dims.c, 0, 0) }
            let newLong = Double(s) * Double(long) / Double(short)
            guard newLong < 1e9 else { throw e.invalid("size", "\(s) makes the longer side too large for an image \(image)") }
            let l = Int(newLong)
            return dims.w <= dims.h ? try sized(dims.c, l, s) : try sized(dims.c, s, l)
        case let .pad(p, fill, mode):
            try channels("fill", fill)
            try padLimits(p, mode, "padding")
            return try sized(dims.c, dims.h + p.top + p.bottom, dims.w + p.left + p.right)
        case let .centerCrop(h, w):
            return try sized(dims.c, h, w)
        case let .grayscale(k):
            guard dims.c == 1 || dims.c == 3 else {
                throw e.shape("image", "must have 1 or 3 (RGB) channels, got \(dims.c) (image \(image))", expected: "1 or 3 channels", got: "\(dims.c)")
            }
            return try sized(k, dims.h, dims.w)
        case let .crop(_, _, h, w):
            return try sized(dims.c, h, w)
        case .horizontalFlip, .verticalFlip:
            return dims
        case let .resizedCrop(_, _, h, w, oh, ow):
            try limit(dims.c, h, w)  // a crop reaching outside the image is staged
            return try sized(dims.c, oh, ow)
        case let .rotate(_, _, fill):
            if let fill { try channels("fill", fill) }
            return dims
        case let .affine(o):
            if let fill = o.fill { try channels("fill", fill) }
            return dims
        case .adjustBrightness, .adjustContrast, .adjustSaturation, .colorJitter:
            try colour()
            return dims
        case .randomHorizontalFlip, .randomVerticalFlip:
            return dims
        case let .randomCrop(o):
            try channels("fill", o.fill)
            let p = ImageTransform.randomCropPadding(o, dims)
            try padLimits(p, o.paddingMode, "padding")
            let ph = dims.h + p.top + p.bottom, pw = dims.w + p.left + p.right
            guard ph >= o.height, pw >= o.width else {
                throw e.shape("size", "[\(o.height), \(o.width)] is larger than the padded image [\(ph), \(pw)] (image \(image)); " +
                              "pad it (padding, pad_if_needed) or crop less",
                              expected: "at most [\(ph), \(pw)]", got: "[\(o.height), \(o.width)]")
            }
            return try sized(dims.c, o.height, o.width)
        case let .randomResizedCrop(o):
            return try sized(dims.c, o.height, o.width)
        case let .randomRotation(_, _, fill):
            try channels("fill", fill)
            return dims
        case let .randomAffine(o):
            try channels("fill", o.fill)
            return dims
        }
    }
}
