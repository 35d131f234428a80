#!/usr/bin/env bash
# The `gpu` profile, for real: run the whole course in order under COURSE_PROFILE=gpu from an empty artifacts
# folder and print each notebook's time (goal, docs/design.md: the whole course <= 10 min on one data-centre GPU).
#   make gpu-check                     # on a machine with a CUDA GPU, after `make setup`
#   PY=python3 bash scripts/gpu_check.sh  # where the environment is already there (e.g. a GPU machine's image)
# Outputs stay in the temporary artifacts folder and in artifacts/executed-like copies: the committed notebooks
# are never overwritten (their outputs come from a `cpu` run).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export COURSE_PROFILE=gpu PYTHONUNBUFFERED=1
export COURSE_ARTIFACTS_DIR=${COURSE_ARTIFACTS_DIR:-$(mktemp -d -t course-gpu-XXXX)}
$PY - <<'PYEOF'
import torch
if not torch.cuda.is_available():
    raise SystemExit("gpu-check needs a CUDA GPU: torch.cuda.is_available() is False here")
print(f"GPU: {torch.cuda.get_device_name(0)} · torch {torch.__version__} · CUDA {torch.version.cuda}")
PYEOF
start=$(date +%s)
status=0
$PY -m helpers.course.run_notebooks notebooks "$@" || status=$?
echo "gpu-check: whole course $(( $(date +%s) - start )) s wall (goal: <= 600 s); artifacts in $COURSE_ARTIFACTS_DIR"
exit $status
