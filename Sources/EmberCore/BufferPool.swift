import Glibc

/// Recycles float buffers by size, so that a repeated computation of the same shapes takes no new
/// storage from the system allocator in the steady state.
///
/// Buffers are keyed by exact element count; at most `maxPooledBytes` are kept idle (beyond that a
/// released buffer is freed). Thread-safe.
public final class BufferPool: @unchecked Sendable {
    /// The process-wide pool every `Tensor` allocates from.
    public static let shared = BufferPool()

    /// Counters for leak tests and benchmarks.
    public struct Statistics: Equatable, Sendable {
        /// Buffers handed out and not yet returned (live tensor storages).
        public var live: Int
        /// Idle buffers kept for reuse.
        public var pooled: Int
        /// Buffers ever obtained from the system allocator.
        public var systemAllocations: Int
        /// Requests served from the pool.
        public var reuses: Int
    }

    private var mutex = pthread_mutex_t()
    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var pooledBytes = 0
    private var stats = Statistics(live: 0, pooled: 0, systemAllocations: 0, reuses: 0)
    /// Upper bound on idle memory held by the pool.
    public var maxPooledBytes = 1 << 30

    private init() { pthread_mutex_init(&mutex, nil) }

    /// A buffer of `count` floats (uninitialised).
    func acquire(_ count: Int) -> UnsafeMutablePointer<Float> {
        let n = max(count, 1)
        pthread_mutex_lock(&mutex)
        // In place (`free[n]?.popLast()`): copying the list out would make it shared and the
        // pop would reallocate it — a malloc per tensor in the steady state.
        if let p = free[n]?.popLast() {
            pooledBytes -= n * 4
            stats.pooled -= 1
            stats.live += 1
            stats.reuses += 1
            pthread_mutex_unlock(&mutex)
            return p
        }
        stats.live += 1
        stats.systemAllocations += 1
        pthread_mutex_unlock(&mutex)
        return UnsafeMutablePointer<Float>.allocate(capacity: n)
    }

    /// Returns a buffer obtained from `acquire(count)`.
    func release(_ pointer: UnsafeMutablePointer<Float>, _ count: Int) {
        let n = max(count, 1)
        pthread_mutex_lock(&mutex)
        stats.live -= 1
        if pooledBytes + n * 4 <= maxPooledBytes {
            free[n, default: []].append(pointer)
            pooledBytes += n * 4
            stats.pooled += 1
            pthread_mutex_unlock(&mutex)
            return
        }
        pthread_mutex_unlock(&mutex)
        pointer.deallocate()
    }

    /// Current counters.
    public var statistics: Statistics {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return stats
    }

    /// Frees every idle buffer.
    public func drain() {
        pthread_mutex_lock(&mutex)
        let lists = free
        free = [:]
        pooledBytes = 0
        stats.pooled = 0
        pthread_mutex_unlock(&mutex)
        for (_, list) in lists { for p in list { p.deallocate() } }
    }
}

/// Reference-counted float storage from the `BufferPool`; returned to the pool when the last
/// tensor using it goes away.
public final class TensorStorage: @unchecked Sendable {
    /// The first element. Internal to EmberCore: other modules read through
    /// `Tensor.withUnsafeBufferPointer` / `unsafeReadPointer` and write through
    /// `Tensor.withUnsafeMutableBufferPointer`, which copies shared storage first.
    let pointer: UnsafeMutablePointer<Float>
    /// Number of elements.
    public let count: Int

    /// Uninitialised storage for `count` floats.
    init(uninitializedCount count: Int) {
        self.count = count
        self.pointer = BufferPool.shared.acquire(count)
    }

    /// Storage holding `value` `count` times.
    convenience init(count: Int, repeating value: Float) {
        self.init(uninitializedCount: count)
        pointer.initialize(repeating: value, count: count)
    }

    /// A copy of `other`.
    convenience init(copying other: TensorStorage) {
        self.init(uninitializedCount: other.count)
        pointer.update(from: other.pointer, count: count)
    }

    deinit { BufferPool.shared.release(pointer, count) }
}
