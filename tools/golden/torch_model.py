"""A network trained briefly in PyTorch and saved with safetensors, for the fine-tuning test.

    python3 tools/golden/torch_model.py

Writes Tests/EmberNNTests/Fixtures/torch_model.safetensors (the state_dict, including BatchNorm's
int64 num_batches_tracked) and torch_model.json (inputs and PyTorch's eval-mode outputs). The
module attribute names equal the node ids of the Ember network description in the Swift test
(TrainerTests.testNetworkSavedFromPyTorchReproducesItsOutputs), so the state dict maps by name.
"""
import json
import pathlib

import torch
from safetensors.torch import save_file
from torch import nn

from golden_common import L

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "Tests" / "EmberNNTests" / "Fixtures"
torch.set_num_threads(1)
torch.manual_seed(0)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear_0 = nn.Linear(3, 8)
        self.bn = nn.BatchNorm1d(8)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.linear_0(x))))


net = Net()
opt = torch.optim.SGD(net.parameters(), lr=0.1)
x_train = torch.randn(32, 3)
y_train = (x_train[:, 0] > 0).long()
for _ in range(3):  # a few steps, so running statistics and num_batches_tracked are not trivial
    opt.zero_grad()
    nn.functional.cross_entropy(net(x_train), y_train).backward()
    opt.step()
net.eval()
x = torch.randn(5, 3)
with torch.no_grad():
    out = net(x)
state = {k: v.contiguous() for k, v in net.state_dict().items()}
assert state["bn.num_batches_tracked"].dtype == torch.int64
save_file(state, str(FIXTURES / "torch_model.safetensors"))
(FIXTURES / "torch_model.json").write_text(json.dumps({"x": L(x), "logits": L(out), "torch": torch.__version__}, indent=1))
print("wrote", FIXTURES / "torch_model.safetensors")
