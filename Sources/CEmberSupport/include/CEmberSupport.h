#ifndef CEMBER_SUPPORT_H
#define CEMBER_SUPPORT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Sets flush-to-zero and denormals-are-zero on the calling thread and returns the previous
/// floating-point control word, to be given back to `cember_fp_restore`. A no-op returning 0
/// on CPUs without MXCSR.
uint32_t cember_fp_flush_denormals(void);

/// Restores the floating-point control word saved by `cember_fp_flush_denormals`.
void cember_fp_restore(uint32_t saved);

/// Reads the FTZ/DAZ bits of the calling thread (for tests): bit 0 = FTZ, bit 1 = DAZ.
uint32_t cember_fp_denormal_mode(void);

/// Stores `message` (copied, truncated to 4095 bytes) as the calling thread's last error.
void cember_set_last_error(const char *message);

/// Clears the calling thread's last error.
void cember_clear_last_error(void);

/// The calling thread's last error message; "" when none. Valid until the next call on this thread.
const char *cember_last_error(void);

/// Stores the structured detail of the calling thread's last error: status `code`, then op, layer,
/// argument, expected and got (each copied, NULL for absent, truncated to 1023 bytes) and a
/// 0-based `index` (-1 for absent). `cember_clear_last_error` clears it too.
void cember_set_last_error_detail(int32_t code, const char *op, const char *layer, const char *argument,
                                  int64_t index, const char *expected, const char *got);

/// One text field of the last error's detail: 0 op, 1 layer, 2 argument, 3 expected, 4 got; ""
/// when absent or `field` is out of range. Valid until the next call on this thread.
const char *cember_last_error_field(int32_t field);

/// The last error's 0-based index, -1 when it has none.
int64_t cember_last_error_index(void);

/// The last error's status code, 0 when the last call succeeded.
int32_t cember_last_error_code(void);

/// Sets how error messages count rows, columns and elements: 0 (the default) or 1.
void cember_set_message_index_base(int32_t base);

/// How error messages count rows, columns and elements (0 or 1).
int32_t cember_message_index_base(void);

/// EMBER_ABI_VERSION of include/ember.h (the one place it is written).
int32_t cember_abi_version(void);

/// EMBER_VERSION of include/ember.h, the engine's version (the one place it is written).
const char *cember_engine_version(void);

/// Fills `out`, an `ember_error_detail` of include/ember.h, with the calling thread's last error.
void cember_fill_error_detail(void *out);

/// Copies `text` into the calling thread's result buffer (grown as needed) and returns it; the
/// pointer stays valid until the next call that sets a result on this thread. Returns NULL (and
/// keeps the previous buffer) only if memory runs out.
const char *cember_set_result_text(const char *text, int64_t length);

/// Whether operations on the calling thread record gradients (1, the default) or not (0).
int32_t cember_grad_enabled(void);

/// Turns gradient recording on the calling thread on (1) or off (0); returns the previous value.
int32_t cember_set_grad_enabled(int32_t enabled);

/// A range of loop iterations [begin, end) handed to one thread.
typedef void (*cember_range_fn)(void *ctx, int64_t begin, int64_t end);

/// Sets how many threads Ember's own loops use (1...65; the caller counts as one).
void cember_set_num_threads(int32_t threads);

/// The number of threads Ember's own loops use (1 inside a serial region of the calling thread).
int32_t cember_num_threads(void);

/// The number of threads set by cember_set_num_threads, inside a serial region too: what
/// decides how a product that OpenBLAS computes is cut into panels, whose bits depend on the cut.
int32_t cember_requested_threads(void);

/// Begins a serial region of the calling thread: until the matching cember_serial_end, the
/// thread's loops and matrix products run on it alone (cember_num_threads gives 1). Regions nest.
void cember_serial_begin(void);

/// Ends the calling thread's innermost serial region.
void cember_serial_end(void);

/// Splits 0..<n into at most `num_threads` chunks of at least `min_chunk` iterations and runs
/// `fn` on them, on the calling thread and pool workers, with denormals flushed; returns when all
/// are done. Workers start lazily and again in a forked child. A call made while another one runs
/// (nested or from another thread) runs serially on the caller.
void cember_parallel_for(int64_t n, int64_t min_chunk, cember_range_fn fn, void *ctx);

/// Number of pool workers alive in this process (for tests).
int32_t cember_pool_workers(void);

/// The round trip of a cache line between two of the pool's threads, in nanoseconds: about 60
/// when they run on two cores of one die, several hundred when on two dies of the CPU (AMD's
/// chiplets share no last-level cache), as a virtual machine's host may place its vCPUs and move
/// them from minute to minute. Measured by a job with one chunk per thread, again when the last
/// measurement is older than `max_age_ns` (about 2 µs on one die, 11 µs on two; not while the pool
/// runs another job). -1 with one thread or before a measurement succeeds.
int32_t cember_pool_round_trip_ns(int64_t max_age_ns);

/// For tests: makes cember_pool_round_trip_ns return `ns` (>= 0, with two threads or more) instead
/// of measuring; -1 measures again. Returns the previous setting.
int32_t cember_pool_force_round_trip_ns(int32_t ns);

/// Which kernels BLAS.gemm runs, process-wide (0 OpenBLAS, 1 Ember's; -1, the initial value: not
/// set, BLAS.gemm decides).
int32_t cember_gemm_kernels(void);

/// Sets the value cember_gemm_kernels returns.
void cember_set_gemm_kernels(int32_t kernels);

#ifdef __cplusplus
}
#endif

#endif
