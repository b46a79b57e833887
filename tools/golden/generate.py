#!/usr/bin/env python3
"""Golden values for Ember's numerics tests, computed with PyTorch (CPU, float32).

Writes
    Tests/EmberCoreTests/Fixtures/core.json   (ops, BLAS gemm, tape fan-out, RNG known answers, and
                                              "ops": golden cases for every differentiable OpKind
                                              except convolution/pooling, see generate_conv.py)
    Tests/EmberNNTests/Fixtures/nn.json       (losses, optimizers, one MLP training step)

Every input is a float32 tensor written out as nested lists of the float64 values of its
float32 elements (`tensor.double().tolist()`), so the Swift tests read back exactly the inputs
PyTorch saw. Outputs are PyTorch's float32 results, written the same way. Test points are kept
away from kinks (ReLU at 0). CI does not need PyTorch: the fixtures are committed.

    python3 tools/golden/generate.py
"""

import math
import os
import zlib

import torch
import torch.nn.functional as F

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CORE_OUT = os.path.join(ROOT, "Tests", "EmberCoreTests", "Fixtures", "core.json")
NN_OUT = os.path.join(ROOT, "Tests", "EmberNNTests", "Fixtures", "nn.json")

torch.set_num_threads(1)
torch.set_default_dtype(torch.float32)


from golden_common import L, header as provenance, write_json as write  # noqa: E402


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


# --------------------------------------------------------------------------------------------
# EmberCore: one golden list per differentiable op (core.json "ops")
# --------------------------------------------------------------------------------------------
#
# ops[<OpKind raw value>] is a list of cases
#     {"name", "params", "inputs": {name: tensor}, "seed", "output", "grads": {name: tensor}}
# with loss = (output * seed).sum(), so grads[name] = d loss / d inputs[name]. Inputs that are
# not differentiable (a where-condition, a dropout mask) appear in "inputs" but not in "grads";
# integer indices (gather_rows, embedding) are params. The convolution/pooling ops live in
# conv.json (tools/golden/generate_conv.py) with the same layout.

def op_seed(op, name):
    """A fixed seed per (op, case), so adding a case leaves the others' values unchanged."""
    return zlib.crc32(f"{op}/{name}".encode()) & 0x7FFFFFFF


def away_from(t, points, margin):
    """Moves every element at least `margin` away from each of `points` (pushed away from the point)."""
    t = t.clone()
    for p in points:
        d = t - p
        close = d.abs() < margin
        t = torch.where(close, p + torch.where(d >= 0, torch.full_like(t, margin), torch.full_like(t, -margin)), t)
    for p in points:
        assert ((t - p).abs() >= margin * 0.999).all(), (p, t)
    return t


def uniform(shape, low, high):
    return torch.rand(shape) * (high - low) + low


def signed_uniform(shape, low, high):
    """|x| uniform in [low, high) with a random sign."""
    s = torch.where(torch.rand(shape) < 0.5, -torch.ones(shape), torch.ones(shape))
    return s * uniform(shape, low, high)


class OpRecorder:
    def __init__(self):
        self.ops = {}

    def case(self, op, name, fn, inputs, params=None, nondiff=()):
        """Runs fn(**inputs) in float32, seeds the backward with a random upstream gradient and
        records the case. `inputs` maps names to float32 tensors."""
        torch.manual_seed(op_seed(op, name) + 1)
        leaves = {}
        for k, v in inputs.items():
            assert v.dtype == torch.float32, (op, name, k, v.dtype)
            leaves[k] = v.detach().clone() if k in nondiff else leaf(v)
        out = fn(**leaves)
        assert out.dtype == torch.float32
        assert out.numel() > 0, (op, name)
        seed = torch.randn(out.shape)
        (out * seed).sum().backward()
        grads = {}
        for k, v in leaves.items():
            if k in nondiff:
                continue
            assert v.grad is not None, (op, name, k)
            grads[k] = L(v.grad)
        assert torch.isfinite(out).all() and all(torch.isfinite(leaves[k].grad).all() for k in grads), (op, name)
        self.ops.setdefault(op, []).append({
            "name": name, "params": params or {}, "inputs": {k: L(v) for k, v in leaves.items()},
            "seed": L(seed), "output": L(out), "grads": grads})


def unary_op_cases(rec):
    shape = (3, 5)

    def x_for(op, name, make):
        torch.manual_seed(op_seed(op, name))
        return make()

    def u(op, name, make, fn, params=None):
        rec.case(op, name, lambda x: fn(x), {"x": x_for(op, name, make)}, params)

    normal2 = lambda: torch.randn(shape) * 2
    positive = lambda: uniform(shape, 0.2, 3.0)

    u("neg", "default", normal2, torch.neg)
    u("exp", "default", normal2, torch.exp)
    u("log", "positive", positive, torch.log)
    u("sqrt", "positive", positive, torch.sqrt)
    u("abs", "away_from_zero", lambda: away_from_zero(torch.randn(shape)), torch.abs)
    u("square", "default", normal2, torch.square)
    u("reciprocal", "positive", positive, torch.reciprocal)
    u("reciprocal", "negative", lambda: -positive(), torch.reciprocal)
    u("sin", "default", normal2, torch.sin)
    u("cos", "default", normal2, torch.cos)
    u("log1p", "above_minus_one", lambda: uniform(shape, -0.8, 3.0), torch.log1p)
    u("tanh", "default", normal2, torch.tanh)
    u("sigmoid", "default", lambda: torch.randn(shape) * 4, torch.sigmoid)
    u("relu", "away_from_zero", lambda: away_from_zero(torch.randn(shape)), torch.relu)

    u("add_scalar", "c=2.5", normal2, lambda x: x + 2.5, {"c": 2.5})
    u("add_scalar", "c=-0.3", normal2, lambda x: x + (-0.3), {"c": -0.3})
    u("mul_scalar", "c=-1.5", normal2, lambda x: x * -1.5, {"c": -1.5})
    u("mul_scalar", "c=0.1", normal2, lambda x: x * 0.1, {"c": 0.1})
    for p in (2.0, 3.0, 0.5, -1.5, 2.7):
        u("pow_scalar", f"exponent={p}", lambda: uniform(shape, 0.3, 2.5), lambda x, p=p: torch.pow(x, p),
          {"exponent": p})

    # Activations, with PyTorch's defaults and with non-default parameters.
    u("elu", "default", normal2, F.elu, {"alpha": 1.0})
    u("elu", "alpha=0.5", normal2, lambda x: F.elu(x, alpha=0.5), {"alpha": 0.5})
    u("elu", "alpha=1.7", normal2, lambda x: F.elu(x, alpha=1.7), {"alpha": 1.7})
    u("celu", "default", normal2, F.celu, {"alpha": 1.0})
    u("celu", "alpha=2", normal2, lambda x: F.celu(x, alpha=2.0), {"alpha": 2.0})
    u("celu", "alpha=0.6", normal2, lambda x: F.celu(x, alpha=0.6), {"alpha": 0.6})
    u("selu", "default", normal2, F.selu)
    u("leaky_relu", "default", lambda: away_from_zero(torch.randn(shape)), F.leaky_relu, {"negative_slope": 0.01})
    u("leaky_relu", "negative_slope=0.2", lambda: away_from_zero(torch.randn(shape)),
      lambda x: F.leaky_relu(x, negative_slope=0.2), {"negative_slope": 0.2})
    u("hardtanh", "default", lambda: away_from(torch.randn(shape) * 1.5, [-1.0, 1.0], 0.05), F.hardtanh,
      {"min_val": -1.0, "max_val": 1.0})
    u("hardtanh", "min=-2,max=0.5", lambda: away_from(torch.randn(shape) * 2, [-2.0, 0.5], 0.05),
      lambda x: F.hardtanh(x, min_val=-2.0, max_val=0.5), {"min_val": -2.0, "max_val": 0.5})
    u("relu6", "default", lambda: away_from(uniform(shape, -3.0, 9.0), [0.0, 6.0], 0.05), F.relu6)
    u("hardsigmoid", "default", lambda: away_from(uniform(shape, -5.0, 5.0), [-3.0, 3.0], 0.05), F.hardsigmoid)
    u("hardshrink", "default", lambda: away_from(torch.randn(shape), [-0.5, 0.5], 0.05), F.hardshrink,
      {"lambd": 0.5})
    u("hardshrink", "lambd=1.2", lambda: away_from(torch.randn(shape) * 2, [-1.2, 1.2], 0.05),
      lambda x: F.hardshrink(x, lambd=1.2), {"lambd": 1.2})
    u("softshrink", "default", lambda: away_from(torch.randn(shape), [-0.5, 0.5], 0.05), F.softshrink,
      {"lambd": 0.5})
    u("softshrink", "lambd=1.2", lambda: away_from(torch.randn(shape) * 2, [-1.2, 1.2], 0.05),
      lambda x: F.softshrink(x, lambd=1.2), {"lambd": 1.2})
    u("softplus", "default", lambda: torch.randn(shape) * 3, F.softplus, {"beta": 1.0, "threshold": 20.0})
    # Default threshold 20: the inputs above 20 take the linear branch.
    u("softplus", "linear_region", lambda: torch.cat([uniform((1, 5), 21.0, 30.0), torch.randn(2, 5) * 3]),
      F.softplus, {"beta": 1.0, "threshold": 20.0})
    # beta 2, threshold 5: linear for x > 2.5 (kept away from the switch, where softplus jumps by
    # log1p(e^-5)/2 ≈ 0.003).
    u("softplus", "beta=2,threshold=5", lambda: away_from(uniform(shape, -3.0, 6.0), [2.5], 0.1),
      lambda x: F.softplus(x, beta=2.0, threshold=5.0), {"beta": 2.0, "threshold": 5.0})
    u("softplus", "beta=0.5", lambda: torch.randn(shape) * 3, lambda x: F.softplus(x, beta=0.5),
      {"beta": 0.5, "threshold": 20.0})
    u("softsign", "default", normal2, F.softsign)
    # |x| >= 0.5: for small x PyTorch's tanhshrink gradient 1 - (1 - tanh²) cancels in float32.
    u("tanhshrink", "default", lambda: signed_uniform(shape, 0.5, 3.0), F.tanhshrink)
    u("log_sigmoid", "default", lambda: torch.randn(shape) * 4, F.logsigmoid)
    u("log_sigmoid", "large", lambda: signed_uniform(shape, 20.0, 90.0), F.logsigmoid)
    u("threshold", "threshold=0.3,value=-2", lambda: away_from(torch.randn(shape), [0.3], 0.05),
      lambda x: F.threshold(x, 0.3, -2.0), {"threshold": 0.3, "value": -2.0})
    u("threshold", "threshold=-1,value=0.5", lambda: away_from(torch.randn(shape) * 2, [-1.0], 0.05),
      lambda x: F.threshold(x, -1.0, 0.5), {"threshold": -1.0, "value": 0.5})
    u("gelu", "approximate=none", lambda: torch.randn(shape) * 2.5, lambda x: F.gelu(x, approximate="none"),
      {"approximate": "none"})
    u("gelu_tanh", "approximate=tanh", lambda: torch.randn(shape) * 2.5, lambda x: F.gelu(x, approximate="tanh"),
      {"approximate": "tanh"})


BROADCAST_PATTERNS = [
    ("same_shape", (3, 4), (3, 4)),
    ("bias", (3, 4), (4,)),
    ("outer", (3, 1), (1, 4)),
    ("scalar_rhs", (3, 4), ()),
    ("scalar_lhs", (), (3, 4)),
    ("rank3", (2, 1, 4), (3, 1)),
]


def binary_op_cases(rec):
    fns = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
           "maximum": torch.maximum, "minimum": torch.minimum, "pow": torch.pow}
    for op, fn in fns.items():
        for name, sa, sb in BROADCAST_PATTERNS:
            torch.manual_seed(op_seed(op, name))
            a = torch.randn(sa) * 2
            b = torch.randn(sb) * 2
            if op == "div":
                b = signed_uniform(sb, 0.5, 2.0)
            if op == "pow":
                a = uniform(sa, 0.5, 2.0)
                b = uniform(sb, -2.0, 2.0)
            if op in ("maximum", "minimum"):
                ea, eb = torch.broadcast_tensors(a, b)
                assert ((ea - eb).abs() > 1e-3).all(), (op, name)  # no ties (their gradient is split)
            rec.case(op, name, lambda a, b, fn=fn: fn(a, b), {"a": a, "b": b})


def where_cases(rec):
    specs = [("same_shape", (3, 4), (3, 4), (3, 4)),
             ("broadcast", (2, 1, 4), (3, 4), (2, 3, 1)),
             ("scalar_b", (3, 4), (3, 4), ())]
    for name, sc, sa, sb in specs:
        torch.manual_seed(op_seed("where", name))
        cond = (torch.rand(sc) < 0.5).float()
        assert 0 < cond.sum() < cond.numel()
        rec.case("where", name, lambda condition, a, b: torch.where(condition != 0, a, b),
                 {"condition": cond, "a": torch.randn(sa), "b": torch.randn(sb)}, nondiff=("condition",))


def reduction_cases(rec):
    axes_list = [None, [0], [1], [2], [-1], [0, 2], [0, 1, 2]]
    for op in ("sum", "mean"):
        for axes in axes_list:
            for keep in (False, True):
                name = f"axes={axes},keepdim={keep}"
                torch.manual_seed(op_seed(op, name))
                x = torch.randn(2, 3, 4) * 2 + 0.5

                def fn(x, op=op, axes=axes, keep=keep):
                    f = torch.sum if op == "sum" else torch.mean
                    if axes is None:
                        return f(x, dim=(0, 1, 2), keepdim=True) if keep else f(x)
                    return f(x, dim=axes, keepdim=keep)
                rec.case(op, name, fn, {"x": x}, {"axes": axes, "keepdim": keep})
    for axis in (0, 1, 2, -1):
        for keep in (False, True):
            name = f"axis={axis},keepdim={keep}"
            torch.manual_seed(op_seed("max", name))
            x = torch.randn(2, 3, 4) * 2
            # No ties along the axis: the gradient goes to the single argmax.
            assert (x.sort(dim=axis).values.diff(dim=axis).abs() > 1e-4).all()
            rec.case("max", name, lambda x, axis=axis, keep=keep: torch.max(x, dim=axis, keepdim=keep).values,
                     {"x": x}, {"axis": axis, "keepdim": keep})


def softmax_cases(rec):
    for op, fn in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
        for axis in (0, 1, 2, -1):
            name = f"axis={axis}"
            torch.manual_seed(op_seed(op, name))
            rec.case(op, name, lambda x, fn=fn, axis=axis: fn(x, dim=axis), {"x": torch.randn(2, 3, 4) * 2},
                     {"axis": axis})
        # Extreme logits: exp overflows / underflows unless computed from x - max.
        extreme = torch.tensor([[1e4, -1e4, 0.0, 1.0],
                                [-1e4, -1e4, -9999.0, -1e4],
                                [1e4, 1e4 - 2.0, 5.0, -1e4],
                                [3.0, -1.0, 0.5, 2.0]])
        for axis in (0, 1):
            rec.case(op, f"extreme_logits,axis={axis}", lambda x, fn=fn, axis=axis: fn(x, dim=axis),
                     {"x": extreme}, {"axis": axis})


def matmul_cases(rec):
    def mm(a, b, ta, tb):
        return torch.matmul(a.transpose(-1, -2) if ta else a, b.transpose(-1, -2) if tb else b)

    m, k, n = 3, 5, 4
    for ta in (False, True):
        for tb in (False, True):
            name = f"transpose_a={ta},transpose_b={tb}"
            torch.manual_seed(op_seed("matmul", name))
            a = torch.randn(k, m) if ta else torch.randn(m, k)
            b = torch.randn(n, k) if tb else torch.randn(k, n)
            rec.case("matmul", name, lambda a, b, ta=ta, tb=tb: mm(a, b, ta, tb), {"a": a, "b": b},
                     {"transpose_a": ta, "transpose_b": tb})

    def stored(batch, rows, cols, t):
        return torch.randn(*batch, cols, rows) if t else torch.randn(*batch, rows, cols)

    specs = [  # name, batch of a, batch of b, transpose_a, transpose_b
        ("equal_batches", (2,), (2,), False, False),
        ("equal_batches_transpose_a", (2,), (2,), True, False),
        ("equal_batches_transpose_b", (2,), (2,), False, True),
        ("shared_rhs", (2,), (), False, False),
        ("shared_rhs_transpose_b", (2,), (), False, True),
        ("shared_lhs", (), (2,), False, False),
        ("shared_lhs_transpose_a", (), (2,), True, False),
        ("rank4_batch", (2, 3), (2, 3), False, False),
        ("rank4_batch_transpose_both", (2, 3), (2, 3), True, True),
        ("rank4_shared_rhs", (2, 3), (), False, False),
    ]
    for name, ba, bb, ta, tb in specs:
        torch.manual_seed(op_seed("batched_matmul", name))
        a = stored(ba, m, k, ta)
        b = stored(bb, k, n, tb)
        rec.case("batched_matmul", name, lambda a, b, ta=ta, tb=tb: mm(a, b, ta, tb), {"a": a, "b": b},
                 {"transpose_a": ta, "transpose_b": tb})


def linear_op_cases(rec):
    specs = [("with_bias", (4, 3), True), ("no_bias", (4, 3), False), ("rank1_input", (3,), True),
             ("rank3_input", (2, 4, 3), True)]
    for name, xs, with_bias in specs:
        torch.manual_seed(op_seed("linear", name))
        inputs = {"x": torch.randn(xs), "weight": torch.randn(5, 3) * 0.5}
        if with_bias:
            inputs["bias"] = torch.randn(5)
        rec.case("linear", name, lambda x, weight, bias=None: F.linear(x, weight, bias), inputs)


def shape_op_cases(rec):
    def x_of(op, name, shape):
        torch.manual_seed(op_seed(op, name))
        return torch.randn(shape)

    for name, xs, shape in [("to_rank2", (2, 3, 4), [4, 6]), ("inferred", (2, 3, 4), [-1, 2]),
                            ("flatten", (2, 3, 4), [24]), ("to_rank4", (6, 4), [2, 3, 1, 4]),
                            ("to_scalar", (1,), [])]:
        rec.case("reshape", name, lambda x, shape=shape: x.reshape(shape), {"x": x_of("reshape", name, xs)},
                 {"shape": shape})
    for name, xs, dims in [("rank2", (3, 4), [1, 0]), ("rank3_cycle", (2, 3, 4), [2, 0, 1]),
                           ("rank3_swap", (2, 3, 4), [1, 0, 2]), ("rank4", (2, 3, 2, 4), [3, 1, 0, 2])]:
        rec.case("permute", name, lambda x, dims=dims: x.permute(dims), {"x": x_of("permute", name, xs)},
                 {"dims": dims})
    for name, xs, d0, d1 in [("rank2", (3, 4), 0, 1), ("outer", (2, 3, 4), 0, 2), ("last_two", (2, 3, 4), -2, -1),
                             ("rank4_mixed", (2, 3, 2, 4), 1, -1)]:
        rec.case("transpose", name, lambda x, d0=d0, d1=d1: x.transpose(d0, d1), {"x": x_of("transpose", name, xs)},
                 {"dim0": d0, "dim1": d1})
    for name, axis, start, end, step in [("axis1_step2", 1, 1, 6, 2), ("axis0_step3", 0, 0, 4, 3),
                                          ("last_axis", -1, 2, 5, 1), ("axis2_step2", 2, 0, 5, 2),
                                          ("single", 1, 3, 4, 1)]:
        def sl(x, axis=axis, start=start, end=end, step=step):
            idx = [slice(None)] * x.dim()
            idx[axis] = slice(start, end, step)
            return x[tuple(idx)]
        rec.case("slice", name, sl, {"x": x_of("slice", name, (4, 6, 5))},
                 {"axis": axis, "start": start, "end": end, "step": step})
    concat_specs = [("axis0", 0, [(1, 3, 4), (2, 3, 4), (3, 3, 4)]), ("axis1", 1, [(2, 1, 4), (2, 3, 4), (2, 2, 4)]),
                    ("axis2", 2, [(2, 3, 1), (2, 3, 2), (2, 3, 3)]), ("axis-1", -1, [(2, 3, 2), (2, 3, 3)]),
                    ("rank1", 0, [(3,), (2,)])]
    for name, axis, shapes in concat_specs:
        torch.manual_seed(op_seed("concat", name))
        inputs = {f"x{i}": torch.randn(s) for i, s in enumerate(shapes)}
        rec.case("concat", name, lambda axis=axis, **xs: torch.cat([xs[f"x{i}"] for i in range(len(xs))], dim=axis),
                 inputs, {"axis": axis, "count": len(shapes)})
    for name, xs, shape in [("column_to_rank3", (3, 1), [2, 3, 4]), ("row_to_rank3", (4,), [2, 3, 4]),
                            ("ones_to_matrix", (1, 1), [3, 4]), ("scalar", (), [2, 3]),
                            ("middle", (2, 1, 4), [2, 3, 4]), ("identity", (2, 3), [2, 3])]:
        rec.case("expand", name, lambda x, shape=shape: x.expand(*shape), {"x": x_of("expand", name, xs)},
                 {"shape": shape})
    for name, xs, idx in [("repeated", (5, 3), [0, 2, 2, 4, 0, 2]), ("rank2_indices", (4, 2, 3), [[1, 3], [1, 1]]),
                          ("rank1_table", (4,), [3, 3, 0])]:
        rec.case("gather_rows", name, lambda x, idx=idx: x[torch.tensor(idx)], {"x": x_of("gather_rows", name, xs)},
                 {"indices": idx})
    for name, codes in [("rank2_codes", [[0, 2, 5], [2, 2, 1]]), ("rank1_codes", [3, 3, 0, 5])]:
        torch.manual_seed(op_seed("embedding", name))
        rec.case("embedding", name, lambda weight, codes=codes: F.embedding(torch.tensor(codes), weight),
                 {"weight": torch.randn(6, 4)}, {"codes": codes})


def dropout_op_cases(rec):
    """PyTorch's own dropout in training mode; the mask it drew is recovered from the output (the
    inputs are away from 0) as `keep.div_(1 - p)` in float32, the factor PyTorch scaled by."""
    for name, p, shape in [("p=0.25", 0.25, (4, 5)), ("p=0.3,rank3", 0.3, (2, 3, 4)), ("p=0.5", 0.5, (3, 6))]:
        torch.manual_seed(op_seed("dropout", name))
        x = away_from_zero(torch.randn(shape))
        state = torch.get_rng_state()
        y = F.dropout(x, p=p, training=True)
        mask = (y != 0).float().div_(1 - p)
        assert 0 < (y != 0).sum() < y.numel()

        def fn(x, mask, p=p, state=state):
            torch.set_rng_state(state)  # the same draw as above
            y = F.dropout(x, p=p, training=True)
            assert torch.equal(y.detach(), x.detach() * mask)
            return y
        rec.case("dropout", name, fn, {"x": x, "mask": mask}, {"p": p}, nondiff=("mask",))


def op_cases():
    rec = OpRecorder()
    unary_op_cases(rec)
    binary_op_cases(rec)
    where_cases(rec)
    reduction_cases(rec)
    softmax_cases(rec)
    matmul_cases(rec)
    linear_op_cases(rec)
    shape_op_cases(rec)
    dropout_op_cases(rec)
    return rec.ops


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


def main():
    header = provenance("tools/golden/generate.py")
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
        "ops": op_cases(),
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
