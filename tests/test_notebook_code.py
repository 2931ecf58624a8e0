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


# --- PyTorch lesson: the networks, loss, loop, speed-ups and watershed of SemanticSegmentationPytorch.ipynb ---------

LESSON_NAMES = {
    "conv_block", "SegNet", "UNet", "WarmBatchNorm2d", "SegmentationLoss", "PH2Segmentation",
    "evaluate", "train_step", "fit", "mixed_precision_step", "split_touching",
}


@pytest.fixture(scope="module")
def lesson():
    import re
    import time
    from types import SimpleNamespace

    from scipy import ndimage
    from skimage import feature, measure, segmentation
    from torch.utils.data import Dataset
    from tqdm.auto import tqdm

    from utils import metrics

    namespace = {
        "torch": torch, "nn": nn, "np": np, "Dataset": Dataset, "re": re, "time": time, "tqdm": tqdm, "metrics": metrics,
        "ndimage": ndimage, "feature": feature, "measure": measure, "segmentation": segmentation,
        "device": torch.device("cpu"), "SEED": 0, "profile": SimpleNamespace(learning_rate=1e-2),
        "amp_dtype": None, "scaler": torch.amp.GradScaler("cuda", enabled=False),
    }
    return definitions(NOTEBOOK, LESSON_NAMES, namespace)


def test_segnet_unpools_with_the_indices_of_its_own_poolings(lesson):
    torch.manual_seed(0)
    model = lesson["SegNet"](4, 3).eval()
    assert isinstance(model.pool, nn.MaxPool2d) and model.pool.return_indices
    assert isinstance(model.unpool, nn.MaxUnpool2d)
    pooled, unpooled = [], []
    model.pool.register_forward_hook(lambda m, args, out: pooled.append(out[1]))
    model.unpool.register_forward_hook(lambda m, args, out: unpooled.append((args[0], args[1], out)))
    with torch.no_grad():
        logits = model(torch.rand(2, 3, 32, 32))
    assert logits.shape == (2, 1, 32, 32)
    assert len(pooled) == len(unpooled) == 3
    for where, (values, indices, out) in zip(reversed(pooled), unpooled):  # deepest level first
        assert torch.equal(indices, where)
        flat = out.flatten(2)
        torch.testing.assert_close(flat.gather(2, indices.flatten(2)), values.flatten(2))
        assert int((flat != 0).sum()) <= indices.numel()  # nothing but the maxima's places is filled


def _shapes(module):
    return [tuple(p.shape) for p in module.parameters()]


def test_segnet_and_unet_differ_only_in_their_decoders(lesson):
    segnet, unet = lesson["SegNet"](4, 3), lesson["UNet"](4, 3)
    assert _shapes(segnet.encoders) == _shapes(unet.encoders)
    assert _shapes(segnet.bottleneck) == _shapes(unet.bottleneck) == _shapes(lesson["conv_block"](16, 32))
    assert _shapes(segnet.head) == _shapes(unet.head) == [(1, 4, 1, 1), (1,)]
    for model in (segnet, unet):
        norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        assert norms and all(type(m) is nn.BatchNorm2d and m.momentum == 0.1 for m in norms)
        assert not any(isinstance(m, nn.Sigmoid) for m in model.modules())  # the model ends in logits
    warm = lesson["UNet"](4, 3, norm=lesson["WarmBatchNorm2d"])
    norms = [m for m in warm.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == sum(isinstance(m, nn.BatchNorm2d) for m in unet.modules())
    assert all(isinstance(m, lesson["WarmBatchNorm2d"]) for m in norms)
    assert _shapes(warm) == _shapes(unet)


def test_loss_is_binary_cross_entropy_on_logits(lesson):
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 8, 8, generator=gen) * 3
    masks = (torch.rand(2, 1, 8, 8, generator=gen) > 0.5).float()
    want = nn.functional.binary_cross_entropy_with_logits(logits, masks)
    torch.testing.assert_close(lesson["SegmentationLoss"]()(logits, masks), want)
    perfect = (masks * 2 - 1) * 50  # logits that are sure and right
    assert lesson["SegmentationLoss"](dice_weight=1.0)(perfect, masks) < 1e-4
    empty = torch.full_like(logits, -50.0)  # predicts no lesion at all: the Dice term adds about 1
    plain = lesson["SegmentationLoss"]()(empty, masks)
    assert lesson["SegmentationLoss"](dice_weight=1.0)(empty, masks) - plain == pytest.approx(1.0, abs=0.05)


def _squares(n, size=16, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, (n, size, size, 3), dtype=np.uint8)
    masks = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        r, c = rng.integers(2, size // 2, 2)
        masks[i, r:r + size // 3, c:c + size // 3] = 1
    images[masks == 1] += 150
    return images, masks


def test_fit_uses_its_step_and_restores_and_saves_the_best_weights(lesson, tmp_path):
    from torch.utils.data import DataLoader

    Data = lesson["PH2Segmentation"]
    train_set, val_set = Data(*_squares(8), augment=True, seed=0), Data(*_squares(4, seed=1))
    lesson.update(
        train_set=train_set, val_set=val_set, runs_dir=lambda: tmp_path,
        train_loader=DataLoader(train_set, batch_size=4, shuffle=True, generator=torch.Generator()),
        val_loader=DataLoader(val_set, batch_size=4),
    )
    calls = []

    def counting_step(*args):
        calls.append(1)
        return lesson["train_step"](*args)

    torch.manual_seed(0)
    model = lesson["UNet"](4, 2)
    history = lesson["fit"](model, "Tiny U-Net", 3, step=counting_step)
    assert len(calls) == 3 * 2  # epochs × batches
    assert all(len(v) == 3 for v in history.values())
    _, logits = lesson["evaluate"](model, lesson["val_loader"], lesson["SegmentationLoss"]())
    from utils import metrics

    assert metrics.dice(val_set.masks, metrics.logits_to_mask(logits)) == pytest.approx(max(history["val_dice"]))
    saved = torch.load(tmp_path / "SemanticSegmentationPytorch-tinyunet.pt")
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())


def test_mixed_precision_step_is_the_plain_step_when_switched_off(lesson):
    x, y = torch.rand(2, 3, 16, 16), (torch.rand(2, 1, 16, 16) > 0.5).float()
    results = []
    for step in (lesson["train_step"], lesson["mixed_precision_step"]):
        torch.manual_seed(0)
        model = lesson["UNet"](4, 2)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        _, loss = step(model, x, y, lesson["SegmentationLoss"](), optimizer)
        results.append((loss.item(), [p.detach().clone() for p in model.parameters()]))
    assert results[0][0] == results[1][0]
    assert all(torch.equal(a, b) for a, b in zip(results[0][1], results[1][1]))


def test_mixed_precision_step_runs_under_bfloat16_autocast(lesson):
    lesson["amp_dtype"] = torch.bfloat16
    try:
        torch.manual_seed(0)
        model = lesson["UNet"](4, 2)
        before = [p.detach().clone() for p in model.parameters()]
        logits, loss = lesson["mixed_precision_step"](
            model, torch.rand(2, 3, 16, 16), torch.ones(2, 1, 16, 16), lesson["SegmentationLoss"](),
            torch.optim.AdamW(model.parameters(), lr=1e-2))
    finally:
        lesson["amp_dtype"] = None
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32 and torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def _disk(shape, centre, radius):
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def test_watershed_splits_touching_lesions_that_connected_components_merge(lesson):
    from skimage import measure

    touching = _disk((40, 60), (20, 18), 10) | _disk((40, 60), (20, 36), 10)  # overlap by 2 pixels
    assert measure.label(touching).max() == 1
    labels, distance, peaks = lesson["split_touching"](touching)
    assert labels.max() == 2 and len(peaks) == 2
    assert distance.max() == pytest.approx(10, abs=1)
    left, right = labels[20, 10], labels[20, 44]
    assert left != right and 0 not in (left, right)
    assert np.array_equal(labels > 0, touching)  # every lesion pixel keeps a label, no skin pixel gets one


def test_watershed_keeps_a_single_lesion_whole(lesson):
    labels, _, _ = lesson["split_touching"](_disk((40, 40), (20, 20), 12))
    assert labels.max() == 1
