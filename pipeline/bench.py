"""`netpipe bench VARIANT`: inference latency and throughput of one variant on every available backend.

Backends (params `bench.backends`; each in each precision of `bench.precisions` where it can run): the table
BACKENDS below, one row per backend with the device and precisions it runs, from which every "cannot run here"
reason comes (ultralytics' export_formats() is the model). In short:
- ort_cuda          onnxruntime, CUDA provider, IO binding with input and output on the GPU (no host copies
                    timed); plus `ort_cuda_graph`, the same with the provider option enable_cuda_graph.
- ort_cpu           onnxruntime, CPU provider.
- torch_eager       PyTorch eager (the reference: every result carries its speedup over torch_eager fp32).
- torch_compile     torch.compile (inductor, static shapes: one compile per batch size, time-boxed).
- torch_cuda_graph  PyTorch eager captured in a CUDA graph and replayed.
onnxruntime runs the exported file of the precision: models/VARIANT.onnx (fp32), .fp16.onnx, .int8.onnx (QDQ,
pipeline/quantize.py). PyTorch casts the model: fp16 on CUDA only, bf16 on CUDA and on CPUs with native bf16 matrix
instructions (AVX512-BF16/AMX; channels-last there, as training uses); int8 exists as an ONNX file only.
A combination that cannot run here (no GPU, no such model file, a failed compile, ...) is listed under "skipped"
with the reason, never silently dropped.

Method: the first inference at each batch size is timed on its own (`first_inference_ms`: allocation, cuDNN
autotuning, compilation, graph capture), then `bench.warmup` untimed runs, then at least `bench.iterations`
timed runs (and at least `bench.min_seconds`), each one synchronised: CUDA events around each PyTorch call
on the GPU, perf_counter around onnxruntime calls (their outputs synchronised) and on the CPU. Inputs are
random uint8 images normalised with the variant's mean/std. On the CPU one measurement stops after
`bench.cpu_max_seconds` (at least machine.CPU_MIN_ITERATIONS runs) so a CPU machine finishes in minutes; `iterations` says how
many runs each figure rests on.

The floor: the model's FLOPs per image (its convolutions and matmuls on one input, counted by forward hooks: the
count torch.utils.flop_counter gives, which tests/test_bench_report.py checks on every registered network) and its
bytes (weights, read once per batch, plus each image's input and logits) over the machine's peaks, measured once
per machine and cached (machine.machine_peak), on each device used (a large matmul's FLOP/s in each precision, a large copy's bytes/s):
floor_ms = max(FLOPs / peak FLOP/s, bytes / peak bytes/s); fraction_of_peak = floor_ms / p50_ms.
The machine's description and peaks, the model's FLOPs and bytes, the floor and the timing loop are in machine.py.

Output: artifacts/bench/VARIANT.json (see `run`).
"""

from __future__ import annotations

import copy
import datetime as _dt
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from . import paths, runtime, speed, transforms
from .model import device as torch_device, load_model, norm_tensors
from .errors import NetpipeError, first_line
from .machine import TORCH_DTYPE, Timer, floor_ms, machine_info, machine_peak, measure, model_stats
from .params import BENCH_ALSO_WRITES, Params, Plan
from .records import BenchReport

FLOOR_METHOD = ("floor_ms = max(flops_per_image * batch / peak matmul FLOP/s, (weights_bytes + batch * "
                "(input + output bytes per image)) / peak copy bytes/s), peaks of the device and precision the backend "
                "runs in (fp32 on a GPU: TF32 allowed, as the backends run it; int8: the fp32 peak, no int8 matmul is measured); "
                "fraction_of_peak = floor_ms / p50_ms")

_ORT_NP = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


class Skip(Exception):
    """A combination that cannot run here; the message is the reason recorded in the output."""


@dataclass(frozen=True)
class Backend:
    """One row of the backend table: what it runs on and in which precisions."""
    runtime: str  # "onnxruntime" (runs the exported file of the precision) or "torch" (casts the model)
    device: str  # "cuda" (needs a GPU), "cpu", or "best" (CUDA where PyTorch has it, else the CPU)
    precisions: tuple[str, ...]
    why_not: tuple[tuple[str, str], ...] = ()  # (precision, why this backend does not run it), where it needs saying


BACKENDS: dict[str, Backend] = {  # keys: params.BENCH_BACKENDS, in its order
    "ort_cuda": Backend("onnxruntime", "cuda", ("fp32", "fp16"), (
        ("int8", "onnxruntime's CUDA provider has no int8 kernels for QDQ graphs: it would run fp32 convolutions "
                 "between QuantizeLinear/DequantizeLinear nodes, not int8 (ort_cpu runs the int8 file)"),)),
    "ort_cpu": Backend("onnxruntime", "cpu", ("fp32", "fp16", "int8")),
    "torch_eager": Backend("torch", "best", ("fp32", "fp16", "bf16")),
    "torch_compile": Backend("torch", "best", ("fp32", "fp16", "bf16")),
    "torch_cuda_graph": Backend("torch", "cuda", ("fp32", "fp16", "bf16")),
}


def cannot_run(backend: str, precision: str, cuda_torch: bool, cuda_ort: bool) -> str | None:
    """Why `backend` cannot run `precision` on this machine (from the table), or None when it may try."""
    row = BACKENDS[backend]
    if precision in dict(row.why_not):
        return dict(row.why_not)[precision]
    if precision not in row.precisions:
        what = "the exported files" if row.runtime == "onnxruntime" else "PyTorch's casts"
        return f"{backend} runs {'/'.join(row.precisions)} ({what}): no {precision} path"
    if row.device == "cuda" and not (cuda_ort if row.runtime == "onnxruntime" else cuda_torch):
        return NO_ORT_CUDA if row.runtime == "onnxruntime" else "no CUDA device"
    on_gpu = row.device == "cuda" or (row.device == "best" and cuda_torch)
    if row.runtime == "torch" and not on_gpu:
        if precision == "fp16":
            return "fp16 on PyTorch needs a CUDA device (none here)"
        if precision == "bf16" and not speed.bf16_native():
            return "bf16 on the CPU needs native bf16 matrix instructions (AVX512-BF16/AMX): none on this CPU"
    return None


def make_input(pl: Plan, shape: tuple[int, ...], batch: int, seed: int) -> torch.Tensor:
    """Random images (uint8, as real ones) normalised with the variant's mean/std: float32 (batch, C, H, W)."""
    g = torch.Generator().manual_seed(seed + batch)
    u8 = torch.randint(0, 256, (batch, *shape), dtype=torch.uint8, generator=g)
    mean, std = norm_tensors(pl, torch.device("cpu"))
    return transforms.normalize(u8, mean, std).contiguous()


# ---------------------------------------------------------------------------------------------------------
# backends: each yields (batch, callable) after its setup; a Skip names why a combination cannot run
# ---------------------------------------------------------------------------------------------------------
def _torch_model(base: nn.Module, dev: torch.device, precision: str) -> nn.Module:
    m = copy.deepcopy(base).to(dev)
    if precision != "fp32":
        m = m.to(TORCH_DTYPE[precision])
    if _channels_last(dev, precision):
        m = m.to(memory_format=torch.channels_last)
    return m.eval()


def _channels_last(dev: torch.device, precision: str) -> bool:
    """CUDA, and bf16 on the CPU (oneDNN's bf16 convolutions run in channels-last)."""
    return dev.type == "cuda" or precision == "bf16"


def _torch_input(x: torch.Tensor, dev: torch.device, precision: str) -> torch.Tensor:
    x = x.to(dev, dtype=TORCH_DTYPE[precision])
    return x.contiguous(memory_format=torch.channels_last) if _channels_last(dev, precision) else x


def _ort_io(sess, batch: int, num_classes: int) -> tuple[str, Any, str, Any]:
    inp, out = sess.get_inputs()[0], sess.get_outputs()[0]
    b0 = inp.shape[0]
    if isinstance(b0, int) and b0 != batch:
        raise Skip(f"batch {batch}: the ONNX model has a fixed batch size of {b0} (export.dynamic_batch: false)")
    if inp.type not in _ORT_NP or out.type not in _ORT_NP:
        raise Skip(f"unsupported ONNX input/output types {inp.type}/{out.type}")
    return inp.name, _ORT_NP[inp.type], out.name, _ORT_NP[out.type]


NO_ORT_CUDA = "no CUDA device usable by onnxruntime's CUDA provider"


def _onnx_path(variant: str, precision: str):
    path = paths.onnx(variant, precision)
    if not path.exists():
        raise Skip(f"{path} not found (run `netpipe export {variant}`)")
    return path


class Runner:
    """Everything one `netpipe bench` run shares: params, model, inputs, timing settings, results."""

    def __init__(self, pl: Plan) -> None:
        self.pl, self.variant = pl, pl.variant
        b = pl.bench  # the quick check's shorter matrix already applied (Params.plan)
        self.batch_sizes, self.iterations, self.warmup = list(b.batch_sizes), b.iterations, b.warmup
        self.backends, self.precisions = list(b.backends), list(b.precisions)
        self.min_seconds = b.min_seconds
        self.cpu_max_seconds = b.cpu_max_seconds
        self.compile_budget = b.compile_budget_s
        self.threads = b.cpu_threads
        self.results: dict[str, dict[str, dict[str, dict]]] = {}
        self.skipped: list[dict] = []
        self.setup_ms: dict[str, dict[str, float]] = {}

    # ---- bookkeeping ---------------------------------------------------------------------------------------
    def skip(self, backend: str, precision: str, reason: str) -> None:
        self.skipped.append({"backend": backend, "precision": precision, "reason": reason})
        print(f"[bench {self.variant}] skip {backend} {precision}: {reason}", file=sys.stderr)

    def record(self, backend: str, precision: str, batch: int, r: dict) -> None:
        self.results.setdefault(backend, {}).setdefault(precision, {})[str(batch)] = r
        print(f"[bench {self.variant}] {backend:<16} {precision} batch {batch:>4}: p50 {r['p50_ms']:.3f} ms, "
              f"{r['images_per_s']:.0f} img/s ({r['iterations']} runs, first {r['first_inference_ms']:.1f} ms)",
              file=sys.stderr)

    def limits(self, on_cpu: bool) -> dict:
        return {"warmup": self.warmup, "iterations": self.iterations, "min_seconds": self.min_seconds,
                "max_seconds": self.cpu_max_seconds if on_cpu else None}

    def each_batch(self, backend: str, precision: str, make: Callable[[int], tuple[Callable, Timer, float | None]],
                   on_cpu: bool) -> None:
        """For each batch size: `make(batch)` -> (call, timer, first_ms or None); measure it, or record why it
        cannot run."""
        failed: list[str] = []
        for bs in self.batch_sizes:
            try:
                fn, timer, first = make(bs)
                r = measure(fn, timer, bs, first_ms=first, **self.limits(on_cpu))
            except Skip as exc:
                failed.append(str(exc))
                continue
            except torch.cuda.OutOfMemoryError:
                failed.append(f"batch {bs}: out of GPU memory")
                torch.cuda.empty_cache()
                continue
            except Exception as exc:  # a backend failing at one batch size must not stop the others
                failed.append(f"batch {bs}: {first_line(exc, with_type=True)}")
                continue
            self.record(backend, precision, bs, r)
        for reason in failed:
            self.skip(backend, precision, reason)


def _run_torch(R: Runner, backend: str, precision: str, base: nn.Module, inputs: dict[int, torch.Tensor],
               dev: torch.device) -> None:
    cuda = dev.type == "cuda"
    t0 = time.perf_counter()
    model = _torch_model(base, dev, precision)
    R.setup_ms.setdefault(backend, {})[precision] = (time.perf_counter() - t0) * 1e3
    timer = Timer(cuda)
    compile_spent = [0.0]

    def make(bs: int):
        x = _torch_input(inputs[bs], dev, precision)
        if backend == "torch_eager":
            def call():
                with torch.inference_mode():
                    return model(x)
            return call, timer, None
        if backend == "torch_compile":
            if compile_spent[0] > R.compile_budget:
                raise Skip(f"batch {bs}: time box: compiling smaller batches took {compile_spent[0]:.0f} s "
                           f"(budget {R.compile_budget:.0f} s)")
            torch._dynamo.reset()
            compiled = torch.compile(model, dynamic=False)

            def call():
                with torch.inference_mode():
                    return compiled(x)
            t = time.perf_counter()
            first = timer(call)  # the first call compiles
            compile_spent[0] += time.perf_counter() - t
            return call, timer, first
        # torch_cuda_graph: warm up on a side stream (cuDNN autotuning), capture, replay
        static_x = x.clone()

        def first_capture():
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s), torch.no_grad():
                for _ in range(3):
                    model(static_x)
            torch.cuda.current_stream().wait_stream(s)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g), torch.no_grad():
                holder["y"] = model(static_x)  # the graph's output, kept alive with it
            g.replay()
            holder["g"] = g

        holder: dict[str, Any] = {}
        first = timer(first_capture)
        return (lambda: holder["g"].replay()), timer, first

    R.each_batch(backend, precision, make, on_cpu=not cuda)


def _run_ort(R: Runner, backend: str, precision: str, num_classes: int, inputs: dict[int, torch.Tensor],
             graph: bool = False) -> None:
    cuda = backend == "ort_cuda"
    path = _onnx_path(R.variant, precision)
    t0 = time.perf_counter()
    if cuda:
        opts = {"device_id": 0}
        if graph:
            opts["enable_cuda_graph"] = "1"
        provider_list = [("CUDAExecutionProvider", opts)] + ([] if graph else ["CPUExecutionProvider"])
    else:
        provider_list = ["CPUExecutionProvider"]

    def new_session():
        try:
            sess = runtime.session(path, threads=R.threads, provider_list=provider_list)
        except NetpipeError as exc:
            msg = str(exc).split(": ", 1)[-1] if "not a usable ONNX model" in str(exc) else str(exc)
            raise Skip(f"onnxruntime cannot run {path.name} on {provider_list[0] if isinstance(provider_list[0], str) else provider_list[0][0]}: {msg}") from None
        if cuda and sess.get_providers()[0] != "CUDAExecutionProvider":
            raise Skip("onnxruntime did not load the CUDA provider")
        return sess

    name = "ort_cuda_graph" if graph else backend
    sess = None if graph else new_session()  # a CUDA graph is captured for one shape: one session per batch size
    R.setup_ms.setdefault(name, {})[precision] = (time.perf_counter() - t0) * 1e3

    def make(bs: int):
        s = new_session() if graph else sess
        in_name, in_np, out_name, out_np = _ort_io(s, bs, num_classes)
        if not cuda:
            feed = {in_name: inputs[bs].numpy().astype(in_np)}
            return (lambda: s.run([out_name], feed)), Timer(False), None
        xt = inputs[bs].to("cuda", dtype=torch.from_numpy(np.zeros(0, in_np)).dtype).contiguous()
        yt = torch.empty((bs, num_classes), device="cuda", dtype=torch.from_numpy(np.zeros(0, out_np)).dtype)
        io = s.io_binding()
        io.bind_input(in_name, "cuda", 0, in_np, list(xt.shape), xt.data_ptr())
        io.bind_output(out_name, "cuda", 0, out_np, list(yt.shape), yt.data_ptr())
        torch.cuda.synchronize()

        def call():
            s.run_with_iobinding(io)
            io.synchronize_outputs()
            return xt, yt  # keep the bound buffers alive
        return call, Timer(False), None

    R.each_batch(name, precision, make, on_cpu=not cuda)


# ---------------------------------------------------------------------------------------------------------
# the stage
# ---------------------------------------------------------------------------------------------------------
def run(p: Params, variant: str) -> dict:
    """Benchmark VARIANT and write artifacts/bench/VARIANT.json (records.BenchReport: the machine, its measured
    peaks, the model's size and FLOPs, and per backend, precision and batch size the latency percentiles, throughput,
    speedup over torch_eager fp32 and fraction of the floor; what could not run, under "skipped" with the reason)."""
    pl = p.plan(variant)
    dataset = pl.dataset
    for f in (paths.checkpoint(variant), paths.onnx(variant)):
        if not f.exists():
            raise NetpipeError(f"{f} not found (run `netpipe train {variant}` and `netpipe export {variant}` first)")
    if pl.bench.cpu_threads:
        torch.set_num_threads(pl.bench.cpu_threads)
    R = Runner(pl)
    base, ck = load_model(pl)
    net = pl.net
    shape = (int(ck.get("in_channels") or pl.channels), net.input_size, net.input_size)
    num_classes = int(ck["num_classes"])
    stats = model_stats(base, shape)

    dev = torch_device()
    cuda_torch = dev.type == "cuda"
    cuda_ort = runtime.cuda_usable()
    if cuda_torch:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    # bf16 whenever the CPU does it natively: training may have run in it (the report's training-speed table)
    cpu_precisions = ["fp32"] + (["bf16"] if speed.bf16_native() else [])
    peak: dict[str, Any] = {"method": FLOOR_METHOD,
                            "cpu": machine_peak(torch.device("cpu"), cpu_precisions, pl.quick)}
    if cuda_torch:
        peak["cuda"] = machine_peak(dev, [x for x in R.precisions if x in TORCH_DTYPE], pl.quick)
    inputs = {bs: make_input(pl, shape, bs, pl.seed) for bs in R.batch_sizes}

    _measure_all(R, base, inputs, dev, num_classes, cuda_ort)
    _relate(R.results, stats, peak, cuda_torch)

    out = BenchReport(
        variant=variant, dataset=dataset, quick=pl.quick,
        date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        machine=machine_info(cuda_torch, cuda_ort, pl.bench.cpu_threads), peak=peak, model=stats,
        settings={"batch_sizes": R.batch_sizes, "warmup": R.warmup, "iterations": R.iterations,
                  "min_seconds": R.min_seconds, "cpu_max_seconds": R.cpu_max_seconds,
                  "compile_budget_s": R.compile_budget, "backends": R.backends, "precisions": R.precisions,
                  "reference": "torch_eager fp32", "torch_device": str(dev)},
        setup_ms=R.setup_ms, results=R.results, skipped=R.skipped, command=f"netpipe bench {variant}",
    ).write(paths.bench(variant), paths.headline(variant, "bench"))
    _print_table(out)
    return out


def _measure_all(R: "Runner", base, inputs: dict, dev: torch.device, num_classes: int, cuda_ort: bool) -> None:
    """Every backend in every precision, torch_eager fp32 first (the reference). A Skip or any failure is recorded
    under "skipped" with its reason: one backend failing must not lose the others' numbers."""
    def attempt(name: str, prec: str, measure) -> None:
        try:
            measure()
        except Skip as exc:
            R.skip(name, prec, str(exc))
        except Exception as exc:
            R.skip(name, prec, first_line(exc, with_type=True))
        if dev.type == "cuda":  # the backend's model and buffers went with its function: give their memory back
            torch.cuda.empty_cache()

    for backend in R.backends:
        for prec in R.precisions:
            why = cannot_run(backend, prec, dev.type == "cuda", cuda_ort)
            if why:
                for name in (backend, *BENCH_ALSO_WRITES.get(backend, ())):
                    R.skip(name, prec, why)
            elif BACKENDS[backend].runtime == "onnxruntime":
                attempt(backend, prec, lambda: _run_ort(R, backend, prec, num_classes, inputs))
            else:
                attempt(backend, prec, lambda: _run_torch(R, backend, prec, base, inputs, dev))
            if backend == "ort_cuda" and not why:
                attempt("ort_cuda_graph", prec, lambda: _run_ort(R, "ort_cuda", prec, num_classes, inputs, graph=True))


def _relate(results: dict, stats: dict, peak: dict, cuda_torch: bool) -> None:
    """Each result's speedup over torch_eager fp32, its floor from the measured peaks and its fraction of it."""
    ref = results.get("torch_eager", {}).get("fp32", {})
    for backend, per_prec in results.items():
        device = "cuda" if (backend.startswith("ort_cuda") or (backend.startswith("torch") and cuda_torch)) else "cpu"
        for prec, per_batch in per_prec.items():
            for b, r in per_batch.items():
                r["speedup_vs_torch_eager"] = ref[b]["p50_ms"] / r["p50_ms"] if b in ref and r["p50_ms"] > 0 else None
                fl = floor_ms(stats, peak, device, prec, int(b))
                r["floor_ms"] = fl
                r["fraction_of_peak"] = fl / r["p50_ms"] if fl is not None and r["p50_ms"] > 0 else None
                r["device"] = device


def _print_table(out: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"netpipe bench {out['variant']} ({out['machine']['gpu'] or out['machine']['cpu']})")
    for col in ("backend", "precision", "batch", "p50 ms", "p99 ms", "img/s", "first ms", "x eager", "floor ms", "% peak"):
        t.add_column(col, justify="right" if col not in ("backend", "precision") else "left")
    for backend, per_prec in out["results"].items():
        for prec, per_batch in per_prec.items():
            for b, r in per_batch.items():
                sp, fr = r.get("speedup_vs_torch_eager"), r.get("fraction_of_peak")
                t.add_row(backend, prec, b, f"{r['p50_ms']:.3f}", f"{r['p99_ms']:.3f}", f"{r['images_per_s']:.0f}",
                          f"{r['first_inference_ms']:.1f}", f"{sp:.2f}" if sp else "-",
                          f"{r['floor_ms']:.4f}" if r.get("floor_ms") is not None else "-",
                          f"{100 * fr:.1f}" if fr is not None else "-")
    Console(file=sys.stderr, width=160).print(t)
