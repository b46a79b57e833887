// A small fixed thread pool for Ember's own loops (elementwise ops, reductions, im2col) and split
// matrix products.
//
// Why not Dispatch: after fork() libdispatch refuses to run in the child if the parent used it,
// and R forks (parallel::mclapply, future's multicore). This pool notices a changed process id and
// starts fresh workers in the child. Each worker sets flush-to-zero/denormals-are-zero for the
// duration of a job (FTZ/DAZ are per thread) and restores its previous mode afterwards.
//
// A training step runs dozens of short parallel loops back to back; waking a sleeping thread
// costs a futex call and a trip through the scheduler each time (a fifth of a 2-thread MLP
// profile). So idle workers, and a caller waiting for its loop to finish, first watch the job
// counters for `SPIN_NS` before they sleep on the condition variable.
//
// The pool also measures how far apart its threads sit (cember_pool_round_trip_ns): the round trip
// of a cache line between two of them, within a job that has one chunk per thread.
#include "CEmberSupport.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

// How long an idle thread watches for work before it sleeps (nanoseconds). The gaps between the
// parallel loops of a small MLP's step (4 × 100, batch 32: ~140 µs per step) are longer than 30 µs,
// so with 30 µs the worker slept and woke several times per step and a 2-thread step took
// 0.135–0.233 ms over four runs, against 0.115–0.146 ms with 300 µs (1 thread: 0.14 ms). An idle
// pool burns at most this long after its last job.
#define SPIN_NS 300000

#define MAX_WORKERS 64

typedef struct {
    cember_range_fn fn;
    void *ctx;
    int64_t n;
    int64_t chunks;
    int64_t next;      // next chunk to hand out (under lock)
    uint64_t remaining;  // chunks not finished yet (under lock; read by spinning threads)
    uint64_t generation; // (under lock; read by spinning threads)
} job_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t submit_lock = PTHREAD_MUTEX_INITIALIZER;
static job_t job;
static int workers_started = 0;
static pid_t pool_pid = 0;  // the process the pool belongs to (for diagnostics)
static int32_t requested_threads = 1;
// cember_pool_round_trip_ns: the last measurement (ns; -1: none), when it was taken, and a test
// override (-1: none). Atomic: read and written by any caller.
static int32_t round_trip_ns = -1;
static int64_t round_trip_at_ns = 0;
static int32_t round_trip_forced_ns = -1;

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

// What spin_until waits for: *value != target, == target, or >= target.
enum { DIFFERS, EQUALS, REACHES };

// Watches `*value` (written by another thread) for up to `patience_ns`; returns 1 as soon as it
// compares with `target` as `until` says, 0 if that did not happen in time.
static int spin_until(const uint64_t *value, uint64_t target, int until, int64_t patience_ns) {
    int64_t deadline = 0;
    for (int i = 0;; i++) {
        uint64_t v = __atomic_load_n(value, __ATOMIC_ACQUIRE);
        if (until == DIFFERS ? v != target : until == EQUALS ? v == target : v >= target) return 1;
        CPU_RELAX();
        if ((i & 63) == 63) {
            int64_t t = now_ns();
            if (deadline == 0) {
                deadline = t + patience_ns;
            } else if (t > deadline) {
                return 0;
            }
        }
    }
}

static void chunk_bounds(int64_t n, int64_t chunks, int64_t c, int64_t *begin, int64_t *end) {
    int64_t base = n / chunks, extra = n % chunks;
    *begin = c * base + (c < extra ? c : extra);
    *end = *begin + base + (c < extra ? 1 : 0);
}

// Runs chunks of the current job until none are left; called with `lock` held, returns with it held.
static void run_chunks(uint64_t generation) {
    while (job.generation == generation && job.next < job.chunks) {
        int64_t c = job.next++;
        cember_range_fn fn = job.fn;
        void *ctx = job.ctx;
        int64_t begin, end;
        chunk_bounds(job.n, job.chunks, c, &begin, &end);
        pthread_mutex_unlock(&lock);
        uint32_t saved = cember_fp_flush_denormals();
        fn(ctx, begin, end);
        cember_fp_restore(saved);
        pthread_mutex_lock(&lock);
        __atomic_store_n(&job.remaining, job.remaining - 1, __ATOMIC_RELEASE);
        if (job.remaining == 0) pthread_cond_broadcast(&done_cv);
    }
}

// `arg`: the job generation when the worker was created (before the job that needed it was
// posted), so that it takes part in that job too.
static void *worker_main(void *arg) {
    pthread_mutex_lock(&lock);
    uint64_t seen = (uint64_t)(uintptr_t)arg;
    for (;;) {
        while (job.generation == seen || job.next >= job.chunks) {
            if (job.generation != seen) seen = job.generation;  // a job whose chunks are all taken
            pthread_mutex_unlock(&lock);
            int moved = spin_until(&job.generation, seen, DIFFERS, SPIN_NS);
            pthread_mutex_lock(&lock);
            if (!moved && job.generation == seen) pthread_cond_wait(&work_cv, &lock);
        }
        seen = job.generation;
        run_chunks(seen);
    }
    return NULL;
}

// In a forked child no worker threads exist and the locks may have been held by threads that are
// gone: start over with fresh locks and no workers (they are started again on demand).
static void reset_in_child(void) {
    pthread_mutex_init(&lock, NULL);
    pthread_cond_init(&work_cv, NULL);
    pthread_cond_init(&done_cv, NULL);
    pthread_mutex_init(&submit_lock, NULL);
    job.chunks = 0;
    job.next = 0;
    job.remaining = 0;
    workers_started = 0;
    pool_pid = getpid();
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_pool(void) {
    pool_pid = getpid();
    pthread_atfork(NULL, NULL, reset_in_child);
}

// Starts workers so that `count` threads exist (the caller counts as one); called under submit_lock.
static void ensure_workers(int count) {
    while (workers_started < count - 1 && workers_started < MAX_WORKERS) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        // Under submit_lock: no job is being posted, the generation is stable.
        int rc = pthread_create(&t, &attr, worker_main, (void *)(uintptr_t)__atomic_load_n(&job.generation, __ATOMIC_ACQUIRE));
        pthread_attr_destroy(&attr);
        if (rc != 0) break;  // fewer workers: the caller does more of the work itself
        __atomic_store_n(&workers_started, workers_started + 1, __ATOMIC_RELAXED);  // read without the lock by cember_pool_round_trip_ns
    }
}

static void run_serial(int64_t n, cember_range_fn fn, void *ctx) {
    uint32_t saved = cember_fp_flush_denormals();
    fn(ctx, 0, n);
    cember_fp_restore(saved);
}

void cember_set_num_threads(int32_t threads) {
    if (threads < 1) threads = 1;
    if (threads > MAX_WORKERS + 1) threads = MAX_WORKERS + 1;
    __atomic_store_n(&requested_threads, threads, __ATOMIC_RELAXED);
}

// cember_serial_begin/end: nesting depth of this thread's serial regions.
static _Thread_local int serial_depth = 0;

void cember_serial_begin(void) { serial_depth++; }

void cember_serial_end(void) {
    if (serial_depth > 0) serial_depth--;
}

int32_t cember_requested_threads(void) { return __atomic_load_n(&requested_threads, __ATOMIC_RELAXED); }

int32_t cember_num_threads(void) {
    return serial_depth > 0 ? 1 : __atomic_load_n(&requested_threads, __ATOMIC_RELAXED);
}

// cember_parallel_for; when the job cannot run over the pool (one chunk, a nested or concurrent
// call, no worker), it runs serially if `serial` is set, else not at all. Returns whether it ran
// over the pool.
static int parallel_for(int64_t n, int64_t min_chunk, cember_range_fn fn, void *ctx, int serial) {
    if (n <= 0) return 0;
    if (min_chunk < 1) min_chunk = 1;
    int32_t threads = cember_num_threads();
    int64_t chunks = n / min_chunk;
    if (chunks > threads) chunks = threads;
    if (chunks <= 1) {
        if (serial) run_serial(n, fn, ctx);
        return 0;
    }
    pthread_once(&init_once, init_pool);
    // One job at a time; a nested or concurrent call runs serially instead of waiting.
    if (pthread_mutex_trylock(&submit_lock) != 0) {
        if (serial) run_serial(n, fn, ctx);
        return 0;
    }
    ensure_workers(threads);
    if (workers_started == 0) {
        pthread_mutex_unlock(&submit_lock);
        if (serial) run_serial(n, fn, ctx);
        return 0;
    }
    pthread_mutex_lock(&lock);
    job.fn = fn;
    job.ctx = ctx;
    job.n = n;
    job.chunks = chunks;
    job.next = 0;
    job.remaining = (uint64_t)chunks;
    uint64_t generation = job.generation + 1;
    __atomic_store_n(&job.generation, generation, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&work_cv);
    run_chunks(generation);
    if (job.remaining > 0) {
        pthread_mutex_unlock(&lock);
        spin_until(&job.remaining, 0, EQUALS, SPIN_NS);
        pthread_mutex_lock(&lock);
    }
    while (job.remaining > 0) pthread_cond_wait(&done_cv, &lock);
    pthread_mutex_unlock(&lock);
    pthread_mutex_unlock(&submit_lock);
    return 1;
}

void cember_parallel_for(int64_t n, int64_t min_chunk, cember_range_fn fn, void *ctx) {
    (void)parallel_for(n, min_chunk, fn, ctx, 1);
}

int32_t cember_pool_workers(void) { return __atomic_load_n(&workers_started, __ATOMIC_RELAXED); }

// The round-trip measurement: a job of one chunk per thread; once every chunk has started (each on
// its own thread), chunk 0 sends `ball` back and forth with chunk 1 ROUNDS times, in groups of
// GROUP, and keeps the fastest group's time per round (a thread descheduled for a moment slows a
// group, not the measurement). Every wait gives up after `patience_ns` (a thread descheduled or
// missing; 200 µs, or 5 ms while the job starts the workers): then nothing is measured.
enum { ROUNDS = 32, GROUP = 4 };

typedef struct {
    uint64_t arrived;
    uint64_t chunks;
    uint64_t ball;
    int64_t round_ns;  // 0 until chunk 0 has timed the rounds: the fastest group's time per round
    int64_t patience_ns;
} meeting_t;

static void meet(void *ctx, int64_t begin, int64_t end) {
    (void)end;
    meeting_t *m = ctx;
    __atomic_add_fetch(&m->arrived, 1, __ATOMIC_ACQ_REL);
    if (!spin_until(&m->arrived, m->chunks, REACHES, m->patience_ns) || begin > 1) return;
    if (begin == 0) {
        int64_t best = INT64_MAX, start = now_ns();
        for (uint64_t i = 0; i < ROUNDS; i++) {
            __atomic_store_n(&m->ball, 2 * i + 1, __ATOMIC_RELEASE);
            if (!spin_until(&m->ball, 2 * i + 2, EQUALS, m->patience_ns)) return;
            if (i % GROUP == GROUP - 1) {
                int64_t t = now_ns();
                if (t - start < best) best = t - start;
                start = t;
            }
        }
        __atomic_store_n(&m->round_ns, best / GROUP > 0 ? best / GROUP : 1, __ATOMIC_RELEASE);
    } else {
        for (uint64_t i = 0; i < ROUNDS; i++) {
            if (!spin_until(&m->ball, 2 * i + 1, EQUALS, m->patience_ns)) return;
            __atomic_store_n(&m->ball, 2 * i + 2, __ATOMIC_RELEASE);
        }
    }
}

int32_t cember_pool_round_trip_ns(int64_t max_age_ns) {
    int32_t threads = cember_num_threads();
    if (threads < 2) return -1;
    int32_t forced = __atomic_load_n(&round_trip_forced_ns, __ATOMIC_RELAXED);
    if (forced >= 0) return forced;
    int64_t at = __atomic_load_n(&round_trip_at_ns, __ATOMIC_RELAXED), now = now_ns();
    if (at == 0 || now - at > max_age_ns) {
        // Not while the pool is busy (a nested or concurrent call): the chunks would run one after
        // another on one thread, each waiting for the others in vain.
        int starting = __atomic_load_n(&workers_started, __ATOMIC_RELAXED) < threads - 1;
        meeting_t m = {0, (uint64_t)threads, 0, 0, starting ? 5000000 : 200000};
        if (parallel_for(threads, 1, meet, &m, 0) && m.round_ns > 0) {
            __atomic_store_n(&round_trip_ns, (int32_t)(m.round_ns < INT32_MAX ? m.round_ns : INT32_MAX), __ATOMIC_RELAXED);
        }
        // Also when nothing was measured: the next attempt waits its turn like a measurement.
        __atomic_store_n(&round_trip_at_ns, now_ns(), __ATOMIC_RELAXED);
    }
    return __atomic_load_n(&round_trip_ns, __ATOMIC_RELAXED);
}

int32_t cember_pool_force_round_trip_ns(int32_t ns) {
    return __atomic_exchange_n(&round_trip_forced_ns, ns < 0 ? -1 : ns, __ATOMIC_RELAXED);
}
