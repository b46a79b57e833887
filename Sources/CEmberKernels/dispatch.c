// Which instruction-set variant the dispatched kernels run (see simd.h).
#include "CEmberKernels.h"
#include "simd.h"

static int32_t forced_isa = -1;

static int32_t detected_isa(void) {
#ifdef HAVE_VARIANTS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return ISA_AVX512;
    // The AVX2 variants may use FMA (gemm.c): every AVX2 CPU made has it, but a virtual machine can hide it.
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ISA_AVX2;
#endif
    return ISA_BASELINE;
}

int32_t cember_current_isa(void) {
    int32_t forced = __atomic_load_n(&forced_isa, __ATOMIC_RELAXED), detected = detected_isa();
    return forced >= 0 && forced < detected ? forced : detected;
}

int32_t cember_kernels_force_isa(int32_t level) { return __atomic_exchange_n(&forced_isa, level, __ATOMIC_RELAXED); }

int32_t cember_kernels_isa(void) { return cember_current_isa(); }

int32_t cember_cpu_isa(void) { return detected_isa(); }
