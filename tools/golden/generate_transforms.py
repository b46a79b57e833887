#!/usr/bin/env python3
"""Golden values for the image transforms (Sources/EmberNN/Data): the outputs of
torchvision.transforms.v2.functional on small float32 images in [0, 1] with fixed parameters.

Writes
    Tests/EmberNNTests/Fixtures/image_transforms.json

Each case names its input (one of "inputs"), the transform in Ember's JSON form (the Swift test
parses it, so the JSON reader is exercised too), the torchvision call and its output. Values are
written as the shortest decimal that reads back as the same float32 (checked below), which keeps
the fixture small; they are exact. The random transforms cannot match torch's RNG and are tested
statistically in Swift (ImageTransformTests). CI does not need torchvision: the fixture is
committed.

    python3 tools/golden/generate_transforms.py
"""

import os

import numpy as np
import torch

from golden_common import ROOT, header, import_torchvision, write_json

torchvision = import_torchvision()
from torchvision.transforms.v2 import InterpolationMode  # noqa: E402
from torchvision.transforms.v2 import functional as F  # noqa: E402

torch.set_num_threads(1)
OUT = os.path.join(ROOT, "Tests", "EmberNNTests", "Fixtures", "image_transforms.json")
NEAREST, BILINEAR = InterpolationMode.NEAREST, InterpolationMode.BILINEAR


def F32(t):
    """A float32 tensor as nested lists of the shortest decimals that read back as the same float32."""
    assert t.dtype == torch.float32, t.dtype
    a = t.detach().numpy()
    flat = [float(np.format_float_positional(v, unique=True, trim="-")) for v in a.ravel()]
    assert all(np.float32(x) == v for x, v in zip(flat, a.ravel())), "a decimal does not read back exactly"
    return np.array(flat, dtype=np.float64).reshape(a.shape).tolist()


def main():
    torch.manual_seed(7)
    inputs = {
        "rgb_7x9": torch.rand(1, 3, 7, 9),   # odd sizes
        "batch_7x9": torch.rand(2, 3, 7, 9),  # a batch of two (contrast's mean is per image)
        "rgb_8x6": torch.rand(1, 3, 8, 6),   # even sizes, taller than wide
        "rgb_5x5": torch.rand(1, 3, 5, 5),   # square (rotate's quarter-turn fast paths)
        "gray_6x7": torch.rand(1, 1, 6, 7),  # one channel
    }
    cases = []

    def case(name, source, transform, call, fn, moves=True):
        x = inputs[source]
        y = fn(x)
        if moves and y.shape == x.shape:
            assert not torch.equal(y, x), f"{name} leaves the input unchanged"
        cases.append({"name": name, "input": source, "transform": transform, "torchvision": call, "output": F32(y)})

    # resize (bilinear, antialias off, align_corners False): down, up, one axis, shorter side.
    for src, size in (("batch_7x9", [4, 5]), ("rgb_7x9", [11, 13]), ("rgb_7x9", [7, 4]), ("rgb_8x6", [3, 10]),
                      ("gray_6x7", [9, 3])):
        case(f"resize_{src}_to_{size[0]}x{size[1]}", src, {"op": "resize", "size": size},
             f"F.resize(x, {size}, antialias=False)", lambda x, s=size: F.resize(x, s, antialias=False))
    for src, s in (("rgb_7x9", 5), ("rgb_8x6", 10)):
        case(f"resize_{src}_shorter_{s}", src, {"op": "resize", "size": s},
             f"F.resize(x, {s}, antialias=False)", lambda x, s=s: F.resize(x, s, antialias=False))

    # pad in every mode (padding [left, top, right, bottom]), scalar and per-channel fill.
    pads = (("constant", [1, 2, 3, 0], 0.5), ("constant", [2, 0, 1, 3], [0.1, 0.2, 0.3]), ("edge", [2, 1, 0, 3], 0),
            ("reflect", [3, 2, 8, 6], 0), ("symmetric", [4, 3, 9, 7], 0), ("reflect", [1, 1, 1, 1], 0))
    for i, (mode, padding, fill) in enumerate(pads):
        case(f"pad_{mode}_{i}", "rgb_7x9", {"op": "pad", "padding": padding, "fill": fill, "padding_mode": mode},
             f"F.pad(x, {padding}, fill={fill}, padding_mode='{mode}')",
             lambda x, p=padding, f=fill, m=mode: F.pad(x, p, fill=f, padding_mode=m))

    # center_crop smaller, larger (zero padding), mixed, and rounding on even/odd differences.
    for src, size in (("rgb_7x9", [5, 5]), ("rgb_7x9", [4, 7]), ("rgb_7x9", [10, 12]), ("rgb_7x9", [9, 4]),
                      ("rgb_8x6", [5, 3]), ("rgb_8x6", [11, 9])):
        case(f"center_crop_{src}_{size[0]}x{size[1]}", src, {"op": "center_crop", "size": size},
             f"F.center_crop(x, {size})", lambda x, s=size: F.center_crop(x, s))

    for k in (1, 3):
        case(f"grayscale_{k}", "rgb_7x9", {"op": "grayscale", "num_output_channels": k},
             f"F.rgb_to_grayscale(x, {k})", lambda x, k=k: F.rgb_to_grayscale(x, k))
    case("grayscale_from_one_channel_3", "gray_6x7", {"op": "grayscale", "num_output_channels": 3},
         "F.rgb_to_grayscale(x, 3)", lambda x: F.rgb_to_grayscale(x, 3))

    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    case("normalize", "batch_7x9", {"op": "normalize", "mean": mean, "std": std}, f"F.normalize(x, {mean}, {std})",
         lambda x: F.normalize(x, mean, std))

    for top, left, h, w in ((1, 2, 5, 4), (-2, -1, 6, 5), (3, 5, 6, 7)):
        case(f"crop_{top}_{left}_{h}x{w}", "rgb_7x9", {"op": "crop", "top": top, "left": left, "height": h, "width": w},
             f"F.crop(x, {top}, {left}, {h}, {w})", lambda x, a=(top, left, h, w): F.crop(x, *a))

    case("hflip", "rgb_7x9", {"op": "hflip"}, "F.hflip(x)", F.hflip)
    case("vflip", "rgb_8x6", {"op": "vflip"}, "F.vflip(x)", F.vflip)

    for top, left, h, w, size in ((1, 2, 5, 6, [8, 10]), (2, 1, 4, 4, [3, 3]), (-1, 3, 6, 8, [5, 5]), (0, 0, 7, 9, [7, 9])):
        case(f"resized_crop_{top}_{left}_{h}x{w}_to_{size[0]}x{size[1]}", "rgb_7x9",
             {"op": "resized_crop", "top": top, "left": left, "height": h, "width": w, "size": size},
             f"F.resized_crop(x, {top}, {left}, {h}, {w}, {size}, antialias=False)",
             lambda x, a=(top, left, h, w), s=size: F.resized_crop(x, *a, s, antialias=False),
             moves=size != [7, 9])

    # rotate: bilinear and nearest, with and without fill; quarter turns (exact fast paths on
    # squares, the grid on non-squares); angles beyond 360 and negative.
    rotations = (("batch_7x9", 30.0, BILINEAR, None), ("rgb_7x9", -45.0, BILINEAR, [0.2, 0.5, 0.8]),
                 ("rgb_7x9", 17.0, NEAREST, 1.0), ("rgb_8x6", 33.0, NEAREST, None), ("rgb_8x6", 400.0, BILINEAR, 0.0),
                 ("rgb_5x5", 90.0, NEAREST, None), ("rgb_5x5", 270.0, BILINEAR, None), ("rgb_7x9", 180.0, NEAREST, None),
                 ("rgb_7x9", 90.0, BILINEAR, 0.25), ("gray_6x7", -110.0, BILINEAR, 0.5))
    for i, (src, angle, interpolation, fill) in enumerate(rotations):
        case(f"rotate_{i}_{src}_{angle:g}_{interpolation.value}", src,
             {"op": "rotate", "angle": angle, "interpolation": interpolation.value, "fill": fill},
             f"F.rotate(x, {angle}, interpolation={interpolation.value}, fill={fill})",
             lambda x, a=angle, m=interpolation, f=fill: F.rotate(x, a, interpolation=m, fill=f))

    affines = (("rgb_7x9", 20.0, [1.5, -2.0], 0.8, [10.0, 5.0], BILINEAR, None),
               ("rgb_7x9", -12.0, [2.0, 1.0], 1.2, [-15.0, 0.0], NEAREST, 0.3),
               ("rgb_8x6", 0.0, [0.0, 0.0], 1.0, [25.0, -8.0], BILINEAR, [0.9, 0.1, 0.5]),
               ("rgb_8x6", 45.0, [-1.0, 2.0], 0.7, [0.0, 0.0], BILINEAR, 0.0))
    for i, (src, angle, translate, scale, shear, interpolation, fill) in enumerate(affines):
        case(f"affine_{i}_{src}_{interpolation.value}", src,
             {"op": "affine", "angle": angle, "translate": translate, "scale": scale, "shear": shear,
              "interpolation": interpolation.value, "fill": fill},
             f"F.affine(x, {angle}, {translate}, {scale}, {shear}, interpolation={interpolation.value}, fill={fill})",
             lambda x, a=(angle, translate, scale, shear), m=interpolation, f=fill:
                 F.affine(x, *a, interpolation=m, fill=f))

    for src, kind, fn, factors in (("rgb_7x9", "brightness", F.adjust_brightness, (1.3, 0.6)),
                                   ("batch_7x9", "contrast", F.adjust_contrast, (0.5, 1.7)),
                                   ("gray_6x7", "contrast", F.adjust_contrast, (1.8,)),
                                   ("rgb_8x6", "saturation", F.adjust_saturation, (0.3, 2.0, 0.0))):
        for f in factors:
            case(f"adjust_{kind}_{src}_{f:g}", src, {"op": f"adjust_{kind}", f"{kind}_factor": f},
                 f"F.adjust_{kind}(x, {f})", lambda x, fn=fn, f=f: fn(x, f))

    write_json(OUT, {**header("tools/golden/generate_transforms.py"), "torchvision_version": torchvision.__version__,
                     "inputs": {k: F32(v) for k, v in inputs.items()}, "cases": cases})


if __name__ == "__main__":
    main()
