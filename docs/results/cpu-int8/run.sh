#!/bin/bash
# The int8 file on a really trained net, on this machine: evaluate, export (fp32, fp16, int8 with its accuracy) and
# bench (batch 1 and 256, onnxruntime CPU and PyTorch eager, fp32 and int8) of alexnet_thinner_4_e8, the 002 thinner_4
# net trained here for 8 epochs (alexnet_thinner_4_short's recipe cut to 8 epochs, x0.1 at 5 and 7: the CPU time a
# session has; docs/results/cpu-int8/README.md). Then the same export with int8_activations: qint8 for the A/B.
#   bash docs/results/cpu-int8/run.sh TRAINED_DIR    (TRAINED_DIR: the checkout where `dvc repro train@alexnet_thinner_4_e8` ran)
set -euo pipefail
SRC=$1
OUT=$(cd "$(dirname "$0")" && pwd)
D=/work/run-int8
rm -rf "$D" && git clone -q "$(cd "$OUT/../../.." && pwd)" "$D" && cd "$D"
export PATH=$(cd "$OUT/../../.." && pwd)/.venv/bin:$PATH PYTHONPATH=$D DVC_NO_ANALYTICS=1
python - <<'PY'
s = open("params.yaml").read()
s = s.replace("    source: download\n    format: cifar10", "    source: folder\n    format: cifar10", 1)
i = s.index("    path: null", s.index("  cifar10:"))
s = s[:i] + "    path: ../shared/data/cifar10-jpeg.tar.gz" + s[i + len("    path: null"):]
a, b = s.index("\nvariants:\n"), s.index("\n# Per-variant network options")
s = s[:a] + "\nvariants:\n  alexnet_thinner_4_e8: cifar10\n" + s[b:]
s = s.replace("datasets: [cifar10, mnist]", "datasets: [cifar10]")
anchor = "  # ---- 001: torchvision AlexNet"
s = s.replace(anchor, """  alexnet_thinner_4_e8:  # CUT for one session's CPU time: alexnet_thinner_4_short's recipe over 8 epochs (x0.1 at 5 and 7)
    <<: *thinner_4
    seed_reference: {doc: "002", params: 5488106, top1: null, protocol: null, note: "no figure stated; an 8-epoch cut for int8 checks"}
    train:
      <<: *keras_train
      epochs: 8
      optimizer: {name: nesterov, lr: 0.01, momentum: 0.9, weight_decay: 0.0002, decay_on: conv}
      schedule: {name: multistep, milestones: [5, 7], gamma: 0.1}

""" + anchor, 1)
s = s.replace("  batch_sizes: [1, 8, 64, 256]", "  batch_sizes: [1, 256]", 1)
s = s.replace("  backends: [ort_cuda, ort_cpu, torch_eager, torch_compile, torch_cuda_graph]", "  backends: [ort_cpu, torch_eager]", 1)
s = s.replace("  precisions: [fp32, fp16, bf16, int8]", "  precisions: [fp32, bf16, int8]", 1)
open("params.yaml", "w").write(s)
PY
mkdir -p models data/prepared artifacts/train
ln "$SRC/models/alexnet_thinner_4_e8.pt" models/ && ln "$SRC/data/prepared/cifar10.npz" data/prepared/
cp "$SRC"/artifacts/train/alexnet_thinner_4_e8.{csv,json} artifacts/train/
git diff params.yaml > "$OUT/params.diff"
V=alexnet_thinner_4_e8
for cmd in "netpipe evaluate $V" "netpipe export $V" "netpipe bench $V"; do
  echo "+ $cmd   ($(date -u +%FT%TZ), commit $(git rev-parse --short HEAD))"; /usr/bin/time -f "%e s wall" $cmd || exit 1
done 2>&1 | grep -v "it/s\]\|step/s\]\|s/it\]" | tee "$OUT/log.txt"
cp artifacts/metrics/$V.json "$OUT/metrics.json"; cp artifacts/export/$V.json "$OUT/export.json"; cp artifacts/bench/$V.json "$OUT/bench.json"; cp artifacts/train/$V.json "$OUT/"
sed -i 's/int8_activations: quint8/int8_activations: qint8/' params.yaml
mkdir -p "$OUT/qint8"
{ echo "+ netpipe export $V   (export.int8_activations: qint8)"; /usr/bin/time -f "%e s wall" netpipe export $V;
  echo "+ netpipe bench $V   (export.int8_activations: qint8)"; /usr/bin/time -f "%e s wall" netpipe bench $V; } 2>&1 \
  | grep -v "it/s\]\|step/s\]\|s/it\]" | tee "$OUT/qint8/log.txt"
cp artifacts/export/$V.json "$OUT/qint8/export.json"; cp artifacts/bench/$V.json "$OUT/qint8/bench.json"
