#!/bin/bash
# Issue 12: alexnet_cifar_noaug (params.yaml's recipe: init std 0.01 on mean-subtracted pixels, SGD lr 0.001
# constant, whole 32x32 images, no augmentation) for 2,800 steps; code of /work/learncode, params of /work/learn2.
. /work/main/.venv/bin/activate
export PYTHONPATH=/work/learncode
cd /work/learn2
python /work/main/docs/results/learn/learn.py --params /work/learn2/params.yaml alexnet_cifar_noaug --chunks 28 --steps 100 --val 500 --measure-speed
