"""Every cell of every table in artifacts/report.md against its own column header.

Synthetic but schema-valid stage records (the real record classes and writers of pipeline/records.py, at the paths
of pipeline/paths.py) in which every figure is distinct and recognisable (test top-1 0.8111, multi-crop 0.8222,
validation 0.8333, a latency of its own for every backend, precision and batch, ...), then the real `netpipe report`
(pipeline.report.run). Each table is parsed (header row -> columns) and each cell compared with what the source field
its header names gives, formatted here from the source numbers (not with the report's helpers). A column whose
header no rule here knows fails, so a new column cannot slip past unchecked; and the data is checked to tell every
two columns of a table apart, so two swapped columns of the same kind (1-crop / multi-crop top-1, p50 / floor, two
backends, s / epoch / images/s, ...) always show. No training, no DVC, no mocks: a few seconds.
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
import yaml

from pipeline import fileio, params, paths, report, report_view
from pipeline.records import (Accuracy, BenchReport, CheckpointRef, Confusion, DevicePeak, ExportReport, Fp16Check,
                              Int8Calibration, Int8Check, Latency, Machine, MatmulPeak, Metrics, ModelStats, OnnxAccuracy, Parity, Peak, Skipped,
                              SeedProtocolResult, SpeedChoice, SubsetAccuracy, TrainSummary)

REPO = Path(__file__).resolve().parents[1]
NA = "n/a"

# The variants, in params order: three with every stage's output (two datasets, a GPU and two CPU benchmarks), one
# with train + evaluate only, one with train only, one with nothing.
VARIANTS = {
    "alexnet_cifar": "cifar10",
    "alexnet_thinner_4": "cifar10",
    "googlenet_cifar_aux": "cifar10",
    "alexnet_cifar_drop05": "cifar10",
    "alexnet_mnist": "mnist",
    "alexnet_mnist_bn": "mnist",
}
SEED_REFERENCE = {  # params `nets.VARIANT.seed_reference`, set here so that the figures stay distinct
    "alexnet_cifar": {"doc": "000", "top1": 0.8063, "n_test": 10000, "note": "a comparable figure",
                      "protocol": {"mode": "train", "view": "random_crop", "mean": "test_set", "batch": 64}},
    "alexnet_thinner_4": {"doc": "002", "params": 5488106, "top1": None, "note": "a parameter count, no figure",
                          "protocol": None},
    "googlenet_cifar_aux": {"doc": "003", "top1": 0.8845, "comparable": False, "note": "another setup",
                            "protocol": None},
    "alexnet_cifar_drop05": {"doc": "000", "top1": 0.7853, "note": "never run here", "protocol": None},
    "alexnet_mnist": {"doc": "004", "top1": 0.988, "note": "5 crops",
                      "protocol": {"test_images": 1000, "mode": "train", "batch": 1000}},  # evaluated before: no figure
    "alexnet_mnist_bn": {"doc": "004", "params": 11111111, "top1": None, "note": "another parameter count",
                         "protocol": None},
}
TRAIN = {  # TrainSummary figures; "curve_seconds": the per-epoch seconds of artifacts/train/VARIANT.csv (None: no csv)
    "alexnet_cifar": dict(params=3246154, epochs=80, best_epoch=67, val_top1=0.8333, train_seconds=5123.4,
                          images_per_s=1834.6, train_device="cuda:0", amp_bf16=True, channels_last=True, compiled=True,
                          reason="bf16 autocast + channels-last + compile measured fastest",
                          curve_seconds=[61.2, 63.4, 65.9]),
    "alexnet_thinner_4": dict(params=5488106, epochs=300, best_epoch=241, val_top1=0.8444, train_seconds=734.5,
                              images_per_s=412.3, train_device="cpu", amp_bf16=False, channels_last=False,
                              compiled=False, reason=None, curve_seconds=[2.41, 2.53]),
    "googlenet_cifar_aux": dict(params=6166250, epochs=100, best_epoch=93, val_top1=0.8177, train_seconds=45.67,
                                images_per_s=98.7, train_device="cpu", amp_bf16=False, channels_last=True,
                                compiled=False, reason="channels-last only", curve_seconds=[12.5, 14.25, 16.0, 17.75]),
    "alexnet_mnist": dict(params=2345678, epochs=50, best_epoch=44, val_top1=0.9911, train_seconds=3999.0,
                          images_per_s=56.78, train_device="cpu", amp_bf16=True, channels_last=False, compiled=False,
                          reason="native bf16 on this CPU", curve_seconds=[79.0, 81.0]),
    "alexnet_mnist_bn": dict(params=3456789, epochs=12, best_epoch=9, val_top1=0.9777, train_seconds=1.5,
                             images_per_s=None, train_device="cpu", amp_bf16=False, channels_last=False,
                             compiled=False, reason=None, curve_seconds=None),
}
METRICS = {  # best of cifar10 by multi-crop: alexnet_thinner_4; by single crop it would be another
    "alexnet_cifar": dict(top1=0.8111, top1_10crop=0.8222, top5=0.9811, top5_10crop=0.9822, val_top1=0.8333, crops=10,
                          seed_protocol=dict(top1=0.7955, n_test=10000)),  # scored the seed's way
    "alexnet_thinner_4": dict(top1=0.7911, top1_10crop=0.8466, top5=0.9711, top5_10crop=0.9766, val_top1=0.8444,
                              crops=10),
    "googlenet_cifar_aux": dict(top1=0.8155, top1_10crop=0.8199, top5=0.9855, top5_10crop=0.9899, val_top1=None,
                                crops=10),
    "alexnet_mnist": dict(top1=0.9866, top1_10crop=0.9888, top5=0.9991, top5_10crop=0.9993, val_top1=0.9911, crops=5),
}
EXPORT = {  # fp16_diff None: the fp16 file was written but not measured
    "alexnet_cifar": dict(onnx_bytes=12987654, fp16_bytes=6543210, parity=3.1e-06, fp16_diff=0.0042, onnx_top1=0.8112,
                          fp16_top1=0.8095, fp16_n_test=1000, int8=dict(bytes=3312345, top1=0.8101, top1_10crop=0.8266,
                                                                       images=1000)),
    "alexnet_thinner_4": dict(onnx_bytes=21954321, fp16_bytes=10977777, parity=5.7e-06, fp16_diff=None,
                              onnx_top1=0.7913, fp16_top1=None, fp16_n_test=None,  # int8 0.83 pp below: marked
                              int8=dict(bytes=5654321, top1=0.7830, top1_10crop=0.7999, images=500)),
    "alexnet_mnist": dict(onnx_bytes=987654, fp16_bytes=493827, parity=7.7e-07, fp16_diff=0.0013, onnx_top1=0.9865,
                          fp16_top1=0.9861, fp16_n_test=2500, int8=None),  # exported before int8 files
}
GPU_MACHINE = dict(cpu="AMD EPYC Test 9654", cpu_cores=16, gpu="NVIDIA H200 (test)", gpu_memory_gib=139.8)
CPU_MACHINE = dict(cpu="Intel Xeon Test 8480", cpu_cores=2, gpu=None, gpu_memory_gib=None)
# (backend, precision): (p50 at batch 1 in ms, growth per extra image, batch sizes); every one its own latencies
BENCH = {
    "alexnet_cifar": dict(machine=GPU_MACHINE, flops=1234567890, keys={
        ("ort_cuda", "fp32"): (0.4123, 0.091, [1, 8, 64, 256]),
        ("ort_cuda", "fp16"): (0.3871, 0.052, [1, 8, 64, 256]),
        ("ort_cuda_graph", "fp32"): (0.2519, 0.089, [1, 8, 64, 256]),
        ("ort_cpu", "fp32"): (3.8765, 0.734, [1, 8]),
        ("torch_eager", "fp32"): (0.9137, 0.083, [1, 8, 64, 256]),
        ("torch_eager", "bf16"): (0.8843, 0.047, [1, 8, 64, 256]),
        ("torch_compile", "fp32"): (0.6217, 0.085, [1, 8, 64, 256]),
        ("torch_cuda_graph", "fp16"): (0.1983, 0.049, [1, 8, 64, 256]),
    }, no_floor={("torch_cuda_graph", "fp16")},
        peak=dict(cpu=("cpu", {"fp32": 1.1e12, "bf16": 2.2e12}),
                  cuda=("cuda:0", {"fp32": 5.5e13, "fp16": 7.9e14, "bf16": 4.4e13}))),
    "alexnet_thinner_4": dict(machine=CPU_MACHINE, flops=987654321, keys={
        ("ort_cpu", "fp32"): (1.2345, 0.812, [1, 8, 64]),
        ("ort_cpu", "fp16"): (4.5678, 0.93, [1, 8]),
        ("torch_eager", "fp32"): (2.3456, 0.701, [1, 8, 64]),
        ("torch_eager", "bf16"): (3.1415, 0.66, [1, 8]),
    }, no_floor=set(), peak=dict(cpu=("cpu", {"fp32": 3.3e12}), cuda=None)),
    "alexnet_mnist": dict(machine=CPU_MACHINE, flops=2222222222, keys={
        ("ort_cpu", "fp32"): (5.4321, 0.77, [1, 16]),
        ("torch_eager", "fp32"): (6.789, 0.74, [1, 16]),
    }, no_floor=set(), peak=dict(cpu=("cpu", {"fp32": 3.4e11, "bf16": 6.6e11}), cuda=None)),
}
# the report's column order of the backend keys (params BENCH_RESULT_ORDER, then fp32, fp16, bf16)
KEY_ORDER = ["ort_cuda", "ort_cuda_fp16", "ort_cuda_graph", "ort_cpu", "ort_cpu_fp16", "torch_eager",
             "torch_eager_bf16", "torch_compile", "torch_cuda_graph_fp16"]
TABLES = ("## Results", "### Size and speed", "### Against the seed documents (95% intervals)",
          "### Latency against PyTorch eager and the machine's limit", "### Training speed")


# ---------------------------------------------------------------------------------------------------------
# the report's formats, written out here
# ---------------------------------------------------------------------------------------------------------
def pct(x: Optional[float], digits: int = 2) -> str:
    return NA if x is None else f"{100 * x:.{digits}f}%"


def signed_pp(x: Optional[float]) -> str:
    return NA if x is None else f"{100 * x:+.2f} pp"


def wilson95(p: float, n: int) -> tuple[float, float]:
    """Wilson's score interval, z = 1.96 (Newcombe 1998, method 3), written out from the formula."""
    z = 1.959963984540054
    a, b, c = 2 * n * p + z * z, z * math.sqrt(z * z + 4 * n * p * (1 - p)), 2 * (n + z * z)
    return max(0.0, (a - b) / c), min(1.0, (a + b) / c)


def newcombe95(p1: float, n1: int, p2: float, n2: int) -> tuple[float, float]:
    """Newcombe's method 10 for a difference of independent proportions."""
    (l1, u1), (l2, u2) = wilson95(p1, n1), wilson95(p2, n2)
    return (p1 - p2 - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
            p1 - p2 + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def noise(ours: float, n: int, seed: float, n_seed: Optional[int]) -> str:
    if not n_seed:
        return "no interval (the seed's test-image count is not stated)"
    lo, hi = newcombe95(ours, n, seed, n_seed)
    return "within noise" if lo <= 0 <= hi else "above the seed" if lo > 0 else "below the seed"


def ms(x: Optional[float]) -> str:
    return NA if x is None else (f"{x:.3f} ms" if x < 10 else f"{x:.1f} ms")


def seconds(x: Optional[float]) -> str:
    if x is None:
        return NA
    return f"{x / 3600:.2f} h" if x >= 3600 else f"{x / 60:.1f} min" if x >= 60 else f"{x:.1f} s"


def count(x: Optional[float]) -> str:
    if x is None:
        return NA
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= div:
            return f"{x / div:.2f}{unit}"
    return f"{x:.0f}"


def nbytes(x: Optional[float]) -> str:
    if x is None:
        return NA
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if x >= div:
            return f"{x / div:.1f} {unit}"
    return f"{x:.0f} B"


def whole(x: Optional[float]) -> str:
    return NA if x is None else f"{x:,.0f}"


def ratio(x: Optional[float]) -> str:
    return NA if x is None else f"{x:.2f}x"


# ---------------------------------------------------------------------------------------------------------
# the stage outputs
# ---------------------------------------------------------------------------------------------------------
def _acc(top1: float, k: float) -> Accuracy:
    return Accuracy(top1=top1, top5=k, top1_10crop=top1 + 0.0001, top5_10crop=k + 0.0001)


def _train(name: str, t: dict) -> TrainSummary:
    return TrainSummary(
        variant=name, arch=name, dataset=VARIANTS[name], params=t["params"], epochs=t["epochs"], steps_per_epoch=703,
        batch_size=64, best_epoch=t["best_epoch"], val_top1=t["val_top1"], final_train_loss=0.4321,
        final_train_acc=0.8765, train_seconds=t["train_seconds"], images_per_s=t["images_per_s"],
        train_device=t["train_device"], world_size=1, per_device_batch=64, cuda_visible_devices=None, torch="2.5.0",
        amp_bf16=t["amp_bf16"], channels_last=t["channels_last"], compiled=t["compiled"],
        speed=SpeedChoice(amp=t["amp_bf16"], channels_last=t["channels_last"], compile=t["compiled"],
                          reason=t["reason"], measured={"fp32": 11.0, "bf16": 12.0}, bf16_native=True),
        quick=False, config_hash="c0ffee", code_hash="decaf", command=f"netpipe train {name}",
        git_commit="0123456789ab")


def _metrics(name: str, m: dict) -> Metrics:
    classes = [str(i) for i in range(10)]
    return Metrics(
        top1=m["top1"], top5=m["top5"], top1_10crop=m["top1_10crop"], top5_10crop=m["top5_10crop"], variant=name,
        arch=name, dataset=VARIANTS[name], val_top1=m["val_top1"], crops=m["crops"], protocol=f"{m['crops']} crops",
        n_test=10000, n_val=5000, per_class_top1={c: 0.5 for c in classes},
        # no matrix: the report then draws no confusion PNG (no table shows it; four of them cost seconds)
        confusion=Confusion(classes=classes, rows="true class", columns="predicted class", matrix=[]),
        eval_seconds=12.5, images_per_s=800.0, device="cpu", precision="fp32",
        checkpoint=CheckpointRef(epoch=TRAIN[name]["best_epoch"], config_hash="c0ffee"), quick=False,
        command=f"netpipe evaluate {name}", git_commit="0123456789ab",
        seed_protocol=None if "seed_protocol" not in m else SeedProtocolResult(
            protocol=f"the seed's way for {name}", measured=True, reason=None, **m["seed_protocol"]))


def _export(name: str, e: dict) -> ExportReport:
    fp16_acc = None if e["fp16_top1"] is None else SubsetAccuracy(
        top1=e["fp16_top1"], top5=0.9, top1_10crop=e["fp16_top1"], top5_10crop=0.9, n_test=e["fp16_n_test"])
    measured = e["fp16_diff"] is not None
    return ExportReport(
        variant=name, dataset=VARIANTS[name], onnx=str(paths.onnx(name)), onnx_bytes=e["onnx_bytes"], opset=18,
        exporter="torch.onnx.export", dynamic_batch=True, providers=["CPUExecutionProvider"],
        parity=Parity(max_abs_diff=e["parity"], max_rel_diff=1e-6, by_provider={"CPUExecutionProvider": {"real": 1e-6}},
                      samples=64, random_samples=8, logit_scale=10.0, tolerance=1e-4, check="max |logit difference|"),
        accuracy=OnnxAccuracy(onnx=_acc(e["onnx_top1"], 0.95), torch=_acc(e["onnx_top1"] - 0.0002, 0.95),
                              diff_pp=_acc(0.02, 0.0), allowed_pp=0.1, n_test=10000, eval_seconds=30.0),
        fp16=Fp16Check(path=str(paths.onnx(name, "fp16")), bytes=e["fp16_bytes"], method="onnxconverter float16",
                       tolerance=0.05, measured=measured, reason=None if measured else "no fp16 provider here",
                       provider="CPUExecutionProvider" if measured else None, max_abs_diff=e["fp16_diff"],
                       within_tolerance=True if measured else None, accuracy=fp16_acc),
        int8=None if e["int8"] is None else _int8(name, e),
        metadata={"variant": name}, seconds=20.0, quick=False, command=f"netpipe export {name}")


def _int8(name: str, e: dict) -> Int8Check:
    i8, fp32 = e["int8"], _acc(e["onnx_top1"], 0.95)
    acc = SubsetAccuracy(top1=i8["top1"], top5=0.95, top1_10crop=i8["top1_10crop"], top5_10crop=0.95, n_test=10000)
    drop = {k: round(100 * (getattr(fp32, k) - getattr(acc, k)), 6) for k in ("top1", "top5", "top1_10crop", "top5_10crop")}
    return Int8Check(path=str(paths.onnx(name, "int8")), bytes=i8["bytes"], method="static QDQ",
                     calibration=Int8Calibration(images=i8["images"], split="train", method="minmax", per_channel=True,
                                                 activations="quint8", weights="qint8"),
                     provider="CPUExecutionProvider", accuracy=acc, drop_pp=Accuracy(**drop), max_drop_pp=0.5,
                     within_max_drop=max(drop["top1"], drop["top1_10crop"]) <= 0.5, quantize_seconds=3.0,
                     eval_seconds=40.0)


def _latencies(b: dict) -> dict[tuple[str, str], dict[int, dict[str, Optional[float]]]]:
    """(backend, precision) -> batch -> Latency fields: each p50, floor, first inference its own number."""
    out: dict = {}
    n = 0
    for (backend, prec), (t0, growth, batches) in b["keys"].items():
        out[(backend, prec)] = {}
        for bs in batches:
            p50 = round(t0 * (1 + growth * (bs - 1)), 4)
            floor = None if (backend, prec) in b["no_floor"] else round(p50 * (0.041 + 0.017 * n), 5)
            out[(backend, prec)][bs] = {"p50_ms": p50, "floor_ms": floor, "mean_ms": round(p50 * 1.02, 5),
                                        "first_inference_ms": round(p50 * 41 + 100 + n, 3)}
            n += 1
    for (backend, prec), per in out.items():
        for bs, r in per.items():
            eager = out.get(("torch_eager", "fp32"), {}).get(bs)
            r["speedup_vs_torch_eager"] = None if eager is None else eager["p50_ms"] / r["p50_ms"]
            r["fraction_of_peak"] = None if r["floor_ms"] is None else r["floor_ms"] / r["p50_ms"]
            r["images_per_s"] = 1000.0 * bs / r["mean_ms"]
    return out


def _bench(name: str, b: dict) -> BenchReport:
    def device_peak(spec):
        if spec is None:
            return None
        dev, mm = spec
        return DevicePeak(device=dev, copy_bytes_per_s=2.5e10, copy_bytes=1 << 28,
                          **{prec: MatmulPeak(matmul_flops_per_s=f, matmul_n=2048) for prec, f in mm.items()})

    m = b["machine"]
    results: dict = {}
    for (backend, prec), per in _latencies(b).items():
        results.setdefault(backend, {})[prec] = {str(bs): Latency(
            p50_ms=r["p50_ms"], p90_ms=r["p50_ms"] * 1.07, p99_ms=r["p50_ms"] * 1.19, mean_ms=r["mean_ms"],
            images_per_s=r["images_per_s"], iterations=100, first_inference_ms=r["first_inference_ms"],
            speedup_vs_torch_eager=r["speedup_vs_torch_eager"], floor_ms=r["floor_ms"],
            fraction_of_peak=r["fraction_of_peak"], device="cpu" if "cpu" in backend or not m["gpu"] else "cuda")
            for bs, r in per.items()}
    return BenchReport(
        variant=name, dataset=VARIANTS[name], quick=False, date="2025-01-02T03:04:05+00:00",
        machine=Machine(cpu=m["cpu"], cpu_cores=m["cpu_cores"], load_avg_1min=0.25, torch_threads=m["cpu_cores"],
                        ort_threads="default", gpu=m["gpu"], gpu_memory_gib=m["gpu_memory_gib"],
                        cuda_torch=bool(m["gpu"]), cuda_onnxruntime=bool(m["gpu"]), cuda="12.4" if m["gpu"] else None,
                        cudnn=90100 if m["gpu"] else None, tf32=False, torch="2.5.0", onnxruntime="1.20.0",
                        onnx="1.17.0", numpy="2.1.0", python="3.12.0", platform="Linux-test"),
        peak=Peak(method="matmul and copy", cpu=device_peak(b["peak"]["cpu"]), cuda=device_peak(b["peak"]["cuda"])),
        model=ModelStats(flops_per_image=b["flops"], macs_per_image=b["flops"] // 2, params=TRAIN[name]["params"],
                         weights_bytes=4 * TRAIN[name]["params"], activation_bytes_per_image=123456,
                         input_shape=[3, 32, 32], output_shape=[10], input_bytes_per_image=12288,
                         output_bytes_per_image=40),
        settings={"warmup": 10, "iterations": 100}, setup_ms={"ort_cpu": {"fp32": 12.0}}, results=results,
        skipped=[Skipped(backend="torch_compile", precision="bf16", reason="not measured in this test")],
        command=f"netpipe bench {name}")


def _write_curves(name: str, secs: list[float]) -> None:
    """artifacts/train/VARIANT.csv as netpipe train writes it (train.CURVE_FIELDS; importing train imports torch)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"],
                       lineterminator="\n")
    w.writeheader()
    for i, s in enumerate(secs, 1):
        w.writerow({"epoch": i, "train_loss": 2.0 / i, "train_acc": 0.3 + 0.1 * i, "val_loss": 2.1 / i,
                    "val_acc": 0.25 + 0.1 * i, "lr": 0.01, "seconds": s})
    fileio.write_text(paths.train_log(name), buf.getvalue())


def _params_yaml() -> dict:
    """The repo's params.yaml cut down to VARIANTS (as tests/conftest.py's tiny_project_params does)."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["variants"] = dict(VARIANTS)
    raw["datasets"] = sorted(set(VARIANTS.values()))
    raw["data"] = {ds: raw["data"][ds] for ds in raw["datasets"]}
    raw["nets"] = {k: {**raw["nets"][k], "seed_reference": SEED_REFERENCE[k]} for k in VARIANTS}
    raw["quick"]["enabled"] = False
    return raw


@pytest.fixture(scope="module")
def reported(tmp_path_factory) -> dict:
    """Write the stage outputs in a fresh project directory, run the real report there; the markdown, parsed."""
    root = tmp_path_factory.mktemp("report_cells")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        Path("params.yaml").write_text(yaml.safe_dump(_params_yaml(), sort_keys=False))
        for name, t in TRAIN.items():
            _train(name, t).write(paths.train_summary(name))
            if t["curve_seconds"]:
                _write_curves(name, t["curve_seconds"])
        for name, m in METRICS.items():
            _metrics(name, m).write(paths.metrics(name))
        for name, e in EXPORT.items():
            _export(name, e).write(paths.export_report(name))
        for name, b in BENCH.items():
            _bench(name, b).write(paths.bench(name))
        p = params.load("params.yaml")
        summary = report.run(p)
        md = paths.REPORT.read_text()
        # what the report read back: the records as written (JSON round trip) are the source of every figure
        src = {name: {"train": TrainSummary.read_optional(paths.train_summary(name)),
                      "metrics": Metrics.read_optional(paths.metrics(name)),
                      "export": ExportReport.read_optional(paths.export_report(name)),
                      "bench": BenchReport.read_optional(paths.bench(name)),
                      "seed": p.nets[name].seed_reference or {}} for name in VARIANTS}
    return {"md": md, "tables": parse_tables(md), "src": src, "summary": summary}


# ---------------------------------------------------------------------------------------------------------
# reading the markdown
# ---------------------------------------------------------------------------------------------------------
def _cells(line: str) -> list[str]:
    assert line.startswith("| ") and line.endswith(" |"), line
    return [c.replace("\\|", "|") for c in line[2:-2].split(" | ")]


def parse_tables(md: str) -> dict[str, tuple[list[str], list[list[str]]]]:
    """{heading above the table: (header, rows of cells)} for every markdown table."""
    tables: dict[str, tuple[list[str], list[list[str]]]] = {}
    heading, lines = None, md.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("#"):
            heading = lines[i].strip()
        if lines[i].startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append(lines[i])
                i += 1
            assert heading not in tables, f"two tables under {heading}"
            assert re.fullmatch(r"\|(---\|)+", block[1]), block[1]
            header = _cells(block[0])
            rows = [_cells(r) for r in block[2:]]
            assert all(len(r) == len(header) for r in rows), (heading, header, rows)
            tables[heading] = (header, rows)
            continue
        i += 1
    return tables


def _split_key(key: str) -> tuple[str, str]:
    """A latency column's backend key -> (backend, precision): 'ort_cpu' is fp32, 'ort_cpu_fp16' fp16."""
    for prec in ("fp16", "bf16"):
        if key.endswith("_" + prec):
            return key[: -len(prec) - 1], prec
    return key, "fp32"


def _check_table(tables: dict, heading: str, expected_header: list[str], rows: list[tuple[str, Any]],
                 cell: Callable[[str, Any, dict], str]) -> None:
    """Each row's cells against what `cell(HEADER, ROW_SOURCE, state)` says the header's field gives (a rule for
    every header, or the test fails); rows in the expected order; and the data tells every two columns apart."""
    header, got_rows = tables[heading]
    assert header == expected_header, f"{heading}: columns changed: {header} (the test checks {expected_header})"
    want_rows = []
    for label, srcrow in rows:
        state: dict = {}
        want_rows.append([cell(h, srcrow, state) for h in header])
    for i, j in ((i, j) for i in range(len(header)) for j in range(i + 1, len(header))):
        assert any(r[i] != r[j] for r in want_rows), \
            f"{heading}: the test data cannot tell column {header[i]!r} from {header[j]!r}"
    assert [r[0] for r in got_rows] == [r[0] for r in want_rows], f"{heading}: rows {[r[0] for r in got_rows]}"
    for (label, _), want, got in zip(rows, want_rows, got_rows):
        for h, w, g in zip(header, want, got):
            assert g == w, f"{heading}: row {label}, column {h!r} shows {g!r}; its source field gives {w!r}"


# ---------------------------------------------------------------------------------------------------------
# the tests
# ---------------------------------------------------------------------------------------------------------
def test_every_table_is_checked(reported):
    assert sorted(reported["tables"]) == sorted(TABLES), "a table this test does not check"
    for heading in TABLES:
        assert reported["tables"][heading][1], f"{heading}: no rows"


def _lat(be: BenchReport, key: str, batch: int) -> Optional[Latency]:
    backend, prec = _split_key(key)
    return be.results.get(backend, {}).get(prec, {}).get(str(batch))


def _all_keys(src: dict) -> list[str]:
    keys = {report_view.backend_key(b, prec) for s in src.values() if s["bench"]
            for b, per in s["bench"].results.items() for prec in per}
    assert keys <= set(KEY_ORDER), keys
    return [k for k in KEY_ORDER if k in keys]


def test_results_table(reported):
    src = reported["src"]
    header = ["variant", "dataset", "params", "test top-1 (1 crop)", "test top-1 (multi-crop)", "seed doc top-1",
              "ours - seed (1 / multi)", "val top-1", "train time", "train device"]

    def cell(h: str, name: str, _state: dict) -> str:
        s = src[name]
        tr, me, be, ref = s["train"], s["metrics"], s["bench"], s["seed"]
        comparable = ref.get("comparable", True) is not False
        seed = ref.get("top1") if comparable else None
        if h == "variant":
            return name + ("" if me else " (missing: no metrics)" if tr else " (not trained here (GPU recipe))")
        if h == "dataset":
            return VARIANTS[name]
        if h == "params":
            ours = tr.params if tr else be.model.params if be else None
            doc = ref.get("params")
            return count(ours) if doc is None else f"{count(ours)} (doc {doc:,}" + (": same)" if ours == doc else ")")
        if h == "test top-1 (1 crop)":
            return pct(me.top1) if me else NA
        if h == "test top-1 (multi-crop)":
            return f"{pct(me.top1_10crop)} ({me.crops}-crop)" if me else NA
        if h == "seed doc top-1":
            if ref.get("top1") is None:
                return NA
            return f"{100 * ref['top1']:.2f}% ({ref['doc']})" + ("" if comparable else ", another setup: not compared")
        if h == "ours - seed (1 / multi)":
            if seed is None or me is None:
                return f"{NA} / {NA}"
            return " / ".join(f"{signed_pp(x - seed)} ({noise(x, me.n_test, seed, ref.get('n_test'))})"
                              for x in (me.top1, me.top1_10crop))
        if h == "val top-1":
            return pct(me.val_top1 if me and me.val_top1 is not None else tr.val_top1 if tr else None)
        if h == "train time":
            return seconds(tr.train_seconds) if tr else NA
        if h == "train device":
            return tr.train_device if tr else NA
        raise AssertionError(f"Results: no rule for column {h!r}: add one to this test")

    _check_table(reported["tables"], "## Results", header, [(n, n) for n in VARIANTS], cell)
    assert len(header) <= 10, "the Results table stays readable without scrolling sideways"


def test_size_and_speed_table(reported):
    """Per variant: FLOPs, the ONNX files' sizes, and over every measured backend and precision the lowest p50 at
    batch 1 and the most images/s at the largest batch, each naming its backend key."""
    src = reported["src"]
    keys = _all_keys(src)
    big = max(int(b) for s in src.values() if s["bench"] for per in s["bench"].results.values()
              for rows in per.values() for b in rows)
    header = ["variant", "FLOPs/img", "ONNX (fp32, and the other files)", "fastest at batch 1: p50 (backend)",
              f"most images/s at batch {big} (backend)"]

    def cell(h: str, name: str, _state: dict) -> str:
        ex, be = src[name]["export"], src[name]["bench"]
        if h == "variant":
            return name
        if h == "FLOPs/img":
            return count(be.model.flops_per_image) if be else NA
        if h == "ONNX (fp32, and the other files)":
            if ex is None:
                return NA
            others = [f"fp16 {nbytes(ex.fp16.bytes)}"] + ([f"int8 {nbytes(ex.int8.bytes)}"] if ex.int8 else [])
            return f"{nbytes(ex.onnx_bytes)} ({', '.join(others)})"
        per_key = {k: be.results[_split_key(k)[0]][_split_key(k)[1]] for k in keys
                   if be and _lat(be, k, 1) is not None} if be else {}
        if h == "fastest at batch 1: p50 (backend)":
            if not per_key:
                return NA
            p50, k = min((per["1"].p50_ms, k) for k, per in per_key.items())
            return f"{ms(p50)} ({k})"
        if h == f"most images/s at batch {big} (backend)":
            if not per_key:
                return NA
            thr, k, b = max((per[max(per, key=int)].images_per_s, k, max(per, key=int)) for k, per in per_key.items())
            return f"{whole(thr)} ({k}" + ("" if int(b) == big else f", @{b}") + ")"
        raise AssertionError(f"Size and speed: no rule for column {h!r}: add one to this test")

    _check_table(reported["tables"], "### Size and speed", header, [(n, n) for n in VARIANTS], cell)


def test_against_the_seed_documents_table(reported):
    """Every measured variant with a comparable seed figure: both accuracies with their 95% intervals, and the
    difference's, which decides the verdict."""
    src = reported["src"]
    header = ["variant", "ours: test top-1, 1 crop [95%]", "our test images", "seed doc top-1 [95%]",
              "seed's test images", "ours - seed [95%]", "verdict", "ours scored the seed's way [95%]",
              "verdict, scored the seed's way"]

    def interval(p: float, n: Optional[int]) -> str:
        return f"{pct(p)} (n not stated)" if not n else "{} [{}, {}]".format(pct(p), *map(pct, wilson95(p, n)))

    def cell(h: str, name: str, _state: dict) -> str:
        me, ref = src[name]["metrics"], src[name]["seed"]
        n_seed = ref.get("n_test")
        if h == "variant":
            return name
        if h == "ours: test top-1, 1 crop [95%]":
            return interval(me.top1, me.n_test)
        if h == "our test images":
            return f"{me.n_test:,}"
        if h == "seed doc top-1 [95%]":
            return f"{interval(ref['top1'], n_seed)} ({ref['doc']})"
        if h == "seed's test images":
            return f"{n_seed:,}" if n_seed else NA
        if h == "ours - seed [95%]":
            d = signed_pp(me.top1 - ref["top1"])
            return "{} [{}, {}]".format(d, *map(signed_pp, newcombe95(me.top1, me.n_test, ref["top1"], n_seed))) \
                if n_seed else d
        if h == "verdict":
            return noise(me.top1, me.n_test, ref["top1"], n_seed)
        sp = me.seed_protocol
        if h == "ours scored the seed's way [95%]":
            if not ref.get("protocol"):
                return "scored as netpipe scores"
            if sp is None:
                return "not yet measured (evaluated before netpipe scored the seed's way)"
            return f"{interval(sp.top1, sp.n_test)} on {sp.n_test:,} ({sp.protocol})"
        if h == "verdict, scored the seed's way":
            return "-" if sp is None else noise(sp.top1, sp.n_test, ref["top1"], n_seed)
        raise AssertionError(f"seed table: no rule for column {h!r}: add one to this test")

    rows = [(n, n) for n in VARIANTS if src[n]["metrics"] and src[n]["seed"].get("top1") is not None
            and src[n]["seed"].get("comparable", True) is not False]
    assert len(rows) >= 2
    _check_table(reported["tables"], "### Against the seed documents (95% intervals)", header, rows, cell)
    # the formula against a published case (Newcombe 1998, table I: 81/263 = 0.3080 -> [0.2553, 0.3662])
    lo, hi = wilson95(81 / 263, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)


def test_latency_against_eager_and_the_limit_table(reported):
    src = reported["src"]
    header = ["variant", "backend", "machine", "batch", "p50", "x eager", "floor", "% of floor", "largest batch",
              "x eager", "% of floor", "first inference (batch 1)"]
    rows = [(f"{name}/{key}", (name, key)) for name, s in src.items() if s["bench"]
            for key in KEY_ORDER if key in {report_view.backend_key(b, prec) for b, per in s["bench"].results.items()
                                            for prec in per}]

    def cell(h: str, row: tuple[str, str], state: dict) -> str:
        """A figure's batch is the one the last "batch" / "largest batch" column named (batch 1 where said)."""
        name, key = row
        be = src[name]["bench"]
        batches = sorted(int(b) for b in be.results[_split_key(key)[0]][_split_key(key)[1]])
        at = _lat(be, key, state.get("batch", 0))
        if h == "variant":
            return name
        if h == "backend":
            return key
        if h == "machine":
            return be.machine.gpu or f"CPU {be.machine.cpu} ({be.machine.cpu_cores} cores)"
        if h in ("batch", "largest batch"):
            state["batch"] = batches[0] if h == "batch" else batches[-1]
            return str(state["batch"])
        if h == "first inference (batch 1)":
            return ms(_lat(be, key, 1).first_inference_ms)
        assert at is not None, f"column {h!r} before a batch column"
        if h == "p50":
            return ms(at.p50_ms)
        if h == "x eager":
            return ratio(at.speedup_vs_torch_eager)
        if h == "floor":
            return ms(at.floor_ms)
        if h == "% of floor":
            return pct(at.fraction_of_peak, 1)
        raise AssertionError(f"latency limits: no rule for column {h!r}: add one to this test")

    _check_table(reported["tables"], "### Latency against PyTorch eager and the machine's limit", header, rows, cell)


def test_training_speed_table(reported):
    src = reported["src"]
    header = ["variant", "device", "uses (why)", "epochs", "s / epoch", "images/s", "training TFLOP/s",
              "% of measured peak"]

    def flops_per_s(tr: TrainSummary, be: Optional[BenchReport]) -> Optional[float]:
        return None if be is None or tr.images_per_s is None else 3 * be.model.flops_per_image * tr.images_per_s

    def cell(h: str, name: str, _state: dict) -> str:
        tr, be = src[name]["train"], src[name]["bench"]
        if h == "variant":
            return name
        if h == "device":
            return tr.train_device
        if h == "uses (why)":
            uses = " + ".join(["bf16 autocast" if tr.amp_bf16 else "fp32"] + ["channels-last"] * tr.channels_last
                              + ["compile"] * tr.compiled)
            return uses + (f" ({tr.speed.reason})" if tr.speed.reason else "")
        if h == "epochs":
            return str(tr.epochs)
        if h == "s / epoch":
            secs = TRAIN[name]["curve_seconds"]  # the per-epoch seconds written to artifacts/train/VARIANT.csv
            return seconds(sum(secs) / len(secs)) if secs else NA
        if h == "images/s":
            return whole(tr.images_per_s)
        if h == "training TFLOP/s":
            f = flops_per_s(tr, be)
            return NA if f is None else f"{f / 1e12:.3g}"
        if h == "% of measured peak":
            f = flops_per_s(tr, be)
            if f is None:
                return NA
            dev = be.peak.cpu if tr.train_device == "cpu" else be.peak.cuda
            assert dev.device == tr.train_device
            return pct(f / getattr(dev, "bf16" if tr.amp_bf16 else "fp32").matmul_flops_per_s, 1)
        raise AssertionError(f"training speed: no rule for column {h!r}: add one to this test")

    _check_table(reported["tables"], "### Training speed", header,
                 [(n, n) for n, s in src.items() if s["train"]], cell)


def test_best_variant_per_dataset_and_pareto_lines(reported):
    """The best variant of each dataset by multi-crop test top-1 (1-crop would pick another), its figure, and the
    Pareto front's figures: multi-crop top-1 and the batch-1 p50 of each variant's fastest backend."""
    src, md = reported["src"], reported["md"]
    section = md.split("## Best variant per dataset", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("- **")]
    datasets = sorted(set(VARIANTS.values()))
    want = []
    for ds in datasets:
        cands = {n: s["metrics"] for n, s in src.items() if VARIANTS[n] == ds and s["metrics"]}
        crops = {m.crops for m in cands.values()}
        assert len(crops) == 1
        by = f"{crops.pop()}-crop"
        best = max(cands, key=lambda n: cands[n].top1_10crop)
        assert best != max(cands, key=lambda n: cands[n].top1) or len(cands) == 1, "the data must tell 1-crop apart"
        want.append(f"- **{ds}**: `{best}`, {pct(cands[best].top1_10crop)} test top-1 ({by}; ranked by the highest "
                    f"{by} test top-1 of the {ds} variants).")
    for ds in datasets:
        pts = []
        for n, s in src.items():
            if VARIANTS[n] == ds and s["metrics"] and s["bench"]:
                p50, key = min((r["1"].p50_ms, report_view.backend_key(b, prec)) for b, per in s["bench"].results.items()
                               for prec, r in per.items())
                pts.append((p50, s["metrics"].top1_10crop, n, key, s["metrics"].crops))
        front = sorted(p for p in pts if not any(q[0] <= p[0] and q[1] >= p[1] and q != p for q in pts))
        want.append(f"- **{ds}**: " + " -> ".join(f"`{n}` ({pct(acc)} {crops}-crop, {ms(p50)} on {key})"
                                                 for p50, acc, n, key, crops in front))
    assert len(want[len(datasets)].split(" -> ")) == 2, "the data puts two cifar10 variants on the front"
    assert len(lines) == len(want), lines
    for got, w in zip(lines, want):
        assert got == w, f"Best variant per dataset:\n  shows   {got}\n  sources {w}"


def _int8_text(i8) -> str:
    if i8 is None:
        return "int8 file: not measured (exported before netpipe wrote one: re-run `netpipe export`)"
    a, d = i8.accuracy, i8.drop_pp
    return (f"int8 file ({i8.bytes / 1e6:.1f} MB, calibrated on {i8.calibration.images:,} train images, minmax): "
            f"{pct(a.top1)} / {pct(a.top1_10crop)} multi-crop on {a.n_test:,} images, {-d.top1:+.2f} pp / "
            f"{-d.top1_10crop:+.2f} pp vs fp32"
            + ("" if i8.within_max_drop else " **MARKED: drops more than export.int8_max_drop_pp = 0.5 pp**"))


def test_onnx_export_check_lines(reported):
    src, md = reported["src"], reported["md"]
    lines = [line for line in md.splitlines() if line.startswith("- `") and "max |logit difference|" in line]
    want = []
    for n, s in src.items():
        ex = s["export"]
        if ex is None:
            continue
        d16, acc16 = ex.fp16.max_abs_diff, ex.fp16.accuracy
        want.append(f"- `{n}`: max |logit difference| fp32 {ex.parity.max_abs_diff:.2g}, fp16 "
                    f"{NA if d16 is None else f'{d16:.2g}'}; test top-1 through onnxruntime "
                    f"{pct(ex.accuracy.onnx.top1)} "
                    f"(fp16 file: {pct(acc16.top1 if acc16 else None)}"
                    + (f" on {acc16.n_test:,} images" if acc16 else "") + "); " + _int8_text(ex.int8))
    assert len(lines) == len(want), lines
    assert sum("**MARKED" in w for w in want) == 1 and sum("int8 file: not measured" in w for w in want) == 1
    assert sum("**MARKED" in w for w in want) == 1 and sum("int8 file: not measured" in w for w in want) == 1
    for got, w in zip(lines, want):
        assert got == w, f"ONNX export checks:\n  shows   {got}\n  sources {w}"
