"""Tables of docs/results/cpu-int8/README.md from the records run.sh copied here (export and bench of
alexnet_thinner_4_e8, with quint8 activations, the default, and with qint8 in qint8/).

    .venv/bin/python docs/results/cpu-int8/summarize.py > docs/results/cpu-int8/tables.md
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
V = "alexnet_thinner_4_e8"


def pct(x):
    return "n/a" if x is None else f"{100 * x:.2f}%"


def main() -> None:
    train = json.loads((HERE / f"{V}.json").read_text()) if (HERE / f"{V}.json").exists() else None
    rows = []
    for label, d in (("quint8 activations (default)", HERE), ("qint8 activations", HERE / "qint8")):
        ex = json.loads((d / "export.json").read_text())
        i8, fp32 = ex["int8"], ex["accuracy"]["onnx"]
        rows.append(f"| {label} | {pct(fp32['top1'])} / {pct(fp32['top1_10crop'])} | {pct(i8['accuracy']['top1'])} / "
                    f"{pct(i8['accuracy']['top1_10crop'])} | {-i8['drop_pp']['top1']:+.2f} / "
                    f"{-i8['drop_pp']['top1_10crop']:+.2f} pp | {i8['accuracy']['n_test']:,} | "
                    f"{'yes' if i8['within_max_drop'] else '**no: marked**'} | {ex['onnx_bytes'] / 1e6:.1f} / "
                    f"{i8['bytes'] / 1e6:.1f} MB | {i8['quantize_seconds']:.1f} s |")
    print("| int8 file | fp32 ONNX top-1 (1 / multi-crop) | int8 top-1 (1 / multi-crop) | int8 - fp32 | test images "
          "| within export.int8_max_drop_pp | fp32 / int8 size | quantize time |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    for label, d in (("quint8 activations (default)", HERE), ("qint8 activations", HERE / "qint8")):
        b = json.loads((d / "bench.json").read_text())
        res = b["results"]
        print(f"**{label}** — bench on {b['machine']['cpu']} ({b['machine']['cpu_cores']} cores, torch threads "
              f"{b['machine']['torch_threads']}, onnxruntime {b['machine']['onnxruntime']}), {b['date']}:")
        print()
        print("| batch | onnxruntime fp32 img/s | onnxruntime int8 img/s | PyTorch eager fp32 img/s | int8 / ort fp32 "
              "| int8 / fastest PyTorch |")
        print("|---|---|---|---|---|---|")
        for bs in sorted({k for per in res.values() for rr in per.values() for k in rr}, key=int):
            ips = {f"{k}_{p}": rr[bs]["images_per_s"] for k, per in res.items() for p, rr in per.items() if bs in rr}
            torch_best = max(v for k, v in ips.items() if k.startswith("torch_"))
            print(f"| {bs} | {ips['ort_cpu_fp32']:,.0f} | {ips['ort_cpu_int8']:,.0f} | {ips['torch_eager_fp32']:,.0f} | "
                  f"{ips['ort_cpu_int8'] / ips['ort_cpu_fp32']:.2f}x | {ips['ort_cpu_int8'] / torch_best:.2f}x |")
        skipped = [f"{s['backend']} {s['precision']}: {s['reason']}" for s in b["skipped"]]
        print()
        print("Skipped: " + "; ".join(skipped) if skipped else "Skipped: none")
        print()
    if train:
        print(f"Training ({V}): {train['epochs']} epochs, best epoch {train['best_epoch']}, validation top-1 "
              f"{pct(train['val_top1'])}, {train['train_seconds'] / 60:.1f} min on {train['train_device']} "
              f"(`{train['command']}`, commit {train['git_commit']}).")


if __name__ == "__main__":
    main()
