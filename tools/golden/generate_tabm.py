#!/usr/bin/env python3
"""TabM golden values from the `tabm` package (version 0.0.3, with rtdl_num_embeddings 0.0.12), for
TabMGoldenTests.

    pip install tabm
    python3 tools/golden/generate_tabm.py

Four small models built with `tabm.TabM.make` (k = 4 members, 2 blocks of width 8, dropout 0),
whose module names are the node ids of `Architectures.tabm`, so that the state dicts load by
name into the Ember models:
  * "tabm":           arch_type "tabm", 3 numeric features and factors of 2 and 3 levels,
                      3 classes (cross-entropy);
  * "mini_periodic":  arch_type "tabm-mini", PeriodicEmbeddings(d_embedding 4, n_frequencies 5,
                      frequency_init_scale 0.1, lite False), the same features, regression (MSE);
  * "linear_relu":    arch_type "tabm", LinearReLUEmbeddings(d_embedding 4), numeric features only,
                      3 classes;
  * "piecewise":      arch_type "tabm", PiecewiseLinearEmbeddings(compute_bins(x_num, n_bins 4),
                      d_embedding 4, activation False, version "B"), numeric features and factors,
                      3 classes (the bins are buffers of the state dict; Ember computes them from
                      the same training data).
On 10 rows, each case records the members' outputs [10, 4, d_out] in evaluation mode, the
ensemble prediction (the mean of the members' softmax probabilities, or of their outputs), the
loss over members (the loss of the members' outputs folded into the batch with each target
repeated k times: the mean over members of the per-member mean loss, as mlr3torch and the
package's paper code train TabM), the gradient of that loss w.r.t. every parameter, and after
one AdamW step (lr 1e-2, weight decay 1e-2, on the whole batch) the weights and the outputs.

Writes to Tests/EmberNNTests/Fixtures/
    tabm_<case>_initial.safetensors  the state dict before the step
    tabm_<case>_step.safetensors     the state dict after the step
    tabm.json                        data, outputs, losses and gradients of every case
CPU, float32, one thread, fixed seeds; float32 values in JSON are exact (golden_common.L).
"""
import pathlib

import rtdl_num_embeddings
import tabm
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from golden_common import L, header, write_json

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "Tests" / "EmberNNTests" / "Fixtures"
N, K, CARDINALITIES, LR, WEIGHT_DECAY = 10, 4, [2, 3], 1e-2, 1e-2

torch.set_num_threads(1)
torch.set_default_dtype(torch.float32)


def model(case, x_num):
    common = dict(k=K, n_blocks=2, d_block=8, dropout=0.0)
    if case == "tabm":
        return tabm.TabM.make(n_num_features=3, cat_cardinalities=CARDINALITIES, d_out=3, arch_type="tabm", **common)
    if case == "mini_periodic":
        emb = rtdl_num_embeddings.PeriodicEmbeddings(3, 4, n_frequencies=5, frequency_init_scale=0.1, lite=False)
        return tabm.TabM.make(n_num_features=3, cat_cardinalities=CARDINALITIES, d_out=1, num_embeddings=emb,
                              arch_type="tabm-mini", **common)
    if case == "piecewise":
        emb = rtdl_num_embeddings.PiecewiseLinearEmbeddings(rtdl_num_embeddings.compute_bins(x_num, n_bins=4), 4,
                                                            activation=False, version="B")
        return tabm.TabM.make(n_num_features=3, cat_cardinalities=CARDINALITIES, d_out=3, num_embeddings=emb,
                              arch_type="tabm", **common)
    emb = rtdl_num_embeddings.LinearReLUEmbeddings(3, 4)
    return tabm.TabM.make(n_num_features=3, d_out=3, num_embeddings=emb, arch_type="tabm", **common)


def run(case, seed):
    g = torch.Generator().manual_seed(seed + 100)
    x_num = torch.randn(N, 3, generator=g)
    torch.manual_seed(seed)
    net = model(case, x_num)
    categorical = case != "linear_relu"
    x_cat = torch.stack([torch.randint(0, c, (N,), generator=g) for c in CARDINALITIES], 1) if categorical else None
    regression = case == "mini_periodic"
    y = torch.randn(N, generator=g) if regression else torch.randint(0, 3, (N,), generator=g)

    def outputs():
        net.eval()
        with torch.no_grad():
            return net(x_num, x_cat)

    def loss_of(out):
        flat = out.flatten(0, 1)
        target = y.repeat_interleave(K)
        return F.mse_loss(flat, target.unsqueeze(1)) if regression else F.cross_entropy(flat, target)

    initial = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    before = outputs()
    prediction = before.mean(1) if regression else before.softmax(-1).mean(1)
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    opt.zero_grad()
    loss = loss_of(net(x_num, x_cat))
    loss.backward()
    grads = {name: L(p.grad) for name, p in net.named_parameters()}
    opt.step()
    after = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    for name, _ in net.named_parameters():
        assert not torch.equal(initial[name], after[name]), name
    save_file(initial, str(FIXTURES / f"tabm_{case}_initial.safetensors"))
    save_file(after, str(FIXTURES / f"tabm_{case}_step.safetensors"))
    print(f"wrote tabm_{case}_initial/step.safetensors")
    out = {"name": case, "x_num": L(x_num), "target": L(y.float()), "members_before": L(before),
           "prediction_before": L(prediction), "loss": L(loss.detach()), "gradients": grads, "members_after": L(outputs())}
    if categorical:
        out["x_cat"] = L(x_cat.float())
    return out


def main():
    cases = [run("tabm", 1), run("mini_periodic", 2), run("linear_relu", 3), run("piecewise", 4)]
    write_json(str(FIXTURES / "tabm.json"),
               {**header("tools/golden/generate_tabm.py"), "tabm_version": tabm.__version__,
                "rtdl_num_embeddings_version": rtdl_num_embeddings.__version__,
                "k": K, "cardinalities": CARDINALITIES, "lr": LR, "weight_decay": WEIGHT_DECAY, "cases": cases})


if __name__ == "__main__":
    main()
