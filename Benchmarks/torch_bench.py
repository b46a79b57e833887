"""The PyTorch side of the benchmark harness: the same measurements as ember-bench, the same
options, one JSON line per result (Benchmarks/run.py runs it once per measurement).

    python3 torch_bench.py mlp --data FILE --n 2000 --p 1000 --layers 4 --width 100 --opt sgd --epochs 20 [--lr 1e-4] [--flush 1]
    python3 torch_bench.py fashion --dir DIR --model mlp|lenet [--threads 1] [--seed 1] [--epochs 2] [--save-init FILE]
    python3 torch_bench.py ftt [--n 4601] [--p 57] [--blocks 1] [--d-token 32] [--heads 4] [--epochs 2] [--warmup 1]
    python3 torch_bench.py ftt-products [--blocks 1] [--d-token 32] [--heads 4]
    python3 torch_bench.py resnet [--depth 18] [--size 32] [--batch 32] [--steps 10] [--warmup 1] [--threads 1]
                                  [--opt sgd|adam] [--mode train|predict]
    python3 torch_bench.py core
    python3 torch_bench.py latency [--calls 2000] [--rows 10000]
    python3 torch_bench.py transforms [--threads 1]
    python3 torch_bench.py images --data FILE --labels FILE --channels 3 --size 32 --model lenet|resnet18 [--n N] [--batch 128]
                                  [--epochs 1] [--warmup 1] [--predict N] [--loader 0|1] [--augment 0|1] [--padding 4] [--threads 1]
    python3 torch_bench.py jpeg-files --dir DIR [--n 1000] [--size 256]
    python3 torch_bench.py jpeg --dir DIR [--n 1000] [--size 224] [--batch 128] [--workers 0|2] [--epochs 1]

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


def ftt_model(a):
    """rtdl's FT-Transformer (the reference modules of tools/golden/generate_attention.py): numeric
    tokenizer, CLS token appended last, pre-norm blocks (the first without attention norm, the last
    computing the CLS token only, as rtdl's FTTransformer.make_default does) with
    nn.MultiheadAttention and a ReGLU FFN (d_hidden = d_token * 4/3), head LayerNorm → ReLU →
    Linear(d_token, 1), the default dropouts (attention 0.2, FFN 0.1, residual 0), as ember-bench
    ftt; with the spam-shaped data (x uniform in [-1, 1], y its first column's sign): (model, x, y)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "golden"))
    import generate_attention as g
    torch.manual_seed(1)
    x = torch.rand(a.n, a.p) * 2 - 1
    y = (x[:, :1] > 0).float()
    d, hidden = a.d_token, int(a.d_token * 4 / 3)

    class LastQueryBlock(g.TransformerBlock):
        """rtdl's last block (FTTransformer's last_layer_query_idx=[-1]): keys and values from every
        token; the query, the residuals and the FFN for the CLS token only, as Ember computes it."""

        def forward(self, x):
            r = self._start_residual("attention", x)
            r, _ = self.attention(r[:, -1:], r, r, need_weights=False)
            x = self._end_residual("attention", x[:, -1:], r)
            r = self._start_residual("ffn", x)
            r = self.ffn(r)
            return self._end_residual("ffn", x, r)

    class FTT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tokenizer = g.NumericalFeatureTokenizer(a.p, d, True)
            self.cls = g.CLSToken(d)
            self.blocks = nn.Sequential(*[(LastQueryBlock if i == a.blocks - 1 else g.TransformerBlock)(
                d, a.heads, 0.2, hidden, 0.1, 0.0, "reglu", True, i == 0) for i in range(a.blocks)])
            self.head = nn.Sequential(nn.LayerNorm(d), nn.ReLU(), nn.Linear(d, 1))

        def forward(self, xb):
            return self.head(self.blocks(self.cls(self.tokenizer(xb)))[:, -1])

    return FTT(), x, y


def ftt_bench(a):
    """The FT-Transformer of ftt_model trained with BCE-with-logits, batch 32, AdamW lr 1e-4, not
    shuffled: median ms per batch (and mean CPU ms), as ember-bench ftt."""
    model, x, y = ftt_model(a)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = nn.BCEWithLogitsLoss()
    seconds = []
    cpu = time.process_time()
    for epoch in range(a.warmup + a.epochs):
        if epoch == a.warmup:
            seconds.clear()
            cpu = time.process_time()
        losses = []
        for start in range(0, a.n, 32):
            t = time.perf_counter()
            opt.zero_grad()
            loss = loss_fn(model(x[start:start + 32]), y[start:start + 32])
            loss.backward()
            opt.step()
            seconds.append(time.perf_counter() - t)
            losses.append(loss.item() * len(x[start:start + 32]))
    emit(median_batch_ms=statistics.median(seconds) * 1e3, cpu_batch_ms=(time.process_time() - cpu) / len(seconds) * 1e3,
         batches=len(seconds), final_loss=sum(losses) / a.n)


def ftt_products_bench(a):
    """The matrix products of one FT-Transformer training batch alone (the model of ftt_model,
    batch 32), through MKL: every mm, addmm and bmm that PyTorch's own step (forward, BCE-with-
    logits, backward) dispatches, recorded with its operands' shapes and strides, then replayed in
    the step's order on distinct operands of those layouts into preallocated outputs. The yardstick
    of the FT-Transformer's products on their own shapes: an engine whose products ran at MKL's
    speed could not take a step in less time than this."""
    from torch.utils._python_dispatch import TorchDispatchMode
    # The recorded ops and the functions that replay them (into `out=`).
    products = {torch.ops.aten.mm.default: torch.mm, torch.ops.aten.addmm.default: torch.addmm,
                torch.ops.aten.bmm.default: torch.bmm}

    class Record(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.calls = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func in products:
                self.calls.append((products[func], [(tuple(t.shape), t.stride()) for t in args]))
            return func(*args, **(kwargs or {}))

    model, x, y = ftt_model(a)
    with Record() as record:
        nn.BCEWithLogitsLoss()(model(x[:32]), y[:32]).backward()
    if not record.calls:
        raise RuntimeError("no matrix product recorded in the FT-Transformer's step")
    replay, flop = [], 0
    for replay_fn, layouts in record.calls:
        operands = [torch.empty_strided(shape, stride).uniform_(-1, 1) for shape, stride in layouts]
        a_, b_ = operands[-2], operands[-1]
        out = torch.empty(*a_.shape[:-1], b_.shape[-1])
        flop += 2 * out.numel() * a_.shape[-1]
        replay.append((replay_fn, operands, out))

    def step():
        for replay_fn, operands, out in replay:
            replay_fn(*operands, out=out)

    s = seconds_per_call(step)
    emit(products_ms=s * 1e3, gflops=flop / s / 1e9, product_gflop=flop / 1e9, products=len(replay))


def resnet_bench(a):
    """torchvision's ResNet (--depth 18, 34, 50; 10 classes) on random images [3, size, size],
    batch --batch, --opt sgd (momentum 0.9, lr 0.01; the default) or adam (lr 1e-3), cross-entropy:
    median ms per training step over --steps after --warmup steps, as ember-bench resnet.
    --mode predict times the eval-mode forward and softmax of --steps batches instead (no grad),
    median over 5 rounds after one warm-up round (cpu_images_per_s: over the process's CPU time)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "golden"))
    from golden_common import import_torchvision
    torchvision = import_torchvision()
    torch.manual_seed(1)
    model = getattr(torchvision.models, f"resnet{a.depth}")(num_classes=10)
    if a.mode == "predict":
        model.eval()
        xs = [torch.rand(a.batch, 3, a.size, a.size) for _ in range(a.steps)]
        rounds, cpu_rounds = [], []
        with torch.no_grad():
            for r in range(6):
                t, c = time.perf_counter(), time.process_time()
                for x in xs:
                    torch.softmax(model(x), dim=1)
                if r > 0:
                    rounds.append(time.perf_counter() - t)
                    cpu_rounds.append(time.process_time() - c)
        per_batch = statistics.median(rounds) / a.steps
        emit(mode="predict", median_batch_ms=per_batch * 1e3, images_per_s=a.batch / per_batch,
             cpu_images_per_s=a.batch * a.steps / statistics.median(cpu_rounds))
        return
    if a.opt == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.rand(a.batch, 3, a.size, a.size)
    y = torch.arange(a.batch) % 10
    model.train()
    seconds, fwdbwd, cpu = [], [], []
    for step in range(a.warmup + a.steps):
        t, c = time.perf_counter(), time.process_time()
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        t1 = time.perf_counter()
        opt.step()
        if step >= a.warmup:
            seconds.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            fwdbwd.append(t1 - t)
    step_s = statistics.median(seconds)
    emit(mode="train", median_step_ms=step_s * 1e3, images_per_s=a.batch / step_s, cpu_images_per_s=a.batch / statistics.median(cpu),
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


def sgemm_bench(a):
    """MKL's large single-precision product rate (1024³ through torch.matmul) at --threads: the
    yardstick of the MLP grid's product work."""
    x, w = torch.rand(1024, 1024) * 2 - 1, torch.rand(1024, 1024) * 2 - 1
    s = seconds_per_call(lambda: torch.matmul(x, w))
    emit(bench="matmul 1024x1024·1024x1024", gflops=2 * 1024 ** 3 / s / 1e9)


def canary_bench(a):
    """The host's speed now, on request (`run.py`'s `Host`): for each line read from stdin, MKL's
    1024³ product four times on each CPU this process may use, one CPU after the other (the host
    may slow one vCPU and not the other); prints the slower CPU's GFLOP/s over its four calls, one
    number per line. Idle between requests."""
    x, w = torch.rand(1024, 1024) * 2 - 1, torch.rand(1024, 1024) * 2 - 1
    cpus = sorted(os.sched_getaffinity(0))
    torch.matmul(x, w)
    for _ in sys.stdin:
        rates = []
        for cpu in cpus:
            os.sched_setaffinity(0, {cpu})
            torch.matmul(x, w)
            start = time.perf_counter()
            for _ in range(4):
                torch.matmul(x, w)
            rates.append(4 * 2 * 1024 ** 3 / (time.perf_counter() - start) / 1e9)
        os.sched_setaffinity(0, cpus)
        print(f"{min(rates):.2f}", flush=True)


def mlp_products_bench(a):
    """The matrix products of one MLP training batch alone, through MKL (torch.mm into preallocated
    outputs): per layer the forward product x·Wᵀ, the weight gradient dyᵀ·x and (after the first
    layer) the input gradient dy·W, over distinct weights layer after layer as a step touches them.
    The yardstick of the products' rate on the grid's own shapes."""
    torch.manual_seed(1)
    sizes = [a.p] + [a.width] * a.layers + [1]
    ws = [torch.rand(o, i) * 0.1 for i, o in zip(sizes, sizes[1:])]
    xs = [torch.rand(32, i) for i in sizes[:-1]]
    ys = [torch.empty(32, o) for o in sizes[1:]]
    dys = [torch.rand(32, o) for o in sizes[1:]]
    gws = [torch.empty(o, i) for i, o in zip(sizes, sizes[1:])]
    dxs = [torch.empty(32, i) for i in sizes[:-1]]

    def step():
        for i, w in enumerate(ws):
            torch.mm(xs[i], w.t(), out=ys[i])
        for i in reversed(range(len(ws))):
            torch.mm(dys[i].t(), xs[i], out=gws[i])
            if i > 0:
                torch.mm(dys[i], ws[i], out=dxs[i])

    s = seconds_per_call(step)
    flop = 2 * 32 * (2 * sum(i * o for i, o in zip(sizes, sizes[1:])) + sum(i * o for i, o in zip(sizes[1:], sizes[2:])))
    emit(products_ms=s * 1e3, gflops=flop / s / 1e9)


def core_bench(a):
    for m, k, n in [(32, 1000, 100), (32, 400, 400), (200, 32, 200), (400, 32, 400), (128, 784, 256), (1024, 1024, 1024)]:
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


def torchvision_module():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "golden"))
    from golden_common import import_torchvision
    return import_torchvision()


class ByteImages(torch.utils.data.Dataset):
    """Byte images [n, C, H, W] one at a time, as a data loader's dataset returns them: byte / 255
    (as to_dtype(float32, scale=True) and Ember's byte columns), then `transform` if any."""

    def __init__(self, x, y, transform=None):
        self.x, self.y, self.transform = x, y, transform

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        image = self.x[i].float().div_(255)
        return (self.transform(image) if self.transform is not None else image), self.y[i]


def images_bench(a):
    """Byte images [--channels, --size, --size] (--data: C order, one byte per value; --labels: one
    byte per image, classes 0-9), LeNet or torchvision's ResNet-18 (10 classes), batch --batch,
    Adam lr 1e-3, shuffled, cross-entropy: trains on the first --n images for --warmup + --epochs
    epochs and reports the images/s of each timed epoch (and their median), then predicts the first
    --predict images (eval mode, batches of --batch). Batches are gathered from the byte tensor and
    divided by 255 (as Ember widens a byte column per batch); --loader 1 reads them through a
    torch.utils.data.DataLoader (num_workers=0) over a dataset of one image per item, and
    --augment 1 applies v2.RandomCrop(size, padding=--padding) + v2.RandomHorizontalFlip() per
    image in that dataset (implies --loader 1)."""
    shape = (a.channels, a.size, a.size)
    x = torch.from_numpy(np.fromfile(a.data, dtype=np.uint8).reshape((-1,) + shape))
    y = torch.from_numpy(np.fromfile(a.labels, dtype=np.uint8).astype(np.int64))
    n = min(a.n or len(y), len(y))
    torch.manual_seed(a.seed)
    model = lenet() if a.model == "lenet" else torchvision_module().models.resnet18(num_classes=10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    if a.loader or a.augment:
        transform = None
        if a.augment:
            torchvision_module()
            from torchvision.transforms import v2
            transform = v2.Compose([v2.RandomCrop(a.size, padding=a.padding), v2.RandomHorizontalFlip()])
        loader = torch.utils.data.DataLoader(ByteImages(x[:n], y[:n], transform), batch_size=a.batch, shuffle=True,
                                             num_workers=0)

        def batches():
            return iter(loader)
    else:
        def batches():
            order = torch.randperm(n)
            for start in range(0, n, a.batch):
                rows = order[start:start + a.batch]
                yield x[rows].float().div_(255), y[rows]
    model.train()
    rates = []
    for epoch in range(a.warmup + a.epochs):
        t = time.perf_counter()
        for xb, yb in batches():
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        if epoch >= a.warmup:
            rates.append(n / (time.perf_counter() - t))
    predict_rate = None
    if a.predict:
        model.eval()
        xp = x[:a.predict]
        t = time.perf_counter()
        with torch.inference_mode():
            for start in range(0, len(xp), a.batch):
                model(xp[start:start + a.batch].float().div_(255)).argmax(1)
        predict_rate = len(xp) / (time.perf_counter() - t)
    emit(train_images_per_s=statistics.median(rates), epoch_images_per_s=rates, predict_images_per_s=predict_rate,
         train_images=n, final_loss=loss.item(), loader=bool(a.loader or a.augment), augment=bool(a.augment))


def jpeg_paths(a):
    return [os.path.join(a.dir, f"img-{i:04d}.jpg") for i in range(a.n)]


def jpeg_files_bench(a):
    """Writes --n JPEG files of --size × --size RGB pixels (PIL, quality 90) into --dir, once:
    smooth colour fields (an 8 × 8 random image upsampled bicubically) plus Gaussian noise (sd 8),
    so that they compress about as photographs do. Existing files are kept."""
    from PIL import Image
    os.makedirs(a.dir, exist_ok=True)
    written = 0
    for i, path in enumerate(jpeg_paths(a)):
        if os.path.exists(path):
            continue
        rng = np.random.default_rng(i)
        field = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((a.size, a.size), Image.BICUBIC)
        pixels = np.asarray(field, dtype=np.float32) + rng.normal(0, 8, (a.size, a.size, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path + ".tmp", format="JPEG", quality=90)
        os.replace(path + ".tmp", path)
        written += 1
    emit(files=a.n, written=written, mib=sum(os.path.getsize(p) for p in jpeg_paths(a)) / 2 ** 20)


class JpegFiles(torch.utils.data.Dataset):
    """One JPEG file per item: PIL open + convert("RGB"), to a tensor, byte / 255, then v2's
    functional resize to size × size (bilinear, antialias off: Ember's resize of decoded files)."""

    def __init__(self, paths, size):
        torchvision_module()
        from torchvision.transforms.v2 import functional as F
        self.paths, self.size, self.F = paths, size, F

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from PIL import Image
        with Image.open(self.paths[i]) as im:
            image = self.F.pil_to_tensor(im.convert("RGB"))
        image = self.F.to_dtype(image, torch.float32, scale=True)
        return self.F.resize(image, [self.size, self.size], antialias=False)


def jpeg_bench(a):
    """Decodes the --n files of --dir (jpeg-files) and resizes them to --size × --size through a
    DataLoader (batches of --batch) with --workers worker processes (0: in this process): images/s of
    a whole pass, worker start-up included; the median over --epochs passes, after reading one batch
    (file cache, first-call costs)."""
    dataset = JpegFiles(jpeg_paths(a), a.size)
    for i in range(min(a.batch, len(dataset))):
        dataset[i]
    rates = []
    for _ in range(a.epochs):
        t = time.perf_counter()
        count = 0
        for batch in torch.utils.data.DataLoader(dataset, batch_size=a.batch, num_workers=a.workers):
            count += len(batch)
        rates.append(count / (time.perf_counter() - t))
    emit(images_per_s=statistics.median(rates), pass_images_per_s=rates, images=count, workers=a.workers)


class Serving(nn.Module):
    """The latency benchmark's MLP as Ember computes it from its encoded inputs: the numeric
    features standardised, the factor's codes one-hot encoded, 2 × 64 ReLU layers and one logit
    whose sigmoid is the probability of the first class (ember_bench.R --bench latency)."""

    def __init__(self, numeric=8, levels=5, width=64):
        super().__init__()
        self.levels = levels
        self.register_buffer("mean", torch.zeros(numeric))
        self.register_buffer("sd", torch.ones(numeric))
        self.mlp = nn.Sequential(nn.Linear(numeric + levels, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                                 nn.Linear(width, 1))

    def forward(self, num, codes):
        x = torch.cat([(num - self.mean) / self.sd, nn.functional.one_hot(codes, self.levels).float()], dim=1)
        p = torch.sigmoid(self.mlp(x))
        return torch.cat([p, 1 - p], dim=1)


def latency_bench(a):
    """One row's median latency and 10,000 rows' rows/s of the serving MLP, under
    torch.inference_mode, one thread (each call timed alone, after warm-up calls)."""
    torch.manual_seed(1)
    model = Serving().eval()

    def median_seconds(body, calls, warmup, between=lambda: None):
        for _ in range(warmup):
            body()
        times = []
        for _ in range(calls):
            between()
            t = time.perf_counter()
            body()
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    def inputs(n):
        return torch.randn(n, 8), torch.randint(0, 5, (n,))

    one, many = inputs(1), inputs(a.rows)
    with torch.inference_mode():
        row = median_seconds(lambda: model(*one), a.calls, max(20, a.calls // 10))
        # Cold: the caches evicted before each call by reading 64 MB (ember_bench.R does the same).
        junk = np.random.rand(8_000_000)
        cold = median_seconds(lambda: model(*one), a.calls // 4, 10, lambda: junk.sum())
        batch = median_seconds(lambda: model(*many), 20, 3)
        # The network's three matrix products alone on the same rows (MKL through torch.mm, no
        # bias, activation or encoding): a floor for any engine's time on these rows. MKL's product
        # with 13 columns runs at one of two speeds (0.2 or 1.3 ms here): the floor is the fastest
        # median over five fresh allocations of the operands. About one process in four stays in
        # the slow mode throughout; its floor is then too high (the row's caption says so).
        def products_median():
            x = torch.randn(a.rows, 13)
            weights = [layer.weight.t().contiguous() for layer in model.mlp if isinstance(layer, nn.Linear)]

            def products():
                h = x
                for w in weights:
                    h = torch.mm(h, w)
                return h
            return median_seconds(products, 20, 3)
        products_only = min(products_median() for _ in range(5))
        # The same over the process's CPU time (20 calls): what the computation costs whatever else runs.
        c0 = time.process_time()
        for _ in range(20):
            model(*many)
        cpu = (time.process_time() - c0) / 20
    emit(predict_row_us=row * 1e6, predict_row_cold_us=cold * 1e6, predict_rows_per_s=a.rows / batch,
         products_rows_per_s=a.rows / products_only,
         predict_rows_per_cpu_s=a.rows / cpu, rows=a.rows,
         network="MLP 13-64-64-1 (8 numeric + one-hot of 5 levels), binary")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["mlp", "mlp-products", "fashion", "ftt", "ftt-products", "resnet", "core", "sgemm", "canary", "transforms",
                                            "images", "jpeg-files", "jpeg", "latency"])
    for name, default in [("n", None), ("p", None), ("layers", 0), ("width", 100), ("epochs", None), ("warmup", 1),
                          ("threads", 1), ("seed", 1), ("flush", 1), ("blocks", 1), ("d-token", 32), ("heads", 4),
                          ("depth", 18), ("size", 32), ("batch", 32), ("steps", 10), ("channels", 3), ("predict", 0),
                          ("loader", 0), ("augment", 0), ("padding", 4), ("workers", 0), ("calls", 2000),
                          ("rows", 10000)]:
        parser.add_argument("--" + name, type=int, default=default)
    for name in ["data", "dir", "opt", "model", "labels"]:
        parser.add_argument("--" + name)
    parser.add_argument("--mode", default="train", choices=["train", "predict"])
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--save-init", dest="save_init")
    a = parser.parse_args()
    if a.n is None and a.command in ("jpeg-files", "jpeg"):
        a.n = 1000
    ftt = a.command in ("ftt", "ftt-products")
    if a.n is None and a.command != "images":
        a.n, a.p = (4601, 57) if ftt else (2000, a.p or 1000)
    if a.p is None:
        a.p = 57 if ftt else 1000
    if a.epochs is None:
        a.epochs = 2 if a.command in ("fashion", "ftt") else 1 if a.command in ("images", "jpeg") else 20
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(bool(a.flush))
    {"mlp": mlp_bench, "mlp-products": mlp_products_bench, "fashion": fashion_bench, "ftt": ftt_bench, "ftt-products": ftt_products_bench, "resnet": resnet_bench, "core": core_bench, "sgemm": sgemm_bench, "canary": canary_bench,
     "transforms": transforms_bench, "images": images_bench, "jpeg-files": jpeg_files_bench,
     "jpeg": jpeg_bench, "latency": latency_bench}[a.command](a)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one JSON line for the driver, whatever went wrong
        print(json.dumps({"system": "pytorch", "error": f"{type(e).__name__}: {e}"}), flush=True)
        sys.exit(1)
