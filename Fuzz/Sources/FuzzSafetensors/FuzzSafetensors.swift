import EmberCABI
import EmberNN
import FuzzSupport

// The safetensors reader (Safetensors.read: header length, JSON header, offsets, dtypes) and
// weights loaded from such bytes into a model (`ember_model_restore_weights`, strict and not,
// and `ember_model_restore_matching`, as R's fine-tuning from PyTorch weights does).

@main
struct FuzzSafetensors {
    static func main() {
        var model: OpaquePointer?
        guard ember_model_new(&model, smallModelConfig) == 0, let model else { fatalError("the fuzz target's model cannot be built") }
        runFuzzer { bytes in
            _ = try? Safetensors.read(bytes)
            bytes.withUnsafeBufferPointer { b in
                _ = ember_model_restore_weights(model, b.baseAddress, Int64(b.count), 1)
                _ = ember_model_restore_weights(model, b.baseAddress, Int64(b.count), 0)
                var report: UnsafePointer<CChar>?
                _ = ember_model_restore_matching(model, b.baseAddress, Int64(b.count), &report)
            }
        }
    }
}
