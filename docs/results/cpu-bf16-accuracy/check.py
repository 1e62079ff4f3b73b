"""Does bf16 training on the CPU lose accuracy? The same short real run (variant, steps, seed) trained with bf16
autocast allowed (amp: true, which pipeline/speed.py turns on where it pays) and with plain fp32 (amp: false,
channels_last: false), for two seeds, on the real data; validation accuracy on the whole 5,000-image split.

    python docs/results/cpu-bf16-accuracy/check.py [VARIANT] [--steps 350] [--chunks 2]

Run in a checkout whose params.yaml `data:` lines point at the shared copies, after `netpipe prepare`. Writes
results.json and README.md's table here (numbers from the runs' CSVs and summaries, never typed).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("variant", nargs="?", default="alexnet_thinner_4")
    ap.add_argument("--steps", type=int, default=350)
    ap.add_argument("--chunks", type=int, default=2)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    a = ap.parse_args()
    base = yaml.safe_load(a.params.read_text())
    results = []
    for seed in (0, 1):
        for mode in ("bf16 allowed", "fp32"):
            raw = json.loads(json.dumps(base))
            raw["seed"] = seed
            raw["quick"].update({"enabled": True, "epochs": a.chunks, "max_steps_per_epoch": a.steps,
                                 "eval_samples": 100000})
            if mode == "fp32":
                raw["nets"][a.variant]["train"].update({"amp": False, "channels_last": False})
            with tempfile.TemporaryDirectory() as tmp:
                tmp = Path(tmp)
                (tmp / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
                (tmp / "data").mkdir()
                os.symlink((a.params.parent / "data" / "prepared").resolve(), tmp / "data" / "prepared")
                r = subprocess.run(["netpipe", "train", a.variant], cwd=tmp)
                if r.returncode:
                    sys.exit(r.returncode)
                curve = list(csv.DictReader((tmp / "artifacts" / "train" / f"{a.variant}.csv").open()))
                s = json.loads((tmp / "artifacts" / "train" / f"{a.variant}.json").read_text())
            results.append({"seed": seed, "mode": mode, "uses": s["speed"]["reason"], "amp_bf16": s["amp_bf16"],
                            "channels_last": s["channels_last"], "steps": a.steps * a.chunks,
                            "val_acc": [float(c["val_acc"]) for c in curve],
                            "val_loss": [float(c["val_loss"]) for c in curve],
                            "train_loss": [float(c["train_loss"]) for c in curve],
                            "images_per_s": s["images_per_s"], "train_device": s["train_device"],
                            "seed_note": "params seed: data order, augmentation, init and dropout"})
    (HERE / "results.json").write_text(json.dumps({"variant": a.variant, "runs": results}, indent=1) + "\n")
    rows = [f"| {r['seed']} | {r['mode']} ({'bf16' if r['amp_bf16'] else 'fp32'}"
            f"{' + channels-last' if r['channels_last'] else ''}) | {r['steps']} | "
            + " → ".join(f"{v:.2%}" for v in r["val_acc"]) + f" | {r['val_loss'][-1]:.4f} | {r['images_per_s']:,.0f} |"
            for r in results]
    acc = {(r["seed"], r["amp_bf16"]): r["val_acc"][-1] for r in results}
    diffs = [acc[(s, True)] - acc[(s, False)] for s in (0, 1) if (s, True) in acc and (s, False) in acc]
    seeds = [abs(acc[(0, m)] - acc[(1, m)]) for m in (True, False) if (0, m) in acc and (1, m) in acc]
    text = (f"# bf16 training on the CPU: accuracy against fp32 ({a.variant})\n\n"
            f"{__doc__.split(chr(10) + chr(10))[0]}\n\nCommand: `python docs/results/cpu-bf16-accuracy/check.py "
            f"{a.variant} --steps {a.steps} --chunks {a.chunks}`; machine: {results[0]['train_device']}.\n\n"
            "| seed | training | steps | val top-1 after each chunk | final val loss | images/s |\n|---|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n\n"
            f"bf16 minus fp32, same seed: {', '.join(f'{d:+.2%}' for d in diffs) or 'n/a'}; "
            f"seed 0 minus seed 1, same precision (the noise): {', '.join(f'{d:.2%}' for d in seeds) or 'n/a'}.\n")
    (HERE / "README.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
