#!/usr/bin/env python3
"""Golden values for torchvision's ResNets in Ember (`Architectures.resnet18/34/50`): parameter
names and shapes, and outputs of weights loaded from a torchvision state dict saved with
safetensors.

A ResNet-18's weights take 45 MB, far too many to commit. Instead every parameter and buffer is
set from a closed formula that Swift computes to the same float32 bits, the state dict is saved
with `safetensors.torch.save_file` (F32 tensors, BatchNorm's int64 `num_batches_tracked`), and
only the file's header is committed: the Swift test (`TorchvisionResNetTests`) rebuilds the exact
file bytes from the header and the formula, checks them against the committed length and FNV-1a
hash, loads them through `Model.loadWeights(safetensors:)` and compares the logits.

The formula, for the element of flat index i of a tensor with seed p and coefficients a, b:

    h(p, i) = ((i * 2654435761 + p * 40503 + 12345) mod 2001 - 1000) / 1000    (in [-1, 1])
    value   = float32(a + b * h(p, i))                                           (a, b, h: float64)

Integer arithmetic is exact, and float64 division, product and sum are correctly rounded in
both languages, so the values are identical. int64 tensors (`num_batches_tracked`) hold `a`.
Seeds are the state-dict positions; coefficients scale each kind of tensor so that activations
stay of order one (conv weights with variance 2/fan_in, BN weights near 1, positive running
variances). The input batch uses the same formula with its own seed.

Writes
    Tests/EmberNNTests/Fixtures/resnet_names.json    names, shapes, dtypes in state-dict order of
        torchvision's resnet18/34/50 (1000 classes, 3 channels) and their parameter counts
    Tests/EmberNNTests/Fixtures/resnet_weights.json  per case: the safetensors header text, file
        length and FNV-1a 64 hash, the formula coefficients per tensor, the input, the logits in
        eval mode, then in training mode (batch statistics), and the running statistics of some
        BN layers after that training-mode pass

PyTorch CPU, float32, one thread; deterministic (no random numbers). CI needs no PyTorch.

    python3 tools/golden/generate_resnet.py
"""

import copy
import os
import tempfile

import numpy as np
import safetensors.torch
import torch
import torch.nn as nn

from golden_common import L, ROOT, header, import_torchvision, write_json

torch.set_num_threads(1)
torch.set_default_dtype(torch.float32)
FIXTURES = os.path.join(ROOT, "Tests", "EmberNNTests", "Fixtures")
torchvision = import_torchvision()
# The tests' tolerance (TorchvisionResNetTests); every compared effect must exceed it.
RTOL, ATOL = 1e-4, 1e-4


def formula(p, a, b, n):
    """The formula's n values as float32 (see the module docstring)."""
    i = np.arange(n, dtype=np.int64)
    k = (i * 2654435761 + p * 40503 + 12345) % 2001 - 1000
    return (a + b * (k.astype(np.float64) / 1000.0)).astype(np.float32)


def coefficients(name, t, block_end_bn):
    """(a, b) of a state-dict entry: conv weights with variance 2/fan_in, fc as nn.Linear, BN
    weights in [0.75, 1.25], biases and running means within ±0.1, running variances in
    [0.5, 1.5]. The last BN of each residual branch has weights near 0.1 and the downsample BN
    near 0.5 (in the spirit of torchvision's zero_init_residual): a deep stack of training-mode
    batch norms with full-size branches amplifies float32 rounding so much that PyTorch's own
    float32 logits differ from float64 by 1e-3 (ResNet-50, 3 images); with these weights by 1e-5."""
    last = name.rsplit(".", 1)[-1]
    if last == "num_batches_tracked":
        return None
    if t.dim() == 4:  # conv weight: uniform with variance b²/3 = 2 / fan_in
        return 0.0, float(np.sqrt(6.0 / (t.shape[1] * t.shape[2] * t.shape[3])))
    if name.startswith("fc."):
        return (0.0, float(1 / np.sqrt(t.shape[1]))) if last == "weight" else (0.0, 0.1)
    module = name.rsplit(".", 1)[0]
    weight = (0.1, 0.025) if module.endswith("." + block_end_bn) else (0.5, 0.125) if module.endswith("downsample.1") else (1.0, 0.25)
    return {"weight": weight, "bias": (0.0, 0.1),
            "running_mean": (0.0, 0.1), "running_var": (1.0, 0.5)}[last]


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def names_fixture():
    out = {}
    for depth in (18, 34, 50):
        model = getattr(torchvision.models, f"resnet{depth}")()
        out[f"resnet{depth}"] = {
            "tensors": [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in model.state_dict().items()],
            "parameters": sum(p.numel() for p in model.parameters()),
        }
    return out


def weights_case(name, model, input_shape, watched):
    tensors = []
    state = {}
    block_end_bn = "bn3" if any(".bn3." in k for k in model.state_dict()) else "bn2"
    for p, (key, t) in enumerate(model.state_dict().items()):
        c = coefficients(key, t, block_end_bn)
        if c is None:
            value = torch.tensor(p, dtype=torch.int64)
            tensors.append({"name": key, "seed": p, "a": p, "b": 0})
        else:
            value = torch.from_numpy(formula(p, c[0], c[1], t.numel())).reshape(t.shape)
            tensors.append({"name": key, "seed": p, "a": c[0], "b": c[1]})
        assert value.dtype == t.dtype, key
        state[key] = value
    model.load_state_dict(state)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "weights.safetensors")
        safetensors.torch.save_file(model.state_dict(), path)
        data = open(path, "rb").read()
    n = int.from_bytes(data[:8], "little")
    x_seed = 100_003
    x = torch.from_numpy(formula(x_seed, 0.0, 1.0, int(np.prod(input_shape)))).reshape(input_shape)
    model.eval()
    with torch.no_grad():
        logits_eval = model(x)
    model.train()
    with torch.no_grad():
        logits_train = model(x)
    after = model.state_dict()
    # PyTorch's own float32 error (against float64 from the same weights and input) stays well
    # inside the tolerance, so the comparison measures Ember, not rounding noise.
    reference = copy.deepcopy(model).double()
    reference.load_state_dict(state)
    with torch.no_grad():
        for train, got in ((False, logits_eval), (True, logits_train)):
            reference.train(train)
            err = float((got.double() - reference(x.double())).abs().max())
            assert err < ATOL / 10, (name, train, err)
            print(f"{name}: float32 vs float64 (train={train}): {err:.2g}")
    stats = {k: {"running_mean": L(after[k + ".running_mean"]), "running_var": L(after[k + ".running_var"]),
                 "num_batches_tracked": int(after[k + ".num_batches_tracked"])} for k in watched}
    # The comparisons can fail: outputs are of order one (not vanishing into atol), training mode
    # differs from evaluation mode, and the running statistics moved.
    scale = float(logits_eval.abs().max())
    assert 0.1 < scale < 100, (name, scale)
    assert ((logits_train - logits_eval).abs() > ATOL + RTOL * logits_eval.abs()).any(), name
    for k in watched:
        assert not torch.equal(after[k + ".running_mean"], state[k + ".running_mean"]), k
    print(f"{name}: |logits| <= {scale:.3g}, train-eval max diff {float((logits_train - logits_eval).abs().max()):.3g}")
    return {
        "name": name, "classes": model.fc.out_features, "input_shape": list(input_shape),
        "header": data[8:8 + n].decode("utf-8"), "file_length": len(data), "file_fnv1a64": str(fnv1a64(data)),
        "tensors": tensors, "input": {"seed": x_seed, "a": 0.0, "b": 1.0},
        "logits_eval": L(logits_eval), "logits_train": L(logits_train), "running_stats": stats,
    }


def main():
    write_json(os.path.join(FIXTURES, "resnet_names.json"), {**header("tools/golden/generate_resnet.py"), **names_fixture()})
    cases = [
        weights_case("resnet18", torchvision.models.resnet18(num_classes=10), (3, 3, 40, 48),
                     ["bn1", "layer4.1.bn2"]),
        weights_case("resnet50", torchvision.models.resnet50(num_classes=10), (3, 3, 40, 48),
                     ["layer1.0.downsample.1"]),
    ]
    # Grey images, as a user adapts the model: conv1 replaced by one with 1 input channel.
    gray = torchvision.models.resnet18(num_classes=4)
    gray.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    cases.append(weights_case("resnet18_gray", gray, (3, 1, 36, 36), ["bn1"]))
    write_json(os.path.join(FIXTURES, "resnet_weights.json"),
               {**header("tools/golden/generate_resnet.py"), "rtol": RTOL, "atol": ATOL, "cases": cases})


if __name__ == "__main__":
    main()
