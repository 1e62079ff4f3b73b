"""What the real training loop does, observed from outside it while `train.run` trains a tiny network:

- the learning rate every optimizer step actually uses, in every parameter group (not only the schedule function's
  value at an epoch), against figures written out by hand;
- which parameters carry weight decay in the optimizer each recipe of params.yaml really builds (every `decay_on`
  value there), shown by the optimizer's own step on zero gradients;
- the mode (train/eval) of the network in every forward pass: training in train mode, validation in eval mode; and
  that the best checkpoint is the first epoch of highest validation accuracy, whose saved weights give, in eval
  mode, the validation loss and accuracy its curve row records.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from tests.conftest import _REPO, _cwd
from tests.datagen import make_cifar_batches

VARIANT = "alexnet_cifar"  # decay_on: linear (two parameter groups), dropout in its classifier
BASE_LR = 0.01
STEPS, EPOCHS = 4, 3


def _project(root, epochs: int = EPOCHS, options: dict | None = None, **train) -> None:
    make_cifar_batches(root / "raw", n_train=12 * STEPS + 24, n_test=8)  # 24 held out for validation
    raw = yaml.safe_load((_REPO / "params.yaml").read_text())
    raw["data"] = {"cifar10": {**raw["data"]["cifar10"], "source": "local", "path": str(root / "raw"),
                               "val_size": 24}}
    raw["variants"] = {VARIANT: "cifar10"}
    raw["datasets"] = ["cifar10"]
    net = raw["nets"][VARIANT]
    net["options"].update({"pool_stride": 2, **(options or {})})  # the compact net: 3.3M parameters
    # fp32 on every CPU: the speed measurement (pipeline/speed.py) then has nothing to try, so no other optimizer
    # steps in this process
    net["train"].update({"epochs": epochs, "batch_size": 12, "max_steps_per_epoch": STEPS, "log_every": 1,
                         "eval_batch_size": 24, "deterministic": True, "amp": False, "channels_last": False, **train})
    net["train"]["optimizer"]["lr"] = BASE_LR
    raw["nets"] = {VARIANT: net}
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def _train(root) -> list[dict]:
    from pipeline import data, params, paths, train

    with _cwd(root):
        p = params.load("params.yaml")
        data.prepare(p, "cifar10")
        train.run(p, VARIANT)
        return list(csv.DictReader(paths.train_log(VARIANT).open()))


@contextlib.contextmanager
def _optimizer_steps():
    """The learning rate of every parameter group at each optimizer step taken inside the block."""
    seen: list[list[float]] = []
    handle = register_optimizer_step_pre_hook(lambda opt, args, kwargs: seen.append([g["lr"] for g in opt.param_groups]))
    try:
        yield seen
    finally:
        handle.remove()


def test_every_step_uses_the_scheduled_learning_rate_in_every_group(tmp_path):
    """Warm-up from 0.2x over the first epoch, then halved every epoch; 4 steps an epoch. Step k (from 0) runs at
    epoch k / 4. Written out, not computed by the code under test."""
    _project(tmp_path, schedule={"name": "step", "step_size": 1, "gamma": 0.5, "warmup_epochs": 1,
                                 "warmup_start": 0.2})
    with _optimizer_steps() as seen:
        curve = _train(tmp_path)
    want = [0.2, 0.4, 0.6, 0.8, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25]
    assert len(seen) == len(want), seen  # one optimizer step per batch, nothing else
    assert all(len(groups) == 2 for groups in seen)  # decay_on linear: kernels with weight decay, the rest without
    for k, (groups, factor) in enumerate(zip(seen, want)):
        assert groups == pytest.approx([BASE_LR * factor] * 2, rel=1e-12, abs=0), f"step {k}: {groups}"
    # the curve's lr column: the last step's rate of each epoch
    assert [float(r["lr"]) for r in curve] == pytest.approx([BASE_LR * want[STEPS * e - 1] for e in (1, 2, 3)])


def test_quick_check_runs_the_full_recipes_first_steps(tmp_path):
    """The quick check shortens the run, not the schedule: its steps use the full recipe's first rates."""
    _project(tmp_path, schedule={"name": "cosine", "min_lr": 0.0, "warmup_epochs": 2, "warmup_start": 0.1})
    raw = yaml.safe_load((tmp_path / "params.yaml").read_text())
    raw["quick"].update({"enabled": True, "epochs": 1, "max_steps_per_epoch": 2, "batch_size": 12})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with _optimizer_steps() as seen:
        _train(tmp_path)
    # the full recipe: 3 epochs of 4 steps, warm-up over 2 epochs; steps 0 and 1 sit at epochs 0 and 0.25
    want = [(0.1 + 0.9 * e / 2) * 0.5 * (1 + math.cos(math.pi * e / EPOCHS)) for e in (0.0, 0.25)]
    assert [g[0] for g in seen] == pytest.approx([BASE_LR * w for w in want], rel=1e-12)


# ---------------------------------------------------------------------------------------------------------
# weight decay in the optimizer each recipe builds
# ---------------------------------------------------------------------------------------------------------
_KINDS = {"conv": (nn.Conv1d, nn.Conv2d, nn.Conv3d), "linear": (nn.Linear,)}


def _recipes() -> dict[str, list[str]]:
    """One variant per (decay_on, optimizer, weight decay or none) in params.yaml: the first in its order."""
    raw = yaml.safe_load((_REPO / "params.yaml").read_text())
    seen: dict[tuple, str] = {}
    for name in raw["variants"]:
        o = raw["nets"][name]["train"]["optimizer"]
        key = (o.get("decay_on", "all"), o["name"], bool(o.get("weight_decay")))
        seen.setdefault(key, name)
    return {f"{v}-{k[0]}-{k[1]}" + ("-wd" if k[2] else ""): v for k, v in seen.items()}


RECIPES = _recipes()


def test_params_use_every_decay_on_value():
    """The parametrization below covers conv, linear and all kernels with weight decay (what params.yaml has)."""
    assert {name.split("-")[1] for name in RECIPES if name.endswith("-wd")} == {"all", "conv", "linear"}


@pytest.mark.parametrize("variant", list(RECIPES.values()), ids=list(RECIPES))
def test_weight_decay_reaches_exactly_the_recipes_kernels(variant):
    """The optimizer `train` builds for the variant's recipe, stepped on zero gradients: a parameter moves only by
    weight decay, so the ones that move are the ones that carry it (the decay_on layer type's kernels, or every
    parameter for "all"; nothing without weight decay), by exactly what the optimizer's update rule gives."""
    from pipeline import params, recipe
    from pipeline.model import build_model

    p = params.load(_REPO / "params.yaml")
    o = p.variant(variant).train.optimizer
    with torch.device("meta"):  # the real network's shapes, without drawing its weights
        model = build_model(p.plan(variant), 10)
    model.to_empty(device="cpu")
    with torch.no_grad():
        for q in model.parameters():
            q.fill_(1.0)
            q.grad = torch.zeros_like(q)
    opt = recipe.make_optimizer(model, p.variant(variant))
    named = dict(model.named_parameters())
    if not o.weight_decay:
        want = set()
    elif o.decay_on == "all":
        want = set(named)
    else:
        want = {f"{m_name}.weight" for m_name, m in model.named_modules() if isinstance(m, _KINDS[o.decay_on])}
        assert 0 < len(want) < len(named)
    opt.step()
    moved = {n for n, q in named.items() if not torch.equal(q, torch.ones_like(q))}
    assert moved == want, sorted(moved ^ want)[:10]
    if want:  # one step of weight decay alone: SGD w -= lr*wd*w, Adam's first step moves by lr (g / |g|)
        n = next(iter(sorted(want)))
        step = o.lr * o.weight_decay if o.name in ("sgd", "nesterov") else o.lr
        if o.name == "nesterov":
            step *= 1 + o.momentum  # the look-ahead step: g + momentum * buf, buf = g on the first step
        assert named[n].flatten()[0].item() == pytest.approx(1.0 - step, rel=1e-6)


# ---------------------------------------------------------------------------------------------------------
# train mode for training, eval mode for validation, and the best checkpoint it chooses
# ---------------------------------------------------------------------------------------------------------
def test_validation_in_eval_mode_chooses_and_saves_the_best_epoch(tmp_path):
    """Dropout 0.5: validation in train mode would move the loss far beyond the tolerance below. The third epoch
    runs at a learning rate of 1e-32 (far below a weight's last bit): its weights, and so its validation accuracy,
    are the second's, a tie that the best checkpoint must resolve to the earlier epoch."""
    _project(tmp_path, options={"dropout": 0.5}, schedule={"name": "multistep", "milestones": [2], "gamma": 1e-30})
    forwards: list[tuple[bool, bool]] = []  # (grad enabled, dropout module in training mode) at each dropout call

    def hook(module, args):
        if isinstance(module, nn.Dropout):
            forwards.append((torch.is_grad_enabled(), module.training))

    handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
    try:
        curve = _train(tmp_path)
    finally:
        handle.remove()
    training = [t for g, t in forwards if g]
    validating = [t for g, t in forwards if not g]
    assert training and validating  # both happened
    assert all(training), "a training step ran with dropout in eval mode"
    assert not any(validating), "validation ran with dropout in train mode"

    from pipeline import params, paths, transforms
    from pipeline.data import load_prepared
    from pipeline.model import load_model

    with _cwd(tmp_path):
        p = params.load("params.yaml")
        summary = yaml.safe_load(paths.train_summary(VARIANT).read_text())
        model, ck = load_model(p.plan(VARIANT))
        val = load_prepared("cifar10")
    accs = [float(r["val_acc"]) for r in curve]
    assert accs[2] == accs[1] and float(curve[2]["val_loss"]) == float(curve[1]["val_loss"])  # the frozen epoch
    best = accs.index(max(accs)) + 1  # the first epoch of highest validation accuracy: never the frozen third
    assert best < 3
    assert summary["best_epoch"] == ck["epoch"] == best and summary["val_top1"] == pytest.approx(max(accs), abs=1e-6)
    # the saved weights, in eval mode, give the validation figures the best epoch's row records
    mean, std = p.normalization(VARIANT)
    net = p.variant(VARIANT)
    crops = transforms.center_crop(torch.from_numpy(val.x_val), net.eval, net.input_size)
    x = transforms.normalize(crops, torch.tensor(mean), torch.tensor(std))
    y = torch.from_numpy(val.y_val).long()
    assert not model.training
    with torch.no_grad():
        logits = model(x)
    row = curve[best - 1]
    assert F.cross_entropy(logits, y).item() == pytest.approx(float(row["val_loss"]), abs=2e-5)
    assert (logits.argmax(1) == y).float().mean().item() == pytest.approx(float(row["val_acc"]), abs=1e-6)


# ---------------------------------------------------------------------------------------------------------
# deterministic: true
# ---------------------------------------------------------------------------------------------------------
def test_deterministic_on_cuda_sets_cublas_workspace_unless_the_user_did(monkeypatch):
    from pipeline import recipe

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = torch.are_deterministic_algorithms_enabled()
    try:
        recipe.use_deterministic(torch.device("cpu"))
        assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ and torch.are_deterministic_algorithms_enabled()
        recipe.use_deterministic(torch.device("cuda"))  # nothing of CUDA runs: the setting is made before its use
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
        recipe.use_deterministic(torch.device("cuda"))
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    finally:
        torch.use_deterministic_algorithms(before)


# torch's own words when a kernel has no deterministic implementation (LRN's backward on CUDA runs avg_pool3d's);
# no CPU kernel raises it, so the training run below meets it through a hook on its LRN layer
TORCH_ALERT = ("avg_pool3d_backward_cuda does not have a deterministic implementation, but you set "
               "'torch.use_deterministic_algorithms(True)'. You can turn off determinism just for this operation, or "
               "you can use the 'warn_only=True' option, if that's acceptable for your application.")


def test_a_kernel_without_a_deterministic_version_is_one_line_naming_the_setting(tmp_path):
    from pipeline.errors import NetpipeError

    _project(tmp_path, epochs=1)

    def hook(module, args, out):
        if isinstance(module, nn.LocalResponseNorm) and torch.is_grad_enabled():
            raise RuntimeError(TORCH_ALERT)

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        with pytest.raises(NetpipeError) as err:
            _train(tmp_path)
    finally:
        handle.remove()
        torch.use_deterministic_algorithms(False)
    assert str(err.value) == (f"nets.{VARIANT}.train.deterministic is true, but avg_pool3d_backward_cuda has no "
                              "deterministic kernel on CPU: set deterministic: false for this variant (or use a "
                              "network without that operation)")


def test_the_progress_bar_counts_every_step_between_log_points(tmp_path, monkeypatch):
    """A slow run's bar moves at every step, not every `log_every` steps (a 2-core CPU at 11.6 s a step sat at 0% for
    almost 10 minutes): counting needs no device sync; loss and accuracy still wait for a log point. Observed through
    the real tqdm bar, subclassed to note where each update leaves it."""
    from tqdm import tqdm

    from pipeline import train

    seen: list[tuple[str, int]] = []

    class Noting(tqdm):
        def update(self, n=1):
            out = super().update(n)
            seen.append((self.desc, self.n))
            return out

    monkeypatch.setattr(train, "tqdm", Noting)
    _project(tmp_path, epochs=1, log_every=1000)
    _train(tmp_path)
    assert [n for desc, n in seen if desc.endswith("epoch 1/1")] == [1, 2, 3, 4]


def test_the_seeds_split_trains_on_every_image_and_keeps_the_last_epoch(tmp_path):
    """`data.DATASET.val_size: 0` with `keep: last`: no validation split (all 72 training images train) and
    models/VARIANT.pt holds the last epoch, as the seeds' code kept it, whatever the accuracies did."""
    import json

    import numpy as np

    from pipeline import paths
    from pipeline.model import load_checkpoint

    _project(tmp_path, epochs=3, keep="last")
    raw = yaml.safe_load((tmp_path / "params.yaml").read_text())
    raw["data"]["cifar10"]["val_size"] = 0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    curve = _train(tmp_path)
    with _cwd(tmp_path):
        with np.load(paths.prepared("cifar10")) as z:
            assert (len(z["y_train"]), len(z["y_val"])) == (72, 0)
        ck = load_checkpoint(paths.checkpoint(VARIANT), "checkpoint")
        summary = json.loads(paths.train_summary(VARIANT).read_text())
    assert all(math.isnan(float(r["val_loss"])) for r in curve)  # nothing to validate on
    assert ck["epoch"] == summary["best_epoch"] == 3
    accs = [float(r["val_acc"]) for r in curve]  # the training accuracy stands in
    assert round(summary["val_top1"], 6) == accs[-1]  # the last epoch's, whichever was highest
