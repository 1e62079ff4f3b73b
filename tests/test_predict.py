"""`netpipe predict` on the REAL exported models of the tiny project (tests/conftest.py, `pipeline_project`):
image files written with PIL in every supported format and many modes, classified through onnxruntime, and
compared with what `netpipe evaluate` computes for the same prepared test images. The CLI's shape (exit codes,
one line per error on stderr, never a traceback, no onnxruntime noise) is checked on the real console script.

Digit-style (MNIST) preprocessing has no trained model in the tiny project (MNIST's nets take 227x227 inputs: too
slow to train here), so it is checked on preprocess.py directly and end to end with a small hand-built ONNX
model (onnx.helper) that carries real netpipe metadata for an MNIST net: mean-brightness logits, enough to tell
whether an image arrived inverted.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from PIL import Image

from pipeline import evaluate, export, params, predict, preprocess, runtime, transforms
from pipeline.data import load_prepared
from pipeline.params import EvalParams

SMALL = "alexnet_thinner_4"
NETPIPE = Path(sys.executable).with_name("netpipe")
ENV = {k: v for k, v in os.environ.items() if k != "NETPIPE_FORCE_CPU"}  # the real provider choice
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MNIST_EVAL = {"resize": None, "pad": 2, "padding_mode": "constant", "crop": 28, "flips": False, "batch_size": 64}
LINE = re.compile(r"^(?P<image>.+): (?P<preds>[^:]+)$")


# ---------------------------------------------------------------------------------------------------------
# helpers and fixtures
# ---------------------------------------------------------------------------------------------------------
def netpipe(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([str(NETPIPE), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=ENV)


def one_line(stderr: str) -> str:
    """stderr holds exactly one line and no traceback; return it."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def rgb_of(x: np.ndarray) -> Image.Image:
    """uint8 (3, H, W) -> RGB image."""
    return Image.fromarray(np.ascontiguousarray(x.transpose(1, 2, 0)), "RGB")


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares WIDTH x HEIGHT RGB pixels (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_MAGIC + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b"")


def fake_model(path: Path, in_shape: list, n_out: int, props: dict, fixed_reshape: bool = False,
               shift: float = 0.0, gain: float = 1.0) -> Path:
    """A real ONNX file: logits = (mean(input) - shift) * gain * linspace(-1, 1, n_out), with the given
    metadata_props: a brightness classifier (class 0 for dark inputs, the last class for bright ones).
    fixed_reshape: an internal Reshape to batch 1, so it loads and fails when run on 2 or more inputs."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [in_shape[0], n_out])
    inits = [helper.make_tensor("axes", TensorProto.INT64, [len(in_shape) - 1], list(range(1, len(in_shape)))),
             helper.make_tensor("w", TensorProto.FLOAT, [1, n_out], (gain * np.linspace(-1, 1, n_out)).tolist()),
             helper.make_tensor("shift", TensorProto.FLOAT, [], [shift]),
             helper.make_tensor("one", TensorProto.INT64, [2], [1, 1])]
    nodes = [helper.make_node("ReduceMean", ["input", "axes"], ["m0"], keepdims=1),
             helper.make_node("Sub", ["m0", "shift"], ["m"]),
             helper.make_node("Flatten", ["m"], ["f0"], axis=1)]
    if fixed_reshape:
        nodes.append(helper.make_node("Reshape", ["f0", "one"], ["f"]))
    else:
        nodes.append(helper.make_node("Identity", ["f0"], ["f"]))
    nodes.append(helper.make_node("MatMul", ["f", "w"], ["logits"]))
    model = helper.make_model(helper.make_graph(nodes, "fake", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    for k, v in props.items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def digit_props() -> dict:
    """netpipe metadata of an MNIST net (alexnet_mnist's eval protocol and input size)."""
    return {"netpipe_format": predict.META_FORMAT, "variant": "fake_mnist", "arch": "fake", "dataset": "mnist",
            "format": "mnist", "classes": json.dumps([str(i) for i in range(10)]), "channels": "1",
            "input_size": "227", "image_size": "[28, 28]", "mean": "[0.1307]", "std": "[0.3081]",
            "eval": json.dumps(MNIST_EVAL), "commit": "unknown", "params_hash": "0", "precision": "fp32"}


def digit() -> np.ndarray:
    """A 28x28 MNIST-style digit: white strokes (with grey edges) on black, drawn large and centred."""
    d = np.zeros((28, 28), np.uint8)
    d[5:8, 6:22] = 255  # the bar of a 7
    for i in range(8, 24):
        c = 21 - (i - 8) // 2
        d[i, c - 2:c + 1] = 255
        d[i, c + 1] = 128
    d[4, 6:22] = 90
    return d


class CountingSession:
    """A real onnxruntime session that records the batch size of each run."""

    def __init__(self, sess):
        self._sess, self.runs = sess, []

    def run(self, outputs, feeds, *options):
        self.runs.append(next(iter(feeds.values())).shape[0])
        return self._sess.run(outputs, feeds, *options)

    def __getattr__(self, name):
        return getattr(self._sess, name)


@pytest.fixture
def cli_run(monkeypatch, capfd):
    """`netpipe ARGS...` through the console script's entry point (cli.main) in this process, for speed; stdout
    and stderr captured at the file-descriptor level, onnxruntime's C++ logging included: (exit code, out, err)."""
    from pipeline import cli

    def run(*args, cwd):
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", ["netpipe", *map(str, args)])
        capfd.readouterr()
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code
        out, err = capfd.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="module")
def model_path(pipeline_project) -> Path:
    return pipeline_project / "models" / f"{SMALL}.onnx"


@pytest.fixture(scope="module")
def session(model_path):
    sess = runtime.session(model_path)
    return sess, predict.read_meta(sess, model_path)


@pytest.fixture(scope="module")
def prepared(pipeline_project):
    """(x_test uint8 (N, 3, 32, 32), classes, net params, mean, std) of SMALL's dataset."""
    with contextlib.chdir(pipeline_project):
        p = params.load("params.yaml")
        data = load_prepared(p.dataset_of(SMALL))
    mean, std = (torch.tensor(v) for v in p.normalization(SMALL))
    return data.x_test, list(data.classes), p.variant(SMALL), mean, std


@pytest.fixture(scope="module")
def onnx_probs(session, prepared):
    """What evaluate's code computes through the same ONNX file for the first 6 prepared test images:
    (single-crop softmax, multi-crop softmax mean), each (6, classes)."""
    sess, _ = session
    x, _, net, mean, std = prepared
    logits = evaluate.crop_logits(export.ort_forward(sess), x[:6], net, mean, std, torch.device("cpu"))
    return logits[:, evaluate.CENTRE].softmax(-1).numpy(), logits.softmax(-1).mean(1).numpy()


@pytest.fixture(scope="module")
def images(tmp_path_factory, prepared) -> dict[str, Path]:
    """Prepared test images 0..5 as files whose pixels, once converted, are exactly the prepared arrays."""
    x = prepared[0]
    d = tmp_path_factory.mktemp("images")
    out = {}
    rgb_of(x[0]).save(out.setdefault("png", d / "t0.png"))
    rgb_of(x[1]).save(out.setdefault("bmp", d / "t1.bmp"))
    rgb_of(x[2]).save(out.setdefault("webp", d / "t2.webp"), lossless=True)
    rgba = np.dstack([x[3].transpose(1, 2, 0), np.full((32, 32), 255, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(out.setdefault("rgba", d / "t3 rgba.png"))  # a space in the name
    wide = np.zeros((32, 48, 3), np.uint8)  # other sizes: centre-cropped to the dataset's aspect ratio
    wide[:, 8:40] = x[4].transpose(1, 2, 0)
    Image.fromarray(wide).save(out.setdefault("wide", d / "t4_wide.png"))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": stored rotated the other way
    rgb_of(x[5]).transpose(Image.Transpose.ROTATE_90).save(out.setdefault("exif", d / "t5_exif.png"), exif=exif.tobytes())
    return out


# ---------------------------------------------------------------------------------------------------------
# conversion: formats, modes, sizes -> what training saw
# ---------------------------------------------------------------------------------------------------------
def test_lossless_files_convert_to_the_prepared_arrays(session, prepared, images):
    _, meta = session
    x = prepared[0]
    for i, kind in enumerate(["png", "bmp", "webp", "rgba", "wide", "exif"]):
        got = preprocess.load(images[kind], meta.channels, meta.image_hw, meta.digits)
        assert got.dtype == np.uint8 and got.shape == (3, 32, 32), kind
        assert np.array_equal(got, x[i]), kind


def test_modes_convert_as_pil_and_training_do(tmp_path, session, prepared):
    _, meta = session
    x = prepared[0][0]
    img = rgb_of(x)
    gray = np.asarray(img.convert("L"))
    as_rgb = np.stack([gray] * 3)

    def load(name):
        return preprocess.load(tmp_path / name, 3, (32, 32)).astype(int)

    img.convert("L").save(tmp_path / "l.png")
    assert np.array_equal(load("l.png"), as_rgb), "grey replicated to the model's 3 channels"
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode.startswith("I")  # really a 16-bit file
    assert np.array_equal(load("g16.png"), as_rgb), "16-bit grey scaled to 8 bits"
    pal = img.quantize(64)
    pal.save(tmp_path / "p.png")
    pal.save(tmp_path / "p.bmp")
    expect = np.asarray(pal.convert("RGB")).transpose(2, 0, 1)
    assert np.array_equal(load("p.png"), expect) and np.array_equal(load("p.bmp"), expect)
    pal.save(tmp_path / "pt.png", transparency=0)  # palette index 0 transparent -> white, as viewers show it
    idx = np.asarray(pal)
    assert (load("pt.png")[:, idx == 0] == 255).all() and np.array_equal(load("pt.png")[:, idx != 0], expect[:, idx != 0])
    alpha = np.tile(np.linspace(0, 255, 32).astype(np.uint8), (32, 1))
    Image.fromarray(np.dstack([gray, alpha]), "LA").save(tmp_path / "la.png")
    want = np.rint(gray * (alpha / 255) + 255 * (1 - alpha / 255))
    assert np.abs(load("la.png") - want[None]).max() <= 1, "transparency composited on white"
    Image.fromarray(np.dstack([x.transpose(1, 2, 0), np.zeros((32, 32), np.uint8)]), "RGBA").save(tmp_path / "clear.webp",
                                                                                                 lossless=True)
    assert (load("clear.webp") == 255).all(), "a fully transparent image is white"
    img.convert("1").save(tmp_path / "bw.png")
    assert set(np.unique(load("bw.png"))) <= {0, 255}
    img.save(tmp_path / "q.jpg", quality=95, subsampling=0)
    img.convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    img.convert("L").save(tmp_path / "l.jpg", quality=95)
    assert np.abs(load("q.jpg") - x).mean() < 5 and np.abs(load("cmyk.jpg") - x).mean() < 5  # lossy, noisy image
    assert np.abs(load("l.jpg") - as_rgb).mean() < 5
    Image.new("RGB", (3000, 2000), (12, 200, 99)).save(tmp_path / "big.png")  # 6 Mpx
    big = load("big.png")
    assert big.shape == (3, 32, 32) and (big.reshape(3, -1).T == [12, 200, 99]).all()
    rgb_of(x[:, :1, :1]).save(tmp_path / "one_pixel.png")
    assert (load("one_pixel.png") == x[:, :1, :1]).all()


def test_digit_style_preprocessing(tmp_path):
    """MNIST models: any drawing of a digit (dark or light ink, transparent canvas, 16 bits, colour, other sizes)
    becomes MNIST's white-on-black 28x28."""
    d = digit()

    def load(name):
        return preprocess.load(tmp_path / name, 1, (28, 28), digits=True)[0].astype(int)

    Image.fromarray(d).save(tmp_path / "mnist_like.png")
    Image.fromarray(255 - d).save(tmp_path / "on_paper.png")
    Image.fromarray(np.dstack([np.zeros_like(d)] * 3 + [d]), "RGBA").save(tmp_path / "dark_ink_clear.png")
    Image.fromarray(np.dstack([np.full_like(d, 255)] * 3 + [d]), "RGBA").save(tmp_path / "light_ink_clear.png")
    Image.fromarray(d.astype(np.uint16) * 257).save(tmp_path / "d16.png")
    for name in ["mnist_like.png", "on_paper.png", "dark_ink_clear.png", "light_ink_clear.png", "d16.png"]:
        assert np.array_equal(load(name), d), name
    blue_on_white = np.full((28, 28, 3), 255, np.uint8)
    blue_on_white[d > 0] = [20, 40, 160]
    Image.fromarray(blue_on_white).save(tmp_path / "blue.bmp")
    got = load("blue.bmp")
    assert (got[d == 0] == 0).all() and (got[d == 255] > 150).all()
    Image.fromarray(255 - d).resize((112, 112), Image.NEAREST).save(tmp_path / "big_on_paper.png")
    got = load("big_on_paper.png")
    assert got[:2].max() < 60 and np.corrcoef(got.ravel(), d.ravel())[0, 1] > 0.9
    # not inverted for non-digit models
    assert preprocess.load(tmp_path / "on_paper.png", 1, (28, 28))[0, 0, 0] == 255


@pytest.mark.parametrize("ev, size, hw", [
    ({"pad": 4, "padding_mode": "reflect", "crop": 32, "flips": True}, 32, 32),  # alexnet_cifar
    ({"pad": 4, "padding_mode": "constant", "crop": 32, "flips": True}, 32, 32),  # alexnet_keras family
    ({"pad": 3, "padding_mode": "replicate", "crop": 27, "flips": True}, 32, 32),  # odd offsets
    ({"pad": 2, "padding_mode": "constant", "crop": 28, "flips": False}, 227, 28),  # alexnet_mnist: 5 crops, resized
    ({"resize": 256, "pad": 0, "crop": 224, "flips": True}, 224, 32),  # alexnet_torchvision
], ids=["reflect", "constant", "replicate", "mnist5", "torchvision"])
def test_predict_views_match_evaluate_crops(ev, size, hw):
    """preprocess.views (numpy + PIL, for predict) cuts the same views as transforms.multi_crops / center_crop
    (torchvision TenCrop/FiveCrop, for evaluate), in the same order, within one grey level."""
    e = EvalParams(**ev)
    rng = np.random.default_rng(hw + size)
    for c in (3, 1):
        x = rng.integers(0, 256, (c, hw, hw), dtype=np.uint8)
        ours = preprocess.views(x, e.model_dump(mode="json"), size, multi=True)
        theirs = transforms.multi_crops(torch.from_numpy(x)[None], e, size)[:, 0].numpy()
        assert ours.shape == theirs.shape == (transforms.num_crops(e), c, size, size)
        assert np.abs(ours.astype(int) - theirs).max() <= 1
        one = preprocess.views(x, e.model_dump(mode="json"), size)
        assert one.shape == (1, c, size, size)
        assert np.abs(one[0].astype(int) - transforms.center_crop(torch.from_numpy(x)[None], e, size)[0].numpy()).max() <= 1
    norm = preprocess.normalize(ours, [0.5] * c, [0.25] * c)
    ref = transforms.normalize(torch.from_numpy(ours), torch.full((c,), 0.5), torch.full((c,), 0.25)).numpy()
    assert norm.dtype == np.float32 and np.allclose(norm, ref, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------
# predictions agree with evaluate
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ten_crop", [False, True], ids=["centre", "ten_crop"])
def test_cli_json_agrees_with_evaluate(pipeline_project, model_path, images, prepared, onnx_probs, ten_crop):
    """The console script on six files in six formats/modes, batched in one run: each image's top-10 equals the
    softmax (10-crop: the softmax mean) that evaluate's code computes for the same prepared test image; exit 0 and
    nothing at all on stderr (no onnxruntime provider errors on this GPU-less machine)."""
    files = [images[k] for k in ["png", "bmp", "webp", "rgba", "wide", "exif"]]
    r = netpipe("predict", *files, "--model", model_path, "--json", "--top-k", "10",
                *(["--ten-crop"] if ten_crop else []), cwd=pipeline_project)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    out = json.loads(r.stdout)
    classes = prepared[1]
    want = onnx_probs[1 if ten_crop else 0]
    assert [o["image"] for o in out] == [str(f) for f in files]
    for o, pr in zip(out, want):
        got = o["predictions"]
        assert len(got) == 10 and [g["probability"] for g in got] == sorted((g["probability"] for g in got), reverse=True)
        assert got[0]["class"] == classes[int(pr.argmax())]
        assert sum(g["probability"] for g in got) == pytest.approx(1, abs=1e-4)
        for g in got:
            assert g["probability"] == pytest.approx(float(pr[classes.index(g["class"])]), abs=2e-6), (o["image"], g)


def test_ten_crop_agrees_with_pytorch_evaluation(pipeline_project, session, images, prepared):
    """--ten-crop on an image file vs evaluate's PyTorch multi-crop logits of the same prepared image (the
    checkpoint, not the ONNX file): same class, probabilities within 2e-5."""
    sess, meta = session
    x, classes, net, mean, std = prepared
    with contextlib.chdir(pipeline_project):
        from pipeline.model import load_model

        model, _ = load_model(params.load("params.yaml").plan(SMALL), torch.device("cpu"))
    logits = evaluate.crop_logits(model, x[:1], net, mean, std, torch.device("cpu"))
    want = logits.softmax(-1).mean(1)[0].numpy()
    (res,) = predict.classify(sess, meta, [images["png"]], top_k=10, ten_crop=True)
    got = {g["class"]: g["probability"] for g in res["predictions"]}
    assert res["predictions"][0]["class"] == classes[int(want.argmax())]
    assert max(abs(got[c] - want[i]) for i, c in enumerate(classes)) < 2e-5  # fp32 ONNX vs PyTorch, 6 decimals


def test_fp16_model_predicts_like_fp32(pipeline_project, session, images):
    """models/VARIANT.fp16.onnx is a drop-in replacement: same metadata, same input, nearly the same probabilities."""
    sess, meta = session
    path16 = pipeline_project / "models" / f"{SMALL}.fp16.onnx"
    s16 = runtime.session(path16)
    assert predict.read_meta(s16, path16) == meta
    files = list(images.values())
    for ten_crop in (False, True):
        a = predict.classify(sess, meta, files, top_k=10, ten_crop=ten_crop)
        b = predict.classify(s16, meta, files, top_k=10, ten_crop=ten_crop)
        for ra, rb in zip(a, b):
            pa = {q["class"]: q["probability"] for q in ra["predictions"]}
            pb = {q["class"]: q["probability"] for q in rb["predictions"]}
            assert max(abs(pa[c] - pb[c]) for c in meta.classes) < 0.05, (ra["image"], pa, pb)


def test_text_output_and_top_k(pipeline_project, model_path, images):
    files = [images["png"], images["rgba"]]
    r = netpipe("predict", *files, "--model", model_path, "--top-k", "3", cwd=pipeline_project)
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    for line, f in zip(lines, files):
        m = LINE.match(line)
        assert m and m["image"] == str(f), line
        preds = m["preds"].split(", ")
        assert len(preds) == 3 and all(re.fullmatch(r"[a-z]+ [01]\.\d{4}", q) for q in preds), line
    r = netpipe("predict", images["png"], "--model", model_path, "--top-k", "50", "--json", cwd=pipeline_project)
    assert r.returncode == 0 and len(json.loads(r.stdout)[0]["predictions"]) == 10, "top-k capped at the classes"


def test_many_images_in_one_session_run(session, images, tmp_path):
    """Good images of a call go through the model in one run (K views each with --ten-crop), bad ones are left
    out, and the results keep the order of the arguments."""
    sess, meta = session
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    files = [images["png"], bad, images["bmp"], images["webp"], tmp_path / "missing.jpg", images["rgba"]]
    for ten_crop, k in [(False, 1), (True, 10)]:
        counting = CountingSession(sess)
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            res = predict.classify(counting, meta, files, top_k=1, ten_crop=ten_crop)
        assert counting.runs == [4 * k], counting.runs
        assert [("error" in r) for r in res] == [False, True, False, False, True, False]
        assert [r["image"] for r in res] == [str(f) for f in files]
        assert err.getvalue().splitlines() == [f"netpipe: {bad}: not a PNG, JPEG, BMP or WEBP image",
                                               f"netpipe: {tmp_path / 'missing.jpg'}: no such file"]


def test_predict_does_not_import_torch(pipeline_project, model_path, images):
    """The whole command (CLI entry point, --ten-crop, --json) in a fresh interpreter: onnxruntime, but neither torch,
    torchvision, onnx, matplotlib nor the training-side pipeline modules, end up imported."""
    code = f"""
import json, sys
sys.argv = ["netpipe", "predict", {str(images['png'])!r}, "--model", {str(model_path)!r}, "--ten-crop", "--json"]
from pipeline import cli
try:
    cli.main()
    code = 0
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "matplotlib", "onnx")
               or m in ("pipeline.train", "pipeline.evaluate", "pipeline.export", "pipeline.transforms"))
print(json.dumps({{"code": code, "heavy": heavy, "ort": "onnxruntime" in sys.modules}}), file=sys.stderr)
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=pipeline_project, capture_output=True, text=True,
                       timeout=120, env=ENV)
    info = json.loads(r.stderr.strip().splitlines()[-1])
    assert info["code"] == 0 and info["ort"] is True, r.stderr
    assert info["heavy"] == [], f"predict imported {info['heavy']}"
    assert json.loads(r.stdout)[0]["predictions"]


def test_predict_imports_no_cli_framework(tmp_path):
    """Issue 16: a cold `netpipe predict` (the console script, as a user runs it) pays for numpy, PIL and onnxruntime,
    not for torch nor for typer's machinery (its copy of click, pydantic, rich): Python's own import log
    (PYTHONPROFILEIMPORTTIME) names every module the process imported. A hand-built model: no tiny project needed."""
    model = fake_model(tmp_path / "digits.onnx", ["N", 1, 227, 227], 10, digit_props())
    Image.fromarray(digit()).save(tmp_path / "seven.png")
    r = subprocess.run([str(NETPIPE), "predict", "--json", "--model", str(model), str(tmp_path / "seven.png")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**ENV, "PYTHONPROFILEIMPORTTIME": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    assert {"onnxruntime", "PIL.Image", "pipeline.predict"} <= imported, "the import log is incomplete"
    banned = sorted(m for m in imported if m.split(".")[0] in {"torch", "typer", "click", "pydantic", "pydantic_core", "rich"})
    assert banned == [], f"netpipe predict imported {banned}"
    assert json.loads(r.stdout)[0]["predictions"]


FAST_ARGS = [  # what cli.predict_options reads itself
    ["a.png", "--model", "m.onnx"], ["a.png", "b.png", "--json", "--ten-crop", "--top-k", "3"],
    ["-k3", "-mm.onnx", "a.png"], ["--top-k=12", "--model=", "a.png", "--dataset", ""], ["a.png", "-k", "007"],
    ["--json", "a.png", "--ten-crop", "b.png", "--model", "x", "--model", "y", "--json"],
    ["a.png", "--", "-x.png", "--json"], ["a.png", "-m=m.onnx", "--dataset", "--top-k"], ["a.png", "-", "./c//d/"],
    ["a.png", "--precision", "int8"], ["--precision=fp16", "a.png"],
]
TYPER_ARGS = [  # what it leaves to typer: help, usage errors, the spellings typer reads with pydantic's leniency
    [], ["--json"], ["a.png", "--help"], ["a.png", "-h"], ["a.png", "--top-k", "0"], ["a.png", "-k", "1_0"],
    ["a.png", "--top-k", "3.0"], ["a.png", "--top-k", "²"], ["a.png", "--model"], ["a.png", "--json=1"],
    ["a.png", "--no-json"], ["a.png", "--top"], ["a.png", "-jk"],
]


def test_predict_options_read_as_typer_does(monkeypatch, capsys):
    """The parser that spares `netpipe predict` importing typer (cli.predict_options) against the typer command, with
    predict.run stubbed: for each argument list, the same call (or none), output and exit code either way."""
    from pipeline import cli

    own = cli.predict_options

    def outcome(args, parser):
        calls = []
        monkeypatch.setattr(predict, "run", lambda images, **kw: calls.append((images, kw)) or len(images) - 1)
        monkeypatch.setattr(cli, "predict_options", parser)
        monkeypatch.setattr(sys, "argv", ["netpipe", "predict", *args])
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code
        return (code, *capsys.readouterr(), calls)

    for args in FAST_ARGS + TYPER_ARGS:
        assert (own(args) is not None) == (args in FAST_ARGS), args
        assert outcome(args, own) == outcome(args, lambda _: None), args
    assert own(["-k3", "a.png", "-mm.onnx", "--json"]) == {"images": [Path("a.png")], "model": Path("m.onnx"),
                                                           "top_k": 3, "ten_crop": False, "json_out": True,
                                                           "dataset": None, "precision": "fp32"}


# ---------------------------------------------------------------------------------------------------------
# bad images: one line each, the others still classified, exit 1
# ---------------------------------------------------------------------------------------------------------
def _bad_images(d: Path, good: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, regex of the reason predict must print)."""
    d.mkdir(parents=True, exist_ok=True)
    png, jpg, webp = io.BytesIO(), io.BytesIO(), io.BytesIO()
    img = Image.open(good).convert("RGB").resize((64, 64))
    img.save(png, "PNG")
    img.save(jpg, "JPEG")
    img.save(webp, "WEBP")
    bmp = io.BytesIO()
    img.save(bmp, "BMP")
    bmp = bytearray(bmp.getvalue())
    bmp[18:26] = struct.pack("<ii", 90000, 90000)  # 8.1e9 pixels declared
    corrupt = bytearray(png.getvalue())
    corrupt[len(corrupt) // 2] ^= 0xFF
    (d / "folder.png").mkdir(exist_ok=True)
    cases = {
        "missing": (d / "missing.png", None, r"no such file"),
        "directory": (d / "folder.png", None, r"is a directory, not an image"),
        "zero_bytes": (d / "zero.png", b"", r"empty file \(0 bytes\)"),
        "text": (d / "notes.png", b"just some text\n" * 20, r"not a PNG, JPEG, BMP or WEBP image"),
        "gif": (d / "anim.gif", None, r"not a PNG, JPEG, BMP or WEBP image"),
        "truncated_png": (d / "cut.png", png.getvalue()[: len(png.getvalue()) // 2], r"corrupt or truncated image \(.+\)"),
        "truncated_jpeg": (d / "cut.jpg", jpg.getvalue()[: len(jpg.getvalue()) // 2], r"corrupt or truncated image \(.+\)"),
        "truncated_webp": (d / "cut.webp", webp.getvalue()[: len(webp.getvalue()) // 2], r"corrupt or truncated image \(.+\)"),
        "header_only": (d / "header.png", png.getvalue()[:20], r"corrupt or truncated image \(.+\)"),
        "corrupt_png": (d / "flipped.png", bytes(corrupt), r"corrupt or truncated image \(.+\)"),
        "bomb_png": (d / "bomb.png", png_declaring(100_000, 100_000),
                     r"image too large: more than 40,000,000 pixels \(possible decompression bomb\)"),
        "bomb_png_just_over": (d / "bomb2.png", png_declaring(8000, 5001),
                               r"image too large: more than 40,000,000 pixels \(possible decompression bomb\)"),
        "bomb_bmp": (d / "bomb.bmp", bytes(bmp),
                     r"image too large: more than 40,000,000 pixels \(possible decompression bomb\)"),
    }
    out = {}
    for name, (path, blob, why) in cases.items():
        if blob is not None:
            path.write_bytes(blob)
        out[name] = (path, why)
    img.save(d / "anim.gif")
    return out


BAD = ["missing", "directory", "zero_bytes", "text", "gif", "truncated_png", "truncated_jpeg", "truncated_webp",
       "header_only", "corrupt_png", "bomb_png", "bomb_png_just_over", "bomb_bmp"]


@pytest.fixture(scope="module")
def bad_images(tmp_path_factory, images):
    return _bad_images(tmp_path_factory.mktemp("bad"), images["png"])


@pytest.mark.parametrize("case", BAD)
def test_bad_image_alone(pipeline_project, model_path, bad_images, case, cli_run):
    """Each bad input alone: exit 1, nothing on stdout, one stderr line `netpipe: PATH: reason`."""
    path, why = bad_images[case]
    code, out, err = cli_run("predict", path, "--model", model_path, cwd=pipeline_project)
    assert code == 1
    assert out == ""
    assert re.fullmatch(rf"netpipe: {re.escape(str(path))}: {why}", one_line(err)), err


def test_bad_images_among_good_ones_console_script(pipeline_project, model_path, images, bad_images):
    """All the bad inputs and two good images in one real `netpipe predict` run: the good ones are classified (in
    order, on stdout), each bad one is one line on stderr, the exit code is 1; --json keeps them all in order."""
    bad = [bad_images[c][0] for c in BAD]
    files = [images["png"], *bad, images["webp"]]
    r = netpipe("predict", *files, "--model", model_path, cwd=pipeline_project)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert [LINE.match(line)["image"] for line in r.stdout.splitlines()] == [str(images["png"]), str(images["webp"])]
    err = r.stderr.splitlines()
    assert len(err) == len(bad)
    for line, case in zip(err, BAD):
        path, why = bad_images[case]
        assert re.fullmatch(rf"netpipe: {re.escape(str(path))}: {why}", line), (case, line)

    r = netpipe("predict", *files, "--model", model_path, "--json", cwd=pipeline_project)
    assert r.returncode == 1 and len(r.stderr.splitlines()) == len(bad)
    out = json.loads(r.stdout)
    assert [o["image"] for o in out] == [str(f) for f in files]
    assert "predictions" in out[0] and "predictions" in out[-1]
    assert all(set(o) == {"image", "error"} and o["error"] for o in out[1:-1])


# ---------------------------------------------------------------------------------------------------------
# bad models
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bad_models(tmp_path_factory, model_path) -> dict[str, tuple[Path, str]]:
    d = tmp_path_factory.mktemp("models")
    sess = runtime.session(model_path)
    props = dict(sess.get_modelmeta().custom_metadata_map)
    (d / "text.onnx").write_text("seed: 0\nexport: {opset: 18}\n")
    (d / "random.onnx").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    (d / "empty.onnx").write_bytes(b"")
    (d / "cut.onnx").write_bytes(model_path.read_bytes()[:100_000])
    (d / "a_folder.onnx").mkdir()
    broken = {**props, "classes": "[airplane"}
    return {
        "missing": (d / "nope.onnx", r"model \S+nope\.onnx not found"),
        "directory": (d / "a_folder.onnx", r"model \S+a_folder\.onnx is not a file"),
        "text": (d / "text.onnx", r"model \S+text\.onnx is not a usable ONNX model: .+"),
        "random_bytes": (d / "random.onnx", r"model \S+random\.onnx is not a usable ONNX model: .+"),
        "empty": (d / "empty.onnx", r"model \S+empty\.onnx is not a usable ONNX model: .+"),
        "truncated": (d / "cut.onnx", r"model \S+cut\.onnx is not a usable ONNX model: .+"),
        "wrong_input_shape": (fake_model(d / "mnist_shape.onnx", ["N", 1, 28, 28], 10, props),
                              r"model \S+ takes input \['N', 1, 28, 28\]; its metadata says images \(N, 3, 32, 32\)"),
        "flat_input": (fake_model(d / "flat.onnx", ["N", 3072], 10, props),
                       r"model \S+ takes input \['N', 3072\]; its metadata says images \(N, 3, 32, 32\)"),
        "no_metadata": (fake_model(d / "plain.onnx", ["N", 3, 32, 32], 10, {}),
                        r"model \S+ has no netpipe metadata \(export it with `netpipe export`\)"),
        "broken_metadata": (fake_model(d / "broken.onnx", ["N", 3, 32, 32], 10, broken),
                            r"model \S+ has broken netpipe metadata \(JSONDecodeError: .+\)"),
        "more_logits_than_classes": (fake_model(d / "out12.onnx", ["N", 3, 32, 32], 12, props),
                                     r"model \S+ outputs \['N', 12\]; its metadata names 10 classes, i\.e\. logits \(N, 10\)"),
        "fewer_logits_than_classes": (fake_model(d / "out3.onnx", ["N", 3, 32, 32], 3, props),
                                      r"model \S+ outputs \['N', 3\]; .+"),
        "fails_when_run": (fake_model(d / "reshape.onnx", ["N", 3, 32, 32], 10, props, fixed_reshape=True),
                           r"the model fails on these images: .+"),
    }


BAD_MODELS = ["missing", "directory", "text", "random_bytes", "empty", "truncated", "wrong_input_shape", "flat_input",
              "no_metadata", "broken_metadata", "more_logits_than_classes", "fewer_logits_than_classes",
              "fails_when_run"]


@pytest.mark.parametrize("case", BAD_MODELS)
def test_bad_model(pipeline_project, images, bad_models, case, cli_run):
    """A model file that cannot serve: exit 1, nothing on stdout, one line `netpipe: error: model ...` (no
    onnxruntime log line either: stderr is captured at the file-descriptor level)."""
    path, why = bad_models[case]
    code, out, err = cli_run("predict", images["png"], images["bmp"], "--model", path, cwd=pipeline_project)
    assert code == 1, (out, err)
    assert out == ""
    line = one_line(err)
    assert re.fullmatch(rf"netpipe: error: {why}", line), line
    assert len(line) < 700


@pytest.mark.parametrize("case", ["truncated", "wrong_input_shape", "fails_when_run"])
def test_bad_model_console_script(pipeline_project, images, bad_models, case):
    path, why = bad_models[case]
    r = netpipe("predict", images["png"], images["bmp"], "--model", path, cwd=pipeline_project)
    assert r.returncode == 1 and r.stdout == ""
    assert re.fullmatch(rf"netpipe: error: {why}", one_line(r.stderr))


def test_fixed_batch_model_is_padded(tmp_path, session, images):
    """A model exported with a fixed batch of 1 (export.dynamic_batch false) still classifies many images."""
    sess, _ = session
    props = dict(sess.get_modelmeta().custom_metadata_map)
    fixed = fake_model(tmp_path / "fixed.onnx", [1, 3, 32, 32], 10, props)
    dyn = fake_model(tmp_path / "dyn.onnx", ["N", 3, 32, 32], 10, props)
    files = [images[k] for k in ["png", "bmp", "webp"]]
    out = []
    for path in (fixed, dyn):
        s = CountingSession(runtime.session(path))
        out.append(predict.classify(s, predict.read_meta(s, path), files, top_k=3, ten_crop=True))
        assert s.runs == ([1] * 30 if path == fixed else [30])
    assert out[0] == out[1]


def test_digit_model_end_to_end(tmp_path, pipeline_project):
    """An MNIST model (hand-built ONNX, real netpipe metadata; a brightness classifier: class "0" for MNIST-like
    mostly black inputs, "9" for mostly white ones): a digit drawn dark on paper, light on black, or on a
    transparent canvas gives the same prediction; --ten-crop takes the protocol's 5 crops (no mirroring)."""
    model = fake_model(tmp_path / "digits.onnx", ["N", 1, 227, 227], 10, digit_props(), shift=1.0, gain=10.0)
    d = digit()
    Image.fromarray(d).save(tmp_path / "light_on_black.png")
    Image.fromarray(255 - d).convert("RGB").save(tmp_path / "dark_on_paper.jpg", quality=100)
    Image.fromarray(np.dstack([np.zeros_like(d)] * 3 + [d]), "RGBA").save(tmp_path / "ink.webp", lossless=True)
    files = [tmp_path / n for n in ["light_on_black.png", "dark_on_paper.jpg", "ink.webp"]]
    r = netpipe("predict", *files, "--model", model, "--json", "--ten-crop", "--top-k", "10", cwd=pipeline_project)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    out = json.loads(r.stdout)
    tops = [o["predictions"][0] for o in out]
    assert [t["class"] for t in tops] == ["0", "0", "0"], "all arrive as white digits on black"
    probs = [t["probability"] for t in tops]
    assert min(probs) > 0.5 and max(probs) - min(probs) < 0.01
    # the same network without digit-style preprocessing sees the paper drawing as it is: bright
    plain = fake_model(tmp_path / "plain.onnx", ["N", 1, 227, 227], 10, {**digit_props(), "format": "folder"},
                       shift=1.0, gain=10.0)
    r = netpipe("predict", files[1], "--model", plain, "--json", cwd=pipeline_project)
    assert r.returncode == 0 and json.loads(r.stdout)[0]["predictions"][0]["class"] == "9"
    sess = CountingSession(runtime.session(model))
    meta = predict.read_meta(sess, model)
    assert meta.digits and meta.channels == 1 and meta.eval["flips"] is False
    predict.classify(sess, meta, files, ten_crop=True)
    assert sess.runs == [15], "5 crops per image, all images in one run"


# ---------------------------------------------------------------------------------------------------------
# the default model: artifacts/summary.json
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture
def summary_dir(pipeline_project, tmp_path) -> Path:
    root = tmp_path / "proj"
    (root / "artifacts").mkdir(parents=True)
    os.symlink(pipeline_project / "models", root / "models")
    return root


def _write_summary(root: Path, obj) -> None:
    (root / "artifacts" / "summary.json").write_text(obj if isinstance(obj, str) else json.dumps(obj))


def test_default_model_is_the_best_in_summary(summary_dir, images, model_path):
    _write_summary(summary_dir, {"best": {"cifar10": SMALL}, "variants": {}})
    r = netpipe("predict", images["png"], "--json", "--top-k", "3", cwd=summary_dir)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    explicit = netpipe("predict", images["png"], "--json", "--top-k", "3", "--model", model_path, cwd=summary_dir)
    assert json.loads(r.stdout) == json.loads(explicit.stdout)

    _write_summary(summary_dir, {"best": {"cifar10": SMALL, "cifar10_jpeg": "alexnet_cifar_nolrn"}})
    r = netpipe("predict", images["png"], cwd=summary_dir)
    assert r.returncode == 2 and r.stdout == ""
    assert one_line(r.stderr) == ("netpipe: error: artifacts/summary.json has a best model for each of cifar10, "
                                  "cifar10_jpeg: pass --dataset NAME (or --model PATH)")


def test_default_model_dataset_choice(summary_dir, images, model_path, cli_run):
    _write_summary(summary_dir, {"best": {"cifar10": SMALL, "cifar10_jpeg": "alexnet_cifar_nolrn"}})
    code, out, err = cli_run("predict", images["png"], "--dataset", "cifar10", "--json", "--top-k", "3",
                             cwd=summary_dir)
    assert code == 0 and err == ""
    assert json.loads(out)[0]["predictions"][0]["class"]
    explicit = cli_run("predict", images["png"], "--json", "--top-k", "3", "--model", model_path, cwd=summary_dir)
    assert json.loads(out) == json.loads(explicit[1])
    code, out, err = cli_run("predict", images["png"], "--dataset", "mnist", cwd=summary_dir)
    assert code == 2 and out == ""
    assert one_line(err) == ("netpipe: error: no best model for dataset 'mnist' in artifacts/summary.json; "
                             "allowed: cifar10, cifar10_jpeg")


@pytest.mark.parametrize("summary, code, message", [
    (None, 1, "no --model given and artifacts/summary.json not found: run `dvc repro` first, or pass --model PATH"),
    ("{not json", 1, r"summary artifacts/summary\.json is unreadable or not valid JSON: .+"),
    ({"best": {}}, 1, r"artifacts/summary\.json names no best model: run `dvc repro` first, or pass --model PATH"),
    ({"best": {"cifar10": "ghost"}}, 1,
     r"models/ghost\.onnx \(the best cifar10 model in artifacts/summary\.json\) not found: run `dvc repro`, or pass --model PATH"),
], ids=["no_summary", "not_json", "no_best", "best_not_exported"])
def test_default_model_missing_is_one_clear_line(summary_dir, images, summary, code, message, cli_run):
    if summary is not None:
        _write_summary(summary_dir, summary)
    rc, out, err = cli_run("predict", images["png"], cwd=summary_dir)
    assert rc == code and out == ""
    line = one_line(err)
    assert re.fullmatch(rf"netpipe: error: {message if summary is not None else re.escape(message)}", line), line


def test_a_fresh_clone_predicts_with_the_shipped_model_and_names_it(summary_dir, pipeline_project, images):
    """No trained model in models/ (DVC's outputs are not in git): predict uses pretrained/DATASET.onnx, which
    tools/ship_model.py made from a trained variant, and says so in one line; the JSON beside it holds what it came
    with."""
    shipped = summary_dir / "pretrained"
    r = subprocess.run([sys.executable, str(Path(__file__).resolve().parent.parent / "tools" / "ship_model.py"), SMALL,
                        "--out", str(shipped)], cwd=pipeline_project, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    meta = json.loads((shipped / "cifar10.json").read_text())
    ev = json.loads((pipeline_project / "artifacts" / "metrics" / f"{SMALL}.json").read_text())
    assert (meta["variant"], meta["precision"], meta["pytorch_accuracy"]["top1"]) == (SMALL, "fp16", ev["top1"])
    assert meta["bytes"] == (shipped / "cifar10.onnx").stat().st_size == \
        (pipeline_project / "models" / f"{SMALL}.fp16.onnx").stat().st_size
    os.unlink(summary_dir / "models")  # a fresh clone: the summary names models that are not there
    _write_summary(summary_dir, {"best": {"cifar10": SMALL, "mnist": "alexnet_mnist"}})
    r = netpipe("predict", images["png"], "--json", "--top-k", "3", cwd=summary_dir)  # no --dataset: the one shipped
    assert r.returncode == 0, r.stderr
    assert one_line(r.stderr) == (
        f"netpipe: no trained model in models/; using pretrained/cifar10.onnx, the model shipped with netpipe ({SMALL}, "
        f"fp16, test top-1 {100 * meta['accuracy']['top1']:.2f}% on {meta['accuracy']['n_test']} images, trained on "
        f"{meta['trained_on']})")
    explicit = netpipe("predict", images["png"], "--json", "--top-k", "3", "--model", shipped / "cifar10.onnx",
                       cwd=summary_dir)
    assert json.loads(r.stdout) == json.loads(explicit.stdout)
    r = netpipe("predict", images["png"], "--dataset", "cifar10", cwd=summary_dir)
    assert r.returncode == 0 and one_line(r.stderr).startswith(
        f"netpipe: models/{SMALL}.onnx (the best cifar10 model in artifacts/summary.json) not found; using "
        "pretrained/cifar10.onnx")
    r = netpipe("predict", images["png"], "--precision", "int8", cwd=summary_dir)  # the shipped model is one file
    assert r.returncode == 2 and one_line(r.stderr) == (
        "netpipe: error: --precision int8: no trained model in models/, and the model shipped with netpipe "
        "(pretrained/cifar10.onnx) is one file: drop --precision to use it")
    r = netpipe("predict", images["png"], "--dataset", "mnist", cwd=summary_dir)  # none shipped for mnist
    assert r.returncode == 1 and one_line(r.stderr) == ("netpipe: error: models/alexnet_mnist.onnx (the best mnist "
                                                        "model in artifacts/summary.json) not found: run `dvc repro`, "
                                                        "or pass --model PATH")


def test_precision_picks_the_best_models_int8_file(summary_dir, images, cli_run):
    """--precision int8 classifies with models/VARIANT.int8.onnx of the best variant, as --model that file does; a
    precision netpipe does not export, or --precision beside --model, is one line and exit 2."""
    _write_summary(summary_dir, {"best": {"cifar10": SMALL}, "variants": {}})
    int8 = summary_dir / "models" / f"{SMALL}.int8.onnx"
    code, out, err = cli_run("predict", images["png"], "--json", "--top-k", "3", "--precision", "int8", cwd=summary_dir)
    assert code == 0 and err == "", err
    explicit = cli_run("predict", images["png"], "--json", "--top-k", "3", "--model", int8, cwd=summary_dir)
    fp32 = cli_run("predict", images["png"], "--json", "--top-k", "3", cwd=summary_dir)
    assert json.loads(out) == json.loads(explicit[1]) and json.loads(out) != json.loads(fp32[1])
    for args, message in [(["--precision", "bf16"], "--precision 'bf16': allowed: fp32, fp16, int8"),
                          (["--precision", "int8", "--model", int8],
                           "--precision picks one of the best model's files; with --model, pass that file itself")]:
        code, out, err = cli_run("predict", images["png"], *args, cwd=summary_dir)
        assert (code, out, one_line(err)) == (2, "", f"netpipe: error: {message}")


@pytest.mark.parametrize("args, message", [
    (["--top-k", "0"], "Invalid value for '--top-k'"),
    (["--no-such-option"], "No such option: --no-such-option"),
], ids=["top_k_0", "unknown_option"])
def test_usage_errors_exit_2(pipeline_project, images, model_path, args, message, cli_run):
    code, out, err = cli_run("predict", images["png"], "--model", model_path, *args, cwd=pipeline_project)
    assert code == 2 and out == ""
    assert one_line(err).startswith(f"netpipe: error: {message}")


def test_usage_error_console_script(pipeline_project):
    r = netpipe("predict", cwd=pipeline_project)
    assert r.returncode == 2 and r.stdout == ""
    assert one_line(r.stderr) == "netpipe: error: Missing argument 'images'."
