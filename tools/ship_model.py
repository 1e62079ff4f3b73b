"""Ship a trained variant's ONNX file with the repository: pretrained/DATASET.onnx and pretrained/DATASET.json.

    python tools/ship_model.py VARIANT [--precision fp16|fp32] [--out pretrained] [--max-mb 12]

Run in the project root after `dvc repro export@VARIANT` (it reads models/VARIANT[.fp16].onnx and the variant's
records under artifacts/). `netpipe predict` falls back to the shipped model of a dataset when models/ holds no trained
one (a fresh clone), and says so. The JSON beside it says what the file is and what it came with: the variant, its
precision, size and sha256, the test accuracy measured on it (the fp16 file's own when it was measured, else the
fp32 file's through onnxruntime), the machine and commit it was trained at, and the commands.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline import fileio, paths  # noqa: E402
from pipeline.records import ExportReport, Metrics, TrainSummary  # noqa: E402


def ship(variant: str, precision: str, out: Path, max_mb: float) -> Path:
    src = paths.onnx(variant, precision)
    if not src.is_file():
        raise SystemExit(f"ship_model: {src} not found: run `dvc repro export@{variant}` first")
    size = src.stat().st_size
    if size > max_mb * 1e6:
        raise SystemExit(f"ship_model: {src} is {size / 1e6:.1f} MB, over --max-mb {max_mb:g} (git holds it)")
    metrics = Metrics.read(paths.metrics(variant), "metrics file")
    export = ExportReport.read(paths.export_report(variant), "export record")
    train = TrainSummary.read(paths.train_summary(variant), "training summary")
    if precision == "fp16" and export.fp16.accuracy is not None:
        acc = {"top1": export.fp16.accuracy.top1, "top1_10crop": export.fp16.accuracy.top1_10crop,
               "n_test": export.fp16.accuracy.n_test, "measured_on": f"this fp16 file, {export.fp16.provider}"}
    else:
        acc = {"top1": export.accuracy.onnx.top1, "top1_10crop": export.accuracy.onnx.top1_10crop,
               "n_test": export.accuracy.n_test, "measured_on": "the fp32 file, onnxruntime"}
    out.mkdir(parents=True, exist_ok=True)
    dst = out / f"{metrics.dataset}.onnx"
    fileio.write_with(dst, lambda tmp: shutil.copyfile(src, tmp), suffix=".onnx")
    meta = {
        "variant": variant, "dataset": metrics.dataset, "file": dst.name, "precision": precision, "bytes": size,
        "sha256": hashlib.sha256(dst.read_bytes()).hexdigest(), "accuracy": acc,
        "pytorch_accuracy": {"top1": metrics.top1, "top1_10crop": metrics.top1_10crop, "n_test": metrics.n_test},
        "fp16_max_abs_diff": export.fp16.max_abs_diff if precision == "fp16" else None,
        "trained_on": train.train_device, "epochs": train.epochs, "train_seconds": train.train_seconds,
        "git_commit": {"train": train.git_commit, "evaluate": metrics.git_commit},
        "commands": [train.command, metrics.command, export.command, f"python tools/ship_model.py {variant}"
                     + (f" --precision {precision}" if precision != "fp16" else "")],
    }
    fileio.write_json(dst.with_suffix(".json"), meta)
    print(f"{dst} ({size / 1e6:.1f} MB, {variant} {precision}, test top-1 {100 * acc['top1']:.2f}% on "
          f"{acc['n_test']} images) and {dst.with_suffix('.json')}")
    return dst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tools/ship_model.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("variant")
    ap.add_argument("--precision", choices=["fp16", "fp32"], default="fp16")
    ap.add_argument("--out", type=Path, default=paths.PRETRAINED)
    ap.add_argument("--max-mb", type=float, default=12.0)
    a = ap.parse_args(argv)
    ship(a.variant, a.precision, a.out, a.max_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
