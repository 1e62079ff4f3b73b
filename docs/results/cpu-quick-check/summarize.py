"""Per-stage seconds of a timed quick check (run.log, written by measure.sh), as a markdown table in README.md.

Each line of run.log starts with the seconds since the start; a stage's time runs from its "Running stage" line to
the next one (so it includes DVC's own work for it: hashing and caching its outputs, updating dvc.lock).
With proc_times.txt beside it (measure.sh's shim: each netpipe command's own start and end), a second table splits
every kind of stage into the commands' time and DVC's own work around them.
Usage: python summarize.py [run.log] [README.md] [proc_times.txt]
(rewrites the part between <!-- table --> and <!-- /table -->)
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).parent
KINDS = ["train", "evaluate", "export", "bench"]


def stage_seconds(log: str) -> tuple[dict[str, int], int]:
    marks, total = [], None
    for line in log.splitlines():
        m = re.match(r"(\d+) Running stage '([^']+)'", line)
        if m:
            marks.append((int(m.group(1)), m.group(2)))
        m = re.match(r"EXIT (\d+) total (\d+) s", line)
        if m:
            assert m.group(1) == "0", f"the run failed: {line}"
            total = int(m.group(2))
    assert total is not None, "no EXIT line: the run did not finish"
    ends = [t for t, _ in marks[1:]] + [total]
    return {name: end - t for (t, name), end in zip(marks, ends)}, total


def command_seconds(text: str) -> dict[str, float]:
    """{stage name: seconds its netpipe command ran} from the shim's lines "END START RC netpipe-args"."""
    out = {}
    for line in text.splitlines():
        end, start, rc, cmd, *arg = line.split()
        assert rc == "0", f"a command failed: {line}"
        out[f"{cmd}@{arg[0]}" if arg else cmd] = float(end) - float(start)
    return out


def split_table(seconds: dict[str, int], commands: dict[str, float]) -> str:
    if set(seconds) != set(commands):
        sys.exit(f"the command times are not this run's: stages {sorted(set(seconds) ^ set(commands))} are in one only")
    kinds: dict[str, list[float]] = {}
    for name, s in seconds.items():
        k = kinds.setdefault(name.partition("@")[0], [0, 0.0, 0])
        k[0] += s
        k[1] += commands[name]
        k[2] += 1
    rows = ["| stage | stages | seconds (DVC's log) | of which the netpipe commands | DVC's own work | per stage |",
            "|---|---|---|---|---|---|"]
    for kind, (s, c, n) in kinds.items():
        rows.append(f"| {kind} | {n} | {s} | {c:.0f} | {s - c:.0f} | {(s - c) / n:.1f} |")
    s, c = sum(k[0] for k in kinds.values()), sum(k[1] for k in kinds.values())
    n = sum(k[2] for k in kinds.values())
    rows.append(f"| **all** | **{n}** | **{s}** | **{c:.0f}** | **{s - c:.0f}** | **{(s - c) / n:.1f}** |")
    return "\n".join(rows)


def table(seconds: dict[str, int], total: int) -> str:
    per = defaultdict(dict)
    other = {}
    for name, s in seconds.items():
        kind, _, variant = name.partition("@")
        if kind in KINDS:
            per[variant][kind] = s
        else:
            other[name] = s
    rows = ["| variant | " + " | ".join(KINDS) + " | all four |", "|---" * (len(KINDS) + 2) + "|"]
    for v, d in per.items():
        rows.append(f"| `{v}` | " + " | ".join(str(d.get(k, "")) for k in KINDS) + f" | {sum(d.values())} |")
    sums = {k: sum(d.get(k, 0) for d in per.values()) for k in KINDS}
    rows.append(f"| **{len(per)} variants** | " + " | ".join(f"**{sums[k]}**" for k in KINDS)
                + f" | **{sum(sums.values())}** |")
    rest = ", ".join(f"`{n}` {s}" for n, s in other.items())
    return "\n".join(rows) + (f"\n\nSeconds, from DVC's log. Also: {rest}. Total, DVC's start to its exit: "
                              f"**{total} s ({total // 60} min {total % 60} s)**.")


def main() -> None:
    log = Path(sys.argv[1] if len(sys.argv) > 1 else HERE / "run.log")
    readme = Path(sys.argv[2] if len(sys.argv) > 2 else HERE / "README.md")
    # run.log -> proc_times.txt, run_short.log -> proc_times_short.txt: the command times of the same run
    procs = Path(sys.argv[3] if len(sys.argv) > 3 else log.with_name(log.stem.replace("run", "proc_times", 1) + ".txt"))
    seconds, total = stage_seconds(log.read_text(errors="replace"))
    body = table(seconds, total)
    if procs.exists():
        body += ("\n\nThe same stages split into the netpipe commands' own time (measure.sh's shim) and DVC's work "
                 "around each (checking, hashing and caching outputs, rewriting dvc.lock):\n\n"
                 + split_table(seconds, command_seconds(procs.read_text())))
    text = readme.read_text()
    head, rest = text.split("<!-- table -->\n", 1)
    _, tail = rest.split("<!-- /table -->", 1)
    readme.write_text(f"{head}<!-- table -->\n{body}\n<!-- /table -->{tail}")
    print(f"{len(seconds)} stages, {total} s -> {readme}")


if __name__ == "__main__":
    main()
