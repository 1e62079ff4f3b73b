"""All image transforms in one place.

Training augmentation runs on whole uint8 batches with per-image random parameters (torchvision's v2
transforms draw one set of parameters per call, i.e. per batch), so it can run on the GPU with no
per-image Python. Evaluation crops are torchvision's FiveCrop/TenCrop, cut as slices of whole batches.

The evaluation protocol is defined once, as data: `nets.V.eval` (EvalParams), which the export writes into the
ONNX metadata. Two implementations read it: this one (batched tensors, evaluate and export) and
`preprocess.views` (numpy + PIL, for `netpipe predict`, which must start without importing torch);
tests/test_predict.py pins the two view for view. The crops stay outside the exported graph on purpose: the
ONNX file takes normalised crops as every ONNX consumer expects, the bench times the network alone, and
predict's single- or 10-crop choice stays a command-line flag instead of two exported models.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .params import AugmentParams, EvalParams
from .preprocess import centre, five


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a batch (N, C, H, W) to size x size (bilinear with antialias, as torchvision's Resize)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    from torchvision.transforms import v2  # imported when needed: 2 s a process (the 32x32 nets never resize)

    return v2.functional.resize(x, [size, size], antialias=True)


def pad(x: torch.Tensor, p: int, mode: str) -> torch.Tensor:
    if p == 0:
        return x
    if mode == "constant":
        return F.pad(x, (p, p, p, p), mode="constant", value=0)
    if x.dtype == torch.uint8:  # reflect/replicate padding needs a float tensor
        return F.pad(x.float(), (p, p, p, p), mode=mode).to(torch.uint8)
    return F.pad(x, (p, p, p, p), mode=mode)


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 or float-in-[0,255] batch -> normalised float."""
    return (x.float() / 255.0 - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def augment(x: torch.Tensor, aug: AugmentParams, input_size: int, generator: torch.Generator) -> torch.Tensor:
    """Random crop (after optional resize and padding) and flip, independently per image; uint8 in, uint8 out,
    resized to input_size. `generator` lives on x's device and makes the epoch's augmentation repeatable."""
    if aug.resize:
        x = resize(x, aug.resize)
    if not aug.enabled:
        return resize(centre(x, aug.crop or x.shape[-1]), input_size)
    n, _, h, w = x.shape
    crop = aug.crop or h
    x = pad(x, aug.crop_padding, aug.padding_mode)
    hp, wp = x.shape[-2:]
    dev = x.device
    oy = torch.randint(0, hp - crop + 1, (n,), device=dev, generator=generator)
    ox = torch.randint(0, wp - crop + 1, (n,), device=dev, generator=generator)
    ar = torch.arange(crop, device=dev)
    rows = (oy[:, None] + ar[None, :])  # (n, crop)
    cols = (ox[:, None] + ar[None, :])
    if aug.flip:
        flip = torch.rand(n, device=dev, generator=generator) < 0.5
        cols = torch.where(flip[:, None], cols.flip(1), cols)
    # out[n, c, i, j] = x[n, c, rows[n, i], cols[n, j]]: one gather along the flattened pixels, the same index for
    # every channel (advanced indexing over (n, i, j) with a channels-last permute cost 1.3-1.8x as much per batch)
    idx = (rows[:, :, None] * wp + cols[:, None, :]).view(n, 1, crop * crop).expand(n, x.shape[1], crop * crop)
    out = x.reshape(n, x.shape[1], hp * wp).gather(2, idx).view(n, x.shape[1], crop, crop)
    out = jitter(out, aug.brightness, aug.contrast, generator)
    return resize(out, input_size)


def jitter(x: torch.Tensor, brightness: float, contrast, generator: torch.Generator) -> torch.Tensor:
    """Per-image brightness then contrast (TensorFlow's random_brightness / random_contrast, the order of its CIFAR
    input pipeline): x + U(-b, b), then (x - mean_c) * U(lo, hi) + mean_c with each image's per-channel mean.
    Returns float in pixel units, unclipped, as TensorFlow does (normalize() takes it); uint8 x when nothing to do.
    torchvision's ColorJitter draws one factor per call (per batch) and clips, hence this."""
    if not brightness and contrast is None:
        return x
    n, dev = x.shape[0], x.device
    x = x.float()
    if brightness:
        delta = (torch.rand(n, device=dev, generator=generator) * 2 - 1) * brightness
        x = x + delta.view(n, 1, 1, 1)
    if contrast is not None:
        lo, hi = contrast
        f = lo + torch.rand(n, device=dev, generator=generator) * (hi - lo)
        mean = x.mean(dim=(2, 3), keepdim=True)
        x = (x - mean) * f.view(n, 1, 1, 1) + mean
    return x


def eval_view(x: torch.Tensor, ev: EvalParams) -> torch.Tensor:
    """Resize and pad a uint8 batch as the evaluation protocol says (before cropping)."""
    if ev.resize:
        x = resize(x, ev.resize)
    return pad(x, ev.pad, ev.padding_mode)


def center_crop(x: torch.Tensor, ev: EvalParams, input_size: int) -> torch.Tensor:
    """The single-crop view: (N, C, input_size, input_size). The crop is a slice (preprocess.centre, torchvision's
    rounding), so that training does not import torchvision (2 s a process) for it."""
    return resize(centre(eval_view(x, ev), ev.crop), input_size)


def multi_crops(x: torch.Tensor, ev: EvalParams, input_size: int) -> torch.Tensor:
    """The 10-crop (or 5-crop when flips are off) views, stacked as (K, N, C, input_size, input_size): torchvision's
    TenCrop/FiveCrop, views and order (the five crops, then the five of the mirrored image), cut as slices by
    preprocess.five (tests/test_evaluate_export.py checks them against TenCrop) so that evaluate and export do not
    import torchvision (1-2 s a process) for nets that need no resize."""
    x = eval_view(x, ev)
    crops = five(x, ev.crop) + (five(x.flip(-1), ev.crop) if ev.flips else [])
    return torch.stack([resize(c, input_size) for c in crops])


def num_crops(ev: EvalParams) -> int:
    return 10 if ev.flips else 5
