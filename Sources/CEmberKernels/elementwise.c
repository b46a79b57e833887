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

// MARK: Columns to rows

// The host's double columns (a data.frame's, a column-major matrix's) as a row-major float matrix:
// on AVX2, blocks of 8 rows × 8 columns converted (cvtpd2ps rounds to nearest as Swift's Float(x))
// and transposed in registers, so that each row's 8 floats are one store instead of 8 strided ones.
// The columns beyond a multiple of 8, and the rows beyond a multiple of 8, are converted one by one.
/// Columns c0..<c1 of rows r0..<r1, one value at a time.
static inline void columns_to_rows_scalar(const double *const *columns, int64_t ncols, int64_t c0, int64_t c1,
                                          int64_t r0, int64_t r1, float *dst) {
    for (int64_t c = c0; c < c1; c++) {
        const double *col = columns[c];
        for (int64_t r = r0; r < r1; r++) dst[r * ncols + c] = (float)col[r];
    }
}

static void columns_to_rows_baseline(const double *const *columns, int64_t ncols, int64_t first, int64_t rows, float *dst) {
    columns_to_rows_scalar(columns, ncols, 0, ncols, first, first + rows, dst);
}

#ifdef HAVE_VARIANTS
#define COLUMNS_TO_ROWS_AVX2(NAME, TARGET)                                                                      \
    TARGET static void NAME(const double *const *columns, int64_t ncols, int64_t first, int64_t rows, float *dst) { \
        const int64_t end = first + rows, full = first + rows / 8 * 8;                                           \
        int64_t c0 = 0;                                                                                          \
        for (; c0 + 8 <= ncols; c0 += 8) {                                                                       \
            for (int64_t r = first; r < full; r += 8) {                                                          \
                __m256 v[8];                                                                                     \
                for (int i = 0; i < 8; i++) {                                                                    \
                    const __m128 lo = _mm256_cvtpd_ps(_mm256_loadu_pd(columns[c0 + i] + r));                     \
                    const __m128 hi = _mm256_cvtpd_ps(_mm256_loadu_pd(columns[c0 + i] + r + 4));                 \
                    v[i] = _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);                              \
                }                                                                                                \
                /* v[i] holds column c0 + i of rows r..r+7; transposed, v[j] holds row r + j. */                 \
                __m256 t[8];                                                                                     \
                for (int i = 0; i < 8; i += 2) {                                                                 \
                    t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);                                                   \
                    t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);                                               \
                }                                                                                                \
                __m256 u[8];                                                                                     \
                for (int i = 0; i < 8; i += 4) {                                                                 \
                    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);                                              \
                    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);                                          \
                    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);                                      \
                    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);                                      \
                }                                                                                                \
                for (int j = 0; j < 4; j++) {                                                                    \
                    _mm256_storeu_ps(dst + (r + j) * ncols + c0, _mm256_permute2f128_ps(u[j], u[j + 4], 0x20));  \
                    _mm256_storeu_ps(dst + (r + j + 4) * ncols + c0, _mm256_permute2f128_ps(u[j], u[j + 4], 0x31)); \
                }                                                                                                \
            }                                                                                                    \
            columns_to_rows_scalar(columns, ncols, c0, c0 + 8, full, end, dst);                                  \
        }                                                                                                        \
        columns_to_rows_scalar(columns, ncols, c0, ncols, first, end, dst);                                      \
    }
COLUMNS_TO_ROWS_AVX2(columns_to_rows_avx2, TARGET_AVX2)
COLUMNS_TO_ROWS_AVX2(columns_to_rows_avx512, TARGET_AVX512)
#endif

void cember_columns_to_rows(const double *const *columns, int64_t ncols, int64_t first, int64_t rows, float *dst) {
    DISPATCH(columns_to_rows, columns, ncols, first, rows, dst)
}

// MARK: One-hot columns folded into a linear layer

#define CODE_ROWS_ARGS float *restrict y, int64_t rows, int64_t width, int32_t from_zero, const float *restrict table, \
                       const int64_t *restrict codes, int64_t k, const int64_t *restrict cardinalities,      \
                       const int64_t *restrict offsets, const float *restrict bias, int32_t relu
#define CODE_ROWS_PASS y, rows, width, from_zero, table, codes, k, cardinalities, offsets, bias, relu

INLINE void add_code_rows_body(CODE_ROWS_ARGS) {
    // A row's values in registers: loaded (or zero), each code's weights added in order, then the
    // bias and the ReLU, stored once (a pass over the row per term took twice as long).
    const v16 zero = vsplat(0.0f);
    for (int64_t r = 0; r < rows; r++) {
        float *restrict row = y + r * width;
        const int64_t *restrict rc = codes + r * k;
        int64_t c0 = 0;
        // 64 values at once: four independent chains of additions (one chain waited on each
        // addition's latency: ~13 ns a row of 64 on a Zen 3).
        for (; c0 + 64 <= width; c0 += 64) {
            v16 acc[4];
            for (int q = 0; q < 4; q++) acc[q] = from_zero ? zero : vload(row + c0 + 16 * q);
            for (int64_t j = 0; j < k; j++) {
                const int64_t v = rc[j];
                if (v < 0 || v >= cardinalities[j]) continue;
                const float *t = table + (offsets[j] + v) * width + c0;
                for (int q = 0; q < 4; q++) acc[q] += vload(t + 16 * q);
            }
            for (int q = 0; q < 4; q++) {
                if (bias) acc[q] += vload(bias + c0 + 16 * q);
                if (relu) acc[q] = (v16)((v16i)acc[q] & (acc[q] > zero));
                vstore(row + c0 + 16 * q, acc[q]);
            }
        }
        for (; c0 + 16 <= width; c0 += 16) {
            v16 acc = from_zero ? zero : vload(row + c0);
            for (int64_t j = 0; j < k; j++) {
                const int64_t v = rc[j];
                if (v >= 0 && v < cardinalities[j]) acc += vload(table + (offsets[j] + v) * width + c0);
            }
            if (bias) acc += vload(bias + c0);
            if (relu) acc = (v16)((v16i)acc & (acc > zero));
            vstore(row + c0, acc);
        }
        for (int64_t c = c0; c < width; c++) {
            float a = from_zero ? 0.0f : row[c];
            for (int64_t j = 0; j < k; j++) {
                const int64_t v = rc[j];
                if (v >= 0 && v < cardinalities[j]) a += table[(offsets[j] + v) * width + c];
            }
            if (bias) a += bias[c];
            row[c] = relu ? (a > 0.0f ? a : 0.0f) : a;
        }
    }
}

#ifdef HAVE_VARIANTS
TARGET_AVX512 static void add_code_rows_avx512(CODE_ROWS_ARGS) { add_code_rows_body(CODE_ROWS_PASS); }
TARGET_AVX2 static void add_code_rows_avx2(CODE_ROWS_ARGS) { add_code_rows_body(CODE_ROWS_PASS); }
#endif
static void add_code_rows_baseline(CODE_ROWS_ARGS) { add_code_rows_body(CODE_ROWS_PASS); }

void cember_add_code_rows(CODE_ROWS_ARGS) { DISPATCH(add_code_rows, CODE_ROWS_PASS) }
