#!/usr/bin/env python3
"""Small PNG and JPEG files and the pixels PIL decodes from them, for the engine's image decoder
(CEmberImage over libpng and libjpeg-turbo; `ImageFileTests`, the C ABI tests).

Writes
    Tests/EmberNNTests/Fixtures/images/*      the files (7 x 5 pixels, a few hundred bytes each)
    Tests/EmberNNTests/Fixtures/images.json   per decodable file: its channels, height, width and
                                              the expected bytes [C, H, W] as 3 channels ("rgb")
                                              and as 1 ("gray"); torchvision's to_tensor of one

Expected values:
- PNG: PIL's decoded pixels, exact. Gray to RGB replicates; colour to gray is PIL's
  convert("L") (ITU-R 601-2 luma, (19595 R + 38470 G + 7471 B + 32768) >> 16); alpha is dropped.
- 16-bit PNG: the high byte of each sample. PIL decodes 16-bit RGB that way itself (its RGB;16B
  unpacker); for 16-bit gray PIL has no 8-bit decoding (mode I;16, whose convert("L") clips at
  255), so the generator takes the high byte of the raw samples, as libpng's png_set_strip_16.
- Interlaced (Adam7) and 16-bit RGB PNGs are written by the small encoder below (PIL writes
  neither); PIL reads them back and the script checks it sees the pixels that were written.
- JPEG: PIL's decoded pixels (libjpeg-turbo bundled with Pillow). The engine links Debian's
  libjpeg-turbo, possibly another version built with other SIMD code: the IDCT and the chroma
  upsampling may round differently, so the tests allow a difference of a few levels.

Also files the decoder must refuse, each with its own error: a CMYK JPEG, a truncated PNG, a JPEG
truncated in its pixel data and one in its header, a zero-byte file, a text file named .png, a GIF
named .jpg, a PNG and a JPEG of zero size, and a PNG header claiming 20000 x 20000 pixels (beyond
the 2^28 limit; 16 bytes of pixel data).

Deterministic: re-running gives identical files (fixed pixel values, no timestamps).

    python3 tools/golden/generate_images.py
"""

import io
import os
import struct
import zlib

import numpy as np
import torch
from PIL import Image

from golden_common import L, ROOT, header, import_torchvision, write_json

FIXTURES = os.path.join(ROOT, "Tests", "EmberNNTests", "Fixtures")
IMAGES = os.path.join(FIXTURES, "images")
H, W = 5, 7


def pattern(channels, maximum=255, seed=0):
    """Fixed pixel values [H, W, channels] that use the whole range."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, maximum + 1, size=(H, W, channels), dtype=np.int64)


def smooth(channels, seed=0):
    """A smooth image (JPEG keeps it close), [H, W, channels] uint8."""
    y, x = np.mgrid[0:H, 0:W]
    planes = [(40 + 25 * x + 15 * y + 30 * c + seed) % 256 for c in range(channels)]
    return np.stack(planes, axis=-1).astype(np.uint8)


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(samples, color_type, depth, interlaced=False, width=None, height=None, idat=True):
    """A PNG of `samples` [H, W, channels] (ints < 2^depth), filter 0, optionally Adam7."""
    h, w = samples.shape[0], samples.shape[1]
    width = w if width is None else width
    height = h if height is None else height
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 1 if interlaced else 0)
    dtype = ">u2" if depth == 16 else "u1"

    def scanlines(sub):
        return b"".join(b"\x00" + sub[r].astype(dtype).tobytes() for r in range(sub.shape[0]))

    if interlaced:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        raw = b"".join(scanlines(samples[y0::dy, x0::dx]) for x0, y0, dx, dy in passes
                       if samples[y0::dy, x0::dx].size > 0)
    else:
        raw = scanlines(samples)
    body = chunk(b"IHDR", ihdr)
    if idat:
        body += chunk(b"IDAT", zlib.compress(raw, 9))
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b"")


def save(name, data):
    with open(os.path.join(IMAGES, name), "wb") as f:
        f.write(data)


def pil_bytes(im, **options):
    buffer = io.BytesIO()
    im.save(buffer, **options)
    return buffer.getvalue()


def planes(array):
    """[H, W, C] → flat [C, H, W] list of ints."""
    return np.ascontiguousarray(np.asarray(array, dtype=np.int64).reshape(H, W, -1).transpose(2, 0, 1)).ravel().tolist()


def main():
    os.makedirs(IMAGES, exist_ok=True)
    cases = {}

    def record(name, channels, data, rgb, gray, jpeg=False):
        save(name, data)
        cases[name] = {"channels": channels, "height": H, "width": W, "jpeg": jpeg,
                       "rgb": planes(rgb), "gray": planes(gray)}

    def from_pil(name, im, channels, **options):
        """Saves `im` with PIL and records what PIL decodes from the file."""
        data = pil_bytes(im, **options)
        back = Image.open(io.BytesIO(data))
        back.load()
        record(name, channels, data, back.convert("RGB"), back.convert("L"), jpeg=options.get("format") == "JPEG")
        return back

    gray = Image.fromarray(pattern(1, seed=1)[:, :, 0].astype(np.uint8), "L")
    rgb = Image.fromarray(pattern(3, seed=2).astype(np.uint8), "RGB")
    rgba = Image.fromarray(pattern(4, seed=3).astype(np.uint8), "RGBA")
    la = Image.fromarray(pattern(2, seed=4).astype(np.uint8), "LA")
    from_pil("gray.png", gray, 1, format="PNG")
    from_pil("gray_alpha.png", la, 2, format="PNG")
    from_pil("rgb.png", rgb, 3, format="PNG")
    from_pil("rgba.png", rgba, 4, format="PNG")
    from_pil("palette.png", rgb.quantize(colors=32, dither=Image.Dither.NONE), 3, format="PNG")
    assert open_png_depth(os.path.join(IMAGES, "palette.png")) == 8
    palette = rgb.quantize(colors=12, dither=Image.Dither.NONE)
    from_pil("palette4.png", palette, 3, format="PNG")
    assert open_png_depth(os.path.join(IMAGES, "palette4.png")) == 4, "PIL packs 12 colours in 4 bits"
    # A transparent palette entry (tRNS) is dropped like alpha.
    from_pil("palette_trns.png", palette, 3, format="PNG", transparency=0)
    bilevel = Image.fromarray(pattern(1, maximum=1, seed=5)[:, :, 0].astype(bool))
    from_pil("gray1.png", bilevel, 1, format="PNG")

    # 16-bit gray and RGB: the high byte of each sample (see the docstring).
    g16 = pattern(1, maximum=65535, seed=6)
    data = png_bytes(g16, color_type=0, depth=16)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))).reshape(H, W, 1), g16)
    high = (g16 >> 8).astype(np.uint8)
    record("gray16.png", 1, data, np.repeat(high, 3, axis=2), high)
    c16 = pattern(3, maximum=65535, seed=7)
    data = png_bytes(c16, color_type=2, depth=16)
    high = (c16 >> 8).astype(np.uint8)
    decoded = Image.open(io.BytesIO(data))
    assert np.array_equal(np.asarray(decoded.convert("RGB")), high), "PIL keeps the high byte of 16-bit RGB"
    record("rgb16.png", 3, data, high, Image.fromarray(high, "RGB").convert("L"))

    # Interlaced RGB and gray (Adam7).
    data = png_bytes(pattern(3, seed=8), color_type=2, depth=8, interlaced=True)
    im = Image.open(io.BytesIO(data))
    assert im.info.get("interlace") == 1 and np.array_equal(np.asarray(im), pattern(3, seed=8))
    record("interlaced.png", 3, data, im.convert("RGB"), im.convert("L"))
    data = png_bytes(pattern(1, seed=9), color_type=0, depth=8, interlaced=True)
    im = Image.open(io.BytesIO(data))
    record("interlaced_gray.png", 1, data, im.convert("RGB"), im.convert("L"))

    # JPEG: gray and RGB (4:2:0), baseline, quality 90.
    from_pil("gray.jpg", Image.fromarray(smooth(1)[:, :, 0], "L"), 1, format="JPEG", quality=90)
    from_pil("rgb.jpg", Image.fromarray(smooth(3, seed=20), "RGB"), 3, format="JPEG", quality=90)
    from_pil("rgb444.jpg", Image.fromarray(smooth(3, seed=40), "RGB"), 3, format="JPEG", quality=90, subsampling=0)
    from_pil("progressive.jpg", Image.fromarray(smooth(3, seed=60), "RGB"), 3, format="JPEG", quality=90,
             progressive=True)
    # A PNG named .jpg: the content decides.
    record("png_named.jpg", 3, pil_bytes(rgb, format="PNG"), rgb, rgb.convert("L"))

    # Files the decoder refuses.
    save("cmyk.jpg", pil_bytes(Image.fromarray(smooth(4), "CMYK"), format="JPEG", quality=90))
    full = pil_bytes(rgb, format="PNG")
    save("truncated.png", full[: len(full) * 2 // 3])
    # Cut inside the entropy-coded data (after the start-of-scan header): libjpeg warns and pads.
    full = pil_bytes(Image.fromarray(smooth(3, seed=80), "RGB"), format="JPEG", quality=90)
    sos = full.index(b"\xff\xda")
    save("truncated.jpg", full[: (sos + len(full)) // 2])
    save("truncated_header.jpg", full[: sos // 2])
    save("empty.png", b"")
    save("text.png", b"hello, this is not an image\n")
    save("gif_named.jpg", pil_bytes(rgb.convert("P"), format="GIF"))
    save("zero_width.png", png_bytes(pattern(1, seed=1), color_type=0, depth=8, width=0))
    jpeg = bytearray(pil_bytes(gray, format="JPEG", quality=90))
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5:sof + 7] = b"\x00\x00"  # the frame height
    save("zero_height.jpg", bytes(jpeg))
    save("huge.png", png_bytes(pattern(1, seed=1), color_type=0, depth=8, width=20000, height=20000, idat=False)[:-12]
         + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))

    # What torchvision's to_tensor makes of rgb.png: byte / 255 in float32.
    import_torchvision()
    from torchvision.transforms.functional import to_tensor
    tensor = to_tensor(Image.open(os.path.join(IMAGES, "rgb.png")).convert("RGB"))
    assert tensor.dtype == torch.float32

    fixture = header("tools/golden/generate_images.py")
    fixture["pil_version"] = Image.__version__
    fixture["images"] = cases
    fixture["rgb_png_to_tensor"] = L(tensor.reshape(-1))
    write_json(os.path.join(FIXTURES, "images.json"), fixture)


def open_png_depth(path):
    with open(path, "rb") as f:
        return f.read(25)[24]


if __name__ == "__main__":
    main()
