import CEmberImage
import EmberCore

/// PNG and JPEG files decoded by the engine (libpng, libjpeg-turbo). The format is told by the
/// file's first bytes, not by its name. Decoded images are bytes `[channels, height, width]`.
public enum ImageFile {
    /// What a file's header says.
    public struct Info: Equatable, Sendable {
        /// Channels stored in the file: 1 gray, 2 gray + alpha, 3 colour (RGB, palette, YCbCr
        /// JPEG), 4 RGBA.
        public var channels: Int
        /// Height in pixels.
        public var height: Int
        /// Width in pixels.
        public var width: Int

        /// Creates a header record.
        public init(channels: Int, height: Int, width: Int) {
            self.channels = channels
            self.height = height
            self.width = width
        }
    }

    /// The largest image decoded, in pixels (2²⁸).
    public static let maxPixels = Int(CEMBER_IMAGE_MAX_PIXELS)

    /// Reads only the header of the image file at `path` (no pixels are decoded; an image beyond
    /// `maxPixels` is reported, not refused).
    /// - Throws: an `EmberError` naming the file when it is missing, unreadable, empty, of zero
    ///   size, neither PNG nor JPEG, a CMYK JPEG, or its header is corrupt.
    public static func info(_ path: String) throws -> Info {
        var channels: Int32 = 0, height: Int64 = 0, width: Int64 = 0
        var message = [CChar](repeating: 0, count: messageSize)
        let status = cember_image_info(path, &channels, &height, &width, &message, Int64(messageSize))
        guard Int(status) == CEMBER_IMAGE_OK else { throw error(status, message, path, row: nil) }
        return Info(channels: Int(channels), height: Int(height), width: Int(width))
    }

    /// Decodes the image file at `path` into `channels` (1 or 3) planes: bytes `[channels, height,
    /// width]`, row-major. Gray is replicated to 3 channels; colour becomes gray by ITU-R 601-2 luma
    /// rounded as PIL's `convert("L")`; alpha is dropped; 16-bit PNG samples keep their high byte.
    /// - Throws: an `EmberError` naming the file (see `info`), also when the pixel data is truncated
    ///   or corrupt or the image has more than `maxPixels` pixels.
    public static func read(_ path: String, channels: Int) throws -> (bytes: [UInt8], height: Int, width: Int) {
        guard channels == 1 || channels == 3 else {
            throw EmberError(.invalidArgument, "[channels] must be 1 or 3, got \(channels)",
                             detail: EmberError.Detail(op: "image", argument: "channels", expected: "1 or 3", got: "\(channels)"))
        }
        // The header first (a one-byte buffer is too small for any image but 1 × 1 gray): the
        // size, or the error of a file that cannot be decoded.
        var probe: [UInt8] = [0]
        let header = try probe.withUnsafeMutableBufferPointer { try decode(path, channels: channels, into: $0, row: nil, allowLarger: true) }
        var bytes = [UInt8](repeating: 0, count: channels * header.height * header.width)
        let (height, width) = try bytes.withUnsafeMutableBufferPointer { out in
            try decode(path, channels: channels, into: out, row: nil, allowLarger: true)
        }
        guard height == header.height, width == header.width else { throw changed(path, header.height, header.width, height, width, row: nil) }
        return (bytes, height, width)
    }

    static func changed(_ path: String, _ h: Int, _ w: Int, _ h2: Int, _ w2: Int, row: Int?) -> EmberError {
        EmberError(.invalidState, "[image] \(row.map { ErrorIndex.describe(("row", $0)) + ": " } ?? "")'\(path)' changed while it was read (\(h) × \(w), then \(h2) × \(w2) pixels)",
                   detail: EmberError.Detail(op: "image", argument: "path", index: row))
    }

    static let messageSize = 512

    /// Decodes into `out`, which holds at least channels × height × width bytes of the image
    /// (else the `CEMBER_IMAGE_ERR_CAPACITY` error, whose size is returned, not thrown).
    /// Returns the image's height and width.
    static func decode(_ path: String, channels: Int, into out: UnsafeMutableBufferPointer<UInt8>, row: Int?,
                       allowLarger: Bool = false) throws -> (height: Int, width: Int) {
        var height: Int64 = 0, width: Int64 = 0
        var message = [CChar](repeating: 0, count: messageSize)
        let status = cember_image_decode(path, Int32(channels), out.baseAddress, Int64(out.count), &height, &width,
                                         &message, Int64(messageSize))
        if Int(status) == CEMBER_IMAGE_OK || (allowLarger && Int(status) == CEMBER_IMAGE_ERR_CAPACITY) {
            return (Int(height), Int(width))
        }
        throw error(status, message, path, row: row)
    }

    /// The `EmberError` of a failed C call: `[image] row r (0-based): 'path' <reason>`.
    static func error(_ status: Int32, _ message: [CChar], _ path: String, row: Int?) -> EmberError {
        let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let kind: EmberError.Kind
        switch Int(status) {
        case CEMBER_IMAGE_ERR_CORRUPT, CEMBER_IMAGE_ERR_EMPTY: kind = .corruptData
        case CEMBER_IMAGE_ERR_TOO_LARGE, CEMBER_IMAGE_ERR_MEMORY: kind = .overflow
        case CEMBER_IMAGE_ERR_CAPACITY: kind = .shapeMismatch
        default: kind = .invalidArgument
        }
        return EmberError(kind, "[image] \(row.map { ErrorIndex.describe(("row", $0)) + ": " } ?? "")'\(path)' \(reason)",
                          detail: EmberError.Detail(op: "image", argument: "path", index: row, got: path))
    }
}

/// Image files as a network input: each row is one PNG or JPEG file, decoded when its batch is
/// gathered into `sampleShape` `[C, H, W]` (C 1 or 3) with values byte / 255 (torchvision's
/// `to_tensor`). Images of another size go through the caller's `resize` function; without one,
/// a size mismatch is an error naming the file, the row and both sizes.
///
/// The rows of a batch are decoded in parallel on the engine's threads.
public struct ImageFileSource: BatchSource {
    /// Resizes an image `[C, h, w]` (values in [0, 1]) to `[C, height, width]`.
    public typealias Resize = @Sendable (_ image: Tensor, _ height: Int, _ width: Int) throws -> Tensor

    /// One file per row.
    public let paths: [String]
    public let sampleShape: [Int]
    /// Applied to images whose size differs from `sampleShape`'s; nil refuses them.
    public let resize: Resize?
    public var count: Int { paths.count }

    /// Creates a source over `paths` decoded to `sampleShape` `[channels, height, width]`. The
    /// files are read only when their batches are gathered.
    /// - Throws: when `paths` is empty or `sampleShape` is not `[1 or 3, h >= 1, w >= 1]` with at
    ///   most `ImageFile.maxPixels` pixels.
    public init(paths: [String], sampleShape: [Int], resize: Resize? = nil) throws {
        guard !paths.isEmpty else { throw EmberError.invalidArgument("paths", "needs at least one image file") }
        guard sampleShape.count == 3, sampleShape[0] == 1 || sampleShape[0] == 3, sampleShape[1] >= 1, sampleShape[2] >= 1,
              sampleShape[1] <= ImageFile.maxPixels / sampleShape[2] else {
            throw EmberError(.invalidArgument, "[shape] must be [channels (1 or 3), height >= 1, width >= 1] with at most \(ImageFile.maxPixels) pixels, got \(shapeString(sampleShape))",
                             detail: EmberError.Detail(op: "image", argument: "shape", expected: "[1 or 3, height, width]", got: shapeString(sampleShape)))
        }
        self.paths = paths
        self.sampleShape = sampleShape
        self.resize = resize
    }

    public func gather(_ rows: [Int]) throws -> Tensor {
        for r in rows where r < 0 || r >= count {
            throw EmberError.invalidArgument("gather", "row \(r) out of range 0..<\(count)")
        }
        let plane = sampleShape.reduce(1, *), n = rows.count
        let failures = UnsafeMutableBufferPointer<EmberError?>.allocate(capacity: max(n, 1))
        failures.initialize(repeating: nil)
        defer {
            _ = failures.deinitialize()
            failures.deallocate()
        }
        let images = Tensor.build(shape: [n] + sampleShape) { out in
            guard let base = out.baseAddress else { return }
            // Contiguous chunks of rows per thread; a chunk stops at its first failure, so the
            // first failing row of the batch is the first failure of the first failing chunk.
            Parallel.forRange(n, minChunk: 1) { begin, end in
                let bytes = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: plane)
                defer { bytes.deallocate() }
                for k in begin..<end {
                    do {
                        try decode(row: rows[k], into: base + k * plane, scratch: bytes)
                    } catch {
                        failures[k] = (error as? EmberError) ?? EmberError(.invalidArgument, "[image] \(ErrorIndex.describe(("row", rows[k]))): \(error)")
                        return
                    }
                }
            }
        }
        if let first = failures.first(where: { $0 != nil }), let error = first { throw error }
        return images
    }

    /// Decodes row `row` into `dst` (`plane` floats), through `resize` when its size differs.
    private func decode(row: Int, into dst: UnsafeMutablePointer<Float>, scratch: UnsafeMutableBufferPointer<UInt8>) throws {
        let path = paths[row], channels = sampleShape[0], height = sampleShape[1], width = sampleShape[2]
        let (h, w) = try ImageFile.decode(path, channels: channels, into: scratch, row: row, allowLarger: true)
        if h == height && w == width {
            // byte / 255 as torchvision's to_tensor divides (not a multiplication by 1/255).
            for i in 0..<scratch.count { dst[i] = Float(scratch[i]) / 255 }
            return
        }
        guard let resize else {
            throw EmberError(.shapeMismatch, "[image] \(ErrorIndex.describe(("row", row))): '\(path)' is \(h) × \(w) pixels (height × width); the source's images are \(height) × \(width) (pass a resize function to accept other sizes)",
                             detail: EmberError.Detail(op: "image", argument: "path", index: row, expected: "\(height) × \(width)", got: "\(h) × \(w)"))
        }
        // A smaller image is decoded in `scratch` already; a larger one is decoded again.
        let size = channels * h * w
        var bytes = [UInt8](scratch.prefix(min(size, scratch.count)))
        if size > scratch.count {
            bytes = [UInt8](repeating: 0, count: size)
            let (h2, w2) = try bytes.withUnsafeMutableBufferPointer { try ImageFile.decode(path, channels: channels, into: $0, row: row, allowLarger: true) }
            guard h2 == h, w2 == w else { throw ImageFile.changed(path, h, w, h2, w2, row: row) }
        }
        let image = try Tensor(shape: [channels, h, w], data: bytes.map { Float($0) / 255 })
        let resized: Tensor
        do {
            resized = try resize(image, height, width)
        } catch {
            let e = error as? EmberError
            throw EmberError(e?.kind ?? .invalidArgument, "[image] \(ErrorIndex.describe(("row", row))): '\(path)': resizing from \(h) × \(w) to \(height) × \(width) failed: \(e?.message ?? "\(error)")",
                             detail: EmberError.Detail(op: "image", argument: "resize", index: row))
        }
        guard resized.shape == sampleShape else {
            throw EmberError(.shapeMismatch, "[image] \(ErrorIndex.describe(("row", row))): '\(path)': the resize function returned \(shapeString(resized.shape)); expected \(shapeString(sampleShape))",
                             detail: EmberError.Detail(op: "image", argument: "resize", index: row, expected: shapeString(sampleShape), got: shapeString(resized.shape)))
        }
        let p = resized.unsafeReadPointer
        for i in 0..<resized.count {
            guard p[i].isFinite else {
                throw EmberError(.invalidArgument, "[image] \(ErrorIndex.describe(("row", row))): '\(path)': the resize function returned \(p[i]) at element \(i); expected finite values",
                                 detail: EmberError.Detail(op: "image", argument: "resize", index: row, expected: "finite values", got: "\(p[i])"))
            }
            dst[i] = p[i]
        }
    }
}
