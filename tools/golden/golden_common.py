"""Helpers shared by the golden-value generators: exact float values, provenance, JSON files."""
import json
import os
import sys

import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def L(t):
    """A float32 tensor as nested lists of exact float64 values (a 0-dim tensor as a number)."""
    assert t.dtype == torch.float32, t.dtype
    return t.detach().double().tolist()


def header(generator):
    """The provenance fields a fixture starts with: its generator and the versions that ran it."""
    return {"generator": generator, "torch_version": torch.__version__, "python_version": sys.version.split()[0]}


def write_json(path, obj):
    """Writes `obj` as indented JSON (no NaN or infinity) with a final newline, creating folders."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, allow_nan=False)
        f.write("\n")
    print(f"wrote {os.path.relpath(path, ROOT)}")


def import_torchvision():
    """torchvision, imported through a shim: PyPI's torchvision wheel is a CUDA build whose compiled
    ops (nms, roi_align …) fail to load next to the CPU torch; registering their fake kernels then
    raises. Only detection ops need the compiled part, so those registrations are skipped."""
    import torch
    _register_fake = torch.library.register_fake
    def _tolerant_register_fake(op, *args, **kwargs):
        def decorate(fn):
            try:
                return _register_fake(op, *args, **kwargs)(fn)
            except RuntimeError:  # the wheel's compiled ops (nms, roi_align …) are absent
                return fn
        return decorate
    torch.library.register_fake = _tolerant_register_fake
    import torchvision
    return torchvision
