#!/bin/bash
# Time every quick-mode stage of every variant by hand (no DVC), in /work/qc.
cd /work/qc; export PYTHONPATH=/work/qc
out=${1:-/work/logs/stage_times.txt}; : > $out
vars=$(/work/main/.venv/bin/python -c "import yaml;print(' '.join(yaml.safe_load(open('params.yaml'))['variants']))")
for s in ${STAGES:-train evaluate export bench}; do for v in $vars; do
  /usr/bin/time -f "$s $v %e" -a -o $out /work/main/.venv/bin/netpipe $s $v > /tmp/st_${s}_$v.log 2>&1 || echo "$s $v FAILED" >> $out
done; done
echo DONE >> $out
