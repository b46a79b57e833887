import EmberCore

// The JSON form of a transform: `{"op": name, ...}` with torchvision's argument names
// (docs/image-transforms.md). Readers accept torchvision's shorthands (a single number for a size,
// padding, degrees or jitter amount); writers give one canonical form.

private func numbers(_ values: [Float]) -> JSONValue { .array(values.map { .number(Double($0)) }) }

/// `fill`: one number when it is a single value, else an array.
private func fillJSON(_ fill: [Float]) -> JSONValue { fill.count == 1 ? .number(Double(fill[0])) : numbers(fill) }

extension ImageTransform {
    /// The JSON form, e.g. `{"op": "random_crop", "size": [32, 32], "padding": [4, 4, 4, 4], ...}`.
    public var json: JSONValue {
        var m: [(String, JSONValue)] = [("op", .string(name))]
        func add(_ key: String, _ value: JSONValue) { m.append((key, value)) }
        func size(_ h: Int, _ w: Int) -> JSONValue { .array([.number(Double(h)), .number(Double(w))]) }
        func padding(_ p: ImagePadding) -> JSONValue { .array(p.array.map { .number(Double($0)) }) }
        switch self {
        case let .normalize(mean, std):
            add("mean", numbers(mean))
            add("std", numbers(std))
        case let .resize(.size(h, w)):
            add("size", size(h, w))
        case let .resize(.shorterSide(s)):
            add("size", .number(Double(s)))
        case let .pad(p, fill, mode):
            add("padding", padding(p))
            add("fill", fillJSON(fill))
            add("padding_mode", .string(mode.rawValue))
        case let .centerCrop(h, w):
            add("size", size(h, w))
        case let .grayscale(k):
            add("num_output_channels", .number(Double(k)))
        case let .crop(top, left, h, w):
            add("top", .number(Double(top)))
            add("left", .number(Double(left)))
            add("height", .number(Double(h)))
            add("width", .number(Double(w)))
        case .horizontalFlip, .verticalFlip:
            break
        case let .resizedCrop(top, left, h, w, oh, ow):
            add("top", .number(Double(top)))
            add("left", .number(Double(left)))
            add("height", .number(Double(h)))
            add("width", .number(Double(w)))
            add("size", size(oh, ow))
        case let .rotate(angle, interpolation, fill):
            add("angle", .number(angle))
            add("interpolation", .string(interpolation.rawValue))
            add("fill", fill.map(fillJSON) ?? .null)
        case let .affine(o):
            add("angle", .number(o.angle))
            add("translate", .array([.number(o.translateX), .number(o.translateY)]))
            add("scale", .number(o.scale))
            add("shear", .array([.number(o.shearX), .number(o.shearY)]))
            add("interpolation", .string(o.interpolation.rawValue))
            add("fill", o.fill.map(fillJSON) ?? .null)
        case let .adjustBrightness(f):
            add("brightness_factor", .number(f))
        case let .adjustContrast(f):
            add("contrast_factor", .number(f))
        case let .adjustSaturation(f):
            add("saturation_factor", .number(f))
        case let .randomHorizontalFlip(p), let .randomVerticalFlip(p):
            add("p", .number(p))
        case let .randomCrop(o):
            add("size", size(o.height, o.width))
            add("padding", padding(o.padding))
            add("pad_if_needed", .bool(o.padIfNeeded))
            add("fill", fillJSON(o.fill))
            add("padding_mode", .string(o.paddingMode.rawValue))
        case let .randomResizedCrop(o):
            add("size", size(o.height, o.width))
            add("scale", o.scale.json)
            add("ratio", o.ratio.json)
        case let .randomRotation(degrees, interpolation, fill):
            add("degrees", degrees.json)
            add("interpolation", .string(interpolation.rawValue))
            add("fill", fillJSON(fill))
        case let .randomAffine(o):
            add("degrees", o.degrees.json)
            add("translate", o.translate.map { .array([.number($0.x), .number($0.y)]) } ?? .null)
            add("scale", o.scale?.json ?? .null)
            if let y = o.shearY {
                let x = o.shearX ?? ImageRange(0, 0)
                add("shear", .array([.number(x.lower), .number(x.upper), .number(y.lower), .number(y.upper)]))
            } else {
                add("shear", o.shearX?.json ?? .null)
            }
            add("interpolation", .string(o.interpolation.rawValue))
            add("fill", fillJSON(o.fill))
        case let .colorJitter(o):
            add("brightness", o.brightness?.json ?? .null)
            add("contrast", o.contrast?.json ?? .null)
            add("saturation", o.saturation?.json ?? .null)
        }
        return .object(m)
    }

    /// Parses the JSON form of one transform and checks its arguments.
    /// - Parameter index: the position in a pipeline, named in errors.
    /// - Throws: `EmberError.invalidArgument` naming the transform, the position and the field
    ///   (unknown names and fields, wrong types, values out of range).
    public init(json: JSONValue, index: Int? = nil) throws {
        guard case let .object(members) = json else {
            throw EmberError(.invalidArgument, "[image_transforms] " + (index.map { ErrorIndex.describe(("transform", $0)) + ": " } ?? "") +
                             "a transform must be an object {\"op\": ...}, got \(json.text)",
                             detail: EmberError.Detail(op: "image_transforms", index: index))
        }
        guard let op = json["op"]?.stringValue else {
            throw EmberError(.invalidArgument, "[image_transforms] " + (index.map { ErrorIndex.describe(("transform", $0)) + ": " } ?? "") +
                             "lacks \"op\", one of \(ImageTransform.names.joined(separator: ", "))",
                             detail: EmberError.Detail(op: "image_transforms", argument: "op", index: index))
        }
        let r = TransformReader(members: members, errors: TransformErrors(op: op, index: index))
        switch op {
        case "normalize":
            self = .normalize(mean: try r.floats("mean"), std: try r.floats("std"))
        case "resize":
            let s = try r.size("size")
            self = .resize(s.width.map { .size(height: s.height, width: $0) } ?? .shorterSide(s.height))
        case "pad":
            self = .pad(try r.padding("padding"), fill: try r.floats("fill", default: [0]),
                        mode: try r.choice("padding_mode", default: .constant))
        case "center_crop":
            let s = try r.size("size")
            self = .centerCrop(height: s.height, width: s.width ?? s.height)
        case "grayscale":
            self = .grayscale(outputChannels: try r.int("num_output_channels", default: 1))
        case "crop":
            self = .crop(top: try r.int("top"), left: try r.int("left"), height: try r.int("height"), width: try r.int("width"))
        case "hflip":
            self = .horizontalFlip
        case "vflip":
            self = .verticalFlip
        case "resized_crop":
            let s = try r.size("size")
            self = .resizedCrop(top: try r.int("top"), left: try r.int("left"), height: try r.int("height"),
                                width: try r.int("width"), outputHeight: s.height, outputWidth: s.width ?? s.height)
        case "rotate":
            self = .rotate(angle: try r.double("angle"), interpolation: try r.choice("interpolation", default: .nearest),
                           fill: try r.optionalFloats("fill"))
        case "affine":
            let t = try r.doubles("translate", default: [0, 0])
            guard t.count == 2 else { throw r.errors.invalid("translate", "must be [x, y], got \(t.count) values") }
            var shear = try r.doubles("shear", default: [0, 0])
            if shear.count == 1 { shear.append(0) }  // torchvision: a number is the x shear
            guard shear.count == 2 else { throw r.errors.invalid("shear", "must be a number or [x, y], got \(shear.count) values") }
            self = .affine(AffineOptions(angle: try r.double("angle"), translateX: t[0], translateY: t[1],
                                         scale: try r.double("scale", default: 1), shearX: shear[0], shearY: shear[1],
                                         interpolation: try r.choice("interpolation", default: .nearest),
                                         fill: try r.optionalFloats("fill")))
        case "adjust_brightness":
            self = .adjustBrightness(try r.double("brightness_factor"))
        case "adjust_contrast":
            self = .adjustContrast(try r.double("contrast_factor"))
        case "adjust_saturation":
            self = .adjustSaturation(try r.double("saturation_factor"))
        case "random_horizontal_flip":
            self = .randomHorizontalFlip(p: try r.double("p", default: 0.5))
        case "random_vertical_flip":
            self = .randomVerticalFlip(p: try r.double("p", default: 0.5))
        case "random_crop":
            let s = try r.size("size")
            self = .randomCrop(RandomCropOptions(
                height: s.height, width: s.width ?? s.height, padding: try r.padding("padding", default: .zero),
                padIfNeeded: try r.bool("pad_if_needed", default: false), fill: try r.floats("fill", default: [0]),
                paddingMode: try r.choice("padding_mode", default: .constant)))
        case "random_resized_crop":
            let s = try r.size("size")
            if try r.bool("antialias", default: false) {
                throw r.errors.invalid("antialias", "true is not supported: Ember resizes without antialiasing (antialias = false)")
            }
            guard try r.choice("interpolation", default: ImageInterpolation.bilinear) == .bilinear else {
                throw r.errors.invalid("interpolation", "must be \"bilinear\" (the only resize Ember has)")
            }
            self = .randomResizedCrop(RandomResizedCropOptions(
                height: s.height, width: s.width ?? s.height, scale: try r.range("scale", default: ImageRange(0.08, 1)),
                ratio: try r.range("ratio", default: ImageRange(3.0 / 4.0, 4.0 / 3.0))))
        case "random_rotation":
            self = .randomRotation(degrees: try r.degrees("degrees"), interpolation: try r.choice("interpolation", default: .nearest),
                                   fill: try r.floats("fill", default: [0]))
        case "random_affine":
            var shearX: ImageRange?, shearY: ImageRange?
            if let s = try r.optionalDoubles("shear") {
                switch s.count {
                case 1: shearX = try r.symmetric("shear", s[0])
                case 2: shearX = ImageRange(s[0], s[1])
                case 4: (shearX, shearY) = (ImageRange(s[0], s[1]), ImageRange(s[2], s[3]))
                default: throw r.errors.invalid("shear", "must be a number, [min, max] or [x min, x max, y min, y max], got \(s.count) values")
                }
            }
            var translate: (x: Double, y: Double)?
            if let t = try r.optionalDoubles("translate") {
                guard t.count == 2 else { throw r.errors.invalid("translate", "must be [x fraction, y fraction], got \(t.count) values") }
                translate = (t[0], t[1])
            }
            self = .randomAffine(RandomAffineOptions(
                degrees: try r.degrees("degrees"), translate: translate, scale: try r.optionalRange("scale"),
                shearX: shearX, shearY: shearY, interpolation: try r.choice("interpolation", default: .nearest),
                fill: try r.floats("fill", default: [0])))
        case "color_jitter":
            if let hue = r.value("hue"), hue != .null, hue != .number(0) {
                throw r.errors.invalid("hue", "is not supported (brightness, contrast and saturation are)")
            }
            self = .colorJitter(ColorJitterOptions(brightness: try r.jitter("brightness"), contrast: try r.jitter("contrast"),
                                                   saturation: try r.jitter("saturation")))
        default:
            throw EmberError(.invalidArgument, "[image_transforms] " + (index.map { ErrorIndex.describe(("transform", $0)) + ": " } ?? "") +
                             "unknown op '\(op)'; expected one of \(ImageTransform.names.joined(separator: ", "))",
                             detail: EmberError.Detail(op: "image_transforms", argument: "op", index: index, got: op))
        }
        try r.checkUnread(allowed: ImageTransform.fields[op] ?? [])
        try validate(index: index)
    }

    /// The fields each op reads besides `op` (unknown fields are errors, so typos do not pass silently).
    static let fields: [String: Set<String>] = [
        "normalize": ["mean", "std"], "resize": ["size"], "pad": ["padding", "fill", "padding_mode"],
        "center_crop": ["size"], "grayscale": ["num_output_channels"], "crop": ["top", "left", "height", "width"],
        "hflip": [], "vflip": [], "resized_crop": ["top", "left", "height", "width", "size"],
        "rotate": ["angle", "interpolation", "fill"],
        "affine": ["angle", "translate", "scale", "shear", "interpolation", "fill"],
        "adjust_brightness": ["brightness_factor"], "adjust_contrast": ["contrast_factor"],
        "adjust_saturation": ["saturation_factor"], "random_horizontal_flip": ["p"], "random_vertical_flip": ["p"],
        "random_crop": ["size", "padding", "pad_if_needed", "fill", "padding_mode"],
        "random_resized_crop": ["size", "scale", "ratio", "antialias", "interpolation"],
        "random_rotation": ["degrees", "interpolation", "fill"],
        "random_affine": ["degrees", "translate", "scale", "shear", "interpolation", "fill"],
        "color_jitter": ["brightness", "contrast", "saturation", "hue"],
    ]
}

/// Typed reads of one transform's fields, with errors naming the transform and the field.
private struct TransformReader {
    let members: [(String, JSONValue)]
    let errors: TransformErrors

    func value(_ key: String) -> JSONValue? { members.first { $0.0 == key }?.1 }

    /// The field, or nil when absent or null.
    func present(_ key: String) -> JSONValue? {
        guard let v = value(key), v != .null else { return nil }
        return v
    }

    func checkUnread(allowed: Set<String>) throws {
        for (key, _) in members where key != "op" && !allowed.contains(key) {
            throw errors.invalid(key, "is not a field of \(errors.op); expected \(allowed.sorted().joined(separator: ", "))")
        }
    }

    func double(_ key: String, default fallback: Double? = nil) throws -> Double {
        guard let v = present(key) else {
            if let fallback { return fallback }
            throw errors.invalid(key, "is required (a number)")
        }
        guard let d = v.numberValue else { throw errors.invalid(key, "must be a number, got \(v.text)") }
        return d
    }

    func int(_ key: String, default fallback: Int? = nil) throws -> Int {
        guard let v = present(key) else {
            if let fallback { return fallback }
            throw errors.invalid(key, "is required (an integer)")
        }
        guard let i = v.intValue, abs(i) < 1 << 40 else { throw errors.invalid(key, "must be an integer, got \(v.text)") }
        return i
    }

    func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let v = present(key) else { return fallback }
        guard let b = v.boolValue else { throw errors.invalid(key, "must be true or false, got \(v.text)") }
        return b
    }

    /// A number or an array of numbers, as Doubles; nil when absent or null.
    func optionalDoubles(_ key: String) throws -> [Double]? {
        guard let v = present(key) else { return nil }
        if let d = v.numberValue { return [d] }
        guard let a = v.arrayValue else { throw errors.invalid(key, "must be a number or an array of numbers, got \(v.text)") }
        return try a.map {
            guard let d = $0.numberValue else { throw errors.invalid(key, "must hold numbers only, got \(v.text)") }
            return d
        }
    }

    func doubles(_ key: String, default fallback: [Double]? = nil) throws -> [Double] {
        if let d = try optionalDoubles(key) { return d }
        if let fallback { return fallback }
        throw errors.invalid(key, "is required (a number or an array of numbers)")
    }

    func optionalFloats(_ key: String) throws -> [Float]? { try optionalDoubles(key).map { $0.map { Float($0) } } }

    func floats(_ key: String, default fallback: [Float]? = nil) throws -> [Float] {
        try doubles(key, default: fallback.map { $0.map(Double.init) }).map { Float($0) }
    }

    func integers(_ key: String) throws -> [Int]? {
        guard let d = try optionalDoubles(key) else { return nil }
        return try d.map {
            guard $0 == $0.rounded(), abs($0) < 1e12 else { throw errors.invalid(key, "must hold integers, got \(value(key)?.text ?? "")") }
            return Int($0)
        }
    }

    /// torchvision's size: a number or `[s]` (`width` nil: the shorter side for resize, a square
    /// elsewhere) or `[h, w]`.
    func size(_ key: String) throws -> (height: Int, width: Int?) {
        guard let s = try integers(key) else { throw errors.invalid(key, "is required (an integer or [height, width])") }
        switch s.count {
        case 1: return (s[0], nil)
        case 2: return (s[0], s[1])
        default: throw errors.invalid(key, "must be an integer or [height, width], got \(s.count) values")
        }
    }

    /// torchvision's padding: a number (all sides), `[left/right, top/bottom]` or
    /// `[left, top, right, bottom]`.
    func padding(_ key: String, default fallback: ImagePadding? = nil) throws -> ImagePadding {
        guard let p = try integers(key) else {
            if let fallback { return fallback }
            throw errors.invalid(key, "is required (an integer or [left, top, right, bottom])")
        }
        switch p.count {
        case 1: return ImagePadding(p[0])
        case 2: return ImagePadding(left: p[0], top: p[1], right: p[0], bottom: p[1])
        case 4: return ImagePadding(left: p[0], top: p[1], right: p[2], bottom: p[3])
        default: throw errors.invalid(key, "must be an integer, [horizontal, vertical] or [left, top, right, bottom], got \(p.count) values")
        }
    }

    func choice<T: RawRepresentable & CaseIterable>(_ key: String, default fallback: T) throws -> T where T.RawValue == String {
        guard let v = present(key) else { return fallback }
        guard let s = v.stringValue, let c = T(rawValue: s) else {
            throw errors.invalid(key, "must be one of \(T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")), got \(v.text)")
        }
        return c
    }

    func optionalRange(_ key: String) throws -> ImageRange? {
        guard let d = try optionalDoubles(key) else { return nil }
        guard d.count == 2 else { throw errors.invalid(key, "must be [min, max], got \(d.count) values") }
        return ImageRange(d[0], d[1])
    }

    func range(_ key: String, default fallback: ImageRange) throws -> ImageRange { try optionalRange(key) ?? fallback }

    /// `[-v, v]` for torchvision's single non-negative number.
    func symmetric(_ key: String, _ v: Double) throws -> ImageRange {
        guard v >= 0 else { throw errors.invalid(key, "as a single number must be >= 0, got \(v)") }
        return ImageRange(-v, v)
    }

    /// `degrees`: a number `d` (the range [-d, d]) or `[min, max]`.
    func degrees(_ key: String) throws -> ImageRange {
        let d = try doubles(key)
        switch d.count {
        case 1: return try symmetric(key, d[0])
        case 2: return ImageRange(d[0], d[1])
        default: throw errors.invalid(key, "must be a number or [min, max], got \(d.count) values")
        }
    }

    /// A jitter amount: a number `v` (`[max(0, 1 - v), 1 + v]`) or `[min, max]`; nil when absent.
    func jitter(_ key: String) throws -> ImageRange? {
        guard let d = try optionalDoubles(key) else { return nil }
        switch d.count {
        case 1:
            guard d[0] >= 0 else { throw errors.invalid(key, "as a single number must be >= 0, got \(d[0])") }
            return ColorJitterOptions.range(around: d[0])
        case 2: return ImageRange(d[0], d[1])
        default: throw errors.invalid(key, "must be a number or [min, max], got \(d.count) values")
        }
    }
}
