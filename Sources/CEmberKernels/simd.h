// What the kernels of this target share (a private header, not part of the module's API): the
// logical 16-float vector, the instruction-set variants and their dispatch, and row copies.
//
// Every variant of a kernel runs the same arithmetic on `v16` values (the compiler splits them
// into two AVX2 or four SSE registers), so the variants give the same bits; they differ in register
// tiles and in masked loads and stores for row ends.
#ifndef CEMBER_KERNELS_SIMD_H
#define CEMBER_KERNELS_SIMD_H

#include <stdint.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF
// v16 values only pass between always-inline helpers, so no call ever uses the 512-bit ABI.
#pragma clang diagnostic ignored "-Wpsabi"

typedef float v16 __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));

#define INLINE static inline __attribute__((always_inline))

INLINE v16 vload(const float *p) {
    v16 v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

INLINE void vstore(float *p, v16 v) { __builtin_memcpy(p, &v, sizeof v); }

INLINE v16 vsplat(float x) { return (v16){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }

/// The first `n` (< 16) floats at `p`, zeros after them.
INLINE v16 vload_partial(const float *p, int64_t n) {
    float t[16] = {0};
    for (int64_t i = 0; i < n; i++) t[i] = p[i];
    return vload(t);
}

/// Stores the first `n` (< 16) lanes of `v` at `p`.
INLINE void vstore_partial(float *p, v16 v, int64_t n) {
    float t[16];
    vstore(t, v);
    for (int64_t i = 0; i < n; i++) p[i] = t[i];
}

// MARK: Instruction-set variants

enum { ISA_BASELINE = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 };

/// The variant the dispatched kernels run (the CPU's best, or lower when a test caps it).
int32_t cember_current_isa(void);

#if defined(__x86_64__) && defined(__clang__)
#include <immintrin.h>
#define HAVE_VARIANTS 1
#define TARGET_AVX512 __attribute__((target("avx512f")))
#define TARGET_AVX2 __attribute__((target("avx2")))
#define TARGET_AVX2_FMA __attribute__((target("avx2,fma")))
// Runs the variant of kernel `name` (name##_avx512, _avx2, _baseline) for the current instruction set.
#define DISPATCH(name, ...)                                     \
    switch (cember_current_isa()) {                             \
        case ISA_AVX512: name##_avx512(__VA_ARGS__); break;     \
        case ISA_AVX2: name##_avx2(__VA_ARGS__); break;         \
        default: name##_baseline(__VA_ARGS__); break;           \
    }
// Loops whose variants differ only in vector width (elementwise, so bit-identical): the compiler
// builds one per instruction set and the loader picks (target_clones).
#if defined(__has_feature) && __has_feature(thread_sanitizer)
// ThreadSanitizer (`make sanitize-threads`): clang instruments the ifunc resolvers it generates for
// target_clones, and the loader runs them before the TSan runtime is initialised (a crash at
// start-up). That build runs the default variant; the AddressSanitizer build runs all of them.
#define CLONES
#else
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#else
#define DISPATCH(name, ...) name##_baseline(__VA_ARGS__);
#define CLONES
#endif

// MARK: Lanes of a row
//
// Rows in im2col and col2im are short (10–28 floats) and start or end anywhere: a kernel body
// reads them with `lanes_fn`, a masked load that touches no memory outside the given lanes, and
// writes whole vectors where it may (the next write covers what spills over) or `store_fn` where
// it must not. Bodies take these as function-pointer arguments: once a body is inlined into a
// variant, the call is direct and inlined too.

/// The lanes of the 16 floats at p whose bit is set in `bits`, zeros in the others; reads only those lanes.
typedef v16 (*lanes_fn)(const float *p, uint32_t bits);
/// Stores the lanes of v whose bit is set in `bits` at p; writes nothing else.
typedef void (*store_fn)(float *p, v16 v, uint32_t bits);

/// Bits lo..<hi of 16 (clipped to 0..<16).
INLINE uint32_t lane_bits(int64_t lo, int64_t hi) {
    lo = lo < 0 ? 0 : lo;
    hi = hi > 16 ? 16 : hi;
    return hi <= lo ? 0 : ((1u << hi) - 1) & ~((1u << lo) - 1);
}

static inline v16 lanes_baseline(const float *p, uint32_t bits) {
    float t[16] = {0};
    for (int i = 0; i < 16; i++) {
        if (bits >> i & 1) t[i] = p[i];
    }
    return vload(t);
}
static inline void store_baseline(float *p, v16 v, uint32_t bits) {
    for (int i = 0; i < 16; i++) {
        if (bits >> i & 1) p[i] = v[i];
    }
}

#ifdef HAVE_VARIANTS
TARGET_AVX512 static inline v16 lanes_avx512(const float *p, uint32_t bits) {
    return (v16)_mm512_maskz_loadu_ps((__mmask16)bits, p);
}
TARGET_AVX512 static inline void store_avx512(float *p, v16 v, uint32_t bits) {
    _mm512_mask_storeu_ps(p, (__mmask16)bits, (__m512)v);
}
TARGET_AVX2 static inline __m256i mask256(uint32_t bits) {
    const __m256i lane = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)bits), lane), lane);
}
TARGET_AVX2 static inline v16 lanes_avx2(const float *p, uint32_t bits) {
    if (bits == 0xffff) return vload(p);
    typedef float v8 __attribute__((vector_size(32)));
    v8 a = (v8)_mm256_maskload_ps(p, mask256(bits & 0xff)), b = (v8)_mm256_maskload_ps(p + 8, mask256(bits >> 8));
    return __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
/// The first `count` (0...8) lanes of v at p, through plain stores of 4, 2 and 1 floats.
TARGET_AVX2 static inline void store_prefix8(float *p, __m256 v, int count) {
    if (count == 8) {
        _mm256_storeu_ps(p, v);
        return;
    }
    __m128 part = _mm256_castps256_ps128(v);
    if (count >= 4) {
        _mm_storeu_ps(p, part);
        part = _mm256_extractf128_ps(v, 1);
        p += 4;
        count -= 4;
    }
    if (count >= 2) {
        _mm_storel_pi((__m64 *)(void *)p, part);
        part = _mm_movehl_ps(part, part);
        p += 2;
        count -= 2;
    }
    if (count == 1) _mm_store_ss(p, part);
}
/// Lanes that start at lane 0 (the row ends of the kernels: lane_bits(0, n)) are stored with plain
/// stores: AMD's Zen cores run a masked store (vmaskmovps) as a long microcoded sequence (on a
/// Zen 3, 58 × 24 · 24 × 58 through gemm's transposed tiles, whose rows end after 6 lanes: 7.4 µs
/// with masked stores, 5.3 without; a one-off C micro-benchmark).
TARGET_AVX2 static inline void store_avx2(float *p, v16 v, uint32_t bits) {
    typedef float v8 __attribute__((vector_size(32)));
    v8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7), b = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    if ((bits & (bits + 1)) == 0) {
        int count = __builtin_popcount(bits);
        store_prefix8(p, (__m256)a, count < 8 ? count : 8);
        if (count > 8) store_prefix8(p + 8, (__m256)b, count - 8);
        return;
    }
    _mm256_maskstore_ps(p, mask256(bits & 0xff), (__m256)a);
    _mm256_maskstore_ps(p + 8, mask256(bits >> 8), (__m256)b);
}
#endif

// MARK: Gathers

/// The 16 floats base[idx[i]] for the lanes i set in `bits`, zeros in the others; reads only those.
typedef v16 (*gather_fn)(const float *base, const int32_t *idx, uint32_t bits);

static inline v16 gather_baseline(const float *base, const int32_t *idx, uint32_t bits) {
    float t[16] = {0};
    for (int i = 0; i < 16; i++) {
        if (bits >> i & 1) t[i] = base[idx[i]];
    }
    return vload(t);
}

#ifdef HAVE_VARIANTS
TARGET_AVX512 static inline v16 gather_avx512(const float *base, const int32_t *idx, uint32_t bits) {
    return (v16)_mm512_mask_i32gather_ps(_mm512_setzero_ps(), (__mmask16)bits, _mm512_loadu_si512(idx), base, 4);
}
TARGET_AVX2 static inline v16 gather_avx2(const float *base, const int32_t *idx, uint32_t bits) {
    typedef float v8 __attribute__((vector_size(32)));
    const __m256i lane = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    __m256 lo = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)(bits & 0xff)), lane), lane));
    __m256 hi = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)(bits >> 8)), lane), lane));
    v8 a = (v8)_mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, _mm256_loadu_si256((const __m256i *)idx), lo, 4);
    v8 b = (v8)_mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, _mm256_loadu_si256((const __m256i *)(idx + 8)), hi, 4);
    return __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
#endif

#endif
