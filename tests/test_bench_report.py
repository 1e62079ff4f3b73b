"""`netpipe bench` and `netpipe report` on REAL stage outputs: a tiny project (tests/conftest.py,
`pipeline_project`) where prepare -> train -> evaluate -> export -> bench ran for three small variants on two
datasets. CPU only, no mocks."""

from __future__ import annotations

import json
import os
import shutil
import typing
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from pipeline import bench, params, paths, plots, report, report_md, report_view
from pipeline.records import BenchReport
from tests.conftest import TINY_VARIANTS

BENCH_RESULT_KEYS = {"p50_ms", "p90_ms", "p99_ms", "mean_ms", "images_per_s", "iterations", "first_inference_ms",
                     "speedup_vs_torch_eager", "floor_ms", "fraction_of_peak"}
LATENCY_KEYS = {"p50_ms", "p90_ms", "p99_ms", "images_per_s"}


REPO_PARAMS = params.load(Path(__file__).parents[1] / "params.yaml")


@pytest.mark.parametrize("variant", list(REPO_PARAMS.variants))
def test_flops_agree_with_flop_counter_mode(variant):
    """bench counts FLOPs with forward hooks (no torch._dynamo import); FlopCounterMode must find the same number
    for every variant of params.yaml (built on the meta device: shapes only)."""
    from torch.utils.flop_counter import FlopCounterMode

    from pipeline.model import build_model

    net = REPO_PARAMS.variant(variant)
    shape = (REPO_PARAMS.channels(REPO_PARAMS.dataset_of(variant)), net.input_size, net.input_size)
    with torch.device("meta"):
        model = build_model(REPO_PARAMS.plan(variant), 10).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(torch.empty(1, *shape, device="meta"))
    stats = bench.model_stats(model, shape)
    assert stats["flops_per_image"] == fc.get_total_flops() > 0
    assert stats["params"] == sum(t.numel() for t in model.parameters())


@pytest.fixture
def project(pipeline_project, monkeypatch):
    monkeypatch.chdir(pipeline_project)
    return pipeline_project


def _load(path) -> dict:
    return json.loads(Path(path).read_text())


def _copy_project(src: Path, dst: Path) -> Path:
    """A copy to change: params, data meta and artifacts copied; models linked (read-only use)."""
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "params.yaml", dst / "params.yaml")
    shutil.copytree(src / "artifacts", dst / "artifacts")
    shutil.copytree(src / "data", dst / "data")
    os.symlink(src / "models", dst / "models")
    return dst


# ---------------------------------------------------------------------------------------------------------
# bench
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", list(TINY_VARIANTS))
def test_bench_output_structure_and_sanity(project, variant):
    out = _load(paths.bench(variant))
    assert out["variant"] == variant and out["command"] == f"netpipe bench {variant}"
    for key in ("machine", "peak", "model", "results", "skipped", "settings"):
        assert key in out
    m = out["machine"]
    for key in ("cpu", "cpu_cores", "gpu", "torch", "onnxruntime", "onnx", "cuda"):
        assert key in m
    assert m["torch"] == torch.__version__
    model = out["model"]
    assert model["flops_per_image"] > 0 and model["params"] > 0
    assert model["weights_bytes"] >= 4 * model["params"]
    size = yaml.safe_load(open("params.yaml"))["nets"][variant]["input_size"]  # 000's net: 24x24 crops
    assert model["input_shape"] == [3, size, size]
    assert out["peak"]["cpu"]["fp32"]["matmul_flops_per_s"] > 1e8
    assert out["peak"]["cpu"]["copy_bytes_per_s"] > 1e8

    res = out["results"]
    cpu_only = not torch.cuda.is_available()
    expect = {"torch_eager", "ort_cpu"}
    assert expect <= set(res)
    for backend, per_prec in res.items():
        for prec, per_batch in per_prec.items():
            assert set(per_batch) <= {"1", "4"}, "batch keys are strings, from quick.bench_batch_sizes"
            for b, r in per_batch.items():
                assert BENCH_RESULT_KEYS <= set(r), (backend, prec, b)
                assert 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"], (backend, prec, b, r)
                assert r["images_per_s"] > 0 and r["first_inference_ms"] > 0
                assert r["iterations"] >= 5  # quick.bench_iterations
                assert r["floor_ms"] > 0 and 0 < r["fraction_of_peak"]
                assert r["speedup_vs_torch_eager"] > 0
    for b in ("1", "4"):
        assert res["torch_eager"]["fp32"][b]["speedup_vs_torch_eager"] == 1.0
        assert res["ort_cpu"]["fp32"][b]["p50_ms"] > 0
    # larger batches cost more in total but at least not less per call than the memory floor
    assert res["torch_eager"]["fp32"]["4"]["floor_ms"] > res["torch_eager"]["fp32"]["1"]["floor_ms"]

    skipped = {(s["backend"], s["precision"]): s["reason"] for s in out["skipped"]}
    for s in out["skipped"]:
        assert set(s) == {"backend", "precision", "reason"} and s["reason"]
    if cpu_only:
        for key in [("ort_cuda", "fp32"), ("ort_cuda_graph", "fp32"), ("torch_cuda_graph", "fp32"),
                    ("torch_eager", "fp16")]:
            assert key in skipped, f"{key} should be skipped with a reason on a CPU-only machine"
        assert "CUDA" in skipped[("ort_cuda", "fp32")]
        assert "ort_cuda" not in res and "torch_cuda_graph" not in res
    # every requested combination is either measured or skipped: none silently dropped
    for backend in out["settings"]["backends"]:
        for prec in out["settings"]["precisions"]:
            assert prec in res.get(backend, {}) or (backend, prec) in skipped, (backend, prec)


def test_bench_ort_fp16_model_measured_or_explained(project):
    out = _load(paths.bench("alexnet_cifar"))
    got = "fp16" in out["results"].get("ort_cpu", {})
    reason = [s["reason"] for s in out["skipped"] if s["backend"] == "ort_cpu" and s["precision"] == "fp16"]
    assert got or reason


def test_bench_torch_compile_time_boxed(pipeline_project, tmp_path, monkeypatch):
    """torch_compile on the CPU: the first batch size compiles (or records why it could not); once the compile
    budget is spent the other batch sizes are skipped with the reason."""
    root = _copy_project(pipeline_project, tmp_path / "proj")
    monkeypatch.chdir(root)
    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["bench"]["backends"] = raw["quick"]["bench_backends"] = ["torch_compile"]
    raw["bench"]["precisions"] = ["fp32"]
    raw["quick"]["bench_batch_sizes"] = [1, 2]
    raw["quick"]["bench_iterations"] = 2
    raw["bench"]["compile_budget_s"] = 0.0
    Path("params.yaml").write_text(yaml.safe_dump(raw))
    out = bench.run(params.load("params.yaml"), "alexnet_cifar")
    assert "torch_eager" in out["results"], "the reference is measured even when not asked for"
    reasons = [s["reason"] for s in out["skipped"] if s["backend"] == "torch_compile"]
    if "torch_compile" in out["results"]:
        r = out["results"]["torch_compile"]["fp32"]["1"]
        assert r["first_inference_ms"] > r["p50_ms"], "compilation is reported as the first inference"
        assert any("time box" in x and "batch 2" in x for x in reasons), reasons
    else:  # no compiler here: recorded, not raised
        assert reasons and all(x for x in reasons)
    assert _load(paths.bench("alexnet_cifar")) == out


def test_machine_peaks_are_measured_once_per_machine(tmp_path, monkeypatch):
    """The first bench process on a machine measures its peaks and caches them; the next ones read them."""
    from pipeline import machine, speed

    monkeypatch.setenv("NETPIPE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("NETPIPE_PEAK_MAX_LOAD", "1000")  # cache whatever the load (this suite keeps the CPUs busy)
    first = machine.machine_peak(torch.device("cpu"), ["fp32"], quick=True)
    assert first["cached"] is False and first["fp32"]["matmul_flops_per_s"] > 1e8 and first["measured"]
    again = machine.machine_peak(torch.device("cpu"), ["fp32"], quick=True)
    assert again == {**first, "cached": True}
    assert len(speed.read_cache("peaks")) == 1
    other = machine.machine_peak(torch.device("cpu"), ["fp32"], quick=False)  # another key: measured
    assert other["cached"] is False and len(speed.read_cache("peaks")) == 2
    monkeypatch.setenv("NETPIPE_PEAK_MAX_LOAD", "-1")  # a busy machine: measured, used, not cached
    busy = machine.machine_peak(torch.device("cpu"), ["fp32", "bf16"], quick=True)
    assert busy["cached"] is False and len(speed.read_cache("peaks")) == 2


def test_backend_table_gives_the_skip_reasons():
    """bench.BACKENDS has a row per params.BENCH_BACKENDS entry, and every "cannot run" reason comes from it."""
    assert tuple(bench.BACKENDS) == params.BENCH_BACKENDS
    for name, row in bench.BACKENDS.items():
        assert set(row.precisions) <= set(typing.get_args(params.Precision))
        for prec in typing.get_args(params.Precision):
            on_gpu = bench.cannot_run(name, prec, cuda_torch=True, cuda_ort=True)
            assert (on_gpu is None) == (prec in row.precisions), (name, prec, on_gpu)
            if prec in dict(row.why_not):
                assert on_gpu == dict(row.why_not)[prec]
            elif prec not in row.precisions:
                assert on_gpu == f"{name} runs {'/'.join(row.precisions)} " + (
                    "(the exported files)" if row.runtime == "onnxruntime" else "(PyTorch's casts)") + f": no {prec} path"
    assert "no int8 kernels for QDQ graphs" in bench.cannot_run("ort_cuda", "int8", cuda_torch=True, cuda_ort=True)
    assert bench.cannot_run("ort_cuda", "fp16", cuda_torch=True, cuda_ort=False) == bench.NO_ORT_CUDA
    assert bench.cannot_run("torch_cuda_graph", "fp32", cuda_torch=False, cuda_ort=True) == "no CUDA device"
    assert "needs a CUDA device" in bench.cannot_run("torch_eager", "fp16", cuda_torch=False, cuda_ort=False)
    assert bench.cannot_run("ort_cpu", "int8", cuda_torch=False, cuda_ort=False) is None


def test_bench_int8_on_onnxruntime_cpu_beside_fp32(pipeline_project, tmp_path, monkeypatch):
    """bench.precisions with int8: onnxruntime's CPU provider runs models/VARIANT.int8.onnx in the same run as fp32
    (its speedup over eager fp32 recorded); PyTorch's backends record the table's reason."""
    root = _copy_project(pipeline_project, tmp_path / "proj")
    monkeypatch.chdir(root)
    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["bench"]["backends"] = raw["quick"]["bench_backends"] = ["ort_cpu", "torch_eager"]
    raw["bench"]["precisions"] = raw["quick"]["bench_precisions"] = ["fp32", "int8"]
    raw["quick"]["bench_batch_sizes"] = [1, 4]
    Path("params.yaml").write_text(yaml.safe_dump(raw))
    out = bench.run(params.load("params.yaml"), "alexnet_thinner_4")
    int8 = out["results"]["ort_cpu"]["int8"]
    assert set(int8) == {"1", "4"} and all(r["speedup_vs_torch_eager"] > 0 and r["floor_ms"] > 0 for r in int8.values())
    skipped = {(s["backend"], s["precision"]): s["reason"] for s in out["skipped"]}
    assert skipped[("torch_eager", "int8")] == bench.cannot_run("torch_eager", "int8", False, False)
    md = report_view.latency_table(BenchReport.read(paths.bench("alexnet_thinner_4"), "bench"))
    assert "ort_cpu_int8" in md and list(md).index("ort_cpu_int8") == list(md).index("ort_cpu") + 1


def test_measure_percentiles_and_min_seconds():
    calls = []
    r = bench.measure(lambda: calls.append(1), bench.Timer(False), 4, warmup=2, iterations=3, min_seconds=0.05,
                      max_seconds=None)
    assert r["iterations"] >= 3 and len(calls) == r["iterations"] + 1 + 2
    assert r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"]
    assert r["images_per_s"] > 0


# ---------------------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture
def reported(project):
    summary = report.run(params.load("params.yaml"))
    return project, summary


def test_report_markdown(reported):
    root, summary = reported
    md = (root / "artifacts" / "report.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    for v, ds in TINY_VARIANTS.items():
        assert any(line.startswith(f"| {v} | {ds} |") for line in rows), f"no table row for {v}"
    assert "QUICK CHECK RUN" in md and "MEANINGLESS" in md
    assert "the JPEG copy of CIFAR-10 (cifar10-jpeg.tar.gz)" in md
    assert "the official CIFAR-10" in md
    for v in TINY_VARIANTS:
        for stage in ("train", "evaluate", "export", "bench"):
            assert f"`netpipe {stage} {v}`" in md
    assert "`netpipe report`" in md and "Produced by" in md
    # the seed document's figure beside ours, read from params
    p = params.load("params.yaml")
    ref = p.nets["alexnet_cifar"].seed_reference["top1"]
    assert f"{100 * ref:.2f}% (000)" in md
    # and the document's parameter count beside ours where it prints one (002's model.summary())
    doc = p.nets["alexnet_thinner_4"].seed_reference["params"]
    row = next(line for line in rows if line.startswith("| alexnet_thinner_4 |"))
    assert row.split(" | ")[2] == f"{report_md._count(doc)} (doc {doc:,}: same)", "ours, equal to the document's"
    assert f"{doc:,} parameters (doc 002)" in md
    # best per dataset is named, and says what it was ranked on
    for ds in set(TINY_VARIANTS.values()):
        assert f"**{ds}**: `{summary['best'][ds]}`" in md
    assert "10-crop" in md
    speed = md.split("### Training speed", 1)[1].split("\n\n")[1].splitlines()
    assert len(speed) == 2 + len(TINY_VARIANTS) and "% of measured peak" in speed[0]
    # numbers come from the stage outputs
    ort1 = _load(paths.bench("alexnet_cifar"))["results"]["ort_cpu"]["fp32"]["1"]["p50_ms"]
    assert report_md._ms(ort1) in md
    # the int8 file's accuracy and its drop from the fp32 file's, from the export record, marked when over the limit
    for v in TINY_VARIANTS:
        i8 = _load(paths.export_report(v))["int8"]
        line = next(x for x in md.splitlines() if x.startswith(f"- `{v}`: max |logit difference|"))
        assert f"int8 file ({report_md._bytes(i8['bytes'])}, calibrated on {i8['calibration']['images']:,} train images" in line
        assert f"{report_md._pct(i8['accuracy']['top1'])} / {report_md._pct(i8['accuracy']['top1_10crop'])} multi-crop" in line
        assert ("**MARKED" in line) == (not i8["within_max_drop"])
    # every backend against PyTorch eager and the floor, a row per variant and backend, from the bench JSON
    limits = md.split("### Latency against PyTorch eager and the machine's limit", 1)[1].split("\n\n")[1].splitlines()
    assert "x eager" in limits[0] and "% of floor" in limits[0]
    for v in TINY_VARIANTS:
        res = _load(paths.bench(v))["results"]
        for backend, per_prec in res.items():
            for prec, per_batch in per_prec.items():
                key = report_view.backend_key(backend, prec)
                row = next(line for line in limits if line.startswith(f"| {v} | {key} |"))
                r1 = per_batch["1"]
                assert f"| {r1['speedup_vs_torch_eager']:.2f}x |" in row
                assert f"| {report_md._pct(r1['fraction_of_peak'], 1)} |" in row
        eager = next(line for line in limits if line.startswith(f"| {v} | torch_eager |"))
        assert eager.count("| 1.00x |") == 2  # eager against itself, at batch 1 and the largest batch


def test_report_plots_are_pngs(reported):
    root, summary = reported
    plots = summary["plots"]
    for key in ("accuracy_vs_latency", "training_curves", "latency_vs_batch"):
        assert key in plots
    for ds in set(TINY_VARIANTS.values()):
        assert f"confusion_{ds}" in plots, "the best model's confusion matrix is drawn per dataset"
    for f in plots.values():
        path = root / f
        assert path.parent == root / "artifacts" / "plots"
        with Image.open(path) as im:
            im.verify()
            assert im.format == "PNG"
        with Image.open(path) as im:
            assert im.size[0] > 300 and im.size[1] > 200
    assert not [f for f in (root / "artifacts" / "plots").iterdir() if f.name.startswith(".")], "temp files left"


def test_report_draws_every_variants_confusion_matrix(reported):
    """artifacts/confusion/VARIANT.png for every variant with a metrics file (the report draws them from
    evaluate's matrix); the best one of each dataset is the same picture as its plots/ copy."""
    root, summary = reported
    conf = root / "artifacts" / "confusion"
    assert sorted(f.name for f in conf.iterdir()) == sorted(f"{v}.png" for v in TINY_VARIANTS)
    for v in TINY_VARIANTS:
        with Image.open(conf / f"{v}.png") as img:
            img.load()
            assert img.format == "PNG" and min(img.size) >= 200
    for ds, name in summary["best"].items():
        assert (root / summary["plots"][f"confusion_{ds}"]).read_bytes() == (conf / f"{name}.png").read_bytes()


def test_summary_json_schema(reported):
    root, summary = reported
    on_disk = _load(root / "artifacts" / "summary.json")
    assert on_disk == json.loads(json.dumps(summary))
    assert set(on_disk["variants"]) == set(TINY_VARIANTS)
    for name, v in on_disk["variants"].items():
        assert v["dataset"] == TINY_VARIANTS[name]
        assert isinstance(v["params"], int) and v["params"] > 0
        for key in ("top1", "top1_10crop", "val_top1"):
            assert isinstance(v[key], float) and 0.0 <= v[key] <= 1.0, (name, key, v[key])
        assert v["train_seconds"] > 0 and isinstance(v["train_device"], str)
        assert isinstance(v["onnx_bytes"], int) and v["onnx_bytes"] > 0
        assert "ort_cpu" in v["latency"] and "torch_eager" in v["latency"]
        for key, per_batch in v["latency"].items():
            assert not key.endswith("_fp32")
            assert set(per_batch) == {"1", "4"}
            for r in per_batch.values():
                assert set(r) == LATENCY_KEYS and r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"]
        for key, per_batch in v["latency_vs_limits"].items():
            assert set(per_batch) == set(v["latency"][key])
            for r in per_batch.values():
                assert set(r) == set(report_view.LIMIT_FIELDS) and r["floor_ms"] > 0 and 0 < r["fraction_of_peak"]
        if "ort_cpu" in _load(paths.bench(name))["results"] and "fp16" in _load(paths.bench(name))["results"]["ort_cpu"]:
            assert "ort_cpu_fp16" in v["latency"]
        assert v["fastest_batch1"]["p50_ms"] == min(r["1"]["p50_ms"] for r in v["latency"].values() if "1" in r)
        metrics = _load(paths.metrics(name))
        assert v["top1"] == metrics["top1"] and v["top1_10crop"] == metrics["top1_10crop"]
        # training speed: images/s from the train summary, FLOP/s against the peak bench measured on this CPU
        sp, tr = v["train_speed"], _load(paths.train_summary(name))
        assert sp["images_per_s"] == tr["images_per_s"] > 0 and sp["epoch_seconds"] > 0
        assert sp["precision"] == ("bf16" if tr["amp_bf16"] else "fp32")  # what training chose (pipeline/speed.py)
        assert sp["why"] == tr["speed"]["reason"] and sp["uses"].startswith(sp["precision"].replace("bf16", "bf16 autocast"))
        assert sp["flops_per_s"] == pytest.approx(3 * v["flops_per_image"] * sp["images_per_s"])
        assert 0 < sp["fraction_of_peak"] < 1 and sp["peak_flops_per_s"] > sp["flops_per_s"]
    assert set(on_disk["best"]) == set(TINY_VARIANTS.values())
    for ds, name in on_disk["best"].items():
        same = [v["top1_10crop"] for v in on_disk["variants"].values() if v["dataset"] == ds]
        assert on_disk["variants"][name]["top1_10crop"] == max(same)
        assert on_disk["pareto"][ds], "a dataset with measured variants has a Pareto front"
    d = on_disk["data"]
    assert d["cifar10"]["source"] == "local" and d["cifar10_jpeg"]["source"] == "folder"
    assert d["cifar10"]["prepared"]["counts"]["test"] == 32
    assert on_disk["quick"] is True and on_disk["missing"] == []


def test_report_missing_outputs_show_na(pipeline_project, tmp_path, monkeypatch):
    root = _copy_project(pipeline_project, tmp_path / "proj")
    monkeypatch.chdir(root)
    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["variants"]["alexnet_cifar_drop05"] = "cifar10"  # in params, never run
    raw["nets"]["alexnet_cifar_drop05"] = raw["nets"]["alexnet_cifar"]
    Path("params.yaml").write_text(yaml.safe_dump(raw))
    paths.bench("alexnet_thinner_4").unlink()
    paths.export_report("alexnet_cifar").write_text("{ truncated")  # unreadable counts as missing
    summary = report.run(params.load("params.yaml"))
    assert summary["missing"] == ["alexnet_cifar_drop05"]
    v = summary["variants"]["alexnet_thinner_4"]
    assert v["latency"] == {} and v["flops_per_image"] is None and v["top1"] is not None
    md = Path("artifacts/report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| alexnet_thinner_4 |"))
    assert "n/a" in row
    row = next(line for line in md.splitlines() if line.startswith("| alexnet_cifar_drop05"))
    assert "not trained here" in row and row.count("n/a") >= 8  # no figure made up for an untrained variant
    assert "**Missing**" in md and "`alexnet_cifar_drop05`" in md
    assert summary["best"]["cifar10"] in ("alexnet_cifar", "alexnet_thinner_4")


def test_report_cells_follow_the_stage_outputs(pipeline_project, tmp_path, monkeypatch):
    """The tamper test: change the stage outputs of one variant to values no run would give, regenerate, and see
    exactly those values in its row and in summary.json (and the old ones gone): no cell is typed in or cached."""
    root = _copy_project(pipeline_project, tmp_path / "proj")
    monkeypatch.chdir(root)
    v = "alexnet_thinner_4"

    def row() -> str:  # its Results row and its Size and speed row
        md = Path("artifacts/report.md").read_text().split("### Against the seed documents", 1)[0]
        return "\n".join(line for line in md.splitlines() if line.startswith(f"| {v} |"))

    report.run(params.load("params.yaml"))
    before = row()
    m = _load(paths.metrics(v))
    m.update({"top1": 0.123456, "top1_10crop": 0.987654, "top5": 0.5, "top5_10crop": 0.55})
    paths.metrics(v).write_text(json.dumps(m))
    b = _load(paths.bench(v))
    b["results"]["ort_cpu"]["fp32"]["1"]["p50_ms"] = 0.004321  # now the fastest at batch 1
    paths.bench(v).write_text(json.dumps(b))
    summary = report.run(params.load("params.yaml"))
    after = row()
    assert after != before
    for cell in (report_md._pct(0.123456), report_md._pct(0.987654), f"{report_md._ms(0.004321)} (ort_cpu)"):
        assert cell in after and cell not in before, (cell, after)
    got = summary["variants"][v]
    assert (got["top1"], got["top1_10crop"]) == (0.123456, 0.987654)


def test_report_with_no_outputs_at_all(tmp_path, monkeypatch, pipeline_project):
    monkeypatch.chdir(tmp_path)
    shutil.copy(pipeline_project / "params.yaml", tmp_path / "params.yaml")
    summary = report.run(params.load("params.yaml"))
    assert set(summary["missing"]) == set(TINY_VARIANTS) and summary["best"] == {}
    for f in summary["plots"].values():
        with Image.open(f) as im:
            assert im.format == "PNG"


@pytest.mark.parametrize("where", ["corner", "bottom", "right edge"])
def test_accuracy_vs_latency_names_never_overlap(where):
    """Sixteen points crowded into one corner, on the axes' lower edge (a quick check's 0% accuracies) or at their
    right edge (names go to the left): every label is placed inside the axes, clear of every other label, every
    point and the legend."""
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5.2))
    y0 = 0.0 if where == "bottom" else 80.0
    x0 = 2.8 if where == "right edge" else 1.0
    pts = [(f"variant_name_{i}", x0 + 0.01 * i, y0 + 0.02 * (i % 5)) for i in range(16)]
    ax.scatter([x for _, x, _ in pts], [y for _, _, y in pts], label="variants")
    ax.set_xscale("log")
    ax.set_xlim(0.6, 3.0)
    ax.set_ylim(-0.2, 10) if where == "bottom" else ax.set_ylim(70, 82)
    ax.legend(loc="upper left" if where == "right edge" else "upper right")
    fig.canvas.draw()
    boxes = plots._place_labels(ax, pts)
    marks = [ax.transData.transform((x, y)) for _, x, y in pts]
    legend, inside = ax.get_legend().get_window_extent(), ax.get_window_extent()
    plt.close(fig)
    assert len(boxes) == 16
    for i, a in enumerate(boxes):
        assert not any(a.overlaps(b) for b in boxes[i + 1:]), i
        assert not any(a.contains(mx, my) for mx, my in marks), i
        assert not a.overlaps(legend), i
        assert inside.x0 <= a.x0 and a.x1 <= inside.x1 and inside.y0 <= a.y0 and a.y1 <= inside.y1, i


@pytest.mark.parametrize(("lo", "hi", "expected"), [(12, 70, (10, 100)), (3.3, 12, (2, 20)), (0.04, 0.9, (0.02, 1)),
                                                   (20, 20, (10, 50)), (150, 151, (100, 200))])
def test_latency_axis_ends_on_labelled_ticks(lo, hi, expected):
    assert plots._nice_log_range(lo, hi) == pytest.approx(expected)


def test_pareto_front():
    pts = [("a", 1.0, 0.80), ("b", 2.0, 0.90), ("c", 3.0, 0.85), ("d", 0.5, 0.70), ("e", 2.0, 0.90)]
    assert report_view.pareto(pts) == ["d", "a", "b", "e"]
    assert report_view.pareto([("x", 1.0, 0.5), ("y", 1.0, 0.6)]) == ["y"]
    assert report_view.pareto([]) == []
