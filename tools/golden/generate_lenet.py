#!/usr/bin/env python3
"""Two epochs of LeNet training in PyTorch, for the whole-training-run golden test
(TrainerTests: LeNetTrainingTests.testLeNetTrainingMatchesTorch).

    python3 tools/golden/generate_lenet.py

The network is Benchmarks/torch_bench.py's `lenet()` (conv 6@5x5 pad 2, relu, max-pool 2,
conv 16@5x5, relu, max-pool 2, flatten, linear 120, relu, linear 84, relu, linear 10), written
with module attribute names equal to the node ids of `Architectures.lenet` (conv1, conv2, fc1,
fc2, head), so its state dict loads by name into the Ember model. It is trained on 40 synthetic
28x28 images in [0, 1] (8-bit pixel codes / 255, as Fashion-MNIST is loaded: a zero background,
saturated and flat areas, so ReLU outputs and max-pool windows hold exact ties) and 10 classes,
with Adam(lr 1e-3), mean cross-entropy, batches of 16 in order (16, 16, 8: the last one is
partial), 2 epochs = 6 steps; CPU, float32, one thread, fixed seeds.

Writes to Tests/EmberNNTests/Fixtures/
    lenet_initial.safetensors  the state dict before training (what the test loads)
    lenet_trained.safetensors  the state dict after the 6 steps
    lenet.json                 pixel codes [40, 1, 28, 28] (integers 0…255; the image is
                               code / 255 in float32), labels, the loss of every step, the
                               per-epoch training loss as Ember's Trainer reports it (the mean of
                               the batch losses weighted by the batch's rows, in float64), and the
                               eval-mode logits of the 40 images after training.
Float32 values in JSON are the exact float64 values of the elements (golden_common.L).
"""
import json
import pathlib

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from golden_common import L

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "Tests" / "EmberNNTests" / "Fixtures"
N, CLASSES, BATCH, EPOCHS, LR = 40, 10, 16, 2, 1e-3
# The Swift tolerance for whole-network values (docs/architecture.md#numerics-contract), to check that
# training moved every tensor by more than the test could overlook.
RTOL, ATOL = 1e-5, 1e-6

torch.set_num_threads(1)
torch.set_default_dtype(torch.float32)


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.head = nn.Linear(84, CLASSES)

    def features(self, x):
        """The output of the second pooling (before flatten)."""
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        return F.max_pool2d(F.relu(self.conv2(x)), 2)

    def forward(self, x):
        h = torch.flatten(self.features(x), 1)
        return self.head(F.relu(self.fc2(F.relu(self.fc1(h)))))


def images():
    """Pixel codes (uint8) [N, 1, 28, 28] and labels: per image an elliptic or rectangular
    silhouette whose size depends on the class, filled with a textured intensity (noise plus
    stripes, clipped, so some pixels saturate at 255 and stripes are flat), on a zero
    background."""
    g = torch.Generator().manual_seed(1)
    labels = (torch.arange(N) % CLASSES)[torch.randperm(N, generator=g)]
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    codes = torch.zeros(N, 1, 28, 28, dtype=torch.uint8)
    for i in range(N):
        c = int(labels[i])
        cy, cx = (14 + torch.randint(-2, 3, (2,), generator=g)).tolist()
        h = 5 + c % 5 + float(torch.rand(1, generator=g)) * 3
        w = 4 + c // 2 + float(torch.rand(1, generator=g)) * 3
        if c % 2 == 0:
            inside = ((yy - cy) / h) ** 2 + ((xx - cx) / w) ** 2 <= 1
        else:
            inside = ((yy - cy).abs() <= h) & ((xx - cx).abs() <= w)
        base = 0.35 + 0.5 * float(torch.rand(1, generator=g))
        stripes = torch.where((yy.long() // 3) % 2 == 0, torch.tensor(0.3), torch.tensor(0.0)) if c < 5 else 0.0
        noise = torch.rand(28, 28, generator=g) * 0.4 - 0.2
        noise[(yy.long() % 4) == 1] = 0  # flat rows inside the silhouette
        value = (base + stripes + noise).clamp(0, 1) * inside
        codes[i, 0] = (value * 255).round().to(torch.uint8)
    return codes, labels


def pool_ties(net, x):
    """Positive ties (several window elements equal to a positive maximum) in both poolings."""
    with torch.no_grad():
        a = F.relu(net.conv1(x))
        b = F.relu(net.conv2(F.max_pool2d(a, 2)))
    count = 0
    for t in (a, b):
        n, c, h, w = t.shape
        win = t[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
        m = win.max(-1).values
        count += int(((win == m.unsqueeze(-1)).sum(-1) > 1).logical_and(m > 0).sum())
    return count


def main():
    codes, labels = images()
    x = codes.float().div(255)
    # The Swift test computes code / 255 in float32; float64 division rounded to float32 is the
    # correctly rounded float32 quotient.
    assert torch.equal(x, (codes.double() / 255).float())
    torch.manual_seed(0)
    net = LeNet()
    initial = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    ties_before = pool_ties(net, x)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    step_losses, epoch_losses = [], []
    for _ in range(EPOCHS):
        total, seen = 0.0, 0
        for start in range(0, N, BATCH):
            xb, yb = x[start:start + BATCH], labels[start:start + BATCH]
            opt.zero_grad()
            loss = F.cross_entropy(net(xb), yb)
            loss.backward()
            opt.step()
            lv = float(loss.item())  # float32 → its exact float64 value, as Ember's Trainer
            step_losses.append(lv)
            total += lv * len(yb)  # Trainer: the sum of batch loss × rows, over the rows seen
            seen += len(yb)
        epoch_losses.append(total / seen)
    net.eval()
    with torch.no_grad():
        logits = net(x)
    trained = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    for k in initial:
        d = (trained[k] - initial[k]).abs() > ATOL + RTOL * initial[k].abs()
        assert d.any(), f"{k} did not move"

    save_file(initial, str(FIXTURES / "lenet_initial.safetensors"))
    save_file(trained, str(FIXTURES / "lenet_trained.safetensors"))
    fixture = {
        "torch": torch.__version__,
        "batch_size": BATCH, "epochs": EPOCHS, "lr": LR, "classes": CLASSES,
        "pixels": codes.tolist(), "labels": labels.tolist(),
        "step_losses": step_losses, "epoch_losses": epoch_losses,
        "logits": L(logits),
    }
    (FIXTURES / "lenet.json").write_text(json.dumps(fixture, separators=(",", ":"), allow_nan=False) + "\n")
    zeros = float((codes == 0).float().mean())
    print(f"wrote lenet.json, lenet_initial/trained.safetensors; {zeros:.0%} zero pixels, "
          f"{int((codes == 255).sum())} saturated, {ties_before} positive max-pool ties at init; "
          f"losses {[round(v, 4) for v in step_losses]}")


if __name__ == "__main__":
    main()
