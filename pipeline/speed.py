"""Which accelerations a training run uses: bf16 autocast (`amp`), channels-last and `torch.compile`.

Params say what is *allowed* (`nets.V.train.amp`, `.channels_last`, `.compile`); this module says what is *used*:

- CUDA: what params allow (bf16 autocast, channels-last, compile when asked), as always.
- CPU: each is used only where it makes this variant's training faster on this machine. bf16 needs native bf16
  matrix instructions (AVX512-BF16 or AMX, as oneDNN reports them); amp and channels-last are then decided by a
  short measurement at the start of training: a few SGD steps of the real network, batch and input size in each
  allowed combination, on a throw-away copy of the model with random input (the global random state is not
  touched, so a run's results do not depend on it). The fastest combination wins if it beats plain fp32 by at least
  `MARGIN`; otherwise fp32 stays. The decision is cached per machine (processor, threads, torch) and variant in
  `~/.cache/netpipe/cpu-speed.json` ($NETPIPE_CACHE_DIR overrides the folder), and a resumed run reuses the
  decision saved in its checkpoint, so it stays bitwise equal to an uninterrupted run. The quick check does not
  measure (its few steps would not repay it): it uses a cached decision, else fp32.
- `torch.compile` on the CPU: compiling takes minutes on a small machine and is measured only when params ask for
  it (`compile: true`): it is used when its steady-state gain over the run's steps repays the compile time.

The decision and its reason go into the training summary (`artifacts/train/VARIANT.json`: `cpu_speed`) and the
report's training-speed table.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .records import SpeedChoice

MARGIN = 1.05  # a combination must be this much faster than fp32 to be used (timing noise on a busy machine)
MEASURE_BATCH = 32  # measurement batch (at most the recipe's): the step's cost per image, not the recipe's memory
MEASURE_STEPS = 3  # timed steps per combination, after one warm-up step; the fastest counts
CACHE_VERSION = 1


Speed = SpeedChoice  # what a training run uses, and why (one class: records.SpeedChoice)


def bf16_native() -> bool:
    """Native bf16 matrix work on this CPU (AVX512-BF16 or AMX), as oneDNN sees it."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_model() -> str:
    """The processor's model name (/proc/cpuinfo), with its bf16 matrix extensions (AMX, AVX512-BF16) named:
    machines sold under one name differ in them."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key = line.split(":", 1)[0].strip().lower()
            if key == "model name" and name == (platform.processor() or platform.machine()):
                name = line.split(":", 1)[1].strip()
            elif key == "flags" and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    ext = [label for flag, label in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX512-BF16")) if flag in flags]
    return f"{name}, {'/'.join(ext)}" if ext else name


def cache_path(name: str = "cpu-speed") -> Path:
    """A per-machine cache file of netpipe's measurements: ~/.cache/netpipe/NAME.json ($NETPIPE_CACHE_DIR)."""
    root = os.environ.get("NETPIPE_CACHE_DIR") or Path.home() / ".cache" / "netpipe"
    return Path(root) / f"{name}.json"


def _combo_name(amp: bool, cl: bool) -> str:
    return ("bf16" if amp else "fp32") + ("+channels_last" if cl else "")


def _step_seconds(model: nn.Module, x: torch.Tensor, y: torch.Tensor, amp: bool, cl: bool, steps: int) -> float:
    """Fastest of `steps` timed SGD steps (after one warm-up) of `model` in the given mode."""
    m = copy.deepcopy(model)
    if cl:
        m = m.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    m.train()
    opt = torch.optim.SGD(m.parameters(), lr=1e-6, momentum=0.9)
    best = float("inf")
    for i in range(steps + 1):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out = m(x)
            logits = out[0] if isinstance(out, tuple) else out
            loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i:
            best = min(best, time.perf_counter() - t0)
    return best


def measure(model: nn.Module, input_shape: tuple[int, int, int], num_classes: int, batch: int,
            combos: list[tuple[bool, bool]], steps: int = MEASURE_STEPS) -> dict[str, float]:
    """Images/s of one training step of `model` in each (amp, channels_last) combination, on random input."""
    b = max(1, min(batch, MEASURE_BATCH))
    with torch.random.fork_rng():  # leaves the run's random state exactly as it was
        g = torch.Generator().manual_seed(0)
        x = torch.randn((b, *input_shape), generator=g)
        y = torch.randint(0, num_classes, (b,), generator=g)
        return {_combo_name(a, c): round(b / _step_seconds(model, x, y, a, c, steps), 1) for a, c in combos}


def _cache_key(arch: str, options: dict, input_shape, batch: int, allow: tuple[bool, bool]) -> str:
    return json.dumps({"v": CACHE_VERSION, "cpu": cpu_model(), "threads": torch.get_num_threads(),
                       "torch": torch.__version__, "arch": arch, "options": options, "input": list(input_shape),
                       "batch": min(batch, MEASURE_BATCH), "allow": list(allow)}, sort_keys=True)


def read_cache(name: str = "cpu-speed") -> dict:
    try:
        data = json.loads(cache_path(name).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_cache(key: str, value: dict, name: str = "cpu-speed") -> None:
    """Add one entry to a cache file (written atomically; a read-only home leaves it unwritten)."""
    path = cache_path(name)
    try:
        data = read_cache(name)
        data[key] = value
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:  # a read-only home: measure again next time
        pass


def choose_for(pl, model: nn.Module, dev: torch.device, num_classes: int, world_size: int = 1, *,
               may_measure: bool = True) -> Speed:
    """`choose` for a variant's recipe (`pl`: its pipeline.params.Plan), per-device batch: what training decides at
    its start (pipeline/train.py; docs/results/learn/learn.py makes the same call to fill the cache)."""
    net = pl.net
    tp = net.train
    return choose(model, dev, amp=tp.amp, channels_last=tp.channels_last, compile=tp.compile, arch=net.arch,
                  options=dict(net.options), input_shape=(pl.channels, net.input_size, net.input_size),
                  num_classes=num_classes, batch=max(1, tp.batch_size // world_size), may_measure=may_measure)


def choose(model: nn.Module, dev: torch.device, *, amp: bool, channels_last: bool, compile: bool, arch: str,
           options: dict, input_shape: tuple[int, int, int], num_classes: int, batch: int,
           may_measure: bool = True) -> Speed:
    """What this run uses (see the module docstring). `model` is only copied, never changed. Without
    `may_measure` (the quick check: a few steps do not repay half a minute of measuring) a cached decision is used,
    else fp32."""
    if dev.type == "cuda":
        return Speed(amp=amp, channels_last=channels_last, compile=compile,
                     reason="CUDA: as params say (bf16 autocast, channels-last, compile)")
    native = bf16_native()
    combos = [(a, c) for a in ([False, True] if amp and native else [False])
              for c in ([False, True] if channels_last else [False])]
    notes = []
    if amp and not native:
        notes.append("bf16 off: this CPU has no native bf16 matrix instructions (AVX512-BF16/AMX)")
    if not amp:
        notes.append("bf16 off in params")
    if compile:
        notes.append("compile not used on the CPU: compiling takes minutes on a small machine and was not measured")
    if len(combos) == 1:
        return Speed(amp=False, channels_last=False, compile=False,
                     reason="; ".join(notes + ["fp32 (nothing else allowed)"]), bf16_native=native)
    key = _cache_key(arch, options, input_shape, batch, (amp, channels_last))
    cached = read_cache().get(key)
    if cached:
        try:
            speed = Speed.from_dict(cached)
            speed.reason = f"{speed.reason} (cached measurement)"
            return speed
        except ValueError:  # an entry another version wrote (pydantic's ValidationError is a ValueError)
            pass
    if not may_measure:
        return Speed(amp=False, channels_last=False, compile=False,
                     reason="; ".join(notes + ["not measured in the quick check"]), bf16_native=native)
    measured = measure(model, input_shape, num_classes, batch, combos)
    base = measured["fp32"]
    best = max(combos, key=lambda c: measured[_combo_name(*c)])
    gain = measured[_combo_name(*best)] / base
    b = min(batch, MEASURE_BATCH)
    if best != (False, False) and gain >= MARGIN:
        why = f"measured fastest: {_combo_name(*best)} {gain:.2f}x fp32 (training steps, batch {b})"
    else:
        why = f"measured: nothing beat fp32 by {MARGIN - 1:.0%} (best {_combo_name(*best)} {gain:.2f}x, batch {b})"
        best = (False, False)
    speed = Speed(amp=best[0], channels_last=best[1], compile=False, reason="; ".join(notes + [why]), measured=measured,
                  bf16_native=native)
    write_cache(key, speed.to_dict())
    return speed


def autocast(dev: torch.device, amp: bool):
    """bf16 autocast on the device when `amp` (CUDA or CPU); a no-op otherwise (on any device type)."""
    return torch.autocast(dev.type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()
