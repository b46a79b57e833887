#ifndef CEMBER_IMAGE_H
#define CEMBER_IMAGE_H

// Image files decoded with the system's libpng and libjpeg(-turbo) into uint8 planes
// [channels, height, width]. The format is told by the file's first bytes, not by its name.
// Errors come back as a status code plus a message in a caller buffer (the reason only; the
// caller names the file): libpng's and libjpeg's setjmp/longjmp error handling never leaves
// image.c, so no longjmp crosses a Swift frame.

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Status codes of the image functions.
enum {
    CEMBER_IMAGE_OK = 0,
    /// NULL or out-of-range argument (channels not 1 or 3, a negative capacity).
    CEMBER_IMAGE_ERR_ARGUMENT = 1,
    /// No file at the path.
    CEMBER_IMAGE_ERR_NOT_FOUND = 2,
    /// The file exists but cannot be read (permission, a directory, an I/O error).
    CEMBER_IMAGE_ERR_UNREADABLE = 3,
    /// Truncated or malformed PNG or JPEG data.
    CEMBER_IMAGE_ERR_CORRUPT = 4,
    /// Neither PNG nor JPEG, or a JPEG colour space other than grayscale, RGB and YCbCr (CMYK, YCCK).
    CEMBER_IMAGE_ERR_UNSUPPORTED = 5,
    /// A file of zero bytes, or an image of zero width or height.
    CEMBER_IMAGE_ERR_EMPTY = 6,
    /// More than CEMBER_IMAGE_MAX_PIXELS pixels (refused before any pixel memory is allocated).
    CEMBER_IMAGE_ERR_TOO_LARGE = 7,
    /// The output buffer is smaller than channels × height × width (*height and *width are set).
    CEMBER_IMAGE_ERR_CAPACITY = 8,
    /// Out of memory.
    CEMBER_IMAGE_ERR_MEMORY = 9,
};

/// The largest image decoded, in pixels (2^28: 768 MiB of RGB bytes).
#define CEMBER_IMAGE_MAX_PIXELS ((int64_t)1 << 28)

/// Reads only the header of the PNG or JPEG file at `path`: its channels (1 gray, 2 gray + alpha,
/// 3 colour: RGB, palette or YCbCr, 4 RGBA), height and width. Decodes no pixels; an image beyond
/// CEMBER_IMAGE_MAX_PIXELS is reported, not refused. On failure writes the reason (NUL-terminated,
/// truncated to `message_size`) to `message` and leaves the out-parameters alone.
int32_t cember_image_info(const char *path, int32_t *channels, int64_t *height, int64_t *width,
                          char *message, int64_t message_size);

/// Decodes the PNG or JPEG file at `path` into `out` as `channels` (1 or 3) planes of height ×
/// width bytes, row-major ([C, H, W]). Gray is replicated to 3 channels; colour becomes gray by
/// ITU-R 601-2 luma with PIL's rounding ((19595 R + 38470 G + 7471 B + 32768) >> 16); alpha is
/// dropped; 16-bit PNG samples keep their high byte; palettes are expanded. *height and *width
/// receive the image's size once its header is read, also when `out_capacity` (bytes) is too
/// small (CEMBER_IMAGE_ERR_CAPACITY: nothing decoded, call again with a larger buffer).
int32_t cember_image_decode(const char *path, int32_t channels, uint8_t *out, int64_t out_capacity,
                            int64_t *height, int64_t *width, char *message, int64_t message_size);

#ifdef __cplusplus
}
#endif

#endif
