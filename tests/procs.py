"""Driving real processes in tests: their PYTHONPATH, and waiting until one prints a given line, to signal it at
that point."""

from __future__ import annotations

import os
import subprocess
import time


def pythonpath(*first) -> str:
    """PYTHONPATH for a test's subprocess: FIRST ahead of the caller's own PYTHONPATH, which is kept (a machine whose
    packages come from PYTHONPATH, as the GPU machine's, would lose them if a test replaced it)."""
    old = os.environ.get("PYTHONPATH")
    return os.pathsep.join([*map(str, first), *([old] if old else [])])


def read_until(proc: subprocess.Popen, stream, marker: str, timeout: float) -> list[str]:
    """Lines of `stream` (proc's stdout or stderr, text mode) up to the first that holds `marker`."""
    seen, deadline = [], time.time() + timeout
    for line in stream:
        seen.append(line)
        if marker in line:
            return seen
        assert time.time() < deadline, f"never printed {marker!r} within {timeout} s"
    raise AssertionError(f"exited ({proc.wait()}) before printing {marker!r}:\n{''.join(seen)[-3000:]}")
