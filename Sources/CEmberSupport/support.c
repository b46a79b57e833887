// Small pieces that C does better than Swift: per-thread MXCSR bits and _Thread_local storage.
#include "CEmberSupport.h"
// The C ABI's header: the one place of the error detail's layout and of the version numbers.
#include "../../include/ember.h"

#include <stdlib.h>
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

// The structured detail of the last error (see cember_set_last_error_detail).
enum { DETAIL_FIELDS = 5, DETAIL_SIZE = 1024 };
static _Thread_local char detail_text[DETAIL_FIELDS][DETAIL_SIZE];
static _Thread_local int64_t detail_index = -1;
static _Thread_local int32_t detail_code = 0;

static void copy_field(char *dst, const char *src) {
    if (src == NULL) {
        dst[0] = '\0';
        return;
    }
    size_t n = strlen(src);
    if (n >= DETAIL_SIZE) n = DETAIL_SIZE - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void cember_set_last_error_detail(int32_t code, const char *op, const char *layer, const char *argument,
                                  int64_t index, const char *expected, const char *got) {
    detail_code = code;
    copy_field(detail_text[0], op);
    copy_field(detail_text[1], layer);
    copy_field(detail_text[2], argument);
    copy_field(detail_text[3], expected);
    copy_field(detail_text[4], got);
    detail_index = index;
}

const char *cember_last_error_field(int32_t field) {
    if (field < 0 || field >= DETAIL_FIELDS) return "";
    return detail_text[field];
}

int64_t cember_last_error_index(void) { return detail_index; }

int32_t cember_last_error_code(void) { return detail_code; }

void cember_fill_error_detail(void *out) {
    ember_error_detail *d = (ember_error_detail *)out;
    d->code = detail_code;
    d->message = last_error;
    d->op = detail_text[0];
    d->layer = detail_text[1];
    d->argument = detail_text[2];
    d->index = detail_index;
    d->expected = detail_text[3];
    d->got = detail_text[4];
}

// NOTE: the buffer is never freed: a thread-local destructor could run after the package's shared
// object has been unloaded (docs/architecture.md#linking-the-r-package); it is one allocation per
// thread, reused.
static _Thread_local char *result_text = NULL;
static _Thread_local size_t result_capacity = 0;

const char *cember_set_result_text(const char *text, int64_t length) {
    if (text == NULL || length < 0) length = 0;
    size_t need = (size_t)length + 1;
    if (need > result_capacity) {
        size_t cap = result_capacity ? result_capacity : 256;
        while (cap < need) cap *= 2;
        char *grown = realloc(result_text, cap);
        if (grown == NULL) return NULL;
        result_text = grown;
        result_capacity = cap;
    }
    if (length > 0) memcpy(result_text, text, (size_t)length);
    result_text[length] = '\0';
    return result_text;
}

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

void cember_clear_last_error(void) {
    last_error[0] = '\0';
    for (int i = 0; i < DETAIL_FIELDS; i++) detail_text[i][0] = '\0';
    detail_index = -1;
    detail_code = 0;
}

const char *cember_last_error(void) { return last_error; }

static _Thread_local int32_t grad_disabled = 0;

int32_t cember_grad_enabled(void) { return grad_disabled ? 0 : 1; }

int32_t cember_set_grad_enabled(int32_t enabled) {
    int32_t previous = grad_disabled ? 0 : 1;
    grad_disabled = enabled ? 0 : 1;
    return previous;
}

static int32_t gemm_kernels = -1;

int32_t cember_gemm_kernels(void) { return __atomic_load_n(&gemm_kernels, __ATOMIC_RELAXED); }

void cember_set_gemm_kernels(int32_t kernels) { __atomic_store_n(&gemm_kernels, kernels, __ATOMIC_RELAXED); }

int32_t cember_abi_version(void) { return EMBER_ABI_VERSION; }

const char *cember_engine_version(void) { return EMBER_VERSION; }

// How error messages count (0 or 1), set once by the host; read when a message is written.
static _Atomic int32_t message_index_base = 0;

void cember_set_message_index_base(int32_t base) { message_index_base = base; }

int32_t cember_message_index_base(void) { return message_index_base; }
