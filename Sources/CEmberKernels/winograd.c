// Winograd F(2×2, 3×3) transforms for 3×3 convolutions of stride 1
// (docs/architecture.md#own-gemm-and-convolution-kernels): the output in 2×2 tiles, each from a
// 4×4 tile of the input, with 16 products per tile and channel pair instead of 36. ConvGeometry's
// Winograd path (Convolution+Winograd.swift) runs
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
// The input and output transforms only add and subtract, up to 16 tiles at a time in one logical
// 16-float vector (v16): consecutive tiles gathered tap by tap on narrow maps, or a tile row's
// tiles from whole rows of the image on wide ones (`ROWS_MIN_TILES`); both run the same arithmetic
// per element, and every instruction-set variant gives the same bits. The weight transform runs
// in double and rounds once. FP contraction is off (simd.h).
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

/// Stores taps row·4 + j (j < 4) of `lanes` tiles: r[j] at dst + (row·4 + j)·matrix_stride, whole
/// vectors when all 16 lanes are tiles, else the lanes in `stored`.
INLINE void store_taps(float *dst, int row, const v16 r[4], int64_t lanes, int64_t matrix_stride, uint32_t stored,
                       store_fn store) {
    for (int j = 0; j < 4; j++) {
        float *out = dst + (row * 4 + j) * matrix_stride;
        if (lanes == 16) {
            vstore(out, r[j]);
        } else {
            store(out, r[j], stored);
        }
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
                const v16 r[4] = {ti[0] - ti[2], ti[1] + ti[2], ti[2] - ti[1], ti[1] - ti[3]};
                store_taps(dst, i, r, lanes, matrix_stride, stored, store);
            }
        }
    }
}

/// Tile rows of at least this many tiles take `input_rows_body` (contiguous loads, even and odd
/// columns split by shuffles) instead of gathers (measured on ResNet-18: rows win on 16×16 maps,
/// 8 tiles wide, and lose on 8×8 ones, where a vector holds only 4 tiles).
enum { ROWS_MIN_TILES = 8 };

/// One tile row of up to 16 tiles at a time: the four input rows of its tiles loaded whole (zeros
/// outside the image), Bᵀ applied across them, then B across the columns with the tiles' even and
/// odd columns split out by shuffles. The same arithmetic per element as `input_body`: the same bits.
INLINE void input_rows_body(INPUT_ARGS, lanes_fn lanes_at, store_fn store) {
    const int64_t out_h = height + 2 * pad_h - 2, out_w = width + 2 * pad_w - 2;
    const int64_t tiles_h = (out_h + 1) / 2, tiles_w = (out_w + 1) / 2, plane = height * width, end = first + count;
    for (int64_t row = first / tiles_w; row * tiles_w < end; row++) {
        const int64_t n = row / tiles_h, i = row % tiles_h, start = row * tiles_w;
        const int64_t j_lo = first > start ? first - start : 0, j_hi = end - start < tiles_w ? end - start : tiles_w;
        for (int64_t jb = j_lo; jb < j_hi; jb += 16) {
            const int64_t nt = j_hi - jb < 16 ? j_hi - jb : 16, col0 = 2 * jb - pad_w, len = 2 * nt + 2;
            // Columns col0 + off (off < len) inside the image, per 16-float part of the 34 read.
            const int64_t lo = col0 < 0 ? -col0 : 0, hi = width - col0 < len ? width - col0 : len;
            const uint32_t bits[3] = {lane_bits(lo, hi), lane_bits(lo - 16, hi - 16), lane_bits(lo - 32, hi - 32)};
            const uint32_t stored = lane_bits(0, nt);
            float *dst = v + (start + jb - first);
            const float *xc = x + n * channels * plane;
            for (int64_t c = 0; c < channels; c++, xc += plane, dst += ldv) {
                v16 d[4][3];
                for (int k = 0; k < 4; k++) {
                    const int64_t r = 2 * i - pad_h + k;
                    for (int part = 0; part < 3; part++) {
                        d[k][part] = r >= 0 && r < height && bits[part] ? lanes_at(xc + r * width + col0 + 16 * part, bits[part])
                                                                          : vsplat(0.0f);
                    }
                }
                for (int k = 0; k < 4; k++) {
                    v16 t[3];
                    for (int part = 0; part < 3; part++) {  // Bᵀ d, row k
                        const v16 d0 = d[0][part], d1 = d[1][part], d2 = d[2][part], d3 = d[3][part];
                        t[part] = k == 0 ? d0 - d2 : k == 1 ? d1 + d2 : k == 2 ? d2 - d1 : d1 - d3;
                    }
                    // Columns 2j, 2j + 1, 2j + 2, 2j + 3 of tiles j = jb + lane.
                    const v16 e = __builtin_shufflevector(t[0], t[1], 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
                    const v16 o = __builtin_shufflevector(t[0], t[1], 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
                    const v16 e2 = __builtin_shufflevector(e, t[2], 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
                    const v16 o2 = __builtin_shufflevector(o, t[2], 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17);
                    const v16 r[4] = {e - e2, o + e2, e2 - o, o - o2};  // (Bᵀ d) B
                    store_taps(dst, k, r, nt, matrix_stride, stored, store);
                }
            }
        }
    }
}

/// Y = Aᵀ M A of 16 tiles' products s[ξ] (ξ = row·4 + column of the 4×4 transform): the tiles'
/// outputs (a, b) as out[a·2 + b].
INLINE void output_transform(const v16 s[16], v16 out[4]) {
    v16 t[8];
    for (int j = 0; j < 4; j++) {  // Aᵀ M
        t[j] = s[j] + s[4 + j] + s[8 + j];
        t[4 + j] = s[4 + j] - s[8 + j] - s[12 + j];
    }
    out[0] = t[0] + t[1] + t[2];  // (Aᵀ M) A
    out[1] = t[1] - t[2] - t[3];
    out[2] = t[4] + t[5] + t[6];
    out[3] = t[5] - t[6] - t[7];
}

/// relu?(value + bias + residual), each part when given. An absent bias adds nothing (not +0: -0
/// stays -0, as without one); the ReLU is Swift's `x > 0 ? x : 0` (+0 for negatives, zeros and NaN).
INLINE v16 output_epilogue(v16 value, const float *bias, const v16 *residual, int32_t relu) {
    if (bias) value += vsplat(*bias);
    if (residual) value += *residual;
    if (relu) value = (v16)((v16i)value & (value > 0));
    return value;
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
            v16 out[4];
            output_transform(s, out);
            float *yo = y + start + o * plane;
            for (int q = 0; q < 4; q++) {
                const v16 res = residual ? gather(residual + start + o * plane, idx[q], inside[q]) : vsplat(0.0f);
                const v16 value = output_epilogue(out[q], bias ? bias + o : NULL, residual ? &res : NULL, relu);
                float lane[16];
                vstore(lane, value);
                for (int64_t l = 0; l < lanes; l++) {
                    if (inside[q] >> l & 1) yo[idx[q][l]] = lane[l];
                }
            }
        }
    }
}

/// One tile row of up to 16 tiles at a time: the transform on vectors, the two outputs of each tile
/// in an output row interleaved by shuffles, then bias, residual and ReLU on whole output rows
/// (contiguous loads and stores). The same arithmetic per element as `output_body`: the same bits.
INLINE void output_rows_body(OUTPUT_ARGS, lanes_fn lanes_at, store_fn store) {
    const int64_t tiles_h = (out_h + 1) / 2, tiles_w = (out_w + 1) / 2, end = first + count;
    for (int64_t row = first / tiles_w; row * tiles_w < end; row++) {
        const int64_t n = row / tiles_h, i = row % tiles_h, start = row * tiles_w;
        const int64_t j_lo = first > start ? first - start : 0, j_hi = end - start < tiles_w ? end - start : tiles_w;
        for (int64_t jb = j_lo; jb < j_hi; jb += 16) {
            const int64_t nt = j_hi - jb < 16 ? j_hi - jb : 16, col0 = 2 * jb;
            // Output columns col0 + off (off < 2·nt) inside the map, per 16-float half.
            const int64_t hi = out_w - col0 < 2 * nt ? out_w - col0 : 2 * nt;
            const uint32_t bits[2] = {lane_bits(0, hi), lane_bits(-16, hi - 16)}, loaded = lane_bits(0, nt);
            const float *src = m + (start + jb - first);
            for (int64_t o = 0; o < out_channels; o++, src += ldm) {
                v16 s[16];
                for (int k = 0; k < 16; k++) s[k] = nt == 16 ? vload(src + k * matrix_stride) : lanes_at(src + k * matrix_stride, loaded);
                v16 out[4];
                output_transform(s, out);
                for (int a = 0; a < 2; a++) {
                    const int64_t r = 2 * i + a;
                    if (r >= out_h) break;
                    const int64_t at = ((n * out_channels + o) * out_h + r) * out_w + col0;
                    const v16 left = out[a * 2], right = out[a * 2 + 1];
                    const v16 halves[2] = {
                        __builtin_shufflevector(left, right, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),
                        __builtin_shufflevector(left, right, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)};
                    for (int part = 0; part < 2; part++) {
                        if (!bits[part]) continue;
                        const v16 res = residual ? lanes_at(residual + at + 16 * part, bits[part]) : vsplat(0.0f);
                        const v16 value = output_epilogue(halves[part], bias ? bias + o : NULL, residual ? &res : NULL, relu);
                        store(y + at + 16 * part, value, bits[part]);
                    }
                }
            }
        }
    }
}

// The variants differ only in vector width (adds and subtracts of v16 values): the same bits.
#define VARIANTS(target, isa, gather, lanes, store)                                                                  \
    target static void input_##isa(INPUT_ARGS) {                                                                 \
        if ((width + 2 * pad_w - 1) / 2 >= ROWS_MIN_TILES) {                                                     \
            input_rows_body(INPUT_PASS, lanes, store);                                                           \
        } else {                                                                                                 \
            input_body(INPUT_PASS, gather, store);                                                               \
        }                                                                                                        \
    }                                                                                                            \
    target static void output_##isa(OUTPUT_ARGS) {                                                                \
        if ((out_w + 1) / 2 >= ROWS_MIN_TILES) {                                                                 \
            output_rows_body(OUTPUT_PASS, lanes, store);                                                         \
        } else {                                                                                                 \
            output_body(OUTPUT_PASS, gather);                                                                    \
        }                                                                                                        \
    }
#ifdef HAVE_VARIANTS
VARIANTS(TARGET_AVX512, avx512, gather_avx512, lanes_avx512, store_avx512)
VARIANTS(TARGET_AVX2, avx2, gather_avx2, lanes_avx2, store_avx2)
#endif
VARIANTS(, baseline, gather_baseline, lanes_baseline, store_baseline)

void cember_winograd_input(INPUT_ARGS) { DISPATCH(input, INPUT_PASS) }

void cember_winograd_output(OUTPUT_ARGS) { DISPATCH(output, OUTPUT_PASS) }
