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

/// Where the 16 tiles first..<first + lanes (lanes <= 16) of a [N, tiles_h, tiles_w] grid sit:
/// each tile's sample and its top-left output position.
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

INLINE void input_body(INPUT_ARGS) {
    const int64_t out_h = height + 2 * pad_h - 2, out_w = width + 2 * pad_w - 2;
    const int64_t tiles_h = (out_h + 1) / 2, tiles_w = (out_w + 1) / 2, plane = height * width;
    for (int64_t t0 = 0; t0 < count; t0 += 16) {
        const int64_t lanes = count - t0 < 16 ? count - t0 : 16;
        tile_lanes at;
        locate_tiles(&at, first + t0, lanes, tiles_h, tiles_w);
        // Per lane: the input offset of its tile's top-left corner, and which of the 4×4 taps are
        // inside the image (bit k·4 + l).
        int64_t base[16];
        uint32_t inside[16];
        for (int64_t l = 0; l < 16; l++) {
            base[l] = 0;
            inside[l] = 0;
            if (l >= lanes) continue;
            const int64_t r0 = at.row[l] - pad_h, c0 = at.col[l] - pad_w;
            base[l] = at.sample[l] * channels * plane + r0 * width + c0;
            for (int k = 0; k < 4; k++) {
                for (int j = 0; j < 4; j++) {
                    if (r0 + k >= 0 && r0 + k < height && c0 + j >= 0 && c0 + j < width) inside[l] |= 1u << (k * 4 + j);
                }
            }
        }
        for (int64_t c = 0; c < channels; c++) {
            float d[16][16];  // d[tap][lane]
            const float *xc = x + c * plane;
            for (int64_t l = 0; l < 16; l++) {
                const float *p = xc + base[l];
                if (inside[l] == 0xffff) {
                    for (int k = 0; k < 4; k++) {
                        for (int j = 0; j < 4; j++) d[k * 4 + j][l] = p[k * width + j];
                    }
                } else {
                    for (int k = 0; k < 4; k++) {
                        for (int j = 0; j < 4; j++) d[k * 4 + j][l] = inside[l] >> (k * 4 + j) & 1 ? p[k * width + j] : 0.0f;
                    }
                }
            }
            v16 t[16];
            for (int j = 0; j < 4; j++) {  // Bᵀ d
                v16 d0 = vload(d[j]), d1 = vload(d[4 + j]), d2 = vload(d[8 + j]), d3 = vload(d[12 + j]);
                t[j] = d0 - d2;
                t[4 + j] = d1 + d2;
                t[8 + j] = d2 - d1;
                t[12 + j] = d1 - d3;
            }
            float *dst = v + c * ldv + t0;
            for (int i = 0; i < 4; i++) {  // (Bᵀ d) B
                v16 r[4] = {t[i * 4] - t[i * 4 + 2], t[i * 4 + 1] + t[i * 4 + 2], t[i * 4 + 2] - t[i * 4 + 1],
                            t[i * 4 + 1] - t[i * 4 + 3]};
                for (int j = 0; j < 4; j++) {
                    float *out = dst + (i * 4 + j) * matrix_stride;
                    if (lanes == 16) {
                        vstore(out, r[j]);
                    } else {
                        vstore_partial(out, r[j], lanes);
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

INLINE void output_body(OUTPUT_ARGS) {
    const int64_t tiles_h = (out_h + 1) / 2, tiles_w = (out_w + 1) / 2, plane = out_h * out_w;
    for (int64_t t0 = 0; t0 < count; t0 += 16) {
        const int64_t lanes = count - t0 < 16 ? count - t0 : 16;
        tile_lanes at;
        locate_tiles(&at, first + t0, lanes, tiles_h, tiles_w);
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
            float out[4][16];  // (Aᵀ M) A: out[a·2 + b] is output (row + a, col + b)
            for (int a = 0; a < 2; a++) {
                const v16 *r = t + a * 4;
                vstore(out[a * 2], r[0] + r[1] + r[2]);
                vstore(out[a * 2 + 1], r[1] - r[2] - r[3]);
            }
            for (int64_t l = 0; l < lanes; l++) {
                const int64_t start = (at.sample[l] * out_channels + o) * plane;
                for (int a = 0; a < 2; a++) {
                    const int64_t row = at.row[l] + a;
                    if (row >= out_h) break;
                    for (int b = 0; b < 2; b++) {
                        const int64_t col = at.col[l] + b;
                        if (col >= out_w) break;
                        const int64_t at_ = start + row * out_w + col;
                        float value = out[a * 2 + b][l];
                        if (bias) value += bias[o];
                        if (residual) value += residual[at_];
                        if (relu) value = value > 0 ? value : 0;
                        y[at_] = value;
                    }
                }
            }
        }
    }
}

// The variants differ only in vector width (adds and subtracts of v16 values): the same bits.
#ifdef HAVE_VARIANTS
TARGET_AVX512 static void input_avx512(INPUT_ARGS) { input_body(INPUT_PASS); }
TARGET_AVX2 static void input_avx2(INPUT_ARGS) { input_body(INPUT_PASS); }
TARGET_AVX512 static void output_avx512(OUTPUT_ARGS) { output_body(OUTPUT_PASS); }
TARGET_AVX2 static void output_avx2(OUTPUT_ARGS) { output_body(OUTPUT_PASS); }
#endif
static void input_baseline(INPUT_ARGS) { input_body(INPUT_PASS); }
static void output_baseline(OUTPUT_ARGS) { output_body(OUTPUT_PASS); }

void cember_winograd_input(INPUT_ARGS) { DISPATCH(input, INPUT_PASS) }

void cember_winograd_output(OUTPUT_ARGS) { DISPATCH(output, OUTPUT_PASS) }
