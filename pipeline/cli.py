"""The `netpipe` command. Each subcommand is one DVC stage (or a user tool) and imports its module lazily,
so `netpipe --help` and `netpipe predict` never pay for importing torch.

`netpipe predict` is also a one-shot user command, whose start-up time shows, and importing typer (with its copy of
click, and pydantic) costs ~70 ms. So main() reads predict's arguments with a small parser, `predict_options`, that
takes the spellings typer accepts and reads them as typer does; whatever it is not sure of (--help, an unknown or
misspelt option, a bad --top-k, no image, a shell-completion request) it leaves to the typer app, which is built
only then (`build_app`): help, one-line usage errors and exit codes stay typer's, unchanged.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
from pathlib import Path
from typing import List, Optional

from .errors import NetpipeError

# predict's options, as the typer command below declares them (tests/test_predict.py checks the two agree)
PREDICT_VALUE_OPTIONS = {"--model": "model", "-m": "model", "--top-k": "top_k", "-k": "top_k", "--dataset": "dataset",
                         "--precision": "precision"}
PREDICT_FLAGS = {"--ten-crop": "ten_crop", "--json": "json_out"}


@functools.lru_cache(maxsize=1)
def build_app():
    """The typer app, built on first use (not by `netpipe predict IMAGE...`: see the module docstring). Its commands
    are added in the order `netpipe --help` lists them: the stages, then the tools."""
    import typer

    app = typer.Typer(
        add_completion=False,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        help="netpipe: prepare data, train, evaluate, export to ONNX, benchmark and report image classifiers.",
    )

    ParamsOpt = typer.Option(Path("params.yaml"), "--params", "-p", help="params file (default: params.yaml)")
    _add_stage_commands(app, ParamsOpt)
    _add_tool_commands(app, ParamsOpt)
    return app


def _add_stage_commands(app, ParamsOpt) -> None:
    """The DVC stages' commands. One nested function per command, each a few lines that typer reads the options and
    help text from."""
    import typer

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
        _stage("train", params_file, variant)

    @app.command()
    def evaluate(variant: str, params_file: Path = ParamsOpt) -> None:
        """Single-crop and multi-crop accuracy of VARIANT on the test set: artifacts/metrics/VARIANT.json."""
        _stage("evaluate", params_file, variant)

    @app.command()
    def export(variant: str, params_file: Path = ParamsOpt) -> None:
        """Export VARIANT to models/VARIANT.onnx and check onnxruntime against PyTorch."""
        _stage("export", params_file, variant)

    @app.command()
    def bench(variant: str, params_file: Path = ParamsOpt) -> None:
        """Inference latency and throughput of VARIANT on every available backend: artifacts/bench/VARIANT.json."""
        _stage("bench", params_file, variant)

    @app.command()
    def report(params_file: Path = ParamsOpt) -> None:
        """Write artifacts/report.md, artifacts/summary.json and the plots from all stage outputs."""
        _stage("report", params_file)


def _add_tool_commands(app, ParamsOpt) -> None:
    """The user tools' commands: variants, plots-template and predict (typer's reading of predict's options;
    `predict_options` below reads the same ones without typer)."""
    import typer

    @app.command()
    def variants(params_file: Path = ParamsOpt) -> None:
        """List the variants with their dataset, parameter count and training recipe."""
        p = _params(params_file)
        from . import variants as mod

        mod.list_variants(p)

    @app.command("plots-template")
    def plots_template(
        out: Path = typer.Argument(Path("dvc_plots/offline-template.html"), help="where to write the template"),
    ) -> None:
        """Write an HTML template for `dvc plots show --html-template` that renders offline (vega inlined)."""
        from . import plots as mod

        path = mod.run(out)
        print(f"wrote {path}: dvc plots show --html-template {path}", file=sys.stderr)

    @app.command()
    def predict(
        images: List[Path] = typer.Argument(..., help="image files (PNG, JPEG, BMP, WebP, ...)"),
        model: Optional[Path] = typer.Option(None, "--model", "-m", help="ONNX model (default: best in artifacts/summary.json)"),
        top_k: int = typer.Option(1, "--top-k", "-k", min=1, help="classes to show per image"),
        ten_crop: bool = typer.Option(False, "--ten-crop", help="average the model's multi-crop protocol"),
        json_out: bool = typer.Option(False, "--json", help="machine-readable output"),
        dataset: Optional[str] = typer.Option(None, "--dataset", help="pick the best model of this dataset"),
        precision: str = typer.Option("fp32", "--precision", help="which of the best model's files: fp32, fp16 or "
                                      "int8 (int8: fastest on a CPU; its accuracy is in artifacts/report.md)"),
    ) -> None:
        """Classify images with an exported ONNX model (onnxruntime only, no torch)."""
        from . import predict as mod

        code = mod.run(images, model=model, top_k=top_k, ten_crop=ten_crop, json_out=json_out, dataset=dataset,
                       precision=precision)
        raise typer.Exit(code)


def __getattr__(name: str):
    if name == "app":  # `pipeline.cli.app`, as before the app was built lazily
        return build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _stage(module: str, params_file: Path, variant: Optional[str] = None):
    """A DVC stage's command: load params (one-line errors), check the variant, import the stage's module only
    now (torch and friends stay out of `netpipe --help`) and run it."""
    import importlib

    p = _params(params_file)
    mod = importlib.import_module(f"{__package__}.{module}")
    if variant is None:
        return mod.run(p)
    p.dataset_of(variant)
    return mod.run(p, variant)


def _params(path: Path):
    from . import params

    return params.load(path)


def predict_options(args: list[str]) -> Optional[dict]:
    """The keyword arguments of predict.run for `netpipe predict ARGS`, read as typer reads them (options anywhere,
    `--opt=V`, `-kV`, `--` ends the options, the last of a repeated option wins), or None when typer must answer."""
    if any(k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ):  # a shell-completion request
        return None
    kw: dict = {"images": [], "model": None, "top_k": "1", "ten_crop": False, "json_out": False, "dataset": None,
                "precision": "fp32"}
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            kw["images"] += rest
            break
        if not arg.startswith("-") or arg == "-":
            kw["images"].append(arg)
            continue
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            inline = bool(eq)
        else:  # click reads -kVALUE (and -k=3 as the value "=3")
            name, value, inline = arg[:2], arg[2:], len(arg) > 2
        if name in PREDICT_FLAGS and not inline:
            kw[PREDICT_FLAGS[name]] = True
        elif name in PREDICT_VALUE_OPTIONS and (inline or rest):
            kw[PREDICT_VALUE_OPTIONS[name]] = value if inline else rest.pop(0)
        else:
            return None  # --help, an unknown option, a flag with a value, an option missing its value
    top_k = kw["top_k"]
    if not kw["images"] or not (top_k.isascii() and top_k.isdigit() and int(top_k) >= 1):
        return None
    images = [Path(p) for p in kw["images"]]
    model = None if kw["model"] is None else Path(kw["model"])
    if any(os.path.exists(p) and not os.access(p, os.R_OK) for p in images + [model] if p is not None):
        return None  # typer's usage error: "Invalid value for 'images': Path '...' is not readable."
    return {**kw, "images": images, "model": model, "top_k": int(top_k)}


class _Pacified:
    """A standard stream whose flush ignores a closed pipe (click's PacifyFlushWrapper): `netpipe predict | head`."""

    def __init__(self, stream):
        self._stream = stream

    def flush(self):
        try:
            self._stream.flush()
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise

    def __getattr__(self, name):
        return getattr(self._stream, name)


def run_predict(options: dict) -> int:
    """predict.run(**options), ending as the typer command does: Ctrl-C exits 130 silently, a closed stdout 1."""
    try:
        from . import predict

        return predict.run(**options)
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        sys.stdout, sys.stderr = _Pacified(sys.stdout), _Pacified(sys.stderr)
        return 1


def run_typer() -> Optional[int]:
    import typer

    try:
        return build_app()(standalone_mode=False)  # with standalone_mode=False click returns typer.Exit's code
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("netpipe: aborted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # click usage errors (recent typer raises those of its own copy of click, typer._click)
        if any(c.__name__ == "ClickException" for c in type(exc).__mro__):
            print(f"netpipe: error: {exc.format_message()}", file=sys.stderr)
            sys.exit(exc.exit_code)
        raise


def main() -> None:
    args = sys.argv[1:]
    options = predict_options(args[1:]) if args[:1] == ["predict"] else None
    try:
        if args[:1] != ["predict"]:  # a DVC stage's command: from a warm server if there is one (warm.py)
            from . import warm

            if warm.wanted(sys.argv) and (served := warm.run(sys.argv)) is not None:
                sys.exit(served)
        code = run_predict(options) if options is not None else run_typer()
    except NetpipeError as exc:
        print(f"netpipe: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("netpipe: interrupted", file=sys.stderr)
        sys.exit(130)
    if isinstance(code, int) and code:  # `netpipe predict` with a bad image: exit 1
        sys.exit(code)


if __name__ == "__main__":
    main()
