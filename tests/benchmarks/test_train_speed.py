"""pytest-benchmark: netpipe's CPU training speed against a plain fp32 PyTorch loop, in one run.

    .venv/bin/pytest tests/benchmarks/test_train_speed.py --benchmark-only --benchmark-json=docs/results/cpu-train-speed/benchmark-MACHINE.json

For each variant: the same network (its registered builder and options), batch and data (a real prepared dataset
of generated images). netpipe's side is `train.run` itself (its loop with the recipe's augmentation, and the
bf16/channels-last choice of pipeline/speed.py); its images/s is the faster of epochs 2 and 3 (the first warms up
and fills the choice cache), validation on 8 images included. The plain side is the loop a user writes: fp32,
contiguous tensors, the recipe's optimizer (torch.optim), each batch normalised and, where the recipe augments, padded-cropped and flipped with
torchvision's v2 transforms; one untimed warm-up pass over the same steps, then the faster of two timed passes. `extra_info` holds both images/s,
their ratio and what netpipe used; the ratio is asserted >= 1 only loosely (0.9: timing noise on a shared machine),
the goal (>= 3x on a bf16-capable CPU for the conv-heavy nets) is read off the JSON.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import yaml

from tests.conftest import _REPO, _cwd

# variant, dataset, batch (googlenet and the 227x227 MNIST AlexNet at 32: a plain fp32 step takes seconds)
CASES = [("alexnet_thinner_4", "cifar10", 64), ("alexnet_keras", "cifar10", 64),
         ("googlenet_cifar", "cifar10", 32), ("alexnet_mnist_bn", "mnist", 32)]
STEPS = 8


def _project(root, variant: str, dataset: str, batch: int):
    from pipeline import data, params
    from tests.datagen import make_cifar_batches, make_mnist_idx

    n_train = batch * STEPS + 8
    if dataset == "cifar10":
        make_cifar_batches(root / "raw", n_train=n_train, n_test=8)
        src = {"source": "local", "path": str(root / "raw" / "cifar-10-batches-py")}
    else:
        make_mnist_idx(root / "raw", n_train=n_train, n_test=8)
        src = {"source": "local", "path": str(root / "raw")}
    raw = yaml.safe_load((_REPO / "params.yaml").read_text())
    raw["data"] = {dataset: {**raw["data"][dataset], **src, "val_size": 8}}
    raw["variants"] = {variant: dataset}
    raw["datasets"] = sorted(set(raw["variants"].values()))
    raw["nets"] = {variant: raw["nets"][variant]}
    raw["nets"][variant]["train"].update({"epochs": 3, "batch_size": batch, "max_steps_per_epoch": STEPS,
                                          "log_every": STEPS})
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with _cwd(root):
        p = params.load("params.yaml")
        data.prepare(p, dataset)
    return p


def _plain_images_per_s(p, variant: str, dataset: str, batch: int) -> float:
    import torch
    import torch.nn.functional as F

    from pipeline import nets
    from pipeline.data import load_prepared

    net = p.nets[variant]
    d = load_prepared(dataset)
    torch.manual_seed(0)
    model = nets.create(net.arch, d.num_classes, d.channels, input_size=net.input_size, **net.options)
    o = net.train.optimizer  # the recipe's optimizer, as plain PyTorch (nesterov costs a few ops per weight)
    if o.name in ("sgd", "nesterov"):
        opt = torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                              nesterov=o.name == "nesterov")
    else:
        opt = torch.optim.Adam(model.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in p.normalization(variant))
    from torchvision.transforms import v2

    x = torch.from_numpy(d.x_train[: batch * STEPS])
    if net.input_size != x.shape[-1]:
        x = F.interpolate(x.float(), size=net.input_size, mode="bilinear").round().clamp(0, 255).to(torch.uint8)
    x = x.view(STEPS, batch, *x.shape[1:])
    y = torch.from_numpy(d.y_train[: batch * STEPS]).view(STEPS, batch)
    aug = net.train.augment
    augment = (v2.Compose([v2.RandomCrop(net.input_size, padding=aug.crop_padding or None),
                           v2.RandomHorizontalFlip()]) if aug.enabled else (lambda b: b))
    model.train()

    def epoch():
        for i in range(STEPS):
            out = model((augment(x[i]).float() / 255 - mean) / std)
            loss = F.cross_entropy(out[0] if isinstance(out, tuple) else out, y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()

    epoch()  # warm-up
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        epoch()
        best = min(best, time.perf_counter() - t0)
    return STEPS * batch / best


@pytest.mark.parametrize("variant,dataset,batch", CASES, ids=[c[0] for c in CASES])
def test_train_speed_vs_plain(benchmark, tmp_path, variant, dataset, batch):
    from pipeline import fileio, paths, train

    p = _project(tmp_path, variant, dataset, batch)
    with _cwd(tmp_path):
        plain = _plain_images_per_s(p, variant, dataset, batch)
        summary = benchmark.pedantic(train.run, args=(p, variant), rounds=1, iterations=1)
        curves = list(__import__("csv").DictReader(paths.train_log(variant).open()))
        ours = STEPS * batch / min(float(c["seconds"]) for c in curves[1:])
        assert fileio.read_json(paths.train_summary(variant))["steps_per_epoch"] == STEPS
    ratio = ours / plain
    benchmark.group = "training images/s: netpipe vs plain fp32 loop"
    benchmark.extra_info.update({
        "variant": variant, "batch": batch, "steps": STEPS, "netpipe_images_per_s": round(ours, 1),
        "plain_fp32_images_per_s": round(plain, 1), "ratio": round(ratio, 2), "netpipe_uses": summary["speed"],
        "train_device": summary["train_device"],
    })
    print(f"{variant} batch {batch}: netpipe {ours:.1f} img/s ({summary['speed']['reason']}), plain fp32 "
          f"{plain:.1f} img/s, ratio {ratio:.2f}")
    assert np.isfinite(ratio) and ratio > 0.9
