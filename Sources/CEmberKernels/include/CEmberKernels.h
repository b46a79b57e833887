#ifndef CEMBER_KERNELS_H
#define CEMBER_KERNELS_H

// Hot loops in C: `restrict` pointers let the compiler vectorise them, and each kernel is built
// for AVX-512, AVX2 and baseline x86-64 with the best picked at load time (target_clones, or an
// explicit dispatch where the register tiles differ per variant). Floating-point contraction is
// off and reductions keep one fixed order, so every variant gives bit-identical results; the one
// exception is cember_sgemm, whose AVX variants use FMA (see there).

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// SGD: g' = g + wd·w; with momentum b = first ? g' : μ·b + (1-τ)·g'; step = nesterov ? g' + μ·b : b.
void cember_sgd(float *restrict w, const float *restrict g, float *restrict buf, int64_t n, float lr, float wd,
                float momentum, float dampening, int32_t nesterov, int32_t first);

/// Adam (decoupled = 0) and AdamW (decoupled = 1), PyTorch's update; vmax may be NULL without amsgrad.
void cember_adam(float *restrict w, const float *restrict g, float *restrict m, float *restrict v, float *restrict vmax,
                 int64_t n, float step_size, float beta1, float beta2, float eps, float bc2_sqrt, float wd,
                 float decay, int32_t decoupled);

/// RMSprop; grad_avg may be NULL unless centered, buf NULL unless momentum > 0.
void cember_rmsprop(float *restrict w, const float *restrict g, float *restrict sq, float *restrict grad_avg,
                    float *restrict buf, int64_t n, float lr, float alpha, float eps, float wd, float momentum);

/// Adagrad with the clipped learning rate `clr` of this step.
void cember_adagrad(float *restrict w, const float *restrict g, float *restrict sum, int64_t n, float clr, float eps,
                    float wd);

// MARK: Elementwise (elementwise.c)

/// dst[i] = src[i] for i < n, written with non-temporal stores where the CPU has them: for copies
/// kept aside and rarely read (a training step's weights before the update), which then neither
/// read their destination into the cache first nor push the working set out of it.
void cember_copy_streaming(float *restrict dst, const float *restrict src, int64_t n);

/// Binary elementwise functions and comparisons (comparisons give 1 or 0).
enum {
    CEMBER_ADD = 0, CEMBER_SUB = 1, CEMBER_MUL = 2, CEMBER_DIV = 3, CEMBER_MAX = 4, CEMBER_MIN = 5,
    CEMBER_GT = 6, CEMBER_GE = 7, CEMBER_LT = 8, CEMBER_LE = 9, CEMBER_EQ = 10, CEMBER_NE = 11
};

/// out[i] = op(a[i·a_step], b[i·b_step]) for i < n; each step is 1 (contiguous) or 0 (one value).
/// max/min are Swift's max(a, b) (b >= a ? b : a) and min(a, b) (b < a ? b : a).
void cember_binary(int32_t op, int64_t n, const float *restrict a, int64_t a_step, const float *restrict b,
                   int64_t b_step, float *restrict out);

/// The index of the first element of x[0..<n] that is NaN or infinite, -1 if all are finite.
int64_t cember_first_nonfinite(const float *x, int64_t n);

/// The index of the first element of x[0..<n] that is NaN or infinite, -1 if all are finite (doubles:
/// the host's values, checked as they enter the engine).
int64_t cember_first_nonfinite_double(const double *x, int64_t n);

/// Rows first..<first + rows of `ncols` double columns (`columns[c][r]`) as row-major floats:
/// dst[r · ncols + c] = (float)columns[c][r], rounded to nearest as Swift's Float(_:); every
/// variant gives the same bits.
void cember_columns_to_rows(const double *const *columns, int64_t ncols, int64_t first, int64_t rows, float *dst);

/// A linear layer's one-hot columns added to its output rows (InferencePlan's fold of a one-hot
/// input): for each of `rows` rows of `width` values at `y` (zeroed first with `from_zero`), the
/// row `offsets[j] + v` of `table` [Σ cardinalities, width] added for each code v of the row's k
/// codes (`codes` [rows, k]) in order of j, skipping codes outside 0..<cardinalities[j]; then
/// `bias` (width values, or NULL) added and, with `relu`, x > 0 ? x : 0. One IEEE addition each:
/// the bits of the product with the one-hot columns (whose 1s add the weight, whose 0s add
/// nothing) followed by the bias and the ReLU.
void cember_add_code_rows(float *restrict y, int64_t rows, int64_t width, int32_t from_zero, const float *restrict table,
                          const int64_t *restrict codes, int64_t k, const int64_t *restrict cardinalities,
                          const int64_t *restrict offsets, const float *restrict bias, int32_t relu);

/// A linear layer's forward pass over rows whose input ends in one-hot columns, in one pass
/// (InferencePlan's fold): y [m, n] = relu?(x · Wᵀ + the code rows + bias) with x [m, k] (the
/// dense columns, rows k apart), `wt` W's dense columns transposed (row l: the weights of input l
/// for the n outputs, rows `ldw` apart; ldw a multiple of 16 at least n, its padding read but not
/// used), and the codes, `table`, `cardinalities`, `offsets`, `bias` and `relu` as in
/// cember_add_code_rows. The same bits as cember_sgemm_bias_relu(0, 1, m, n, k, x, k, W, k, NULL,
/// 0, y, n) (k at most 256: one depth block) followed by cember_add_code_rows(y, m, n, 0, …): each
/// value's product summed over k in order as the micro-kernel sums it, then the codes' rows, the
/// bias and the ReLU.
void cember_linear_code_rows(int64_t m, int64_t n, int64_t k, const float *restrict x, const float *restrict wt,
                             int64_t ldw, const float *restrict table, const int64_t *restrict codes, int64_t nc,
                             const int64_t *restrict cardinalities, const int64_t *restrict offsets,
                             const float *restrict bias, int32_t relu, float *restrict y);

// MARK: Softmax (softmax.c)

/// Softmax of each row of a [rows, cols] buffer in place: exp(x - max) / Σ, with a vectorised
/// exp (Cephes' polynomial, ~1 ulp; 0 below exp(-87)); every variant gives the same bits.
void cember_softmax_rows(float *x, int64_t rows, int64_t cols);

/// The softmax gradient row by row in place: g = w · (g - Σ g·w), w the softmax output.
void cember_softmax_backward_rows(const float *restrict w, float *restrict g, int64_t rows, int64_t cols);

/// The logistic function 1 / (1 + exp(-x)) of n values (`out` may be `x`), stable for large |x|,
/// with the vectorised exp above (NaN and |x| > 87 as EmberNN's scalar sigmoid, with glibc's expf);
/// every variant gives the same bits.
void cember_sigmoid(const float *x, float *out, int64_t n);

// MARK: Batch normalisation (normalization.c)

/// Σ of `rows` rows of `len` floats, `stride` apart (one channel of [N, C, inner]): each row in float
/// in 16 lanes added in a fixed tree, the rows in double in order.
double cember_bn_sum(const float *x, int64_t rows, int64_t len, int64_t stride);

/// Σ (x - mu)² over the same rows, summed as cember_bn_sum.
double cember_bn_centered_squares(const float *x, int64_t rows, int64_t len, int64_t stride, float mu);

/// Σ dy and Σ dy·xhat over the same rows (xhat laid out as dy), summed as cember_bn_sum.
void cember_bn_grad_sums(const float *dy, const float *xhat, int64_t rows, int64_t len, int64_t stride, double *sum_dy,
                         double *sum_dy_xhat);

// MARK: Layer normalisation (normalization.c)

/// Layer normalisation of `rows` rows of `d` floats: per row the mean and the biased variance
/// (sums in 16 lanes added in a fixed tree), `inv_std[r]` = 1 / √(var + eps), `xhat` = (x - mean)
/// · inv_std and `y` = xhat · gamma + beta (`y` = xhat when `gamma` is NULL; then `beta` is unused).
void cember_layer_norm_forward(const float *x, const float *gamma, const float *beta, float *xhat, float *y,
                               float *inv_std, int64_t rows, int64_t d, float eps);

/// Layer normalisation's backward pass for the forward pass above: `dx` = (g - mean(g) - xhat ·
/// mean(g · xhat)) · inv_std with g = dy · gamma (dy when `gamma` is NULL); when `dgamma` is not
/// NULL, adds Σ_rows dy · xhat to `dgamma` and Σ_rows dy to `dbeta` (rows in order).
void cember_layer_norm_backward(const float *dy, const float *xhat, const float *gamma, const float *inv_std, float *dx,
                                float *dgamma, float *dbeta, int64_t rows, int64_t d);

// MARK: Convolution (convolution.c)

/// The window geometry of a convolution over one sample: `channels` input planes of
/// `height` × `width`, the kernel, stride, zero padding and dilation, and the output size.
typedef struct {
    int64_t channels, height, width;
    int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
    int64_t out_h, out_w;
} cember_window;

/// im2col of one sample: row r = (c·kernel_h + ki)·kernel_w + kj of `cols` (rows `ld` apart) gets
/// image[c, oh·stride_h - pad_h + ki·dilation_h, ow·stride_w - pad_w + kj·dilation_w] at column
/// oh·out_w + ow (zero outside the image), then zeros up to P16, the next multiple of 16 columns.
/// NOTE: it writes whole vectors and may clobber up to 16 floats after column P16 of each row:
/// the caller fills samples left to right and leaves 16 floats of slack at the end of each row.
void cember_im2col(const float *restrict image, const cember_window *g, float *restrict cols, int64_t ld);

/// cember_im2col into rows of exactly P = out_h·out_w columns: writes nothing outside columns
/// 0..<P of each row, so the samples of a batch may sit side by side (sample s at column s·P).
void cember_im2col_exact(const float *restrict image, const cember_window *g, float *restrict cols, int64_t ld);

/// cember_im2col_exact of `count` samples (`sample_stride` floats apart) at once, sample s at
/// column s·P, for feature maps of P <= 16 output positions and kernels of at most 64 taps (one
/// gather per sample, channel and tap). Returns 0 and writes nothing for larger ones, else 1.
int32_t cember_im2col_small(const float *restrict image, int64_t sample_stride, int64_t count, const cember_window *g,
                            float *restrict cols, int64_t ld);

/// col2im of one sample: overwrites `image` with the sum, over rows and columns of `cols` laid out
/// as cember_im2col writes them, of each value at the image position it was read from. Reads only
/// columns 0..<P of each row (so it also takes cember_im2col_exact's layout).
void cember_col2im(const float *restrict cols, int64_t ld, const cember_window *g, float *restrict image);

/// Copies `rows` rows of `len` floats (`src_ld` apart) to rows `dst_ld` apart, each followed by
/// zeros up to `padded` floats, a multiple of 16. With a `mask` laid out as `src`, copies
/// src · (mask > 0 ? 1 : 0) instead (the gradient through a ReLU whose output is `mask`).
void cember_copy_rows_padded(const float *restrict src, int64_t src_ld, int64_t rows, int64_t len,
                             const float *restrict mask, float *restrict dst, int64_t dst_ld, int64_t padded);

/// Copies `rows` rows of `len` floats (`src_ld` apart) to rows `dst_ld` apart, writing nothing else;
/// with `mean` and `scale` (len values each, or both NULL) each value becomes (x - mean) / scale,
/// the same bits as one subtraction and one division in Swift.
void cember_copy_rows(const float *restrict src, int64_t src_ld, int64_t rows, int64_t len, const float *restrict mean,
                      const float *restrict scale, float *restrict dst, int64_t dst_ld);

/// C[i][j] = bias[i] (0 without bias) + Σ_l A(i, l)·B[l][j] for i < m, j < n, summed in order of l,
/// where A(i, l) = a[i·rsa + l·csa], then with `relu` C[i][j] > 0 ? C[i][j] : 0. Rows of B are
/// `ldb` apart and must be readable up to the next multiple of 16 columns (the extra values only
/// reach columns that are not stored). Suited to small m and k: A is read by broadcasts, B
/// streamed without packing.
void cember_gemm_nn(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa, const float *b,
                    int64_t ldb, float *c, int64_t ldc, const float *bias, int32_t relu);

/// C[i][j] = Σ_l A[i][l]·B[j][l] for i < m, j < n, l < len (rows `lda`, `ldb`, `ldc` apart); each
/// sum keeps 16 partial sums (l mod 16) added in one fixed tree.
void cember_gemm_nt(int64_t m, int64_t n, int64_t len, const float *a, int64_t lda, const float *b, int64_t ldb,
                    float *c, int64_t ldc);

/// out[r] = Σ_l a[r·lda + l] for r < rows, l < len, in the order cember_gemm_nt sums.
void cember_row_sums(int64_t rows, int64_t len, const float *a, int64_t lda, float *out);

// MARK: Winograd F(2×2, 3×3) (winograd.c)

/// U = G g Gᵀ of each 3×3 kernel g of `w` [out_channels, in_channels, 3, 3], as 16 matrices
/// [out_channels, in_channels]: u[(ξ·out_channels + o)·in_channels + c] (ξ = i·4 + j of the 4×4
/// transform), computed in double and rounded once.
void cember_winograd_weight(const float *restrict w, int64_t out_channels, int64_t in_channels, float *restrict u);

/// V = Bᵀ d B of the 4×4 input tiles d of tiles first..<first + count of `x` [N, channels, height,
/// width] for a 3×3 convolution of stride 1 with zero padding pad_h, pad_w: tile t (row-major over
/// [N, ⌈out_h/2⌉, ⌈out_w/2⌉]) reads rows 2i - pad_h ..< 2i - pad_h + 4 and the like columns
/// (zeros outside the image). Tap ξ of channel c of tile first + l goes to
/// v[ξ·matrix_stride + c·ldv + l]. A sample of x holds at most 2^31 / 16 floats (32-bit gather
/// offsets over 16 samples).
void cember_winograd_input(const float *restrict x, int64_t channels, int64_t height, int64_t width, int64_t pad_h,
                           int64_t pad_w, int64_t first, int64_t count, float *restrict v, int64_t ldv,
                           int64_t matrix_stride);

/// Y = Aᵀ M A of the tiles first..<first + count, M read as cember_winograd_input writes V (tap ξ of
/// output channel o of tile first + l at m[ξ·matrix_stride + o·ldm + l]), written into `y` [N,
/// out_channels, out_h, out_w] as ((value + bias[o]) + residual) then `v > 0 ? v : 0` with `relu`
/// (`bias` and `residual`, laid out as `y`, may be NULL); positions past the output's edge are
/// dropped. A sample of y holds at most 2^31 / 16 floats.
void cember_winograd_output(const float *restrict m, int64_t ldm, int64_t matrix_stride, int64_t out_channels,
                            int64_t out_h, int64_t out_w, int64_t first, int64_t count, const float *restrict bias,
                            const float *restrict residual, int32_t relu, float *restrict y);

// MARK: Matrix products (gemm.c)

/// C = alpha·op(A)·op(B) + beta·C for row-major matrices, as cblas_sgemm(CblasRowMajor, …):
/// op(A) is m×k (A stored k×m, rows `lda` apart, when trans_a ≠ 0), op(B) is k×n (B stored n×k
/// when trans_b ≠ 0), C is m×n with rows `ldc` apart. With beta = 0, C is overwritten and never
/// read (NaN in C does not propagate); with k = 0 or alpha = 0, C = beta·C and A, B are not read.
///
/// Packed panels and a register-tiled micro-kernel per instruction set (AVX-512, AVX2 + FMA,
/// baseline). Unlike the other kernels here, the AVX variants use fused multiply-adds and the
/// baseline does not, so the baseline differs from them in the last bits (AVX-512 and AVX2 agree).
/// Each element is summed in an order that depends on k only: the result does not depend on how
/// the caller splits C into row or column panels (over threads, say). Thread-safe; packing buffers
/// are per thread and reused, so repeated products allocate nothing.
void cember_sgemm(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                  int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/// C = alpha·op(A)·op(B) + beta·C_in: cember_sgemm with beta·C read from `c_in` (rows `ldc` apart,
/// as C) and the result written to C, the same bits as copying C_in into C first and calling
/// cember_sgemm. C_in is either C itself or does not overlap it. An update W' = W + alpha·G written
/// next to W, which then keeps its values without a copy (the trainer's weights before a step).
void cember_sgemm_from(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                       int64_t lda, const float *b, int64_t ldb, float beta, const float *c_in, float *c, int64_t ldc);

/// The k block of cember_sgemm for a product of depth k (at most 256): k is summed block by block,
/// each block's sum acc_b from zero, then C = alpha·acc_b + (b = 0 ? beta·C : C). A product cut
/// at these boundaries, block 0 into C and each later block alone (alpha 1, beta 0) then added to C
/// in order, gives the same bits as the whole product (alpha 1).
int64_t cember_sgemm_depth_block(int64_t k);

/// The depth or columns up to which cember_sgemm reads op(A) in place (no trans_a, panels of at
/// most 8 rows: AVX2 and the baseline) instead of packing it: a product with k or n at most this.
/// BLAS.byShape asks the same limit.
#define CEMBER_GEMM_IN_PLACE_LIMIT 256

/// A layer's forward product with its epilogue: C = relu?(op(A)·op(B) + bias), `bias` n values
/// (or NULL) added to every row, ReLU (x > 0 ? x : 0) when `relu` ≠ 0. The same bits as copying the
/// bias into every row of C and calling cember_sgemm with alpha 1 and beta 1, then the ReLU, in
/// one pass over C.
void cember_sgemm_bias_relu(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, const float *a,
                            int64_t lda, const float *b, int64_t ldb, const float *bias, int32_t relu, float *c,
                            int64_t ldc);

/// For tests: makes cember_sgemm take one path for every product it can (0 packs op(B) and packs
/// op(A) or reads it in place as by shape; 1 reads op(B) in place, for products without trans_b;
/// 2 computes Cᵀ with op(B) read in place, or on AVX2 for x·Wᵀ with at most 4 columns of C a
/// kernel for heads that transposes x in registers; 3 packs both operands) and returns the previous
/// setting; -1 (or any other value) restores the choice by shape (op(B) in place for at most 64
/// rows of C; Cᵀ for products with trans_b and at most 12 columns of C; op(A) in place without
/// trans_a where panels have at most 8 rows, unless k > 256 and n > 256). Every path gives the
/// same bits.
int32_t cember_gemm_force_route(int32_t route);

// MARK: Pooling (pooling.c)

/// Max pooling of `planes` planes of H × W with kH × kW windows that tile the plane (stride = kernel,
/// no padding): y gets each window's maximum (NaN wins; the first in row-major order on ties) and
/// pos its in-plane index, for (H / kH) × (W / kW) outputs per plane.
void cember_max_pool_tiled(const float *restrict x, int64_t planes, int64_t H, int64_t W, int64_t kH, int64_t kW,
                           float *restrict y, int32_t *restrict pos);

/// Max pooling of `planes` planes H × W with any window kH × kW, stride (sH, sW) and padding (pH, pW)
/// (padding reads -inf; each window must hold an input element) into outH × outW, with the in-plane
/// position of each maximum (the first on ties, NaN winning), as cember_max_pool_tiled. Only for
/// sW of 1 or 2: returns 0 and writes nothing for other strides, else 1.
int32_t cember_max_pool_strided(const float *restrict x, int64_t planes, int64_t H, int64_t W, int64_t kH, int64_t kW,
                                int64_t sH, int64_t sW, int64_t pH, int64_t pW, int64_t outH, int64_t outW,
                                float *restrict y, int32_t *restrict pos);

/// The gradient of cember_max_pool_tiled: overwrites dx with dy at each window's maximum, zeros elsewhere.
void cember_max_pool_tiled_backward(const float *restrict dy, const int32_t *restrict pos, int64_t planes, int64_t H,
                                    int64_t W, int64_t kH, int64_t kW, float *restrict dx);

/// The instruction set the dispatched kernels use: 2 AVX-512, 1 AVX2 (with FMA), 0 baseline x86-64.
int32_t cember_kernels_isa(void);

/// The instruction set this CPU supports, as cember_kernels_isa counts (2 AVX-512, 1 AVX2, 0 neither
/// or not x86-64), whatever cap a test has set.
int32_t cember_cpu_isa(void);

/// Caps the instruction set of the dispatched kernels at `level` (-1: none) and returns the
/// previous cap; for tests that check every variant gives the same bits.
int32_t cember_kernels_force_isa(int32_t level);

#ifdef __cplusplus
}
#endif

#endif
