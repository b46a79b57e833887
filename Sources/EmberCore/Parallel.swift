import CEmberSupport
import COpenBLAS
import Glibc

/// Ember's own loops over several threads (a small C pool; see threadpool.c for why not Dispatch).
public enum Parallel {
    /// Loops shorter than this many elements per thread run on one thread: below it, waking
    /// workers costs more than it saves.
    public static let minimumChunk = 32_768

    /// Threads Ember's loops use.
    public static var numThreads: Int {
        _ = Engine.defaultsApplied
        return Int(cember_num_threads())
    }

    /// Threads set with `Engine.setNumThreads`, inside `serially` too: how many panels `BLAS.gemm`
    /// cuts a product that OpenBLAS computes into, so that its bits do not depend on where it runs.
    static var requestedThreads: Int {
        _ = Engine.defaultsApplied
        return Int(cember_requested_threads())
    }

    /// The round trip of a cache line between two of the pool's threads, in nanoseconds, or nil
    /// with one thread (or while no measurement has succeeded). The pool measures it within a job
    /// of one chunk per thread (32 round trips), again when the last measurement is 50 ms old:
    /// about 60 ns between two cores of one die, several hundred between two dies of the CPU,
    /// which share no last-level cache (AMD's chiplets; a virtual machine's vCPUs may sit either
    /// way and move between the two).
    public static var roundTripNanoseconds: Int? {
        _ = Engine.defaultsApplied
        let ns = cember_pool_round_trip_ns(50_000_000)
        return ns >= 0 ? Int(ns) : nil
    }

    /// Round trips from which the pool's threads count as being on two dies (`roundTripNanoseconds`).
    public static let farRoundTrip = 200

    /// Whether the pool's threads sit on two dies of the CPU, as far as their round trip tells.
    public static var threadsOnTwoDies: Bool { (roundTripNanoseconds ?? 0) >= farRoundTrip }

    /// For tests: makes `roundTripNanoseconds` give `ns` (with more than one thread) instead of
    /// measuring, or measure again (nil).
    static func forceRoundTrip(_ ns: Int?) {
        _ = cember_pool_force_round_trip_ns(ns.map { Int32(clamping: $0) } ?? -1)
    }

    /// Runs `body` with this thread's loops and matrix products on this thread alone
    /// (`numThreads` is 1 inside), the pool left idle; nests.
    public static func serially<T>(_ body: () throws -> T) rethrows -> T {
        cember_serial_begin()
        defer { cember_serial_end() }
        return try body()
    }

    /// Sets the threads of Ember's loops (not of BLAS: see `Engine.setNumThreads`).
    static func setNumThreads(_ n: Int) {
        _ = Engine.defaultsApplied
        cember_set_num_threads(Int32(clamping: n))
    }

    /// Runs `body(begin, end)` over chunks of 0..<n, in parallel when each chunk has at least
    /// `minChunk` iterations; denormals are flushed on every thread.
    public static func forRange(_ n: Int, minChunk: Int = minimumChunk, _ body: (Int, Int) -> Void) {
        if n <= 0 { return }
        if n < 2 * minChunk || numThreads == 1 {
            // The same floating-point mode as the pool's workers, so results do not depend on
            // the thread count or the size.
            withDenormalsFlushed { body(0, n) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            var box = escapable
            withUnsafeMutablePointer(to: &box) { ctx in
                cember_parallel_for(Int64(n), Int64(minChunk), { raw, begin, end in
                    guard let raw else { return }
                    let f = raw.assumingMemoryBound(to: ((Int, Int) -> Void).self).pointee
                    f(Int(begin), Int(end))
                }, ctx)
            }
        }
    }
}

/// Engine-wide settings.
///
/// One pool of threads does all of Ember's work: its own loops, and matrix products split into
/// panels by `BLAS.gemm`, each a single-threaded OpenBLAS call. OpenBLAS's own threads would spin
/// (sched_yield) for a while after each call and take the cores from Ember's loops, so Ember keeps
/// OpenBLAS at one thread (a process-wide OpenBLAS setting: R's own BLAS calls see it too).
public enum Engine {
    /// Sets the number of threads Ember computes with (1...65); OpenBLAS stays single-threaded.
    public static func setNumThreads(_ n: Int) throws {
        guard n >= 1 && n <= 65 else {
            throw EmberError.invalidArgument("num_threads", "expected an integer in 1...65, got \(n)")
        }
        _ = defaultsApplied
        try BLAS.setNumThreads(1)
        Parallel.setNumThreads(n)
    }

    /// Threads Ember computes with; until set, OpenBLAS's default (the cores).
    public static var numThreads: Int { Parallel.numThreads }

    /// The size in bytes of the last-level cache that CPU 0 shares with its neighbours: the highest
    /// cache level under /sys/devices/system/cpu/cpu0/cache (on an AMD EPYC the L3 of one core
    /// complex, 32 MiB on a Zen 3, where the C library's `sysconf` reports the whole package's 256
    /// MiB); else `sysconf`'s L3 or L2; else 8 MiB.
    public static let lastLevelCacheBytes: Int = {
        var level = 0, bytes = 0
        for index in 0..<8 {
            let dir = "/sys/devices/system/cpu/cpu0/cache/index\(index)/"
            guard let l = MemoryBudget.readInteger(dir + "level"),
                  let size = MemoryBudget.readText(dir + "size").map({ String($0.filter { !$0.isWhitespace }) }),
                  let b = cacheSizeBytes(size), l > level else { continue }
            (level, bytes) = (l, b)
        }
        if bytes > 0 { return bytes }
        for name in [_SC_LEVEL3_CACHE_SIZE, _SC_LEVEL2_CACHE_SIZE] {
            let b = sysconf(Int32(name))
            if b > 0 { return b }
        }
        return 8 << 20
    }()

    /// Bytes of a sysfs cache size ("32768K", "1M", "512"), or nil (not a positive size, or too
    /// large for an `Int`).
    static func cacheSizeBytes(_ text: String) -> Int? {
        let scale: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        guard let last = text.last else { return nil }
        let factor = scale[last]
        guard let count = Int(factor == nil ? Substring(text) : text.dropLast()), count > 0 else { return nil }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: factor ?? 1)
        return overflow ? nil : bytes
    }

    /// Starts Ember's pool with as many threads as OpenBLAS would use by default and turns
    /// OpenBLAS's own threads off (swift_once makes this thread-safe and run once).
    static let defaultsApplied: Bool = {
        cember_set_num_threads(Int32(clamping: BLAS.numThreads))
        openblas_set_num_threads(1)
        return true
    }()
}
