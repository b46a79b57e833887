// Row softmax for attention: max, exp(x - max) stored and summed, then a scale by 1 / Σ, on 16-float
// vectors. exp is Cephes' expf polynomial in plain multiplies and adds (no FMA: contraction is off)
// and every sum keeps 16 lane accumulators reduced in lane order, so all variants give the same
// bits. Relative error of exp: about 1 ulp (glibc's expf is within 1 ulp too; the two may differ
// in the last bit).
#include "CEmberKernels.h"
#include <math.h>
#include "simd.h"

/// exp(x) for x <= 0 (softmax arguments); 0 below -87 (exp(-87) ≈ 1.6e-38, the normal range's end).
INLINE v16 vexp_nonpositive(v16 x) {
    const v16 lo = vsplat(-87.0f);
    v16i keep = x >= lo;  // all ones where the result is not flushed to 0 (false for NaN too)
    x = __builtin_elementwise_max(x, lo);
    // n = round(x · log2 e) by the 1.5 · 2²³ trick (exact for |x · log2 e| < 2²²).
    const v16 magic = vsplat(12582912.0f);
    v16 n = (x * vsplat(1.44269504088896341f) + magic) - magic;
    v16 r = x - n * vsplat(0.693359375f) - n * vsplat(-2.12194440e-4f);
    v16 p = vsplat(1.9875691500e-4f);
    p = p * r + vsplat(1.3981999507e-3f);
    p = p * r + vsplat(8.3334519073e-3f);
    p = p * r + vsplat(4.1665795894e-2f);
    p = p * r + vsplat(1.6666665459e-1f);
    p = p * r + vsplat(5.0000001201e-1f);
    v16 y = p * (r * r) + r + vsplat(1.0f);
    // · 2ⁿ: n is in -126...0 here, so 2ⁿ is a normal float built from its exponent bits.
    v16i scale = (__builtin_convertvector(n, v16i) + 127) << 23;
    v16 twoN;
    __builtin_memcpy(&twoN, &scale, sizeof twoN);
    v16 out = y * twoN;
    v16i bits;
    __builtin_memcpy(&bits, &out, sizeof bits);
    bits &= keep;
    __builtin_memcpy(&out, &bits, sizeof out);
    return out;
}

/// The lanes of v summed in lane order.
INLINE float vsum_ordered(v16 v) {
    float s = 0;
    for (int i = 0; i < 16; i++) s += v[i];
    return s;
}

/// The first `n` (< 16) floats at p, `fill` after them.
INLINE v16 vload_filled(const float *p, int64_t n, float fill) {
    float t[16];
    for (int i = 0; i < 16; i++) t[i] = i < n ? p[i] : fill;
    return vload(t);
}

INLINE void softmax_rows_body(float *x, int64_t rows, int64_t cols) {
    const int64_t full = cols / 16 * 16, tail = cols - full;
    for (int64_t r = 0; r < rows; r++) {
        float *row = x + r * cols;
        v16 vm = vsplat(-__builtin_inff());
        for (int64_t j = 0; j < full; j += 16) vm = __builtin_elementwise_max(vm, vload(row + j));
        if (tail) vm = __builtin_elementwise_max(vm, vload_filled(row + full, tail, -__builtin_inff()));
        float m = vm[0];
        for (int i = 1; i < 16; i++) m = vm[i] > m ? vm[i] : m;
        if (m == -__builtin_inff()) m = 0;  // a row of -inf: keep the arithmetic below NaN-free
        const v16 vmax = vsplat(m);
        v16 vs = vsplat(0);
        for (int64_t j = 0; j < full; j += 16) {
            v16 e = vexp_nonpositive(vload(row + j) - vmax);
            vstore(row + j, e);
            vs += e;
        }
        if (tail) {
            v16 e = vexp_nonpositive(vload_filled(row + full, tail, -__builtin_inff()) - vmax);
            vstore_partial(row + full, e, tail);
            vs += e;
        }
        const v16 inv = vsplat(1.0f / vsum_ordered(vs));
        for (int64_t j = 0; j < full; j += 16) vstore(row + j, vload(row + j) * inv);
        if (tail) vstore_partial(row + full, vload_partial(row + full, tail) * inv, tail);
    }
}

INLINE void softmax_backward_rows_body(const float *restrict w, float *restrict g, int64_t rows, int64_t cols) {
    const int64_t full = cols / 16 * 16, tail = cols - full;
    for (int64_t r = 0; r < rows; r++) {
        const float *wr = w + r * cols;
        float *gr = g + r * cols;
        v16 vd = vsplat(0);
        for (int64_t j = 0; j < full; j += 16) vd += vload(gr + j) * vload(wr + j);
        if (tail) vd += vload_partial(gr + full, tail) * vload_partial(wr + full, tail);
        const v16 dot = vsplat(vsum_ordered(vd));
        for (int64_t j = 0; j < full; j += 16) vstore(gr + j, vload(wr + j) * (vload(gr + j) - dot));
        if (tail) vstore_partial(gr + full, vload_partial(wr + full, tail) * (vload_partial(gr + full, tail) - dot), tail);
    }
}

/// The logistic function of one value as EmberNN's scalar `sigmoid` computes it (glibc's expf).
static float sigmoid_scalar(float x) {
    if (x >= 0) return 1 / (1 + expf(-x));
    const float e = expf(x);
    return e / (1 + e);
}

/// 1 / (1 + exp(-x)) of n values, stably: e = exp(-|x|), then 1 / (1 + e) for x >= 0 and e / (1 + e)
/// below. A vector holding a NaN or a |x| beyond 87 (where exp(-|x|) leaves the normal range) is
/// computed by the scalar function, which keeps NaN and the subnormal probabilities.
INLINE void sigmoid_body(const float *x, float *out, int64_t n) {
    const v16 limit = vsplat(87.0f), one = vsplat(1.0f), zero = vsplat(0.0f);
    for (int64_t i = 0; i < n; i += 16) {
        const int64_t len = n - i < 16 ? n - i : 16;
        const v16 v = len == 16 ? vload(x + i) : vload_partial(x + i, len);
        const v16 a = __builtin_elementwise_abs(v);
        if (!__builtin_reduce_and(a <= limit)) {  // false for NaN
            for (int64_t j = 0; j < len; j++) out[i + j] = sigmoid_scalar(x[i + j]);
            continue;
        }
        const v16 e = vexp_nonpositive(-a), d = one + e;
        const v16 pos = one / d, neg = e / d;
        const v16i nonnegative = v >= zero;
        v16i pb, nb;
        __builtin_memcpy(&pb, &pos, sizeof pb);
        __builtin_memcpy(&nb, &neg, sizeof nb);
        const v16i bits = (pb & nonnegative) | (nb & ~nonnegative);
        v16 p;
        __builtin_memcpy(&p, &bits, sizeof p);
        if (len == 16) vstore(out + i, p);
        else vstore_partial(out + i, p, len);
    }
}

// MARK: Variants (explicit, as in gemm.c: the v16 helpers must inline into a function of one target)

#define SOFTMAX_VARIANT(ISA, TARGET)                                                                       \
    TARGET static void softmax_rows_##ISA(float *x, int64_t rows, int64_t cols) {                          \
        softmax_rows_body(x, rows, cols);                                                                  \
    }                                                                                                      \
    TARGET static void softmax_backward_rows_##ISA(const float *w, float *g, int64_t rows, int64_t cols) { \
        softmax_backward_rows_body(w, g, rows, cols);                                                      \
    }                                                                                                      \
    TARGET static void sigmoid_##ISA(const float *x, float *out, int64_t n) { sigmoid_body(x, out, n); }

#ifdef HAVE_VARIANTS
SOFTMAX_VARIANT(avx512, TARGET_AVX512)
SOFTMAX_VARIANT(avx2, TARGET_AVX2)
#endif
SOFTMAX_VARIANT(baseline, )

void cember_softmax_rows(float *x, int64_t rows, int64_t cols) { DISPATCH(softmax_rows, x, rows, cols) }

void cember_softmax_backward_rows(const float *restrict w, float *restrict g, int64_t rows, int64_t cols) {
    DISPATCH(softmax_backward_rows, w, g, rows, cols)
}

void cember_sigmoid(const float *x, float *out, int64_t n) { DISPATCH(sigmoid, x, out, n) }
