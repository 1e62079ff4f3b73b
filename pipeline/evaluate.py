"""`netpipe evaluate VARIANT`: test-set accuracy of the best checkpoint, single-crop and multi-crop.

The crops follow `nets.VARIANT.eval` as transforms.py cuts them (optional resize, padding, then crops resized to
the net's input size). Multi-crop testing is the AlexNet paper's: the four corner crops and the centre crop, each
also mirrored (10 views; 5 when `flips` is false, e.g. MNIST, where a mirrored digit is another symbol), with the
softmax outputs averaged. The centre crop is one of those views, so single-crop logits come for free: each test
image costs exactly one forward pass per view (the views of a batch are fed as K passes of N images).

artifacts/metrics/VARIANT.json (DVC metrics; accuracies are fractions; records.Metrics):
  top1, top5                 single centre crop
  top1_10crop, top5_10crop   multi-crop (the key names the protocol; `crops` says 10 or 5)
  val_top1                   single crop on the validation split
  per_class_top1, confusion  single crop; confusion rows are true classes, columns predicted ones
  n_test, n_val, crops, protocol, device, eval_seconds, checkpoint (epoch, config_hash), quick, command
(the report draws the confusion matrix as artifacts/confusion/VARIANT.png). Evaluation runs in fp32 (no bf16
autocast, no TF32) on CUDA when there is one, else on the CPU, whatever precision training chose
(pipeline/speed.py; training's own validation uses that choice): the deployed artefact is the fp32 ONNX file, and
export compares its onnxruntime accuracy with this one image for image (to 0.01 pp), which bf16 logits would not
allow.

`eval_images`, `crop_logits` and `accuracy` are shared with export.py, which runs the same images through
onnxruntime.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from . import fileio, paths, seed_protocol, transforms
from .data import Prepared, load_prepared, spread
from .params import NetParams, Params, Plan
from .records import CheckpointRef, Confusion, Metrics
from .model import device, device_name, load_model, norm_tensors, predict_logits

CENTRE = 4  # index of the centre crop among FiveCrop/TenCrop's views (tl, tr, bl, br, centre, then mirrored)


def eval_images(pl: Plan, data: Prepared) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Test and validation images and labels, cut to the plan's eval_samples (evenly spread; the quick check's)."""
    t, v = spread(len(data.y_test), pl.eval_samples), spread(len(data.y_val), pl.eval_samples)
    return data.x_test[t], data.y_test[t], data.x_val[v], data.y_val[v]


def protocol(net: NetParams) -> str:
    ev = net.eval
    steps = ([f"resize {ev.resize}"] if ev.resize else []) + ([f"pad {ev.pad} ({ev.padding_mode})"] if ev.pad else [])
    views = "4 corners + centre, each also mirrored" if ev.flips else "4 corners + centre, no mirroring"
    return (f"{' + '.join(steps + [f'{ev.crop}x{ev.crop} crops'])}, resized to {net.input_size}; single = centre crop; "
            f"{transforms.num_crops(ev)}-crop = {views}, softmax averaged")


def crop_logits(forward: Callable[[torch.Tensor], torch.Tensor], x_u8: np.ndarray, net: NetParams,
                mean: torch.Tensor, std: torch.Tensor, dev: torch.device, desc: str | None = None) -> torch.Tensor:
    """Logits (N, K, classes) of every eval view of uint8 images; `forward` maps a normalised float batch
    (n, C, S, S) to logits: a PyTorch model, or onnxruntime wrapped (export.py). Views [:, CENTRE] = single crop.
    The views are cut on the CPU whatever `dev` the network runs on: export compares this stage's accuracy with
    onnxruntime's image for image, so both must see the same pixels."""
    ev, size = net.eval, net.input_size

    def views(xb: torch.Tensor) -> torch.Tensor:  # (K, n, C, S, S)
        return transforms.multi_crops(xb, ev, size)

    def per_view(v: torch.Tensor) -> torch.Tensor:  # K passes of n images -> (n, K, classes)
        return torch.stack([forward(c) for c in v], 1)

    return predict_logits(per_view, torch.from_numpy(np.ascontiguousarray(x_u8)), views, ev.batch_size, mean, std, dev,
                          views_on_cpu=True, desc=desc)


def topk(scores: torch.Tensor, y: torch.Tensor, k: int) -> float:
    k = min(k, scores.shape[1])
    return (scores.topk(k, 1).indices == y[:, None]).any(1).float().mean().item()


def accuracy(logits: torch.Tensor, y: np.ndarray) -> dict:
    """Single-crop and multi-crop top-1/top-5 (fractions) from crop_logits' output: the one accuracy computation
    for both backends."""
    y = torch.from_numpy(np.asarray(y))
    probs = logits.float().softmax(-1).mean(1)
    single = logits[:, CENTRE]
    return {"top1": topk(single, y, 1), "top5": topk(single, y, 5),
            "top1_10crop": topk(probs, y, 1), "top5_10crop": topk(probs, y, 5)}


def confusion(pred: np.ndarray, y: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts: rows are true classes, columns predicted classes."""
    return np.bincount(y * num_classes + pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def run(p: Params, variant: str) -> dict:
    pl = p.plan(variant)
    net, dataset = pl.net, pl.dataset
    data = load_prepared(dataset, train=False)
    x_test, y_test, x_val, y_val = eval_images(pl, data)
    dev = device()
    if dev.type == "cuda":  # exact fp32, comparable with onnxruntime
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    model, ck = load_model(pl, dev)
    mean, std = norm_tensors(pl, dev)

    t0 = time.perf_counter()
    k = transforms.num_crops(net.eval)
    logits = crop_logits(model, x_test, net, mean, std, dev, desc=f"[{variant}] test, {k} views")
    seconds = time.perf_counter() - t0
    acc = accuracy(logits, y_test)
    val = predict_logits(model, torch.from_numpy(x_val), lambda xb: transforms.center_crop(xb, net.eval, net.input_size),
                         net.eval.batch_size, mean, std, dev, desc=f"[{variant}] validation")
    val_top1 = topk(val, torch.from_numpy(y_val), 1) if len(y_val) else None

    seed_view = seed_protocol.measure(pl, model, data, dev)
    classes = list(data.classes)
    matrix = confusion(logits[:, CENTRE].argmax(1).numpy(), y_test, len(classes))
    support = matrix.sum(1)
    per_class = {c: (round(float(matrix[i, i] / support[i]), 6) if support[i] else None) for i, c in enumerate(classes)}
    metrics = Metrics(
        variant=variant, arch=net.arch, dataset=dataset,
        **{key: round(v, 6) for key, v in acc.items()},
        val_top1=None if val_top1 is None else round(val_top1, 6),
        crops=k, protocol=protocol(net), n_test=len(y_test), n_val=len(y_val),
        per_class_top1=per_class,
        confusion=Confusion(classes=classes, rows="true class", columns="predicted class (single crop)",
                            matrix=matrix.tolist()),
        eval_seconds=round(seconds, 3),
        images_per_s=round(len(y_test) / seconds, 1) if seconds > 0 else None,
        device=device_name(dev), precision="fp32",
        checkpoint=CheckpointRef(epoch=ck.get("epoch"), config_hash=ck.get("config_hash")),
        quick=pl.quick, command=f"netpipe evaluate {variant}",
        git_commit=fileio.git_commit(), seed_protocol=seed_view,
    )
    out = metrics.write(paths.metrics(variant), paths.headline(variant, "evaluate"))
    print(f"[{variant}] test top-1 {acc['top1']:.4f} (single crop), {acc['top1_10crop']:.4f} ({k} crops); "
          f"top-5 {acc['top5']:.4f} / {acc['top5_10crop']:.4f}; val top-1 {metrics.val_top1} "
          f"| {len(y_test)} images in {seconds:.1f}s -> {paths.metrics(variant)}")
    return out
