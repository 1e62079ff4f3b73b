"""Does each recipe learn? Run the first steps of a variant's own recipe on the real data and keep the curve.

    python docs/results/learn/learn.py VARIANT [VARIANT ...] [--chunks 5] [--steps 100] [--val 1000]
        [--seed N] [--set nets.VARIANT.train.KEY=VALUE ...] [--measure-speed]

For each variant this runs the real `netpipe train VARIANT` in a scratch folder (data/prepared/ linked from the
project, so run `netpipe prepare` / `dvc repro prepare@DATASET` first) with params.yaml's recipe and the quick
check switched on: `--chunks` "epochs" of `--steps` optimizer steps each, validation on `--val` images after each
chunk. The quick check follows the full recipe's learning-rate schedule (pipeline/train.py), so these are the
recipe's first chunks x steps steps, not a squeezed run; the quick check's batch cap is lifted (the recipe's own
batch). The quick check itself does not measure the CPU speed (a cached decision, else fp32); --measure-speed
first makes the measurement the full run makes (pipeline/speed.py, cached), so the chunks train in what the full
run would use. It copies the curve (VARIANT.csv) and summary
(VARIANT.json) here and rewrites README.md's table from every VARIANT.json/csv in this folder.

With --seed or --set the run is a row of its own, named VARIANT+seedN / VARIANT+KEY=VALUE (the seed's draws,
or a changed knob, side by side with the recipe as params.yaml has it).

A variant learns when its validation accuracy ends clearly above chance (1/classes + 0.05) and its training loss
falls; the table says so, from the numbers, per variant: "yes", "**no**", or, for a row still at chance that
stopped inside the plateau its seed's own log shows (SEED_PLATEAU), "not known". A variant of params.yaml's
`variants` with no row of its own gets a "not run here" row.

    python docs/results/learn/learn.py          # no variant: rewrites README.md's table from the files alone
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
# plateaus the seed's own log shows: the training images its run had seen when its log first read over 15%, and the
# log (004 prints one "step" line per epoch of 300 batches of 200: all 60,000 training images; an epoch here is 275
# steps, the 55,000 left after validation). A row of these variants at chance that stopped before that many images
# is "not known": whether netpipe's run leaves the plateau as the seed's did is not measured until a row runs past it.
SEED_PLATEAU = {
    "alexnet_mnist": (11 * 60_000, "004's logs of this std-0.01 init sit at 11.7-15.4% up to their 'step' 10 "
                                   "(experiment 3, this recipe, doc lines 115-120: 78.8% at 11) or 11 (experiment 2, "
                                   "lines 94-99: 86.6% at 13)"),
    "alexnet_mnist_groups": (3 * 60_000, "004's log of experiment 5 (doc lines 158-163): 10.4% and 12.4% at its "
                                         "'steps' 1 and 2, 30.1% and 87.2% at 3 and 4"),
}
ROOT = HERE.parents[2]
MAX_SHOWN = 12  # validation accuracies shown per row


def _set(raw: dict, assignment: str) -> None:
    key, _, value = assignment.partition("=")
    *path, last = key.split(".")
    node = raw
    for k in path:
        node = node[k]
    node[last] = yaml.safe_load(value)


# the measurement pipeline/train.py makes at the start of a full run (the same call, so the same cache entry)
MEASURE = """
import sys, torch
from pipeline import params, speed
from pipeline.model import build_model
p = params.load("params.yaml"); v = sys.argv[1]
s = speed.choose_for(p.plan(v), build_model(p.plan(v), 10), torch.device("cpu"), 10)
print(f"[learn] {v}: CPU speed: {s.reason}", flush=True)
"""


def run(variant: str, chunks: int, steps: int, val: int, params: Path, seed: int | None = None,
        sets: tuple[str, ...] = (), measure_speed: bool = False) -> None:
    raw = yaml.safe_load(params.read_text())
    raw["quick"].update({"enabled": True, "epochs": chunks, "max_steps_per_epoch": steps, "eval_samples": val,
                         "batch_size": 1 << 20})  # no cap: the recipe's own batch
    name = variant
    if seed is not None:
        raw["seed"] = seed
        name += f"+seed{seed}"
    for assignment in sets:
        _set(raw, assignment)
        key, _, value = assignment.partition("=")
        name += f"+{key.split('.')[-1]}={value}"
    with tempfile.TemporaryDirectory(prefix=f"learn-{variant}-") as tmp:
        tmp = Path(tmp)
        (tmp / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        (tmp / "data").mkdir()
        os.symlink((params.parent / "data" / "prepared").resolve(), tmp / "data" / "prepared")
        if measure_speed:
            subprocess.run([sys.executable, "-c", MEASURE, variant], cwd=tmp, check=True)
        cmd = ["netpipe", "train", variant]
        print(f"[learn] {variant}: {chunks} x {steps} steps, validation on {val} images", flush=True)
        r = subprocess.run(cmd, cwd=tmp)
        if r.returncode:
            sys.exit(f"[learn] {variant}: netpipe train exited {r.returncode}")
        shutil.copy(tmp / "artifacts" / "train" / f"{variant}.csv", HERE / f"{name}.csv")
        summary = json.loads((tmp / "artifacts" / "train" / f"{variant}.json").read_text())
        summary["learn_command"] = (f"python docs/results/learn/learn.py {variant} --chunks {chunks} --steps {steps} "
                                    f"--val {val}" + (f" --seed {seed}" if seed is not None else "")
                                    + "".join(f" --set {a}" for a in sets)
                                    + (" --measure-speed" if measure_speed else ""))
        summary["git_commit"] = summary.get("git_commit") or _commit()
        (HERE / f"{name}.json").write_text(json.dumps(summary, indent=1) + "\n")


def _commit() -> str | None:
    """The commit of the netpipe package that ran (PYTHONPATH may point at another checkout than this one)."""
    r = subprocess.run([sys.executable, "-c", "from pipeline import fileio; print(fileio.git_commit())"],
                       capture_output=True, text=True)
    return r.stdout.strip() or None


def _verdict(name: str, learns: bool, steps: int, batch: int) -> str:
    if learns:
        return "yes"
    images, log = SEED_PLATEAU.get(name, (0, ""))
    if steps * batch < images:
        return f"not known: at chance after {steps} steps, inside its seed's plateau: {log}"
    return "**no**"


def table(params: Path = ROOT / "params.yaml") -> str:
    rows, named = [], set()
    for js in sorted(HERE.glob("*.json")):
        s = json.loads(js.read_text())
        curve = list(csv.DictReader((HERE / f"{js.stem}.csv").open()))
        if not curve:
            continue
        first, last = curve[0], curve[-1]
        steps = s["steps_per_epoch"] * len(curve)
        loss0, loss1 = float(first["train_loss"]), float(last["train_loss"])
        acc = float(last["val_acc"])
        chance = 0.1  # every dataset here has 10 classes
        learns = math.isfinite(loss1) and acc >= chance + 0.05 and loss1 < loss0
        every = math.ceil(len(curve) / MAX_SHOWN)  # long runs: every k-th chunk, counted back from the last
        shown = curve[::-1][::every][::-1]
        vals = ((f"(every {every} chunks) " if every > 1 else "")
                + " → ".join(f"{float(r['val_acc']):.1%}" for r in shown))
        val_loss = f"{float(first['val_loss']):.4f} → {float(last['val_loss']):.4f}"
        named.add(js.stem)
        rows.append(f"| `{js.stem}` | {steps} × {s['batch_size']} | {loss0:.3f} → {loss1:.3f} | {vals} | {val_loss} | "
                    f"{_verdict(js.stem, learns, steps, s['batch_size'])} | {s['images_per_s']:,.0f} ({_uses(s)}) | "
                    f"{s['train_seconds'] / 60:.1f} min |")
    variants = (yaml.safe_load(params.read_text()).get("variants") or {}) if params.exists() else {}
    rows += [f"| `{v}` | - | - | - | - | not run here (no row of this recipe) | - | - |"
             for v in sorted(set(variants) - named)]
    head = ("| variant | steps × batch | train loss (first → last chunk) | val top-1 after each chunk | "
            "val loss (first → last chunk) | learns | images/s (training uses) | time |\n"
            "|---|---|---|---|---|---|---|---|")
    return head + "\n" + "\n".join(rows)


def _uses(s: dict) -> str:
    return ("bf16" if s.get("amp_bf16") else "fp32") + (" + CL" if s.get("channels_last") else "")


def write_readme(params: Path = ROOT / "params.yaml") -> None:
    readme = HERE / "README.md"
    text = readme.read_text() if readme.exists() else ""
    start, end = "<!-- table -->", "<!-- /table -->"
    block = f"{start}\n{table(params)}\n{end}"
    if start in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text += "\n" + block + "\n"
    readme.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variants", nargs="*")
    ap.add_argument("--chunks", type=int, default=5)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--val", type=int, default=1000)
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--seed", type=int, default=None, help="params.yaml's seed for this run")
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE in params.yaml (dotted key), repeatable")
    ap.add_argument("--measure-speed", action="store_true", help="measure the CPU speed first, as a full run does")
    a = ap.parse_args()
    for v in a.variants:
        run(v, a.chunks, a.steps, a.val, a.params.resolve(), a.seed, tuple(a.set), a.measure_speed)
        write_readme(a.params)
    write_readme(a.params)


if __name__ == "__main__":
    main()
