"""The recipe's maths against values computed independently: learning-rate schedules at known steps, which weights
decay, and the seed 000 augmentation (24x24 crops of 32x32 images, flips, brightness/contrast jitter)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from pipeline import recipe, transforms
from pipeline.params import AugmentParams, ScheduleParams


@pytest.mark.parametrize(("sched", "epoch", "total", "want"), [
    ({"name": "constant"}, 7.3, 10, 1.0),
    ({"name": "step", "step_size": 3, "gamma": 0.5}, 6.0, 10, 0.25),
    ({"name": "step", "step_size": 3, "gamma": 0.5}, 5.99, 10, 0.5),
    ({"name": "multistep", "milestones": [100, 200], "gamma": 0.1}, 99.9, 300, 1.0),
    ({"name": "multistep", "milestones": [100, 200], "gamma": 0.1}, 150.0, 300, 0.1),
    ({"name": "multistep", "milestones": [100, 200], "gamma": 0.1}, 200.0, 300, 0.01),
    ({"name": "exponential", "gamma": 0.95}, 2.5, 80, 0.95 ** 2.5),
    ({"name": "cosine", "min_lr": 0.0}, 50.0, 100, 0.5),
    ({"name": "cosine", "min_lr": 0.01}, 100.0, 100, 0.1),  # the floor: min_lr / lr
    ({"name": "cosine", "min_lr": 0.0, "warmup_epochs": 2, "warmup_start": 0.1}, 1.0, 100,
     (0.1 + 0.9 * 0.5) * 0.5 * (1 + math.cos(math.pi * 0.01))),
])
def test_lr_factor_at_known_epochs(sched, epoch, total, want):
    assert recipe.lr_factor(ScheduleParams(**sched), epoch, total, 0.1) == pytest.approx(want, rel=1e-12)


def test_exponential_staircase_counts_optimizer_steps():
    """TensorFlow's exponential_decay(0.01, step, 10, 0.9995, staircase=True), 000's schedule: 0.9995 ** (step // 10)."""
    s = ScheduleParams(name="exponential", gamma=0.9995, decay_steps=10)
    steps_per_epoch = 703
    for step in (0, 9, 10, 19, 703, 7030, 56239):
        epoch = step / steps_per_epoch
        assert recipe.lr_factor(s, epoch, 80, 0.01, steps_per_epoch) == pytest.approx(0.9995 ** (step // 10), rel=1e-12)


@pytest.mark.parametrize(("decay_on", "kind"), [("conv", nn.Conv2d), ("linear", nn.Linear)])
def test_weight_decay_on_kernels_of_one_layer_type(decay_on, kind):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    groups = recipe.param_groups(model, 0.004, decay_on)
    decayed = {id(q) for g in groups if g["weight_decay"] == 0.004 for q in g["params"]}
    want = {id(m.weight) for m in model.modules() if isinstance(m, kind)}
    assert decayed == want  # biases, BatchNorm and the other layer type never decay
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    everything = recipe.param_groups(model, 0.004, "all")
    assert len(everything) == 1 and len(everything[0]["params"]) == len(list(model.parameters()))


def test_weight_decay_on_conv_is_the_keras_l2_gradient():
    """Keras l2(1e-4) on a conv kernel adds 1e-4 * sum(w^2) to the loss: SGD with weight_decay 2e-4 on that kernel
    takes the same step."""
    torch.manual_seed(0)
    a = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2, 2))
    b = copy.deepcopy(a)
    x = torch.randn(4, 1, 3, 3)
    opt_a = torch.optim.SGD(recipe.param_groups(a, 2e-4, "conv"), lr=0.1)
    loss = a(x).square().mean()
    opt_a.zero_grad()
    loss.backward()
    opt_a.step()
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1)
    loss = b(x).square().mean() + 1e-4 * b[0].weight.square().sum()
    opt_b.zero_grad()
    loss.backward()
    opt_b.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.allclose(pa, pb, atol=1e-7)


def _batch(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)


def test_random_24_crops_of_32_cover_every_offset_and_match_the_slices():
    x = _batch()
    aug = AugmentParams(enabled=True, crop=24, crop_padding=0, flip=False)
    out = transforms.augment(x, aug, 24, torch.Generator().manual_seed(1))
    assert out.shape == (256, 3, 24, 24) and out.dtype == torch.uint8
    offsets = set()
    for i in range(len(x)):  # find each crop's offset among the 9 x 9 possible ones
        hits = [(oy, ox) for oy in range(9) for ox in range(9) if torch.equal(out[i], x[i, :, oy:oy + 24, ox:ox + 24])]
        assert len(hits) >= 1
        offsets.add(hits[0])
    assert len(offsets) > 40  # spread over the 81 offsets (256 draws)
    assert {o[0] for o in offsets} == set(range(9)) and {o[1] for o in offsets} == set(range(9))


def test_flip_is_torchvisions_horizontal_flip_about_half_the_time():
    from torchvision.transforms import v2

    x = _batch(200)
    aug = AugmentParams(enabled=True, crop=32, crop_padding=0, flip=True)
    out = transforms.augment(x, aug, 32, torch.Generator().manual_seed(2))
    flipped = [torch.equal(out[i], v2.functional.horizontal_flip(x[i])) for i in range(len(x))]
    kept = [torch.equal(out[i], x[i]) for i in range(len(x))]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 70 <= sum(flipped) <= 130


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
def test_padding_modes_match_torchvisions_pad(mode):
    from torchvision.transforms import v2

    x = _batch(4)
    mode_tv = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}[mode]
    assert torch.equal(transforms.pad(x, 4, mode), v2.functional.pad(x, [4], padding_mode=mode_tv))


def test_brightness_and_contrast_jitter_per_image():
    """TensorFlow's random_brightness(63) then random_contrast(0.2, 1.8): each image its own delta and factor; the
    per-channel mean moves by the delta only; the spread about it scales by the factor; no clipping."""
    x = _batch(300).float()
    out = transforms.jitter(x, 63.0, (0.2, 1.8), torch.Generator().manual_seed(3))
    delta = (out.mean(dim=(2, 3)) - x.mean(dim=(2, 3)))  # (n, C): the same delta on every channel of an image
    assert torch.allclose(delta, delta[:, :1].expand_as(delta), atol=1e-3)
    assert delta.abs().max() <= 63 + 1e-3 and delta.std() > 20  # spread over [-63, 63] (uniform: std 36)
    factor = (out - out.mean(dim=(2, 3), keepdim=True)).flatten(1).norm(dim=1) / \
        (x - x.mean(dim=(2, 3), keepdim=True)).flatten(1).norm(dim=1)
    assert factor.min() >= 0.2 - 1e-4 and factor.max() <= 1.8 + 1e-4 and factor.std() > 0.3
    assert out.min() < 0 or out.max() > 255  # unclipped, as TensorFlow leaves it
    assert transforms.jitter(_batch(2), 0.0, None, torch.Generator()).dtype == torch.uint8  # nothing to do
