"""Markdown tables from a pytest-benchmark JSON of tests/benchmarks (numbers read from the file, never typed):

    python docs/results/bench_table.py docs/results/cpu-benchmarks.json > docs/results/cpu-train-speed.md
"""

from __future__ import annotations

import json
import sys


def main(path: str) -> None:
    data = json.load(open(path))
    m = data["machine_info"]
    cpu = m.get("cpu", {})
    print(f"# CPU benchmarks: {cpu.get('brand_raw', m.get('processor'))}, {cpu.get('count')} cores "
          f"({', '.join(f for f in ('amx_bf16', 'avx512_bf16') if f in cpu.get('flags', []))})\n")
    print(f"From `{path}` (pytest-benchmark {data.get('version')}, {data.get('datetime')}, commit "
          f"{data.get('commit_info', {}).get('id', '?')[:12]}), written by\n`pytest tests/benchmarks --benchmark-only "
          f"--benchmark-json={path}`.\n")
    rows = [b["extra_info"] for b in data["benchmarks"] if "netpipe_images_per_s" in b["extra_info"]]
    if rows:
        print("## Training: netpipe's loop against a plain fp32 PyTorch loop (same net, batch, data, optimizer)\n")
        print("| variant | batch | netpipe images/s | plain fp32 images/s | ratio | netpipe used (why) |\n|---|---|---|---|---|---|")
        for r in rows:
            u = r["netpipe_uses"]
            uses = ("bf16 autocast" if u["amp"] else "fp32") + (" + channels-last" if u["channels_last"] else "")
            print(f"| `{r['variant']}` | {r['batch']} | {r['netpipe_images_per_s']:,.1f} | "
                  f"{r['plain_fp32_images_per_s']:,.1f} | **{r['ratio']:.2f}x** | {uses} ({u['reason']}) |")
        print()
    pred = [b["extra_info"] for b in data["benchmarks"] if "minimal_median_s" in b["extra_info"]]
    if pred:
        print("## Cold `netpipe predict` against a minimal onnxruntime + PIL script (new processes, alternating)\n")
        print("| netpipe predict (median) | minimal script (median) | ratio | rounds |\n|---|---|---|---|")
        for r in pred:
            print(f"| {r['netpipe_median_s'] * 1e3:.0f} ms | {r['minimal_median_s'] * 1e3:.0f} ms | "
                  f"**{r['ratio']:.2f}x** | {r['rounds']} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/results/cpu-benchmarks.json")
