// PNG and JPEG files decoded into uint8 planes [C, H, W] (see CEmberImage.h).
//
// libpng and libjpeg report errors by longjmp. Each decoder below calls setjmp itself before it
// calls into its library, so a library error jumps back into the same C function, which frees
// what it allocated and returns a status code: no longjmp ever crosses a Swift frame. Locals that
// change between setjmp and a possible longjmp are volatile.
#include "CEmberImage.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

enum { FORMAT_PNG = 1, FORMAT_JPEG = 2 };

// Writes the formatted reason to the caller's buffer and returns `status`.
static int32_t fail(char *message, int64_t size, int32_t status, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

static int32_t fail(char *message, int64_t size, int32_t status, const char *format, ...) {
    if (message != NULL && size > 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(message, (size_t)size, format, args);
        va_end(args);
    }
    return status;
}

static int32_t fail_errno(char *message, int64_t size, int err, const char *what) {
    switch (err) {
    case ENOENT:
    case ENOTDIR: return fail(message, size, CEMBER_IMAGE_ERR_NOT_FOUND, "does not exist");
    case EACCES:
    case EPERM: return fail(message, size, CEMBER_IMAGE_ERR_UNREADABLE, "cannot be %s (permission denied)", what);
    case EISDIR: return fail(message, size, CEMBER_IMAGE_ERR_UNREADABLE, "is a directory, not an image file");
    case ENOMEM: return fail(message, size, CEMBER_IMAGE_ERR_MEMORY, "cannot be %s (out of memory)", what);
    default: return fail(message, size, CEMBER_IMAGE_ERR_UNREADABLE, "cannot be %s (system error %d)", what, err);
    }
}

static uint32_t big_endian32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

// Opens `path`, checks that it is a non-empty regular file and tells PNG from JPEG by the first
// bytes; on success *file is positioned at the start.
static int32_t open_image(const char *path, FILE **file, int *format, char *message, int64_t size) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return fail_errno(message, size, errno, "opened");
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int err = errno;
        fclose(f);
        return fail_errno(message, size, err, "read");
    }
    if (S_ISDIR(st.st_mode)) {
        fclose(f);
        return fail(message, size, CEMBER_IMAGE_ERR_UNREADABLE, "is a directory, not an image file");
    }
    if (!S_ISREG(st.st_mode)) {
        fclose(f);
        return fail(message, size, CEMBER_IMAGE_ERR_UNREADABLE, "is not a regular file");
    }
    if (st.st_size == 0) {
        fclose(f);
        return fail(message, size, CEMBER_IMAGE_ERR_EMPTY, "is empty (0 bytes)");
    }
    unsigned char head[24] = {0};
    size_t got = fread(head, 1, sizeof head, f);
    if (ferror(f)) {
        int err = errno;
        fclose(f);
        return fail_errno(message, size, err, "read");
    }
    rewind(f);
    if (got >= 8 && png_sig_cmp(head, 0, 8) == 0) {
        // A PNG starts with its IHDR chunk: width and height are bytes 16-23. libpng refuses a
        // zero size as "Invalid IHDR data"; say what it is.
        if (got == sizeof head && memcmp(head + 12, "IHDR", 4) == 0 &&
            (big_endian32(head + 16) == 0 || big_endian32(head + 20) == 0)) {
            fclose(f);
            return fail(message, size, CEMBER_IMAGE_ERR_EMPTY, "is a PNG image of zero size (%u × %u pixels)",
                        big_endian32(head + 20), big_endian32(head + 16));
        }
        *format = FORMAT_PNG;
    } else if (got >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF) {
        *format = FORMAT_JPEG;
    } else {
        fclose(f);
        const char *other = NULL;
        if (got >= 4 && (memcmp(head, "GIF8", 4) == 0)) other = "GIF";
        else if (got >= 2 && memcmp(head, "BM", 2) == 0) other = "BMP";
        else if (got >= 12 && memcmp(head, "RIFF", 4) == 0 && memcmp(head + 8, "WEBP", 4) == 0) other = "WebP";
        else if (got >= 4 && (memcmp(head, "II*\0", 4) == 0 || memcmp(head, "MM\0*", 4) == 0)) other = "TIFF";
        if (other != NULL) {
            return fail(message, size, CEMBER_IMAGE_ERR_UNSUPPORTED, "is a %s file; only PNG and JPEG files are supported", other);
        }
        char bytes[3 * 4 + 1] = "";
        int used = 0;
        for (size_t i = 0; i < got && i < 4; i++) used += snprintf(bytes + used, sizeof bytes - (size_t)used, "%s%02x", i ? " " : "", head[i]);
        return fail(message, size, CEMBER_IMAGE_ERR_UNSUPPORTED,
                    "is not a PNG or JPEG file (it starts with the bytes %s; the format is told by the content, not the name)", bytes);
    }
    *file = f;
    return CEMBER_IMAGE_OK;
}

static int32_t check_pixels(uint64_t height, uint64_t width, char *message, int64_t size) {
    if (height == 0 || width == 0) {
        return fail(message, size, CEMBER_IMAGE_ERR_EMPTY, "is an image of zero size (%llu × %llu pixels)",
                    (unsigned long long)height, (unsigned long long)width);
    }
    if (height * width > (uint64_t)CEMBER_IMAGE_MAX_PIXELS) {
        return fail(message, size, CEMBER_IMAGE_ERR_TOO_LARGE,
                    "is %llu × %llu = %llu pixels; at most %lld (2^28) pixels are decoded",
                    (unsigned long long)height, (unsigned long long)width,
                    (unsigned long long)(height * width), (long long)CEMBER_IMAGE_MAX_PIXELS);
    }
    return CEMBER_IMAGE_OK;
}

// Interleaved samples (k per pixel, k 1 or 3) into `channels` planes.
static void to_planes(const unsigned char *src, int k, int64_t pixels, int channels, uint8_t *out) {
    if (k == channels) {
        for (int c = 0; c < k; c++) {
            uint8_t *plane = out + c * pixels;
            for (int64_t p = 0; p < pixels; p++) plane[p] = src[p * k + c];
        }
    } else if (k == 1) {
        for (int c = 0; c < channels; c++) memcpy(out + c * pixels, src, (size_t)pixels);
    } else {
        // ITU-R 601-2 luma as PIL's convert("L") rounds it (L24 in Pillow's Convert.c).
        for (int64_t p = 0; p < pixels; p++) {
            const unsigned char *rgb = src + p * 3;
            out[p] = (uint8_t)((rgb[0] * 19595u + rgb[1] * 38470u + rgb[2] * 7471u + 0x8000u) >> 16);
        }
    }
}

// ---- PNG ---------------------------------------------------------------------------------------

typedef struct {
    char text[160];
} png_failure;

static void png_on_error(png_structp png, png_const_charp text) {
    png_failure *failure = (png_failure *)png_get_error_ptr(png);
    if (failure != NULL) snprintf(failure->text, sizeof failure->text, "%s", text != NULL ? text : "unknown error");
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

// Reads the header and, when `out` is not NULL, the pixels. *k receives the channel count the
// file holds (1, 2, 3, 4).
static int32_t decode_png(FILE *f, int32_t channels, uint8_t *out, int64_t capacity, int32_t *k,
                          int64_t *height, int64_t *width, char *message, int64_t size) {
    png_failure failure = {""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &failure, png_on_error, png_on_warning);
    if (png == NULL) return fail(message, size, CEMBER_IMAGE_ERR_MEMORY, "cannot be decoded (out of memory)");
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        return fail(message, size, CEMBER_IMAGE_ERR_MEMORY, "cannot be decoded (out of memory)");
    }
    unsigned char *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    volatile int32_t status = CEMBER_IMAGE_OK;
    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        if (status != CEMBER_IMAGE_OK) return status;
        return fail(message, size, CEMBER_IMAGE_ERR_CORRUPT, "is a truncated or corrupt PNG file (libpng: %s)", failure.text);
    }
    png_init_io(png, f);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    switch (color) {
    case PNG_COLOR_TYPE_GRAY: *k = 1; break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: *k = 2; break;
    case PNG_COLOR_TYPE_RGB_ALPHA: *k = 4; break;
    default: *k = 3; break;  // RGB, palette
    }
    *height = (int64_t)h;
    *width = (int64_t)w;
    int32_t checked = check_pixels(h, w, message, size);
    if (checked != CEMBER_IMAGE_OK || out == NULL) {
        png_destroy_read_struct(&png, &info, NULL);
        // Info reports a large image; decoding refuses it.
        return out == NULL && checked == CEMBER_IMAGE_ERR_TOO_LARGE ? CEMBER_IMAGE_OK : checked;
    }
    if ((int64_t)channels * (int64_t)h * (int64_t)w > capacity) {
        png_destroy_read_struct(&png, &info, NULL);
        return fail(message, size, CEMBER_IMAGE_ERR_CAPACITY, "needs %lld bytes; the buffer holds %lld",
                    (long long)channels * (long long)h * (long long)w, (long long)capacity);
    }
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_strip_16(png);  // the high byte, as PIL's 16-bit unpackers
    // Alpha is dropped, also the alpha a palette's transparency (tRNS) expands to.
    if ((color & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS)) png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int samples = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if ((samples != 1 && samples != 3) || rowbytes != (size_t)w * (size_t)samples) {
        status = fail(message, size, CEMBER_IMAGE_ERR_CORRUPT, "is a PNG file of an unexpected layout (%d samples per pixel)", samples);
        png_longjmp(png, 1);
    }
    pixels = malloc((size_t)h * rowbytes);
    rows = malloc((size_t)h * sizeof(png_bytep));
    if (pixels == NULL || rows == NULL) {
        status = fail(message, size, CEMBER_IMAGE_ERR_MEMORY, "cannot be decoded (out of memory for %u × %u pixels)", h, w);
        png_longjmp(png, 1);
    }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = pixels + (size_t)y * rowbytes;
    png_read_image(png, rows);
    to_planes(pixels, samples, (int64_t)h * (int64_t)w, channels, out);
    free(pixels);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return CEMBER_IMAGE_OK;
}

// ---- JPEG --------------------------------------------------------------------------------------

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    int truncated;  // libjpeg warned that the data ended early (it then pads with gray)
} jpeg_failure;

static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_failure *failure = (jpeg_failure *)cinfo->err;
    longjmp(failure->jump, 1);
}

static void jpeg_on_message(j_common_ptr cinfo, int level) {
    jpeg_failure *failure = (jpeg_failure *)cinfo->err;
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) failure->truncated = 1;
}

static int32_t decode_jpeg(FILE *f, int32_t channels, uint8_t *out, int64_t capacity, int32_t *k,
                           int64_t *height, int64_t *width, char *message, int64_t size) {
    struct jpeg_decompress_struct cinfo;
    jpeg_failure failure;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&failure.base);
    failure.base.error_exit = jpeg_on_error;
    failure.base.emit_message = jpeg_on_message;
    failure.truncated = 0;
    unsigned char *volatile pixels = NULL;
    if (setjmp(failure.jump)) {
        char text[JMSG_LENGTH_MAX];
        (*cinfo.err->format_message)((j_common_ptr)&cinfo, text);
        int code = failure.base.msg_code;
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        if (code == JERR_EMPTY_IMAGE) return fail(message, size, CEMBER_IMAGE_ERR_EMPTY, "is a JPEG image of zero size (libjpeg: %s)", text);
        if (code == JERR_OUT_OF_MEMORY) return fail(message, size, CEMBER_IMAGE_ERR_MEMORY, "cannot be decoded (libjpeg: %s)", text);
        if (code == JERR_BAD_PRECISION) {
            return fail(message, size, CEMBER_IMAGE_ERR_UNSUPPORTED, "is a JPEG of a precision other than 8 bits (libjpeg: %s)", text);
        }
        return fail(message, size, CEMBER_IMAGE_ERR_CORRUPT, "is a truncated or corrupt JPEG file (libjpeg: %s)", text);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    int32_t status = CEMBER_IMAGE_OK;
    if (failure.truncated) {
        status = fail(message, size, CEMBER_IMAGE_ERR_CORRUPT, "is a truncated JPEG file (libjpeg: the data ends inside the header)");
    } else if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        status = fail(message, size, CEMBER_IMAGE_ERR_UNSUPPORTED,
                      "is a %s JPEG; only grayscale and RGB (YCbCr) JPEGs are supported (convert it to RGB first)",
                      cinfo.jpeg_color_space == JCS_CMYK ? "CMYK" : "YCCK (CMYK)");
    } else if (cinfo.jpeg_color_space == JCS_GRAYSCALE) {
        *k = 1;
        cinfo.out_color_space = JCS_GRAYSCALE;
    } else if (cinfo.jpeg_color_space == JCS_YCbCr || cinfo.jpeg_color_space == JCS_RGB) {
        *k = 3;
        cinfo.out_color_space = JCS_RGB;
    } else {
        status = fail(message, size, CEMBER_IMAGE_ERR_UNSUPPORTED,
                      "is a JPEG of %d components in an unknown colour space; only grayscale and RGB (YCbCr) JPEGs are supported",
                      cinfo.num_components);
    }
    if (status == CEMBER_IMAGE_OK) {
        *height = (int64_t)cinfo.image_height;
        *width = (int64_t)cinfo.image_width;
        status = check_pixels(cinfo.image_height, cinfo.image_width, message, size);
        if (out == NULL) {
            jpeg_destroy_decompress(&cinfo);
            return status == CEMBER_IMAGE_ERR_TOO_LARGE ? CEMBER_IMAGE_OK : status;
        }
    }
    if (status == CEMBER_IMAGE_OK && (int64_t)channels * *height * *width > capacity) {
        status = fail(message, size, CEMBER_IMAGE_ERR_CAPACITY, "needs %lld bytes; the buffer holds %lld",
                      (long long)channels * (long long)*height * (long long)*width, (long long)capacity);
    }
    if (status != CEMBER_IMAGE_OK) {
        jpeg_destroy_decompress(&cinfo);
        return status;
    }
    jpeg_start_decompress(&cinfo);
    int samples = cinfo.output_components;
    if (samples != *k || cinfo.output_width != cinfo.image_width || cinfo.output_height != cinfo.image_height) {
        jpeg_destroy_decompress(&cinfo);
        return fail(message, size, CEMBER_IMAGE_ERR_CORRUPT, "is a JPEG file of an unexpected layout (%d components)", samples);
    }
    size_t rowbytes = (size_t)cinfo.output_width * (size_t)samples;
    pixels = malloc((size_t)cinfo.output_height * rowbytes);
    if (pixels == NULL) {
        jpeg_destroy_decompress(&cinfo);
        return fail(message, size, CEMBER_IMAGE_ERR_MEMORY, "cannot be decoded (out of memory for %u × %u pixels)",
                    cinfo.output_height, cinfo.output_width);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + (size_t)cinfo.output_scanline * rowbytes;
        if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) break;
    }
    if (failure.truncated || cinfo.output_scanline < cinfo.output_height) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        return fail(message, size, CEMBER_IMAGE_ERR_CORRUPT, "is a truncated JPEG file (libjpeg: Premature end of JPEG file)");
    }
    jpeg_finish_decompress(&cinfo);
    to_planes(pixels, samples, *height * *width, channels, out);
    jpeg_destroy_decompress(&cinfo);
    free(pixels);
    return CEMBER_IMAGE_OK;
}

// ---- Entry points ------------------------------------------------------------------------------

static int32_t run(const char *path, int32_t channels, uint8_t *out, int64_t capacity, int32_t *k,
                   int64_t *height, int64_t *width, char *message, int64_t size) {
    if (message != NULL && size > 0) message[0] = '\0';
    if (path == NULL) return fail(message, size, CEMBER_IMAGE_ERR_ARGUMENT, "path is NULL");
    FILE *f = NULL;
    int format = 0;
    int32_t status = open_image(path, &f, &format, message, size);
    if (status != CEMBER_IMAGE_OK) return status;
    status = format == FORMAT_PNG ? decode_png(f, channels, out, capacity, k, height, width, message, size)
                                  : decode_jpeg(f, channels, out, capacity, k, height, width, message, size);
    fclose(f);
    return status;
}

int32_t cember_image_info(const char *path, int32_t *channels, int64_t *height, int64_t *width,
                          char *message, int64_t message_size) {
    if (channels == NULL || height == NULL || width == NULL) {
        return fail(message, message_size, CEMBER_IMAGE_ERR_ARGUMENT, "an out-parameter is NULL");
    }
    int32_t k = 0;
    int64_t h = 0, w = 0;
    int32_t status = run(path, 1, NULL, 0, &k, &h, &w, message, message_size);
    if (status == CEMBER_IMAGE_OK) {
        *channels = k;
        *height = h;
        *width = w;
    }
    return status;
}

int32_t cember_image_decode(const char *path, int32_t channels, uint8_t *out, int64_t out_capacity,
                            int64_t *height, int64_t *width, char *message, int64_t message_size) {
    if (channels != 1 && channels != 3) {
        return fail(message, message_size, CEMBER_IMAGE_ERR_ARGUMENT, "channels must be 1 or 3, got %d", channels);
    }
    if (out == NULL || out_capacity < 0 || height == NULL || width == NULL) {
        return fail(message, message_size, CEMBER_IMAGE_ERR_ARGUMENT, "the output buffer or an out-parameter is NULL");
    }
    int32_t k = 0;
    return run(path, channels, out, out_capacity, &k, height, width, message, message_size);
}
