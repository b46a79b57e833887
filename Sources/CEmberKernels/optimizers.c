// Fused optimizer updates: one pass over a parameter, no temporaries (PyTorch's formulas; see
// Sources/EmberNN/Optimizers/Optimizer.swift for the reference form).
#include "CEmberKernels.h"
#include "simd.h"

#include <math.h>

CLONES void cember_sgd(float *restrict w, const float *restrict g, float *restrict buf, int64_t n, float lr, float wd,
                       float momentum, float dampening, int32_t nesterov, int32_t first) {
    if (momentum == 0.0f) {
        for (int64_t i = 0; i < n; i++) w[i] -= lr * (g[i] + wd * w[i]);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float d = g[i] + wd * w[i];
        float b = first ? d : momentum * buf[i] + (1.0f - dampening) * d;
        buf[i] = b;
        float step = nesterov ? d + momentum * b : b;
        w[i] -= lr * step;
    }
}

CLONES void cember_adam(float *restrict w, const float *restrict g, float *restrict m, float *restrict v,
                        float *restrict vmax, int64_t n, float step_size, float beta1, float beta2, float eps,
                        float bc2_sqrt, float wd, float decay, int32_t decoupled) {
    const float one_minus_b1 = 1.0f - beta1, one_minus_b2 = 1.0f - beta2;
    // AdamW first decays the weight (PyTorch's param.mul_(1 - lr·wd)), then takes the Adam step
    // without weight decay in the gradient; in the same pass (w·1 is exact for Adam).
    const float scale = decoupled ? decay : 1.0f;
    if (decoupled) wd = 0.0f;
    if (vmax) {
        for (int64_t i = 0; i < n; i++) {
            float wi = w[i] * scale;
            float d = g[i] + wd * wi;
            m[i] += (d - m[i]) * one_minus_b1;  // PyTorch's lerp_
            v[i] = beta2 * v[i] + one_minus_b2 * d * d;
            vmax[i] = vmax[i] > v[i] ? vmax[i] : v[i];
            w[i] = wi - step_size * (m[i] / (sqrtf(vmax[i]) / bc2_sqrt + eps));
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float wi = w[i] * scale;
        float d = g[i] + wd * wi;
        m[i] += (d - m[i]) * one_minus_b1;
        v[i] = beta2 * v[i] + one_minus_b2 * d * d;
        w[i] = wi - step_size * (m[i] / (sqrtf(v[i]) / bc2_sqrt + eps));
    }
}

CLONES void cember_rmsprop(float *restrict w, const float *restrict g, float *restrict sq, float *restrict grad_avg,
                           float *restrict buf, int64_t n, float lr, float alpha, float eps, float wd, float momentum) {
    const float one_minus_alpha = 1.0f - alpha;
    for (int64_t i = 0; i < n; i++) {
        float d = g[i] + wd * w[i];
        sq[i] = alpha * sq[i] + one_minus_alpha * d * d;
        float avg;
        if (grad_avg) {
            grad_avg[i] += (d - grad_avg[i]) * one_minus_alpha;
            avg = sqrtf(sq[i] - grad_avg[i] * grad_avg[i]) + eps;
        } else {
            avg = sqrtf(sq[i]) + eps;
        }
        if (buf) {
            buf[i] = momentum * buf[i] + d / avg;
            w[i] -= lr * buf[i];
        } else {
            w[i] -= lr * (d / avg);
        }
    }
}

CLONES void cember_adagrad(float *restrict w, const float *restrict g, float *restrict sum, int64_t n, float clr,
                           float eps, float wd) {
    for (int64_t i = 0; i < n; i++) {
        float d = g[i] + wd * w[i];
        sum[i] += d * d;
        w[i] -= clr * (d / (sqrtf(sum[i]) + eps));
    }
}
