import EmberCABI
import EmberNN
import FuzzSupport

// The JSON configurations of the C interface (Sources/EmberCABI/Config.swift): the input as a
// model configuration (`ember_model_new`, built only when its sizes are small) and as a trainer
// configuration for a fixed model (`ember_trainer_new`: optimizer, loss, schedule, measures …).

@main
struct FuzzConfig {
    static func main() {
        var fixed: OpaquePointer?
        guard ember_model_new(&fixed, smallModelConfig) == 0, let fixed else { fatalError("the fuzz target's model cannot be built") }
        runFuzzer { bytes in
            let config = text(bytes)
            let small = (try? JSONValue.parse(config)).map(isSmall) ?? true
            if small {
                var model: OpaquePointer?
                if ember_model_new(&model, config) == 0 { _ = ember_model_free(model) }
            }
            var trainer: OpaquePointer?
            if ember_trainer_new(&trainer, fixed, config) == 0 { _ = ember_trainer_free(trainer) }
        }
    }
}
