#!/usr/bin/env python3
"""Golden values for the losses beyond mse, l1, cross-entropy and BCE (those are in
generate_nn.py): huber and smooth L1 (torch.nn.functional), cross-entropy and BCE with label
smoothing, Poisson NLL, the softmax focal loss and torchvision's sigmoid focal loss, written with torch ops
(torchvision's `sigmoid_focal_loss` is these lines; the softmax focal loss of Lin et al. 2017 has
no PyTorch function), the quantile (pinball) loss of several levels at once (no PyTorch function
either: torch ops below) and multilabel BCE (torch.nn.BCEWithLogitsLoss with one pos_weight per
label). Value and gradient per case, PyTorch (CPU, one thread, float32, fixed seed).

Writes
    Tests/EmberNNTests/Fixtures/nn_losses_extra.json

Conventions as in generate_nn.py (exact float64 values of float32 tensors; integer targets as
numbers). Test points are kept away from the kinks (|d| = delta or beta). CI does not need PyTorch:
the fixture is committed.

    python3 tools/golden/generate_losses.py
"""

import os

import torch
import torch.nn.functional as F

from golden_common import L, ROOT, header, write_json

torch.set_num_threads(1)
torch.set_default_dtype(torch.float32)
OUT = os.path.join(ROOT, "Tests", "EmberNNTests", "Fixtures", "nn_losses_extra.json")


def softmax_focal(x, target, gamma, weight=None, reduction="mean"):
    logp = F.log_softmax(x, dim=1).gather(1, target[:, None])[:, 0]
    w = weight[target] if weight is not None else torch.ones_like(logp)
    loss = -w * (1 - logp.exp()) ** gamma * logp
    return loss.mean() if reduction == "mean" else loss.sum()


def sigmoid_focal(x, y, gamma, alpha, reduction="mean"):
    # torchvision.ops.sigmoid_focal_loss
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss.mean() if reduction == "mean" else loss.sum()


def quantile_loss(out, y, quantiles, reduction="mean"):
    # out [n, K] (one column per level), y [n]: max(q d, (q - 1) d) with d = y - out, per element.
    q = torch.tensor(quantiles)
    d = y[:, None] - out
    loss = torch.maximum(q * d, (q - 1) * d)
    return loss.mean() if reduction == "mean" else loss.sum()


def main():
    torch.manual_seed(31)
    cases = []

    def record(name, kind, output0, target, options, fn):
        o = output0.clone().requires_grad_(True)
        loss = fn(o)
        loss.backward()
        c = {"name": name, "kind": kind, "reduction": options.get("reduction", "mean"), "output": L(o),
             "target": target.tolist() if target.dtype == torch.int64 else L(target),
             "loss": float(loss.detach()), "grad": L(o.grad)}
        for k in ("class_weights", "ignore_index", "pos_weight", "label_smoothing", "delta", "beta", "gamma", "alpha",
                  "log_input", "full", "eps", "quantiles"):
            if k in options:
                c[k] = options[k]
        cases.append(c)

    # Huber and smooth L1: differences on both sides of delta / beta, away from it.
    o = torch.randn(6, 2) * 2
    t = torch.randn(6, 2)
    for kind, key, fn, values in (("huber", "delta", F.huber_loss, (1.0, 0.5, 2.0)),
                                  ("smooth_l1", "beta", F.smooth_l1_loss, (1.0, 0.3, 0.0))):
        for v in values:
            d = (o - t).abs()
            assert ((d - v).abs() > 1e-2).all() and (d > 1e-3).all()
            for reduction in ("mean", "sum"):
                kwargs = {key: v, "reduction": reduction}
                record(f"{kind}_{key}{v}_{reduction}", kind, o, t, {key: v, "reduction": reduction},
                       lambda oo, kwargs=kwargs, fn=fn: fn(oo, t, **kwargs))

    # Cross-entropy with label smoothing: alone, with class weights, ignore_index, sum.
    k = 4
    weights = [0.5, 2.0, 1.0, 3.0]
    wt = torch.tensor(weights)
    logits = torch.randn(7, k) * 2
    y = torch.tensor([0, 3, 1, 2, 3, 0, 1])
    y_ign = torch.tensor([0, 3, 2, 2, 1, 0, 2])
    for eps in (0.1, 0.35):
        record(f"ce_smooth{eps}", "cross_entropy", logits, y, {"label_smoothing": eps},
               lambda oo, eps=eps: F.cross_entropy(oo, y, label_smoothing=eps))
    record("ce_smooth_weights", "cross_entropy", logits, y, {"label_smoothing": 0.2, "class_weights": weights},
           lambda oo: F.cross_entropy(oo, y, weight=wt, label_smoothing=0.2))
    record("ce_smooth_weights_sum", "cross_entropy", logits, y,
           {"label_smoothing": 0.2, "class_weights": weights, "reduction": "sum"},
           lambda oo: F.cross_entropy(oo, y, weight=wt, label_smoothing=0.2, reduction="sum"))
    record("ce_smooth_ignore", "cross_entropy", logits, y_ign, {"label_smoothing": 0.2, "ignore_index": 2},
           lambda oo: F.cross_entropy(oo, y_ign, ignore_index=2, label_smoothing=0.2))
    record("ce_smooth_weights_ignore", "cross_entropy", logits, y_ign,
           {"label_smoothing": 0.2, "ignore_index": 2, "class_weights": weights},
           lambda oo: F.cross_entropy(oo, y_ign, weight=wt, ignore_index=2, label_smoothing=0.2))

    # BCE with label smoothing: the targets of two-class label smoothing, y (1 - eps) + eps / 2.
    x = torch.randn(6, 1) * 2
    yb = torch.bernoulli(torch.full((6, 1), 0.5))
    for eps in (0.1, 0.4):
        record(f"bce_smooth{eps}", "bce_with_logits", x, yb, {"label_smoothing": eps},
               lambda oo, eps=eps: F.binary_cross_entropy_with_logits(oo, yb * (1 - eps) + eps / 2))
    record("bce_smooth_pos_weight", "bce_with_logits", x, yb, {"label_smoothing": 0.2, "pos_weight": [2.5]},
           lambda oo: F.binary_cross_entropy_with_logits(oo, yb * 0.8 + 0.1, pos_weight=torch.tensor([2.5])))

    # Softmax focal loss: gamma 0 is cross-entropy; class weights as alpha per class.
    for gamma in (0.0, 0.5, 1.0, 2.0):
        record(f"focal_gamma{gamma}", "focal", logits, y, {"gamma": gamma},
               lambda oo, gamma=gamma: softmax_focal(oo, y, gamma))
    record("focal_weights", "focal", logits, y, {"gamma": 2.0, "class_weights": weights},
           lambda oo: softmax_focal(oo, y, 2.0, wt))
    record("focal_weights_sum", "focal", logits, y, {"gamma": 1.5, "class_weights": weights, "reduction": "sum"},
           lambda oo: softmax_focal(oo, y, 1.5, wt, "sum"))
    large = torch.tensor([[30.0, -30.0, 0.0], [-20.0, 25.0, 5.0]])
    record("focal_confident", "focal", large, torch.tensor([0, 1]), {"gamma": 2.0},
           lambda oo: softmax_focal(oo, torch.tensor([0, 1]), 2.0))

    # Sigmoid focal loss (torchvision's defaults gamma 2, alpha 0.25), soft targets too.
    xs = torch.randn(5, 3) * 2
    ys = torch.bernoulli(torch.full((5, 3), 0.5))
    ys[0, 0], ys[1, 1] = 0.25, 0.75
    for gamma, alpha in ((2.0, 0.25), (0.0, 0.25), (0.5, -1.0), (2.0, 0.9)):
        record(f"sigmoid_focal_gamma{gamma}_alpha{alpha}", "sigmoid_focal", xs, ys, {"gamma": gamma, "alpha": alpha},
               lambda oo, gamma=gamma, alpha=alpha: sigmoid_focal(oo, ys, gamma, alpha))
    record("sigmoid_focal_sum", "sigmoid_focal", xs, ys, {"gamma": 2.0, "alpha": 0.25, "reduction": "sum"},
           lambda oo: sigmoid_focal(oo, ys, 2.0, 0.25, "sum"))

    # Poisson NLL: log-rate outputs and rate outputs, Stirling's term, counts with zeros and ones.
    counts = torch.tensor([[0.0], [1.0], [3.0], [7.0], [2.0], [12.0]])
    log_rates = torch.randn(6, 1)
    rates = torch.rand(6, 1) * 5 + 0.1
    for log_input, out in ((True, log_rates), (False, rates)):
        for full in (False, True):
            for reduction in ("mean", "sum"):
                record(f"poisson_log{log_input}_full{full}_{reduction}", "poisson_nll", out, counts,
                       {"log_input": log_input, "full": full, "reduction": reduction},
                       lambda oo, li=log_input, fu=full, r=reduction: F.poisson_nll_loss(oo, counts, log_input=li, full=fu,
                                                                                          reduction=r))

    # Quantile loss: three levels (and one), mean and sum; two outputs equal their target exactly
    # (levels 0.1 and 0.9), where torch.maximum splits the gradient evenly (0.5 - q).
    torch.manual_seed(47)
    yq = torch.randn(6) * 2
    oq = torch.randn(6, 3) * 2
    oq[0, 0] = yq[0]
    oq[1, 2] = yq[1]
    levels = [0.1, 0.5, 0.9]
    for reduction in ("mean", "sum"):
        record(f"quantile_3levels_{reduction}", "quantile", oq, yq, {"quantiles": levels, "reduction": reduction},
               lambda oo, r=reduction: quantile_loss(oo, yq, levels, r))
    record("quantile_1level", "quantile", oq[:, 2:].clone(), yq, {"quantiles": [0.75]},
           lambda oo: quantile_loss(oo, yq, [0.75]))
    uneven = [0.05, 0.3, 0.6, 0.99]
    o4 = torch.randn(6, 4) * 2
    record("quantile_4levels", "quantile", o4, yq, {"quantiles": uneven}, lambda oo: quantile_loss(oo, yq, uneven))

    # Multilabel BCE: logits [n, K] against 0/1 targets [n, K], nn.BCEWithLogitsLoss with one
    # pos_weight per label, mean and sum, and without pos_weight.
    xm = torch.randn(7, 4) * 2
    ym = torch.bernoulli(torch.full((7, 4), 0.4))
    pw = [0.5, 1.0, 2.0, 4.0]
    for reduction in ("mean", "sum"):
        module = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pw), reduction=reduction)
        record(f"bce_multilabel_pos_weight_{reduction}", "bce_with_logits", xm, ym, {"pos_weight": pw, "reduction": reduction},
               lambda oo, m=module: m(oo, ym))
    record("bce_multilabel", "bce_with_logits", xm, ym, {}, lambda oo: torch.nn.BCEWithLogitsLoss()(oo, ym))

    fixture = header("tools/golden/generate_losses.py")
    fixture["cases"] = cases
    write_json(OUT, fixture)


if __name__ == "__main__":
    main()
