"""The PyTorch lesson's own building blocks, run from the notebook itself (not from a copy)."""

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the PyTorch edition needs torch")
from torch import nn  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from notebook_code import definitions  # noqa: E402

NOTEBOOK = ROOT / "notebooks" / "SemanticSegmentationPytorch.ipynb"


@pytest.fixture(scope="module")
def notebook():
    return definitions(NOTEBOOK, {"WarmBatchNorm2d", "conv_block", "UNet", "SegNet"}, {"torch": torch, "nn": nn})


def _batches(n):
    gen = torch.Generator().manual_seed(0)
    centres = torch.rand(n, 1, 2, 1, 1, generator=gen) * 6 - 3  # each batch its own per-channel centre
    return [c + torch.randn(3, 2, 4, 4, generator=gen) for c in centres]


@pytest.mark.parametrize("steps", [1, 4, 14])
def test_warm_batch_norm_averages_then_moves(notebook, steps):
    layer = notebook["WarmBatchNorm2d"](2).train()
    mean, var = torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    for t, batch in enumerate(_batches(steps), start=1):
        layer(batch)
        weight = max(0.1, 1 / t)  # a plain average of t batches, then the moving average's 0.1
        b = batch.double()
        mean = (1 - weight) * mean + weight * b.mean(dim=(0, 2, 3))
        var = (1 - weight) * var + weight * b.var(dim=(0, 2, 3), unbiased=True)
    np.testing.assert_allclose(layer.running_mean.double(), mean, atol=1e-5)
    np.testing.assert_allclose(layer.running_var.double(), var, atol=1e-5)
    assert layer.momentum == (0.1 if steps > 10 else None)
    plain = nn.BatchNorm2d(2).train()
    for batch in _batches(steps):
        plain(batch)
    assert not torch.allclose(plain.running_mean.double(), mean, atol=1e-2)  # the default remembers its 0s


def test_warm_batch_norm_leaves_statistics_alone_in_eval(notebook):
    layer = notebook["WarmBatchNorm2d"](2).eval()
    layer(_batches(1)[0])
    assert torch.equal(layer.running_mean, torch.zeros(2)) and int(layer.num_batches_tracked) == 0


@pytest.mark.parametrize("name", ["UNet", "SegNet"])
def test_models_give_the_same_logits_in_channels_last(notebook, name):
    torch.manual_seed(0)
    model = notebook[name](4, 2).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        want = model(x)
        got = model.to(memory_format=torch.channels_last)(x)
    assert got.shape == (2, 1, 32, 32)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
