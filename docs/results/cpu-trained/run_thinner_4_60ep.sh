#!/bin/bash
# thinner_4 over 60 epochs (milestones 30, 45): the worktree /work/train4 at ca958e2 with data lines set
cd /work/train4
export PYTHONPATH=/work/train4
. /work/main/.venv/bin/activate
date -u
nice -n 5 dvc repro bench@alexnet_thinner_4_short
echo "exit $?"; date -u
