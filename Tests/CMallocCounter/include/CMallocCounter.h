#ifndef CMALLOC_COUNTER_H
#define CMALLOC_COUNTER_H
// Counts heap allocations made by the calling thread, for the allocation-free training step test.
// The test executable defines malloc and friends (forwarding to glibc's __libc_* entry points), so
// calls from every shared library, the Swift runtime included, are seen.
#ifdef __cplusplus
extern "C" {
#endif
/// 1 when allocations are counted; 0 in sanitizer builds, whose allocator must see every call
/// (then start does nothing and stop returns -1).
int cmalloc_counter_available(void);
/// Starts counting this thread's allocations from zero.
void cmalloc_counter_start(void);
/// Stops counting and returns the number of allocations since the start.
long cmalloc_counter_stop(void);
#ifdef __cplusplus
}
#endif
#endif
