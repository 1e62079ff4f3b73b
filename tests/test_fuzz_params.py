"""Fuzzing params.yaml loading: mutated YAML (byte flips, cuts, insertions, value swaps) always ends in either
valid Params or a one-line ParamsError (exit code 2): never another exception, a hang or a traceback.

Bounded for the suite; for a release check run more cases:
    NETPIPE_FUZZ_EXAMPLES=20000 pytest -n 0 -s tests/test_fuzz_params.py tests/test_fuzz_predict.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import params
from pipeline.errors import ParamsError
from tests.procs import pythonpath

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "params.yaml").read_text()
RAW = yaml.safe_load(TEXT)
EXAMPLES = int(os.environ.get("NETPIPE_FUZZ_EXAMPLES", "400"))

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12), st.lists(st.integers(-5, 300), max_size=4))


@st.composite
def mutated_text(draw) -> str:
    data = bytearray(TEXT.encode())
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "dup_line", "drop_line"]))
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[i:i + draw(st.integers(1, 200))]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=20))
        else:
            lines = bytes(data).split(b"\n")
            j = i % len(lines)
            if op == "dup_line":
                lines.insert(j, lines[j])
            else:
                del lines[j]
            data = bytearray(b"\n".join(lines))
        if not data:
            data = bytearray(b"x")
    return bytes(data).decode("utf-8", errors="replace")


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))


PATHS = list(_paths(RAW))


@st.composite
def mutated_values(draw) -> dict:
    import copy

    raw = copy.deepcopy(RAW)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS))
        node = raw
        try:
            for k in path[:-1]:
                node = node[k]
            if draw(st.booleans()):
                node[path[-1]] = draw(scalars)
            else:
                node.pop(path[-1], None)
        except (KeyError, TypeError, AttributeError, IndexError):
            pass
    return raw


def _check_one_line(exc: ParamsError) -> None:
    msg = str(exc)
    assert msg and "\n" not in msg and exc.exit_code == 2


def _try(load, arg, counts: dict) -> None:
    """A valid config or a one-line ParamsError (exit code 2), tallied."""
    try:
        load(arg)
        counts["ok"] += 1
    except ParamsError as exc:
        _check_one_line(exc)
        counts["error"] += 1


def _report(what: str, counts: dict, capsys) -> None:
    """Printed in every run in one process (pytest -n 0: xdist workers print nowhere), not only with -s; at least
    100 cases (or all NETPIPE_FUZZ_EXAMPLES) were tried."""
    with capsys.disabled():
        print(f"\nparams fuzz, {what}: {counts['ok'] + counts['error']} cases, {counts['ok']} valid, "
              f"{counts['error']} one-line errors")
    assert counts["ok"] + counts["error"] >= min(EXAMPLES, 100)


def test_mutated_yaml_text(tmp_path, capsys):
    counts = {"ok": 0, "error": 0}

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(mutated_text())
    def fuzz(text):
        f = tmp_path / "params.yaml"
        f.write_text(text)
        _try(params.load, f, counts)

    fuzz()
    _report("mutated YAML text", counts, capsys)
    assert counts["error"] > 0


def test_mutated_values(capsys):
    counts = {"ok": 0, "error": 0}

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(mutated_values())
    def fuzz(raw):
        _try(params.parse, raw, counts)

    fuzz()
    _report("mutated values", counts, capsys)
    assert counts["ok"] > 0 and counts["error"] > 0


def test_cli_on_garbage_params(tmp_path):
    """The real command on a few hostile files: exit 2, one line, no traceback."""
    cases = [b"\x00\xff\xfe garbage", b"a: [" * 5000, b"&a [*a]", b"seed: !!python/object/apply:os.system ['true']",
             b"\xef\xbb\xbfseed: 1\n", b"", b"variants: {x: y}\n" * 3]
    for blob in cases:
        (tmp_path / "params.yaml").write_bytes(blob)
        r = subprocess.run([sys.executable, "-m", "pipeline", "train", "x"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=60, env={**os.environ, "PYTHONPATH": pythonpath(ROOT)})
        assert r.returncode == 2, (blob[:30], r.stderr)
        assert "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("netpipe: error: ")
