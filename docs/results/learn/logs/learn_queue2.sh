#!/bin/bash
# The rest of the learn table, with smaller budgets (the session's time): /work/learnwt's code (49e2c25 + data lines)
cd /work/learnwt
export PYTHONPATH=/work/learnwt
. /work/main/.venv/bin/activate
L="python /work/main/docs/results/learn/learn.py --params /work/learnwt/params.yaml"
date -u; $L alexnet_cifar_drop05 --chunks 3 --steps 100
date -u; $L googlenet_cifar_aux --chunks 3 --steps 20
date -u; $L alexnet_slim_regular --chunks 2 --steps 40
date -u; $L alexnet_slim --chunks 2 --steps 40
date -u; $L alexnet_mnist_groups --chunks 2 --steps 10
date -u; $L alexnet_cifar_noaug --chunks 3 --steps 100
date -u; echo queue done
