#!/bin/bash
# One CPU job at a time: wait for the thinner_4 run, then the learn-table runs, in /work/learnwt's code
# (PYTHONPATH pins the package to that checkout; learn.py writes into /work/main/docs/results/learn/).
while pgrep -f run_t4_60.sh >/dev/null; do sleep 10; done
cd /work/learnwt
export PYTHONPATH=/work/learnwt
. /work/main/.venv/bin/activate
L="python /work/main/docs/results/learn/learn.py --params /work/learnwt/params.yaml"
date -u; netpipe prepare mnist
T2=nets.alexnet_thinner_2.train.schedule.warmup_epochs=1
for s in 1 2; do date -u; $L alexnet_thinner_2 --chunks 3 --steps 100 --seed $s; done
date -u; $L alexnet_thinner_2 --chunks 5 --steps 100 --set $T2
date -u; $L alexnet_cifar_noaug --chunks 5 --steps 100
date -u; $L alexnet_cifar_drop05 --chunks 5 --steps 100
date -u; $L googlenet_cifar_aux --chunks 5 --steps 20
date -u; $L alexnet_slim_regular --chunks 3 --steps 40
date -u; $L alexnet_slim --chunks 3 --steps 40
date -u; $L alexnet_mnist_groups --chunks 3 --steps 10
date -u; $L alexnet_cifar_adam --chunks 5 --steps 100
date -u; echo queue done
