"""Helpers shared by the golden-value generators."""
import torch


def L(t):
    """A float32 tensor as nested lists of exact float64 values."""
    assert t.dtype == torch.float32, t.dtype
    return t.detach().double().tolist()
