#!/bin/bash
# Measure the README quick check on a clean clone, timestamps per line. Args: extra dvc exp run args.
cd "${QUICK_CLONE:?a fresh clone beside ../shared}"
. "${VENV:-.venv}/bin/activate"
export PYTHONPATH="$PWD"  # the clone's own code
start=$(date +%s)
dvc exp run -S quick.enabled=true -S data.cifar10.source=folder -S data.cifar10.path=../shared/data/cifar10-jpeg.tar.gz \
  -S data.mnist.source=local -S data.mnist.path=../shared/data/mnist "$@" 2>&1 | grep --line-buffered -v "^WARNING: No file hash info" | while IFS= read -r line; do echo "$(( $(date +%s) - start )) $line"; done
echo "EXIT ${PIPESTATUS[0]} total $(( $(date +%s) - start )) s"
