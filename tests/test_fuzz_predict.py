"""Fuzzing `netpipe predict`'s image input: valid PNG/JPEG/BMP/WebP files of many modes, mutated (byte flips, cuts,
insertions, duplicated spans, huge or zero sizes written into the headers, PNG chunks re-checksummed so the
mutation reaches the decoder), and random bytes behind real magic numbers. Every case must end in a prediction
(top-k of the model's classes, probabilities in [0, 1]) or in one `netpipe: IMAGE: reason` line on stderr, with
nothing else there: never another exception, a warning, a hang or a crash.

The cases run in-process through predict.classify (the function `netpipe predict` runs, with the real session of
the tiny project's exported model); a few go through the real console script, many files in one run. The number
of cases tried is printed by test_fuzz_counts_reported, in every run in one process (pytest -n 0).

Bounded for the suite (NETPIPE_FUZZ_EXAMPLES, default 100 cases per fuzzer, a few seconds); for a release check
run more, e.g.
    NETPIPE_FUZZ_EXAMPLES=20000 pytest -n 0 -s tests/test_fuzz_params.py tests/test_fuzz_predict.py
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import random
import struct
import subprocess
import sys
import time
import warnings
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pipeline import predict, runtime

EXAMPLES = int(os.environ.get("NETPIPE_FUZZ_EXAMPLES", "100"))
CASE_SECONDS = 10.0  # a case taking longer is a hang
SMALL = "alexnet_thinner_4"
NETPIPE = Path(sys.executable).with_name("netpipe")
MAGIC = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff", b"BM", b"RIFF\x00\x10\x00\x00WEBPVP8 ",
         b"RIFF\x00\x10\x00\x00WEBPVP8L", b"GIF89a", b"II*\x00", b""]
SIZES = [0, 1, 2, 255, 256, 32767, 65535, 65536, 100_000, 2**31 - 1, 2**32 - 1]


# ---------------------------------------------------------------------------------------------------------
# seed files: valid images of every supported format in many modes
# ---------------------------------------------------------------------------------------------------------
def _seeds() -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (19, 27, 3), dtype=np.uint8))
    rgba = Image.fromarray(rng.integers(0, 256, (16, 12, 4), dtype=np.uint8), "RGBA")
    gray16 = Image.fromarray(rng.integers(0, 65536, (9, 14), dtype=np.uint16))
    exif = Image.Exif()
    exif[0x0112] = 8
    jobs = [
        ("png_rgb", rgb, "PNG", {}), ("png_rgba", rgba, "PNG", {}), ("png_l", rgb.convert("L"), "PNG", {}),
        ("png_la", rgba.convert("LA"), "PNG", {}), ("png_1", rgb.convert("1"), "PNG", {}),
        ("png_p_transparent", rgb.quantize(16), "PNG", {"transparency": 3}), ("png_i16", gray16, "PNG", {}),
        ("png_interlaced", rgb, "PNG", {"interlace": 1}), ("png_exif", rgb, "PNG", {"exif": exif.tobytes()}),
        ("jpeg_rgb", rgb, "JPEG", {"quality": 80}), ("jpeg_l", rgb.convert("L"), "JPEG", {}),
        ("jpeg_cmyk", rgb.convert("CMYK"), "JPEG", {}), ("jpeg_progressive", rgb, "JPEG", {"progressive": True}),
        ("jpeg_exif", rgb, "JPEG", {"exif": exif.tobytes()}),
        ("bmp_rgb", rgb, "BMP", {}), ("bmp_p", rgb.quantize(8), "BMP", {}), ("bmp_1", rgb.convert("1"), "BMP", {}),
        ("webp_lossy", rgb, "WEBP", {"quality": 50}), ("webp_lossless_rgba", rgba, "WEBP", {"lossless": True}),
    ]
    out = []
    for name, img, fmt, kw in jobs:
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        out.append((name, buf.getvalue()))
    frames = [Image.new("RGB", (10, 10), c) for c in ("red", "blue")]
    for name, fmt in (("png_animated", "PNG"), ("webp_animated", "WEBP")):
        buf = io.BytesIO()
        frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=50)
        out.append((name, buf.getvalue()))
    return out


SEEDS = _seeds()


def fix_png_crcs(data: bytes) -> bytes:
    """Recompute the CRC of every complete PNG chunk, so that a mutation inside a chunk reaches the decoder."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return data
    out, i = bytearray(data), 8
    while i + 12 <= len(out):
        (n,) = struct.unpack(">I", out[i:i + 4])
        end = i + 8 + n
        if end + 4 > len(out):
            break
        out[end:end + 4] = struct.pack(">I", zlib.crc32(bytes(out[i + 4:end])) & 0xFFFFFFFF)
        i = end + 4
    return bytes(out)


def restore_magic(data: bytearray, seed: bytes) -> None:
    """Put the format's signature back (PNG's 8 bytes, JPEG's and BMP's 2, RIFF....WEBP), so that most mutations
    get past format detection into the decoders."""
    spans = [(0, 4), (8, 12)] if seed.startswith(b"RIFF") else [(0, 8 if seed.startswith(b"\x89PNG") else 2)]
    for a, b in spans:
        if len(data) >= b:
            data[a:b] = seed[a:b]


@st.composite
def mutated_image(draw) -> tuple[str, bytes]:
    name, seed = draw(st.sampled_from(SEEDS))
    data = bytearray(seed)
    ops = []
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "cut", "delete", "insert", "duplicate", "header_int"]))
        ops.append(op)
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[i] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, draw(st.integers(0, 255))]))
        elif op == "cut":
            del data[i:]
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 64))]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=32))
        elif op == "duplicate":
            data[i:i] = data[i:i + draw(st.integers(1, 256))]
        else:  # a width/height/length field: a 2- or 4-byte integer, either byte order, in the first 64 bytes
            j = draw(st.integers(0, 60))
            value = draw(st.sampled_from(SIZES))
            fmt = draw(st.sampled_from([">I", "<I", ">H", "<H"]))
            packed = struct.pack(fmt, value & (0xFFFF if fmt.endswith("H") else 0xFFFFFFFF))
            data[j:j + len(packed)] = packed
        if not data:
            break
    if draw(st.integers(0, 4)):  # 4 times in 5
        restore_magic(data, seed)
    if draw(st.booleans()):
        data = bytearray(fix_png_crcs(bytes(data)))
    return f"{name}:{'+'.join(ops)}", bytes(data)


@st.composite
def random_blob(draw) -> tuple[str, bytes]:
    magic = draw(st.sampled_from(MAGIC))
    return f"random:{magic[:4]!r}", magic + draw(st.binary(min_size=0, max_size=3000))


# ---------------------------------------------------------------------------------------------------------
# the property
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model(pipeline_project):
    path = pipeline_project / "models" / f"{SMALL}.onnx"
    sess = runtime.session(path)
    return sess, predict.read_meta(sess, path)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def check_case(model, workdir: Path, label: str, blob: bytes, ext: str, ten_crop: bool,
               counts: Counter | None = None) -> dict:
    """One case through predict.classify: a prediction or a one-line error, never a warning or a hang. Tallies the
    outcome (and an error's reason) in `counts`."""
    sess, meta = model
    path = workdir / f"case{ext}"
    path.write_bytes(blob)
    err = io.StringIO()
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(err):
        warnings.simplefilter("always")
        (res,) = predict.classify(sess, meta, [path], top_k=3, ten_crop=ten_crop)
    seconds = time.perf_counter() - t0
    assert seconds < CASE_SECONDS, f"{label}: {seconds:.1f} s"
    assert not caught, f"{label}: warnings {[str(w.message) for w in caught]}"  # they would reach stderr
    assert res["image"] == str(path)
    if "error" in res:
        reason = res["error"]
        assert reason and "\n" not in reason and len(reason) < 500, (label, reason)
        assert err.getvalue() == f"netpipe: {path}: {reason}\n", (label, err.getvalue())
        if counts is not None:
            counts["error"] += 1
            counts["error: " + reason.split(" (")[0].split(":")[0]] += 1
    else:
        preds = res["predictions"]
        assert err.getvalue() == "", label
        assert len(preds) == 3 and all(p["class"] in meta.classes for p in preds), (label, preds)
        probs = [p["probability"] for p in preds]
        assert all(math.isfinite(q) and 0.0 <= q <= 1.0 for q in probs) and probs == sorted(probs, reverse=True)
        if counts is not None:
            counts["ok"] += 1
    return res


def _report(what: str, counts: Counter, capsys) -> None:
    """Printed in every run in one process (pytest -n 0: xdist workers print nowhere), not only with -s: how many
    cases, how many predictions and one-line errors, why."""
    reasons = ", ".join(f"{k[7:]} x{v}" for k, v in counts.most_common() if k.startswith("error: "))
    with capsys.disabled():
        print(f"\npredict fuzz, {what}: {counts['ok'] + counts['error']} cases, {counts['ok']} predictions, "
              f"{counts['error']} one-line errors; reasons: {reasons}")


def test_mutated_images(model, workdir, capsys):
    counts: Counter = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=mutated_image(), ext=st.sampled_from([".png", ".jpg", ".bmp", ".webp", ""]), ten_crop=st.booleans())
    def fuzz(case, ext, ten_crop):
        label, blob = case
        check_case(model, workdir, label, blob, ext, ten_crop, counts)

    fuzz()
    _report("mutated images", counts, capsys)
    assert counts["ok"] + counts["error"] >= min(EXAMPLES, 100)
    assert counts["ok"] > 0 and counts["error"] > 0, "both outcomes were reached"


def test_random_bytes(model, workdir, capsys):
    counts: Counter = Counter()

    @settings(max_examples=max(1, EXAMPLES // 2), deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=random_blob(), ext=st.sampled_from([".png", ".jpg", ".webp", ""]))
    def fuzz(case, ext):
        label, blob = case
        res = check_case(model, workdir, label, blob, ext, False, counts)
        if len(blob) < 40:  # far too short for any image of these formats
            assert "error" in res, label

    fuzz()
    _report("random blobs", counts, capsys)
    assert counts["ok"] + counts["error"] >= min(EXAMPLES // 2, 50) and counts["error"] > 0


def test_seed_images_all_classified(model, workdir):
    """The unmutated seeds are valid images: every one gives a prediction (so the fuzzers start from the decoders'
    happy path, not from files already refused)."""
    for name, blob in SEEDS:
        res = check_case(model, workdir, name, blob, ".img", ten_crop=True)
        assert "predictions" in res, (name, res)


# ---------------------------------------------------------------------------------------------------------
# the real console script on a batch of mutated files
# ---------------------------------------------------------------------------------------------------------
def _mutate(rnd: random.Random, blob: bytes) -> bytes:
    data = bytearray(blob)
    for _ in range(rnd.randint(1, 3)):
        i = rnd.randrange(len(data))
        kind = rnd.choice(["flip", "cut", "size"])
        if kind == "flip":
            data[i] ^= 1 << rnd.randrange(8)
        elif kind == "cut":
            del data[max(1, i):]
        else:
            j = rnd.randrange(8, 30)
            data[j:j + 4] = struct.pack(">I", rnd.choice(SIZES))
    return fix_png_crcs(bytes(data)) if rnd.random() < 0.5 else bytes(data)


def test_console_script_on_fuzzed_files(pipeline_project, tmp_path):
    """24 mutated files and 4 random blobs in one real `netpipe predict` run, then two of them alone: one result
    line or one error line per file, exit code 1 exactly when an error line was printed, no traceback, no crash."""
    rnd = random.Random(1234)
    files = []
    for k in range(24):
        name, blob = SEEDS[k % len(SEEDS)]
        files.append(tmp_path / f"m{k:02d}_{name}.bin")
        files[-1].write_bytes(_mutate(rnd, blob))
    for k in range(4):
        files.append(tmp_path / f"r{k}.png")
        files[-1].write_bytes(MAGIC[k] + rnd.randbytes(rnd.randrange(0, 2000)))
    model = pipeline_project / "models" / f"{SMALL}.onnx"
    runs = [files, files[:1], files[-1:]]
    for batch in runs:
        r = subprocess.run([str(NETPIPE), "predict", *map(str, batch), "--model", str(model), "--ten-crop"],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert r.returncode in (0, 1), (r.returncode, r.stderr[-2000:])  # negative: killed by a signal
        assert "Traceback" not in r.stderr
        out, err = r.stdout.splitlines(), r.stderr.splitlines()
        assert len(out) + len(err) == len(batch), (r.stdout, r.stderr)
        assert all(line.startswith("netpipe: ") and ": " in line[9:] for line in err), err
        named = [line.split(": ")[0] for line in out] + [line[len("netpipe: "):].split(": ")[0] for line in err]
        assert sorted(named) == sorted(map(str, batch)), "each file once: a result or an error"
        assert r.returncode == (1 if err else 0)
