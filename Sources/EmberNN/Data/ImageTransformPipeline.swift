import EmberCore

/// A list of image transforms applied in order to a batch `[N, C, H, W]` (docs/image-transforms.md).
///
/// Deterministic transforms run in training and prediction, random ones only when `training` is
/// true. Each sample is transformed on its own (as a data loader applies torchvision transforms to
/// every image), with a generator derived from one 64-bit seed drawn per batch from the caller's
/// generator and the sample's index: the same seed gives the same batch at any thread count, and
/// samples run in parallel on Ember's pool. The inner loops read and write contiguous memory and
/// allocate nothing per sample or pixel (one scratch area per thread and batch).
public struct ImageTransformPipeline: Equatable, Sendable {
    /// The `format` field of the JSON form.
    public static let format = "ember.image_transforms"
    /// Format version written into the JSON; readers reject newer versions.
    public static let version = 1

    /// The transforms, in the order they apply.
    public let transforms: [ImageTransform]

    /// A pipeline of `transforms`, whose arguments are checked (shapes are checked by
    /// ``outputShape(forInputShape:)`` and ``apply(_:training:rng:)``).
    /// - Throws: `EmberError.invalidArgument` naming the transform, its position and the argument.
    public init(transforms: [ImageTransform]) throws {
        for (i, t) in transforms.enumerated() { try t.validate(index: i) }
        self.transforms = transforms
    }

    /// Whether some transform draws random numbers when `training`.
    public func isRandom(training: Bool) -> Bool { training && transforms.contains { $0.stage == .train } }

    // MARK: Shapes

    static func imageDims(_ shape: [Int], op: String) throws -> (batch: Int?, dims: ImageDims) {
        guard shape.count == 3 || shape.count == 4 else {
            throw EmberError.shapeMismatch(op, "expected an image [C, H, W] or a batch [N, C, H, W], got \(shapeString(shape))",
                                           expected: "[N, C, H, W]", got: shapeString(shape))
        }
        let s = Array(shape.suffix(3))
        guard s.allSatisfy({ $0 >= 1 }), shape.allSatisfy({ $0 >= 0 }) else {
            throw EmberError.shapeMismatch(op, "images must have at least one channel, row and column, got \(shapeString(shape))",
                                           expected: "C, H, W >= 1", got: shapeString(shape))
        }
        _ = try Tensor.elementCount(shape, op: op)
        return (shape.count == 4 ? shape[0] : nil, ImageDims(c: s[0], h: s[1], w: s[2]))
    }

    /// The active transforms with their input and output extents.
    func plan(_ dims: ImageDims, training: Bool) throws -> [ImageStep] {
        var steps: [ImageStep] = []
        steps.reserveCapacity(transforms.count)
        var d = dims
        for (i, t) in transforms.enumerated() where t.isActive(training: training) {
            let out = try t.outputDims(d, index: i)
            steps.append(ImageStep(transform: t, input: d, output: out))
            d = out
        }
        return steps
    }

    /// The shape of the result for an input of `shape` (`[C, H, W]` or `[N, C, H, W]`) in
    /// training or prediction, validating every active transform against the image it receives.
    /// - Throws: `EmberError` naming the transform, its position and the argument, e.g. a crop
    ///   larger than the image, a `mean` with the wrong number of channels, a colour transform on
    ///   an image that has neither 1 nor 3 channels.
    public func outputShape(forInputShape shape: [Int], training: Bool) throws -> [Int] {
        let (n, dims) = try ImageTransformPipeline.imageDims(shape, op: "image_transforms")
        let out = try plan(dims, training: training).last?.output ?? dims
        return (n.map { [$0] } ?? []) + out.shape
    }

    /// The shape of the result for an input of `shape` (`[C, H, W]` or `[N, C, H, W]`), which
    /// must be the same in training and prediction (a network reads one input shape): every
    /// transform is validated for both.
    /// - Throws: as ``outputShape(forInputShape:training:)``, and `EmberError.shapeMismatch` when
    ///   the random transforms change the size (e.g. `random_resized_crop` without a deterministic
    ///   `resize` to the same size at prediction).
    public func outputShape(forInputShape shape: [Int]) throws -> [Int] {
        let train = try outputShape(forInputShape: shape, training: true)
        let predict = try outputShape(forInputShape: shape, training: false)
        guard train == predict else {
            throw EmberError.shapeMismatch(
                "image_transforms",
                "images of \(shapeString(shape)) become \(shapeString(train)) in training but \(shapeString(predict)) at prediction, " +
                    "where the random transforms are skipped; add deterministic transforms (resize, center_crop) that give the training size",
                expected: shapeString(train), got: shapeString(predict))
        }
        return train
    }

    // MARK: Applying

    /// The transformed batch `[N, C', H', W']` of `batch` `[N, C, H, W]` (or one image `[C, H, W]`,
    /// returned as `[C', H', W']`).
    ///
    /// - Parameters:
    ///   - training: true runs every transform, false only the deterministic ones.
    ///   - rng: when a random transform runs, one 64-bit batch seed is drawn from it; otherwise it
    ///     is left untouched.
    /// - Throws: as ``outputShape(forInputShape:training:)``.
    public func apply(_ batch: Tensor, training: Bool, rng: inout RandomGenerator) throws -> Tensor {
        let (count, dims) = try ImageTransformPipeline.imageDims(batch.shape, op: "image_transforms")
        let n = count ?? 1
        let steps = try plan(dims, training: training)
        let outDims = steps.last?.output ?? dims
        let outShape = (count.map { [$0] } ?? []) + outDims.shape
        _ = try Tensor.elementCount(outShape, op: "image_transforms")
        let batchSeed = isRandom(training: training) ? rng.next() : 0
        if steps.isEmpty { return batch }

        var imageCapacity = 0, axis = 0, work = 0
        for s in steps {
            imageCapacity = Swift.max(imageCapacity, s.input.count, s.output.count, s.stagingCount)
            axis = Swift.max(axis, s.axisCount)
            work += s.input.count + s.output.count
        }
        let inCount = dims.count, outCount = outDims.count
        return batch.withUnsafeBufferPointer { input in
            Tensor.build(shape: outShape) { output in
                guard let src = input.baseAddress, let dst = output.baseAddress else { return }
                Parallel.forRange(n, minChunk: Swift.max(1, Parallel.minimumChunk / Swift.max(1, work))) { begin, end in
                    let scratch = ImageScratch(imageCount: imageCapacity, axis: axis)
                    for i in begin..<end {
                        var sampleRNG = RandomGenerator(seed: ImageTransformPipeline.sampleSeed(batchSeed, i))
                        ImageTransformPipeline.run(steps, src + i * inCount, dst + i * outCount, &sampleRNG, scratch)
                    }
                }
            }
        }
    }

    /// The seed of sample `index`'s generator: SplitMix64's finaliser of the batch seed and the
    /// index, so that neighbouring samples get unrelated streams.
    static func sampleSeed(_ batchSeed: UInt64, _ index: Int) -> UInt64 {
        var z = batchSeed &+ (UInt64(truncatingIfNeeded: index) &+ 1) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Runs `steps` on one image, ping-ponging between the scratch images; the last step writes
    /// into `dst`.
    static func run(_ steps: [ImageStep], _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
                    _ rng: inout RandomGenerator, _ scratch: ImageScratch) {
        var current = src
        for (k, step) in steps.enumerated() {
            let target = k == steps.count - 1 ? dst : (k % 2 == 0 ? scratch.images.0 : scratch.images.1)
            step.transform.run(current, step.input, step.output, target, &rng, scratch)
            current = UnsafePointer(target)
        }
    }

    // MARK: JSON

    /// The JSON form: `{"format": "ember.image_transforms", "version": 1, "transforms": [...]}`.
    public var json: JSONValue {
        .object([("format", .string(ImageTransformPipeline.format)),
                 ("version", .number(Double(ImageTransformPipeline.version))),
                 ("transforms", .array(transforms.map(\.json)))])
    }

    /// Parses the JSON form (a bare array of transforms is accepted too) and validates it.
    /// - Throws: `EmberError.invalidArgument` naming the transform, its position and the field.
    public init(json: JSONValue) throws {
        var list = json
        if json.arrayValue == nil {
            if let f = json["format"] {
                guard f.stringValue == ImageTransformPipeline.format else {
                    throw EmberError.invalidArgument("image_transforms", "format must be '\(ImageTransformPipeline.format)', got \(f.text)")
                }
            }
            if let v = json["version"] {
                guard let n = v.intValue, n >= 1, n <= ImageTransformPipeline.version else {
                    throw EmberError.invalidArgument(
                        "image_transforms", "unsupported version \(v.text); this engine reads up to \(ImageTransformPipeline.version)")
                }
            }
            guard let t = json["transforms"], t.arrayValue != nil else {
                throw EmberError.invalidArgument("image_transforms", "'transforms' must be an array of transforms")
            }
            list = t
        }
        let items = list.arrayValue ?? []
        try self.init(transforms: try items.enumerated().map { try ImageTransform(json: $1, index: $0) })
    }

    /// Parses JSON text.
    public init(jsonText: String) throws { try self.init(json: try JSONValue.parse(jsonText)) }
}

/// One active transform of a pipeline for a known input size.
struct ImageStep: Sendable {
    let transform: ImageTransform
    let input: ImageDims
    let output: ImageDims

    /// Floats of the staging copy a resized crop reaching outside the image needs.
    var stagingCount: Int {
        if case let .resizedCrop(_, _, h, w, _, _) = transform { return input.c * h * w }
        return 0
    }

    /// The longest axis a window or resize of this step indexes.
    var axisCount: Int {
        var n = Swift.max(input.h, input.w, output.h, output.w)
        if case let .resizedCrop(_, _, h, w, _, _) = transform { n = Swift.max(n, h, w) }
        return n
    }
}

extension ImageTransform {
    /// Applies this deterministic transform to one image `[C, H, W]` or a batch `[N, C, H, W]`
    /// (the functional form, as `torchvision.transforms.v2.functional`).
    /// - Throws: `EmberError.invalidState` for a random transform (use an
    ///   ``ImageTransformPipeline`` with a generator), and the errors of
    ///   ``ImageTransformPipeline/outputShape(forInputShape:training:)``.
    public func apply(to images: Tensor) throws -> Tensor {
        guard stage == .both else {
            throw EmberError(.invalidState, "[\(name)] is a random transform: apply it through ImageTransformPipeline.apply(_:training:rng:)",
                             detail: EmberError.Detail(op: name))
        }
        var unused = RandomGenerator(seed: 0)
        return try ImageTransformPipeline(transforms: [self]).apply(images, training: false, rng: &unused)
    }

    /// Bilinear resize (antialias off) of one image `[C, h, w]` or a batch to `height` × `width`:
    /// what a data loader uses to bring decoded images of different sizes to one size.
    public static func resizeImage(_ image: Tensor, height: Int, width: Int) throws -> Tensor {
        try ImageTransform.resize(.size(height: height, width: width)).apply(to: image)
    }
}
