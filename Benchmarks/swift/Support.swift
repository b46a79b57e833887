// What every benchmark of ember-bench needs: options, a clock, peak RSS, raw data files and one
// JSON line of results. Glibc only: Foundation would add its own pages to the peak RSS we report.
import EmberCore
import Glibc

/// `--name value` options of the command line.
struct Options {
    private var values: [String: String] = [:]

    init(_ arguments: ArraySlice<String>) throws {
        var rest = arguments
        while let name = rest.popFirst() {
            guard name.hasPrefix("--"), let value = rest.popFirst() else {
                throw EmberError.invalidArgument("ember-bench", "expected '--name value' pairs, got '\(name)'")
            }
            values[String(name.dropFirst(2))] = value
        }
    }

    func string(_ name: String, _ fallback: String? = nil) throws -> String {
        guard let v = values[name] ?? fallback else { throw EmberError.invalidArgument("ember-bench", "missing --\(name)") }
        return v
    }

    func int(_ name: String, _ fallback: Int? = nil) throws -> Int {
        guard let v = values[name].flatMap({ Int($0) }) ?? fallback else {
            throw EmberError.invalidArgument("ember-bench", "missing or non-integer --\(name)")
        }
        return v
    }
}

/// Seconds on the monotonic clock.
func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// CPU seconds used by the whole process (all threads): on a shared machine, a one-thread
/// measurement's CPU time is what the computation costs, whatever the other processes take.
func cpuNow() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// The median of `values` (NaN when empty).
func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return .nan }
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// Peak resident set size of this process in MiB (VmHWM in /proc/self/status).
func peakRSSMiB() -> Double {
    guard let f = fopen("/proc/self/status", "r") else { return .nan }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), f) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.hasPrefix("VmHWM:"), let kib = Double(text.dropFirst(6).filter(\.isNumber)) { return kib / 1024 }
    }
    return .nan
}

/// The whole content of a file, read in one call.
func readBytes(_ path: String) throws -> [UInt8] {
    guard let f = fopen(path, "rb") else { throw EmberError.invalidArgument("ember-bench", "cannot open \(path)") }
    defer { fclose(f) }
    fseek(f, 0, SEEK_END)
    var data = [UInt8](repeating: 0, count: max(ftell(f), 0))
    rewind(f)
    guard fread(&data, 1, data.count, f) == data.count else { throw EmberError.invalidArgument("ember-bench", "short read of \(path)") }
    return data
}

/// A file of little-endian float32 values.
func readFloats(_ path: String) throws -> [Float] {
    let bytes = try readBytes(path)
    return [Float](unsafeUninitializedCapacity: bytes.count / 4) { out, count in
        bytes.withUnsafeBytes { raw in
            for i in 0..<bytes.count / 4 { out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        }
        count = bytes.count / 4
    }
}

/// A JSON value of a result line.
enum Field {
    case text(String)
    case number(Double)

    var json: String {
        switch self {
        // Quotes, backslashes and line breaks (in error messages) become "'": one valid JSON line.
        case let .text(s): return "\"" + s.map { "\"\\\n".contains($0) ? "'" : String($0) }.joined() + "\""
        case let .number(x): return x.isFinite ? "\(x)" : "null"
        }
    }
}

/// Prints one result line: the fields, the BLAS core, the thread count and the peak RSS.
func emit(_ fields: [(String, Field)]) {
    let common: [(String, Field)] = [("blas_core", .text(BLAS.coreName)), ("kernels", .text("\(BLAS.kernels)")), ("threads", .number(Double(Engine.numThreads))),
                                     ("peak_rss_mib", .number(peakRSSMiB()))]
    print("{" + (fields + common).map { "\"\($0.0)\": \($0.1.json)" }.joined(separator: ", ") + "}")
    fflush(nil)
}
