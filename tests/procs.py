"""Driving real processes in tests: wait until one prints a given line, to signal it at that point."""

from __future__ import annotations

import subprocess
import time


def read_until(proc: subprocess.Popen, stream, marker: str, timeout: float) -> list[str]:
    """Lines of `stream` (proc's stdout or stderr, text mode) up to the first that holds `marker`."""
    seen, deadline = [], time.time() + timeout
    for line in stream:
        seen.append(line)
        if marker in line:
            return seen
        assert time.time() < deadline, f"never printed {marker!r} within {timeout} s"
    raise AssertionError(f"exited ({proc.wait()}) before printing {marker!r}:\n{''.join(seen)[-3000:]}")
