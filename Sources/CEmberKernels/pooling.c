// Max pooling when windows tile the input (kernel == stride, no padding; PyTorch's default
// stride), the pooling of LeNet-style CNNs. The general case (overlapping or padded windows) is
// Sources/EmberCore/Operators/Pooling.swift; both keep PyTorch's semantics: the first maximum in
// row-major order wins ties and NaN wins over numbers (`v > best || v != v`), and the gradient
// goes to that position.
//
// 2×2 windows run on vectors: 16 outputs at a time, from two input rows deinterleaved into the
// four window elements. Selections are exact, so every variant gives the same bits.
#include "CEmberKernels.h"
#include "simd.h"

/// `best`, `code` updated with candidate `v` of window index `k`: v > best or v is NaN.
INLINE void take_max(v16 *best, v16i *code, v16 v, int32_t k) {
    v16i m = (v > *best) | (v != v);
    *best = (v16)(((v16i)v & m) | ((v16i)*best & ~m));
    *code = ((v16i){0} + k & m) | (*code & ~m);
}

static const v16i iota16 = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/// One output row of a 2×2 pooling: rows r0, r1 (r0 at in-plane index `base`) into `outW` outputs.
INLINE void max2x2_row(const float *r0, const float *r1, int64_t base, int64_t W, int64_t outW, float *y, int32_t *pos,
                       lanes_fn lanes, store_fn store) {
    for (int64_t o = 0; o < outW; o += 16) {
        const int64_t n = outW - o < 16 ? outW - o : 16;  // outputs in this vector
        const uint32_t lo = lane_bits(0, 2 * n), hi = lane_bits(0, 2 * n - 16), out = lane_bits(0, n);
        v16 l0 = lanes(r0 + 2 * o, lo), h0 = lanes(r0 + 2 * o + 16, hi);
        v16 l1 = lanes(r1 + 2 * o, lo), h1 = lanes(r1 + 2 * o + 16, hi);
        v16 best = __builtin_shufflevector(l0, h0, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        v16i code = {0};
        take_max(&best, &code, __builtin_shufflevector(l0, h0, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), 1);
        take_max(&best, &code, __builtin_shufflevector(l1, h1, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), 2);
        take_max(&best, &code, __builtin_shufflevector(l1, h1, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), 3);
        v16i at = (v16i){0} + (int32_t)(base + 2 * o) + 2 * iota16 + (code & 1) + (code >> 1) * (int32_t)W;
        store(y + o, best, out);
        store((float *)(pos + o), (v16)at, out);
    }
}

INLINE void max_pool_body(const float *restrict x, int64_t planes, int64_t H, int64_t W, int64_t kH, int64_t kW,
                          float *restrict y, int32_t *restrict pos, lanes_fn lanes, store_fn store) {
    const int64_t outH = H / kH, outW = W / kW;
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *src = x + pl * H * W;
        float *dst = y + pl * outH * outW;
        int32_t *at = pos + pl * outH * outW;
        for (int64_t oh = 0; oh < outH; oh++) {
            const int64_t base = oh * kH * W;
            if (kH == 2 && kW == 2) {
                max2x2_row(src + base, src + base + W, base, W, outW, dst + oh * outW, at + oh * outW, lanes, store);
                continue;
            }
            for (int64_t ow = 0; ow < outW; ow++) {
                const int64_t start = base + ow * kW;
                float best = src[start];
                int64_t where = start;
                for (int64_t i = 0; i < kH; i++) {
                    for (int64_t j = 0; j < kW; j++) {
                        const float v = src[start + i * W + j];
                        if (v > best || v != v) {
                            best = v;
                            where = start + i * W + j;
                        }
                    }
                }
                dst[oh * outW + ow] = best;
                at[oh * outW + ow] = (int32_t)where;
            }
        }
    }
}

/// The gradient of one output row of a 2×2 pooling, written densely into input rows d0, d1
/// (`2·outW` columns each): each window's gradient at its maximum, zeros elsewhere.
INLINE void max2x2_backward_row(const float *dy, const int32_t *pos, int64_t base, int64_t W, int64_t outW, float *d0,
                                float *d1, lanes_fn lanes, store_fn store) {
    for (int64_t o = 0; o < outW; o += 16) {
        const int64_t n = outW - o < 16 ? outW - o : 16;
        const uint32_t in = lane_bits(0, n), lo = lane_bits(0, 2 * n), hi = lane_bits(0, 2 * n - 16);
        v16 g = lanes(dy + o, in);
        v16i code = (v16i)lanes((const float *)(pos + o), in) - ((v16i){0} + (int32_t)(base + 2 * o) + 2 * iota16);
        // code is 0, 1 (row 0) or W, W + 1 (row 1).
        v16i gi = (v16i)g, row1 = code >= (int32_t)W, col1 = code - (row1 & (int32_t)W) == 1;
        v16 a = (v16)(gi & ~row1 & ~col1), b = (v16)(gi & ~row1 & col1), c = (v16)(gi & row1 & ~col1), d = (v16)(gi & row1 & col1);
        store(d0 + 2 * o, __builtin_shufflevector(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), lo);
        store(d0 + 2 * o + 16, __builtin_shufflevector(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), hi);
        store(d1 + 2 * o, __builtin_shufflevector(c, d, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), lo);
        store(d1 + 2 * o + 16, __builtin_shufflevector(c, d, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), hi);
    }
}

INLINE void max_pool_backward_body(const float *restrict dy, const int32_t *restrict pos, int64_t planes, int64_t H,
                                   int64_t W, int64_t kH, int64_t kW, float *restrict dx, lanes_fn lanes, store_fn store) {
    const int64_t outH = H / kH, outW = W / kW;
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *g = dy + pl * outH * outW;
        const int32_t *at = pos + pl * outH * outW;
        float *dst = dx + pl * H * W;
        if (kH == 2 && kW == 2) {
            for (int64_t oh = 0; oh < outH; oh++) {
                float *d0 = dst + 2 * oh * W, *d1 = d0 + W;
                max2x2_backward_row(g + oh * outW, at + oh * outW, 2 * oh * W, W, outW, d0, d1, lanes, store);
                if (W > 2 * outW) d0[W - 1] = d1[W - 1] = 0;  // an odd last column no window covers
            }
            for (int64_t i = 2 * outH * W; i < H * W; i++) dst[i] = 0;  // an odd last row
            continue;
        }
        for (int64_t i = 0; i < H * W; i++) dst[i] = 0;
        for (int64_t o = 0; o < outH * outW; o++) dst[at[o]] = g[o];  // windows do not overlap
    }
}

// MARK: Overlapping or padded windows (ResNet's 3×3/2 with padding 1)

/// Windows of any size with stride 1 or 2 along the width: 16 outputs of a row at a time, each
/// tap of the window read as one vector (stride 2: two vectors deinterleaved), lanes outside the
/// input read -inf. The window's taps are visited in row-major order with take_max, so the first
/// maximum wins ties and NaN wins, as in the scalar loops; positions start at the window's first
/// element inside the input (where a window of -inf stays).
INLINE void max_pool_strided_body(const float *restrict x, int64_t planes, int64_t H, int64_t W, int64_t kH, int64_t kW,
                                  int64_t sH, int64_t sW, int64_t pH, int64_t pW, int64_t outH, int64_t outW,
                                  float *restrict y, int32_t *restrict pos, lanes_fn lanes, store_fn store) {
    const v16 ninf = vsplat(-__builtin_inff());
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *src = x + pl * H * W;
        float *dst = y + pl * outH * outW;
        int32_t *at = pos + pl * outH * outW;
        for (int64_t oh = 0; oh < outH; oh++) {
            const int64_t h0 = oh * sH - pH;
            const int64_t hs = h0 < 0 ? 0 : h0, he = h0 + kH < H ? h0 + kH : H;
            for (int64_t o = 0; o < outW; o += 16) {
                const int64_t n = outW - o < 16 ? outW - o : 16;
                const v16i w0 = (v16i){0} + (int32_t)(o * sW - pW) + (int32_t)sW * iota16;  // each lane's first column
                const v16i ws = w0 & (w0 > 0);                                                   // max(w0, 0)
                v16 best = ninf;
                v16i code = ws + (int32_t)(hs * W);
                for (int64_t ih = hs; ih < he; ih++) {
                    const float *row = src + ih * W;
                    for (int64_t kj = 0; kj < kW; kj++) {
                        const int64_t first = o * sW - pW + kj;  // the input column of lane 0
                        const v16i iw = w0 + (int32_t)kj;
                        const v16i valid = (iw >= 0) & (iw < (int32_t)W) & (iota16 < (int32_t)n);
                        v16 v;
                        if (sW == 1) {
                            v = lanes(row + first, lane_bits(-first, W - first) & lane_bits(0, n));
                        } else {
                            const int64_t last = 2 * n - 1;  // input columns first ..< first + last are read
                            v16 a = lanes(row + first, lane_bits(-first, W - first) & lane_bits(0, last));
                            v16 b = lanes(row + first + 16, lane_bits(-first - 16, W - first - 16) & lane_bits(0, last - 16));
                            v = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
                        }
                        v = (v16)(((v16i)v & valid) | ((v16i)ninf & ~valid));
                        const v16i m = (v > best) | (v != v);
                        best = (v16)(((v16i)v & m) | ((v16i)best & ~m));
                        code = ((iw + (int32_t)(ih * W)) & m) | (code & ~m);
                    }
                }
                const uint32_t out = lane_bits(0, n);
                store(dst + oh * outW + o, best, out);
                store((float *)(at + oh * outW + o), (v16)code, out);
            }
        }
    }
}

#define STRIDED_ARGS const float *restrict x, int64_t planes, int64_t H, int64_t W, int64_t kH, int64_t kW, int64_t sH, \
                     int64_t sW, int64_t pH, int64_t pW, int64_t outH, int64_t outW, float *restrict y, int32_t *restrict pos
#define STRIDED_PASS x, planes, H, W, kH, kW, sH, sW, pH, pW, outH, outW, y, pos

#ifdef HAVE_VARIANTS
TARGET_AVX512 static void max_pool_strided_avx512(STRIDED_ARGS) { max_pool_strided_body(STRIDED_PASS, lanes_avx512, store_avx512); }
TARGET_AVX2 static void max_pool_strided_avx2(STRIDED_ARGS) { max_pool_strided_body(STRIDED_PASS, lanes_avx2, store_avx2); }
#endif
static void max_pool_strided_baseline(STRIDED_ARGS) { max_pool_strided_body(STRIDED_PASS, lanes_baseline, store_baseline); }

int32_t cember_max_pool_strided(STRIDED_ARGS) {
    if (sW != 1 && sW != 2) return 0;
    if (planes > 0 && outH > 0 && outW > 0) DISPATCH(max_pool_strided, STRIDED_PASS)
    return 1;
}

#define FWD_ARGS const float *restrict x, int64_t planes, int64_t H, int64_t W, int64_t kH, int64_t kW, \
                 float *restrict y, int32_t *restrict pos
#define FWD_PASS x, planes, H, W, kH, kW, y, pos
#define BWD_ARGS const float *restrict dy, const int32_t *restrict pos, int64_t planes, int64_t H, int64_t W, \
                 int64_t kH, int64_t kW, float *restrict dx
#define BWD_PASS dy, pos, planes, H, W, kH, kW, dx

#ifdef HAVE_VARIANTS
TARGET_AVX512 static void max_pool_avx512(FWD_ARGS) { max_pool_body(FWD_PASS, lanes_avx512, store_avx512); }
TARGET_AVX2 static void max_pool_avx2(FWD_ARGS) { max_pool_body(FWD_PASS, lanes_avx2, store_avx2); }
TARGET_AVX512 static void max_pool_backward_avx512(BWD_ARGS) { max_pool_backward_body(BWD_PASS, lanes_avx512, store_avx512); }
TARGET_AVX2 static void max_pool_backward_avx2(BWD_ARGS) { max_pool_backward_body(BWD_PASS, lanes_avx2, store_avx2); }
#endif
static void max_pool_baseline(FWD_ARGS) { max_pool_body(FWD_PASS, lanes_baseline, store_baseline); }
static void max_pool_backward_baseline(BWD_ARGS) { max_pool_backward_body(BWD_PASS, lanes_baseline, store_baseline); }

void cember_max_pool_tiled(FWD_ARGS) { DISPATCH(max_pool, FWD_PASS) }

void cember_max_pool_tiled_backward(BWD_ARGS) { DISPATCH(max_pool_backward, BWD_PASS) }
