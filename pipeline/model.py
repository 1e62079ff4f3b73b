"""What several stages share about a trained model: the device, building a variant's network, checkpoints
(saved and loaded safely), normalisation and batched inference. Train, evaluate, export and bench import it, so an
edit to the training loop (pipeline/train.py) reruns training only (dvc.yaml: each stage's deps are the code it runs).
"""

from __future__ import annotations

import errno
import sys

import torch
from torch import nn

from . import fileio, nets, paths, speed, transforms
from .errors import NetpipeError, first_line
from .params import Plan

CHECKPOINT_FORMAT = "netpipe-checkpoint-1"


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({speed.cpu_model()}, {torch.get_num_threads()} threads)"


def build_model(pl: Plan, num_classes: int) -> nn.Module:
    net = pl.net
    return nets.create(net.arch, num_classes=num_classes, in_channels=pl.channels, where=f"nets.{pl.variant}.options",
                       input_size=net.input_size, **net.options)


def norm_tensors(pl: Plan, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(pl.mean, device=dev), torch.tensor(pl.std, device=dev)


def torch_save(obj: dict, path) -> None:
    """torch.save, with its writer's failures (a full disk, an I/O error: a bare RuntimeError such as "[enforce
    fail at inline_container.cc] unexpected pos") turned into the OSError that fileio reports in one line."""
    try:
        torch.save(obj, path)
    except RuntimeError as exc:
        raise OSError(errno.EIO, f"write failed, disk full or I/O error (torch: {first_line(exc, 160, sentence=True)})") from None


def save(path, obj: dict) -> None:
    fileio.write_with(path, lambda tmp: torch_save(obj, tmp))


def load_checkpoint(path, what: str = "checkpoint") -> dict:
    """Load a netpipe checkpoint safely (weights_only: no code runs); a corrupt file is reported by name."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise NetpipeError(f"{what} {path} not found (run `netpipe train` or `dvc repro` first)") from None
    except Exception as exc:  # truncated zip, pickle refused by weights_only, ...
        raise NetpipeError(f"{what} {path} is corrupt or not a netpipe checkpoint ({type(exc).__name__}: "
                           f"{first_line(exc)})") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise NetpipeError(f"{what} {path} is not a netpipe checkpoint (format {CHECKPOINT_FORMAT})")
    return ck


def load_model(pl: Plan, dev: torch.device | None = None) -> tuple[nn.Module, dict]:
    """The best checkpoint of VARIANT, built and in eval mode. The network is built on the meta device and takes
    the checkpoint's tensors as they are: no time is spent drawing initial weights that the checkpoint replaces
    (seconds for the 58M-parameter nets on a small CPU)."""
    ck = load_checkpoint(paths.checkpoint(pl.variant))
    with torch.device("meta"):
        model = build_model(pl, ck["num_classes"])
    model.load_state_dict(ck["model"], assign=True)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:  # a tensor the checkpoint does not hold (a non-persistent buffer): build it for real
        model = build_model(pl, ck["num_classes"])
        model.load_state_dict(ck["model"])
    model.eval()
    if dev is not None:
        model.to(dev)
    return model, ck


@torch.no_grad()
def predict_logits(model: nn.Module, x_u8: torch.Tensor, view, batch_size: int, mean, std,
                   dev: torch.device, amp: bool = False, views_on_cpu: bool = False,
                   desc: str | None = None) -> torch.Tensor:
    """Logits (fp32, on CPU) for uint8 images, batch by batch; `view(batch)` cuts the crop(s) to feed, on `dev`, or
    on the CPU with `views_on_cpu` (the same pixels on every machine: torchvision resizes uint8 on CUDA through
    float32, on the CPU with a uint8 kernel, and 13-18% of the pixels then differ by one level). With `desc`, a
    progress bar over the batches on stderr (when there are several)."""
    from tqdm import tqdm

    out = []
    starts = range(0, len(x_u8), batch_size)
    for i in tqdm(starts, desc=desc, unit="batch", file=sys.stderr, mininterval=1.0, leave=False,
                  disable=desc is None or len(starts) < 2):
        xb = x_u8[i:i + batch_size]
        xb = view(xb).to(dev, non_blocking=True) if views_on_cpu else view(xb.to(dev, non_blocking=True))
        with speed.autocast(dev, amp):
            out.append(model(transforms.normalize(xb, mean, std).contiguous()).float())
    return torch.cat(out).cpu() if out else torch.empty(0)
