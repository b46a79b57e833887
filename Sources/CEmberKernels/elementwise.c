// Binary elementwise functions and comparisons, one vectorised loop per function (the closures
// of a generic Swift loop were called once per element: ~14× slower than the unary ops). Each
// element is one IEEE operation, so every variant gives the same bits as Swift's scalar code.
#include "CEmberKernels.h"
#include "simd.h"

// One loop per stride combination (1: contiguous, 0: one value repeated), so that each vectorises.
#define LOOPS(EXPR)                                                  \
    if (a_step && b_step) {                                          \
        for (int64_t i = 0; i < n; i++) {                            \
            const float x = a[i], y = b[i];                          \
            out[i] = (EXPR);                                         \
        }                                                            \
    } else if (a_step) {                                             \
        const float y = b[0];                                        \
        for (int64_t i = 0; i < n; i++) {                            \
            const float x = a[i];                                    \
            out[i] = (EXPR);                                         \
        }                                                            \
    } else if (b_step) {                                             \
        const float x = a[0];                                        \
        for (int64_t i = 0; i < n; i++) {                            \
            const float y = b[i];                                    \
            out[i] = (EXPR);                                         \
        }                                                            \
    } else {                                                         \
        const float x = a[0], y = b[0], v = (EXPR);                  \
        for (int64_t i = 0; i < n; i++) out[i] = v;                  \
    }

CLONES void cember_binary(int32_t op, int64_t n, const float *restrict a, int64_t a_step, const float *restrict b,
                          int64_t b_step, float *restrict out) {
    switch (op) {
        case CEMBER_ADD: LOOPS(x + y) break;
        case CEMBER_SUB: LOOPS(x - y) break;
        case CEMBER_MUL: LOOPS(x * y) break;
        case CEMBER_DIV: LOOPS(x / y) break;
        // Swift's max(x, y) and min(x, y), NaN and signed zeros included.
        case CEMBER_MAX: LOOPS(y >= x ? y : x) break;
        case CEMBER_MIN: LOOPS(y < x ? y : x) break;
        case CEMBER_GT: LOOPS(x > y ? 1.0f : 0.0f) break;
        case CEMBER_GE: LOOPS(x >= y ? 1.0f : 0.0f) break;
        case CEMBER_LT: LOOPS(x < y ? 1.0f : 0.0f) break;
        case CEMBER_LE: LOOPS(x <= y ? 1.0f : 0.0f) break;
        case CEMBER_EQ: LOOPS(x == y ? 1.0f : 0.0f) break;
        case CEMBER_NE: LOOPS(x != y ? 1.0f : 0.0f) break;
        default: break;
    }
}

// Blocks of whole vectors flagged at once (x - x is 0 exactly for finite x, NaN for ±inf and NaN),
// then the first offender located within its block.
#define FIRST_NONFINITE(ZERO)                                                     \
    const int64_t block = 1024;                                                   \
    for (int64_t start = 0; start < n; start += block) {                          \
        const int64_t end = n - start < block ? n : start + block;                \
        int bad = 0;                                                              \
        for (int64_t i = start; i < end; i++) bad |= !(x[i] - x[i] == ZERO);      \
        if (!bad) continue;                                                       \
        for (int64_t i = start; i < end; i++) {                                   \
            if (!(x[i] - x[i] == ZERO)) return i;                                 \
        }                                                                         \
    }                                                                             \
    return -1;

CLONES int64_t cember_first_nonfinite(const float *x, int64_t n) { FIRST_NONFINITE(0.0f) }

// The host's doubles (a Swift loop over 80,000 of them took ~40 µs, not vectorised).
CLONES int64_t cember_first_nonfinite_double(const double *x, int64_t n) { FIRST_NONFINITE(0.0) }

// Up to the first 64-byte boundary of dst, then whole aligned vectors (STORE streams 16 floats at
// dst + i from src + i), then the rest; a fence orders the streamed stores before what follows.
#define COPY_STREAMING(STORE, FENCE)                                          \
    int64_t i = 0;                                                          \
    for (; i < n && ((uintptr_t)(dst + i) & 63) != 0; i++) dst[i] = src[i]; \
    for (; i + 16 <= n; i += 16) { STORE; }                                 \
    for (; i < n; i++) dst[i] = src[i];                                     \
    FENCE;

#ifdef HAVE_VARIANTS
TARGET_AVX512 static void copy_streaming_avx512(float *restrict dst, const float *restrict src, int64_t n) {
    COPY_STREAMING(_mm512_stream_ps(dst + i, _mm512_loadu_ps(src + i)), _mm_sfence())
}
TARGET_AVX2 static void copy_streaming_avx2(float *restrict dst, const float *restrict src, int64_t n) {
    COPY_STREAMING(_mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i)); _mm256_stream_ps(dst + i + 8, _mm256_loadu_ps(src + i + 8)),
                   _mm_sfence())
}
static void copy_streaming_baseline(float *restrict dst, const float *restrict src, int64_t n) {
    COPY_STREAMING(for (int q = 0; q < 16; q += 4) _mm_stream_ps(dst + i + q, _mm_loadu_ps(src + i + q)), _mm_sfence())
}
#else
static void copy_streaming_baseline(float *restrict dst, const float *restrict src, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}
#endif

void cember_copy_streaming(float *restrict dst, const float *restrict src, int64_t n) {
    if (n <= 0) return;
    DISPATCH(copy_streaming, dst, src, n)
}
