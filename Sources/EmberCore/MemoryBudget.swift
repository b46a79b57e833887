import Glibc

/// The memory the engine may still allocate, checked before large allocations (a network's
/// weights, a training batch's activations, a dataset's values, a prediction's outputs), so that a
/// request beyond what the machine has becomes an `EmberError` of kind `.memory` stating the bytes
/// needed, instead of the kernel's out-of-memory kill of the host process.
///
/// Available memory is `MemAvailable` of /proc/meminfo, capped by the cgroup's `memory.max` less
/// its `memory.current` (containers) and by the environment variable `EMBER_MEMORY_LIMIT` (bytes)
/// when set. Each request is compared with what is available at the time of the check; when none of
/// these sources can be read, nothing is refused. A request of at most `smallRequestBytes` is
/// compared with `EMBER_MEMORY_LIMIT` only: reading /proc/meminfo and the cgroup's files takes tens
/// of microseconds, more than predicting a row, while the kernel keeps far more than such a
/// request in reserve.
public enum MemoryBudget {
    /// Requests up to this many bytes (1 MiB) are not compared with the machine's memory, only
    /// with `EMBER_MEMORY_LIMIT`.
    public static let smallRequestBytes = 1 << 20

    /// Bytes available to the engine now, or nil when unknown.
    public static func availableBytes() -> Int? {
        var limits: [Int] = []
        if let kb = meminfoKilobytes("MemAvailable:") { limits.append(saturatingProduct([kb, 1024])) }
        if let max = readInteger("/sys/fs/cgroup/memory.max"), let current = readInteger("/sys/fs/cgroup/memory.current") {
            limits.append(Swift.max(max - current, 0))
        }
        if let limit = environmentLimit() { limits.append(limit) }
        return limits.min()
    }

    /// `EMBER_MEMORY_LIMIT` in bytes, or nil when unset or not a non-negative integer.
    static func environmentLimit() -> Int? {
        guard let text = getenv("EMBER_MEMORY_LIMIT").map({ String(cString: $0) }), let limit = Int(text), limit >= 0 else { return nil }
        return limit
    }

    /// Throws `EmberError` of kind `.memory` when `bytes` exceed the available memory. `what`
    /// says what needs the memory (e.g. "a training batch of 512 rows"), `advice` how to need
    /// less; `op` and `argument` go into the error's detail.
    public static func check(_ bytes: Int, _ what: @autoclosure () -> String, op: String, argument: String? = nil,
                             advice: @autoclosure () -> String = "") throws {
        if bytes <= smallRequestBytes, environmentLimit().map({ bytes <= $0 }) ?? true { return }
        guard let available = availableBytes(), bytes > available else { return }
        let advice = advice()
        throw EmberError(.memory, "[\(op)] \(what()) needs \(describe(bytes)); \(describe(available)) \(available == 1 ? "is" : "are") available\(advice.isEmpty ? "" : ": \(advice)")",
                         detail: EmberError.Detail(op: op, argument: argument, expected: "at most \(available) bytes", got: "\(bytes) bytes"))
    }

    /// The product of non-negative `factors`, `Int.max` when it overflows (a byte count that no
    /// machine has).
    public static func saturatingProduct(_ factors: [Int]) -> Int {
        var p = 1
        for f in factors {
            let (m, overflow) = p.multipliedReportingOverflow(by: Swift.max(f, 0))
            if overflow { return Int.max }
            p = m
        }
        return p
    }

    /// The sum of non-negative `terms`, `Int.max` when it overflows.
    public static func saturatingSum(_ terms: [Int]) -> Int {
        var s = 0
        for t in terms {
            let (m, overflow) = s.addingReportingOverflow(Swift.max(t, 0))
            if overflow { return Int.max }
            s = m
        }
        return s
    }

    /// "12345678 bytes (11.8 MiB)".
    static func describe(_ bytes: Int) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = Double(bytes), unit = ""
        for u in units where value >= 1024 {
            value /= 1024
            unit = u
        }
        let tenths = Int((value * 10).rounded())
        return unit.isEmpty ? "\(bytes) bytes" : "\(bytes) bytes (\(tenths / 10).\(tenths % 10) \(unit))"
    }

    /// A field of /proc/meminfo in KiB.
    static func meminfoKilobytes(_ field: String) -> Int? {
        readBytes("/proc/meminfo").flatMap { meminfoValue(field, in: $0) }
    }

    /// The integer after `field` at the start of a line of meminfo-formatted `bytes`
    /// ("MemAvailable:   123 kB"), nil when no line starts with it or no integer follows. Scans the
    /// bytes: splitting the text into strings took most of a large prediction's memory check
    /// (~40 µs of 10,000 rows' 2.3 ms).
    static func meminfoValue(_ field: String, in bytes: [UInt8]) -> Int? {
        let key = Array(field.utf8)
        let space = UInt8(ascii: " "), newline = UInt8(ascii: "\n"), zero = UInt8(ascii: "0"), nine = UInt8(ascii: "9")
        var i = 0
        while i < bytes.count {
            if bytes.count - i >= key.count, bytes[i..<(i + key.count)].elementsEqual(key) {
                var j = i + key.count
                while j < bytes.count, bytes[j] == space { j += 1 }
                var value = 0, digits = 0
                while j < bytes.count, bytes[j] >= zero, bytes[j] <= nine {
                    // 18 digits cannot overflow an Int; more is no memory size.
                    guard digits < 18 else { return nil }
                    value = value * 10 + Int(bytes[j] - zero)
                    digits += 1
                    j += 1
                }
                guard digits > 0, j == bytes.count || bytes[j] == space || bytes[j] == newline else { return nil }
                return value
            }
            while i < bytes.count, bytes[i] != newline { i += 1 }
            i += 1
        }
        return nil
    }

    /// A file holding one integer ("max" and unreadable files give nil).
    static func readInteger(_ path: String) -> Int? {
        readText(path).flatMap { Int($0.split(separator: "\n").first ?? "") }
    }

    static func readText(_ path: String) -> String? {
        readBytes(path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The bytes of a file (at most about 1 MiB), nil when it cannot be opened.
    static func readBytes(_ path: String) -> [UInt8]? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, f)
            if n <= 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
            if bytes.count > 1 << 20 { break }
        }
        return bytes
    }
}
