#!/bin/bash
# Issue 12: alexnet_cifar_noaug with experiment 1's own init (seed_v1) on raw pixels: trial of 300 steps.
. /work/main/.venv/bin/activate
export PYTHONPATH=/work/learncode
cd /work/learn2
python /work/main/docs/results/learn/learn.py --params /work/learn2/params.yaml alexnet_cifar_noaug --chunks 3 --steps 100 --val 500 \
  --set 'nets.alexnet_cifar_noaug.options={lrn: both, dropout: 0.1, head: fc, batchnorm: false, init: seed_v1, pool_stride: 1}' \
  --set 'nets.alexnet_cifar_noaug.normalize={mean: [0.0, 0.0, 0.0], std: [0.00392156862745098, 0.00392156862745098, 0.00392156862745098]}'
