"""Safetensors interoperability between PyTorch and Ember.

    python3 tools/golden/safetensors_interop.py              # writes the fixture
    python3 tools/golden/safetensors_interop.py model.bin    # checks a file Ember wrote

1. Writes Tests/EmberNNTests/Fixtures/torch_written.safetensors with Python's `safetensors`
   library (F32 tensors and a __metadata__ map) plus torch_written.json holding the same values;
   the Swift test SafetensorsInteropTests reads the file with Ember's decoder and compares.
2. Given a path to a model file written by Ember (e.g. `MLPModel.serialized()`), loads it with
   `safetensors.torch.load_file` and prints every tensor's name and shape, showing that PyTorch
   reads Ember's weights.
"""
import json
import pathlib
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "Tests" / "EmberNNTests" / "Fixtures"


def write_fixture() -> None:
    torch.manual_seed(0)
    tensors = {
        "layers.0.weight": torch.randn(4, 3),
        "layers.0.bias": torch.randn(4),
        "layers.1.weight": torch.randn(1, 4),
        "scalar_like": torch.randn(1),
    }
    metadata = {"producer": "safetensors_interop.py", "torch": torch.__version__}
    save_file(tensors, str(FIXTURES / "torch_written.safetensors"), metadata=metadata)
    values = {k: {"shape": list(v.shape), "data": v.double().flatten().tolist()} for k, v in tensors.items()}
    (FIXTURES / "torch_written.json").write_text(json.dumps({"metadata": metadata, "tensors": values}, indent=1))
    print("wrote", FIXTURES / "torch_written.safetensors")


def check_ember_file(path: str) -> None:
    tensors = load_file(path)
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
    for name, t in tensors.items():
        print(f"{name}: {tuple(t.shape)} {t.dtype}")
    print("metadata keys:", sorted(meta))
    assert all(t.dtype == torch.float32 for t in tensors.values())


if __name__ == "__main__":
    if len(sys.argv) > 1:
        check_ember_file(sys.argv[1])
    else:
        write_fixture()
