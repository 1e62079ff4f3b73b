"""A training recipe's pieces: the learning-rate schedule (a LambdaLR over `lr_factor`), the optimizer and its weight
decay groups, deterministic kernels, and the per-epoch random state (pipeline/train.py uses them)."""

from __future__ import annotations

import math
import os
import re

import torch
from torch import nn

from .params import NetParams, ScheduleParams


def param_groups(model: nn.Module, weight_decay: float, decay_on: str) -> list[dict]:
    """One group with every parameter (decay_on "all"), or the conv / linear kernels with weight decay and the
    rest (biases, norms, the other layer type) without."""
    if decay_on == "all":
        return [{"params": list(model.parameters()), "weight_decay": weight_decay}]
    kind = nn.modules.conv._ConvNd if decay_on == "conv" else nn.Linear
    decay = {id(m.weight) for m in model.modules() if isinstance(m, kind)}
    params = list(model.parameters())
    return [{"params": [q for q in params if id(q) in decay], "weight_decay": weight_decay},
            {"params": [q for q in params if id(q) not in decay], "weight_decay": 0.0}]


def lr_factor(s: ScheduleParams, epoch: float, total_epochs: int, base_lr: float, steps_per_epoch: int = 1) -> float:
    """Learning-rate multiplier at a fractional epoch (warm-up times the schedule)."""
    warm = 1.0
    if s.warmup_epochs and epoch < s.warmup_epochs:
        warm = s.warmup_start + (1.0 - s.warmup_start) * epoch / s.warmup_epochs
    if s.name == "constant":
        f = 1.0
    elif s.name == "step":
        f = s.gamma ** math.floor(epoch / s.step_size)
    elif s.name == "multistep":
        f = s.gamma ** sum(epoch >= m for m in s.milestones)
    elif s.name == "exponential" and s.decay_steps:  # staircase: the optimizer steps taken so far
        f = s.gamma ** (round(epoch * steps_per_epoch) // s.decay_steps)
    elif s.name == "exponential":
        f = s.gamma ** epoch
    else:  # cosine to min_lr over the run
        floor = s.min_lr / base_lr
        f = floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(epoch / total_epochs, 1.0)))
    return warm * f


def make_scheduler(opt: torch.optim.Optimizer, net: NetParams, full_epochs: int,
                   sched_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The recipe's learning rate as torchvision's references drive it: a scheduler stepped after every optimizer step.
    After k steps the schedule stands at epoch k / sched_steps (the full recipe's steps per epoch: the quick check
    runs the recipe's first steps at the recipe's own rates) of `full_epochs`."""
    s, base = net.train.schedule, net.train.optimizer.lr
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: lr_factor(s, k / sched_steps, full_epochs, base, sched_steps))


def make_optimizer(model: nn.Module, net: NetParams) -> torch.optim.Optimizer:
    """The recipe's optimizer, in torch.optim's fused implementation (one kernel over each parameter's update, on
    the CPU and on CUDA): the same update rule as the default per-parameter loop, in one pass over the weights instead
    of several; the plain loop's optimizer step was the largest cost after the convolutions on a CPU
    (docs/results/cpu-train-loop/). Where a build has no fused kernel for these parameters, the default is used."""
    o = net.train.optimizer
    groups = param_groups(model, o.weight_decay, o.decay_on)
    if o.name in ("sgd", "nesterov"):
        cls, kw = torch.optim.SGD, dict(lr=o.lr, momentum=o.momentum, nesterov=o.name == "nesterov")
    else:
        cls, kw = (torch.optim.Adam if o.name == "adam" else torch.optim.AdamW), dict(lr=o.lr, betas=o.betas)
    try:
        return cls(groups, fused=True, **kw)
    except (RuntimeError, ValueError):  # e.g. a device type without fused kernels
        return cls(groups, **kw)


def use_deterministic(dev: torch.device) -> None:
    """`deterministic: true`: deterministic kernels only. On CUDA, cuBLAS needs its fixed workspace for that, set
    through the environment before its first call (unless the user set one)."""
    if dev.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)


def not_deterministic(exc: BaseException) -> str | None:
    """The operation named by torch's error for a kernel with no deterministic implementation (LRN's backward on
    CUDA, avg_pool3d_backward_cuda, for one), else None."""
    m = re.match(r"(\S+) does not have a deterministic implementation", str(exc))
    return m.group(1) if m else None


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919) % (2**63 - 1)


def get_rng_state(dev: torch.device) -> dict:
    """The generators that draw dropout masks: the CPU one, and the device's on CUDA (so that a run resumed in
    the middle of an epoch draws the rest of that epoch's masks as an uninterrupted run would)."""
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None}


def set_rng_state(state: dict, dev: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if dev.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], dev)



