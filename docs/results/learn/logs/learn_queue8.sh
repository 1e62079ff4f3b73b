#!/bin/bash
# Issue 12: alexnet_cifar_noaug with experiment 1's own recipe (params.yaml at 1e2af17: init seed_v1 on raw pixels,
# SGD lr 0.001 constant), 3,200 steps; code of /work/learncode = 1e2af17, params of /work/learn2 (data lines set).
. /work/main/.venv/bin/activate
export PYTHONPATH=/work/learncode
cd /work/learn2
python /work/main/docs/results/learn/learn.py --params /work/learn2/params.yaml alexnet_cifar_noaug --chunks 32 --steps 100 --val 500 --measure-speed
