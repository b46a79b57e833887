#!/usr/bin/env python3
"""Golden values for Ember's numerics tests, computed with PyTorch (CPU, float32).

Writes
    Tests/EmberCoreTests/Fixtures/core.json   (ops, BLAS gemm, tape fan-out, RNG known answers)
    Tests/EmberNNTests/Fixtures/nn.json       (losses, optimizers, one MLP training step)

Every input is a float32 tensor written out as nested lists of the float64 values of its
float32 elements (`tensor.double().tolist()`), so the Swift tests read back exactly the inputs
PyTorch saw. Outputs are PyTorch's float32 results, written the same way. Test points are kept
away from kinks (ReLU at 0). CI does not need PyTorch: the fixtures are committed.

    python3 tools/golden/generate.py
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CORE_OUT = os.path.join(ROOT, "Tests", "EmberCoreTests", "Fixtures", "core.json")
NN_OUT = os.path.join(ROOT, "Tests", "EmberNNTests", "Fixtures", "nn.json")

torch.set_num_threads(1)
torch.set_default_dtype(torch.float32)


def L(t):
    """A float32 tensor as nested lists of exact float64 values."""
    assert t.dtype == torch.float32, t.dtype
    return t.detach().double().tolist()


def away_from_zero(t, margin=0.1):
    """Moves every element at least `margin` away from 0 (keeps its sign)."""
    s = torch.where(t >= 0, torch.ones_like(t), -torch.ones_like(t))
    return s * (t.abs() + margin)


def leaf(t):
    return t.detach().clone().requires_grad_(True)


# --------------------------------------------------------------------------------------------
# EmberCore
# --------------------------------------------------------------------------------------------

def linear_cases():
    torch.manual_seed(1)
    cases = []
    for name, with_bias in (("with_bias", True), ("no_bias", False)):
        x = leaf(torch.randn(4, 3))
        w = leaf(torch.randn(5, 3) * 0.5)
        b = leaf(torch.randn(5)) if with_bias else None
        g = torch.randn(4, 5)
        y = F.linear(x, w, b)
        (y * g).sum().backward()
        case = {"name": name, "x": L(x), "weight": L(w), "g": L(g), "y": L(y), "dx": L(x.grad), "dweight": L(w.grad)}
        if with_bias:
            case["bias"] = L(b)
            case["dbias"] = L(b.grad)
        cases.append(case)
    return cases


def relu_case():
    torch.manual_seed(2)
    x = leaf(away_from_zero(torch.randn(3, 4)))
    g = torch.randn(3, 4)
    y = torch.relu(x)
    (y * g).sum().backward()
    assert (x.abs() >= 0.1).all()
    return {"x": L(x), "g": L(g), "y": L(y), "dx": L(x.grad)}


def dropout_case():
    torch.manual_seed(3)
    p = 0.25
    x = leaf(torch.randn(4, 5))
    keep = torch.bernoulli(torch.full((4, 5), 1 - p))
    mask = keep / (1 - p)  # entries 0 or 1/(1-p), float32
    assert 0 < keep.sum() < keep.numel()
    g = torch.randn(4, 5)
    y = x * mask  # inverted dropout with the injected mask
    (y * g).sum().backward()
    return {"p": p, "x": L(x), "mask": L(mask), "g": L(g), "y": L(y), "dx": L(x.grad)}


def mean_case():
    torch.manual_seed(4)
    x = leaf(torch.randn(3, 4) * 2 + 0.5)
    seed = torch.tensor(0.7)
    y = x.mean()
    y.backward(seed)
    return {"x": L(x), "seed": L(seed), "y": L(y), "dx": L(x.grad)}


def log_softmax_cases():
    torch.manual_seed(5)
    cases = []
    inputs = {
        "random": torch.randn(4, 5) * 2,
        # Large logits: the naive exp overflows; the stable form must not.
        "large": torch.tensor([[1000.0, 1001.0, 999.5], [-50.0, 30.0, 29.0], [88.0, 89.0, 90.0]]),
    }
    for name, x0 in inputs.items():
        x = leaf(x0)
        g = torch.randn(*x0.shape)
        y = torch.log_softmax(x, dim=1)
        (y * g).sum().backward()
        cases.append({"name": name, "x": L(x), "g": L(g), "y": L(y), "dx": L(x.grad)})
    return cases


def gemm_cases():
    """C = alpha * op(A) @ op(B) + beta * C0 with row-major storage (A stored k x m if transA)."""
    torch.manual_seed(6)
    m, n, k = 3, 4, 5
    cases = []
    combos = [(False, False, 1.0, 0.0), (False, True, 1.0, 0.0), (True, False, 1.0, 0.0), (True, True, 1.0, 0.0),
              (True, False, 0.5, 2.0)]
    for ta, tb, alpha, beta in combos:
        a = torch.randn(k, m) if ta else torch.randn(m, k)
        b = torch.randn(n, k) if tb else torch.randn(k, n)
        c0 = torch.randn(m, n)
        opa = a.t() if ta else a
        opb = b.t() if tb else b
        c = torch.addmm(c0, opa, opb, beta=beta, alpha=alpha)
        cases.append({"transA": ta, "transB": tb, "m": m, "n": n, "k": k, "alpha": alpha, "beta": beta,
                      "a": L(a), "b": L(b), "c0": L(c0), "c": L(c)})
    return cases


def fanout_case():
    """h = relu(x) feeds two different consumers (relu and a masked copy) that meet again in one
    linear: y = relu(h) @ (h * mask)^T + b; loss = mean(y). x's gradient sums both paths."""
    torch.manual_seed(7)
    x = leaf(away_from_zero(torch.randn(4, 3)))
    mask = torch.tensor([[1.0, 0.0, 2.0], [2.0, 2.0, 0.0], [0.0, 2.0, 2.0], [2.0, 0.0, 1.0]])
    b = leaf(torch.randn(4))
    h = torch.relu(x)
    r = torch.relu(h)
    a = h * mask
    y = F.linear(r, a, b)
    loss = y.mean()
    loss.backward()
    return {"x": L(x), "mask": L(mask), "bias": L(b), "loss": L(loss), "dx": L(x.grad), "dbias": L(b.grad)}


# Reference implementation of the engine RNG (SplitMix64-seeded xoshiro256**), independent of
# the Swift code, to pin the stream across platforms and doors.
M64 = (1 << 64) - 1


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M64


class Xoshiro:
    def __init__(self, seed):
        x = seed & M64
        s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            s.append(z ^ (z >> 31))
        self.s = s

    def next(self):
        s = self.s
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def uniform(self):
        return (self.next() >> 40) * 2.0 ** -24

    def below(self, bound):
        if bound <= 1:
            return 0
        prod = self.next() * bound
        low, high = prod & M64, prod >> 64
        if low < bound:
            threshold = ((1 << 64) - bound) % bound
            while low < threshold:
                prod = self.next() * bound
                low, high = prod & M64, prod >> 64
        return high

    def permutation(self, n):
        p = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.below(i + 1)
            p[i], p[j] = p[j], p[i]
        return p


def rng_cases():
    cases = []
    for seed in (0, 42, M64):
        r = Xoshiro(seed)
        state = [str(w) for w in r.s]
        nexts = [str(r.next()) for _ in range(6)]
        uniforms = [r.uniform() for _ in range(6)]
        belows = [r.below(10) for _ in range(8)]
        perm = r.permutation(10)
        cases.append({"seed": str(seed), "state": state, "next": nexts, "uniform": uniforms, "below10": belows,
                      "permutation10": perm})
    return cases


def float_bits_check():
    """Values whose float32 bit patterns the Swift loader must reproduce exactly."""
    torch.manual_seed(8)
    t = torch.cat([torch.randn(6), torch.tensor([1 / 3, 0.1, -1e-30, 3.4e38, 1.1754944e-38])]).float()
    bits = t.view(torch.int32).tolist()
    return {"values": L(t), "bits": [b & 0xFFFFFFFF for b in bits]}


# --------------------------------------------------------------------------------------------
# EmberNN
# --------------------------------------------------------------------------------------------

def loss_cases():
    torch.manual_seed(10)
    out = {"mse": [], "cross_entropy": [], "bce_with_logits": []}

    def record(kind, name, output0, target, fn):
        o = leaf(output0)
        loss = fn(o, target)
        loss.backward()
        out[kind].append({"name": name, "output": L(o), "target": L(target.float()), "loss": L(loss),
                          "grad": L(o.grad)})

    # MSE: output [n, 1], target [n].
    record("mse", "random", torch.randn(6, 1), torch.randn(6), lambda o, t: F.mse_loss(o[:, 0], t))
    record("mse", "large", torch.randn(5, 1) * 100, torch.randn(5) * 50, lambda o, t: F.mse_loss(o[:, 0], t))

    # Cross-entropy: output [n, K] logits, target class indices (written as floats).
    t = torch.tensor([0, 3, 1, 2, 3, 0])
    record("cross_entropy", "random", torch.randn(6, 4) * 2, t, lambda o, tt: F.cross_entropy(o, tt.long()))
    t = torch.tensor([2, 0, 1])
    record("cross_entropy", "large", torch.tensor([[100.0, -100.0, 50.0], [1000.0, 999.0, 0.0], [-80.0, -85.0, -90.0]]),
           t, lambda o, tt: F.cross_entropy(o, tt.long()))

    # BCE with logits: output [n, 1], target 0/1 (and soft targets in [0, 1]).
    record("bce_with_logits", "random", torch.randn(8, 1) * 2, torch.tensor([1, 0, 0, 1, 1, 0, 1, 0]).float(),
           lambda o, tt: F.binary_cross_entropy_with_logits(o[:, 0], tt))
    record("bce_with_logits", "large", torch.tensor([[40.0], [-40.0], [100.0], [-100.0], [15.0]]),
           torch.tensor([0, 1, 1, 0, 0]).float(), lambda o, tt: F.binary_cross_entropy_with_logits(o[:, 0], tt))
    record("bce_with_logits", "soft", torch.randn(5, 1), torch.tensor([0.25, 0.5, 0.9, 0.0, 1.0]),
           lambda o, tt: F.binary_cross_entropy_with_logits(o[:, 0], tt))
    return out


OPTIMIZER_CONFIGS = [
    ("sgd", {"kind": "sgd", "lr": 0.1, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False}),
    ("sgd_momentum_wd", {"kind": "sgd", "lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.01,
                         "nesterov": False}),
    ("sgd_nesterov", {"kind": "sgd", "lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0,
                      "nesterov": True}),
    ("adam", {"kind": "adam", "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0}),
    # L2 decay 0.1 (not 0.01) so that its effect clears the tolerance through Adam's normalisation.
    ("adam_wd", {"kind": "adam", "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1}),
    ("adamw", {"kind": "adamw", "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01}),
]


def make_torch_optimizer(cfg, params):
    if cfg["kind"] == "sgd":
        return torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"], dampening=cfg["dampening"],
                               weight_decay=cfg["weight_decay"], nesterov=cfg["nesterov"], foreach=False)
    cls = torch.optim.Adam if cfg["kind"] == "adam" else torch.optim.AdamW
    return cls(params, lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"],
               weight_decay=cfg["weight_decay"], foreach=False)


def optimizer_cases():
    torch.manual_seed(11)
    w0 = torch.randn(3, 4)
    b0 = torch.randn(4)
    w_grads = [torch.randn(3, 4) for _ in range(5)]
    b_grads = [torch.randn(4) for _ in range(5)]
    # Tiny gradients on a few elements, so that Adam's eps placement shows in the result.
    for g in w_grads:
        g[0, 0] = g[0, 0] * 1e-6
    for g in b_grads:
        g[1] = g[1] * 1e-7
    cases = []
    for name, cfg in OPTIMIZER_CONFIGS:
        w = torch.nn.Parameter(w0.clone())
        b = torch.nn.Parameter(b0.clone())
        opt = make_torch_optimizer(cfg, [w, b])
        w_after, b_after = [], []
        for step in range(5):
            w.grad = w_grads[step].clone()
            b.grad = b_grads[step].clone()
            opt.step()
            w_after.append(L(w))
            b_after.append(L(b))
        cases.append({
            "name": name, "config": cfg,
            "params": [
                {"name": "w", "value": L(w0), "grads": [L(g) for g in w_grads], "after": w_after},
                {"name": "b", "value": L(b0), "grads": [L(g) for g in b_grads], "after": b_after},
            ],
        })
    return cases


def mlp_step_case():
    """One training step of a 3 -> 5 -> 2 MLP (Linear, ReLU, Linear; cross-entropy)."""
    for seed in range(100, 200):
        torch.manual_seed(seed)
        l0 = torch.nn.Linear(3, 5)
        l1 = torch.nn.Linear(5, 2)
        x = torch.randn(8, 3)
        y = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1])
        with torch.no_grad():
            z = l0(x)
        if z.abs().min() > 0.05:  # no hidden pre-activation near the ReLU kink
            break
    else:
        raise RuntimeError("no seed gave pre-activations away from 0")
    names = ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    initial = {n: p.detach().clone() for n, p in zip(names, [l0.weight, l0.bias, l1.weight, l1.bias])}

    def run(opt_name, cfg):
        params = [torch.nn.Parameter(initial[n].clone()) for n in names]
        w0, b0, w1, b1 = params
        opt = make_torch_optimizer(cfg, params)
        opt.zero_grad()
        logits = F.linear(torch.relu(F.linear(x, w0, b0)), w1, b1)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        grads = {n: L(p.grad) for n, p in zip(names, params)}
        opt.step()
        return {"optimizer": opt_name, "config": cfg, "loss": L(loss), "logits": L(logits), "grads": grads,
                "after": {n: L(p) for n, p in zip(names, params)}}

    sgd = {"kind": "sgd", "lr": 0.1, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False}
    adam = {"kind": "adam", "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0}
    return {"seed": seed, "x": L(x), "y": L(y.float()), "classes": 2,
            "initial": {n: L(t) for n, t in initial.items()},
            "steps": [run("sgd", sgd), run("adam", adam)]}


def write(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, allow_nan=False)
        f.write("\n")
    print(f"wrote {os.path.relpath(path, ROOT)}")


def main():
    header = {"generator": "tools/golden/generate.py", "torch_version": torch.__version__,
              "python_version": sys.version.split()[0]}
    core = dict(header)
    core.update({
        "float_bits_check": float_bits_check(),
        "linear": linear_cases(),
        "relu": relu_case(),
        "dropout": dropout_case(),
        "mean": mean_case(),
        "log_softmax": log_softmax_cases(),
        "gemm": gemm_cases(),
        "fanout": fanout_case(),
        "rng": rng_cases(),
    })
    nn = dict(header)
    nn.update({
        "losses": loss_cases(),
        "optimizers": optimizer_cases(),
        "mlp_step": mlp_step_case(),
    })
    write(CORE_OUT, core)
    write(NN_OUT, nn)


if __name__ == "__main__":
    main()
