#!/bin/bash
# Measure the README quick check on a clean clone, timestamps per line. Args: extra dvc exp run args.
# Writes the timed DVC log to stdout and each netpipe command's own start/end to $PROC_TIMES (default proc_times.txt
# here), through shim/netpipe; summarize.py makes the tables of README.md from both.
here="$(cd "$(dirname "$0")" && pwd)"
PROC_TIMES="$(realpath -m "${PROC_TIMES:-$here/proc_times.txt}")"  # absolute: the shim runs in the clone
cd "${QUICK_CLONE:?a fresh clone beside ../shared}"
export PROC_TIMES
: > "$PROC_TIMES"
. "${VENV:-.venv}/bin/activate"
export PYTHONPATH="$PWD"  # the clone's own code
export NETPIPE_REAL="$(command -v netpipe)" PATH="$here/shim:$PATH"
start=$(date +%s)
dvc exp run -S quick.enabled=true -S data.cifar10.source=folder -S data.cifar10.path=../shared/data/cifar10-jpeg.tar.gz \
  -S data.mnist.source=local -S data.mnist.path=../shared/data/mnist "$@" 2>&1 | grep --line-buffered -v "^WARNING: No file hash info" | while IFS= read -r line; do echo "$(( $(date +%s) - start )) $line"; done
echo "EXIT ${PIPESTATUS[0]} total $(( $(date +%s) - start )) s"
