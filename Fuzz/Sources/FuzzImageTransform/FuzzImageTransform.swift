import EmberCABI
import EmberCore
import EmberNN
import FuzzSupport

// Image-transform pipelines (Sources/EmberNN/Data/ImageTransform+JSON.swift): parsed, their
// output shapes asked for through the C interface, and, when their sizes are small, run on two
// small batches in training and at prediction.

@main
struct FuzzImageTransform {
    static func main() {
        var rng = RandomGenerator(seed: 7)
        let images = [try? Tensor.uniform([2, 3, 7, 9], low: 0, high: 1, rng: &rng),
                      try? Tensor.uniform([1, 1, 6, 5], low: 0, high: 1, rng: &rng)].compactMap { $0 }
        runFuzzer { bytes in
            let config = text(bytes)
            var out = [Int64](repeating: 0, count: 3)
            _ = ember_transforms_output_shape(config, [3, 7, 9], 3, &out)
            guard let json = try? JSONValue.parse(config), let pipeline = try? ImageTransformPipeline(json: json) else { return }
            if (try? ImageTransformPipeline(jsonText: pipeline.json.text)) == nil {
                fatalError("an image-transform pipeline does not survive its own JSON round trip")
            }
            guard isSmall(json) else { return }
            for batch in images {
                var r = RandomGenerator(seed: 1)
                _ = try? pipeline.apply(batch, training: true, rng: &r)
                _ = try? pipeline.apply(batch, training: false, rng: &r)
            }
        }
    }
}
