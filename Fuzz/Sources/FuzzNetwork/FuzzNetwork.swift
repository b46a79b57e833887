import EmberCore
import EmberNN
import FuzzSupport

// Network descriptions (docs/network-description.md): parsed, validated and, when their sizes are
// small, built into a model that predicts a batch of zeros (every shape the builder inferred is
// then used once).

@main
struct FuzzNetwork {
    static func main() {
        runFuzzer { bytes in
            guard let json = try? JSONValue.parse(bytes), let spec = try? NetworkSpec(json: json) else { return }
            if (try? NetworkSpec(jsonText: spec.json.text)) != spec {
                fatalError("a network description does not survive its own JSON round trip")
            }
            guard isSmall(json), let model = try? Model(spec: spec, task: .multiclass(classes: 2), seed: 1) else { return }
            var inputs: [String: Tensor] = [:]
            for input in spec.inputs {
                guard let x = try? Tensor.zeros([2] + input.sampleShape) else { return }
                inputs[input.name] = x
            }
            guard let data = try? Dataset(inputs: inputs) else { return }
            _ = try? model.predict(data)
        }
    }
}
