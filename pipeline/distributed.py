"""Training on several devices or machines with PyTorch's own engine (docs/distributed.md): torchrun starts one
process per device, DistributedDataParallel averages the gradients. Modelled on torchvision's
references/classification/utils.py (init_distributed_mode, is_main_process, reduce).

- `netpipe train VARIANT` with distributed.devices x distributed.nodes > 1 starts torchrun itself (`launch`: this process
  becomes torchrun's agent and the workers run `python -m pipeline train VARIANT ...`); under an outer
  torchrun (LOCAL_RANK and WORLD_SIZE set) every process simply runs, whatever the params say.
- `setup` joins the process group; `Dist` says who this process is. Rank 0 alone writes files.
- A variant's batch_size is the global batch: each rank takes its slice of every global batch.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import traceback
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from . import paths
from .errors import NetpipeError, first_line
from .params import DistributedParams


def under_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))


@dataclass(frozen=True)
class Dist:
    """This process's place in the run. `enabled`: a process group exists (under torchrun, even alone)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    enabled: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank (picklable objects; identity without a process group)."""
        if not self.enabled:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list:
        """Every rank's `obj`, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out: list = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """Sum `t` over the ranks, in place (identity without a process group)."""
        if self.enabled:
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
        return t

    def max_signal(self, signum: int | None, dev: torch.device) -> int | None:
        """The stop signal any rank has received, so that every rank stops at the same step."""
        t = torch.tensor([signum or 0], device=dev)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return int(t.item()) or None


def peer_lost(exc: BaseException) -> bool:
    """A collective failed because another process went away (gloo's and NCCL's errors are RuntimeErrors)."""
    text = str(exc)
    return isinstance(exc, torch.distributed.DistError) or any(
        k in text for k in ("Connection reset by peer", "Connection closed by peer", "gloo/transport", "NCCL error"))


def setup(dp: DistributedParams) -> tuple[Dist, torch.device]:
    """Join the process group when running under torchrun; otherwise the single-process setting."""
    if not under_torchrun():
        return Dist(), torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rank, local, world = (int(os.environ[k]) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
    cuda = torch.cuda.is_available()
    backend = dp.backend if dp.backend != "auto" else ("nccl" if cuda else "gloo")
    if backend == "nccl" and not cuda:
        raise NetpipeError("distributed.backend is nccl but there is no CUDA GPU here; allowed on CPU: gloo (or auto)")
    if cuda:
        if local >= torch.cuda.device_count():
            raise NetpipeError(f"local rank {local} has no GPU: this machine shows {torch.cuda.device_count()} "
                               f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); "
                               f"lower distributed.devices")
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    torch.distributed.init_process_group(backend, device_id=dev if backend == "nccl" else None)
    return Dist(rank, local, world, True), dev


def cleanup(d: Dist) -> None:
    """Leave the process group, DistributedDataParallel first. A gloo group that DDP still holds is destroyed
    later by the interpreter, holding the GIL while it joins gloo's thread, which may be waiting for the GIL
    to free a finished collective's tensors: a deadlock at exit (seen with torch 2.13, about one exit in ten).
    So the frames of an exception on its way out (a stop's SystemExit, an error) drop their locals here."""
    if not (d.enabled and torch.distributed.is_initialized()):
        return
    exc = sys.exc_info()[1]
    while exc is not None:
        traceback.clear_frames(exc.__traceback__)
        exc = exc.__context__
    gc.collect()
    torch.distributed.destroy_process_group()


def wrap(model: nn.Module, d: Dist, dp: DistributedParams, dev: torch.device) -> tuple[nn.Module, nn.Module]:
    """(model, the module to train): SyncBatchNorm where params say so (CUDA only: PyTorch has no CPU
    version), then DistributedDataParallel. Checkpoints save `model`, so their format is the single-process one."""
    if not d.enabled:
        return model, model
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if dp.sync_batchnorm and has_bn and dev.type == "cuda" and d.world_size > 1:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    elif dp.sync_batchnorm and has_bn and d.world_size > 1 and d.main:
        print("netpipe: note: SyncBatchNorm needs CUDA; on CPU each rank's BatchNorm sees its own slice of the batch",
              file=sys.stderr)
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    return model, ddp


# ---------------------------------------------------------------------------------------------------------
# self-launch: this process becomes torchrun's agent
# ---------------------------------------------------------------------------------------------------------
def torchrun_args(dp: DistributedParams, variant: str, argv: list[str]) -> list[str]:
    """torchrun's command line for `python -m pipeline ARGV`: --standalone on one machine, else a c10d rendezvous."""
    args = [f"--nproc-per-node={dp.devices}"]
    if dp.nodes == 1:
        args.append("--standalone")  # a free port on localhost: runs beside each other never collide
    else:
        args += [f"--nnodes={dp.nodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={dp.rdzv_endpoint}",
                 f"--rdzv-id={dp.rdzv_id or 'netpipe-' + variant}"]
    return args + ["--module", "pipeline", *argv]


def _describe(rank: int, failure) -> tuple[str, int]:
    """One line naming the rank that failed first, and the exit code to pass on."""
    where = f"rank {rank} (local rank {failure.local_rank}, pid {failure.pid})"
    code = failure.exitcode
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"{where} was killed by {name}", 128 - code
    return f"{where} exited with code {code}", code


class LaunchFailed(NetpipeError):
    def __init__(self, msg: str, exit_code: int):
        super().__init__(msg)
        self.exit_code = exit_code


def launch(dp: DistributedParams, variant: str) -> None:
    """Run this same `netpipe train` command under torchrun, one process per device. A failed rank ends the run
    with one line naming it (torchrun stops the others); the exit code is the failed rank's."""
    import logging

    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError

    argv = sys.argv[1:]
    if not argv or argv[0] != "train" or variant not in argv:
        raise NetpipeError(f"distributed.devices x distributed.nodes = {dp.world_size}: run `netpipe train {variant}` (it starts "
                           "torchrun) or start it under torchrun yourself")
    if torch.cuda.is_available() and dp.devices > torch.cuda.device_count():
        raise NetpipeError(f"distributed.devices is {dp.devices} but this machine has {torch.cuda.device_count()} GPU(s) "
                           f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})")
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // dp.devices)))
    for name in list(logging.root.manager.loggerDict):  # torchrun's agent logs nothing: failures are ours to say
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    args = torchrun_args(dp, variant, argv)
    print(f"netpipe: torchrun {' '.join(args)}", file=sys.stderr)
    try:
        torchrun.run(torchrun.parse_args(args))
    except ChildFailedError as exc:
        failures = sorted(exc.failures.items(), key=lambda kv: kv[1].timestamp)
        stops = {128 + signal.SIGINT, 128 + signal.SIGTERM}
        if all(f.exitcode in stops for _, f in failures):  # the ranks stopped on a signal, checkpoint written
            sys.exit(failures[0][1].exitcode)
        msg, code = _describe(*failures[0])
        resume = paths.last_checkpoint(variant)
        hint = f"; the same command resumes from {resume}" if resume.exists() else ""
        raise LaunchFailed(f"{msg}; torchrun stopped the other ranks{hint}", code) from None
    except SignalException as exc:  # torchrun passed the signal on to the ranks, which checkpointed
        sys.exit(128 + int(exc.sigval))
    except RendezvousError as exc:
        raise NetpipeError(f"torchrun rendezvous at {dp.rdzv_endpoint} failed ({type(exc).__name__}: "
                           f"{first_line(exc)}); check distributed.rdzv_endpoint and that "
                           f"all {dp.nodes} nodes started") from None
