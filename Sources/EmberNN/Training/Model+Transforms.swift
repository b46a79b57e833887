import EmberCore

/// The image transforms of one network input: the image shape the data has, and the pipeline
/// that makes the network's input of it (deterministic transforms in training and prediction,
/// random ones in training only; docs/image-transforms.md).
public struct InputTransforms: Sendable, Equatable {
    /// Shape of one image of the data, `[C, H, W]`.
    public let dataShape: [Int]
    /// The transforms.
    public let pipeline: ImageTransformPipeline
    /// The network input's shape: the images after the transforms.
    public let outputShape: [Int]

    /// Validates `pipeline` on images of `dataShape`.
    /// - Throws: an `EmberError` naming the transform when it cannot apply to such images.
    public init(dataShape: [Int], pipeline: ImageTransformPipeline) throws {
        self.outputShape = try pipeline.outputShape(forInputShape: dataShape)
        self.dataShape = dataShape
        self.pipeline = pipeline
    }

    /// `{"data_shape": [...], "transforms": {pipeline}}`.
    public var json: JSONValue {
        .object([("data_shape", .array(dataShape.map { .number(Double($0)) })), ("transforms", pipeline.json)])
    }

    /// Reads the form written by `json`.
    public init(json: JSONValue) throws {
        guard let shape = json["data_shape"]?.arrayValue?.compactMap(\.intValue), shape.count == 3, let t = json["transforms"] else {
            throw EmberError.invalidArgument("transforms", "each input's transforms need 'data_shape' ([C, H, W]) and 'transforms', got \(json.text)")
        }
        try self.init(dataShape: shape, pipeline: try ImageTransformPipeline(json: t))
    }
}

extension Model {
    /// Sets the image transforms of image inputs, by input name.
    /// - Throws: when an input is not an image input or the transforms do not make its shape.
    public func setInputTransforms(_ transforms: [String: InputTransforms]) throws {
        for (name, t) in transforms {
            guard let input = spec.inputs.first(where: { $0.name == name }), case let .tensor(shape) = input.kind, shape.count == 3 else {
                let images = spec.inputs.filter { $0.sampleShape.count == 3 }.map(\.name)
                throw EmberError.invalidArgument("transforms", "'\(name)' is not an image input of the network (its image inputs: \(images.isEmpty ? "none" : images.joined(separator: ", ")))")
            }
            guard t.outputShape == input.sampleShape else {
                throw EmberError.shapeMismatch("transforms", "the transforms of input '\(name)' make images of \(shapeString(t.outputShape)) from \(shapeString(t.dataShape)); the network reads \(shapeString(input.sampleShape))")
            }
        }
        inputTransforms = transforms
    }

    /// The shape one row of input `input` has in the data: before its transforms, if any.
    func dataShape(of input: InputSpec) -> [Int] {
        inputTransforms[input.name]?.dataShape ?? input.sampleShape
    }

    /// Prepared batch inputs (in `spec.inputs` order) after their transforms; random transforms run
    /// in training only and draw from the model's generator.
    func transformed(_ inputs: [Tensor], training: Bool) throws -> [Tensor] {
        guard !inputTransforms.isEmpty else { return inputs }
        return try zip(spec.inputs, inputs).map { input, t in
            guard let tf = inputTransforms[input.name] else { return t }
            return try tf.pipeline.apply(t, training: training, rng: &rng)
        }
    }
}
