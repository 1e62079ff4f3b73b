"""Does each family's own recipe learn? A few dozen steps of the recipe in params.yaml (its optimizer, learning rate,
schedule, initialisation, normalisation and augmentation; batch and data scaled down) on small generated data
that a working network separates easily (tests/datagen.py: a colour and a bright square per class).

Each test runs the real `train.run` and asserts that the loss stays finite, falls, and that validation accuracy
ends clearly above chance. An initialisation or learning rate that blows up the first steps (the 000 family's He
init on pixel-scale inputs: NaN by step 12 on the real data) or leaves the net dead (constant outputs, loss ln 10)
fails here.
"""

from __future__ import annotations

import csv
import math

import pytest
import yaml

from tests.conftest import _REPO, _cwd

# variant (its family's recipe), batch, steps per epoch, epochs
FAMILIES = {
    "alexnet_cifar_nolrn": (16, 20, 2),   # 000: the seed's init and pixel-scale inputs, 24x24 crops, jitter
    "alexnet_thinner_4": (16, 20, 2),     # 002: Keras he_normal / glorot, nesterov
    "googlenet_cifar": (16, 12, 2),       # 003: BatchNorm, SGD 0.1, cosine
    "alexnet_mnist_bn": (8, 12, 2),       # 004: 227x227, the seed's init (BatchNorm variant)
}


def learn(root, variant: str, batch: int, steps: int, epochs: int, **net_overrides) -> list[dict]:
    """Train VARIANT's recipe on generated data in ROOT; return its per-epoch curve."""
    from pipeline import data, params, paths, train
    from tests.datagen import make_cifar_batches, make_mnist_idx

    raw = yaml.safe_load((_REPO / "params.yaml").read_text())
    dataset = raw["variants"][variant]
    n_train = batch * steps + 64
    if dataset == "cifar10":
        src = {"source": "local", "path": str(make_cifar_batches(root / "raw", n_train=n_train, n_test=8))}
    else:
        src = {"source": "local", "path": str(make_mnist_idx(root / "raw", n_train=n_train, n_test=8))}
    raw["data"] = {dataset: {**raw["data"][dataset], **src, "val_size": 64}}
    raw["variants"] = {variant: dataset}
    raw["datasets"] = sorted(set(raw["variants"].values()))
    net = raw["nets"][variant]
    net["train"].update({"epochs": epochs, "batch_size": batch, "max_steps_per_epoch": steps, "log_every": steps,
                         "deterministic": True})
    for key, value in net_overrides.items():
        node = net
        *path, last = key.split(".")
        for k in path:
            node = node[k]
        node[last] = value
    raw["nets"] = {variant: net}
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with _cwd(root):
        p = params.load("params.yaml")
        data.prepare(p, dataset)
        train.run(p, variant)
        return list(csv.DictReader(paths.train_log(variant).open()))


def assert_learns(curve: list[dict]) -> None:
    losses = [float(r["train_loss"]) for r in curve]
    assert all(math.isfinite(v) for v in losses), losses
    assert losses[-1] < losses[0], losses
    assert float(curve[-1]["val_acc"]) >= 0.3, curve  # chance is 0.1


@pytest.mark.parametrize("variant", list(FAMILIES))
def test_recipe_learns_on_small_data(tmp_path, variant):
    assert_learns(learn(tmp_path, variant, *FAMILIES[variant]))


def test_blown_up_init_fails_the_learning_check(tmp_path):
    """The check can fail: the 000 family's old recipe (He init on pixel-scale inputs) does not learn."""
    from pipeline.errors import TrainingDiverged

    with pytest.raises((AssertionError, TrainingDiverged)):
        assert_learns(learn(tmp_path, "alexnet_cifar_nolrn", *FAMILIES["alexnet_cifar_nolrn"], **{"options.init": "msra"}))
