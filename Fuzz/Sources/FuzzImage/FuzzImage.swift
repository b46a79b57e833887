import EmberCABI
import EmberNN
import FuzzSupport
import Glibc

// The PNG and JPEG decoders (Sources/CEmberImage through ImageFile and the C interface's
// `ember_image_info` / `ember_image_read`): the input is written to a file and read as an image
// file is read from R; images of at most 2²⁰ pixels are decoded in both channel counts.

@main
struct FuzzImage {
    static func main() {
        let path = "/tmp/ember-fuzz-image-\(getpid())"
        defer { unlink(path) }
        runFuzzer { bytes in
            guard let f = fopen(path, "wb") else { fatalError("cannot write \(path)") }
            let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
            fclose(f)
            guard written == bytes.count else { fatalError("cannot write \(path)") }
            var c: Int64 = 0, h: Int64 = 0, w: Int64 = 0
            guard ember_image_info(path, &c, &h, &w) == 0, h * w <= 1 << 20 else { return }
            for channels in [1, 3] {
                _ = try? ImageFile.read(path, channels: channels)
                var out = [UInt8](repeating: 0, count: Int(Int64(channels) * h * w))
                _ = out.withUnsafeMutableBufferPointer { ember_image_read(path, Int64(channels), $0.baseAddress, Int64($0.count)) }
            }
        }
    }
}
