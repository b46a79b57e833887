import EmberCore
import Glibc

/// Assembles the inputs of the next batch on a background thread while the current batch trains
/// (or predicts), for datasets with batch sources (image files are decoded, bytes widened): at
/// most one batch is produced ahead, so memory stays bounded by two batches.
///
/// `start(rows)` hands a batch to the thread; `take()` waits for it and returns its inputs or
/// throws its error, so an error surfaces at the batch it belongs to. A batch started and never
/// taken is dropped (with its error) by the next `start` or by `close()`.
///
/// The thread is a plain pthread, not Dispatch (R forks; see `Parallel`). When it cannot be
/// started, `start` produces the batch on the caller's thread: same values, no overlap.
final class BatchPrefetcher: @unchecked Sendable {
    typealias Produce = @Sendable ([Int]) throws -> [Tensor]

    private let produce: Produce
    // State shared with the thread, guarded by `mutex`.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var job: [Int]?
    private var result: Result<[Tensor], any Error>?
    private var working = false
    private var closing = false
    private var thread: pthread_t?

    /// Starts the thread that will run `produce` on the rows handed to `start`.
    init(_ produce: @escaping Produce) {
        self.produce = produce
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(changed, nil)
        var tid = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&tid, nil, { context in
            guard let context else { return nil }
            let prefetcher = Unmanaged<BatchPrefetcher>.fromOpaque(context).takeRetainedValue()
            prefetcher.work()
            return nil
        }, context)
        if rc == 0 {
            thread = tid
        } else {
            Unmanaged<BatchPrefetcher>.fromOpaque(context).release()
        }
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(mutex)
        changed.deallocate()
        mutex.deallocate()
    }

    /// The rows most recently handed to `start`, whose inputs `take` returns.
    private(set) var started: [Int]?

    /// Hands the batch `rows` to the thread (dropping a batch started and not taken).
    func start(_ rows: [Int]) {
        started = rows
        guard thread != nil else {
            let r = Result { try produce(rows) }
            pthread_mutex_lock(mutex)
            result = r
            pthread_mutex_unlock(mutex)
            return
        }
        pthread_mutex_lock(mutex)
        // A batch still being produced finishes first; its result is then dropped.
        while working { pthread_cond_wait(changed, mutex) }
        job = rows
        result = nil
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
    }

    /// Waits for the batch last started and returns its inputs.
    /// - Throws: the error producing it threw; an `invalidState` error when nothing was started.
    func take() throws -> [Tensor] {
        pthread_mutex_lock(mutex)
        while thread != nil && result == nil && (job != nil || working) { pthread_cond_wait(changed, mutex) }
        let r = result
        result = nil
        pthread_mutex_unlock(mutex)
        started = nil
        guard let r else { throw EmberError(.invalidState, "[prefetch] no batch was started") }
        return try r.get()
    }

    /// The inputs of batch `rows` (started now unless it is the batch in flight); then starts
    /// `next`, the batch that will be asked for after this one, if any.
    func inputs(_ rows: [Int], next: [Int]?) throws -> [Tensor] {
        if started != rows { start(rows) }
        let inputs = try take()
        if let next { start(next) }
        return inputs
    }

    /// Stops the thread (after the batch it is producing, if any) and waits for it.
    func close() {
        guard let thread else { return }
        pthread_mutex_lock(mutex)
        closing = true
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
        pthread_join(thread, nil)
        self.thread = nil
    }

    /// The thread's loop: produce each batch handed over until closed.
    private func work() {
        pthread_mutex_lock(mutex)
        while true {
            while job == nil && !closing { pthread_cond_wait(changed, mutex) }
            if closing { break }
            guard let rows = job else { continue }
            job = nil
            working = true
            pthread_mutex_unlock(mutex)
            let r = Result { try produce(rows) }
            pthread_mutex_lock(mutex)
            working = false
            result = r
            pthread_cond_broadcast(changed)
        }
        pthread_mutex_unlock(mutex)
    }
}
