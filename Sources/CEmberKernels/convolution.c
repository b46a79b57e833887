// Convolution kernels for few channels per group (LeNet-sized CNNs), where a BLAS call costs more
// in packing and per-call overhead than it computes
// (docs/architecture.md#own-gemm-and-convolution-kernels; issue 8's profile):
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
#include "simd.h"

// MARK: C = bias + A·B

enum { NN_MAX_MR = 6, NN_MAX_NV = 4 };

/// One mr × (nv·16) tile of C; `ncols` (<= nv·16) of its columns are stored.
INLINE void nn_tile(const int mr, const int nv, int64_t k, const float *a, int64_t rsa, int64_t csa, const float *b,
                    int64_t ldb, float *c, int64_t ldc, int64_t ncols, const float *bias, int32_t relu) {
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
    if (relu) {
        // Swift's `x > 0 ? x : 0`: +0 for negatives, zeros and NaN.
        for (int i = 0; i < mr; i++)
            for (int v = 0; v < nv; v++) acc[i][v] = (v16)((v16i)acc[i][v] & (acc[i][v] > 0));
    }
    for (int i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        for (int v = 0; v < nv; v++) {
            int64_t left = ncols - 16 * v;
            if (left >= 16) {
                vstore(ci + 16 * v, acc[i][v]);
            } else {
                vstore_partial(ci + 16 * v, acc[i][v], left);
            }
        }
    }
}

#define NN_CASE(MRc, NVc)                                                                       \
    case (MRc) * 8 + (NVc):                                                                     \
        if ((MRc) <= MR && (NVc) <= NV) nn_tile(MRc, NVc, k, ai, rsa, csa, bj, ldb, cij, ldc, ncols, bi, relu); \
        break;

/// Tiles of MR rows × NV vectors; the B panel of a column block stays in L1 across row blocks.
INLINE void nn_body(const int MR, const int NV, int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa,
                    int64_t csa, const float *b, int64_t ldb, float *c, int64_t ldc, const float *bias, int32_t relu) {
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
                int64_t ldb, float *c, int64_t ldc, const float *bias, int32_t relu
#define NN_PASS m, n, k, a, rsa, csa, b, ldb, c, ldc, bias, relu

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
INLINE void valid_range(int64_t offset, int64_t stride, int64_t extent, int64_t count, int64_t *lo, int64_t *hi) {
    if (stride == 1) {  // the common case, without divisions
        int64_t l = offset < 0 ? -offset : 0, h = extent - offset;
        l = l > count ? count : l;
        h = h > count ? count : h;
        *lo = l;
        *hi = h < l ? l : h;
        return;
    }
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

/// Stores v at row + pos; with `limit` >= 0 (exact layout) only its lanes before column `limit`.
INLINE void im2col_store(float *row, int64_t pos, v16 v, int64_t limit, store_fn store) {
    if (limit < 0 || pos + 16 <= limit) {
        vstore(row + pos, v);
    } else {
        store(row + pos, v, lane_bits(0, limit - pos));
    }
}

/// Copies `count` runs of the input (`step` floats apart) to consecutive output rows of `outW`
/// starting at column `pos` of `row`, vector v of a run reading the lanes of bits[v]; NV > 0 fixes
/// the vectors per run (specialised for the common widths: the loop is then a handful of
/// instructions per run). With `limit` >= 0, nothing is written at or after column `limit`.
INLINE void im2col_runs(const int NV, int64_t nv, float *row, int64_t pos, const float *src, int64_t outW, int64_t step,
                        int64_t count, const uint32_t *bits, lanes_fn lanes, int64_t limit, store_fn store) {
    const int64_t n = NV ? NV : nv;
    if (limit < 0 || pos + count * outW + 16 * n - outW <= limit) {  // no write reaches `limit`
        float *d = row + pos;
        for (int64_t i = 0; i < count; i++, d += outW, src += step) {
            for (int64_t v = 0; v < n; v++) vstore(d + 16 * v, lanes(src + 16 * v, bits[v]));
        }
        return;
    }
    for (int64_t i = 0; i < count; i++, pos += outW, src += step) {
        for (int64_t v = 0; v < n; v++) im2col_store(row, pos + 16 * v, lanes(src + 16 * v, bits[v]), limit, store);
    }
}

enum { max_vectors = 8 };  // the vectorised runs keep one lane mask per vector

/// Where kernel tap (ki, kj) reads, the same for every channel: output rows `first` ..< first +
/// count read the image (the others padding), from plane offset `src` on; within a row, output
/// columns lo..<hi (lane masks `bits` when the width's stride is 1).
typedef struct {
    int64_t first, count, src, lo, hi;
    uint32_t bits[max_vectors];
} im2col_tap;

INLINE void im2col_tap_info(const cember_window *g, int64_t ki, int64_t kj, im2col_tap *t) {
    int64_t ohLo, ohHi, lo, hi;
    valid_range(ki * g->dilation_h - g->pad_h, g->stride_h, g->height, g->out_h, &ohLo, &ohHi);
    const int64_t offW = kj * g->dilation_w - g->pad_w;
    valid_range(offW, g->stride_w, g->width, g->out_w, &lo, &hi);
    t->first = lo < hi ? ohLo : ohHi;
    t->count = lo < hi ? ohHi - ohLo : 0;
    // Only a tap that reads the image has a source: then first < out_h and the product stays
    // within the padded image; a huge stride times out_h (one output row) would overflow.
    t->src = t->count > 0 ? (t->first * g->stride_h - g->pad_h + ki * g->dilation_h) * g->width + offW : 0;
    t->lo = lo;
    t->hi = hi;
    const int64_t nv = (g->out_w + 15) / 16;
    for (int64_t v = 0; v < nv && v < max_vectors; v++) t->bits[v] = lane_bits(lo - 16 * v, hi - 16 * v);
}

/// NOTE: without `exact`, whole-vector writes run up to 16 floats past a sample's padded columns;
/// the next sample or the row's slack takes them (see cember_im2col in CEmberKernels.h). With
/// `exact`, each row holds exactly P columns and nothing is written after them.
/// Where each tap reads is worked out once for all channels (up to `max_taps` taps): on small
/// feature maps (a few floats per row) that bookkeeping costs more than the copies.
INLINE void im2col_body(const float *restrict image, const cember_window *g, float *restrict cols, int64_t ld,
                        lanes_fn lanes, store_fn store, int exact) {
    const int64_t outW = g->out_w, P = g->out_h * outW, padded = exact ? P : (P + 15) & ~(int64_t)15;
    const int64_t limit = exact ? P : -1;
    // The step between output rows; with one output row there is none (and stride_h may be huge).
    const int64_t step = g->out_h > 1 ? g->stride_h * g->width : 0;
    const int64_t nv = (outW + 15) / 16, taps = g->kernel_h * g->kernel_w;
    enum { max_taps = 64 };
    im2col_tap table[max_taps], scratch;
    const int tabled = taps <= max_taps;
    if (tabled) {
        for (int64_t t = 0; t < taps; t++) im2col_tap_info(g, t / g->kernel_w, t % g->kernel_w, &table[t]);
    }
    float *row = cols;
    for (int64_t c = 0; c < g->channels; c++) {
        const float *plane = image + c * g->height * g->width;
        for (int64_t t = 0; t < taps; t++, row += ld) {
            const im2col_tap *tap = &table[tabled ? t : 0];
            if (!tabled) {
                im2col_tap_info(g, t / g->kernel_w, t % g->kernel_w, &scratch);
                tap = &scratch;
            }
            const int64_t first = tap->first, count = tap->count, lo = tap->lo, hi = tap->hi;
            // Output rows above the image, the rows that read it, then rows below it and the padding.
            for (int64_t p = 0; p < first * outW; p += 16) im2col_store(row, p, vsplat(0.0f), limit, store);
            const float *src = plane + tap->src;
            if (g->stride_w == 1 && nv <= max_vectors) {
                switch (nv) {
                    case 1: im2col_runs(1, nv, row, first * outW, src, outW, step, count, tap->bits, lanes, limit, store); break;
                    case 2: im2col_runs(2, nv, row, first * outW, src, outW, step, count, tap->bits, lanes, limit, store); break;
                    default: im2col_runs(0, nv, row, first * outW, src, outW, step, count, tap->bits, lanes, limit, store); break;
                }
            } else if (g->stride_w == 2 && nv <= max_vectors) {
                // Lane l of vector v reads input column 2(16v + l) (from src): the even lanes of
                // two vectors, deinterleaved; odd columns are never read (one may lie past the row).
                uint32_t even[max_vectors][2];
                for (int64_t v = 0; v < nv; v++) {
                    even[v][0] = lane_bits(2 * (lo - 16 * v), 2 * (hi - 16 * v)) & 0x5555u;
                    even[v][1] = lane_bits(2 * (lo - 16 * v) - 16, 2 * (hi - 16 * v) - 16) & 0x5555u;
                }
                int64_t pos = first * outW;
                for (int64_t i = 0; i < count; i++, pos += outW, src += step) {
                    for (int64_t v = 0; v < nv; v++) {
                        v16 a = lanes(src + 32 * v, even[v][0]), b = lanes(src + 32 * v + 16, even[v][1]);
                        im2col_store(row, pos + 16 * v,
                                     __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), limit, store);
                    }
                }
            } else {
                float *d = row + first * outW;
                for (int64_t i = 0; i < count; i++, d += outW, src += step) {
                    for (int64_t ow = 0; ow < lo; ow++) d[ow] = 0;
                    for (int64_t ow = lo; ow < hi; ow++) d[ow] = src[ow * g->stride_w];
                    for (int64_t ow = hi; ow < outW; ow++) d[ow] = 0;
                }
            }
            for (int64_t p = (first + count) * outW; p < padded; p += 16) im2col_store(row, p, vsplat(0.0f), limit, store);
        }
    }
}

// MARK: im2col of a batch of small feature maps

enum { SMALL_MAX_TAPS = 64 };

/// A tap's P <= 16 output positions as one gather per sample: lane p reads plane offset idx[p]
/// when its bit is set (zero padding otherwise). Rows of a channel and tap run over all samples.
INLINE void im2col_small_body(const float *restrict image, int64_t sample_stride, int64_t count, const cember_window *g,
                              float *restrict cols, int64_t ld, gather_fn gather, store_fn store) {
    const int64_t outW = g->out_w, P = g->out_h * outW, taps = g->kernel_h * g->kernel_w, L = count * P;
    int32_t idx[SMALL_MAX_TAPS][16];
    uint32_t bits[SMALL_MAX_TAPS];
    for (int64_t t = 0; t < taps; t++) {
        const int64_t ki = t / g->kernel_w, kj = t % g->kernel_w;
        bits[t] = 0;
        for (int64_t p = 0; p < 16; p++) {
            idx[t][p] = 0;
            if (p >= P) continue;
            const int64_t ih = (p / outW) * g->stride_h - g->pad_h + ki * g->dilation_h;
            const int64_t iw = (p % outW) * g->stride_w - g->pad_w + kj * g->dilation_w;
            if (ih >= 0 && ih < g->height && iw >= 0 && iw < g->width) {
                idx[t][p] = (int32_t)(ih * g->width + iw);
                bits[t] |= 1u << p;
            }
        }
    }
    for (int64_t c = 0; c < g->channels; c++) {
        const float *plane = image + c * g->height * g->width;
        for (int64_t t = 0; t < taps; t++) {
            float *row = cols + (c * taps + t) * ld;
            if (!bits[t]) {
                memset(row, 0, (size_t)L * sizeof(float));
                continue;
            }
            // Whole-vector stores spill into the next samples' columns, which are written later.
            int64_t s = 0, pos = 0;
            for (; pos + 16 <= L; s++, pos += P) vstore(row + pos, gather(plane + s * sample_stride, idx[t], bits[t]));
            for (; s < count; s++, pos += P) store(row + pos, gather(plane + s * sample_stride, idx[t], bits[t]), lane_bits(0, L - pos));
        }
    }
}

/// With stride 1 along the width, each row of the image is gathered once: for every kernel tap,
/// the matching column-matrix row is loaded shifted into place and added in registers, in the
/// order of the taps, then stored. (Scattering each row into the image instead reloads vectors
/// that the previous tap has just partly stored, and store forwarding fails on every one.)
INLINE void col2im_body(const float *restrict cols, int64_t ld, const cember_window *g, float *restrict image,
                        lanes_fn lanes, store_fn store) {
    const int64_t taps = g->kernel_h * g->kernel_w, outW = g->out_w, W = g->width, plane = g->height * W;
    for (int64_t c = 0; c < g->channels; c++) {
        float *dst = image + c * plane;
        if (g->stride_w == 1) {
            for (int64_t v = 0; v * 16 < W; v++) {
                // Lanes of tap kj: image column iw = 16v + lane reads output column iw + shift.
                uint32_t bits[16];
                for (int64_t kj = 0; kj < g->kernel_w && kj < 16; kj++) {
                    const int64_t first = 16 * v + g->pad_w - kj * g->dilation_w;
                    bits[kj] = lane_bits(-first, outW - first) & lane_bits(0, W - 16 * v);
                }
                for (int64_t ih = 0; ih < g->height; ih++) {
                    v16 acc = vsplat(0.0f);
                    for (int64_t ki = 0; ki < g->kernel_h; ki++) {
                        const int64_t t = ih + g->pad_h - ki * g->dilation_h;
                        if (t < 0) continue;
                        int64_t oh = t;
                        if (g->stride_h != 1) {
                            if (t % g->stride_h != 0) continue;
                            oh = t / g->stride_h;
                        }
                        if (oh >= g->out_h) continue;
                        const float *src = cols + (c * taps + ki * g->kernel_w) * ld + oh * outW;
                        for (int64_t kj = 0; kj < g->kernel_w; kj++) {
                            const int64_t first = 16 * v + g->pad_w - kj * g->dilation_w;
                            uint32_t b = kj < 16 ? bits[kj] : lane_bits(-first, outW - first) & lane_bits(0, W - 16 * v);
                            acc += lanes(src + kj * ld + first, b);
                        }
                    }
                    if (W - 16 * v >= 16) {
                        vstore(dst + ih * W + 16 * v, acc);
                    } else {
                        store(dst + ih * W + 16 * v, acc, lane_bits(0, W - 16 * v));
                    }
                }
            }
            continue;
        }
        for (int64_t i = 0; i < plane; i++) dst[i] = 0;
        for (int64_t ki = 0; ki < g->kernel_h; ki++) {
            for (int64_t kj = 0; kj < g->kernel_w; kj++) {
                const float *row = cols + (c * taps + ki * g->kernel_w + kj) * ld;
                const int64_t offW = kj * g->dilation_w - g->pad_w;
                int64_t lo, hi;
                valid_range(offW, g->stride_w, W, outW, &lo, &hi);
                for (int64_t oh = 0; oh < g->out_h; oh++) {
                    const int64_t ih = oh * g->stride_h - g->pad_h + ki * g->dilation_h;
                    if (ih < 0 || ih >= g->height) continue;
                    const float *s = row + oh * outW;
                    float *d = dst + ih * W + offW;
                    for (int64_t ow = lo; ow < hi; ow++) d[ow * g->stride_w] += s[ow];
                }
            }
        }
    }
}

INLINE void copy_rows_body(const float *restrict src, int64_t src_ld, int64_t rows, int64_t len, const float *restrict mask,
                           float *restrict dst, int64_t dst_ld, int64_t padded, lanes_fn lanes) {
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t v = 0; v * 16 < padded; v++) {
            const uint32_t bits = lane_bits(0, len - 16 * v);
            v16 x = lanes(src + r * src_ld + 16 * v, bits);
            if (mask) {
                // Swift's relu gradient dy · (y > 0 ? 1 : 0), signed zeros and NaN included.
                const v16 m = lanes(mask + r * src_ld + 16 * v, bits);
                x = x * (v16)((v16i)vsplat(1.0f) & (m > 0));
            }
            vstore(dst + r * dst_ld + 16 * v, x);
        }
    }
}

/// Rows of `len` floats copied between strides, each (x - mean) / scale where `mean` is given (a
/// column block of a concatenation; a batch's standardised inputs read where the dataset keeps them).
INLINE void copy_rows_scaled_body(const float *restrict src, int64_t src_ld, int64_t rows, int64_t len,
                                  const float *restrict mean, const float *restrict scale, float *restrict dst,
                                  int64_t dst_ld, lanes_fn lanes, store_fn store) {
    if (len <= 16) {
        // One vector a row (tabular inputs): the lanes, the mean and the scale read once.
        const uint32_t bits = lane_bits(0, len);
        const v16 m = mean ? lanes(mean, bits) : vsplat(0.0f), s = mean ? lanes(scale, bits) : vsplat(1.0f);
        for (int64_t r = 0; r < rows; r++) {
            v16 x = lanes(src + r * src_ld, bits);
            if (mean) x = (x - m) / s;
            store(dst + r * dst_ld, x, bits);
        }
        return;
    }
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t j = 0; j < len; j += 16) {
            const uint32_t bits = lane_bits(0, len - j);
            v16 x = lanes(src + r * src_ld + j, bits);
            // Standardization.apply's (x - mean) / scale, one IEEE operation each: the same bits.
            if (mean) x = (x - lanes(mean + j, bits)) / lanes(scale + j, bits);
            store(dst + r * dst_ld + j, x, bits);
        }
    }
}

#define IM2COL_ARGS const float *restrict image, const cember_window *g, float *restrict cols, int64_t ld
#define SMALL_ARGS const float *restrict image, int64_t sample_stride, int64_t count, const cember_window *g, \
                   float *restrict cols, int64_t ld
#define SMALL_PASS image, sample_stride, count, g, cols, ld
#define COL2IM_ARGS const float *restrict cols, int64_t ld, const cember_window *g, float *restrict image
#define ROWS_ARGS const float *restrict src, int64_t src_ld, int64_t rows, int64_t len, const float *restrict mask, \
                  float *restrict dst, int64_t dst_ld, int64_t padded
#define ROWS_PASS src, src_ld, rows, len, mask, dst, dst_ld, padded
#define SCALED_ARGS const float *restrict src, int64_t src_ld, int64_t rows, int64_t len, const float *restrict mean, \
                    const float *restrict scale, float *restrict dst, int64_t dst_ld
#define SCALED_PASS src, src_ld, rows, len, mean, scale, dst, dst_ld

#ifdef HAVE_VARIANTS
TARGET_AVX512 static void im2col_avx512(IM2COL_ARGS) { im2col_body(image, g, cols, ld, lanes_avx512, store_avx512, 0); }
TARGET_AVX2 static void im2col_avx2(IM2COL_ARGS) { im2col_body(image, g, cols, ld, lanes_avx2, store_avx2, 0); }
TARGET_AVX512 static void im2col_exact_avx512(IM2COL_ARGS) { im2col_body(image, g, cols, ld, lanes_avx512, store_avx512, 1); }
TARGET_AVX2 static void im2col_exact_avx2(IM2COL_ARGS) { im2col_body(image, g, cols, ld, lanes_avx2, store_avx2, 1); }
TARGET_AVX512 static void im2col_small_avx512(SMALL_ARGS) { im2col_small_body(SMALL_PASS, gather_avx512, store_avx512); }
TARGET_AVX2 static void im2col_small_avx2(SMALL_ARGS) { im2col_small_body(SMALL_PASS, gather_avx2, store_avx2); }
TARGET_AVX512 static void col2im_avx512(COL2IM_ARGS) { col2im_body(cols, ld, g, image, lanes_avx512, store_avx512); }
TARGET_AVX2 static void col2im_avx2(COL2IM_ARGS) { col2im_body(cols, ld, g, image, lanes_avx2, store_avx2); }
TARGET_AVX512 static void copy_rows_avx512(ROWS_ARGS) { copy_rows_body(ROWS_PASS, lanes_avx512); }
TARGET_AVX2 static void copy_rows_avx2(ROWS_ARGS) { copy_rows_body(ROWS_PASS, lanes_avx2); }
TARGET_AVX512 static void copy_rows_scaled_avx512(SCALED_ARGS) { copy_rows_scaled_body(SCALED_PASS, lanes_avx512, store_avx512); }
TARGET_AVX2 static void copy_rows_scaled_avx2(SCALED_ARGS) { copy_rows_scaled_body(SCALED_PASS, lanes_avx2, store_avx2); }
#endif
static void im2col_baseline(IM2COL_ARGS) { im2col_body(image, g, cols, ld, lanes_baseline, store_baseline, 0); }
static void im2col_exact_baseline(IM2COL_ARGS) { im2col_body(image, g, cols, ld, lanes_baseline, store_baseline, 1); }
static void im2col_small_baseline(SMALL_ARGS) { im2col_small_body(SMALL_PASS, gather_baseline, store_baseline); }
static void col2im_baseline(COL2IM_ARGS) { col2im_body(cols, ld, g, image, lanes_baseline, store_baseline); }
static void copy_rows_baseline(ROWS_ARGS) { copy_rows_body(ROWS_PASS, lanes_baseline); }
static void copy_rows_scaled_baseline(SCALED_ARGS) { copy_rows_scaled_body(SCALED_PASS, lanes_baseline, store_baseline); }

void cember_im2col(IM2COL_ARGS) { DISPATCH(im2col, image, g, cols, ld) }

void cember_im2col_exact(IM2COL_ARGS) { DISPATCH(im2col_exact, image, g, cols, ld) }

int32_t cember_im2col_small(SMALL_ARGS) {
    if (g->out_h * g->out_w > 16 || g->kernel_h * g->kernel_w > SMALL_MAX_TAPS || g->height * g->width > INT32_MAX) return 0;
    if (count > 0) DISPATCH(im2col_small, SMALL_PASS)
    return 1;
}

void cember_col2im(COL2IM_ARGS) { DISPATCH(col2im, cols, ld, g, image) }

void cember_copy_rows_padded(ROWS_ARGS) { DISPATCH(copy_rows, ROWS_PASS) }

void cember_copy_rows(SCALED_ARGS) { DISPATCH(copy_rows_scaled, SCALED_PASS) }
