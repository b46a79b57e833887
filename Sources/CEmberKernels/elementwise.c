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

CLONES int64_t cember_first_nonfinite(const float *x, int64_t n) {
    // Blocks of whole vectors flagged at once (x - x is 0 exactly for finite x, NaN for ±inf
    // and NaN), then the first offender located within its block.
    const int64_t block = 1024;
    for (int64_t start = 0; start < n; start += block) {
        const int64_t end = n - start < block ? n : start + block;
        int bad = 0;
        for (int64_t i = start; i < end; i++) bad |= !(x[i] - x[i] == 0.0f);
        if (!bad) continue;
        for (int64_t i = start; i < end; i++) {
            if (!(x[i] - x[i] == 0.0f)) return i;
        }
    }
    return -1;
}
