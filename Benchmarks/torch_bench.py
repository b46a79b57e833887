"""The PyTorch side of the benchmark harness: the same measurements as ember-bench, the same
options, one JSON line per result (Benchmarks/run.py runs it once per measurement).

    python3 torch_bench.py mlp --data FILE --n 2000 --p 1000 --layers 4 --width 100 --opt sgd --epochs 20 [--lr 1e-4] [--flush 1]
    python3 torch_bench.py fashion --dir DIR --model mlp|lenet [--threads 1] [--seed 1] [--epochs 2] [--save-init FILE]
    python3 torch_bench.py ftt [--n 4601] [--p 57] [--blocks 1] [--d-token 32] [--heads 4] [--epochs 2] [--warmup 1]
    python3 torch_bench.py resnet [--depth 18] [--size 32] [--batch 32] [--steps 10] [--warmup 1] [--threads 1]
                                  [--opt sgd|adam] [--mode train|predict]
    python3 torch_bench.py core
    python3 torch_bench.py transforms [--threads 1]

Denormals are flushed (torch.set_flush_denormal), as Ember does: PyTorch's best, not its default;
`--flush 0` leaves them alone (the long-run denormal benchmark runs both).
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn


def peak_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def emit(**fields):
    fields.update(system="pytorch", blas_core="mkl" if torch.backends.mkl.is_available() else "unknown",
                  threads=torch.get_num_threads(), peak_rss_mib=peak_rss_mib(), version=torch.__version__)
    print(json.dumps(fields), flush=True)


def mlp_bench(a):
    values = np.fromfile(a.data, dtype="<f4")
    x = torch.from_numpy(values[: a.n * a.p].reshape(a.n, a.p).copy())
    y = torch.from_numpy(values[a.n * a.p:].reshape(a.n, 1).copy())
    torch.manual_seed(1)
    layers, width_in = [], a.p
    for _ in range(a.layers):
        layers += [nn.Linear(width_in, a.width), nn.ReLU()]
        width_in = a.width
    model = nn.Sequential(*layers, nn.Linear(width_in, 1))
    opt = {"sgd": torch.optim.SGD, "adamw": torch.optim.AdamW}[a.opt](model.parameters(), lr=a.lr)
    loss_fn = nn.MSELoss()
    seconds, losses = [], []
    for epoch in range(a.warmup + a.epochs):
        if epoch == a.warmup:
            seconds.clear()
            start_all = time.perf_counter()
        losses.clear()
        for start in range(0, a.n, 32):
            t = time.perf_counter()
            xb, yb = x[start:start + 32], y[start:start + 32]
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            seconds.append(time.perf_counter() - t)
            losses.append(loss.item() * len(xb))
    total = time.perf_counter() - start_all
    window = max(1, a.epochs // 10) * (len(seconds) // a.epochs)
    state = list(model.parameters()) + [v for s in opt.state.values() for v in s.values() if v.dim() > 0]
    subnormal = sum(((v.abs() < torch.finfo(torch.float32).tiny) & (v != 0)).sum().item() for v in state)
    emit(median_batch_ms=statistics.median(seconds) * 1e3, mean_batch_ms=total / len(seconds) * 1e3,
         batches=len(seconds), first_ms=statistics.median(seconds[:window]) * 1e3,
         last_ms=statistics.median(seconds[-window:]) * 1e3, subnormal=subnormal, flush=bool(a.flush),
         final_loss=sum(losses) / a.n)


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def fashion_bench(a):
    cnn = a.model == "lenet"

    def load(part):
        pixels = np.fromfile(f"{a.dir}/{part}-images.u8", dtype=np.uint8)
        labels = torch.from_numpy(np.fromfile(f"{a.dir}/{part}-labels.u8", dtype=np.uint8).astype(np.int64))
        x = torch.from_numpy(pixels).float().div_(255).reshape((-1, 1, 28, 28) if cnn else (-1, 784))
        return x, labels

    (x, y), (xt, yt) = load("train"), load("test")
    torch.manual_seed(a.seed)
    model = lenet() if cnn else nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                                              nn.Linear(128, 10))
    if a.save_init:  # the initial weights under Ember's parameter names, for ember-bench's --init
        from safetensors.torch import save_file
        names = ["conv1", "conv2", "fc1", "fc2", "head"] if cnn else ["linear_0", "linear_1", "head"]
        layers = [m for m in model if isinstance(m, (nn.Conv2d, nn.Linear))]
        save_file({f"{name}.{kind}": getattr(m, kind).detach().contiguous() for name, m in zip(names, layers)
                   for kind in ("weight", "bias")}, a.save_init)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for _ in range(a.epochs):
        order = torch.randperm(len(y))
        for start in range(0, len(y), 128):
            rows = order[start:start + 128]
            opt.zero_grad()
            loss_fn(model(x[rows]), y[rows]).backward()
            opt.step()
    t1 = time.perf_counter()
    model.eval()
    with torch.inference_mode():
        predicted = torch.cat([model(xt[s:s + 128]).argmax(1) for s in range(0, len(yt), 128)])
    t2 = time.perf_counter()
    emit(train_images_per_s=a.epochs * len(y) / (t1 - t0), predict_images_per_s=len(yt) / (t2 - t1),
         accuracy=(predicted == yt).double().mean().item())


def ftt_bench(a):
    """rtdl's FT-Transformer (the reference modules of tools/golden/generate_attention.py): numeric
    tokenizer, CLS token appended last, pre-norm blocks (the first without attention norm) with
    nn.MultiheadAttention and a ReGLU FFN (d_hidden = d_token * 4/3), head LayerNorm → ReLU →
    Linear(d_token, 1); BCE-with-logits; batch 32; AdamW lr 1e-4; not shuffled; the default
    dropouts (attention 0.2, FFN 0.1, residual 0), as ember-bench ftt."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "golden"))
    import generate_attention as g
    torch.manual_seed(1)
    x = torch.rand(a.n, a.p) * 2 - 1
    y = (x[:, :1] > 0).float()
    d, hidden = a.d_token, int(a.d_token * 4 / 3)

    class FTT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tokenizer = g.NumericalFeatureTokenizer(a.p, d, True)
            self.cls = g.CLSToken(d)
            self.blocks = nn.Sequential(*[g.TransformerBlock(d, a.heads, 0.2, hidden, 0.1, 0.0, "reglu", True, i == 0)
                                          for i in range(a.blocks)])
            self.head = nn.Sequential(nn.LayerNorm(d), nn.ReLU(), nn.Linear(d, 1))

        def forward(self, xb):
            return self.head(self.blocks(self.cls(self.tokenizer(xb)))[:, -1])

    model = FTT()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = nn.BCEWithLogitsLoss()
    seconds = []
    for epoch in range(a.warmup + a.epochs):
        if epoch == a.warmup:
            seconds.clear()
        losses = []
        for start in range(0, a.n, 32):
            t = time.perf_counter()
            opt.zero_grad()
            loss = loss_fn(model(x[start:start + 32]), y[start:start + 32])
            loss.backward()
            opt.step()
            seconds.append(time.perf_counter() - t)
            losses.append(loss.item() * len(x[start:start + 32]))
    emit(median_batch_ms=statistics.median(seconds) * 1e3, batches=len(seconds), final_loss=sum(losses) / a.n)


def resnet_bench(a):
    """torchvision's ResNet (--depth 18, 34, 50; 10 classes) on random images [3, size, size],
    batch --batch, --opt sgd (momentum 0.9, lr 0.01; the default) or adam (lr 1e-3), cross-entropy:
    median ms per training step over --steps after --warmup steps, as ember-bench resnet.
    --mode predict times the eval-mode forward and softmax of --steps batches instead (no grad),
    median over 5 rounds after one warm-up round."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "golden"))
    from golden_common import import_torchvision
    torchvision = import_torchvision()
    torch.manual_seed(1)
    model = getattr(torchvision.models, f"resnet{a.depth}")(num_classes=10)
    if a.mode == "predict":
        model.eval()
        xs = [torch.rand(a.batch, 3, a.size, a.size) for _ in range(a.steps)]
        rounds = []
        with torch.no_grad():
            for r in range(6):
                t = time.perf_counter()
                for x in xs:
                    torch.softmax(model(x), dim=1)
                if r > 0:
                    rounds.append(time.perf_counter() - t)
        per_batch = statistics.median(rounds) / a.steps
        emit(mode="predict", median_batch_ms=per_batch * 1e3, images_per_s=a.batch / per_batch)
        return
    if a.opt == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.rand(a.batch, 3, a.size, a.size)
    y = torch.arange(a.batch) % 10
    model.train()
    seconds, fwdbwd = [], []
    for step in range(a.warmup + a.steps):
        t = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        t1 = time.perf_counter()
        opt.step()
        if step >= a.warmup:
            seconds.append(time.perf_counter() - t)
            fwdbwd.append(t1 - t)
    step_s = statistics.median(seconds)
    emit(mode="train", median_step_ms=step_s * 1e3, images_per_s=a.batch / step_s,
         median_fwdbwd_ms=statistics.median(fwdbwd) * 1e3, steps=len(seconds), final_loss=loss.item())


def seconds_per_call(body):
    """The median of 7 rounds, each of enough calls to last >= 50 ms (as ember-bench does)."""
    body()
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            body()
        if time.perf_counter() - start >= 0.05:
            break
        calls *= 2
    rounds = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(calls):
            body()
        rounds.append((time.perf_counter() - start) / calls)
    return statistics.median(rounds)


def core_bench(a):
    for m, k, n in [(32, 1000, 100), (32, 400, 400), (128, 784, 256), (1024, 1024, 1024)]:
        x, w = torch.rand(m, k) * 2 - 1, torch.rand(k, n) * 2 - 1
        s = seconds_per_call(lambda: torch.matmul(x, w))
        emit(bench=f"matmul {m}x{k}·{k}x{n}", gflops=2 * m * n * k / s / 1e9)
    x, y = torch.rand(32, 100) * 2 - 1, torch.rand(32, 100) * 2 - 1
    emit(bench="add 32x100", ns=seconds_per_call(lambda: torch.add(x, y)) * 1e9)
    emit(bench="relu 32x100", ns=seconds_per_call(lambda: torch.relu(x)) * 1e9)
    weight = (torch.rand(100, 100) * 0.2 - 0.1).requires_grad_()
    bias = (torch.rand(100) * 0.2 - 0.1).requires_grad_()

    def step():
        torch.relu(nn.functional.linear(x, weight, bias)).sum().backward()
        weight.grad = None
        bias.grad = None

    emit(bench="linear+relu+backward 32x100·100x100", ns=seconds_per_call(step) * 1e9)


def transforms_bench(a):
    """torchvision v2: RandomCrop(32, padding=4) + RandomHorizontalFlip() on 128 images [3, 32, 32],
    per image as a data loader applies them, and on the whole batch at once (one crop and one flip
    for all 128 images: less work than per-image augmentation, shown as a bound)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "golden"))
    from golden_common import import_torchvision
    import_torchvision()
    from torchvision.transforms import v2
    pipeline = v2.Compose([v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()])
    batch = torch.rand(128, 3, 32, 32)
    per_image = seconds_per_call(lambda: torch.stack([pipeline(x) for x in batch]))
    emit(bench="random_crop(32, padding 4) + hflip, 128x3x32x32", threads=a.threads, images_per_s=128 / per_image,
         ms_per_batch=per_image * 1e3)
    whole = seconds_per_call(lambda: pipeline(batch))
    emit(bench="random_crop(32, padding 4) + hflip, 128x3x32x32, one draw per batch", threads=a.threads,
         images_per_s=128 / whole, ms_per_batch=whole * 1e3)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["mlp", "fashion", "ftt", "resnet", "core", "transforms"])
    for name, default in [("n", None), ("p", None), ("layers", 0), ("width", 100), ("epochs", None), ("warmup", 1),
                          ("threads", 1), ("seed", 1), ("flush", 1), ("blocks", 1), ("d-token", 32), ("heads", 4),
                          ("depth", 18), ("size", 32), ("batch", 32), ("steps", 10)]:
        parser.add_argument("--" + name, type=int, default=default)
    for name in ["data", "dir", "opt", "model"]:
        parser.add_argument("--" + name)
    parser.add_argument("--mode", default="train", choices=["train", "predict"])
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--save-init", dest="save_init")
    a = parser.parse_args()
    if a.n is None:
        a.n, a.p = (4601, 57) if a.command == "ftt" else (2000, a.p or 1000)
    if a.p is None:
        a.p = 57 if a.command == "ftt" else 1000
    if a.epochs is None:
        a.epochs = 2 if a.command in ("fashion", "ftt") else 20
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(bool(a.flush))
    {"mlp": mlp_bench, "fashion": fashion_bench, "ftt": ftt_bench, "resnet": resnet_bench, "core": core_bench,
     "transforms": transforms_bench}[a.command](a)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one JSON line for the driver, whatever went wrong
        print(json.dumps({"system": "pytorch", "error": f"{type(e).__name__}: {e}"}), flush=True)
        sys.exit(1)
