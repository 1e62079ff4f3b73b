"""`netpipe train VARIANT`, in the shape of torchvision's references/classification/train.py:

- `run` -> `_setup` (model, optimizer, data on the device, batch geometry, and the `TrainState` restored from the
  resume checkpoint of this very run) -> `_train`'s epoch loop of `train_one_epoch` and `validate`, then the
  summary. `Run` holds a run's fixed parts; `TrainState` what it has done (saved and restored whole).
- The whole prepared dataset sits on the device as uint8; augmentation runs on whole batches there.
- bf16 autocast and channels-last where they pay (pipeline/speed.py); `torch.compile` when params say so.
- No host sync inside the step: losses stay on the device and are checked (NaN/inf) every `log_every` steps.
- Every epoch is a pure function of (seed, epoch): the data order, the augmentation and dropout draws come
  from generators seeded per epoch, so a run resumed from a checkpoint ends exactly where an uninterrupted
  one does. SIGINT/SIGTERM save the state after the step under way (with the generators' states) and raise
  `Interrupted`, which `run` turns into exit code 128 + signum.
- Outputs: models/VARIANT.pt (best by validation accuracy, or the last epoch with keep: last),
  artifacts/train/VARIANT.csv (per-epoch curves for `dvc plots`), artifacts/train/VARIANT.json (summary). Which
  checkpoint is kept, and the resume state of an unfinished run, are one policy: `Checkpointer`
  (pipeline/checkpoint.py).
- Several devices (params `distributed:`, pipeline/distributed.py, docs/distributed.md): one process per device under
  torchrun; each rank trains on its slice of every global batch, DistributedDataParallel averages the gradients,
  rank 0 alone writes the outputs (`Run.on_main`). With one process and no torchrun the loop is the plain one.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from . import code, distributed, fileio, nets, paths, speed, transforms
from .checkpoint import Checkpointer
from .recipe import epoch_seed, get_rng_state, make_optimizer, make_scheduler, not_deterministic, set_rng_state, use_deterministic
from .model import CHECKPOINT_FORMAT, build_model, device_name, norm_tensors, predict_logits
from .data import load_prepared, spread
from .errors import NetpipeError, TrainingDiverged, first_line
from .params import NetParams, Params, Plan, TrainParams
from .records import TrainSummary

CURVE_FIELDS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]


# ---------------------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------------------
class _Stop:
    """SIGINT/SIGTERM set a flag; the loop checkpoints at the next step boundary and exits. A second signal stops
    at once, except under torchrun, which passes a signal it gets on to the ranks (Ctrl-C reaches them twice)."""

    def __init__(self, escalate: bool = True) -> None:
        self.signum: int | None = None
        self.escalate = escalate
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "_Stop":
        for s in (signal.SIGINT, signal.SIGTERM):
            self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and self.escalate:  # second signal: stop now
            raise KeyboardInterrupt
        self.signum = self.signum or signum

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


def _write_curves(variant: str, history: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CURVE_FIELDS, lineterminator="\n")
    w.writeheader()
    for row in history:
        w.writerow({k: row[k] for k in CURVE_FIELDS})
    fileio.write_text(paths.train_log(variant), buf.getvalue())


class Interrupted(Exception):
    """SIGINT/SIGTERM reached the run (every rank agreed on it) and its state is saved: `run` exits 128 + signum."""

    def __init__(self, signum: int, where: str) -> None:
        super().__init__(where)
        self.signum, self.where = signum, where


@dataclass
class TrainState:
    """What a run has done, beyond its weights and optimizer: saved in the resume checkpoint and restored whole."""

    epoch: int = 0  # epochs completed
    step: int = 0  # steps done in the epoch under way (0 at an epoch boundary)
    history: list = field(default_factory=list)  # one row per completed epoch (the CSV's)
    best_val: float = -1.0
    best_epoch: int = -1
    train_seconds: float = 0.0
    partial: dict | None = None  # mid-epoch: the epoch's losses so far and its correct count (global batch)
    gen_state: Any = None  # mid-epoch: the epoch's augmentation/order generator
    rng_state: Any = None  # mid-epoch: the dropout generators, one per rank


@dataclass
class Run:
    """One training run's fixed parts: the recipe, the model, the data on the device, the batch geometry."""

    pl: Plan  # the variant as every stage sees it (Params.plan): its name, recipe, seed, config hash
    d: distributed.Dist
    dev: torch.device
    model: nn.Module  # the plain module (checkpoints, evaluation)
    step_model: nn.Module  # what a training step calls: DistributedDataParallel and/or compiled
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR  # the recipe's learning rate, stepped after every optimizer step
    fast: speed.Speed
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    bs: int  # the global batch
    steps: int  # per epoch
    code_hash: str
    ckpt: Checkpointer  # the best/last/resume policy and its files

    @property
    def variant(self) -> str:
        return self.pl.variant

    @property
    def net(self) -> NetParams:
        """The effective recipe (shortened in the quick check)."""
        return self.pl.net

    @property
    def config_hash(self) -> str:
        return self.pl.config_hash

    @property
    def tp(self) -> TrainParams:
        return self.net.train

    def on_main(self, fn, *args, **kwargs) -> None:
        """Rank-0-only I/O: checkpoints, curves, messages (torchvision's save_on_master). Pass a lambda when building
        the arguments costs something (a checkpoint dict): the other ranks then skip that too."""
        if self.d.main:
            fn(*args, **kwargs)

    def say(self, msg: str) -> None:
        self.on_main(print, f"[{self.variant}] {msg}", file=sys.stderr)

    def agree(self, signum: int | None) -> int | None:
        """The stop signal any rank has received (this rank's own without a process group)."""
        return self.d.max_signal(signum, self.dev) if self.d.enabled else signum

    def checkpoint(self, state: TrainState) -> dict:
        return {"format": CHECKPOINT_FORMAT, "variant": self.variant, "config_hash": self.config_hash,
                "code_hash": self.code_hash, "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(), **asdict(state), "speed": self.fast.to_dict()}

    def save_state(self, state: TrainState) -> None:
        """The resume checkpoint (rank 0 writes it)."""
        self.ckpt.save_resume(lambda: self.checkpoint(state))

    def best_checkpoint(self, epoch: int, val_acc: float, data) -> dict:
        net, pl = self.net, self.pl
        return {"format": CHECKPOINT_FORMAT, "variant": self.variant, "arch": net.arch, "options": dict(net.options),
                "dataset": pl.dataset, "classes": list(data.classes), "num_classes": data.num_classes,
                "in_channels": data.channels, "image_size": data.image_size, "input_size": net.input_size,
                "mean": list(pl.mean), "std": list(pl.std),
                "eval": net.eval.model_dump(mode="json"), "epoch": epoch, "val_top1": val_acc,
                "speed": self.fast.to_dict(), "config_hash": self.config_hash, "model": self.model.state_dict()}


def run(p: Params, variant: str) -> dict:
    """Train VARIANT here, or on distributed.devices x distributed.nodes processes through torchrun (pipeline/distributed.py).
    A signal saves the run's state and exits 128 + signum (the same command resumes)."""
    if p.distributed.world_size > 1 and not distributed.under_torchrun():
        distributed.launch(p.distributed, variant)
        summary = paths.train_summary(variant)  # written by rank 0 (on another machine when this is not node 0)
        return fileio.read_json(summary) if summary.exists() else {}
    d, dev = distributed.setup(p.distributed)
    try:
        return _train(p, variant, d, dev)
    except Interrupted as stop:
        if d.main:
            print(f"[{variant}] {signal.Signals(stop.signum).name}: {stop.where}; run the same command to resume",
                  file=sys.stderr)
        sys.exit(128 + stop.signum)
    except RuntimeError as exc:
        if op := not_deterministic(exc):
            raise NetpipeError(f"nets.{variant}.train.deterministic is true, but {op} has no "
                               f"deterministic kernel on {dev.type.upper()}: set deterministic: false for this variant "
                               "(or use a network without that operation)") from None
        if not distributed.peer_lost(exc):
            raise
        # another rank died in the middle of a collective: torchrun names it and stops the run
        raise NetpipeError(f"rank {d.rank}: lost contact with the other ranks ({first_line(exc, 160, sentence=True)})") from None
    except NetpipeError as exc:
        if d.world_size > 1:
            exc.args = (f"rank {d.rank}: {exc}",)
        raise
    finally:
        distributed.cleanup(d)


def _train(p: Params, variant: str, d: distributed.Dist, dev: torch.device) -> dict:
    """Set up the run (resuming its saved state if there is one), then the epoch loop."""
    r, state, data, n_params = _setup(p, variant, d, dev)
    tp = r.tp
    with _Stop(escalate=not d.enabled) as stop:
        for epoch in range(state.epoch, tp.epochs):
            t0 = time.perf_counter()
            train_loss, train_acc, lr = train_one_epoch(r, state, epoch, stop, t0)
            val_loss, val_acc = validate(r) if len(r.y_val) else (float("nan"), train_acc)  # none: select on train
            seconds = time.perf_counter() - t0
            state.train_seconds += seconds
            state.history.append({"epoch": epoch + 1, "train_loss": round(train_loss, 6),
                                  "train_acc": round(train_acc, 6), "val_loss": round(val_loss, 6),
                                  "val_acc": round(val_acc, 6), "lr": lr, "seconds": round(seconds, 3)})
            r.say(f"epoch {epoch + 1}/{tp.epochs}: train loss {train_loss:.4f} acc {train_acc:.4f} | "
                  f"val loss {val_loss:.4f} acc {val_acc:.4f} | lr {lr:.3g} | {seconds:.1f}s")
            one_epoch = tp.epochs == 1
            r.ckpt.after_epoch(state, epoch + 1, val_acc, lambda: r.best_checkpoint(epoch + 1, val_acc, data),
                               lambda: r.checkpoint(state), one_epoch)
            r.on_main(_write_curves, variant, state.history)
            stopping = r.agree(stop.signum)
            if stopping is not None:
                if one_epoch:
                    r.save_state(state)
                raise Interrupted(stopping, f"stopped after epoch {epoch + 1}")

    world = d.world_size
    images = state.history and len(state.history) * r.steps * r.bs
    summary = TrainSummary(
        variant=variant, arch=r.net.arch, dataset=r.pl.dataset, params=n_params,
        epochs=tp.epochs, steps_per_epoch=r.steps, batch_size=r.bs,
        best_epoch=state.best_epoch, val_top1=state.best_val,
        final_train_loss=state.history[-1]["train_loss"], final_train_acc=state.history[-1]["train_acc"],
        train_seconds=round(state.train_seconds, 3),
        images_per_s=round(images / state.train_seconds, 1) if state.train_seconds else None,
        train_device=device_name(dev) if world == 1 else f"{world} x {device_name(dev)}",
        world_size=world, per_device_batch=r.bs // world,
        cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        torch=torch.__version__, amp_bf16=r.fast.amp, channels_last=r.fast.channels_last,
        compiled=r.fast.compile, speed=r.fast.to_dict(), quick=r.pl.quick,
        config_hash=r.config_hash, code_hash=r.code_hash,
        command=f"netpipe train {variant}", git_commit=fileio.git_commit(),
    )
    r.on_main(_finish, r.ckpt, state.history, summary)
    return summary.model_dump(mode="json")


def train_one_epoch(r: Run, state: TrainState, epoch: int, stop: "_Stop", t0: float) -> tuple[float, float, float]:
    """One epoch, or the rest of it when `state` stopped in its middle: returns the epoch's training loss and
    accuracy over the global batch and its last learning rate. The epoch is a pure function of (seed, epoch): its
    order, augmentation and dropout draws come from generators seeded here. A stop the ranks agree on saves the
    state after the step under way and raises Interrupted."""
    d, dev, tp, opt = r.d, r.dev, r.tp, r.opt
    steps, world = r.steps, d.world_size
    local = r.bs // world
    cuda = dev.type == "cuda"
    r.model.train()
    gen = torch.Generator(device=dev).manual_seed(epoch_seed(r.pl.seed, epoch))
    perm = torch.randperm(len(r.x_train), device=dev, generator=gen)[: steps * r.bs].view(steps, r.bs)
    torch.manual_seed(epoch_seed(r.pl.seed, epoch) + 1 + d.rank)  # dropout draws (each rank its own)
    correct = torch.zeros((), device=dev, dtype=torch.long)
    loss_buf = torch.zeros(steps, device=dev)
    start_step = _resume_epoch(r, state, gen, loss_buf, correct) if state.step else 0
    bar = tqdm(total=steps, initial=start_step, desc=f"{r.variant} epoch {epoch + 1}/{tp.epochs}", unit="step",
               file=sys.stderr, dynamic_ncols=True, mininterval=1.0, leave=False, disable=not d.main)
    lr = opt.param_groups[0]["lr"]
    try:
        for step in range(start_step, steps):
            lr = opt.param_groups[0]["lr"]  # this step's: the scheduler set it after the last one
            xb, yb = _batch(r, perm[step], gen)
            loss, logits = _step(r, xb, yb)
            r.sched.step()
            loss_buf[step] = loss.detach()
            correct += (logits.detach().argmax(1) == yb).sum()
            last = step == steps - 1
            log_point = (step + 1) % tp.log_every == 0 or last
            stopping = stop.signum
            if d.enabled:  # the ranks agree on a stop where they sync anyway (every step on CPU)
                stopping = d.max_signal(stop.signum, dev) if (log_point or not cuda) else None
            if log_point or stopping is not None:  # loss and accuracy: a host sync, every log_every steps
                _check_finite(r, loss_buf[: step + 1], epoch, lr)
                if d.main:
                    seen = loss_buf[: step + 1]
                    bar.set_postfix(loss=f"{seen.mean().item():.4f}",
                                    acc=f"{correct.item() / ((step + 1) * local):.3f}", lr=f"{lr:.3g}", refresh=False)
            bar.update(1)  # every step: counting needs no device sync (tqdm redraws at most once a second)
            if stopping is not None and not last:  # the end of an epoch stops after its validation
                state.train_seconds += time.perf_counter() - t0
                _save_mid_epoch(r, state, step + 1, loss_buf[: step + 1].clone(), correct.clone(), gen)
                raise Interrupted(stopping, f"checkpoint saved at epoch {epoch + 1} step {step + 1}/{steps} to "
                                            f"{paths.last_checkpoint(r.variant)}")
    finally:
        bar.close()  # clear the progress bar: what follows is a line of its own
    if d.enabled:
        d.sum_(loss_buf).div_(world)
        d.sum_(correct)
    return loss_buf.mean().item(), correct.item() / (steps * r.bs), lr


def _resume_epoch(r: Run, state: TrainState, gen: torch.Generator, loss_buf: torch.Tensor,
                  correct: torch.Tensor) -> int:
    """Put an epoch that stopped in its middle back as it was (generators, partial sums); returns its next step."""
    d = r.d
    gen.set_state(state.gen_state)
    rng = state.rng_state if isinstance(state.rng_state, list) else [state.rng_state]
    set_rng_state(rng[d.rank % len(rng)], r.dev)
    # the partial sums are over the global batch: the ranks' sums at the epoch's end count them once
    loss_buf[:state.step] = state.partial["losses"].to(r.dev)
    if d.main:
        correct += int(state.partial["correct"])
    return state.step


def _batch(r: Run, idx: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A step's normalised images and labels: every rank draws the global batch's augmentation (one shared
    generator) and keeps its own slice."""
    xb = transforms.augment(r.x_train[idx], r.tp.augment, r.net.input_size, gen)
    if r.d.enabled:
        local = r.bs // r.d.world_size
        lo, hi = r.d.rank * local, (r.d.rank + 1) * local
        xb, idx = xb[lo:hi], idx[lo:hi]
    xb = transforms.normalize(xb, r.mean, r.std)
    if r.fast.channels_last:
        xb = xb.contiguous(memory_format=torch.channels_last)
    return xb, r.y_train[idx]


def _step(r: Run, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on a normalised batch: (loss, logits), the loss with the auxiliary heads' share."""
    tp = r.tp
    with speed.autocast(r.dev, r.fast.amp):
        out = r.step_model(xb)
        logits = out[0] if isinstance(out, tuple) else out
        loss = F.cross_entropy(logits.float(), yb, label_smoothing=tp.label_smoothing)
        if isinstance(out, tuple):
            for aux in out[1:]:
                loss = loss + tp.aux_weight * F.cross_entropy(aux.float(), yb, label_smoothing=tp.label_smoothing)
    r.opt.zero_grad(set_to_none=True)
    loss.backward()  # DistributedDataParallel averages the gradients over the ranks here
    if tp.grad_clip:
        nn.utils.clip_grad_norm_(r.model.parameters(), tp.grad_clip)
    r.opt.step()
    return loss, logits


def _save_mid_epoch(r: Run, state: TrainState, steps_done: int, losses: torch.Tensor, hits: torch.Tensor,
                    gen: torch.Generator) -> None:
    """The resume checkpoint after `steps_done` steps of the epoch under way, with its partial sums (as global-batch
    figures, as one process would have them) and the generators' states (every rank's dropout generator)."""
    d = r.d
    if d.enabled:
        losses, hits = d.sum_(losses) / d.world_size, d.sum_(hits)
    state.step, state.partial = steps_done, {"losses": losses.cpu(), "correct": int(hits)}
    state.gen_state = gen.get_state()
    state.rng_state = d.gather(get_rng_state(r.dev)) if d.enabled else get_rng_state(r.dev)
    r.save_state(state)


def _check_finite(r: Run, seen: torch.Tensor, epoch: int, lr: float) -> None:
    bad = (~torch.isfinite(seen)).nonzero()
    if len(bad):
        s = int(bad[0])
        raise TrainingDiverged(f"{r.variant}: loss is {seen[s].item()} at epoch {epoch + 1}, step {s + 1}/{r.steps} "
                               f"(lr {lr:.3g}); lower nets.{r.variant}.train.optimizer.lr or change the init")


def validate(r: Run) -> tuple[float, float]:
    """Loss and top-1 accuracy on the validation images (centre crop); under torchrun each rank predicts its
    share and every rank sees all the logits."""
    net, d = r.net, r.d
    r.model.eval()

    def center(xb):
        return transforms.center_crop(xb, net.eval, net.input_size)

    def logits_of(x: torch.Tensor) -> torch.Tensor:
        return predict_logits(r.model, x, center, r.tp.eval_batch_size, r.mean, r.std, r.dev, r.fast.amp)

    with torch.no_grad():
        if d.enabled:
            share = torch.arange(len(r.x_val)).tensor_split(d.world_size)[d.rank]
            logits = torch.cat(d.gather(logits_of(r.x_val[share])))
        else:
            logits = logits_of(r.x_val)
    return F.cross_entropy(logits, r.y_val).item(), (logits.argmax(1) == r.y_val).float().mean().item()


def _setup(p: Params, variant: str, d: distributed.Dist, dev: torch.device):
    """The run's model, optimizer, data and batch geometry, and its state: fresh, or restored from the resume
    checkpoint of this very run (same params, data and code; anything else starts over, saying why)."""
    pl = p.plan(variant)
    net = pl.net
    tp = net.train
    data = load_prepared(pl.dataset)
    config_hash = pl.config_hash
    code_hash = code.code_hash("train")  # the code this stage runs (dvc.yaml's deps): a resumed run must match it
    torch.manual_seed(pl.seed)
    if tp.deterministic:
        use_deterministic(dev)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = not tp.deterministic
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    model = build_model(pl, data.num_classes).to(dev)
    ckpt = Checkpointer(variant, tp.keep, config_hash, code_hash, d.main)
    ck = ckpt.read_resume(d)
    fast = _choose_speed(pl, model, dev, d, data, ck if ckpt.same_run(ck) else None)
    if fast.channels_last:
        model = model.to(memory_format=torch.channels_last)
    n_params = nets.count_params(model)
    model, ddp_model = distributed.wrap(model, d, pl.distributed, dev)  # (model, model) on one process
    bs, steps, sched_steps = _geometry(pl, len(data.y_train), d.world_size)
    opt = make_optimizer(model, net)
    sched = make_scheduler(opt, net, pl.recipe.train.epochs, sched_steps)
    step_model = torch.compile(ddp_model) if fast.compile else ddp_model
    mean, std = norm_tensors(pl, dev)

    x_val, y_val = data.x_val, data.y_val
    if pl.eval_samples is not None:  # the quick check's few validation images
        keep = spread(len(y_val), pl.eval_samples)
        x_val, y_val = x_val[keep], y_val[keep]
    r = Run(pl, d, dev, model, step_model, opt, sched, fast,
            torch.from_numpy(data.x_train).to(dev), torch.from_numpy(data.y_train).to(dev),
            torch.from_numpy(x_val), torch.from_numpy(y_val), mean, std, bs, steps, code_hash, ckpt)

    state = TrainState()
    resume_path = paths.last_checkpoint(variant)
    if ck is not None:
        if not ckpt.same_run(ck):
            r.say(ckpt.why_not(ck))
        else:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])  # its groups' learning rates for the next step, which
            sched.load_state_dict(ck["scheduler"])  # continues from the optimizer steps taken so far
            state = TrainState(**{f.name: ck[f.name] for f in fields(TrainState)})
            r.say(f"resuming from {resume_path} at epoch {state.epoch + state.step / steps:.2f}")
    return r, state, data, n_params


def _geometry(pl: Plan, n: int, world: int) -> tuple[int, int, int]:
    """(global batch, steps per epoch, steps per epoch of the schedule) for n training images on `world` ranks."""
    tp = pl.net.train
    if tp.batch_size % world:
        raise NetpipeError(f"nets.{pl.variant}.train.batch_size {tp.batch_size} is the global batch and must split "
                           f"evenly over the {world} processes of this torchrun launch")
    bs = min(tp.batch_size, n) // world * world  # the global batch; each rank takes bs // world images of it
    steps = n // bs if bs else 0  # drop the last partial batch (steady shapes for compile/cudnn)
    full = pl.recipe.train  # the recipe before the quick check shortened it
    sched_steps = min(steps, full.max_steps_per_epoch or steps)  # the schedule's steps per epoch
    if tp.max_steps_per_epoch:
        steps = min(steps, tp.max_steps_per_epoch)
    if not pl.quick:
        sched_steps = steps
    # the quick check runs the recipe's first steps: its learning rate follows the full recipe's schedule (the
    # optimizer steps taken so far over the recipe's epochs), not a schedule squeezed into the shortened run
    if steps == 0:
        raise NetpipeError(f"{pl.dataset}: {n} training images is fewer than one batch of {tp.batch_size}")
    return bs, steps, sched_steps


def _choose_speed(pl: Plan, model: nn.Module, dev: torch.device, d: distributed.Dist, data,
                  ck: dict | None) -> speed.Speed:
    """bf16/channels-last/compile for this run (pipeline/speed.py): a resumed run keeps its checkpoint's choice;
    otherwise rank 0 decides and every rank follows."""
    if ck is not None and ck.get("speed"):  # a resumed run (the caller checked it is the same run)
        return speed.Speed.from_dict(ck["speed"])
    fast = None
    if d.main:
        fast = speed.choose_for(pl, model, dev, data.num_classes, d.world_size, may_measure=not pl.quick).to_dict()
    fast = speed.Speed.from_dict(d.broadcast(fast))
    if d.main:
        print(f"[{pl.variant}] training in {fast.label}: {fast.reason}", file=sys.stderr)
    return fast


def _finish(ckpt: Checkpointer, history: list[dict], summary: TrainSummary) -> None:
    """The stage's outputs: the kept checkpoint linked into place, the curves, the summary; then the resume files go
    (pipeline/checkpoint.py)."""
    ckpt.finish()
    _write_curves(ckpt.variant, history)
    summary.write(paths.train_summary(ckpt.variant), paths.headline(ckpt.variant, "train"))
    ckpt.discard()
