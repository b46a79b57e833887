// `ember-bench placement`: where the machine's first two vCPUs sit relative to each other, as the
// round trip of a cache line between two threads pinned to CPUs 0 and 1 (one thread writes, the
// other answers). Two cores of one die (sharing its last-level cache) take tens of nanoseconds;
// two dies of an AMD EPYC (chiplets, no shared last-level cache) take several hundred. A
// virtual machine's host moves its vCPUs between such placements from minute to minute, and
// two-thread times follow: run.py measures this before and after every two-thread run. It also
// prints the engine's own view of the same: its pool's round trip and whether it counts its
// threads as being on two dies (Parallel.threadsOnTwoDies).
import EmberCore
import Glibc
import Synchronization

/// The line both threads spin on: 2i + 1 from the caller, 2i + 2 back from the answering thread.
/// A global, not a class's property: the object's reference count would share its cache line.
private let flag = Atomic<Int>(0)

/// Pins the calling thread to `cpu`, or lets it run on CPUs 0..<count (`cpu` nil); false when
/// the machine has no such CPU or refuses.
private func pin(to cpu: Int?, count: Int = 0) -> Bool {
    var set = cpu_set_t()
    withUnsafeMutableBytes(of: &set) { raw in
        raw.initializeMemory(as: UInt8.self, repeating: 0)
        let word = raw.bindMemory(to: UInt.self)
        let bits = UInt.bitWidth
        for c in cpu.map({ [$0] }) ?? Array(0..<count) where c / bits < word.count {
            word[c / bits] |= 1 << UInt(c % bits)
        }
    }
    // pthread_setaffinity_np is a GNU extension the Glibc module does not declare: looked up at run time.
    typealias SetAffinity = @convention(c) (pthread_t, Int, UnsafePointer<cpu_set_t>) -> Int32
    guard let process = dlopen(nil, RTLD_NOW), let symbol = dlsym(process, "pthread_setaffinity_np") else { return false }
    let setAffinity = unsafeBitCast(symbol, to: SetAffinity.self)
    return setAffinity(pthread_self(), MemoryLayout<cpu_set_t>.size, &set) == 0
}

func placementBench(_ o: Options) throws {
    let rounds = try o.int("rounds", 200_000)
    guard rounds >= 1 else { throw EmberError.invalidArgument("placement", "--rounds must be at least 1, got \(rounds)") }
    // One CPU: the two threads would take turns by the scheduler's time slices.
    guard sysconf(Int32(_SC_NPROCESSORS_ONLN)) >= 2 else {
        emit([("system", .text("ember-swift")), ("round_trip_ns", .number(.nan))])
        return
    }
    guard pin(to: 0) else { throw EmberError.invalidArgument("placement", "cannot pin a thread to CPU 0") }
    flag.store(0, ordering: .releasing)
    var thread = pthread_t()
    // The round count travels as the context pointer's bits.
    let created = pthread_create(&thread, nil, { raw in
        let rounds = Int(bitPattern: raw)
        _ = pin(to: 1)
        for i in 0..<rounds {
            while flag.load(ordering: .acquiring) != 2 * i + 1 {}
            flag.store(2 * i + 2, ordering: .releasing)
        }
        return nil
    }, UnsafeMutableRawPointer(bitPattern: rounds))
    guard created == 0 else { throw EmberError.invalidArgument("placement", "cannot start the answering thread") }
    let start = now()
    for i in 0..<rounds {
        flag.store(2 * i + 1, ordering: .releasing)
        while flag.load(ordering: .acquiring) != 2 * i + 2 {}
    }
    let seconds = now() - start
    pthread_join(thread, nil)
    // The engine's own view: its pool's measurement at two threads (Parallel.roundTripNanoseconds).
    // Pool workers inherit the creating thread's CPUs: unpinned first.
    _ = pin(to: nil, count: sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    try Engine.setNumThreads(2)
    emit([("system", .text("ember-swift")), ("round_trip_ns", .number(seconds / Double(rounds) * 1e9)),
          ("pool_round_trip_ns", .number(Parallel.roundTripNanoseconds.map(Double.init) ?? .nan)),
          ("two_dies", .number(Parallel.threadsOnTwoDies ? 1 : 0))])
}
