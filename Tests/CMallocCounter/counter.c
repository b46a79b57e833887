// See CMallocCounter.h. Only the counting thread pays for a thread-local check.
#include "CMallocCounter.h"

#include <errno.h>
#include <stddef.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void __libc_free(void *p);

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CMALLOC_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CMALLOC_SANITIZED 1
#endif
#endif

// Under AddressSanitizer or ThreadSanitizer (`make sanitize`) the sanitizer's own allocator must
// see every allocation and free: the counter defines nothing and reports itself unavailable.
#ifdef CMALLOC_SANITIZED
void cmalloc_counter_start(void) {}
long cmalloc_counter_stop(void) { return -1; }
int cmalloc_counter_available(void) { return 0; }
#else
int cmalloc_counter_available(void) { return 1; }

static _Thread_local int counting = 0;
static _Thread_local long count = 0;

void cmalloc_counter_start(void) {
    count = 0;
    counting = 1;
}

long cmalloc_counter_stop(void) {
    counting = 0;
    return count;
}

void *malloc(size_t size) {
    if (counting) count++;
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size) {
    if (counting) count++;
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size) {
    if (counting) count++;
    return __libc_realloc(p, size);
}

void free(void *p) { __libc_free(p); }

void *memalign(size_t alignment, size_t size) {
    if (counting) count++;
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    if (counting) count++;
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    if (counting) count++;
    void *p = __libc_memalign(alignment, size);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}
#endif
