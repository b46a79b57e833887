#!/usr/bin/env python3
"""Golden values for Ember's attention and FT-Transformer layers, computed with PyTorch.

Writes
    Tests/EmberNNTests/Fixtures/nn_attention.json

Cases:
    multihead_attention    nn.MultiheadAttention(d, heads, dropout=0, bias, batch_first=True) as
                           self-attention, 1/2/4 heads, with and without bias
    numeric_tokenizer      rtdl's NumericalFeatureTokenizer (with and without bias)
    categorical_tokenizer  rtdl's CategoricalFeatureTokenizer (with and without bias)
    cls_token              rtdl's CLSToken (appended at the end of the token axis)
    transformer_block      one block of rtdl's Transformer with mlr3torch's attention
                           (nn.MultiheadAttention): pre-norm first and non-first, ReGLU and GEGLU,
                           and one post-norm block with ReLU

Every case holds the parameters under their PyTorch names (`params`), the input `x`, an upstream
gradient `seed`, the output `out`, and the gradients of `loss = (out * seed).sum()` with respect to
the input (`grad_x`; not for the categorical tokenizer, whose input is codes) and every parameter
(`grads`, by name). Dropout probabilities are 0 and the modules are in eval mode, so every value is
deterministic. Tensors are written as nested lists of the float64 values of their float32 elements.
Inputs to ReLU/ReGLU gates are checked to stay at least 1e-3 away from the kink at 0.

The FT-Transformer reference modules below follow rtdl (Gorishniy et al. 2021,
https://github.com/yandex-research/rtdl, rtdl/modules.py) and mlr3torch's port
(R/PipeOpTorchFTTransformerBlock.R, which uses nn_multihead_attention with PyTorch's layout).

    python3 tools/golden/generate_attention.py
"""

import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "Tests", "EmberNNTests", "Fixtures", "nn_attention.json")

torch.set_num_threads(1)
torch.set_default_dtype(torch.float32)

from golden_common import L, header, write_json as write  # noqa: E402

KINK_MARGIN = 1e-3


# --------------------------------------------------------------------------------------------
# Reference modules (rtdl, with mlr3torch's attention)
# --------------------------------------------------------------------------------------------

def token_uniform_(t, d):
    """rtdl's 'uniform' token initialization: U(-1/sqrt(d), 1/sqrt(d))."""
    bound = 1 / math.sqrt(d)
    nn.init.uniform_(t, -bound, bound)


class NumericalFeatureTokenizer(nn.Module):
    def __init__(self, n_features, d_token, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_features, d_token))
        self.bias = nn.Parameter(torch.empty(n_features, d_token)) if bias else None
        for p in (self.weight, self.bias):
            if p is not None:
                token_uniform_(p, d_token)

    def forward(self, x):
        x = self.weight[None] * x[..., None]
        if self.bias is not None:
            x = x + self.bias[None]
        return x


class CategoricalFeatureTokenizer(nn.Module):
    def __init__(self, cardinalities, d_token, bias):
        super().__init__()
        offsets = torch.tensor([0] + cardinalities[:-1]).cumsum(0)
        self.register_buffer("category_offsets", offsets, persistent=False)
        self.embeddings = nn.Embedding(sum(cardinalities), d_token)
        self.bias = nn.Parameter(torch.empty(len(cardinalities), d_token)) if bias else None
        for p in (self.embeddings.weight, self.bias):
            if p is not None:
                token_uniform_(p, d_token)

    def forward(self, x):
        x = self.embeddings(x + self.category_offsets[None])
        if self.bias is not None:
            x = x + self.bias[None]
        return x


class CLSToken(nn.Module):
    def __init__(self, d_token):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_token))
        token_uniform_(self.weight, d_token)

    def forward(self, x):
        return torch.cat([x, self.weight.view(1, 1, -1).expand(len(x), 1, -1)], dim=1)


class ReGLU(nn.Module):
    def forward(self, x):
        a, b = x.chunk(2, dim=-1)
        return a * F.relu(b)


class GEGLU(nn.Module):
    def forward(self, x):
        a, b = x.chunk(2, dim=-1)
        return a * F.gelu(b)


ACTIVATIONS = {"reglu": (ReGLU, True), "geglu": (GEGLU, True), "relu": (nn.ReLU, False)}


class FFN(nn.Module):
    def __init__(self, d_token, d_hidden, dropout, activation):
        super().__init__()
        make, gated = ACTIVATIONS[activation]
        self.linear_first = nn.Linear(d_token, d_hidden * (2 if gated else 1))
        self.activation = make()
        self.dropout = nn.Dropout(dropout)
        self.linear_second = nn.Linear(d_hidden, d_token)

    def forward(self, x):
        return self.linear_second(self.dropout(self.activation(self.linear_first(x))))


class TransformerBlock(nn.Module):
    """One block of rtdl's Transformer (without last_layer_query_idx)."""

    def __init__(self, d_token, n_heads, attention_dropout, ffn_d_hidden, ffn_dropout, residual_dropout,
                 activation, prenormalization, first_block):
        super().__init__()
        self.prenormalization = prenormalization
        self.attention = nn.MultiheadAttention(d_token, n_heads, dropout=attention_dropout, bias=True,
                                               batch_first=True)
        self.ffn = FFN(d_token, ffn_d_hidden, ffn_dropout, activation)
        self.attention_residual_dropout = nn.Dropout(residual_dropout)
        self.ffn_residual_dropout = nn.Dropout(residual_dropout)
        # rtdl: no attention normalization in the first pre-norm block (first_prenormalization=False)
        if not first_block or not prenormalization:
            self.attention_normalization = nn.LayerNorm(d_token)
        self.ffn_normalization = nn.LayerNorm(d_token)

    def _start_residual(self, stage, x):
        if self.prenormalization and hasattr(self, f"{stage}_normalization"):
            return getattr(self, f"{stage}_normalization")(x)
        return x

    def _end_residual(self, stage, x, x_residual):
        x = x + getattr(self, f"{stage}_residual_dropout")(x_residual)
        if not self.prenormalization:
            x = getattr(self, f"{stage}_normalization")(x)
        return x

    def forward(self, x):
        r = self._start_residual("attention", x)
        r, _ = self.attention(r, r, r, need_weights=False)
        x = self._end_residual("attention", x, r)
        r = self._start_residual("ffn", x)
        r = self.ffn(r)
        return self._end_residual("ffn", x, r)


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------

def record(name, config, module, x, x_is_codes=False):
    """Runs module(x), back-propagates a random seed, and returns the case dictionary."""
    module.eval()
    params = dict(module.named_parameters())
    if not x_is_codes:
        x = x.detach().clone().requires_grad_(True)
    out = module(x)
    seed = torch.randn(*out.shape)
    (out * seed).sum().backward()
    case = {
        "name": name,
        "config": config,
        "params": {n: L(p) for n, p in params.items()},
        # Codes are written as floats: Ember's categorical input is a float tensor of level indices.
        "x": L(x.float()) if x_is_codes else L(x),
        "seed": L(seed),
        "out": L(out),
        "grads": {n: L(p.grad) for n, p in params.items()},
    }
    if not x_is_codes:
        case["grad_x"] = L(x.grad)
    return case


def perturb_(module):
    """Moves parameters that PyTorch initialises to constants (biases 0, LayerNorm 1/0) to random
    values, so that every gradient is exercised by a generic point."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "normalization" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))


def mha_cases():
    cases = []
    d, batch, tokens = 8, 2, 4
    for heads in (1, 2, 4):
        for bias in (True, False):
            torch.manual_seed(100 + 10 * heads + int(bias))
            m = nn.MultiheadAttention(d, heads, dropout=0.0, bias=bias, batch_first=True)
            perturb_(m)
            x = torch.randn(batch, tokens, d)

            class SelfAttention(nn.Module):
                def __init__(self, inner):
                    super().__init__()
                    self.inner = inner

                def forward(self, x):
                    return self.inner(x, x, x, need_weights=False)[0]

            wrapper = SelfAttention(m)
            case = record(f"heads{heads}_{'bias' if bias else 'nobias'}",
                          {"embed_dim": d, "num_heads": heads, "bias": bias}, wrapper, x)
            # Strip the wrapper's prefix: the names are nn.MultiheadAttention's own.
            case["params"] = {k.removeprefix("inner."): v for k, v in case["params"].items()}
            case["grads"] = {k.removeprefix("inner."): v for k, v in case["grads"].items()}
            cases.append(case)
    return cases


def numeric_tokenizer_cases():
    cases = []
    for bias in (True, False):
        torch.manual_seed(200 + int(bias))
        n, d = 3, 4
        m = NumericalFeatureTokenizer(n, d, bias)
        x = torch.randn(5, n)
        cases.append(record("bias" if bias else "nobias", {"n_features": n, "d_token": d, "bias": bias}, m, x))
    return cases


def categorical_tokenizer_cases():
    cases = []
    cardinalities = [3, 1, 4]
    d = 4
    for bias in (True, False):
        torch.manual_seed(300 + int(bias))
        m = CategoricalFeatureTokenizer(cardinalities, d, bias)
        batch = 6
        codes = torch.stack([torch.randint(0, c, (batch,)) for c in cardinalities], dim=1)
        # Repeated codes exercise the scatter-add of the embedding gradient.
        assert len(set(codes[:, 0].tolist())) < batch
        cases.append(record("bias" if bias else "nobias",
                            {"cardinalities": cardinalities, "d_token": d, "bias": bias}, m, codes, x_is_codes=True))
    return cases


def cls_token_cases():
    torch.manual_seed(400)
    d = 4
    m = CLSToken(d)
    x = torch.randn(2, 3, d)
    return [record("default", {"d_token": d}, m, x)]


def gate_margin(block, x):
    """Smallest |pre-activation| at a ReLU kink inside the block's FFN (inf for GEGLU)."""
    _, gated = ACTIVATIONS[block.activation_name]
    if block.activation_name == "geglu":
        return math.inf
    seen = []
    handle = block.ffn.linear_first.register_forward_hook(lambda _m, _i, o: seen.append(o.detach()))
    with torch.no_grad():
        block(x)
    handle.remove()
    h = seen[0]
    gate = h.chunk(2, dim=-1)[1] if gated else h
    return gate.abs().min().item()


def transformer_block_cases():
    cases = []
    d, heads, hidden, batch, tokens = 8, 2, 6, 2, 4
    configs = [
        ("first_reglu", "reglu", True, True),
        ("nonfirst_reglu", "reglu", True, False),
        ("first_geglu", "geglu", True, True),
        ("nonfirst_geglu", "geglu", True, False),
        ("postnorm_relu", "relu", False, False),
    ]
    for i, (name, activation, prenorm, first) in enumerate(configs):
        seed = 500 + 10 * i
        while True:
            torch.manual_seed(seed)
            block = TransformerBlock(d, heads, 0.0, hidden, 0.0, 0.0, activation, prenorm, first)
            block.activation_name = activation
            perturb_(block)
            x = torch.randn(batch, tokens, d)
            if gate_margin(block, x) >= KINK_MARGIN:
                break
            seed += 1  # a gate too close to the ReLU kink: draw another point
        config = {"d_token": d, "heads": heads, "ffn_hidden": hidden, "activation": activation,
                  "prenormalization": prenorm, "first_block": first, "torch_seed": seed}
        cases.append(record(name, config, block, x))
    return cases


def main():
    fixture = header("tools/golden/generate_attention.py")
    fixture.update({
        "multihead_attention": mha_cases(),
        "numeric_tokenizer": numeric_tokenizer_cases(),
        "categorical_tokenizer": categorical_tokenizer_cases(),
        "cls_token": cls_token_cases(),
        "transformer_block": transformer_block_cases(),
    })
    write(OUT, fixture)


if __name__ == "__main__":
    main()
