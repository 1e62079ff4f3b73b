#!/bin/bash
# Issue 12 learn runs, session 3: code of the commit checked out in /work/learncode, params of /work/learn2
# (main's params.yaml with the shared-data lines), one run at a time.
. /work/main/.venv/bin/activate
export PYTHONPATH=/work/learncode
cd /work/learn2
L=/work/main/docs/results/learn/learn.py
python $L --params /work/learn2/params.yaml alexnet_cifar_adam --chunks 5 --steps 100 --set nets.alexnet_cifar_adam.train.optimizer.lr=0.0001
python $L --params /work/learn2/params.yaml alexnet_cifar_noaug --chunks 6 --steps 100
python $L --params /work/learn2/params.yaml googlenet_cifar_aux --chunks 3 --steps 50
