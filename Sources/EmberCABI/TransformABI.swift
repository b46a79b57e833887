import EmberCore
import EmberNN

// Image transforms of include/ember.h: what a list of transforms makes of an image shape.

/// The image shape `[C, H, W]` after the transforms `transforms_json` (a JSON array of transform
/// objects, or a pipeline object; docs/image-transforms.md), validated for training and prediction
/// alike (both must give the same shape).
@_cdecl("ember_transforms_output_shape")
public func ember_transforms_output_shape(_ transformsJSON: UnsafePointer<CChar>?, _ shape: UnsafePointer<Int64>?, _ rank: Int32,
                                          _ outShape: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded {
        let pipeline = try ImageTransformPipeline(jsonText: try string(transformsJSON, "transforms_json"))
        guard rank == 3 else {
            throw EmberError(.invalidArgument, "[rank] image transforms read images [channels, height, width]; got rank \(rank)",
                             detail: EmberError.Detail(op: "transforms", argument: "rank", expected: "3", got: "\(rank)"))
        }
        guard let shape else { throw EmberError.invalidArgument("shape", "is NULL") }
        guard let outShape else { throw EmberError.invalidArgument("out_shape", "is NULL") }
        let dims = try (0..<3).map { try checkedCount(shape[$0], "shape", lower: 1) }
        let out = try pipeline.outputShape(forInputShape: dims)
        for (i, d) in out.enumerated() { outShape[i] = Int64(d) }
    }
}
