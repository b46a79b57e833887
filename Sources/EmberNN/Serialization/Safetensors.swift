import EmberCore

/// Reads and writes the safetensors layout: an 8-byte little-endian header length, a JSON header
/// (tensor name → dtype, shape, data offsets; plus a `__metadata__` map of strings), then the raw
/// little-endian tensor data, contiguous and in header order. PyTorch's `safetensors` reads what
/// we write.
public enum Safetensors {
    /// Encodes named float32 tensors and string metadata.
    public static func encode(tensors: [(String, Tensor)], metadata: [(String, String)]) -> [UInt8] {
        var header: [(String, JSONValue)] = [("__metadata__", .object(metadata.map { ($0.0, .string($0.1)) }))]
        var offset = 0
        for (name, t) in tensors {
            let size = t.count * 4
            header.append((name, .object([
                ("dtype", .string("F32")),
                ("shape", .array(t.shape.map { .number(Double($0)) })),
                ("data_offsets", .array([.number(Double(offset)), .number(Double(offset + size))])),
            ])))
            offset += size
        }
        var headerBytes = Array(JSONValue.object(header).text.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }  // pad with spaces (spec)
        var out = [UInt8]()
        out.reserveCapacity(8 + headerBytes.count + offset)
        var len = UInt64(headerBytes.count).littleEndian
        withUnsafeBytes(of: &len) { out.append(contentsOf: $0) }
        out.append(contentsOf: headerBytes)
        for (_, t) in tensors {
            for v in t.data {
                var bits = v.bitPattern.littleEndian
                withUnsafeBytes(of: &bits) { out.append(contentsOf: $0) }
            }
        }
        return out
    }

    /// A decoded file: the tensors (widened to float32), the dtype each was stored with (`F32`,
    /// `I64` …), and the string metadata.
    public struct Contents: Sendable {
        /// The tensors by name, as float32.
        public var tensors: [String: Tensor]
        /// The stored dtype of each tensor.
        public var dtypes: [String: String]
        /// `__metadata__`.
        public var metadata: [String: String]
    }

    /// The dtypes that hold real numbers; the others (`I64`, `U8`, `BOOL` …) hold integers.
    public static let floatDTypes: Set<String> = ["F32", "F64", "F16", "BF16"]

    /// Decodes bytes written by `encode` (or by Python's safetensors with F32 tensors).
    /// Throws `EmberError.corruptData` naming what is wrong.
    public static func decode(_ bytes: [UInt8]) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let contents = try read(bytes)
        return (contents.tensors, contents.metadata)
    }

    /// Decodes bytes as `decode` does, keeping each tensor's stored dtype.
    public static func read(_ bytes: [UInt8]) throws -> Contents {
        guard bytes.count >= 8 else {
            throw EmberError(.corruptData, "[safetensors] need at least 8 bytes, got \(bytes.count)")
        }
        var len: UInt64 = 0
        for k in 0..<8 { len |= UInt64(bytes[k]) << (8 * UInt64(k)) }
        guard len <= UInt64(bytes.count - 8) else {
            throw EmberError(.corruptData, "[safetensors] header length \(len) exceeds the \(bytes.count - 8) bytes available")
        }
        let headerEnd = 8 + Int(len)
        let header = try JSONValue.parse(Array(bytes[8..<headerEnd]))
        guard case let .object(members) = header else {
            throw EmberError(.corruptData, "[safetensors] header is not a JSON object")
        }
        let dataCount = bytes.count - headerEnd
        var tensors: [String: Tensor] = [:]
        var dtypes: [String: String] = [:]
        var metadata: [String: String] = [:]
        for (name, entry) in members {
            if name == "__metadata__" {
                guard case let .object(m) = entry else { throw EmberError(.corruptData, "[safetensors] __metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v.stringValue else { throw EmberError(.corruptData, "[safetensors] metadata '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let dtype = entry["dtype"]?.stringValue,
                  let shapeValues = entry["shape"]?.arrayValue,
                  let offsets = entry["data_offsets"]?.arrayValue, offsets.count == 2,
                  let begin = offsets[0].intValue, let end = offsets[1].intValue
            else { throw EmberError(.corruptData, "[safetensors] tensor '\(name)' has a malformed entry") }
            // Integer and wider float dtypes are converted (BatchNorm's int64 num_batches_tracked,
            // float64 weights); half precision is widened.
            let width: Int
            switch dtype {
            case "F32", "I32": width = 4
            case "F64", "I64": width = 8
            case "F16", "BF16", "I16": width = 2
            case "I8", "U8", "BOOL": width = 1
            default:
                throw EmberError(.corruptData, "[safetensors] tensor '\(name)' has dtype \(dtype); expected a float or integer dtype")
            }
            var shape: [Int] = []
            for s in shapeValues {
                guard let d = s.intValue, d >= 0 else { throw EmberError(.corruptData, "[safetensors] tensor '\(name)' has an invalid shape") }
                shape.append(d)
            }
            let n = try Tensor.elementCount(shape, op: "safetensors")
            // The byte size may overflow even when the element count does not: reject, never trap.
            let (byteCount, byteOverflow) = n.multipliedReportingOverflow(by: width)
            guard !byteOverflow, begin >= 0, end >= begin, end <= dataCount, end - begin == byteCount else {
                throw EmberError(.corruptData,
                    "[safetensors] tensor '\(name)' of shape \(shapeString(shape)) has offsets [\(begin), \(end)] that do not fit \(dataCount) data bytes")
            }
            dtypes[name] = dtype
            var data = [Float](repeating: 0, count: n)
            let base = headerEnd + begin
            func le(_ offset: Int, _ bytesCount: Int) -> UInt64 {
                var v: UInt64 = 0
                for k in 0..<bytesCount { v |= UInt64(bytes[offset + k]) << (8 * UInt64(k)) }
                return v
            }
            if dtype == "F32" {
                // Little-endian floats: copy the bytes straight in (this runs on x86-64 and arm64).
                data.withUnsafeMutableBytes { dst in
                    bytes.withUnsafeBytes { src in
                        dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[base..<(base + byteCount)]))
                    }
                }
                tensors[name] = try Tensor(shape: shape, data: data)
                continue
            }
            for e in 0..<n {
                let o = base + width * e
                switch dtype {
                case "F32": data[e] = Float(bitPattern: UInt32(truncatingIfNeeded: le(o, 4)))
                case "F64": data[e] = Float(Double(bitPattern: le(o, 8)))
                case "I64": data[e] = Float(Int64(bitPattern: le(o, 8)))
                case "I32": data[e] = Float(Int32(truncatingIfNeeded: le(o, 4)))
                case "I16": data[e] = Float(Int16(truncatingIfNeeded: le(o, 2)))
                case "I8": data[e] = Float(Int8(truncatingIfNeeded: le(o, 1)))
                case "U8", "BOOL": data[e] = Float(le(o, 1))
                case "BF16": data[e] = Float(bitPattern: UInt32(truncatingIfNeeded: le(o, 2)) << 16)
                default: data[e] = Float(Float16(bitPattern: UInt16(truncatingIfNeeded: le(o, 2))))
                }
            }
            tensors[name] = try Tensor(shape: shape, data: data)
        }
        return Contents(tensors: tensors, dtypes: dtypes, metadata: metadata)
    }
}
