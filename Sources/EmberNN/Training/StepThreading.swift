import Glibc

/// Whether a compiled training step runs on the pool's threads or on the training thread alone,
/// chosen by timing both on the trainer's own batches.
///
/// With several threads, a step of small layers can take longer split than on one thread: each
/// product and pass pays for waking the other thread and for reading what it wrote, which is more
/// than the half of a small product saves, and how much more depends on the CPU and on where the
/// host has put the threads (two cores of one die, or of two dies that share no cache). The bits do
/// not depend on the choice (`BLAS.gemm` cuts every product by the requested thread count wherever
/// it runs), so the trainer measures instead of guessing:
///
/// - the first measurement starts after `warmUpSteps` full batches, which run split (the first
///   steps also fault in pages and fill the optimizer's state);
/// - a measurement is `blocks` blocks of `blockSteps` full batches each, split and alone in turn;
///   the first step of a block is not timed (the pool's workers may have gone to sleep during a
///   block alone, and the caches hold what the other way left);
/// - each split block is compared with the block alone right after it (the ratio of their median
///   steps), and the way that wins the median of these ratios runs until the next measurement: a
///   host that slows the machine for a block or two (a virtual machine's neighbours) moves both
///   blocks of a pair, or one ratio of several, not the choice;
/// - the next measurement comes `recheckClose` full batches later, or `recheckClear` when the
///   median ratio was over `clearMargin` either way (a wide layer split across two threads: no
///   need to pay for its slow steps alone often);
/// - each placement of the pool's threads (`Parallel.threadsOnTwoDies`) has its own choice and
///   measurement, since the host moves the threads between the two placements.
///
/// A batch shorter than the others (the last of an epoch) runs the current way and is not timed;
/// when the data have fewer rows than a batch, every batch is full.
struct StepThreading {
    /// Full batches in a block of one way within a measurement.
    static let blockSteps = 3
    /// Blocks in a measurement: split, alone, split, alone, … (an even count).
    static let blocks = 8
    /// Full batches before the first measurement.
    static let warmUpSteps = 8
    /// Full batches between measurements after a close result.
    static let recheckClose = 1024
    /// Full batches between measurements after a clear one.
    static let recheckClear = 4096
    /// The ratio of the times from which a result counts as clear.
    static let clearMargin = 1.25

    /// Timed steps in a measurement: all but the first of each block.
    static let timedSteps = blocks * (blockSteps - 1)

    /// One placement's choice and measurement.
    struct Placement: Equatable {
        /// The way chosen by the last measurement (nil before the first one has finished).
        var alone: Bool?
        /// Full batches left before the next measurement starts.
        var untilMeasurement = StepThreading.warmUpSteps
        /// The step of the measurement in progress (0..<blocks · blockSteps), nil between measurements.
        var position: Int?
        /// The timed steps of the measurement in progress, in nanoseconds, in the order taken; its
        /// room for a whole measurement is reserved once, so timing allocates nothing.
        var times: [UInt64] = {
            var times: [UInt64] = []
            times.reserveCapacity(StepThreading.timedSteps)
            return times
        }()

        /// `StepThreading.record` for this placement, in place (no copy of `times`).
        mutating func record(nanoseconds: UInt64?) {
            guard let position else {
                untilMeasurement -= 1
                if untilMeasurement <= 0 { self.position = 0 }
                return
            }
            if let nanoseconds, times.count < StepThreading.timedSteps { times.append(nanoseconds) }
            if position + 1 < StepThreading.blocks * StepThreading.blockSteps {
                self.position = position + 1
                return
            }
            if let ratio = StepThreading.splitOverAlone(times) {
                alone = ratio > 1
                untilMeasurement = Swift.max(ratio, 1 / ratio) > StepThreading.clearMargin
                    ? StepThreading.recheckClear : StepThreading.recheckClose
            } else {
                // Not every step was timed: the last choice stays, and the next measurement comes soon.
                untilMeasurement = StepThreading.warmUpSteps
            }
            self.position = nil
            times.removeAll(keepingCapacity: true)
        }
    }

    /// Index 0: the pool's threads on one die; 1: on two dies.
    var placements = [Placement(), Placement()]

    /// How the next batch runs: on the training thread alone or not, and whether to time it.
    func next(twoDies: Bool, fullBatch: Bool) -> (alone: Bool, timed: Bool) {
        let p = placements[twoDies ? 1 : 0]
        guard let position = p.position else { return (p.alone ?? false, false) }
        let alone = (position / Self.blockSteps) % 2 == 1
        // A short batch takes the chosen way (or the block's, before the first choice), untimed.
        if !fullBatch { return (p.alone ?? alone, false) }
        return (alone, position % Self.blockSteps != 0)
    }

    /// Records a batch that `next(twoDies:fullBatch:)` described: `nanoseconds` is its time when
    /// it was timed. Short batches do not count. Allocates nothing.
    mutating func record(twoDies: Bool, fullBatch: Bool, nanoseconds: UInt64?) {
        guard fullBatch else { return }
        placements[twoDies ? 1 : 0].record(nanoseconds: nanoseconds)
    }

    /// The median over the pairs of blocks (split, then alone) of the ratio of their median steps,
    /// from a measurement's timed steps in order; nil unless every step it should time is there.
    /// Works in stack space (no heap allocation).
    static func splitOverAlone(_ times: [UInt64]) -> Double? {
        let timed = blockSteps - 1
        guard times.count == timedSteps else { return nil }
        return withUnsafeTemporaryAllocation(of: Double.self, capacity: blocks / 2) { ratios in
            withUnsafeTemporaryAllocation(of: Double.self, capacity: timed) { block in
                func blockMedian(_ b: Int) -> Double {
                    for i in 0..<timed { block[i] = Double(times[b * timed + i]) }
                    return median(block)
                }
                for pair in 0..<(blocks / 2) {
                    ratios[pair] = blockMedian(2 * pair) / Swift.max(blockMedian(2 * pair + 1), 1)
                }
                return median(ratios)
            }
        }
    }

    /// The median of `values`, which it sorts in place (insertion sort: a handful of values).
    static func median(_ values: UnsafeMutableBufferPointer<Double>) -> Double {
        let n = values.count
        guard n > 0 else { return 0 }
        for i in 1..<n {
            let v = values[i]
            var j = i
            while j > 0 && values[j - 1] > v {
                values[j] = values[j - 1]
                j -= 1
            }
            values[j] = v
        }
        let mid = n / 2
        return n % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2
    }

    /// The median of `values`.
    static func median(_ values: [Double]) -> Double {
        var copy = values
        return copy.withUnsafeMutableBufferPointer { median($0) }
    }

    /// A monotonic clock in nanoseconds.
    static func now() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(truncatingIfNeeded: t.tv_sec) &* 1_000_000_000 &+ UInt64(truncatingIfNeeded: t.tv_nsec)
    }
}
