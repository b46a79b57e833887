#ifndef CEMBER_KERNELS_H
#define CEMBER_KERNELS_H

// Hot loops in C: `restrict` pointers let the compiler vectorise them, and each kernel is built
// for AVX-512, AVX2 and baseline x86-64 with the best picked at load time (target_clones).
// Floating-point contraction is off, so every variant gives bit-identical results.

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

#ifdef __cplusplus
}
#endif

#endif
