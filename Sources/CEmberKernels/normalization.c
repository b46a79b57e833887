// Batch normalisation's per-channel sums (BatchNorm in EmberNN): the statistics of the forward
// pass and the two sums of the backward pass, over the rows of one channel ([N, C, inner]: N rows
// of `inner` floats, `stride` apart). Layer normalisation's forward and backward passes (LayerNorm
// in EmberNN), row by row: each row's sums in 16 lanes added in the same fixed tree.
//
// Each row is summed in float in 16 lanes (a vector accumulator, lanes added in one fixed tree),
// the rows in double in order: a plain loop of double additions would run at the latency of one
// add per element. The order depends on the sizes only, so every thread count and variant gives
// the same bits.
#include "CEmberKernels.h"
#include "simd.h"

/// The sum of the 16 lanes of v, in one fixed tree.
INLINE float hsum16(v16 v) {
    v16 a = v + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
    v16 b = a + __builtin_shufflevector(a, a, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3);
    v16 c = b + __builtin_shufflevector(b, b, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1);
    return c[0] + c[1];
}

static const v16i iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/// mode 0: Σ x; mode 1: Σ (x - mu)²; mode 2: Σ x and Σ x·y (y laid out as x).
INLINE void bn_sums_body(const float *x, const float *y, int64_t rows, int64_t len, int64_t stride, float mu, int mode,
                         double *s1, double *s2, lanes_fn lanes) {
    double t1 = 0, t2 = 0;
    const v16 m = vsplat(mu);
    for (int64_t r = 0; r < rows; r++) {
        const float *a = x + r * stride, *b = y ? y + r * stride : NULL;
        v16 acc1 = vsplat(0.0f), acc2 = vsplat(0.0f);
        for (int64_t i = 0; i < len; i += 16) {
            const uint32_t bits = lane_bits(0, len - i);
            v16 v = len - i >= 16 ? vload(a + i) : lanes(a + i, bits);
            if (mode == 1) {
                v16 d = v - m;
                // Lanes past the row read 0 and must add 0, not mu².
                if (len - i < 16) d = (v16)((v16i)d & (iota < (int32_t)(len - i)));
                acc1 += d * d;
            } else {
                acc1 += v;
                if (mode == 2) acc2 += v * (len - i >= 16 ? vload(b + i) : lanes(b + i, bits));
            }
        }
        t1 += (double)hsum16(acc1);
        if (mode == 2) t2 += (double)hsum16(acc2);
    }
    *s1 = t1;
    if (s2) *s2 = t2;
}

#define BN_ARGS const float *x, const float *y, int64_t rows, int64_t len, int64_t stride, float mu, int mode, double *s1, double *s2
#define BN_PASS x, y, rows, len, stride, mu, mode, s1, s2

#ifdef HAVE_VARIANTS
TARGET_AVX512 static void bn_sums_avx512(BN_ARGS) { bn_sums_body(BN_PASS, lanes_avx512); }
TARGET_AVX2 static void bn_sums_avx2(BN_ARGS) { bn_sums_body(BN_PASS, lanes_avx2); }
#endif
static void bn_sums_baseline(BN_ARGS) { bn_sums_body(BN_PASS, lanes_baseline); }

double cember_bn_sum(const float *x, int64_t rows, int64_t len, int64_t stride) {
    double s = 0;
    DISPATCH(bn_sums, x, NULL, rows, len, stride, 0.0f, 0, &s, NULL)
    return s;
}

double cember_bn_centered_squares(const float *x, int64_t rows, int64_t len, int64_t stride, float mu) {
    double s = 0;
    DISPATCH(bn_sums, x, NULL, rows, len, stride, mu, 1, &s, NULL)
    return s;
}

void cember_bn_grad_sums(const float *dy, const float *xhat, int64_t rows, int64_t len, int64_t stride, double *sum_dy,
                         double *sum_dy_xhat) {
    DISPATCH(bn_sums, dy, xhat, rows, len, stride, 0.0f, 2, sum_dy, sum_dy_xhat)
}

// MARK: Layer normalisation

/// The row's last `n` (< 16) lanes loaded (zeros after them), or a whole vector.
INLINE v16 ln_load(const float *p, int64_t n) { return n >= 16 ? vload(p) : vload_partial(p, n); }

INLINE void ln_store(float *p, v16 v, int64_t n) {
    if (n >= 16) vstore(p, v);
    else vstore_partial(p, v, n);
}

INLINE void ln_forward_body(const float *restrict x, const float *restrict gamma, const float *restrict beta,
                            float *restrict xhat, float *restrict y, float *restrict inv_std, int64_t rows, int64_t d,
                            float eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * d;
        float *h = xhat + r * d, *out = y + r * d;
        v16 acc = vsplat(0.0f);
        for (int64_t i = 0; i < d; i += 16) acc += ln_load(row + i, d - i);
        const float mu = hsum16(acc) / (float)d;
        const v16 m = vsplat(mu);
        acc = vsplat(0.0f);
        for (int64_t i = 0; i < d; i += 16) {
            v16 t = ln_load(row + i, d - i) - m;
            // Lanes past the row read 0 and must add 0, not mu².
            if (d - i < 16) t = (v16)((v16i)t & (iota < (int32_t)(d - i)));
            acc += t * t;
        }
        const float inv = 1.0f / __builtin_sqrtf(hsum16(acc) / (float)d + eps);
        inv_std[r] = inv;
        const v16 vinv = vsplat(inv);
        for (int64_t i = 0; i < d; i += 16) {
            const v16 t = (ln_load(row + i, d - i) - m) * vinv;
            ln_store(h + i, t, d - i);
            if (gamma) ln_store(out + i, t * ln_load(gamma + i, d - i) + ln_load(beta + i, d - i), d - i);
            else ln_store(out + i, t, d - i);
        }
    }
}

INLINE void ln_backward_body(const float *restrict dy, const float *restrict xhat, const float *restrict gamma,
                             const float *restrict inv_std, float *restrict dx, float *restrict dgamma,
                             float *restrict dbeta, int64_t rows, int64_t d) {
    for (int64_t r = 0; r < rows; r++) {
        const float *g = dy + r * d, *h = xhat + r * d;
        float *out = dx + r * d;
        v16 a1 = vsplat(0.0f), a2 = vsplat(0.0f);
        for (int64_t i = 0; i < d; i += 16) {
            const int64_t n = d - i;
            const v16 vg = ln_load(g + i, n), vh = ln_load(h + i, n);
            const v16 t = gamma ? vg * ln_load(gamma + i, n) : vg;
            a1 += t;
            a2 += t * vh;
            if (dgamma) {
                ln_store(dgamma + i, ln_load(dgamma + i, n) + vg * vh, n);
                ln_store(dbeta + i, ln_load(dbeta + i, n) + vg, n);
            }
        }
        const v16 m1 = vsplat(hsum16(a1) / (float)d), m2 = vsplat(hsum16(a2) / (float)d);
        const v16 vinv = vsplat(inv_std[r]);
        for (int64_t i = 0; i < d; i += 16) {
            const int64_t n = d - i;
            const v16 vg = ln_load(g + i, n);
            const v16 t = gamma ? vg * ln_load(gamma + i, n) : vg;
            ln_store(out + i, (t - m1 - ln_load(h + i, n) * m2) * vinv, n);
        }
    }
}

#define LN_FORWARD_ARGS                                                                                          \
    const float *x, const float *gamma, const float *beta, float *xhat, float *y, float *inv_std, int64_t rows, \
        int64_t d, float eps
#define LN_BACKWARD_ARGS                                                                                          \
    const float *dy, const float *xhat, const float *gamma, const float *inv_std, float *dx, float *dgamma, \
        float *dbeta, int64_t rows, int64_t d

#define LN_VARIANT(ISA, TARGET)                                                                                  \
    TARGET static void ln_forward_##ISA(LN_FORWARD_ARGS) {                                                       \
        ln_forward_body(x, gamma, beta, xhat, y, inv_std, rows, d, eps);                                         \
    }                                                                                                            \
    TARGET static void ln_backward_##ISA(LN_BACKWARD_ARGS) {                                                     \
        ln_backward_body(dy, xhat, gamma, inv_std, dx, dgamma, dbeta, rows, d);                                  \
    }

#ifdef HAVE_VARIANTS
LN_VARIANT(avx512, TARGET_AVX512)
LN_VARIANT(avx2, TARGET_AVX2)
#endif
LN_VARIANT(baseline, )

void cember_layer_norm_forward(LN_FORWARD_ARGS) { DISPATCH(ln_forward, x, gamma, beta, xhat, y, inv_std, rows, d, eps) }

void cember_layer_norm_backward(LN_BACKWARD_ARGS) {
    DISPATCH(ln_backward, dy, xhat, gamma, inv_std, dx, dgamma, dbeta, rows, d)
}
