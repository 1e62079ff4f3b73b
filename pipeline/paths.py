"""Where every stage reads and writes (relative to the project root, as dvc.yaml declares them)."""

from __future__ import annotations

from pathlib import Path

DATA = Path("data")
RAW = DATA / "raw"
PREPARED = DATA / "prepared"
MODELS = Path("models")
ARTIFACTS = Path("artifacts")


def prepared(dataset: str) -> Path:
    return PREPARED / f"{dataset}.npz"


def checkpoint(variant: str) -> Path:
    """Best checkpoint by validation accuracy (DVC output)."""
    return MODELS / f"{variant}.pt"


def last_checkpoint(variant: str) -> Path:
    """Last completed epoch, for resuming (not a DVC output: it survives an interrupted `dvc repro`)."""
    return MODELS / "resume" / f"{variant}.pt"


def best_resume(variant: str) -> Path:
    """The best checkpoint so far, beside the resume state: DVC deletes a stage's outputs (models/VARIANT.pt)
    before it reruns the stage, so an interrupted training keeps its best epoch here and copies it into place
    when the run completes."""
    return MODELS / "resume" / f"{variant}.best.pt"


def onnx(variant: str, precision: str = "fp32") -> Path:
    """The exported file of each precision: VARIANT.onnx (fp32), VARIANT.fp16.onnx, VARIANT.int8.onnx."""
    return MODELS / (f"{variant}.onnx" if precision == "fp32" else f"{variant}.{precision}.onnx")


def train_log(variant: str) -> Path:
    """Per-epoch curves (dvc plots)."""
    return ARTIFACTS / "train" / f"{variant}.csv"


def train_summary(variant: str) -> Path:
    return ARTIFACTS / "train" / f"{variant}.json"


def metrics(variant: str) -> Path:
    return ARTIFACTS / "metrics" / f"{variant}.json"


def export_report(variant: str) -> Path:
    return ARTIFACTS / "export" / f"{variant}.json"


def bench(variant: str) -> Path:
    return ARTIFACTS / "bench" / f"{variant}.json"


def headline(variant: str, stage: str) -> Path:
    """A stage's few numbers for DVC's metrics tables (records.Record.headline)."""
    return ARTIFACTS / "headline" / f"{variant}.{stage}.json"


def plots() -> Path:
    return ARTIFACTS / "plots"


def confusion(variant: str) -> Path:
    """The variant's confusion-matrix PNG (drawn by the report from evaluate's metrics file)."""
    return ARTIFACTS / "confusion" / f"{variant}.png"


PRETRAINED = Path("pretrained")  # models shipped in git, one per dataset (tools/ship_model.py): DATASET.onnx + .json


def shipped(dataset: str) -> Path:
    return PRETRAINED / f"{dataset}.onnx"


REPORT = ARTIFACTS / "report.md"
SUMMARY = ARTIFACTS / "summary.json"
