// Small pieces that C does better than Swift: per-thread MXCSR bits and _Thread_local storage.
#include "CEmberSupport.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define CEMBER_HAVE_MXCSR 1
#endif

enum { FTZ_BIT = 0x8000, DAZ_BIT = 0x0040 };

uint32_t cember_fp_flush_denormals(void) {
#ifdef CEMBER_HAVE_MXCSR
    uint32_t saved = _mm_getcsr();
    _mm_setcsr(saved | FTZ_BIT | DAZ_BIT);
    return saved;
#else
    return 0;
#endif
}

void cember_fp_restore(uint32_t saved) {
#ifdef CEMBER_HAVE_MXCSR
    _mm_setcsr(saved);
#else
    (void)saved;
#endif
}

uint32_t cember_fp_denormal_mode(void) {
#ifdef CEMBER_HAVE_MXCSR
    uint32_t csr = _mm_getcsr();
    return ((csr & FTZ_BIT) ? 1u : 0u) | ((csr & DAZ_BIT) ? 2u : 0u);
#else
    return 0;
#endif
}

static _Thread_local char last_error[4096];

void cember_set_last_error(const char *message) {
    if (message == NULL) {
        last_error[0] = '\0';
        return;
    }
    size_t n = strlen(message);
    if (n >= sizeof(last_error)) n = sizeof(last_error) - 1;
    memcpy(last_error, message, n);
    last_error[n] = '\0';
}

void cember_clear_last_error(void) { last_error[0] = '\0'; }

const char *cember_last_error(void) { return last_error; }

static _Thread_local int32_t grad_disabled = 0;

int32_t cember_grad_enabled(void) { return grad_disabled ? 0 : 1; }

int32_t cember_set_grad_enabled(int32_t enabled) {
    int32_t previous = grad_disabled ? 0 : 1;
    grad_disabled = enabled ? 0 : 1;
    return previous;
}
