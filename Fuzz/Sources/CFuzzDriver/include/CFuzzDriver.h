#ifndef CFUZZ_DRIVER_H
#define CFUZZ_DRIVER_H

// libFuzzer's driver, called from a Swift `main` (SwiftPM gives every executable its own `main`,
// so libFuzzer's cannot be used). Provided by the runtime that -sanitize=fuzzer links.

#include <stddef.h>
#include <stdint.h>

typedef int (*cfuzz_callback)(const uint8_t *data, size_t size);

int LLVMFuzzerRunDriver(int *argc, char ***argv, cfuzz_callback callback);

#endif
