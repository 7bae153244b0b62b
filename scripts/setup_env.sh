#!/usr/bin/env bash
# Make .venv/ at the repo root and install the pinned OpenMMLab stack and pvt_mm into it.
#
# Idempotent: when the stamp written at the end matches the pins and the stack imports,
# it exits in seconds. It rebuilds mmcv when the installed torch is not the one mmcv was
# compiled against. Every step says what it does; a failing step stops the script with
# its reason. Environment: PYTHON (interpreter for the venv, default python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
CONSTRAINTS="$ROOT/requirements/constraints.txt"
STAMP="$VENV/.pvt_mm_setup_stamp"
MMCV_TORCH="$VENV/.mmcv_built_against_torch"

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] FAILED: %s\n' "$*" >&2; exit 1; }
trap 'die "command \"$BASH_COMMAND\" exited with $? (scripts/setup_env.sh line $LINENO)"' ERR

pins_hash() {
  cat "$CONSTRAINTS" "$ROOT/setup.py" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1
}

stack_imports() {
  "$PY" - <<'PY' >/dev/null 2>&1
import torch, torchvision, timm, mmcv, mmengine, mmdet, mmseg, mmpretrain, pycocotools, pvt_mm
import onnx, onnxscript, onnxruntime, openvino, pvt_deploy, xdist
from mmcv.ops import nms
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]])
nms(boxes, torch.tensor([0.9, 0.8]), 0.5)
PY
}

torch_version() { "$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo none; }
# PyPI's torch calls itself e.g. 2.13.0+cu130; the machine's local 2.13.0+cpu breaks torchvision.
torch_ok() { local v; v="$(torch_version)"; [ "${v%%+*}" = "$TORCH_PIN" ] && [ "${v#*+}" != cpu ]; }
pin_of() { sed -n "s/^$1==\(.*\)$/\1/p" "$CONSTRAINTS"; }
TORCH_PIN="$(pin_of torch)"; TV_PIN="$(pin_of torchvision)"

if [ -x "$PY" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(pins_hash)" ] && stack_imports; then
  log "environment in $VENV is up to date ($(torch_version), mmcv $("$PY" -c 'import mmcv; print(mmcv.__version__)'))"
  exit 0
fi

if [ ! -x "$PY" ]; then
  log "creating virtual environment $VENV with ${PYTHON:-python3}"
  "${PYTHON:-python3}" -m venv "$VENV"
fi
PIP=("$PY" -m pip --disable-pip-version-check)

log "installing build tools (setuptools<82 keeps pkg_resources for mmcv's setup.py, wheel, ninja)"
"${PIP[@]}" install -q -c "$CONSTRAINTS" "setuptools>=77,<82" wheel ninja

if ! torch_ok; then
  # A pip config may offer a local CPU-only torch wheel through find-links (2.13.0+cpu sorts
  # above 2.13.0); PyPI's torchvision is built against CUDA torch and dies at import beside
  # it (operator torchvision::nms does not exist), and timm with it. So take the PyPI pair
  # with find-links off.
  log "installing torch==$TORCH_PIN and torchvision==$TV_PIN from PyPI (first time: a few minutes, ~5 GB)"
  PIP_FIND_LINKS= "${PIP[@]}" install --isolated -q "torch==$TORCH_PIN" "torchvision==$TV_PIN"
fi
TORCH_NOW="$(torch_version)"
torch_ok || die "torch is $TORCH_NOW after install, expected the PyPI build of $TORCH_PIN"

mmcv_ok() { "$PY" -c 'import mmcv.ops' >/dev/null 2>&1; }
if ! mmcv_ok || [ "$(cat "$MMCV_TORCH" 2>/dev/null)" != "$TORCH_NOW" ]; then
  MMCV_PIN="$(pin_of mmcv)"
  EXTRA=()
  if [ -f "$MMCV_TORCH" ]; then
    # mmcv was compiled against another torch: do not take pip's cached wheel of it.
    log "torch changed ($(cat "$MMCV_TORCH") -> $TORCH_NOW): rebuilding mmcv"
    EXTRA=(--force-reinstall --no-deps --no-cache-dir)
  fi
  log "installing mmcv==$MMCV_PIN with its compiled ops (first build ~10 min on 2 cores; pip caches the wheel)"
  MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
    "${PIP[@]}" install -c "$CONSTRAINTS" --no-build-isolation "${EXTRA[@]}" "mmcv==$MMCV_PIN"
  if ! mmcv_ok; then
    log "mmcv.ops does not import (a cached wheel built against another torch?): rebuilding without the cache"
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
      "${PIP[@]}" install -c "$CONSTRAINTS" --no-build-isolation --force-reinstall --no-deps --no-cache-dir "mmcv==$MMCV_PIN"
  fi
  mmcv_ok || die "mmcv.ops still does not import after a clean build"
  echo "$TORCH_NOW" > "$MMCV_TORCH"
fi

# pvt_mm's extras 'all' (mmdet, mmsegmentation, mmpretrain, pycocotools, onnx, onnxruntime, openvino,
# tensorboard) and 'tests', under the pins; mmcv is in place already.
log "installing pvt_mm in editable mode with its extras all and tests (setup.py)"
"${PIP[@]}" install -q -c "$CONSTRAINTS" --no-build-isolation -e "$ROOT[all,tests]"

torch_ok || die "something moved torch to $(torch_version); check requirements/constraints.txt"
if ! stack_imports; then
  "$PY" -c 'import torch, torchvision, timm, mmcv.ops, mmdet, mmseg, mmpretrain, pycocotools, pvt_mm, onnx, onnxscript, onnxruntime, openvino, pvt_deploy' || true
  die "the installed stack does not import (see the traceback above)"
fi
pins_hash > "$STAMP"
log "done: $VENV ($(torch_version), mmcv $("$PY" -c 'import mmcv; print(mmcv.__version__)'))"
