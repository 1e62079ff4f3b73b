"""Our figure under a seed's own test protocol, beside netpipe's (evaluate writes it into artifacts/metrics).

params `nets.VARIANT.seed_reference.protocol` says how the seed's code scored its test images where that differs
from netpipe's protocol (the whole test set, eval mode, the centre view, the training set's mean):
- test_images: the first N test images in the official order (001 and 004: 1,000); null: all of them;
- mode: train = dropout on and BatchNorm with the batch's own statistics (001, 004 and 000 scored so); eval;
- view: single (netpipe's single view) or random_crop (000: one random crop of eval.crop pixels per image, seeded);
- mean: params (the variant's normalisation) or test_set (000: each pixel minus the scored images' own mean image,
  in pixel units, then netpipe's std);
- batch: images per forward pass (BatchNorm's batch statistics in train mode depend on it: 004 scored its 1,000
  images in one pass).
What training did differently (the seed's split, its kept epoch, its input scale) no evaluation can change: those
stay named in the variant's deviations. The figure is measured with the seed's randomness drawn from `seed` (dropout
masks are drawn on the evaluating device: a CPU and a GPU give different masks, so figures differ by that noise).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from . import transforms
from .data import Prepared
from .params import AugmentParams
from .plan import Plan


def describe(proto: dict) -> str:
    n = proto.get("test_images")
    return ", ".join([f"the first {n:,} test images" if n else "all test images", f"{proto.get('mode', 'eval')} mode",
                      {"single": "netpipe's single view", "random_crop": "one random crop per image"}[
                          proto.get("view", "single")],
                      "the scored images' own mean image" if proto.get("mean") == "test_set" else "netpipe's mean",
                      f"batches of {proto['batch']:,}" if proto.get("batch") else "evaluation batches"])


def _views(x: torch.Tensor, pl: Plan, proto: dict, gen: torch.Generator) -> torch.Tensor:
    """float (N, C, H, W) in pixel units -> the protocol's view (N, C, S, S)."""
    ev, size = pl.net.eval, pl.net.input_size
    if proto.get("view", "single") == "single":
        v = transforms.center_crop(x, ev, size)
    else:  # one random crop of eval.crop pixels per image, no flip: training's per-image crop (transforms.augment)
        v = transforms.augment(transforms.eval_view(x, ev), AugmentParams(crop_padding=0, crop=ev.crop, flip=False),
                               size, gen)
    return v


def _logits(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = m(x)
    return (out[0] if isinstance(out, tuple) else out).float().cpu()  # train mode: googlenet's aux heads too


def measure(pl: Plan, model: nn.Module, data: Prepared, dev: torch.device) -> dict | None:
    """Top-1 under the seed's protocol (None when params give none), or why it is not measured here."""
    proto = (pl.recipe.seed_reference or {}).get("protocol")
    if not proto:
        return None
    out = {"protocol": describe(proto), "measured": False, "reason": None, "top1": None, "n_test": None}
    if proto.get("test_images") and pl.data.source == "folder":
        out["reason"] = ("not measured: an image-folder copy of the test set does not keep the official order that "
                         "'the first N test images' means")
        return out
    n = min(proto.get("test_images") or len(data.y_test), len(data.y_test))
    if pl.eval_samples is not None:  # the quick check: a few images
        n = min(n, pl.eval_samples)
    x, y = torch.from_numpy(data.x_test[:n]), torch.from_numpy(np.asarray(data.y_test[:n]))
    mean = torch.tensor(pl.mean).view(1, -1, 1, 1)
    std = torch.tensor(pl.std).view(1, -1, 1, 1)
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):  # the run's own random state untouched
        torch.manual_seed(pl.seed)
        gen = torch.Generator().manual_seed(pl.seed)
        x = x.float()
        if proto.get("mean") == "test_set":  # the mean image of the whole scored images, before any crop
            v = _views(x - x.mean(0, keepdim=True), pl, proto, gen) / 255.0 / std
        else:
            v = (_views(x, pl, proto, gen) / 255.0 - mean) / std
        m = copy.deepcopy(model).train() if proto.get("mode") == "train" else model.eval()
        bs = proto.get("batch") or pl.net.eval.batch_size
        chunks = list(v.split(bs))
        if len(chunks) > 1 and len(chunks[-1]) == 1 and proto.get("mode") == "train":
            chunks[-2:] = [torch.cat(chunks[-2:])]  # BatchNorm has no batch statistics of one image
        with torch.no_grad():
            logits = torch.cat([_logits(m, c.to(dev)) for c in chunks])
    out.update(measured=True, top1=round(float((logits.argmax(1) == y).float().mean()), 6), n_test=n)
    return out
