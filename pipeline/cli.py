"""The `netpipe` command. Each subcommand is one DVC stage (or a user tool) and imports its module lazily,
so `netpipe --help` and `netpipe predict` never pay for importing torch."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from .errors import NetpipeError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="netpipe: prepare data, train, evaluate, export to ONNX, benchmark and report image classifiers.",
)

ParamsOpt = typer.Option(Path("params.yaml"), "--params", "-p", help="params file (default: params.yaml)")


def _params(path: Path):
    from . import params

    return params.load(path)


@app.command()
def prepare(
    datasets: Optional[List[str]] = typer.Argument(None, help="datasets to prepare (default: those the variants use)"),
    params_file: Path = ParamsOpt,
) -> None:
    """Read a dataset from its source and write data/prepared/DATASET.npz (uint8 arrays, validation split)."""
    p = _params(params_file)
    from . import data

    wanted = datasets or sorted(set(p.variants.values()))
    for name in wanted:
        if name not in p.data:
            raise NetpipeError(f"unknown dataset '{name}'; allowed: {', '.join(p.data)}")
        data.prepare(p, name)


@app.command()
def train(variant: str, params_file: Path = ParamsOpt) -> None:
    """Train VARIANT: best and last checkpoints in models/, curves in artifacts/train/."""
    p = _params(params_file)
    p.dataset_of(variant)
    from . import train as mod

    mod.run(p, variant)


@app.command()
def evaluate(variant: str, params_file: Path = ParamsOpt) -> None:
    """Single-crop and multi-crop accuracy of VARIANT on the test set: artifacts/metrics/VARIANT.json."""
    p = _params(params_file)
    p.dataset_of(variant)
    from . import evaluate as mod

    mod.run(p, variant)


@app.command()
def export(variant: str, params_file: Path = ParamsOpt) -> None:
    """Export VARIANT to models/VARIANT.onnx and check onnxruntime against PyTorch."""
    p = _params(params_file)
    p.dataset_of(variant)
    from . import export as mod

    mod.run(p, variant)


@app.command()
def bench(variant: str, params_file: Path = ParamsOpt) -> None:
    """Inference latency and throughput of VARIANT on every available backend: artifacts/bench/VARIANT.json."""
    p = _params(params_file)
    p.dataset_of(variant)
    from . import bench as mod

    mod.run(p, variant)


@app.command()
def report(params_file: Path = ParamsOpt) -> None:
    """Write artifacts/report.md, artifacts/summary.json and the plots from all stage outputs."""
    p = _params(params_file)
    from . import report as mod

    mod.run(p)


@app.command()
def variants(params_file: Path = ParamsOpt) -> None:
    """List the variants with their dataset, parameter count and training recipe."""
    p = _params(params_file)
    from . import train as mod

    mod.list_variants(p)


@app.command()
def predict(
    images: List[Path] = typer.Argument(..., help="image files (PNG, JPEG, BMP, WebP, ...)"),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="ONNX model (default: best in artifacts/summary.json)"),
    top_k: int = typer.Option(1, "--top-k", "-k", min=1, help="classes to show per image"),
    ten_crop: bool = typer.Option(False, "--ten-crop", help="average the model's multi-crop protocol"),
    json_out: bool = typer.Option(False, "--json", help="machine-readable output"),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="pick the best model of this dataset"),
) -> None:
    """Classify images with an exported ONNX model (onnxruntime only, no torch)."""
    from . import predict as mod

    code = mod.run(images, model=model, top_k=top_k, ten_crop=ten_crop, json_out=json_out, dataset=dataset)
    raise typer.Exit(code)


def main() -> None:
    try:
        code = app(standalone_mode=False)  # with standalone_mode=False click returns typer.Exit's code, not raises it
    except NetpipeError as exc:
        print(f"netpipe: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("netpipe: aborted", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print("netpipe: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # click usage errors (recent typer raises those of its own copy of click, typer._click)
        if any(c.__name__ == "ClickException" for c in type(exc).__mro__):
            print(f"netpipe: error: {exc.format_message()}", file=sys.stderr)
            sys.exit(exc.exit_code)
        raise
    if isinstance(code, int) and code:  # `netpipe predict` with a bad image: typer.Exit(1)
        sys.exit(code)


if __name__ == "__main__":
    main()
