import CEmberSupport

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
public enum Engine {
    /// Sets the number of threads for Ember's loops and OpenBLAS together (1...65).
    public static func setNumThreads(_ n: Int) throws {
        guard n >= 1 && n <= 65 else {
            throw EmberError.invalidArgument("num_threads", "expected an integer in 1...65, got \(n)")
        }
        try BLAS.setNumThreads(n)
        Parallel.setNumThreads(n)
    }

    /// Threads used by Ember's loops and OpenBLAS; until set, OpenBLAS's default (the cores).
    public static var numThreads: Int { Parallel.numThreads }

    /// Starts Ember's loops with as many threads as OpenBLAS uses by default, so that one number
    /// describes both from the start (swift_once makes this thread-safe and run once).
    static let defaultsApplied: Bool = {
        cember_set_num_threads(Int32(clamping: BLAS.numThreads))
        return true
    }()
}
