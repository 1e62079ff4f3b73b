#!/bin/bash
set -x
cd /work/qc
export PYTHONPATH=/work/qc PATH=/work/main/.venv/bin:$PATH DVC_NO_ANALYTICS=1
ONE="-S quick.enabled=true -S ~variants -S +variants={alexnet_thinner_4:cifar10} -S datasets=[cifar10]"
dvc exp run --queue -n s-lr01 $ONE
dvc exp run --queue -n s-lr02 $ONE -S nets.alexnet_thinner_4.train.optimizer.lr=0.02
t0=$(date +%s.%N); dvc queue start -j 1
sleep 3; while dvc queue status 2>/dev/null | grep -qE "Running|Queued"; do sleep 2; done
t1=$(date +%s.%N); echo "sequential queue (-j 1) of two: $(echo "$t1 - $t0" | bc) s"
dvc queue status
# the committed baseline: the quick check's results committed, then one change
dvc exp apply quick && git add -A && git -c user.email=a@b -c user.name=t commit -qm "quick check results" && git log --oneline | head -1
time dvc exp run -n e-epochs2 -S nets.alexnet_thinner_4.train.epochs=2 > ../qc-exp3.log 2>&1; echo "exp3 rc=$?"
dvc exp show --csv --rev HEAD > ../qc-show3.csv 2>/dev/null; head -1 ../qc-show3.csv | tr ',' '\n' | wc -l
dvc exp show --only-changed --csv > ../qc-show3-changed.csv 2>/dev/null; head -1 ../qc-show3-changed.csv | tr ',' '\n' | wc -l
head -1 ../qc-show3-changed.csv | tr ',' '\n'
DROP='^(models|data)/|^artifacts/(train|metrics|export|bench)($|/)'
dvc exp show --only-changed --drop "$DROP" --csv > ../qc-show3-trim.csv 2>/dev/null; head -1 ../qc-show3-trim.csv | tr ',' '\n' | wc -l
dvc exp show --only-changed --drop "$DROP" --md --precision 4 > ../qc-show3-trim.md 2>/dev/null; cat ../qc-show3-trim.md
dvc exp diff > ../qc-exp-diff.txt 2>&1; cat ../qc-exp-diff.txt
dvc metrics diff HEAD e-epochs2 > ../qc-metrics-diff3.txt 2>&1; cat ../qc-metrics-diff3.txt
echo DONE
