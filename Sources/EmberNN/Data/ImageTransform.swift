import EmberCore

/// Interpolation of the geometric transforms that sample between pixels (`rotate`, `affine` and
/// their random versions), as torchvision's `InterpolationMode` (only the two its tensor kernels
/// support for grid sampling).
public enum ImageInterpolation: String, Sendable, CaseIterable {
    /// The nearest pixel (ties to even, as `grid_sample`).
    case nearest
    /// Bilinear between the four nearest pixels.
    case bilinear
}

/// How `pad` (and the padding of `random_crop`) fills the new border, as torchvision's
/// `padding_mode`.
public enum ImagePaddingMode: String, Sendable, CaseIterable {
    /// The `fill` value (one per channel, or one for all).
    case constant
    /// The nearest edge pixel repeated (PyTorch's `replicate`).
    case edge
    /// Mirrored without repeating the edge pixel (`[2, 1 | 1, 2, 3 | 2, 1]` for `[1, 2, 3]`);
    /// each side's padding must be smaller than the image's extent.
    case reflect
    /// Mirrored with the edge pixel repeated (`[2, 1 | 1, 2, 3 | 3, 2]`); each side's padding must
    /// be at most the image's extent.
    case symmetric
}

/// Padding of the four sides of an image, in pixels.
public struct ImagePadding: Equatable, Sendable {
    /// Columns added on the left.
    public var left: Int
    /// Rows added on the top.
    public var top: Int
    /// Columns added on the right.
    public var right: Int
    /// Rows added on the bottom.
    public var bottom: Int

    /// Padding of each side (torchvision's `[left, top, right, bottom]` order).
    public init(left: Int, top: Int, right: Int, bottom: Int) {
        self.left = left
        self.top = top
        self.right = right
        self.bottom = bottom
    }

    /// The same padding on all four sides.
    public init(_ all: Int) { self.init(left: all, top: all, right: all, bottom: all) }

    /// No padding.
    public static let zero = ImagePadding(0)

    /// Whether any side is padded.
    public var isZero: Bool { left == 0 && top == 0 && right == 0 && bottom == 0 }

    var array: [Int] { [left, top, right, bottom] }
}

/// A closed interval `[lower, upper]` a random transform draws a parameter from. Not Swift's
/// `ClosedRange`, which traps on reversed bounds: bounds come from user input and are checked with
/// an error instead.
public struct ImageRange: Equatable, Sendable {
    /// The smallest value.
    public var lower: Double
    /// The largest value.
    public var upper: Double

    /// The interval `[lower, upper]` (checked when the transform is validated).
    public init(_ lower: Double, _ upper: Double) {
        self.lower = lower
        self.upper = upper
    }

    var json: JSONValue { .array([.number(lower), .number(upper)]) }
}

/// The target size of `resize`.
public enum ImageResizeTarget: Equatable, Sendable {
    /// Exactly `height` × `width`.
    case size(height: Int, width: Int)
    /// The shorter side becomes this many pixels and the aspect ratio is kept, the longer side
    /// truncated (torchvision's `Resize(size: int)`: `int(size * long / short)`).
    case shorterSide(Int)
}

/// Parameters of `random_crop` (torchvision's `RandomCrop`).
public struct RandomCropOptions: Equatable, Sendable {
    /// Rows of the crop.
    public var height: Int
    /// Columns of the crop.
    public var width: Int
    /// Padding added before cropping (`padding`).
    public var padding: ImagePadding
    /// Pads each side by the missing amount when the (padded) image is smaller than the crop
    /// (`pad_if_needed`; like torchvision, the missing amount is added to both sides).
    public var padIfNeeded: Bool
    /// The constant padding value: one value, or one per channel (`fill`).
    public var fill: [Float]
    /// How the padding is filled (`padding_mode`).
    public var paddingMode: ImagePaddingMode

    /// torchvision's defaults: no padding, constant fill 0.
    public init(height: Int, width: Int, padding: ImagePadding = .zero, padIfNeeded: Bool = false,
                fill: [Float] = [0], paddingMode: ImagePaddingMode = .constant) {
        self.height = height
        self.width = width
        self.padding = padding
        self.padIfNeeded = padIfNeeded
        self.fill = fill
        self.paddingMode = paddingMode
    }
}

/// Parameters of `random_resized_crop` (torchvision's `RandomResizedCrop`, bilinear, without
/// antialiasing).
public struct RandomResizedCropOptions: Equatable, Sendable {
    /// Rows of the output.
    public var height: Int
    /// Columns of the output.
    public var width: Int
    /// Bounds of the crop's area as a fraction of the image's area (`scale`).
    public var scale: ImageRange
    /// Bounds of the crop's aspect ratio width / height, drawn log-uniformly (`ratio`).
    public var ratio: ImageRange

    /// torchvision's defaults: scale [0.08, 1], ratio [3/4, 4/3].
    public init(height: Int, width: Int, scale: ImageRange = ImageRange(0.08, 1),
                ratio: ImageRange = ImageRange(3.0 / 4.0, 4.0 / 3.0)) {
        self.height = height
        self.width = width
        self.scale = scale
        self.ratio = ratio
    }
}

/// Parameters of `affine` (torchvision's `F.affine`, rotating about the image centre).
public struct AffineOptions: Equatable, Sendable {
    /// Rotation in degrees, counter-clockwise.
    public var angle: Double
    /// Horizontal shift in pixels (after rotation and scaling).
    public var translateX: Double
    /// Vertical shift in pixels.
    public var translateY: Double
    /// Scale factor (> 0).
    public var scale: Double
    /// Shear parallel to the x axis, in degrees.
    public var shearX: Double
    /// Shear parallel to the y axis, in degrees.
    public var shearY: Double
    /// How pixels between grid points are read.
    public var interpolation: ImageInterpolation
    /// The value of pixels from outside the image: one value or one per channel; nil reads zeros
    /// through `grid_sample`'s zero padding without the mask blend (torchvision's `fill=None`).
    public var fill: [Float]?

    /// torchvision's defaults: no translation, scale 1, no shear, nearest, `fill=None`.
    public init(angle: Double, translateX: Double = 0, translateY: Double = 0, scale: Double = 1,
                shearX: Double = 0, shearY: Double = 0, interpolation: ImageInterpolation = .nearest,
                fill: [Float]? = nil) {
        self.angle = angle
        self.translateX = translateX
        self.translateY = translateY
        self.scale = scale
        self.shearX = shearX
        self.shearY = shearY
        self.interpolation = interpolation
        self.fill = fill
    }
}

/// Parameters of `random_affine` (torchvision's `RandomAffine`).
public struct RandomAffineOptions: Equatable, Sendable {
    /// Bounds of the rotation angle in degrees.
    public var degrees: ImageRange
    /// Largest shift as a fraction of width and height (each in [0, 1]); nil: no shift.
    public var translate: (x: Double, y: Double)? {
        get { translateFractions.map { ($0[0], $0[1]) } }
        set { translateFractions = newValue.map { [$0.x, $0.y] } }
    }
    var translateFractions: [Double]?
    /// Bounds of the scale factor (both > 0); nil: scale 1.
    public var scale: ImageRange?
    /// Bounds of the x shear in degrees; nil: none.
    public var shearX: ImageRange?
    /// Bounds of the y shear in degrees; nil: none.
    public var shearY: ImageRange?
    /// How pixels between grid points are read.
    public var interpolation: ImageInterpolation
    /// The value of pixels from outside the image (one, or one per channel).
    public var fill: [Float]

    /// torchvision's defaults: nearest, fill 0, no translation, scale or shear.
    public init(degrees: ImageRange, translate: (x: Double, y: Double)? = nil, scale: ImageRange? = nil,
                shearX: ImageRange? = nil, shearY: ImageRange? = nil,
                interpolation: ImageInterpolation = .nearest, fill: [Float] = [0]) {
        self.degrees = degrees
        self.translateFractions = translate.map { [$0.x, $0.y] }
        self.scale = scale
        self.shearX = shearX
        self.shearY = shearY
        self.interpolation = interpolation
        self.fill = fill
    }
}

/// Parameters of `color_jitter` (torchvision's `ColorJitter` without hue): each factor is drawn
/// uniformly from its range and the three adjustments run in a random order.
public struct ColorJitterOptions: Equatable, Sendable {
    /// Bounds of the brightness factor (>= 0); nil: unchanged.
    public var brightness: ImageRange?
    /// Bounds of the contrast factor (>= 0); nil: unchanged.
    public var contrast: ImageRange?
    /// Bounds of the saturation factor (>= 0); nil: unchanged.
    public var saturation: ImageRange?

    /// Ranges of the factors. torchvision's single number `v` is the range `[max(0, 1 - v), 1 + v]`
    /// (`ColorJitterOptions.range(around:)`).
    public init(brightness: ImageRange? = nil, contrast: ImageRange? = nil, saturation: ImageRange? = nil) {
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
    }

    /// torchvision's reading of a single jitter amount `v`: `[max(0, 1 - v), 1 + v]`.
    public static func range(around v: Double) -> ImageRange { ImageRange(Swift.max(0, 1 - v), 1 + v) }
}

/// When a transform runs.
public enum ImageTransformStage: String, Sendable {
    /// In training and prediction (deterministic transforms: resizing, normalising …).
    case both
    /// In training only (random augmentation); skipped at prediction, as torchvision users put
    /// such transforms only in the training pipeline.
    case train
}

/// One image transform, described as data (torchvision semantics; images are float tensors
/// `[C, H, W]`, batches `[N, C, H, W]`).
///
/// Deterministic transforms (stage `both`) apply in training and prediction; random ones (stage
/// `train`, the `random…` cases and `colorJitter`) only in training. A list of transforms is an
/// ``ImageTransformPipeline``, which is stored as JSON (``json``, ``init(json:)``; the forms are in
/// docs/image-transforms.md).
public enum ImageTransform: Equatable, Sendable {
    /// `(x - mean[c]) / std[c]` per channel (`F.normalize`); one value or one per channel.
    case normalize(mean: [Float], std: [Float])
    /// Bilinear resize without antialiasing (`F.resize(…, antialias=False)`).
    case resize(ImageResizeTarget)
    /// Padding of the four sides (`F.pad`); `fill` (one value or one per channel) in constant mode.
    case pad(ImagePadding, fill: [Float], mode: ImagePaddingMode)
    /// The centre `height` × `width` region, padded with zeros when larger (`F.center_crop`).
    case centerCrop(height: Int, width: Int)
    /// ITU-R 601-2 luma `0.2989 R + 0.587 G + 0.114 B` in 1 or 3 channels (`F.rgb_to_grayscale`).
    case grayscale(outputChannels: Int)
    /// The region at (`top`, `left`) of `height` × `width`; outside the image reads zeros (`F.crop`).
    case crop(top: Int, left: Int, height: Int, width: Int)
    /// Mirrors left and right (`F.hflip`).
    case horizontalFlip
    /// Mirrors top and bottom (`F.vflip`).
    case verticalFlip
    /// `crop` then bilinear `resize` to `outputHeight` × `outputWidth` (`F.resized_crop`, antialias off).
    case resizedCrop(top: Int, left: Int, height: Int, width: Int, outputHeight: Int, outputWidth: Int)
    /// Rotation by `angle` degrees counter-clockwise about the centre, same size (`F.rotate`);
    /// `fill` nil is torchvision's `fill=None`.
    case rotate(angle: Double, interpolation: ImageInterpolation, fill: [Float]?)
    /// Rotation, translation, scale and shear about the centre (`F.affine`).
    case affine(AffineOptions)
    /// `clamp(x · factor, 0, 1)` (`F.adjust_brightness`).
    case adjustBrightness(Double)
    /// Blend with the mean grey level, clamped to [0, 1] (`F.adjust_contrast`).
    case adjustContrast(Double)
    /// Blend with the per-pixel grey level, clamped to [0, 1] (`F.adjust_saturation`).
    case adjustSaturation(Double)
    /// Mirrors left and right with probability `p` (`RandomHorizontalFlip`).
    case randomHorizontalFlip(p: Double)
    /// Mirrors top and bottom with probability `p` (`RandomVerticalFlip`).
    case randomVerticalFlip(p: Double)
    /// A uniformly placed crop of the (padded) image (`RandomCrop`).
    case randomCrop(RandomCropOptions)
    /// A crop of random area and aspect ratio resized to a fixed size (`RandomResizedCrop`).
    case randomResizedCrop(RandomResizedCropOptions)
    /// Rotation by a uniform angle in `degrees` (`RandomRotation`; fill default 0).
    case randomRotation(degrees: ImageRange, interpolation: ImageInterpolation, fill: [Float])
    /// Random rotation, shift, scale and shear (`RandomAffine`).
    case randomAffine(RandomAffineOptions)
    /// Random brightness, contrast and saturation factors in random order (`ColorJitter`).
    case colorJitter(ColorJitterOptions)

    /// The transform's name in JSON and in error messages (`random_crop`, `normalize` …).
    public var name: String {
        switch self {
        case .normalize: return "normalize"
        case .resize: return "resize"
        case .pad: return "pad"
        case .centerCrop: return "center_crop"
        case .grayscale: return "grayscale"
        case .crop: return "crop"
        case .horizontalFlip: return "hflip"
        case .verticalFlip: return "vflip"
        case .resizedCrop: return "resized_crop"
        case .rotate: return "rotate"
        case .affine: return "affine"
        case .adjustBrightness: return "adjust_brightness"
        case .adjustContrast: return "adjust_contrast"
        case .adjustSaturation: return "adjust_saturation"
        case .randomHorizontalFlip: return "random_horizontal_flip"
        case .randomVerticalFlip: return "random_vertical_flip"
        case .randomCrop: return "random_crop"
        case .randomResizedCrop: return "random_resized_crop"
        case .randomRotation: return "random_rotation"
        case .randomAffine: return "random_affine"
        case .colorJitter: return "color_jitter"
        }
    }

    /// Every transform name the JSON form accepts.
    public static let names = ["normalize", "resize", "pad", "center_crop", "grayscale", "crop", "hflip", "vflip",
                               "resized_crop", "rotate", "affine", "adjust_brightness", "adjust_contrast",
                               "adjust_saturation", "random_horizontal_flip", "random_vertical_flip", "random_crop",
                               "random_resized_crop", "random_rotation", "random_affine", "color_jitter"]

    /// `both` for deterministic transforms, `train` for random ones.
    public var stage: ImageTransformStage {
        switch self {
        case .randomHorizontalFlip, .randomVerticalFlip, .randomCrop, .randomResizedCrop, .randomRotation,
             .randomAffine, .colorJitter:
            return .train
        default:
            return .both
        }
    }

    /// Whether the transform runs when `training` is as given.
    public func isActive(training: Bool) -> Bool { training || stage == .both }
}
