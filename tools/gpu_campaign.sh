#!/usr/bin/env bash
# The GPU campaign in one device call (docs/gpu.md says how to run it and what comes back).
#
#   bash tools/gpu_campaign.sh --pack                 here, once: .carry/ (data, the wheels the device lacks, commit)
#   bash tools/gpu_campaign.sh [--budget SECONDS]     on the device: carry [".carry/data", ".carry/wheels"]
#   bash tools/gpu_campaign.sh --rehearse             here, on the CPU: the same steps with tiny settings
#
# Everything after the wheels lives in tools/gpu_campaign.py (stdlib and PyYAML only: it never imports torch).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 DVC_NO_ANALYTICS=1

if [ "${1:-}" = "--pack" ]; then
  shift
  # the wheels the device lacks, at the versions this checkout's environment runs (pydantic and what it needs)
  wheels=$($PY - <<'EOF'
from importlib.metadata import version
print(" ".join(f"{n}=={version(n)}" for n in ("pydantic", "pydantic-core", "typing-inspection", "annotated-types")))
EOF
) || { echo "gpu_campaign: --pack needs pydantic installed here (pip install -e .)" >&2; exit 2; }
  bash ../shared/tools/device-pack --no-ort $wheels || exit 2
  commit=$(git rev-parse HEAD)
  git diff --quiet HEAD -- pipeline tools tests params.yaml || commit="$commit+dirty"
  echo "$commit" > .carry/data/netpipe-commit.txt
  du -sh .carry/data .carry/wheels
  echo "then: run(command='bash tools/gpu_campaign.sh --budget 500', carry=['.carry/data', '.carry/wheels'], timeout_s=560)"
  exit 0
fi

# the device has no pydantic: install the carried wheels where PYTHONPATH finds them (put first, never replacing it)
site=""
if ! $PY -c "import pydantic" 2>/dev/null; then
  if ls .carry/wheels/*.whl >/dev/null 2>&1; then
    site=/tmp/site
    $PY -m pip install -q --no-index --no-deps --no-compile --upgrade --target $site .carry/wheels/*.whl \
      || { echo "gpu_campaign: installing .carry/wheels failed" >&2; exit 3; }
  else
    echo "gpu_campaign: pydantic is missing and .carry/wheels holds no wheels (run --pack here and carry .carry/wheels)" >&2
    exit 3
  fi
fi
export PYTHONPATH="${site:+$site:}$root${PYTHONPATH:+:$PYTHONPATH}"
exec $PY tools/gpu_campaign.py "$@"
