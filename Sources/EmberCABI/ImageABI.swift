import EmberCore
import EmberNN

// Image-file functions of include/ember.h: PNG and JPEG files decoded by the engine, as a dataset
// input read per batch and one by one.

/// The channel count of a C call: 1 or 3.
func checkedChannels(_ channels: Int64) throws -> Int {
    guard channels == 1 || channels == 3 else {
        throw EmberError(.invalidArgument, "[channels] must be 1 (gray) or 3 (RGB), got \(channels)",
                         detail: EmberError.Detail(op: "image", argument: "channels", expected: "1 or 3", got: "\(channels)"))
    }
    return Int(channels)
}

/// Adds an input of image files, one per row, decoded per batch into [channels, height, width].
@_cdecl("ember_dataset_add_image_files")
public func ember_dataset_add_image_files(_ dataset: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                          _ paths: UnsafePointer<UnsafePointer<CChar>?>?, _ nPaths: Int64,
                                          _ channels: Int64, _ height: Int64, _ width: Int64) -> Int32 {
    guarded {
        let box = try HandleRegistry.shared.lookup(dataset, DatasetBox.self, "dataset")
        let n = try string(name, "name")
        guard nPaths == Int64(box.rows) else {
            throw EmberError(.shapeMismatch, "[n_paths] the dataset has \(box.rows) rows; one path per row is needed, got \(nPaths)",
                             detail: EmberError.Detail(op: "dataset", argument: "n_paths", expected: "\(box.rows)", got: "\(nPaths)"))
        }
        guard let paths else { throw EmberError.invalidArgument("paths", "is NULL") }
        let c = try checkedChannels(channels)
        let h = try checkedCount(height, "height", lower: 1), w = try checkedCount(width, "width", lower: 1)
        guard h <= ImageFile.maxPixels / w else {
            throw EmberError(.overflow, "[height] images of \(h) × \(w) pixels exceed the limit of \(ImageFile.maxPixels) pixels",
                             detail: EmberError.Detail(op: "dataset", argument: "height", expected: "at most \(ImageFile.maxPixels) pixels", got: "\(h) × \(w)"))
        }
        var files: [String] = []
        files.reserveCapacity(box.rows)
        for i in 0..<box.rows {
            guard let p = paths[i] else {
                throw EmberError(.invalidArgument, "[paths] paths[\(ErrorIndex.number(i))]\(ErrorIndex.qualifier) is NULL",
                                 detail: EmberError.Detail(op: "dataset", argument: "paths", index: i, expected: "a file path", got: "NULL"))
            }
            files.append(try string(p, "paths"))
        }
        // Files of another size are resized (bilinear, as torchvision's resize without antialiasing).
        try box.add(n, source: try ImageFileSource(paths: files, sampleShape: [c, h, w],
                                                   resize: { try ImageTransform.resizeImage($0, height: $1, width: $2) }))
    }
}

/// Reads the header of an image file.
@_cdecl("ember_image_info")
public func ember_image_info(_ path: UnsafePointer<CChar>?, _ outChannels: UnsafeMutablePointer<Int64>?,
                             _ outHeight: UnsafeMutablePointer<Int64>?, _ outWidth: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded {
        let p = try string(path, "path")
        guard let outChannels else { throw EmberError.invalidArgument("out_channels", "is NULL") }
        guard let outHeight else { throw EmberError.invalidArgument("out_height", "is NULL") }
        guard let outWidth else { throw EmberError.invalidArgument("out_width", "is NULL") }
        let info = try ImageFile.info(p)
        outChannels.pointee = Int64(info.channels)
        outHeight.pointee = Int64(info.height)
        outWidth.pointee = Int64(info.width)
    }
}

/// Decodes an image file into a caller buffer of exactly channels × height × width bytes (CHW).
@_cdecl("ember_image_read")
public func ember_image_read(_ path: UnsafePointer<CChar>?, _ channels: Int64, _ out: UnsafeMutablePointer<UInt8>?,
                             _ outLength: Int64) -> Int32 {
    guarded {
        let p = try string(path, "path")
        let c = try checkedChannels(channels)
        guard let out else { throw EmberError.invalidArgument("out", "is NULL") }
        // Decoded into engine memory first: `out` is written only on success.
        let (bytes, height, width) = try ImageFile.read(p, channels: c)
        guard outLength == Int64(bytes.count) else {
            throw EmberError(.shapeMismatch, "[out_length] '\(p)' decodes to \(c) × \(height) × \(width) = \(bytes.count) bytes; out_length is \(outLength)",
                             detail: EmberError.Detail(op: "image", argument: "out_length", expected: "\(bytes.count)", got: "\(outLength)"))
        }
        bytes.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { out.update(from: base, count: bytes.count) }
        }
    }
}
