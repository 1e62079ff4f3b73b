#!/bin/bash
# issue 33: DVC's experiment tools on a fresh clone after the quick check (2-core AMD EPYC, no GPU)
set -x
cd /work && rm -rf qc && git clone -q main qc && cd qc && git log --oneline | head -1
export PYTHONPATH=/work/qc PATH=/work/main/.venv/bin:$PATH DVC_NO_ANALYTICS=1
# README "Data": the shared copies
python - <<'PY'
import re
s = open("params.yaml").read()
s = s.replace("    source: download\n    format: cifar10", "    source: folder\n    format: cifar10", 1)
s = re.sub(r"(cifar10:\n(?:.*\n)*?    path: )null", r"\1../shared/data/cifar10-jpeg.tar.gz", s, count=1)
s = s.replace("    source: download\n    format: mnist", "    source: local\n    format: mnist", 1)
s = re.sub(r"(mnist:\n(?:.*\n)*?    path: )null", r"\1../shared/data/mnist", s, count=1)
open("params.yaml", "w").write(s)
PY
git diff --stat; git -c user.email=a@b -c user.name=t commit -qam "data: the shared copies (README Data)"
time dvc exp run -n quick -S quick.enabled=true > ../qc-exp1.log 2>&1; echo "exp1 rc=$?"
dvc exp show --csv > ../qc-show1.csv 2>/dev/null; head -1 ../qc-show1.csv | tr ',' '\n' | wc -l
time dvc exp run -n quick-thinner4-2ep -S quick.enabled=true -S nets.alexnet_thinner_4.train.epochs=2 > ../qc-exp2.log 2>&1; echo "exp2 rc=$?"
dvc exp show --csv > ../qc-show2.csv 2>/dev/null; head -1 ../qc-show2.csv | tr ',' '\n' | wc -l
dvc exp show --only-changed --csv > ../qc-show2-changed.csv 2>/dev/null; head -1 ../qc-show2-changed.csv | tr ',' '\n' | wc -l
dvc exp show --only-changed > ../qc-show2-changed.txt 2>/dev/null
dvc metrics diff quick quick-thinner4-2ep > ../qc-metrics-diff.txt 2>&1; cat ../qc-metrics-diff.txt
dvc params diff quick quick-thinner4-2ep > ../qc-params-diff.txt 2>&1; cat ../qc-params-diff.txt
dvc plots diff quick quick-thinner4-2ep --targets artifacts/train/alexnet_thinner_4.csv -o ../qc-plots-diff > ../qc-plots-diff.txt 2>&1; cat ../qc-plots-diff.txt
# the queue: two settings of one variant, two workers
ONE="-S quick.enabled=true -S ~variants -S +variants={alexnet_thinner_4:cifar10} -S datasets=[cifar10]"
dvc exp run --queue -n q-lr01 $ONE > ../qc-queue.log 2>&1
dvc exp run --queue -n q-lr02 $ONE -S nets.alexnet_thinner_4.train.optimizer.lr=0.02 >> ../qc-queue.log 2>&1
date +%s > ../qc-queue-start
time dvc queue start -j 2 >> ../qc-queue.log 2>&1
while dvc queue status 2>/dev/null | grep -qE "Running|Queued"; do sleep 5; done
date +%s > ../qc-queue-end
dvc queue status >> ../qc-queue.log 2>&1
dvc exp show --only-changed --csv > ../qc-show-queue.csv 2>/dev/null
dvc exp show --only-changed > ../qc-show-queue.txt 2>/dev/null
echo DONE
