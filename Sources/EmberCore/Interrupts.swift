import Glibc

/// The host's check for a pending user interrupt (R's Ctrl-C), which the engine polls on the
/// calling thread between batches of training, validation and prediction and while copying large
/// data, so that a long call returns promptly with an `EmberError` of kind `.interrupted` and
/// leaves its objects usable (a training slice keeps the batches it ran).
///
/// The check is process-wide and set by the host (`ember_set_interrupt_check` in the C ABI); it
/// must be cheap and must not unwind through the engine's frames (R's glue runs
/// `R_CheckUserInterrupt` inside `R_ToplevelExec`). Without a check, polling does nothing.
public enum Interrupts {
    /// A host check: returns non-zero when the engine should stop. Receives the host's context.
    public typealias Check = @convention(c) (UnsafeMutableRawPointer?) -> Int32

    nonisolated(unsafe) private static var check: Check?
    nonisolated(unsafe) private static var context: UnsafeMutableRawPointer?
    nonisolated(unsafe) private static var mutex: pthread_mutex_t = {
        var m = pthread_mutex_t()
        pthread_mutex_init(&m, nil)
        return m
    }()

    /// Sets (or, with nil, removes) the host's check and the context passed to it.
    public static func set(_ newCheck: Check?, context newContext: UnsafeMutableRawPointer?) {
        pthread_mutex_lock(&mutex)
        check = newCheck
        context = newContext
        pthread_mutex_unlock(&mutex)
    }

    /// Throws `EmberError` of kind `.interrupted` naming `op` when the host's check reports a
    /// pending interrupt; `progress` (e.g. "after 12 of 40 batches") goes into the message.
    public static func poll(_ op: String, _ progress: @autoclosure () -> String = "") throws {
        pthread_mutex_lock(&mutex)
        let (c, ctx) = (check, context)
        pthread_mutex_unlock(&mutex)
        guard let c, c(ctx) != 0 else { return }
        let p = progress()
        throw EmberError(.interrupted, "[\(op)] interrupted by the user\(p.isEmpty ? "" : " \(p)")",
                         detail: EmberError.Detail(op: op))
    }
}
