// Single-precision matrix products (`cember_sgemm`), for CPUs where the BLAS library runs kernels
// that leave the vector units unused (Debian's OpenBLAS 0.3.21 falls back to SSE3 "Prescott"
// kernels on CPUs it does not know: docs/architecture.md#openblas-core-detection).
//
// The classic Goto/BLIS structure: for each block of NC columns and of k (depth_block), op(B) is
// packed into NR-wide column panels (row l of a panel holds B(l, j..j+NR) contiguously), and for
// each block of MC rows op(A) into MR-tall row panels (row l holds A(i..i+MR, l)); packing handles
// the transposes (16×16 in-register transposes where the source is contiguous along k), so one
// register-tiled micro-kernel serves all four cases. It keeps an mr × NR tile of C in registers,
// adds broadcast A values times B vectors over the k block, then updates C once.
//
// Few rows of C (m <= SMALL_M: a batch through a layer, op(B) its weight). Packing op(B) reads it
// (cold, from L3) and writes it again for a product that uses each packed value only m times, so
// op(B) is read in place: without trans_b its rows feed the micro-kernel's B vectors directly
// (the row end through masked loads); with trans_b (x·Wᵀ) the product is computed as Cᵀ = op(B)ᵀ·
// op(A)ᵀ, op(B)ᵀ's values broadcast in the micro-kernel's A role where they are (a prefetch per
// step, one row at a time) and op(A)ᵀ packed (m × kc: small), the tiles transposed in registers
// into C. The same transposed path serves x·Wᵀ with few columns of C (at most FEW_COLUMNS outputs:
// a network's head), whose packed tiles would hold 1–12 of their 16 or 32 lanes; on AVX2 heads of
// at most 4 outputs take their own kernel (head_avx2, below), which transposes x in registers.
// Each element gets the same products in the same order on every path, so the same bits.
//
// A read in place. Where op(A)'s rows run along k (no trans_a) and its panels would have at most
// 8 rows (AVX2's 6, the baseline's 2), the micro-kernel broadcasts A's values where they are
// instead of packing them (a copy per value, each panel used by only n / NR column tiles), unless
// a long A (k > 256) meets many column panels (n > 256), where packing pays for itself. On a Zen 3
// (a one-off C micro-benchmark, minima of three runs): 4096 × 64 · 64 × 64 464 → 390 µs, 4096 × 13
// · 13 × 64 132 → 115, the FT-Transformer's 1856 × 192 · 192 × 192 1559 → 1447, 2048 × 1000 ·
// 1000 × 64 3562 → 2880; 1000³ and 512 × 1024 · 1024 × 512 (packed) unchanged, while reading them
// in place cost 1–3%.
//
// Epilogue (cember_sgemm_bias_relu): a layer's bias is added where beta·C would be on the first k
// block and the ReLU applied on the last, as the tiles are stored.
// When k is small (a weight gradient: C is the weight, read and written), tiles are walked row tile
// by row tile, so that C streams along its rows, and each tile's C is prefetched before its loop.
//
// Variants: AVX-512 (12 × 32: 24 zmm accumulators), AVX2 + FMA (6 × 16: 12 ymm accumulators) and
// a baseline in plain C (2 × 16 on logical 16-float vectors, multiply then add). Edge tiles run
// the same micro-kernel on zero-padded panels with fewer rows or vectors and masked C updates.
//
// Numerics. Unlike the other kernels of this target, FMA is intended: the AVX variants use fused
// multiply-adds (explicitly; contraction stays off), the baseline a multiply and an add, so the
// baseline differs from them in the last bits. Each element of C gets, for each k block in order
// (depth_block(k): k cut into ceil(k / KC) blocks of equal size rounded up to 16, the last one
// shorter; the same in every variant), acc = Σ_l A(i, l)·B(l, j) summed sequentially from l = 0,
// then C = alpha·acc + beta·C (first block; beta = 0 never reads C) or C = alpha·acc + C (later
// blocks). That order depends on k only, never on where the element sits in a tile, block or
// panel: splitting C into row or column panels (BLAS.gemm does, over threads) does not change a
// bit, and the AVX-512 and AVX2 variants give identical results. Nor does cutting k at block
// boundaries (BLAS.gemm's depth split, which cember_sgemm_depth_block serves): block b alone with
// beta 0 gives acc_b exactly (alpha 1), and adding the blocks' results to C in order repeats the
// kernel's own C = acc_b + C.
//
// Packing buffers are per thread (a pthread key, freed when the thread exits), grown to the
// largest product seen; in a steady state of repeated shapes nothing is allocated. If allocation
// fails, the product runs with one panel of each on the stack (the same bits, slower).
#include "CEmberKernels.h"
#include "simd.h"

#include <pthread.h>
#include <stdlib.h>

enum {
    KC = 256,     // the largest k block (see depth_block): it fixes each element's order of additions
    MC = 144,     // rows of A packed at a time (a multiple of every MR)
    NC = 2048,    // columns of B packed at a time (a multiple of every NR)
    MAX_MR = 12,
    MAX_NV = 2,   // 16-float vectors in the widest NR
    SMALL_M = 64, // products with at most this many rows of C read op(B) in place
    FEW_COLUMNS = 12, // x·Wᵀ products with at most this many columns of C compute Cᵀ
    MIN_TRANSPOSED_ROWS = 16, // and those with at least this many rows (and at most SMALL_M)
};

// The paths of cember_sgemm (cember_gemm_force_route in tests).
enum { ROUTE_PACKED = 0, ROUTE_B_IN_PLACE = 1, ROUTE_TRANSPOSED = 2, ROUTE_BOTH_PACKED = 3 };

// MARK: Packing

/// Transposes 16 rows of 16 floats in place (r[i][j] ↔ r[j][i]) in four rounds between rows 1, 2,
/// 4 and 8 apart, each of which AVX2 runs as one shuffle per 8-float half: interleaving within
/// 128-bit lanes (unpcklps/unpckhps), pairs of 64 bits within them (shufps), 128-bit lanes
/// (vperm2f128), and halves of 256 bits (renaming registers). After the first two, each 4 × 4
/// block of rows 4a.. and columns 4b.. is transposed in place; the last two transpose the 4 × 4
/// grid of blocks. (AVX-512 runs each as one instruction too.) It replaced rounds whose last one
/// (even lanes of two rows) has no AVX2 instruction; on a Zen 3 (one-off C micro-benchmark, before
/// the head kernel): 4096 × 64 · 64 × 1 114 → 107 µs, 58 × 24 · 24 × 58 5.05 → 4.89 µs.
INLINE void transpose16(v16 r[16]) {
#define ROUND(S, LO, HI)                                          \
    for (int i = 0; i < 16; i++) {                                \
        if (i & (S)) continue;                                    \
        v16 x = r[i], y = r[i + (S)];                             \
        r[i] = __builtin_shufflevector(x, y, LO);                 \
        r[i + (S)] = __builtin_shufflevector(x, y, HI);           \
    }
    // Rows 2a and 2a + 1 interleaved: lanes 4b + {0, 1} and 4b + {2, 3} of both.
#define UNPACK_LO 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29
#define UNPACK_HI 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14, 30, 15, 31
    ROUND(1, UNPACK_LO, UNPACK_HI)
    // Rows 4a + {0, 1} with 4a + {2, 3}: the low and the high pairs of each 128-bit lane. Row
    // 4a + 1 (rows 4a.. interleaved high) pairs with 4a + 3 and becomes columns 4b + 2 and 4b + 3.
    for (int a = 0; a < 16; a += 4) {
        v16 p = r[a], q = r[a + 1], s = r[a + 2], t = r[a + 3];
        r[a] = __builtin_shufflevector(p, s, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29);
        r[a + 1] = __builtin_shufflevector(p, s, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
        r[a + 2] = __builtin_shufflevector(q, t, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29);
        r[a + 3] = __builtin_shufflevector(q, t, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
    }
    // The 4 × 4 grid of blocks: 128-bit lanes between rows 4 apart, then 256-bit halves between
    // rows 8 apart.
#define L4 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27
#define H4 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
#define L8 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define H8 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
    ROUND(4, L4, H4)
    ROUND(8, L8, H8)
#undef ROUND
#undef UNPACK_LO
#undef UNPACK_HI
#undef L4
#undef H4
#undef L8
#undef H8
}

typedef float v8 __attribute__((vector_size(32)));

/// Half h (0: lanes 0–7, 1: lanes 8–15) of v.
INLINE v8 half8(v16 v, int h) {
    return h == 0 ? __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7)
                  : __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
}

/// v in lanes 0–7, zero in lanes 8–15.
INLINE v16 widen8(v8 v) {
    return __builtin_shufflevector(v, (v8){0}, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

/// Transposes 8 rows of 8 floats in place (r[i][j] ↔ r[j][i]): transpose16's first three rounds
/// at half the width (unpcklps/unpckhps, shufps, vperm2f128 on AVX2).
INLINE void transpose8(v8 r[8]) {
    for (int i = 0; i < 8; i += 2) {
        v8 x = r[i], y = r[i + 1];
        r[i] = __builtin_shufflevector(x, y, 0, 8, 1, 9, 4, 12, 5, 13);
        r[i + 1] = __builtin_shufflevector(x, y, 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int a = 0; a < 8; a += 4) {
        v8 p = r[a], q = r[a + 1], s = r[a + 2], t = r[a + 3];
        r[a] = __builtin_shufflevector(p, s, 0, 1, 8, 9, 4, 5, 12, 13);
        r[a + 1] = __builtin_shufflevector(p, s, 2, 3, 10, 11, 6, 7, 14, 15);
        r[a + 2] = __builtin_shufflevector(q, t, 0, 1, 8, 9, 4, 5, 12, 13);
        r[a + 3] = __builtin_shufflevector(q, t, 2, 3, 10, 11, 6, 7, 14, 15);
    }
    for (int i = 0; i < 4; i++) {
        v8 x = r[i], y = r[i + 4];
        r[i] = __builtin_shufflevector(x, y, 0, 1, 2, 3, 8, 9, 10, 11);
        r[i + 4] = __builtin_shufflevector(x, y, 4, 5, 6, 7, 12, 13, 14, 15);
    }
}

/// Stores the first `W - c0` (at most 16) lanes of v at p.
INLINE void store_lanes(const int W, int c0, float *p, v16 v, store_fn store) {
    if (W - c0 >= 16) {
        vstore(p, v);
    } else {
        store(p, v, lane_bits(0, W - c0));
    }
}

/// Packs a panel of W (a multiple of 16, or less than 16) × kc: dst[l·W + x] = src[x·sw + l·sk]
/// for x < w, zero for w <= x < W. One of sw, sk is 1 (row-major operands): with sw = 1 rows are
/// copied, with sk = 1 blocks of 16 × 16 are transposed in registers.
INLINE void pack_panel(const int W, int64_t w, int64_t kc, const float *src, int64_t sw, int64_t sk, float *dst,
                       lanes_fn lanes, store_fn store) {
    if (sw != 1 && W <= 8) {
        // At most 8 rows to a panel (AVX2's 6, the baseline's 2): a 16 × 16 transpose would
        // shuffle mostly zeros; each value is copied alone. On a Zen 3 (one-off C micro-benchmark,
        // while these shapes still packed A; now they read it in place): 58 × 58 · 58 × 24 31–34 →
        // 40–42 GFLOP/s, 4096 × 64 · 64 × 64 56–62 → 68–72, 32 × 100 · 100 × 100 52–55 → 60–64.
        // AVX-512's panels of 12 rows keep the transpose.
        for (int64_t l = 0; l < kc; l++) {
            for (int x = 0; x < W; x++) dst[l * W + x] = x < w ? src[x * sw + l * sk] : 0.0f;
        }
        return;
    }
    if (sw == 1) {
        for (int64_t l = 0; l < kc; l++) {
            for (int c0 = 0; c0 < W; c0 += 16) {
                store_lanes(W, c0, dst + l * W + c0, lanes(src + l * sk + c0, lane_bits(0, w - c0)), store);
            }
        }
        return;
    }
    for (int64_t l0 = 0; l0 < kc; l0 += 16) {
        int64_t kn = kc - l0 < 16 ? kc - l0 : 16;
        uint32_t kbits = lane_bits(0, kn);
        for (int c0 = 0; c0 < W; c0 += 16) {
            v16 r[16];
            for (int x = 0; x < 16; x++) {
                r[x] = c0 + x < w ? lanes(src + (c0 + x) * sw + l0, kbits) : vsplat(0.0f);
            }
            transpose16(r);
            for (int t = 0; t < kn; t++) store_lanes(W, c0, dst + (l0 + t) * W + c0, r[t], store);
        }
    }
}

// MARK: Micro-kernel

/// x > 0 ? x : 0 in every lane (NaN and -0 to +0), as the ReLU op.
INLINE v16 relu16(v16 x) {
    v16i keep = x > vsplat(0.0f);
    return (v16)((v16i)x & keep);
}

/// One vector of a C tile, its first `left` lanes (all 16 if left >= 16): acc scaled by alpha and
/// added to the bias read at `bias` (first k block, if not NULL), to nothing (first block, beta 0)
/// or to beta·C_in / C read at q (later blocks: C); then the ReLU (`relu`: the last block) and the
/// store at p. See micro().
INLINE void store_acc(const int fused, int first, int relu, v16 acc, const float *bias, float *p, const float *q,
                      int64_t left, v16 va, v16 vb, float beta, lanes_fn lanes, store_fn store) {
    uint32_t bits = lane_bits(0, left);
    v16 out;
    if (first && bias != NULL) {
        v16 b = left >= 16 ? vload(bias) : lanes(bias, bits);
        out = fused ? __builtin_elementwise_fma(va, acc, b) : va * acc + b;
    } else if (first && beta == 0.0f) {
        out = va * acc;
    } else {
        v16 old = left >= 16 ? vload(q) : lanes(q, bits);
        if (first) old = vb * old;
        out = fused ? __builtin_elementwise_fma(va, acc, old) : va * acc + old;
    }
    if (relu) out = relu16(out);
    if (left >= 16) {
        vstore(p, out);
    } else {
        store(p, out, bits);
    }
}

/// C tile of mr rows × nv vectors (ncols of its columns stored) += the product of an A panel and
/// a B panel over kc; see the numerics above. A(i, l) = pa[i·a_row + l·a_l] (a packed panel:
/// a_row 1, a_l MR; or the operand in place), the B vectors of row l at pb + l·b_l (a packed,
/// zero-padded panel; or, with `bmask`, the operand in place, its last vector read through the
/// lanes of `blast` only). With `tc` the tile is C transposed: its element (i, j) is stored at
/// c[j·ldc + i] (ncols rows of C, mr columns), the same value as without. With `bias` (the tile's
/// first column's; beta is 0), the first k block adds it where it would add beta·C after the bias
/// had been copied into C with beta 1 (the same bits); with `relu`, the last k block stores
/// max(x, 0) (NaN to 0, as x > 0 ? x : 0). With `from` (compile-time), the first k block reads
/// beta·C from `cin` (C_in, cember_sgemm_from) instead of C; without, `cin` is not used.
INLINE void micro(const int MR, const int NV, const int mr, const int nv, const int fused, const int from,
                  const int bmask, const int tc, lanes_fn lanes, store_fn store, int64_t kc, const float *pa,
                  int64_t a_row, int64_t a_l, const float *pb, int64_t b_l, uint32_t blast, float *c,
                  const float *cin, int64_t ldc, int64_t ncols, float alpha, float beta, int first,
                  const float *bias, int last, int relu) {
    v16 acc[MAX_MR][MAX_NV];
    for (int i = 0; i < mr; i++)
        for (int v = 0; v < nv; v++) acc[i][v] = vsplat(0.0f);
    // The C tile is read after the loop: fetched meanwhile (a weight gradient updates a cold weight).
    const float *cr = from && first ? cin : c;
    if (!(first && (beta == 0.0f || bias != NULL)) && !tc) {
        for (int i = 0; i < mr; i++)
            for (int v = 0; v < nv; v++) __builtin_prefetch(cr + i * ldc + 16 * v);
    }
    int prefetch_row = 0;
    for (int64_t l = 0; l < kc; l++) {
        const float *al = pa + l * a_l, *bl = pb + l * b_l;
        // A read in place: one of its mr rows, 32 values ahead, per step (each row moves to a new
        // cache line every 16 steps, and mr <= 12 rows take turns). The row by a counter, not
        // l % mr: the division's multiply and shifts per step cost 10–12% of the forward
        // products of the MLP's layers (Zen 3, one thread: 32 × 400 · 400 × 400 146 → 131 µs,
        // 32 × 200 · 200 × 200 35.5 → 31.9; a one-off C micro-benchmark, minima of four runs).
        if (tc) {
            __builtin_prefetch(al + prefetch_row * a_row + 32 * a_l);
            prefetch_row = prefetch_row + 1 == mr ? 0 : prefetch_row + 1;
        }
        v16 bv[MAX_NV];
        for (int v = 0; v < nv; v++) bv[v] = bmask && v == nv - 1 ? lanes(bl + 16 * v, blast) : vload(bl + 16 * v);
        for (int i = 0; i < mr; i++) {
            v16 ai = vsplat(al[i * a_row]);
            for (int v = 0; v < nv; v++) {
                acc[i][v] = fused ? __builtin_elementwise_fma(ai, bv[v], acc[i][v]) : acc[i][v] + ai * bv[v];
            }
        }
    }
    v16 va = vsplat(alpha), vb = vsplat(beta);
    if (tc) {
        // Each 16-column vector transposed in registers: r[t] holds column j of the tile over its
        // rows (j = 16v + 8h + t in half h of an 8 × 8 block, 16v + t in a 16 × 16 one), which is
        // row j of C from column 0 (mr lanes). Tiles of at most 8 rows (AVX2's 6, the baseline's
        // 2) as two 8 × 8 blocks of 8-float halves, one after the other: a block is 8 of AVX2's 16
        // registers, where transpose16's 16 × 16 floats are 32 and went through the stack (~58 ns
        // of a 6 × 16 tile on a Zen 3, 13% of a 200-deep tile).
        for (int v = 0; v < nv; v++) {
            if (MR <= 8) {
                for (int h = 0; h < 2 && 16 * v + 8 * h < ncols; h++) {
                    v8 r[8];
                    for (int i = 0; i < 8; i++) r[i] = i < mr ? half8(acc[i][v], h) : (v8){0};
                    transpose8(r);
                    for (int t = 0; t < 8 && t < ncols - 16 * v - 8 * h; t++) {
                        int64_t j = 16 * v + 8 * h + t;
                        store_acc(fused, first, relu && last, widen8(r[t]), bias, c + j * ldc, cr + j * ldc, mr,
                                  va, vb, beta, lanes, store);
                    }
                }
            } else {
                v16 r[16];
                for (int i = 0; i < 16; i++) r[i] = i < mr ? acc[i][v] : vsplat(0.0f);
                transpose16(r);
                for (int t = 0; t < 16 && t < ncols - 16 * v; t++) {
                    int64_t j = 16 * v + t;
                    store_acc(fused, first, relu && last, r[t], bias, c + j * ldc, cr + j * ldc, mr, va, vb, beta,
                              lanes, store);
                }
            }
        }
        return;
    }
    // The tile's stores, unrolled so that the accumulators stay in registers (rolled, they went
    // through the stack, and with k = 32 the epilogue took ~25% of a weight gradient's tile: 200 ×
    // 32 · 32 × 200 37.0 → 33.3 µs on a Zen 3, this change alone). Except where B is read in
    // place: its masked last vector keeps a mask in a register in the k loop, and the unrolled
    // stores pushed an accumulator of that loop onto the stack (32 × 200 · 200 × 200 29.7 → 59.9
    // µs).
#define STORE_ROW_VECTOR(i, v)                                                                   \
    store_acc(fused, first, relu && last, acc[i][v], bias == NULL ? NULL : bias + 16 * (v),       \
              c + (i) * ldc + 16 * (v), cr + (i) * ldc + 16 * (v), ncols - 16 * (v), va, vb, beta, lanes, store)
    if (bmask) {
        for (int i = 0; i < mr; i++)
            for (int v = 0; v < nv; v++) STORE_ROW_VECTOR(i, v);
    } else {
#pragma clang loop unroll(full)
        for (int i = 0; i < mr; i++)
#pragma clang loop unroll(full)
            for (int v = 0; v < nv; v++) STORE_ROW_VECTOR(i, v);
    }
#undef STORE_ROW_VECTOR
}

// One case of the switch over edge tiles: the micro-kernel for mr = MRc rows and nv = NVc vectors
// (where the variant's tile has them); the rest are micro()'s arguments from bmask to b_l.
#define MICRO_CASE(MRc, NVc, ...)                                                                           \
    case (MRc) * 4 + (NVc):                                                                                 \
        if ((MRc) <= MR && (NVc) <= NV)                                                                     \
            micro(MR, NV, MRc, NVc, fused, from, __VA_ARGS__, blast, cij, cinij, ldc, ncols, alpha, beta,    \
                  first, btias, last, relu);                                                                \
        break;
/// micro() for the tile of mr rows and nv vectors that `key` (mr·4 + nv) names; `...`: bmask, tc,
/// lanes, store, kc, pa, a_row, a_l, pb, b_l.
#define MICRO_SWITCH(key, ...)                                                                              \
    switch (key) {                                                                                          \
        MICRO_CASE(1, 1, __VA_ARGS__) MICRO_CASE(1, 2, __VA_ARGS__) MICRO_CASE(2, 1, __VA_ARGS__)           \
        MICRO_CASE(2, 2, __VA_ARGS__) MICRO_CASE(3, 1, __VA_ARGS__) MICRO_CASE(3, 2, __VA_ARGS__)           \
        MICRO_CASE(4, 1, __VA_ARGS__) MICRO_CASE(4, 2, __VA_ARGS__) MICRO_CASE(5, 1, __VA_ARGS__)           \
        MICRO_CASE(5, 2, __VA_ARGS__) MICRO_CASE(6, 1, __VA_ARGS__) MICRO_CASE(6, 2, __VA_ARGS__)           \
        MICRO_CASE(7, 1, __VA_ARGS__) MICRO_CASE(7, 2, __VA_ARGS__) MICRO_CASE(8, 1, __VA_ARGS__)           \
        MICRO_CASE(8, 2, __VA_ARGS__) MICRO_CASE(9, 1, __VA_ARGS__) MICRO_CASE(9, 2, __VA_ARGS__)           \
        MICRO_CASE(10, 1, __VA_ARGS__) MICRO_CASE(10, 2, __VA_ARGS__) MICRO_CASE(11, 1, __VA_ARGS__)        \
        MICRO_CASE(11, 2, __VA_ARGS__) MICRO_CASE(12, 1, __VA_ARGS__) MICRO_CASE(12, 2, __VA_ARGS__)        \
        default: break;                                                                                     \
    }

// MARK: Blocking

/// Copies rows × n floats from `src` to `dst` (both with rows ldc apart).
INLINE void copy_rows(float *dst, const float *src, int64_t rows, int64_t n, int64_t ldc) {
    for (int64_t r = 0; r < rows; r++) memcpy(dst + r * ldc, src + r * ldc, (size_t)n * sizeof(float));
}

/// The k block of a product of depth k: k cut into ceil(k / KC) blocks of equal size, rounded up to
/// a multiple of 16 (the last block shorter). Equal blocks let BLAS.gemm give each of two threads
/// one block of a 400-deep product (208 + 192) with the same bits as one thread's product.
INLINE int64_t depth_block(int64_t k) {
    int64_t blocks = (k + KC - 1) / KC;
    if (blocks <= 1) return KC;
    int64_t kc = ((k + blocks - 1) / blocks + 15) / 16 * 16;
    return kc < KC ? kc : KC;
}

int64_t cember_sgemm_depth_block(int64_t k) { return k <= 0 ? KC : (k < depth_block(k) ? k : depth_block(k)); }

/// Whether gemm_body walks C's tiles row tile by row tile: when the packed B block (kc × ncur)
/// fits in 256 KB of L2.
#define ROWS_FIRST(kc, ncur) ((kc) * (ncur) <= 65536)

/// The floats of packing buffer a product of m × n × k needs with MR × NR tiles and blocks mc, nc.
INLINE int64_t buffer_floats(int64_t MR, int64_t NR, int64_t m, int64_t n, int64_t k, int64_t mc, int64_t nc) {
    int64_t rows = (m < mc ? m : mc) + MR - 1, cols = (n < nc ? n : nc) + NR - 1, depth = k < KC ? k : KC;
    return (rows / MR * MR + cols / NR * NR) * depth;
}

/// C = alpha·op(A)·op(B) + beta·C with A(i, l) = a[i·ars + l·acs], B(l, j) = b[l·brs + j·bcs];
/// m, n, k > 0; buf holds buffer_floats(MR, NV·16, m, n, k, mc, nc) floats. With `bip` (B in place;
/// needs bcs = 1) B is not packed: the micro-kernel reads its rows where they are; with `aip` (A in
/// place; needs acs = 1) A is not packed: it broadcasts A's values from A's rows. With `from`,
/// beta·C is read from `cin` (C_in) on the first k block; without, `cin` is C.
INLINE void gemm_body(const int MR, const int NV, const int fused, const int bip, const int aip, const int from,
                      lanes_fn lanes, store_fn store,
                      int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t ars, int64_t acs,
                      const float *b, int64_t brs, int64_t bcs, float beta, float *c, const float *cin,
                      int64_t ldc, const float *bias, int relu, float *buf, int64_t mc, int64_t nc) {
    const int64_t NR = 16 * NV;
    int64_t depth = k < KC ? k : KC, ncmax = bip ? 0 : ((n < nc ? n : nc) + NR - 1) / NR * NR;
    const int64_t kb = depth_block(k);
    float *pb = buf, *pa = buf + ncmax * depth;
    for (int64_t jc = 0; jc < n; jc += nc) {
        int64_t ncur = n - jc < nc ? n - jc : nc;
        for (int64_t pc = 0; pc < k; pc += kb) {
            int64_t kc = k - pc < kb ? k - pc : kb;
            int first = pc == 0, last = pc + kb >= k;
            for (int64_t jp = 0; !bip && jp < ncur; jp += NR) {
                pack_panel(NR, ncur - jp < NR ? ncur - jp : NR, kc, b + pc * brs + (jc + jp) * bcs, bcs, brs,
                           pb + jp * kc, lanes, store);
            }
            for (int64_t ic = 0; ic < m; ic += mc) {
                int64_t mcur = m - ic < mc ? m - ic : mc;
                for (int64_t ip = 0; !aip && ip < mcur; ip += MR) {
                    pack_panel(MR, mcur - ip < MR ? mcur - ip : MR, kc, a + (ic + ip) * ars + pc * acs, ars, acs,
                               pa + ip * kc, lanes, store);
                }
                // Tiles of C column panel by column panel (the B panel stays in L1 for the A
                // block in L2), or, when the packed B block is small enough to stay in L2 (k
                // small: a weight gradient, C = the weight), row tile by row tile, so that C is
                // read and written along its rows.
                int rows_first = ROWS_FIRST(kc, ncur);
                int64_t outer = rows_first ? mcur : ncur, inner = rows_first ? ncur : mcur;
                int64_t ostep = rows_first ? MR : NR, istep = rows_first ? NR : MR;
                for (int64_t o = 0; o < outer; o += ostep) {
                    for (int64_t q = 0; q < inner; q += istep) {
                        int64_t jp = rows_first ? q : o, ip = rows_first ? o : q;
                        int64_t ncols = ncur - jp < NR ? ncur - jp : NR;
                        int nv = (int)((ncols + 15) / 16);
                        uint32_t blast = lane_bits(0, ncols - 16 * (nv - 1));
                        const float *btile = bip ? b + pc * brs + jc + jp : pb + jp * kc;
                        int64_t b_l = bip ? brs : NR;
                        int mr = mcur - ip < MR ? (int)(mcur - ip) : MR;
                        float *cij = c + (ic + ip) * ldc + jc + jp;
                        const float *cinij = from ? cin + (ic + ip) * ldc + jc + jp : cij;
                        const float *btias = bias != NULL ? bias + jc + jp : NULL;
                        const float *atile = aip ? a + (ic + ip) * ars + pc : pa + ip * kc;
                        MICRO_SWITCH(mr * 4 + nv, bip, 0, lanes, store, kc, atile, aip ? ars : 1, aip ? 1 : MR, btile, b_l)
                    }
                }
            }
        }
    }
}

/// The same product for few rows of C (m small), where packing op(B) would cost about as much as
/// using it: computed as Cᵀ = op(B)ᵀ·op(A)ᵀ, op(B)ᵀ in the micro-kernel's A role read in place
/// (op(B)ᵀ(j, l) = b[j·bcs + l·brs], each value broadcast where it is) and op(A)ᵀ packed into
/// B-role panels (small: m × kc), the tiles stored transposed. Each element gets the same products
/// in the same order as in gemm_body, so the same bits (fma and products commute). buf holds
/// buffer_floats(MR, NV·16, 0, m, k, 0, m) floats.
INLINE void gemm_body_t(const int MR, const int NV, const int fused, lanes_fn lanes, store_fn store, int64_t m,
                        int64_t n, int64_t k, float alpha, const float *a, int64_t ars, int64_t acs, const float *b,
                        int64_t brs, int64_t bcs, float beta, float *c, int64_t ldc, const float *bias, int relu,
                        float *buf) {
    const int64_t NR = 16 * NV;
    const uint32_t blast = 0xFFFF;
    const int from = 0;
    const int64_t kb = depth_block(k);
    for (int64_t pc = 0; pc < k; pc += kb) {
        int64_t kc = k - pc < kb ? k - pc : kb;
        int first = pc == 0, last = pc + kb >= k;
        for (int64_t ip = 0; ip < m; ip += NR) {
            pack_panel(NR, m - ip < NR ? m - ip : NR, kc, a + ip * ars + pc * acs, ars, acs, buf + ip * kc, lanes,
                       store);
        }
        for (int64_t jr = 0; jr < n; jr += MR) {
            int mr = n - jr < MR ? (int)(n - jr) : MR;
            const float *rows = b + jr * bcs + pc * brs, *btias = bias != NULL ? bias + jr : NULL;
            for (int64_t ip = 0; ip < m; ip += NR) {
                int64_t ncols = m - ip < NR ? m - ip : NR;
                int nv = (int)((ncols + 15) / 16);
                float *cij = c + ip * ldc + jr;
                const float *cinij = cij;
                MICRO_SWITCH(mr * 4 + nv, 0, 1, lanes, store, kc, rows, bcs, brs, buf + ip * kc, NR)
            }
        }
    }
}

// MARK: Per-thread packing buffer

static pthread_key_t buffer_key;
static pthread_once_t buffer_once = PTHREAD_ONCE_INIT;
static int buffer_key_ready;

static void make_buffer_key(void) { buffer_key_ready = pthread_key_create(&buffer_key, free) == 0; }

/// This thread's packing buffer of at least `floats` floats (64-byte aligned), or NULL if it
/// cannot be allocated. A 64-byte header before the floats holds the capacity.
static float *thread_buffer(int64_t floats) {
    pthread_once(&buffer_once, make_buffer_key);
    if (!buffer_key_ready) return NULL;
    char *block = pthread_getspecific(buffer_key);
    if (block != NULL && *(int64_t *)(void *)block >= floats) return (float *)(void *)(block + 64);
    void *fresh = NULL;
    if (posix_memalign(&fresh, 64, 64 + (size_t)floats * sizeof(float)) != 0) return NULL;
    if (pthread_setspecific(buffer_key, fresh) != 0) {
        free(fresh);
        return NULL;
    }
    free(block);
    *(int64_t *)fresh = floats;
    return (float *)(void *)((char *)fresh + 64);
}

// MARK: Variants

#define GEMM_ARGS int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t ars, int64_t acs, \
                  const float *b, int64_t brs, int64_t bcs, float beta, float *c, const float *cin, int64_t ldc, \
                  const float *bias, int relu
#define GEMM_PASS m, n, k, alpha, a, ars, acs, b, brs, bcs, beta, c, cin, ldc, bias, relu

/// Whether gemm_body reads op(A) in place (see "A read in place" above).
#define A_IN_PLACE(MR, acs, k, n) \
    ((MR) <= 8 && (acs) == 1 && ((k) <= CEMBER_GEMM_IN_PLACE_LIMIT || (n) <= CEMBER_GEMM_IN_PLACE_LIMIT))

// gemm_<isa>: with this thread's buffer, or (allocation failed) gemm_<isa>_stack: one A and one B
// panel at a time in a stack buffer (blocks of MR rows and NR columns: the same sums, slower).
// `route` is the path cember_sgemm chose (ROUTE_PACKED, ROUTE_B_IN_PLACE, ROUTE_TRANSPOSED, or
// ROUTE_BOTH_PACKED: tests). C_in other than C (cember_sgemm_from) is read by the micro-kernel
// where op(A) is packed (a weight gradient's update: its own instantiations, so that the others
// keep their code), else copied into C first (sgemm does for Cᵀ).
#define GEMM_VARIANT(ISA, TARGET, MR, NV, FUSED)                                                       \
    TARGET __attribute__((noinline)) static void gemm_##ISA##_stack(GEMM_ARGS) {                       \
        float buf[(MR + 16 * NV) * KC];                                                                \
        if (cin != c) copy_rows(c, cin, m, n, ldc);                                                    \
        cin = c;                                                                                       \
        gemm_body(MR, NV, FUSED, 0, 0, 0, lanes_##ISA, store_##ISA, GEMM_PASS, buf, MR, 16 * NV);      \
    }                                                                                                  \
    TARGET __attribute__((noinline)) static void gemm_##ISA##_from(int bip, float *buf, GEMM_ARGS) {   \
        if (bip) gemm_body(MR, NV, FUSED, 1, 0, 1, lanes_##ISA, store_##ISA, GEMM_PASS, buf, MC, NC);  \
        else gemm_body(MR, NV, FUSED, 0, 0, 1, lanes_##ISA, store_##ISA, GEMM_PASS, buf, MC, NC);      \
    }                                                                                                  \
    TARGET static void gemm_##ISA(int route, GEMM_ARGS) {                                              \
        if (route == ROUTE_TRANSPOSED) {                                                               \
            /* Blocks of NC rows of C: op(A)ᵀ's packed block stays at most NC × KC floats. */          \
            float *buf = thread_buffer(buffer_floats(MR, 16 * NV, 0, m < NC ? m : NC, k, 0, NC));      \
            if (buf != NULL) {                                                                         \
                for (int64_t ic = 0; ic < m; ic += NC) {                                               \
                    gemm_body_t(MR, NV, FUSED, lanes_##ISA, store_##ISA, m - ic < NC ? m - ic : NC, n, k, \
                                alpha, a + ic * ars, ars, acs, b, brs, bcs, beta, c + ic * ldc, ldc, bias, \
                                relu, buf);                                                            \
                }                                                                                      \
                return;                                                                                \
            }                                                                                          \
        } else {                                                                                       \
            int bip = route == ROUTE_B_IN_PLACE;                                                       \
            float *buf = thread_buffer(buffer_floats(MR, 16 * NV, m, bip ? 0 : n, k, MC, NC));           \
            if (buf != NULL) {                                                                         \
                int aip = route != ROUTE_BOTH_PACKED && A_IN_PLACE(MR, acs, k, n);                     \
                if (cin != c && aip) {                                                                 \
                    copy_rows(c, cin, m, n, ldc);                                                      \
                    cin = c;                                                                           \
                }                                                                                      \
                if (cin != c) gemm_##ISA##_from(bip, buf, GEMM_PASS);                                  \
                else if (bip && aip) gemm_body(MR, NV, FUSED, 1, 1, 0, lanes_##ISA, store_##ISA, GEMM_PASS, buf, MC, NC); \
                else if (bip) gemm_body(MR, NV, FUSED, 1, 0, 0, lanes_##ISA, store_##ISA, GEMM_PASS, buf, MC, NC); \
                else if (aip) gemm_body(MR, NV, FUSED, 0, 1, 0, lanes_##ISA, store_##ISA, GEMM_PASS, buf, MC, NC); \
                else gemm_body(MR, NV, FUSED, 0, 0, 0, lanes_##ISA, store_##ISA, GEMM_PASS, buf, MC, NC); \
                return;                                                                                \
            }                                                                                          \
        }                                                                                              \
        gemm_##ISA##_stack(GEMM_PASS);                                                                 \
    }

#ifdef HAVE_VARIANTS
GEMM_VARIANT(avx512, TARGET_AVX512, 12, 2, 1)
GEMM_VARIANT(avx2, TARGET_AVX2_FMA, 6, 1, 1)
#endif
GEMM_VARIANT(baseline, , 2, 1, 0)

// MARK: Heads on AVX2

#ifdef HAVE_VARIANTS
enum {
    HEAD_COLUMNS = 4, // x·Wᵀ products with at most this many columns of C take head_avx2 on AVX2
    HEAD_GROUPS = 4,  // groups of 8 rows of C at a time (their sums are independent chains)
};

/// The 8 floats at p, or the first n (< 8) of them and zeros (reads only those).
TARGET_AVX2_FMA static inline __m256 head_load(const float *p, int64_t n) {
    return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask256((uint32_t)lane_bits(0, n)));
}

/// C = alpha·A·Bᵀ + beta·C (or the bias and ReLU epilogue) for few columns of C (N <= HEAD_COLUMNS:
/// a network's head) with A's rows along k (a[i·lda + l]) and B = the weight (b[j·ldb + l]). The
/// transposed route packs Aᵀ in 16 × 16 transposes and runs tiles of which N rows are real; here
/// blocks of 8 rows × 8 values of A are transposed in registers (unpack, shuffle, permute: 24
/// shuffles) into 8 vectors of one k each over 8 rows of C, and each output's sum runs over them,
/// HEAD_GROUPS groups of rows at a time so that the FMA chains overlap. Each element gets the same
/// sequence of operations as in micro() (per k block: acc from 0 by fma over l in order, then the
/// epilogue), so the same bits. Zen 3, one thread (a one-off C micro-benchmark): 4096 × 64 ·
/// 64 × 1 (a binary head over 4096 rows) 114 → 40 µs, one row 0.40 → 0.14 µs, 4096 × 400 · 400 × 1
/// 640 → 246 µs, 4096 × 64 · 64 × 4 130 → 83 µs (minima of three runs).
TARGET_AVX2_FMA static inline __attribute__((always_inline)) void head_body(const int N, int64_t m, int64_t k, float alpha,
                                                                     const float *a, int64_t lda, const float *b,
                                                                     int64_t ldb, float beta, float *c, int64_t ldc,
                                                                     const float *bias, int relu) {
    const int64_t kb = depth_block(k);
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta), zero = _mm256_setzero_ps();
    for (int64_t i0 = 0; i0 < m; i0 += 8 * HEAD_GROUPS) {
        for (int64_t pc = 0; pc < k; pc += kb) {
            int64_t kc = k - pc < kb ? k - pc : kb;
            int first = pc == 0, last = pc + kb >= k;
            __m256 acc[HEAD_GROUPS][HEAD_COLUMNS];
            for (int g = 0; g < HEAD_GROUPS; g++)
                for (int j = 0; j < N; j++) acc[g][j] = zero;
            for (int64_t l0 = 0; l0 < kc; l0 += 8) {
                int64_t kn = kc - l0 < 8 ? kc - l0 : 8;
                for (int g = 0; g < HEAD_GROUPS; g++) {
                    int64_t r0 = i0 + 8 * g;
                    if (r0 >= m) break;
                    __m256 r[8];
                    for (int x = 0; x < 8; x++) r[x] = r0 + x < m ? head_load(a + (r0 + x) * lda + pc + l0, kn) : zero;
                    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
                    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
                    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
                    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
                    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
                    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
                    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
                    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
                    // col[l]: A(r0 + x, pc + l0 + l) in lane x.
                    __m256 col[8] = {
                        _mm256_permute2f128_ps(u0, u4, 0x20), _mm256_permute2f128_ps(u1, u5, 0x20),
                        _mm256_permute2f128_ps(u2, u6, 0x20), _mm256_permute2f128_ps(u3, u7, 0x20),
                        _mm256_permute2f128_ps(u0, u4, 0x31), _mm256_permute2f128_ps(u1, u5, 0x31),
                        _mm256_permute2f128_ps(u2, u6, 0x31), _mm256_permute2f128_ps(u3, u7, 0x31),
                    };
                    for (int j = 0; j < N; j++) {
                        const float *w = b + j * ldb + pc + l0;
                        for (int l = 0; l < kn; l++) acc[g][j] = _mm256_fmadd_ps(_mm256_broadcast_ss(w + l), col[l], acc[g][j]);
                    }
                }
            }
            for (int g = 0; g < HEAD_GROUPS; g++) {
                int64_t r0 = i0 + 8 * g;
                if (r0 >= m) break;
                int rows = m - r0 < 8 ? (int)(m - r0) : 8;
                for (int j = 0; j < N; j++) {
                    __m256 out;
                    if (first && bias != NULL) {
                        out = _mm256_fmadd_ps(va, acc[g][j], _mm256_set1_ps(bias[j]));
                    } else if (first && beta == 0.0f) {
                        out = _mm256_mul_ps(va, acc[g][j]);
                    } else {
                        float old[8] = {0};
                        for (int x = 0; x < rows; x++) old[x] = c[(r0 + x) * ldc + j];
                        __m256 o = _mm256_loadu_ps(old);
                        if (first) o = _mm256_mul_ps(vb, o);
                        out = _mm256_fmadd_ps(va, acc[g][j], o);
                    }
                    if (relu && last) out = _mm256_and_ps(out, _mm256_cmp_ps(out, zero, _CMP_GT_OQ));
                    if (ldc == 1 && rows == 8) {
                        _mm256_storeu_ps(c + r0, out);
                    } else {
                        float v[8];
                        _mm256_storeu_ps(v, out);
                        for (int x = 0; x < rows; x++) c[(r0 + x) * ldc + j] = v[x];
                    }
                }
            }
        }
    }
}

TARGET_AVX2_FMA static void head_avx2(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                                const float *b, int64_t ldb, float beta, float *c, int64_t ldc, const float *bias,
                                int relu) {
    switch (n) {
        case 1: head_body(1, m, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, relu); break;
        case 2: head_body(2, m, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, relu); break;
        case 3: head_body(3, m, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, relu); break;
        default: head_body(4, m, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, relu); break;
    }
}
#endif

// MARK: A layer's product with its one-hot columns folded in

#define CODES_ARGS int64_t m, int64_t n, int64_t k, const float *restrict x, const float *restrict wt, int64_t ldw, \
                   const float *restrict table, const int64_t *restrict codes, int64_t nc,                          \
                   const int64_t *restrict cardinalities, const int64_t *restrict offsets,                          \
                   const float *restrict bias, int32_t relu, float *restrict y
#define CODES_PASS m, n, k, x, wt, ldw, table, codes, nc, cardinalities, offsets, bias, relu, y

/// Rows i0..<i0 + mr and columns c0..<c0 + min(left, 16) of cember_linear_code_rows (the pointers
/// at row i0 and column c0): each value's product over k summed from 0 in order as micro() sums it
/// (fused or not as the variant's micro-kernel), then each code's table row in order, the bias and
/// the ReLU as cember_add_code_rows adds them to that product's stored value (alpha 1: the product
/// is stored as it is summed). `full` (all 16 columns), `hb` (a bias) and `rl` (the ReLU) are
/// compile-time in the tiles of whole row panels and vectors, where the epilogue is most of the
/// time with k small (runtime, they left the accumulators on the stack: a row of 64 with k = 1 and
/// no codes 10 → 5 ns, with k = 8 and one code 22 → 18.5 ns; a Zen 3, a one-off C
/// micro-benchmark); 2 in `hb` or `rl` reads them from `bias` and `relu`.
INLINE void codes_tile(const int mr, const int fused, const int full, const int hb, const int rl, lanes_fn lanes,
                       store_fn store, int64_t left, int64_t k, const float *restrict x, const float *restrict wt,
                       int64_t ldw, const float *restrict table, int64_t n, const int64_t *restrict codes, int64_t nc,
                       const int64_t *restrict cardinalities, const int64_t *restrict offsets,
                       const float *restrict bias, int32_t relu, float *restrict y) {
    const int add_bias = hb == 2 ? bias != NULL : hb, do_relu = rl == 2 ? relu != 0 : rl;
    v16 acc[MAX_MR];
    for (int i = 0; i < mr; i++) acc[i] = vsplat(0.0f);
    for (int64_t l = 0; l < k; l++) {
        v16 bv = vload(wt + l * ldw);
        for (int i = 0; i < mr; i++) {
            v16 ai = vsplat(x[i * k + l]);
            acc[i] = fused ? __builtin_elementwise_fma(ai, bv, acc[i]) : acc[i] + ai * bv;
        }
    }
    uint32_t bits = full ? 0xFFFF : lane_bits(0, left);
    v16 b = !add_bias ? vsplat(0.0f) : full ? vload(bias) : lanes(bias, bits);
#pragma clang loop unroll(full)
    for (int i = 0; i < mr; i++) {
        v16 out = acc[i];
        for (int64_t j = 0; j < nc; j++) {
            int64_t v = codes[i * nc + j];
            if (v < 0 || v >= cardinalities[j]) continue;
            const float *t = table + (offsets[j] + v) * n;
            out += full ? vload(t) : lanes(t, bits);
        }
        if (add_bias) out += b;
        if (do_relu) out = relu16(out);
        if (full) {
            vstore(y + i * n, out);
        } else {
            store(y + i * n, out, bits);
        }
    }
}

#define CODES_TILE_PASS(R, FULL, HB, RL)                                                                         \
    codes_tile(R, fused, FULL, HB, RL, lanes, store, n - c0, k, x + i0 * k, wt + c0, ldw, table + c0, n,          \
               codes + i0 * nc, nc, cardinalities, offsets, bias == NULL ? NULL : bias + c0, relu, y + i0 * n + c0)
#define CODES_CASE(R) \
    case R:           \
        if ((R) <= MR) CODES_TILE_PASS(R, 0, 2, 2); \
        break;

/// The tile of cember_linear_code_rows at row i0 and column c0 with mr rows or fewer than 16
/// columns (the bias and the ReLU read at run time: one copy of these per variant).
INLINE void codes_edge(const int MR, const int fused, lanes_fn lanes, store_fn store, int mr, int64_t i0, int64_t c0,
                       CODES_ARGS) {
    switch (mr) {
        CODES_CASE(1) CODES_CASE(2) CODES_CASE(3) CODES_CASE(4) CODES_CASE(5) CODES_CASE(6)
        CODES_CASE(7) CODES_CASE(8) CODES_CASE(9) CODES_CASE(10) CODES_CASE(11) CODES_CASE(12)
        default: break;
    }
}
#undef CODES_CASE

typedef void (*codes_edge_fn)(int mr, int64_t i0, int64_t c0, CODES_ARGS);

/// cember_linear_code_rows in tiles of MR rows × 16 columns, row tile by row tile (x's rows stay in
/// L1, and W and the table too when the layer is narrow; y is written along its rows), with a bias
/// or not (HB) and the ReLU or not (RL) in whole tiles; the others go to `edge`.
INLINE void codes_rows(const int MR, const int fused, const int HB, const int RL, lanes_fn lanes, store_fn store,
                       codes_edge_fn edge, CODES_ARGS) {
    for (int64_t i0 = 0; i0 < m; i0 += MR) {
        int mr = m - i0 < MR ? (int)(m - i0) : MR;
        for (int64_t c0 = 0; c0 < n; c0 += 16) {
            if (mr == MR && n - c0 >= 16) {
                CODES_TILE_PASS(MR, 1, HB, RL);
            } else {
                edge(mr, i0, c0, CODES_PASS);
            }
        }
    }
}
#undef CODES_TILE_PASS

INLINE void codes_body(const int MR, const int fused, lanes_fn lanes, store_fn store, codes_edge_fn edge, CODES_ARGS) {
    if (bias != NULL && relu) codes_rows(MR, fused, 1, 1, lanes, store, edge, CODES_PASS);
    else if (bias != NULL) codes_rows(MR, fused, 1, 0, lanes, store, edge, CODES_PASS);
    else if (relu) codes_rows(MR, fused, 0, 1, lanes, store, edge, CODES_PASS);
    else codes_rows(MR, fused, 0, 0, lanes, store, edge, CODES_PASS);
}

#define CODES_VARIANT(ISA, TARGET, MR, FUSED)                                                                  \
    TARGET __attribute__((noinline)) static void codes_edge_##ISA(int mr, int64_t i0, int64_t c0, CODES_ARGS) { \
        codes_edge(MR, FUSED, lanes_##ISA, store_##ISA, mr, i0, c0, CODES_PASS);                              \
    }                                                                                                          \
    TARGET static void linear_codes_##ISA(CODES_ARGS) {                                                        \
        codes_body(MR, FUSED, lanes_##ISA, store_##ISA, codes_edge_##ISA, CODES_PASS);                         \
    }
#ifdef HAVE_VARIANTS
CODES_VARIANT(avx512, TARGET_AVX512, 12, 1)
CODES_VARIANT(avx2, TARGET_AVX2_FMA, 6, 1)
#endif
CODES_VARIANT(baseline, , 2, 0)

void cember_linear_code_rows(CODES_ARGS) {
    if (m <= 0 || n <= 0) return;
    DISPATCH(linear_codes, CODES_PASS)
}

static int32_t forced_route = -1;

int32_t cember_gemm_force_route(int32_t route) {
    return __atomic_exchange_n(&forced_route, route < ROUTE_PACKED || route > ROUTE_BOTH_PACKED ? -1 : route,
                               __ATOMIC_RELAXED);
}

/// cember_sgemm and cember_sgemm_bias_relu: C = alpha·op(A)·op(B) + beta·C, or (bias or relu)
/// C = relu?(op(A)·op(B) + bias) with alpha 1 and beta 0.
static void sgemm(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                  int64_t lda, const float *b, int64_t ldb, float beta, float *c, const float *cin, int64_t ldc,
                  const float *bias, int relu) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == 0.0f) {
        // C = beta·C (or the bias) without reading A or B (and without reading C when beta is 0).
        for (int64_t i = 0; i < m; i++) {
            for (int64_t j = 0; j < n; j++) {
                float x = bias != NULL ? bias[j] : beta == 0.0f ? 0.0f : beta * cin[i * ldc + j];
                c[i * ldc + j] = relu && !(x > 0.0f) ? 0.0f : x;
            }
        }
        return;
    }
    // C_in matters only where beta·C is read.
    if (beta == 0.0f) cin = c;
    // op(A)(i, l) = a[i·ars + l·acs], op(B)(l, j) = b[l·brs + j·bcs].
    int64_t ars = trans_a ? 1 : lda, acs = trans_a ? lda : 1;
    int64_t brs = trans_b ? 1 : ldb, bcs = trans_b ? ldb : 1;
    // A few rows of C (a batch through a layer, op(B) its weight): op(B) is used by at most
    // ceil(m / MR) row tiles, and packing it (reading it cold and writing it again) would cost as
    // much as the product, so it is read in place.
    // With trans_b and few columns of C (a layer's forward product with at most 12 outputs, as a
    // network's head), a packed tile would hold n columns of 16 or 32 lanes; computing Cᵀ fills
    // them with rows instead (4096 × 1 × 64: 53–58 µs instead of 125, a one-off measurement).
    // Below 16 rows the transposed tiles would fill fewer than 16 of their lanes, and op(B) is
    // small or its packing cheap next to the waste: packed (one row through a 64 × 64 layer:
    // about 5 times fewer instructions).
    int route = trans_b && ((m >= MIN_TRANSPOSED_ROWS && m <= SMALL_M) || n <= FEW_COLUMNS) ? ROUTE_TRANSPOSED
                : m > SMALL_M || trans_b                                                    ? ROUTE_PACKED
                                                                                            : ROUTE_B_IN_PLACE;
    int32_t forced = __atomic_load_n(&forced_route, __ATOMIC_RELAXED);
    if (forced == ROUTE_PACKED || (forced == ROUTE_B_IN_PLACE && !trans_b) || forced == ROUTE_TRANSPOSED ||
        forced == ROUTE_BOTH_PACKED)
        route = forced;
    // Cᵀ and heads write C by columns: C_in copied into C first.
    if (cin != c && route == ROUTE_TRANSPOSED) {
        copy_rows(c, cin, m, n, ldc);
        cin = c;
    }
#ifdef HAVE_VARIANTS
    if (route == ROUTE_TRANSPOSED && trans_b && !trans_a && n <= HEAD_COLUMNS && cember_current_isa() == ISA_AVX2) {
        head_avx2(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, relu);
        return;
    }
#endif
    DISPATCH(gemm, route, GEMM_PASS)
}

void cember_sgemm(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                  int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, c, ldc, NULL, 0);
}

void cember_sgemm_from(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                       int64_t lda, const float *b, int64_t ldb, float beta, const float *c_in, float *c, int64_t ldc) {
    sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, c_in, ldc, NULL, 0);
}

void cember_sgemm_bias_relu(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, const float *a,
                            int64_t lda, const float *b, int64_t ldb, const float *bias, int32_t relu, float *c,
                            int64_t ldc) {
    sgemm(trans_a, trans_b, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, c, ldc, bias, relu != 0);
}
