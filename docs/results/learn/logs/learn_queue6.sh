#!/bin/bash
# Issue 12: alexnet_cifar_noaug for longer (code of /work/learncode = 46dffa1, params of /work/learn2).
. /work/main/.venv/bin/activate
export PYTHONPATH=/work/learncode
cd /work/learn2
python /work/main/docs/results/learn/learn.py --params /work/learn2/params.yaml alexnet_cifar_noaug --chunks 12 --steps 100 --val 500
