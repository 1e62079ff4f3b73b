"""Loaded at start-up by the test subprocesses whose PYTHONPATH starts with tests/hooks (test_faults, test_ddp).
Each hook acts only when its environment variable is set. The audit and the signal observe the real training run
and send it real signals; the third breaks DistributedDataParallel on purpose to show that a test catches it.
Nothing in netpipe is replaced.

NETPIPE_TEST_AUDIT=FILE
    Log every rename onto models/ or artifacts/ (how fileio's atomic writes land) with the writer's RANK and pid.

NETPIPE_TEST_DDP_GRADIENT=local|half
    Break multi-process training on purpose, for the DDP negative tests: each rank keeps its own gradient (local),
    or the averaged gradient is halved (half).

NETPIPE_TEST_SIGNAL="STEP SIGNAL TARGET"  (e.g. "11 SIGTERM self", "8 SIGTERM parent")
    When an optimizer in this process (rank 0 under torchrun) completes its STEP-th step, send SIGNAL to TARGET:
    `self`, or `parent` (the `netpipe train` process that runs torchrun and passes the signal on to the ranks);
    then wait until this process's own signal handler has seen it, so the stop falls after exactly that step
    instead of whichever step a timer happens to hit. Steps count from the start of this process (a resumed run
    counts from its resume point) and per optimizer; STEP must exceed the 4 steps of the CPU speed measurement's
    throw-away optimizer (pipeline/speed.py).

NETPIPE_TEST_WARM_SERVER=matmul|cuda
    Make the warm-start server (pipeline/warm_server.py) unsafe to fork from, for its refusal tests: as it binds its socket
    (its imports done, before any command), run a torch matmul in it (the OpenMP thread pool starts), or have
    torch.cuda.is_initialized() answer True (on a CPU machine nothing else can make CUDA initialised).
"""

import os
import sys

_log = os.environ.get("NETPIPE_TEST_AUDIT")
if _log:
    def _audit(event, args):
        if event == "os.rename":
            dst = os.fsdecode(args[1])
            if "/models/" in dst or "/artifacts/" in dst or dst.startswith(("models/", "artifacts/")):
                with open(_log, "a") as fh:
                    fh.write(f"{os.environ.get('RANK', '-')} {os.getpid()} {dst}\n")
    sys.addaudithook(_audit)

_at = os.environ.get("NETPIPE_TEST_SIGNAL")
if _at and os.environ.get("RANK", "0") == "0":
    import signal
    import time
    import weakref

    from torch.optim.optimizer import register_optimizer_step_post_hook

    _step, _name, _target = _at.split()
    _step, _sig = int(_step), signal.Signals[_name]
    assert _step > 4 and _target in ("self", "parent"), _at
    _counts: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

    def _seen() -> bool:
        """Whether the handler now installed for the signal (training's stop flag) has recorded it."""
        handler = signal.getsignal(_sig)
        return getattr(getattr(handler, "__self__", None), "signum", None) is not None

    def _after_step(opt, args, kwargs) -> None:
        _counts[opt] = _counts.get(opt, 0) + 1
        if _counts[opt] != _step:
            return
        os.kill(os.getpid() if _target == "self" else os.getppid(), _sig)
        deadline = time.monotonic() + 20
        while _sig != signal.SIGKILL and not _seen() and time.monotonic() < deadline:
            time.sleep(0.01)

    register_optimizer_step_post_hook(_after_step)

_gradient = os.environ.get("NETPIPE_TEST_DDP_GRADIENT")
if _gradient:
    # A broken multi-process setup, for the negative tests: DistributedDataParallel's gradient all-reduce replaced
    # by a communication hook that keeps each rank's local gradient (no averaging over the ranks: "local"), or
    # that averages and then halves it (a gradient of the wrong scale, as dividing by the world size twice on 2
    # ranks would give: "half").
    import torch
    import torch.distributed as _dist
    from torch.nn.parallel import DistributedDataParallel as _DDP

    assert _gradient in ("local", "half"), _gradient
    _ddp_init = _DDP.__init__

    def _local_gradient(state, bucket):
        fut = torch.futures.Future()
        fut.set_result(bucket.buffer())
        return fut

    def _half_gradient(state, bucket):
        buf = bucket.buffer().div_(2 * _dist.get_world_size())
        return _dist.all_reduce(buf, async_op=True).get_future().then(lambda fut: fut.value()[0])

    def _init_broken(self, *args, **kwargs):
        _ddp_init(self, *args, **kwargs)
        self.register_comm_hook(None, _local_gradient if _gradient == "local" else _half_gradient)

    _DDP.__init__ = _init_broken

_warm = os.environ.get("NETPIPE_TEST_WARM_SERVER")
_argv = getattr(sys, "orig_argv", [])
if _warm and any("from pipeline.warm_server import serve" in a for a in _argv):
    import socket as _socket

    assert _warm in ("matmul", "cuda"), _warm
    _sock = _argv[_argv.index("-c") + 2]  # python -c BOOT PATH SYS_PATH
    _bind = _socket.socket.bind

    def _bind_then_spoil(self, address):
        """The server binds its socket after its imports and its thread count, before it accepts a command."""
        _bind(self, address)
        if address == _sock:
            import torch

            if _warm == "matmul":
                a = torch.randn(256, 256)
                a @ a
            else:
                torch.cuda.is_initialized = lambda: True

    _socket.socket.bind = _bind_then_spoil
