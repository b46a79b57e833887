// Convolution kernels for few channels per group (LeNet-sized CNNs), where a BLAS call costs more
// in packing and per-call overhead than it computes (DESIGN.md §6; issue 8's profile):
//
// - im2col / col2im of one sample, with contiguous row copies when the stride along the width is 1;
// - `cember_gemm_nn`: C = bias + A·B, A small and read by broadcasts (any strides, so Wᵀ needs no
//   copy), B streamed row by row in 16-float vectors: the forward pass and the column gradient;
// - `cember_gemm_nt`: C = A·Bᵀ over long rows (the weight gradient), and `cember_row_sums` (the
//   bias gradient).
//
// Bit-identical on every CPU: each variant (AVX-512, AVX2, baseline x86-64) runs the same
// arithmetic on logical 16-float vectors (`v16`; the compiler splits them on narrower ISAs), only
// the register tiles differ. An element of `cember_gemm_nn` is one sequential sum over k; the long
// sums of `cember_gemm_nt` and `cember_row_sums` keep 16 partial sums (l mod 16) and add them in one
// fixed tree (`reduce16`). FP contraction is off (no FMA), as in optimizers.c.
#include "CEmberKernels.h"

#include <string.h>

#pragma STDC FP_CONTRACT OFF
// v16 values only pass between always-inline helpers, so no call ever uses the 512-bit ABI.
#pragma clang diagnostic ignored "-Wpsabi"

typedef float v16 __attribute__((vector_size(64)));

#define INLINE static inline __attribute__((always_inline))

INLINE v16 vload(const float *p) {
    v16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

INLINE void vstore(float *p, v16 v) { memcpy(p, &v, sizeof v); }

INLINE v16 vsplat(float x) { return (v16){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }

/// The first `n` (< 16) floats at `p`, zeros after them.
INLINE v16 vload_partial(const float *p, int64_t n) {
    float t[16] = {0};
    for (int64_t i = 0; i < n; i++) t[i] = p[i];
    return vload(t);
}

// MARK: Instruction sets

enum { ISA_BASELINE = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 };

static int32_t forced_isa = -1;

static int32_t detected_isa(void) {
#if defined(__x86_64__) && defined(__clang__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return ISA_AVX512;
    if (__builtin_cpu_supports("avx2")) return ISA_AVX2;
#endif
    return ISA_BASELINE;
}

static int32_t current_isa(void) {
    int32_t forced = __atomic_load_n(&forced_isa, __ATOMIC_RELAXED);
    int32_t detected = detected_isa();
    return forced >= 0 && forced < detected ? forced : detected;
}

int32_t cember_kernels_force_isa(int32_t level) {
    return __atomic_exchange_n(&forced_isa, level, __ATOMIC_RELAXED);
}

int32_t cember_kernels_isa(void) { return current_isa(); }

#if defined(__x86_64__) && defined(__clang__)
#define TARGET_AVX512 __attribute__((target("avx512f")))
#define TARGET_AVX2 __attribute__((target("avx2")))
#define HAVE_VARIANTS 1
// Runs the variant of kernel `name` (name##_avx512, _avx2, _baseline) for the current instruction set.
#define DISPATCH(name, ...)                                                  \
    switch (current_isa()) {                                                 \
        case ISA_AVX512: name##_avx512(__VA_ARGS__); break;                  \
        case ISA_AVX2: name##_avx2(__VA_ARGS__); break;                      \
        default: name##_baseline(__VA_ARGS__); break;                        \
    }
// Copies and elementwise sums: any vector width gives the same bits, target_clones picks one.
#define CLONES_KERNEL __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DISPATCH(name, ...) name##_baseline(__VA_ARGS__);
#define CLONES_KERNEL
#endif

// MARK: C = bias + A·B

enum { NN_MAX_MR = 6, NN_MAX_NV = 4 };

/// One mr × (nv·16) tile of C; `ncols` (<= nv·16) of its columns are stored.
INLINE void nn_tile(const int mr, const int nv, int64_t k, const float *a, int64_t rsa, int64_t csa, const float *b,
                    int64_t ldb, float *c, int64_t ldc, int64_t ncols, const float *bias) {
    v16 acc[NN_MAX_MR][NN_MAX_NV];
    for (int i = 0; i < mr; i++) {
        v16 init = vsplat(bias ? bias[i] : 0.0f);
        for (int v = 0; v < nv; v++) acc[i][v] = init;
    }
    for (int64_t l = 0; l < k; l++) {
        const float *bl = b + l * ldb, *al = a + l * csa;
        v16 bv[NN_MAX_NV];
        for (int v = 0; v < nv; v++) bv[v] = vload(bl + 16 * v);
        for (int i = 0; i < mr; i++) {
            v16 ai = vsplat(al[i * rsa]);
            for (int v = 0; v < nv; v++) acc[i][v] += ai * bv[v];
        }
    }
    for (int i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        for (int v = 0; v < nv; v++) {
            int64_t left = ncols - 16 * v;
            if (left >= 16) {
                vstore(ci + 16 * v, acc[i][v]);
            } else {
                float t[16];
                vstore(t, acc[i][v]);
                for (int64_t j = 0; j < left; j++) ci[16 * v + j] = t[j];
            }
        }
    }
}

#define NN_CASE(MRc, NVc)                                                                       \
    case (MRc) * 8 + (NVc):                                                                     \
        if ((MRc) <= MR && (NVc) <= NV) nn_tile(MRc, NVc, k, ai, rsa, csa, bj, ldb, cij, ldc, ncols, bi); \
        break;

/// Tiles of MR rows × NV vectors; the B panel of a column block stays in L1 across row blocks.
INLINE void nn_body(const int MR, const int NV, int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa,
                    int64_t csa, const float *b, int64_t ldb, float *c, int64_t ldc, const float *bias) {
    int64_t nvec = (n + 15) / 16;
    for (int64_t j0 = 0; j0 < nvec; j0 += NV) {
        int nv = nvec - j0 < NV ? (int)(nvec - j0) : NV;
        int64_t ncols = n - 16 * j0 < 16 * nv ? n - 16 * j0 : 16 * nv;
        const float *bj = b + 16 * j0;
        for (int64_t i0 = 0; i0 < m; i0 += MR) {
            int mr = m - i0 < MR ? (int)(m - i0) : MR;
            const float *ai = a + i0 * rsa, *bi = bias ? bias + i0 : NULL;
            float *cij = c + i0 * ldc + 16 * j0;
            switch (mr * 8 + nv) {
                NN_CASE(1, 1) NN_CASE(1, 2) NN_CASE(1, 3) NN_CASE(1, 4)
                NN_CASE(2, 1) NN_CASE(2, 2) NN_CASE(2, 3) NN_CASE(2, 4)
                NN_CASE(3, 1) NN_CASE(3, 2) NN_CASE(3, 3) NN_CASE(3, 4)
                NN_CASE(4, 1) NN_CASE(4, 2) NN_CASE(4, 3) NN_CASE(4, 4)
                NN_CASE(5, 1) NN_CASE(5, 2) NN_CASE(5, 3) NN_CASE(5, 4)
                NN_CASE(6, 1) NN_CASE(6, 2) NN_CASE(6, 3) NN_CASE(6, 4)
                default: break;
            }
        }
    }
}

#define NN_ARGS int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa, const float *b, \
                int64_t ldb, float *c, int64_t ldc, const float *bias
#define NN_PASS m, n, k, a, rsa, csa, b, ldb, c, ldc, bias

#ifdef HAVE_VARIANTS
TARGET_AVX512 static void nn_avx512(NN_ARGS) { nn_body(6, 4, NN_PASS); }
TARGET_AVX2 static void nn_avx2(NN_ARGS) { nn_body(4, 1, NN_PASS); }
#endif
static void nn_baseline(NN_ARGS) { nn_body(2, 1, NN_PASS); }

void cember_gemm_nn(NN_ARGS) {
    if (m <= 0 || n <= 0) return;
    DISPATCH(nn, NN_PASS)
}

// MARK: C = A·Bᵀ over long rows

/// Sums the lanes of each of a[0..15] with one fixed tree (lane i + lane i+8, then +4, +2, +1) and
/// returns the 16 sums, the sum of a[t] in lane bitreverse4(t) (see `bitrev4`). Every long sum goes
/// through here, so each one is added in the same order whatever the tile that computed it.
INLINE v16 reduce16(const v16 a[16]) {
    v16 u[8], v[4], w[2];
    for (int t = 0; t < 8; t++) {
        u[t] = __builtin_shufflevector(a[t], a[t + 8], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
               __builtin_shufflevector(a[t], a[t + 8], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    }
    // u[t] = [half sums of a[t] | of a[t+8]]
    for (int t = 0; t < 4; t++) {
        v[t] = __builtin_shufflevector(u[t], u[t + 4], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) +
               __builtin_shufflevector(u[t], u[t + 4], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
    }
    // v[t] = quarter sums of [a[t] | a[t+8] | a[t+4] | a[t+12]]
    for (int t = 0; t < 2; t++) {
        w[t] = __builtin_shufflevector(v[t], v[t + 2], 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29) +
               __builtin_shufflevector(v[t], v[t + 2], 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
    }
    // w[t] = pair sums of a[t], a[t+8], a[t+4], a[t+12], a[t+2], a[t+10], a[t+6], a[t+14]
    return __builtin_shufflevector(w[0], w[1], 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30) +
           __builtin_shufflevector(w[0], w[1], 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
}

/// The lane of reduce16's result that holds the sum of input t.
INLINE int bitrev4(int t) { return ((t & 1) << 3) | ((t & 2) << 1) | ((t & 4) >> 1) | ((t & 8) >> 3); }

enum { NT_MAX_MR = 4, NT_MAX_NR = 4 };

/// One mr × nr tile of C = A·Bᵀ (mr, nr <= 4; 16 accumulators, the unused ones zero).
INLINE void nt_tile(const int mr, const int nr, int64_t len, const float *a, int64_t lda, const float *b, int64_t ldb,
                    float *c, int64_t ldc) {
    v16 acc[NT_MAX_MR * NT_MAX_NR];
    for (int t = 0; t < 16; t++) acc[t] = vsplat(0.0f);
    int64_t full = len & ~(int64_t)15;
    for (int64_t l = 0; l < full; l += 16) {
        v16 av[NT_MAX_MR], bv[NT_MAX_NR];
        for (int i = 0; i < mr; i++) av[i] = vload(a + i * lda + l);
        for (int j = 0; j < nr; j++) bv[j] = vload(b + j * ldb + l);
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++) acc[4 * i + j] += av[i] * bv[j];
    }
    if (full < len) {
        v16 av[NT_MAX_MR], bv[NT_MAX_NR];
        for (int i = 0; i < mr; i++) av[i] = vload_partial(a + i * lda + full, len - full);
        for (int j = 0; j < nr; j++) bv[j] = vload_partial(b + j * ldb + full, len - full);
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++) acc[4 * i + j] += av[i] * bv[j];
    }
    v16 s = reduce16(acc);
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) c[i * ldc + j] = s[bitrev4(4 * i + j)];
}

#define NT_CASE(MRc, NRc)                                                                           \
    case (MRc) * 8 + (NRc):                                                                         \
        if ((MRc) <= MR && (NRc) <= NR) nt_tile(MRc, NRc, len, a + i0 * lda, lda, bj, ldb, c + i0 * ldc + j0, ldc); \
        break;

INLINE void nt_body(const int MR, const int NR, int64_t m, int64_t n, int64_t len, const float *a, int64_t lda,
                    const float *b, int64_t ldb, float *c, int64_t ldc) {
    for (int64_t j0 = 0; j0 < n; j0 += NR) {
        int nr = n - j0 < NR ? (int)(n - j0) : NR;
        const float *bj = b + j0 * ldb;
        for (int64_t i0 = 0; i0 < m; i0 += MR) {
            int mr = m - i0 < MR ? (int)(m - i0) : MR;
            switch (mr * 8 + nr) {
                NT_CASE(1, 1) NT_CASE(1, 2) NT_CASE(1, 3) NT_CASE(1, 4)
                NT_CASE(2, 1) NT_CASE(2, 2) NT_CASE(2, 3) NT_CASE(2, 4)
                NT_CASE(3, 1) NT_CASE(3, 2) NT_CASE(3, 3) NT_CASE(3, 4)
                NT_CASE(4, 1) NT_CASE(4, 2) NT_CASE(4, 3) NT_CASE(4, 4)
                default: break;
            }
        }
    }
}

#define NT_ARGS int64_t m, int64_t n, int64_t len, const float *a, int64_t lda, const float *b, int64_t ldb, \
                float *c, int64_t ldc
#define NT_PASS m, n, len, a, lda, b, ldb, c, ldc

#ifdef HAVE_VARIANTS
TARGET_AVX512 static void nt_avx512(NT_ARGS) { nt_body(4, 4, NT_PASS); }
TARGET_AVX2 static void nt_avx2(NT_ARGS) { nt_body(2, 2, NT_PASS); }
#endif
static void nt_baseline(NT_ARGS) { nt_body(1, 2, NT_PASS); }

void cember_gemm_nt(NT_ARGS) {
    if (m <= 0 || n <= 0) return;
    DISPATCH(nt, NT_PASS)
}

/// Sums of up to 16 rows at once, through reduce16 (the same order as cember_gemm_nt's sums).
INLINE void row_sums_body(int64_t rows, int64_t len, const float *a, int64_t lda, float *out) {
    for (int64_t r0 = 0; r0 < rows; r0 += 16) {
        int nr = rows - r0 < 16 ? (int)(rows - r0) : 16;
        v16 acc[16];
        for (int t = 0; t < 16; t++) acc[t] = vsplat(0.0f);
        for (int t = 0; t < nr; t++) {
            const float *row = a + (r0 + t) * lda;
            int64_t full = len & ~(int64_t)15, l = 0;
            for (; l < full; l += 16) acc[t] += vload(row + l);
            if (l < len) acc[t] += vload_partial(row + l, len - l);
        }
        v16 s = reduce16(acc);
        for (int t = 0; t < nr; t++) out[r0 + t] = s[bitrev4(t)];
    }
}

#define RS_ARGS int64_t rows, int64_t len, const float *a, int64_t lda, float *out
#define RS_PASS rows, len, a, lda, out

#ifdef HAVE_VARIANTS
TARGET_AVX512 static void row_sums_avx512(RS_ARGS) { row_sums_body(RS_PASS); }
TARGET_AVX2 static void row_sums_avx2(RS_ARGS) { row_sums_body(RS_PASS); }
#endif
static void row_sums_baseline(RS_ARGS) { row_sums_body(RS_PASS); }

void cember_row_sums(RS_ARGS) {
    if (rows <= 0) return;
    DISPATCH(row_sums, RS_PASS)
}

// MARK: im2col and col2im of one sample

/// Output positions [lo, hi) along one dimension whose input index pos·stride + offset lies in
/// 0..<extent (the others read zero padding); written so that a huge stride cannot overflow.
static void valid_range(int64_t offset, int64_t stride, int64_t extent, int64_t count, int64_t *lo, int64_t *hi) {
    int64_t l = 0;
    if (offset < 0) {
        l = -offset / stride + (-offset % stride == 0 ? 0 : 1);
        if (l > count) l = count;
    }
    int64_t last = extent - 1 - offset, h = last < 0 ? 0 : last / stride + 1;
    if (h > count) h = count;
    *lo = l;
    *hi = h < l ? l : h;
}

CLONES_KERNEL void cember_im2col(const float *restrict image, const cember_window *g, float *restrict cols, int64_t ld) {
    const int64_t taps = g->kernel_h * g->kernel_w, outW = g->out_w, P = g->out_h * outW, padded = (P + 15) & ~(int64_t)15;
    for (int64_t r = 0; r < g->channels * taps; r++) {
        const int64_t c = r / taps, ki = r % taps / g->kernel_w, kj = r % g->kernel_w;
        const float *plane = image + c * g->height * g->width;
        float *row = cols + r * ld;
        const int64_t offW = kj * g->dilation_w - g->pad_w;
        int64_t lo, hi;
        valid_range(offW, g->stride_w, g->width, outW, &lo, &hi);
        for (int64_t oh = 0; oh < g->out_h; oh++) {
            const int64_t ih = oh * g->stride_h - g->pad_h + ki * g->dilation_h;
            float *d = row + oh * outW;
            if (ih < 0 || ih >= g->height || lo >= hi) {
                for (int64_t ow = 0; ow < outW; ow++) d[ow] = 0;
                continue;
            }
            for (int64_t ow = 0; ow < lo; ow++) d[ow] = 0;
            for (int64_t ow = hi; ow < outW; ow++) d[ow] = 0;
            const float *src = plane + ih * g->width + offW;
            if (g->stride_w == 1) {
                for (int64_t ow = lo; ow < hi; ow++) d[ow] = src[ow];
            } else {
                for (int64_t ow = lo; ow < hi; ow++) d[ow] = src[ow * g->stride_w];
            }
        }
        for (int64_t p = P; p < padded; p++) row[p] = 0;
    }
}

CLONES_KERNEL void cember_col2im(const float *restrict cols, int64_t ld, const cember_window *g, float *restrict image) {
    const int64_t taps = g->kernel_h * g->kernel_w, outW = g->out_w, plane = g->height * g->width;
    for (int64_t c = 0; c < g->channels; c++) {
        float *dst = image + c * plane;
        for (int64_t i = 0; i < plane; i++) dst[i] = 0;
        for (int64_t ki = 0; ki < g->kernel_h; ki++) {
            for (int64_t kj = 0; kj < g->kernel_w; kj++) {
                const float *row = cols + (c * taps + ki * g->kernel_w + kj) * ld;
                const int64_t offW = kj * g->dilation_w - g->pad_w;
                int64_t lo, hi;
                valid_range(offW, g->stride_w, g->width, outW, &lo, &hi);
                if (lo >= hi) continue;
                for (int64_t oh = 0; oh < g->out_h; oh++) {
                    const int64_t ih = oh * g->stride_h - g->pad_h + ki * g->dilation_h;
                    if (ih < 0 || ih >= g->height) continue;
                    const float *s = row + oh * outW;
                    float *d = dst + ih * g->width + offW;
                    if (g->stride_w == 1) {
                        for (int64_t ow = lo; ow < hi; ow++) d[ow] += s[ow];
                    } else {
                        for (int64_t ow = lo; ow < hi; ow++) d[ow * g->stride_w] += s[ow];
                    }
                }
            }
        }
    }
}
