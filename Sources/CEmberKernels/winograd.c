// Winograd F(2×2, 3×3) transforms for 3×3 convolutions of stride 1 (docs/architecture.md#convolution):
// the output in 2×2 tiles, each from a 4×4 tile of the input, with 16 products per tile and
// channel pair instead of 36. ConvGeometry's Winograd path (Convolution+Winograd.swift) runs
//
// - `cember_winograd_weight`: U = G g Gᵀ per (output, input) channel pair, once per weight;
// - `cember_winograd_input`: V = Bᵀ d B per input tile and channel, scattered into 16 matrices
//   [C_in, tiles];
// - 16 matrix products M_ξ = U_ξ · V_ξ (BLAS.swift's kernels, from Swift);
// - `cember_winograd_output`: Y = Aᵀ M A per output tile and channel, then bias, residual and ReLU.
//
// with
//
//        | 1  0 -1  0 |        | 1    0    0  |
//   Bᵀ = | 0  1  1  0 |    G = | 1/2  1/2  1/2|    Aᵀ = | 1  1  1  0 |
//        | 0 -1  1  0 |        | 1/2 -1/2  1/2|         | 0  1 -1 -1 |
//        | 0  1  0 -1 |        | 0    0    1  |
//
// The input and output transforms only add and subtract, 16 tiles at a time in one logical
// 16-float vector (v16): every instruction-set variant gives the same bits. The
// weight transform runs in double and rounds once. FP contraction is off (simd.h).
#include "CEmberKernels.h"
#include "simd.h"

void cember_winograd_weight(const float *restrict w, int64_t out_channels, int64_t in_channels, float *restrict u) {
    static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    const int64_t stride = out_channels * in_channels;
    for (int64_t o = 0; o < out_channels; o++) {
        for (int64_t c = 0; c < in_channels; c++) {
            const float *g = w + (o * in_channels + c) * 9;
            double t[4][3];  // G g
            for (int i = 0; i < 4; i++) {
                for (int j = 0; j < 3; j++) t[i][j] = G[i][0] * g[j] + G[i][1] * g[3 + j] + G[i][2] * g[6 + j];
            }
            for (int i = 0; i < 4; i++) {
                for (int j = 0; j < 4; j++) {
                    double s = t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2];
                    u[(i * 4 + j) * stride + o * in_channels + c] = (float)s;
                }
            }
        }
    }
}

/// Where the tiles first..<first + lanes (lanes <= 16) of a [N, tiles_h, tiles_w] grid sit: each
/// tile's sample and its top-left output position.
typedef struct {
    int64_t sample[16], row[16], col[16];
} tile_lanes;

INLINE void locate_tiles(tile_lanes *t, int64_t first, int64_t lanes, int64_t tiles_h, int64_t tiles_w) {
    const int64_t per_sample = tiles_h * tiles_w;
    for (int64_t l = 0; l < lanes; l++) {
        int64_t tile = first + l, r = tile % per_sample;
        t->sample[l] = tile / per_sample;
        t->row[l] = r / tiles_w * 2;
        t->col[l] = r % tiles_w * 2;
    }
}

#define INPUT_ARGS                                                                                               \
    const float *restrict x, int64_t channels, int64_t height, int64_t width, int64_t pad_h, int64_t pad_w,       \
        int64_t first, int64_t count, float *restrict v, int64_t ldv, int64_t matrix_stride
#define INPUT_PASS x, channels, height, width, pad_h, pad_w, first, count, v, ldv, matrix_stride

/// 16 tiles at a time: per tap of the 4×4 window, one gather of the 16 tiles' inputs (offsets from
/// the first tile's sample; lanes outside the image or past the tiles read nothing and hold 0).
INLINE void input_body(INPUT_ARGS, gather_fn gather, store_fn store) {
    const int64_t out_h = height + 2 * pad_h - 2, out_w = width + 2 * pad_w - 2;
    const int64_t tiles_h = (out_h + 1) / 2, tiles_w = (out_w + 1) / 2, plane = height * width;
    for (int64_t t0 = 0; t0 < count; t0 += 16) {
        const int64_t lanes = count - t0 < 16 ? count - t0 : 16;
        tile_lanes at;
        locate_tiles(&at, first + t0, lanes, tiles_h, tiles_w);
        int32_t idx[16][16] = {{0}};
        uint32_t inside[16] = {0};
        for (int64_t l = 0; l < lanes; l++) {
            const int64_t r0 = at.row[l] - pad_h, c0 = at.col[l] - pad_w;
            const int64_t origin = (at.sample[l] - at.sample[0]) * channels * plane + r0 * width + c0;
            for (int k = 0; k < 4; k++) {
                for (int j = 0; j < 4; j++) {
                    idx[k * 4 + j][l] = (int32_t)(origin + k * width + j);
                    if (r0 + k >= 0 && r0 + k < height && c0 + j >= 0 && c0 + j < width) inside[k * 4 + j] |= 1u << l;
                }
            }
        }
        const uint32_t stored = lane_bits(0, lanes);
        const float *xc = x + at.sample[0] * channels * plane;
        for (int64_t c = 0; c < channels; c++, xc += plane) {
            v16 d[16];
            for (int q = 0; q < 16; q++) d[q] = gather(xc, idx[q], inside[q]);
            v16 t[16];
            for (int j = 0; j < 4; j++) {  // Bᵀ d
                t[j] = d[j] - d[8 + j];
                t[4 + j] = d[4 + j] + d[8 + j];
                t[8 + j] = d[8 + j] - d[4 + j];
                t[12 + j] = d[4 + j] - d[12 + j];
            }
            float *dst = v + c * ldv + t0;
            for (int i = 0; i < 4; i++) {  // (Bᵀ d) B
                const v16 *ti = t + i * 4;
                v16 r[4] = {ti[0] - ti[2], ti[1] + ti[2], ti[2] - ti[1], ti[1] - ti[3]};
                for (int j = 0; j < 4; j++) {
                    float *out = dst + (i * 4 + j) * matrix_stride;
                    if (lanes == 16) {
                        vstore(out, r[j]);
                    } else {
                        store(out, r[j], stored);
                    }
                }
            }
        }
    }
}

#define OUTPUT_ARGS                                                                                              \
    const float *restrict m, int64_t ldm, int64_t matrix_stride, int64_t out_channels, int64_t out_h, int64_t out_w, \
        int64_t first, int64_t count, const float *restrict bias, const float *restrict residual, int32_t relu,   \
        float *restrict y
#define OUTPUT_PASS m, ldm, matrix_stride, out_channels, out_h, out_w, first, count, bias, residual, relu, y

/// 16 tiles at a time: the transform, bias, residual (gathered) and ReLU on vectors, then each
/// lane's outputs inside the map stored one by one.
INLINE void output_body(OUTPUT_ARGS, gather_fn gather) {
    const int64_t tiles_h = (out_h + 1) / 2, tiles_w = (out_w + 1) / 2, plane = out_h * out_w;
    for (int64_t t0 = 0; t0 < count; t0 += 16) {
        const int64_t lanes = count - t0 < 16 ? count - t0 : 16;
        tile_lanes at;
        locate_tiles(&at, first + t0, lanes, tiles_h, tiles_w);
        // Output (row + a, col + b) of each lane, q = a·2 + b: its offset from the first tile's
        // sample in channel 0, and the lanes where it lies inside the map.
        int32_t idx[4][16] = {{0}};
        uint32_t inside[4] = {0};
        for (int64_t l = 0; l < lanes; l++) {
            const int64_t origin = (at.sample[l] - at.sample[0]) * out_channels * plane + at.row[l] * out_w + at.col[l];
            for (int q = 0; q < 4; q++) {
                idx[q][l] = (int32_t)(origin + (q >> 1) * out_w + (q & 1));
                if (at.row[l] + (q >> 1) < out_h && at.col[l] + (q & 1) < out_w) inside[q] |= 1u << l;
            }
        }
        const int64_t start = at.sample[0] * out_channels * plane;
        for (int64_t o = 0; o < out_channels; o++) {
            const float *src = m + o * ldm + t0;
            v16 s[16];
            for (int k = 0; k < 16; k++) {
                s[k] = lanes == 16 ? vload(src + k * matrix_stride) : vload_partial(src + k * matrix_stride, lanes);
            }
            v16 t[8];
            for (int j = 0; j < 4; j++) {  // Aᵀ M
                t[j] = s[j] + s[4 + j] + s[8 + j];
                t[4 + j] = s[4 + j] - s[8 + j] - s[12 + j];
            }
            v16 out[4] = {t[0] + t[1] + t[2], t[1] - t[2] - t[3], t[4] + t[5] + t[6], t[5] - t[6] - t[7]};  // (Aᵀ M) A
            float *yo = y + start + o * plane;
            for (int q = 0; q < 4; q++) {
                v16 value = out[q];
                // An absent bias adds nothing (not +0: -0 stays -0, as without one).
                if (bias) value += vsplat(bias[o]);
                if (residual) value += gather(residual + start + o * plane, idx[q], inside[q]);
                // Swift's `x > 0 ? x : 0`: +0 for negatives, zeros and NaN.
                if (relu) value = (v16)((v16i)value & (value > 0));
                float lane[16];
                vstore(lane, value);
                for (int64_t l = 0; l < lanes; l++) {
                    if (inside[q] >> l & 1) yo[idx[q][l]] = lane[l];
                }
            }
        }
    }
}

// The variants differ only in vector width (adds and subtracts of v16 values): the same bits.
#ifdef HAVE_VARIANTS
TARGET_AVX512 static void input_avx512(INPUT_ARGS) { input_body(INPUT_PASS, gather_avx512, store_avx512); }
TARGET_AVX2 static void input_avx2(INPUT_ARGS) { input_body(INPUT_PASS, gather_avx2, store_avx2); }
TARGET_AVX512 static void output_avx512(OUTPUT_ARGS) { output_body(OUTPUT_PASS, gather_avx512); }
TARGET_AVX2 static void output_avx2(OUTPUT_ARGS) { output_body(OUTPUT_PASS, gather_avx2); }
#endif
static void input_baseline(INPUT_ARGS) { input_body(INPUT_PASS, gather_baseline, store_baseline); }
static void output_baseline(OUTPUT_ARGS) { output_body(OUTPUT_PASS, gather_baseline); }

void cember_winograd_input(INPUT_ARGS) { DISPATCH(input, INPUT_PASS) }

void cember_winograd_output(OUTPUT_ARGS) { DISPATCH(output, OUTPUT_PASS) }
