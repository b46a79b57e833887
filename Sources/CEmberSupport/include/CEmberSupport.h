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

/// Whether operations on the calling thread record gradients (1, the default) or not (0).
int32_t cember_grad_enabled(void);

/// Turns gradient recording on the calling thread on (1) or off (0); returns the previous value.
int32_t cember_set_grad_enabled(int32_t enabled);

/// A range of loop iterations [begin, end) handed to one thread.
typedef void (*cember_range_fn)(void *ctx, int64_t begin, int64_t end);

/// Sets how many threads Ember's own loops use (1...65; the caller counts as one).
void cember_set_num_threads(int32_t threads);

/// The number of threads Ember's own loops use.
int32_t cember_num_threads(void);

/// Splits 0..<n into at most `num_threads` chunks of at least `min_chunk` iterations and runs
/// `fn` on them, on the calling thread and pool workers, with denormals flushed; returns when all
/// are done. Workers start lazily and again in a forked child. A call made while another one runs
/// (nested or from another thread) runs serially on the caller.
void cember_parallel_for(int64_t n, int64_t min_chunk, cember_range_fn fn, void *ctx);

/// Number of pool workers alive in this process (for tests).
int32_t cember_pool_workers(void);

#ifdef __cplusplus
}
#endif

#endif
