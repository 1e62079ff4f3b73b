#!/bin/bash
# after mnist_groups: stop queue2 before noaug, then slim_regular with the warm-up
while ! grep -q "alexnet_cifar_noaug" <(tr '\r' '\n' < /work/logs/learn_queue2.log); do sleep 3; done
pkill -f learn_queue2.sh; sleep 1; pkill -f "learn.py.*alexnet_cifar_noaug"; pkill -f "netpipe train alexnet_cifar_noaug"; sleep 2
cd /work/learnwt
export PYTHONPATH=/work/learnwt
. /work/main/.venv/bin/activate
date -u; python /work/main/docs/results/learn/learn.py --params /work/learnwt/params.yaml alexnet_slim_regular --chunks 2 --steps 40 --set nets.alexnet_slim_regular.train.schedule.warmup_epochs=1
date -u; echo queue4 done
