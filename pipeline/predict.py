"""`netpipe predict IMAGE...`: classify image files with an exported ONNX model, through onnxruntime only.

- No torch here (nor in preprocess.py, runtime.py): a cold run pays for numpy, PIL and onnxruntime only.
- The model: --model PATH, or the best variant of the dataset in artifacts/summary.json (written by
  `netpipe report`), i.e. models/VARIANT.onnx; --dataset picks the dataset when the summary has several.
- Preprocessing comes from the model's own metadata (written by `netpipe export`; see preprocess.py): the
  centre crop, or with --ten-crop the eval protocol's 10 (or 5) crops with their softmax outputs averaged,
  as `netpipe evaluate` does. All good images go through one session run (split only past MAX_FLOATS inputs).
- Output: a line per image, `IMAGE: class probability[, class probability ...]` (top-k), or with --json one
  JSON document: a list of {"image", "predictions": [{"class", "probability"}, ...]} or {"image", "error"}.
- Errors: a bad image prints `netpipe: IMAGE: reason` on stderr, the others are still classified, and the exit
  code is 1. A bad or missing model (not ONNX, no netpipe metadata, not a 4-D image input): `netpipe: error:
  ...`, exit 1. An ambiguous or unknown --dataset is a usage error: exit 2.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from . import paths, preprocess, runtime
from .errors import InputError, first_line

META_FORMAT = "netpipe-onnx-1"  # metadata_props["netpipe_format"] of models written by `netpipe export`
MAX_FLOATS = 1 << 25  # input floats per session run (128 MiB)


class UsageError(InputError):
    exit_code = 2


@dataclass(frozen=True)
class ModelMeta:
    """What export.metadata stores, parsed."""

    classes: list[str]
    channels: int
    input_size: int
    image_hw: tuple[int, int]
    mean: list[float]
    std: list[float]
    eval: dict
    digits: bool
    variant: str


def read_meta(sess, path: Path) -> ModelMeta:
    props = sess.get_modelmeta().custom_metadata_map
    if props.get("netpipe_format") != META_FORMAT:
        raise InputError(f"model {path} has no netpipe metadata (export it with `netpipe export`)")
    try:
        h, w = json.loads(props["image_size"])
        meta = ModelMeta([str(c) for c in json.loads(props["classes"])], int(props["channels"]),
                         int(props["input_size"]), (int(h), int(w)), [float(v) for v in json.loads(props["mean"])],
                         [float(v) for v in json.loads(props["std"])], dict(json.loads(props["eval"])),
                         props.get("format") == "mnist", props.get("variant", "?"))
        if not meta.classes or meta.channels not in (1, 3) or not len(meta.mean) == len(meta.std) == meta.channels \
                or int(meta.eval["crop"]) <= 0:
            raise ValueError("inconsistent values")
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"model {path} has broken netpipe metadata ({type(exc).__name__}: {exc})") from None
    inp = sess.get_inputs()[0]
    want = [meta.channels, meta.input_size, meta.input_size]
    if len(inp.shape) != 4 or any(isinstance(d, int) and d != e for d, e in zip(inp.shape[1:], want)):
        raise InputError(f"model {path} takes input {inp.shape}; its metadata says images (N, {', '.join(map(str, want))})")
    if inp.type not in ("tensor(float)", "tensor(float16)"):
        raise InputError(f"model {path} takes {inp.type}, not float images")
    out, n = sess.get_outputs()[0].shape, len(meta.classes)
    if out is not None and (len(out) != 2 or (isinstance(out[1], int) and out[1] != n)):
        raise InputError(f"model {path} outputs {out}; its metadata names {n} classes, i.e. logits (N, {n})")
    return meta


def quiet_run():
    """RunOptions that keep onnxruntime's own log lines ("[E:onnxruntime:, sequential_executor.cc ...]") off
    stderr: a failing run still raises, with the same message."""
    import onnxruntime as ort

    ro = ort.RunOptions()
    ro.log_severity_level = 4
    return ro


def infer(sess, x: np.ndarray) -> np.ndarray:
    """float32 logits of a normalised batch (N, C, H, W); a model with a fixed batch size gets padded chunks."""
    inp = sess.get_inputs()[0]
    dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
    fixed = inp.shape[0] if isinstance(inp.shape[0], int) else None
    step = fixed or max(1, MAX_FLOATS // max(1, int(np.prod(x.shape[1:]))))
    quiet = quiet_run()
    out = []
    for i in range(0, len(x), step):
        xb = np.ascontiguousarray(x[i:i + step], dtype=dtype)
        n = len(xb)
        if fixed and n < fixed:
            xb = np.concatenate([xb, np.zeros((fixed - n, *xb.shape[1:]), dtype)])
        out.append(sess.run(None, {inp.name: xb}, quiet)[0][:n].astype(np.float32))
    return np.concatenate(out)


PRECISIONS = ("fp32", "fp16", "int8")  # the files `netpipe export` writes: VARIANT.onnx, .fp16.onnx, .int8.onnx


def default_model(dataset: Optional[str], precision: str = "fp32") -> Path:
    """models/VARIANT.onnx of the best variant in artifacts/summary.json; where that is missing (a fresh clone: DVC's
    outputs are not in git), the model shipped with the repository for the dataset (pretrained/DATASET.onnx), named
    on stderr with what it came with."""
    try:
        return best_trained(dataset, precision)
    except UsageError:  # several datasets and no --dataset: the one shipped model, if nothing is trained here
        fallback = _shipped(dataset) if dataset is None and not _any_trained() else None
        if fallback is None:
            raise
        why = "no trained model in models/"
    except InputError as exc:
        fallback = None if precision != "fp32" and _any_trained() else _shipped(dataset)  # not for a missing int8 file
        if fallback is None:
            raise
        why = str(exc).split(": run `dvc repro`")[0]
    if precision != "fp32":
        raise UsageError(f"--precision {precision}: {why}, and the model shipped with netpipe ({fallback}) is one file: "
                         "drop --precision to use it")
    print(f"netpipe: {why}; using {fallback}, the model shipped with netpipe ({_shipped_note(fallback)})",
          file=sys.stderr)
    return fallback


def _shipped(dataset: Optional[str]) -> Optional[Path]:
    """pretrained/DATASET.onnx, or with no dataset the only shipped model."""
    if dataset is not None:
        path = paths.shipped(dataset)
        return path if path.is_file() else None
    found = sorted(paths.PRETRAINED.glob("*.onnx")) if paths.PRETRAINED.is_dir() else []
    return found[0] if len(found) == 1 else None


def _any_trained() -> bool:
    try:
        best = json.loads(paths.SUMMARY.read_text()).get("best") or {}
        return any(paths.onnx(str(v)).is_file() for v in best.values())
    except (OSError, ValueError, AttributeError):
        return False


def _shipped_note(path: Path) -> str:
    try:
        m = json.loads(path.with_suffix(".json").read_text())
        return (f"{m['variant']}, {m['precision']}, test top-1 {100 * m['accuracy']['top1']:.2f}% on "
                f"{m['accuracy']['n_test']} images, trained on {m['trained_on']}")
    except (OSError, ValueError, KeyError, TypeError):
        return "its metadata file is missing"


def best_trained(dataset: Optional[str], precision: str = "fp32") -> Path:
    """models/VARIANT.onnx (or its fp16/int8 file) of the best variant in artifacts/summary.json."""
    if not paths.SUMMARY.is_file():
        raise InputError(f"no --model given and {paths.SUMMARY} not found: run `dvc repro` first, or pass --model PATH")
    from . import fileio  # here: it imports tempfile and shutil, which `predict --model M` has no use for

    summary = fileio.read_json(paths.SUMMARY, "summary")
    best = summary.get("best") if isinstance(summary, dict) else None
    if not isinstance(best, dict) or not best:
        raise InputError(f"{paths.SUMMARY} names no best model: run `dvc repro` first, or pass --model PATH")
    if dataset is None:
        if len(best) > 1:
            raise UsageError(f"{paths.SUMMARY} has a best model for each of {', '.join(sorted(best))}: "
                             "pass --dataset NAME (or --model PATH)")
        dataset = next(iter(best))
    elif dataset not in best:
        raise UsageError(f"no best model for dataset '{dataset}' in {paths.SUMMARY}; allowed: {', '.join(sorted(best))}")
    path = paths.onnx(str(best[dataset]), precision)
    if not path.is_file():
        which = "" if precision == "fp32" else f", {precision}"
        raise InputError(f"{path} (the best {dataset} model in {paths.SUMMARY}{which}) not found: run `dvc repro`, "
                         "or pass --model PATH")
    return path


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def classify(sess, meta: ModelMeta, images: Sequence, top_k: int = 1, ten_crop: bool = False) -> list[dict]:
    """{"image", "predictions"} or {"image", "error"} per image, in order; errors are also printed on stderr."""
    results, batch = [], []
    for image in images:
        try:
            x = preprocess.load(image, meta.channels, meta.image_hw, meta.digits)
            batch.append(preprocess.normalize(preprocess.views(x, meta.eval, meta.input_size, ten_crop), meta.mean, meta.std))
            results.append({"image": str(image)})
        except preprocess.ImageError as exc:
            print(f"netpipe: {image}: {exc}", file=sys.stderr)
            results.append({"image": str(image), "error": str(exc)})
    if batch:
        x = np.stack(batch)  # (n, K, C, S, S)
        try:
            logits = infer(sess, x.reshape(-1, *x.shape[2:]))
        except Exception as exc:  # onnxruntime's Fail/InvalidArgument/RuntimeException: a broken model
            raise InputError(f"the model fails on these images: {first_line(exc)}") from None
        if logits.shape != (x.shape[0] * x.shape[1], len(meta.classes)):
            raise InputError(f"the model returned logits of shape {list(logits.shape)} for {x.shape[0] * x.shape[1]} "
                             f"inputs; its metadata names {len(meta.classes)} classes")
        probs = softmax(logits.reshape(*x.shape[:2], -1)).mean(1)
        k = max(1, min(top_k, probs.shape[1]))
        for r, pr in zip((r for r in results if "error" not in r), probs):
            top = np.argsort(-pr, kind="stable")[:k]
            r["predictions"] = [{"class": meta.classes[i], "probability": round(float(pr[i]), 6)} for i in top]
    return results


def run(images: Sequence, model: Optional[str | Path] = None, top_k: int = 1, ten_crop: bool = False,
        json_out: bool = False, dataset: Optional[str] = None, precision: str = "fp32") -> int:
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision!r}: allowed: {', '.join(PRECISIONS)}")
    if model is not None and precision != "fp32":
        raise UsageError("--precision picks one of the best model's files; with --model, pass that file itself")
    path = Path(model) if model is not None else default_model(dataset, precision)
    sess = runtime.session(path)
    meta = read_meta(sess, path)
    results = classify(sess, meta, images, top_k, ten_crop)
    if json_out:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            if "predictions" in r:
                print(f"{r['image']}: " + ", ".join(f"{q['class']} {q['probability']:.4f}" for q in r["predictions"]))
    return 1 if any("error" in r for r in results) else 0
