#!/usr/bin/env python3
"""Golden values for EmberNN's layers, losses, optimizers and learning-rate schedules, computed
with PyTorch (CPU, one thread, float32, fixed seeds).

Writes
    Tests/EmberNNTests/Fixtures/nn_layers.json     (batch norm, layer norm, embedding, prelu,
                                                    glu/reglu/geglu, rrelu (eval), merges, flatten)
    Tests/EmberNNTests/Fixtures/nn_losses.json     (mse, l1, cross_entropy, bce_with_logits with
                                                    their options: value and gradient)
    Tests/EmberNNTests/Fixtures/nn_optim.json      (every optimizer option, 5 steps; parameter
                                                    groups; state after 3 steps by PyTorch name)
    Tests/EmberNNTests/Fixtures/nn_schedules.json  (lr (and momentum) sequences over 15 steps)

Conventions as in generate.py: every float32 tensor is written as nested lists of the exact
float64 values of its elements, so the Swift tests read back exactly what PyTorch saw; integer
inputs (class targets, embedding codes) are written as numbers and read as float32 codes, which
is how Ember stores them. Schedules are Python floats (float64) and compared in Double. A NaN
(the mean cross-entropy over a batch whose rows are all ignored) is written as the string "nan",
since JSON has no NaN. Test points are kept away from kinks (relu/prelu at 0, l1 at a zero
difference). CI does not need PyTorch: the fixtures are committed.

    python3 tools/golden/generate_nn.py
"""

import math
import os

import torch
import torch.nn.functional as F

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_DIR = os.path.join(ROOT, "Tests", "EmberNNTests", "Fixtures")

torch.set_num_threads(1)
torch.set_default_dtype(torch.float32)

# The Swift tolerance for layers, losses and optimizers (docs/architecture.md#numerics-contract); used
# here to make sure that every option changes the result by more than the tests could overlook.
RTOL, ATOL = 1e-5, 1e-6

from golden_common import L, header as provenance, write_json  # noqa: E402


def I(t):
    """An integer tensor (codes, class targets) as nested lists of numbers."""
    assert t.dtype in (torch.int64, torch.int32), t.dtype
    return t.tolist()


def num(x):
    """A float for JSON; NaN becomes the string "nan"."""
    x = float(x)
    return "nan" if math.isnan(x) else x


def away_from_zero(t, margin=0.1):
    s = torch.where(t >= 0, torch.ones_like(t), -torch.ones_like(t))
    return s * (t.abs() + margin)


def leaf(t):
    return t.detach().clone().requires_grad_(True)


def differs(a, b):
    """True when a and b differ somewhere by more than the Swift tolerance."""
    return bool(((a - b).abs() > ATOL + RTOL * b.abs()).any())


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------

def batch_norm_cases():
    """Three training steps (forward, backward, running statistics after each) on fresh batches,
    then one evaluation step; the affine parameters are not updated between steps."""
    torch.manual_seed(20)
    specs = [
        # name, dims, input shape, eps, momentum, affine
        ("bn1d_nc", 1, (6, 3), 1e-5, 0.1, True),
        ("bn1d_ncl", 1, (4, 3, 5), 1e-5, 0.1, True),
        ("bn1d_momentum_eps", 1, (5, 4), 1e-3, 0.3, True),
        ("bn1d_no_affine", 1, (4, 3, 2), 1e-5, 0.1, False),
        ("bn2d", 2, (3, 2, 4, 4), 1e-5, 0.1, True),
        ("bn2d_momentum", 2, (2, 3, 3, 2), 1e-5, 0.5, True),
    ]
    cases = []
    for name, dims, shape, eps, momentum, affine in specs:
        c = shape[1]
        cls = torch.nn.BatchNorm1d if dims == 1 else torch.nn.BatchNorm2d
        bn = cls(c, eps=eps, momentum=momentum, affine=affine)
        case = {"name": name, "spatial_dims": dims, "num_features": c, "eps": eps, "momentum": momentum,
                "affine": affine}
        if affine:
            with torch.no_grad():
                bn.weight.copy_(torch.randn(c) * 0.5 + 1)
                bn.bias.copy_(torch.randn(c) * 0.5)
            case["weight"] = L(bn.weight)
            case["bias"] = L(bn.bias)
        steps = []
        for step in range(4):
            training = step < 3
            bn.train(training)
            # Channels with different means and scales, so that every statistic matters.
            loc = torch.randn(c) * 2
            scale = torch.rand(c) * 2 + 0.5
            view = (1, c) + (1,) * (len(shape) - 2)
            x = leaf(torch.randn(*shape) * scale.view(view) + loc.view(view))
            g = torch.randn(*shape)
            if affine:
                bn.weight.grad = None
                bn.bias.grad = None
            y = bn(x)
            (y * g).sum().backward()
            s = {"training": training, "x": L(x), "g": L(g), "y": L(y), "dx": L(x.grad),
                 "running_mean": L(bn.running_mean), "running_var": L(bn.running_var),
                 "num_batches_tracked": int(bn.num_batches_tracked)}
            if affine:
                s["dweight"] = L(bn.weight.grad)
                s["dbias"] = L(bn.bias.grad)
            steps.append(s)
        case["steps"] = steps
        cases.append(case)
    return cases


def layer_norm_cases():
    torch.manual_seed(21)
    cases = []
    for name, shape, eps, affine in (("affine_3d", (2, 3, 5), 1e-5, True), ("affine_2d_eps", (4, 6), 1e-3, True),
                                     ("no_affine", (3, 4), 1e-5, False)):
        d = shape[-1]
        ln = torch.nn.LayerNorm(d, eps=eps, elementwise_affine=affine)
        case = {"name": name, "size": d, "eps": eps, "affine": affine}
        if affine:
            with torch.no_grad():
                ln.weight.copy_(torch.randn(d) * 0.5 + 1)
                ln.bias.copy_(torch.randn(d) * 0.5)
            case["weight"] = L(ln.weight)
            case["bias"] = L(ln.bias)
        x = leaf(torch.randn(*shape) * 3 + 1)
        g = torch.randn(*shape)
        y = ln(x)
        (y * g).sum().backward()
        case.update({"x": L(x), "g": L(g), "y": L(y), "dx": L(x.grad)})
        if affine:
            case["dweight"] = L(ln.weight.grad)
            case["dbias"] = L(ln.bias.grad)
        cases.append(case)
    return cases


def embedding_case():
    """Codes with repeats: the rows used several times receive the sum of their gradients; the
    unused row receives zero."""
    torch.manual_seed(22)
    emb = torch.nn.Embedding(6, 3)
    codes = torch.tensor([[0, 2, 2, 5], [2, 1, 0, 2]])
    assert 4 not in codes.tolist()[0] + codes.tolist()[1] and 3 not in codes.flatten().tolist()
    g = torch.randn(2, 4, 3)
    y = emb(codes)
    (y * g).sum().backward()
    return {"num_embeddings": 6, "dim": 3, "weight": L(emb.weight), "codes": I(codes), "g": L(g), "y": L(y),
            "dweight": L(emb.weight.grad)}


def prelu_cases():
    torch.manual_seed(23)
    cases = []
    for name, k, shape, w in (("shared", 1, (4, 3), [0.25]), ("shared_3d", 1, (2, 3, 4), [-0.3]),
                              ("per_channel", 3, (4, 3), [0.1, 0.3, -0.2]),
                              ("per_channel_3d", 3, (2, 3, 4), [0.2, 0.05, 0.6])):
        m = torch.nn.PReLU(num_parameters=k)
        with torch.no_grad():
            m.weight.copy_(torch.tensor(w))
        x = leaf(away_from_zero(torch.randn(*shape)))
        g = torch.randn(*shape)
        y = m(x)
        (y * g).sum().backward()
        cases.append({"name": name, "num_parameters": k, "weight": L(m.weight), "x": L(x), "g": L(g), "y": L(y),
                      "dx": L(x.grad), "dweight": L(m.weight.grad)})
    return cases


def glu_cases():
    torch.manual_seed(24)
    gates = {"glu": torch.sigmoid, "reglu": torch.relu, "geglu": F.gelu}
    cases = []
    for name, gate in gates.items():
        for shape in ((3, 8), (2, 2, 6)):
            x = leaf(away_from_zero(torch.randn(*shape)))  # keeps relu's gate away from its kink
            g = torch.randn(*shape[:-1], shape[-1] // 2)
            a, b = x.chunk(2, dim=-1)
            y = a * gate(b)
            if name == "glu":
                assert torch.equal(y, F.glu(x, dim=-1))
            (y * g).sum().backward()
            cases.append({"name": name, "x": L(x), "g": L(g), "y": L(y), "dx": L(x.grad)})
    return cases


def rrelu_eval_cases():
    torch.manual_seed(25)
    cases = []
    for name, lower, upper in (("default", 1.0 / 8, 1.0 / 3), ("custom", 0.05, 0.45)):
        m = torch.nn.RReLU(lower, upper)
        m.eval()
        x = leaf(away_from_zero(torch.randn(4, 5)))
        g = torch.randn(4, 5)
        y = m(x)
        (y * g).sum().backward()
        cases.append({"name": name, "lower": lower, "upper": upper, "x": L(x), "g": L(g), "y": L(y),
                      "dx": L(x.grad)})
    return cases


def merge_cases():
    torch.manual_seed(26)
    cases = []
    specs = [
        ("sum", "sum", -1, [(4, 3), (4, 3), (4, 3)]),
        ("sum_broadcast", "sum", -1, [(4, 3), (3,), (4, 1)]),
        ("prod", "prod", -1, [(4, 3), (4, 3)]),
        ("prod_three_broadcast", "prod", -1, [(2, 3), (2, 3), (1, 3)]),
        ("cat_last", "cat", -1, [(4, 2), (4, 3), (4, 1)]),
        ("cat_axis1_3d", "cat", 1, [(2, 1, 3), (2, 2, 3)]),
        ("cat_axis0", "cat", 0, [(1, 3), (2, 3)]),
    ]
    for name, kind, axis, shapes in specs:
        xs = [leaf(torch.randn(*s)) for s in shapes]
        if kind == "sum":
            y = xs[0]
            for x in xs[1:]:
                y = y + x
        elif kind == "prod":
            y = xs[0]
            for x in xs[1:]:
                y = y * x
        else:
            y = torch.cat(xs, dim=axis)
        g = torch.randn(*y.shape)
        (y * g).sum().backward()
        cases.append({"name": name, "kind": kind, "axis": axis, "inputs": [L(x) for x in xs], "g": L(g), "y": L(y),
                      "dinputs": [L(x.grad) for x in xs]})
    return cases


def flatten_cases():
    torch.manual_seed(27)
    cases = []
    for start, end in ((1, -1), (0, 1), (2, 3), (1, 2), (-3, -2), (0, -1), (3, 3)):
        x = leaf(torch.randn(2, 3, 4, 5))
        y = torch.nn.Flatten(start, end)(x)
        g = torch.randn(*y.shape)
        (y * g).sum().backward()
        cases.append({"start_dim": start, "end_dim": end, "x": L(x), "g": L(g), "y": L(y), "dx": L(x.grad)})
    return cases


def names_case():
    """PyTorch's names for a Sequential of Sequentials (parameters, then buffers)."""
    net = torch.nn.Sequential(
        torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 3)),
        torch.nn.Sequential(torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 1)),
    )
    return {"parameters": [n for n, _ in net.named_parameters()], "buffers": [n for n, _ in net.named_buffers()],
            "modules": [n for n, _ in net.named_modules()]}


# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------

def loss_cases():
    torch.manual_seed(30)
    cases = []

    def record(name, kind, output0, target, options, fn):
        o = leaf(output0)
        loss = fn(o)
        loss.backward()
        c = {"name": name, "kind": kind, "reduction": options.get("reduction", "mean"), "output": L(o),
             "target": I(target) if target.dtype == torch.int64 else L(target), "loss": num(loss.detach()), "grad": L(o.grad)}
        for k in ("class_weights", "ignore_index", "pos_weight"):
            if k in options:
                c[k] = options[k]
        cases.append(c)

    # Regression: same shapes (PyTorch would broadcast mismatched shapes; Ember compares counts).
    for kind, fn in (("mse", F.mse_loss), ("l1", F.l1_loss)):
        for reduction in ("mean", "sum"):
            o = torch.randn(5, 3)
            t = torch.randn(5, 3)
            assert ((o - t).abs() > 1e-3).all()  # l1 away from its kink
            record(f"{kind}_{reduction}", kind, o, t, {"reduction": reduction},
                   lambda oo, t=t, r=reduction, fn=fn: fn(oo, t, reduction=r))
        o = torch.randn(6, 1) * 100
        t = torch.randn(6, 1) * 50
        record(f"{kind}_large", kind, o, t, {}, lambda oo, t=t, fn=fn: fn(oo, t))

    # Cross-entropy: logits [n, K], integer targets.
    k = 4
    weights = [0.5, 2.0, 1.0, 3.0]
    wt = torch.tensor(weights)
    logits = torch.randn(7, k) * 2
    t = torch.tensor([0, 3, 1, 2, 3, 0, 1])
    t_ign = torch.tensor([0, 3, -100, 2, -100, 0, 1])
    t_ign2 = torch.tensor([2, 3, 1, 2, 2, 0, 1])
    ce = [
        ("ce_mean", t, {}, {}),
        ("ce_sum", t, {"reduction": "sum"}, {"reduction": "sum"}),
        ("ce_class_weights", t, {"class_weights": weights}, {"weight": wt}),
        ("ce_class_weights_sum", t, {"class_weights": weights, "reduction": "sum"}, {"weight": wt, "reduction": "sum"}),
        ("ce_ignore_index_default", t_ign, {"ignore_index": -100}, {"ignore_index": -100}),
        ("ce_ignore_index_class", t_ign2, {"ignore_index": 2}, {"ignore_index": 2}),
        ("ce_ignore_index_sum", t_ign2, {"ignore_index": 2, "reduction": "sum"}, {"ignore_index": 2, "reduction": "sum"}),
        ("ce_weights_and_ignore", t_ign2, {"ignore_index": 2, "class_weights": weights},
         {"ignore_index": 2, "weight": wt}),
        ("ce_all_ignored_mean", torch.tensor([2, 2, 2, 2, 2, 2, 2]), {"ignore_index": 2}, {"ignore_index": 2}),
        ("ce_all_ignored_sum", torch.tensor([2, 2, 2, 2, 2, 2, 2]), {"ignore_index": 2, "reduction": "sum"},
         {"ignore_index": 2, "reduction": "sum"}),
        ("ce_all_ignored_weighted_mean", torch.tensor([-100] * 7), {"ignore_index": -100, "class_weights": weights},
         {"ignore_index": -100, "weight": wt}),
    ]
    for name, target, options, kwargs in ce:
        record(name, "cross_entropy", logits, target, options,
               lambda oo, target=target, kwargs=kwargs: F.cross_entropy(oo, target, **kwargs))
    large = torch.tensor([[100.0, -100.0, 50.0], [1000.0, 999.0, 0.0], [-80.0, -85.0, -90.0]])
    record("ce_large_logits", "cross_entropy", large, torch.tensor([2, 0, 1]), {},
           lambda oo: F.cross_entropy(oo, torch.tensor([2, 0, 1])))

    # BCE with logits.
    x = torch.randn(6, 3) * 2
    y = torch.bernoulli(torch.full((6, 3), 0.5))
    y[0, 0], y[1, 1] = 0.25, 0.75  # soft targets too
    pw_scalar = [2.5]
    pw_cols = [0.5, 3.0, 1.5]
    bce = [
        ("bce_mean", x, y, {}, {}),
        ("bce_sum", x, y, {"reduction": "sum"}, {"reduction": "sum"}),
        ("bce_pos_weight_scalar", x, y, {"pos_weight": pw_scalar}, {"pos_weight": torch.tensor(pw_scalar)}),
        ("bce_pos_weight_columns", x, y, {"pos_weight": pw_cols}, {"pos_weight": torch.tensor(pw_cols)}),
        ("bce_pos_weight_columns_sum", x, y, {"pos_weight": pw_cols, "reduction": "sum"},
         {"pos_weight": torch.tensor(pw_cols), "reduction": "sum"}),
    ]
    extreme_x = torch.tensor([[50.0, -50.0], [-50.0, 50.0], [50.0, -50.0], [30.0, -30.0]])
    extreme_y = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    bce += [
        ("bce_extreme_logits", extreme_x, extreme_y, {}, {}),
        ("bce_extreme_logits_pos_weight", extreme_x, extreme_y, {"pos_weight": [3.0, 0.25]},
         {"pos_weight": torch.tensor([3.0, 0.25])}),
        ("bce_extreme_logits_sum", extreme_x, extreme_y, {"reduction": "sum"}, {"reduction": "sum"}),
    ]
    for name, xx, yy, options, kwargs in bce:
        record(name, "bce_with_logits", xx, yy, options,
               lambda oo, yy=yy, kwargs=kwargs: F.binary_cross_entropy_with_logits(oo, yy, **kwargs))
    return cases


# --------------------------------------------------------------------------------------------
# Optimizers
# --------------------------------------------------------------------------------------------

# Every option of every optimizer, with PyTorch's names. `baseline` names the case this one
# must differ from (so that the option has a visible effect within the Swift tolerance).
OPTIMIZERS = [
    ("sgd", None, {"kind": "sgd", "lr": 0.1}),
    ("sgd_weight_decay", "sgd", {"kind": "sgd", "lr": 0.1, "weight_decay": 0.05}),
    ("sgd_momentum", "sgd", {"kind": "sgd", "lr": 0.1, "momentum": 0.9}),
    ("sgd_momentum_dampening", "sgd_momentum", {"kind": "sgd", "lr": 0.1, "momentum": 0.9, "dampening": 0.3}),
    ("sgd_nesterov", "sgd_momentum", {"kind": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("sgd_nesterov_weight_decay", "sgd_nesterov",
     {"kind": "sgd", "lr": 0.1, "momentum": 0.8, "nesterov": True, "weight_decay": 0.05}),
    ("sgd_all", "sgd_momentum_dampening",
     {"kind": "sgd", "lr": 0.05, "momentum": 0.7, "dampening": 0.3, "weight_decay": 0.02}),
    ("adam", None, {"kind": "adam", "lr": 0.01}),
    ("adam_betas_eps", "adam", {"kind": "adam", "lr": 0.01, "beta1": 0.8, "beta2": 0.95, "eps": 1e-3}),
    ("adam_weight_decay", "adam", {"kind": "adam", "lr": 0.01, "weight_decay": 0.1}),
    ("adam_amsgrad", "adam_amsgrad_off", {"kind": "adam", "lr": 0.01, "beta2": 0.9, "amsgrad": True}),
    ("adam_amsgrad_off", None, {"kind": "adam", "lr": 0.01, "beta2": 0.9}),
    ("adam_amsgrad_weight_decay", "adam_amsgrad",
     {"kind": "adam", "lr": 0.01, "beta2": 0.9, "amsgrad": True, "weight_decay": 0.1}),
    ("adamw", "adam", {"kind": "adamw", "lr": 0.01}),
    ("adamw_betas_eps", "adamw", {"kind": "adamw", "lr": 0.01, "beta1": 0.8, "beta2": 0.95, "eps": 1e-3}),
    ("adamw_weight_decay", "adamw", {"kind": "adamw", "lr": 0.01, "weight_decay": 0.5}),
    ("adamw_no_decay", "adamw", {"kind": "adamw", "lr": 0.01, "weight_decay": 0.0}),
    ("adamw_amsgrad", "adamw_amsgrad_off", {"kind": "adamw", "lr": 0.01, "beta2": 0.9, "amsgrad": True,
                                            "weight_decay": 0.1}),
    ("adamw_amsgrad_off", None, {"kind": "adamw", "lr": 0.01, "beta2": 0.9, "weight_decay": 0.1}),
    ("rmsprop", None, {"kind": "rmsprop", "lr": 0.01}),
    ("rmsprop_alpha_eps", "rmsprop", {"kind": "rmsprop", "lr": 0.01, "alpha": 0.9, "eps": 1e-3}),
    ("rmsprop_centered", "rmsprop", {"kind": "rmsprop", "lr": 0.01, "centered": True}),
    ("rmsprop_momentum", "rmsprop", {"kind": "rmsprop", "lr": 0.01, "momentum": 0.9}),
    ("rmsprop_weight_decay", "rmsprop", {"kind": "rmsprop", "lr": 0.01, "weight_decay": 0.1}),
    ("rmsprop_all", "rmsprop_centered", {"kind": "rmsprop", "lr": 0.005, "alpha": 0.95, "centered": True,
                                         "momentum": 0.5, "weight_decay": 0.05}),
    ("adagrad", None, {"kind": "adagrad", "lr": 0.1}),
    ("adagrad_lr_decay", "adagrad", {"kind": "adagrad", "lr": 0.1, "lr_decay": 0.2}),
    ("adagrad_initial_accumulator", "adagrad", {"kind": "adagrad", "lr": 0.1, "initial_accumulator_value": 0.5}),
    ("adagrad_weight_decay", "adagrad", {"kind": "adagrad", "lr": 0.1, "weight_decay": 0.2}),
    ("adagrad_eps", "adagrad", {"kind": "adagrad", "lr": 0.1, "eps": 1e-2}),
    ("adagrad_all", "adagrad_lr_decay", {"kind": "adagrad", "lr": 0.1, "lr_decay": 0.1,
                                         "initial_accumulator_value": 0.3, "weight_decay": 0.05, "eps": 1e-6}),
]

DEFAULTS = {
    "sgd": {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False},
    "adam": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False},
    "adamw": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 1e-2, "amsgrad": False},
    "rmsprop": {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": False},
    "adagrad": {"lr": 1e-2, "lr_decay": 0.0, "weight_decay": 0.0, "initial_accumulator_value": 0.0, "eps": 1e-10},
}


def full_config(cfg):
    """The configuration with every hyperparameter spelled out (Ember's defaults equal PyTorch's)."""
    out = {"kind": cfg["kind"]}
    out.update(DEFAULTS[cfg["kind"]])
    out.update({k: v for k, v in cfg.items() if k != "kind"})
    return out


def torch_optimizer(cfg, params):
    """The PyTorch optimizer of a full configuration; `params` may be a list of group dicts."""
    k = cfg["kind"]
    common = {"foreach": False}
    if k == "sgd":
        return torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"], dampening=cfg["dampening"],
                               weight_decay=cfg["weight_decay"], nesterov=cfg["nesterov"], **common)
    if k in ("adam", "adamw"):
        cls = torch.optim.Adam if k == "adam" else torch.optim.AdamW
        return cls(params, lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"],
                   weight_decay=cfg["weight_decay"], amsgrad=cfg["amsgrad"], **common)
    if k == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg["lr"], alpha=cfg["alpha"], eps=cfg["eps"],
                                   weight_decay=cfg["weight_decay"], momentum=cfg["momentum"],
                                   centered=cfg["centered"], **common)
    if k == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg["lr"], lr_decay=cfg["lr_decay"], weight_decay=cfg["weight_decay"],
                                   initial_accumulator_value=cfg["initial_accumulator_value"], eps=cfg["eps"],
                                   **common)
    raise ValueError(k)


def optimizer_inputs():
    """Two parameters and five gradients each. The gradient scale changes from step to step (so
    that AMSGrad's running maximum matters), and a few elements get tiny gradients (so that the
    placement of eps shows)."""
    torch.manual_seed(40)
    w0 = torch.randn(3, 4)
    b0 = torch.randn(4)
    scales = [1.0, 3.0, 0.2, 0.1, 1.5]
    w_grads = [torch.randn(3, 4) * s for s in scales]
    b_grads = [torch.randn(4) * s for s in scales]
    for g in w_grads:
        g[0, 0] = g[0, 0] * 1e-6
    for g in b_grads:
        g[1] = g[1] * 1e-7
    return {"w": (w0, w_grads), "b": (b0, b_grads)}


def run_torch(cfg, inputs, groups=None, changes=()):
    """Five steps; the parameters after each, and the state (by Ember name) after step 3."""
    params = {n: torch.nn.Parameter(v.clone()) for n, (v, _) in inputs.items()}
    names = list(params)
    if groups is None:
        opt = torch_optimizer(cfg, [params[n] for n in names])
    else:
        opt = torch_optimizer(cfg, [dict({"params": [params[n] for n in g["params"]]}, **g["options"])
                                    for g in groups])
    order = [p for group in opt.param_groups for p in group["params"]]
    after = {n: [] for n in names}
    state3 = None
    for step in range(5):
        for ch in changes:
            if ch["before_step"] == step + 1:
                opt.param_groups[ch["group"]][ch["name"]] = ch["value"]
        for n in names:
            params[n].grad = inputs[n][1][step].clone()
        opt.step()
        for n in names:
            after[n].append(L(params[n]))
        if step == 2:
            sd = opt.state_dict()["state"]
            state3 = {}
            for idx, st in sd.items():
                pname = next(n for n in names if params[n] is order[idx])
                for k, v in st.items():
                    if v is None:
                        continue
                    state3[f"{pname}.{k}"] = float(v) if v.dim() == 0 else L(v)
    return after, state3


def optimizer_fixture():
    inputs = optimizer_inputs()
    cases = []
    results = {}
    for name, baseline, cfg in OPTIMIZERS:
        full = full_config(cfg)
        after, state3 = run_torch(full, inputs)
        results[name] = after
        cases.append({"name": name, "baseline": baseline, "config": full, "after": after, "state_after_3": state3})
    # Every option has an effect the tests can see, and every step moves every parameter.
    for name, baseline, _ in OPTIMIZERS:
        for n in inputs:
            prev = inputs[n][0]
            for k in range(5):
                cur = torch.tensor(results[name][n][k])
                assert differs(cur, prev), f"{name}: {n} did not move at step {k + 1}"
                prev = cur
        if baseline is not None:
            a = torch.tensor(results[name]["w"][4])
            b = torch.tensor(results[baseline]["w"][4])
            assert differs(a, b), f"{name} is indistinguishable from {baseline}"

    # Parameter groups with different hyperparameters, and a change of one group's lr mid-way.
    group_cases = []
    for name, cfg, groups, changes in (
        ("sgd_groups", {"kind": "sgd", "lr": 0.1, "momentum": 0.9},
         [{"params": ["w"], "options": {}}, {"params": ["b"], "options": {"lr": 0.01, "momentum": 0.5}}],
         [{"before_step": 3, "group": 1, "name": "lr", "value": 0.2}]),
        ("adam_groups", {"kind": "adam", "lr": 0.01},
         [{"params": ["w"], "options": {"lr": 0.05}}, {"params": ["b"], "options": {"weight_decay": 0.1}}],
         [{"before_step": 4, "group": 0, "name": "lr", "value": 0.001}]),
        ("rmsprop_groups", {"kind": "rmsprop", "lr": 0.01},
         [{"params": ["b"], "options": {"centered": True}}, {"params": ["w"], "options": {"lr": 0.001}}], []),
    ):
        full = full_config(cfg)
        after, state3 = run_torch(full, inputs, groups=groups, changes=changes)
        # The groups behave differently from a single group with the base options.
        single, _ = run_torch(full, inputs)
        assert differs(torch.tensor(after["w"][4]), torch.tensor(single["w"][4])) or \
            differs(torch.tensor(after["b"][4]), torch.tensor(single["b"][4])), name
        group_cases.append({"name": name, "config": full, "groups": groups, "changes": changes, "after": after,
                            "state_after_3": state3})
    return {
        "params": [{"name": n, "value": L(v), "grads": [L(g) for g in gs]} for n, (v, gs) in inputs.items()],
        "cases": cases,
        "groups": group_cases,
    }


# --------------------------------------------------------------------------------------------
# Learning-rate schedules
# --------------------------------------------------------------------------------------------

PLATEAU_METRIC = [1.0, 0.9, 0.95, 0.95, 0.89, 0.9, 0.9, 0.9, 0.9, 0.85, 0.86, 0.86, 0.86, 0.86, 0.86]
PLATEAU_METRIC_MAX = [0.5, 0.6, 0.6, 0.59, 0.6, 0.65, 0.65, 0.64, 0.66, 0.66, 0.66, 0.66, 0.7, 0.7, 0.7]
# Improvements of 0.005 (below a relative threshold of 1e-2, above an absolute one of 1e-3), then
# of 0.0005 (below both).
PLATEAU_METRIC_SMALL = [1.0, 0.995, 0.99, 0.985, 0.98, 0.975, 0.97, 0.965, 0.9645, 0.964, 0.9635, 0.963, 0.9625,
                        0.962, 0.9615]


def schedule_fixture():
    steps = 15
    cases = []

    def run(name, opt_cfg, group_lrs, make_scheduler, schedule, metrics=None):
        params = [torch.nn.Parameter(torch.zeros(2)) for _ in group_lrs]
        full = full_config(opt_cfg)
        opt = torch_optimizer(full, [{"params": [p], "lr": lr} for p, lr in zip(params, group_lrs)])
        sched = make_scheduler(opt)

        def momenta():
            if full["kind"] in ("adam", "adamw"):
                return [g["betas"][0] for g in opt.param_groups]
            return [g.get("momentum", 0.0) for g in opt.param_groups]

        lrs = [[float(g["lr"]) for g in opt.param_groups]]
        moms = [momenta()]
        for k in range(steps):
            opt.step()
            if metrics is not None:
                sched.step(metrics[k])
            else:
                sched.step()
            lrs.append([float(g["lr"]) for g in opt.param_groups])
            moms.append(momenta())
        case = {"name": name, "optimizer": full, "group_lrs": group_lrs, "schedule": schedule, "lrs": lrs}
        if schedule["type"] == "one_cycle":
            case["momenta"] = moms
        if metrics is not None:
            case["metrics"] = metrics
        # The schedule changes the learning rate (the comparison is not vacuous).
        assert len({tuple(x) for x in lrs}) > 1, name
        cases.append(case)

    S = torch.optim.lr_scheduler
    sgd = {"kind": "sgd", "lr": 0.1}
    run("step", sgd, [0.1, 0.02], lambda o: S.StepLR(o, step_size=4, gamma=0.5),
        {"type": "step", "step_size": 4, "gamma": 0.5})
    run("step_default_gamma", sgd, [0.3], lambda o: S.StepLR(o, step_size=3),
        {"type": "step", "step_size": 3, "gamma": 0.1})
    run("multiplicative", sgd, [0.1, 0.05], lambda o: S.MultiplicativeLR(o, lr_lambda=lambda e: 0.9),
        {"type": "multiplicative", "factor": 0.9})
    # MultiplicativeLR with a factor that depends on the epoch (Ember: a multiplicative lambda).
    run("multiplicative_lambda", sgd, [0.1], lambda o: S.MultiplicativeLR(o, lr_lambda=lambda e: 0.9 if e % 2 else 0.7),
        {"type": "multiplicative_lambda", "odd": 0.9, "even": 0.7})
    run("lambda", sgd, [0.1, 0.01], lambda o: S.LambdaLR(o, lr_lambda=lambda e: 0.95 ** e),
        {"type": "lambda", "base": 0.95})
    run("cosine", sgd, [0.1, 0.02], lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
        {"type": "cosine", "t_max": 10, "eta_min": 0.001})
    run("cosine_short", sgd, [0.1], lambda o: S.CosineAnnealingLR(o, T_max=4),
        {"type": "cosine", "t_max": 4, "eta_min": 0.0})
    for opt_name, opt_cfg in (("sgd", {"kind": "sgd", "lr": 0.1, "momentum": 0.9}),
                              ("adam", {"kind": "adam", "lr": 0.01}),
                              ("adamw", {"kind": "adamw", "lr": 0.01}),
                              ("rmsprop", {"kind": "rmsprop", "lr": 0.01, "momentum": 0.5})):
        for strategy in ("cos", "linear"):
            if opt_name in ("adamw", "rmsprop") and strategy == "linear":
                continue
            # total_steps 15: the 15th step reaches last_epoch == total_steps, which PyTorch allows.
            run(f"one_cycle_{strategy}_{opt_name}", opt_cfg, [0.01, 0.01],
                lambda o, s=strategy: S.OneCycleLR(o, max_lr=0.5, total_steps=steps, pct_start=0.3,
                                                   anneal_strategy=s),
                {"type": "one_cycle", "max_lr": 0.5, "total_steps": steps, "pct_start": 0.3,
                 "cosine": strategy == "cos", "div_factor": 25.0, "final_div_factor": 1e4, "cycle_momentum": True,
                 "base_momentum": 0.85, "max_momentum": 0.95})
    run("one_cycle_options", {"kind": "sgd", "lr": 0.1, "momentum": 0.9}, [0.1],
        lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=20, pct_start=0.4, div_factor=10, final_div_factor=100,
                               base_momentum=0.7, max_momentum=0.9),
        {"type": "one_cycle", "max_lr": 1.0, "total_steps": 20, "pct_start": 0.4, "cosine": True, "div_factor": 10.0,
         "final_div_factor": 100.0, "cycle_momentum": True, "base_momentum": 0.7, "max_momentum": 0.9})
    run("one_cycle_no_momentum_adagrad", {"kind": "adagrad", "lr": 0.1}, [0.1],
        lambda o: S.OneCycleLR(o, max_lr=0.2, total_steps=16, cycle_momentum=False, anneal_strategy="linear"),
        {"type": "one_cycle", "max_lr": 0.2, "total_steps": 16, "pct_start": 0.3, "cosine": False, "div_factor": 25.0,
         "final_div_factor": 1e4, "cycle_momentum": False, "base_momentum": 0.85, "max_momentum": 0.95})

    def plateau(name, metrics, group_lrs, **kw):
        schedule = {"type": "plateau", "mode": kw.get("mode", "min"), "factor": kw.get("factor", 0.1),
                    "patience": kw.get("patience", 10), "threshold": kw.get("threshold", 1e-4),
                    "threshold_mode": kw.get("threshold_mode", "rel"), "cooldown": kw.get("cooldown", 0),
                    "min_lr": kw.get("min_lr", 0.0), "eps": kw.get("eps", 1e-8)}
        run(name, sgd, group_lrs, lambda o: S.ReduceLROnPlateau(o, **kw), schedule, metrics)

    plateau("plateau_min_rel", PLATEAU_METRIC, [0.1, 0.01], mode="min", factor=0.5, patience=2)
    plateau("plateau_min_abs", PLATEAU_METRIC, [0.1], mode="min", factor=0.5, patience=1, threshold=0.02,
            threshold_mode="abs")
    plateau("plateau_max_rel", PLATEAU_METRIC_MAX, [0.1], mode="max", factor=0.5, patience=1, threshold=0.05)
    plateau("plateau_max_abs", PLATEAU_METRIC_MAX, [0.1], mode="max", factor=0.3, patience=1, threshold=0.01,
            threshold_mode="abs")
    plateau("plateau_cooldown", PLATEAU_METRIC, [0.1], factor=0.5, patience=0, cooldown=2)
    plateau("plateau_min_lr", PLATEAU_METRIC, [0.1, 0.05], factor=0.2, patience=0, min_lr=0.01)
    plateau("plateau_threshold_rel_large", PLATEAU_METRIC_SMALL, [0.1], factor=0.5, patience=1, threshold=1e-2)
    plateau("plateau_threshold_abs_small", PLATEAU_METRIC_SMALL, [0.1], factor=0.5, patience=1, threshold=1e-3,
            threshold_mode="abs")
    # eps: a reduction smaller than eps is skipped.
    plateau("plateau_eps", PLATEAU_METRIC, [1e-3], factor=0.5, patience=0, eps=2e-4)
    return {"steps": steps, "cases": cases}


# --------------------------------------------------------------------------------------------

def write(name, obj):
    write_json(os.path.join(OUT_DIR, name), obj)


def main():
    header = provenance("tools/golden/generate_nn.py")
    layers = dict(header)
    layers.update({
        "batch_norm": batch_norm_cases(),
        "layer_norm": layer_norm_cases(),
        "embedding": embedding_case(),
        "prelu": prelu_cases(),
        "glu": glu_cases(),
        "rrelu_eval": rrelu_eval_cases(),
        "merge": merge_cases(),
        "flatten": flatten_cases(),
        "names": names_case(),
    })
    losses = dict(header)
    losses["cases"] = loss_cases()
    optim = dict(header)
    optim.update(optimizer_fixture())
    schedules = dict(header)
    schedules.update(schedule_fixture())
    write("nn_layers.json", layers)
    write("nn_losses.json", losses)
    write("nn_optim.json", optim)
    write("nn_schedules.json", schedules)


if __name__ == "__main__":
    main()
