import EmberCABI
import EmberNN
import FuzzSupport

// Model files and marshalled models (`ember_model_deserialize`, what R's unserialize of a model
// and `ember_model_load` read): any bytes give a model or an error, never a trap. A model read
// back is written and read again.

@main
struct FuzzModelFile {
    static func main() {
        runFuzzer { bytes in
            var model: OpaquePointer?
            let status = bytes.withUnsafeBufferPointer { ember_model_deserialize(&model, $0.baseAddress, Int64($0.count)) }
            guard status == 0, let model else { return }
            var out: OpaquePointer?
            if ember_model_serialize(model, &out) == 0, let out {
                var data: UnsafePointer<UInt8>?
                var size: Int64 = 0
                var again: OpaquePointer?
                if ember_bytes_data(out, &data, &size) == 0, ember_model_deserialize(&again, data, size) == 0 {
                    _ = ember_model_free(again)
                } else {
                    fatalError("a model read from a file cannot be read back after writing it")
                }
                _ = ember_bytes_free(out)
            }
            _ = ember_model_free(model)
        }
    }
}
