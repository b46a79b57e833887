#!/usr/bin/env python3
"""Golden values for Ember's convolution and pooling ops, computed with PyTorch (CPU, float32).

Writes
    Tests/EmberCoreTests/Fixtures/conv.json

Layout: {"generator", "torch_version", "python_version", "ops": {op name: [case, ...]}} with the
op names of EmberCore's OpKind ("conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d",
"avg_pool2d") plus "adaptive_avg_pool2d". Each case has the shape of core.json's op cases:
{"name", "params", "inputs", "seed", "output", "grads"}: the parameters (an int per parameter for
1-d ops, an [h, w] pair for 2-d ops; a pooling "stride" only when it is not the default), the
input tensors by name ("x", "weight", "bias"), the upstream gradient, the forward output and the
gradient of every input (same names) from autograd on loss = (output * seed).sum().

Every tensor is written as nested lists of the float64 values of its float32 elements
(`tensor.double().tolist()`), so the Swift tests read back exactly PyTorch's inputs. Max-pool
inputs are permutations of distinct values 0.1 apart, so no window has a tie (the gradient's
position is then unambiguous). CI does not need PyTorch: the fixture is committed.

    python3 tools/golden/generate_conv.py
"""

import os

import torch
import torch.nn.functional as F

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "Tests", "EmberCoreTests", "Fixtures", "conv.json")

torch.set_num_threads(1)
torch.set_default_dtype(torch.float32)


from golden_common import L, header, write_json  # noqa: E402


def leaf(t):
    return t.detach().clone().requires_grad_(True)


def pair(v):
    return list(v) if isinstance(v, (tuple, list)) else [v, v]


def param(v, dims):
    """An int for 1-d ops, an [h, w] list for 2-d ops."""
    return v if dims == 1 else pair(v)


def case(name, params, inputs, seed, output, grads):
    return {"name": name, "params": params, "inputs": inputs, "seed": L(seed), "output": L(output), "grads": grads}


def backprop(y, seed_value):
    torch.manual_seed(seed_value)
    seed = torch.randn(y.shape)
    (y * seed).sum().backward()
    return seed


# --------------------------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------------------------

def conv_case(dims, name, seed_value, n, c_in, c_out, size, kernel, stride=1, padding=0, dilation=1,
              groups=1, bias=True):
    torch.manual_seed(seed_value)
    spatial = [size] if dims == 1 else pair(size)
    ksize = [kernel] if dims == 1 else pair(kernel)
    x = leaf(torch.randn(n, c_in, *spatial))
    w = leaf(torch.randn(c_out, c_in // groups, *ksize) * 0.5)
    b = leaf(torch.randn(c_out)) if bias else None
    conv = F.conv1d if dims == 1 else F.conv2d
    y = conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    seed = backprop(y, seed_value + 1000)
    params = {"stride": param(stride, dims), "padding": param(padding, dims), "dilation": param(dilation, dims),
              "groups": groups}
    inputs = {"x": L(x), "weight": L(w)}
    grads = {"x": L(x.grad), "weight": L(w.grad)}
    if bias:
        inputs["bias"] = L(b)
        grads["bias"] = L(b.grad)
    return case(name, params, inputs, seed, y, grads)


def conv1d_cases():
    c = lambda *a, **k: conv_case(1, *a, **k)
    return [
        c("basic", 10, n=2, c_in=3, c_out=4, size=10, kernel=3),
        c("stride2_padding2", 11, n=2, c_in=3, c_out=4, size=11, kernel=4, stride=2, padding=2),
        c("dilation2_padding1", 12, n=2, c_in=2, c_out=3, size=9, kernel=3, dilation=2, padding=1),
        c("groups2", 13, n=2, c_in=4, c_out=6, size=8, kernel=3, padding=1, groups=2),
        c("depthwise", 14, n=2, c_in=3, c_out=6, size=7, kernel=3, padding=1, groups=3),
        c("no_bias_batch1", 15, n=1, c_in=3, c_out=2, size=6, kernel=2, bias=False),
        c("kernel1", 16, n=3, c_in=4, c_out=5, size=5, kernel=1),
        c("all_options_batch3", 17, n=3, c_in=4, c_out=4, size=13, kernel=3, stride=3, padding=2,
          dilation=2, groups=2),
    ]


def conv2d_cases():
    c = lambda *a, **k: conv_case(2, *a, **k)
    return [
        c("basic_padding1", 20, n=2, c_in=3, c_out=4, size=6, kernel=3, padding=1),
        c("stride2", 21, n=2, c_in=3, c_out=4, size=7, kernel=3, stride=2),
        c("non_square_kernel", 22, n=2, c_in=2, c_out=3, size=(6, 7), kernel=(2, 3), stride=(2, 1),
          padding=(1, 0)),
        c("dilation2", 23, n=2, c_in=2, c_out=3, size=7, kernel=3, dilation=2, padding=1),
        c("dilation_2_1_padding_2_1", 24, n=1, c_in=2, c_out=2, size=(7, 6), kernel=(3, 2), dilation=(2, 1),
          padding=(2, 1)),
        c("groups2", 25, n=2, c_in=4, c_out=6, size=5, kernel=3, padding=1, groups=2),
        c("depthwise", 26, n=2, c_in=3, c_out=3, size=5, kernel=3, padding=1, groups=3),
        c("depthwise_multiplier2", 27, n=2, c_in=2, c_out=4, size=(4, 5), kernel=(3, 1), groups=2),
        c("no_bias_batch1", 28, n=1, c_in=3, c_out=4, size=5, kernel=3, bias=False),
        c("kernel1x1", 29, n=2, c_in=4, c_out=3, size=4, kernel=1),
        c("all_options_batch3", 30, n=3, c_in=4, c_out=6, size=(9, 8), kernel=(3, 2), stride=(2, 3),
          padding=(2, 1), dilation=(2, 2), groups=2),
        c("padding_larger_than_kernel", 31, n=2, c_in=1, c_out=2, size=3, kernel=2, padding=3, stride=2),
    ]


# --------------------------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------------------------

def distinct_input(shape, seed_value):
    """A permutation of distinct values 0.1 apart (negative and positive): no ties in any window."""
    torch.manual_seed(seed_value)
    n = 1
    for d in shape:
        n *= d
    perm = torch.randperm(n).to(torch.float32)
    return ((perm - n / 2) * 0.1).reshape(shape)


def max_pool_case(dims, name, seed_value, shape, kernel, stride=None, padding=0):
    x = leaf(distinct_input(shape, seed_value))
    pool = F.max_pool1d if dims == 1 else F.max_pool2d
    y = pool(x, kernel, stride=stride, padding=padding)
    seed = backprop(y, seed_value + 1000)
    params = {"kernel": param(kernel, dims), "padding": param(padding, dims)}
    if stride is not None:
        params["stride"] = param(stride, dims)
    return case(name, params, {"x": L(x)}, seed, y, {"x": L(x.grad)})


def max_pool1d_cases():
    c = lambda *a, **k: max_pool_case(1, *a, **k)
    return [
        c("kernel2_default_stride", 40, (2, 3, 8), 2),
        c("kernel3_stride2_padding1", 41, (2, 2, 9), 3, stride=2, padding=1),
        c("overlapping_stride1", 42, (1, 2, 7), 3, stride=1),
        c("kernel4_padding2_stride3", 43, (2, 1, 10), 4, stride=3, padding=2),
    ]


def max_pool2d_cases():
    c = lambda *a, **k: max_pool_case(2, *a, **k)
    return [
        c("kernel2_default_stride", 50, (2, 3, 4, 6), 2),
        c("kernel3_stride2_padding1", 51, (2, 2, 7, 7), 3, stride=2, padding=1),
        c("non_square", 52, (1, 2, 6, 7), (2, 3), stride=(1, 2), padding=(1, 1)),
        c("overlapping_stride1_batch1", 53, (1, 1, 5, 5), 3, stride=1),
        c("odd_size_truncated", 54, (2, 2, 5, 7), 2),
    ]


def avg_pool_case(dims, name, seed_value, shape, kernel, stride=None, padding=0, count_include_pad=True):
    torch.manual_seed(seed_value)
    x = leaf(torch.randn(*shape))
    pool = F.avg_pool1d if dims == 1 else F.avg_pool2d
    y = pool(x, kernel, stride=stride, padding=padding, count_include_pad=count_include_pad)
    seed = backprop(y, seed_value + 1000)
    params = {"kernel": param(kernel, dims), "padding": param(padding, dims), "count_include_pad": count_include_pad}
    if stride is not None:
        params["stride"] = param(stride, dims)
    return case(name, params, {"x": L(x)}, seed, y, {"x": L(x.grad)})


def avg_pool1d_cases():
    c = lambda *a, **k: avg_pool_case(1, *a, **k)
    return [
        c("kernel2_default_stride", 60, (2, 3, 8), 2),
        c("kernel3_stride2_padding1_include_pad", 61, (2, 2, 9), 3, stride=2, padding=1, count_include_pad=True),
        c("kernel3_stride2_padding1_exclude_pad", 61, (2, 2, 9), 3, stride=2, padding=1, count_include_pad=False),
        c("kernel4_stride1_padding2_exclude_pad", 62, (1, 2, 6), 4, stride=1, padding=2, count_include_pad=False),
    ]


def avg_pool2d_cases():
    c = lambda *a, **k: avg_pool_case(2, *a, **k)
    return [
        c("kernel2_default_stride", 70, (2, 3, 4, 6), 2),
        c("kernel3_stride2_padding1_include_pad", 71, (2, 2, 7, 7), 3, stride=2, padding=1, count_include_pad=True),
        c("kernel3_stride2_padding1_exclude_pad", 71, (2, 2, 7, 7), 3, stride=2, padding=1, count_include_pad=False),
        c("non_square_include_pad", 72, (1, 2, 6, 7), (2, 3), stride=(1, 2), padding=(1, 1), count_include_pad=True),
        c("non_square_exclude_pad", 72, (1, 2, 6, 7), (2, 3), stride=(1, 2), padding=(1, 1), count_include_pad=False),
        c("overlapping_stride1_batch1", 73, (1, 1, 5, 5), 3, stride=1),
    ]


def adaptive_avg_pool2d_cases():
    cases = []
    for name, seed_value, shape, out in (
        ("7x5_to_3x2", 80, (2, 3, 7, 5), (3, 2)),
        ("6x6_to_2x3", 81, (2, 2, 6, 6), (2, 3)),
        ("3x3_to_5x4_upsampling", 82, (1, 2, 3, 3), (5, 4)),
        ("global_4x6_to_1x1", 83, (2, 3, 4, 6), (1, 1)),
        ("identity_5x7", 84, (1, 2, 5, 7), (5, 7)),
    ):
        torch.manual_seed(seed_value)
        x = leaf(torch.randn(*shape))
        y = F.adaptive_avg_pool2d(x, out)
        seed = backprop(y, seed_value + 1000)
        cases.append(case(name, {"output_size": list(out)}, {"x": L(x)}, seed, y, {"x": L(x.grad)}))
    return cases


def main():
    fixture = {
        **header("tools/golden/generate_conv.py"),
        "ops": {
            "conv1d": conv1d_cases(),
            "conv2d": conv2d_cases(),
            "max_pool1d": max_pool1d_cases(),
            "max_pool2d": max_pool2d_cases(),
            "avg_pool1d": avg_pool1d_cases(),
            "avg_pool2d": avg_pool2d_cases(),
            "adaptive_avg_pool2d": adaptive_avg_pool2d_cases(),
        },
    }
    write_json(OUT, fixture)


if __name__ == "__main__":
    main()
