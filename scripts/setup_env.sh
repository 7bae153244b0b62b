#!/usr/bin/env bash
# Make a virtual environment at the repo root and install the pinned OpenMMLab stack and pvt_mm
# into it.
#
# STACK picks the OpenMMLab line: upstream (default; OpenMMLab's own mmcv 2.1.0, mmengine
# 0.10.7, mmdet 3.3.0, mmsegmentation 1.2.2, mmpretrain 1.2.0) into .venv/, or onedl (VBTI's
# maintained onedl-* fork, same import names) into .venv-onedl/. Both on the torch pinned in
# requirements/constraints.txt; docs/install.md says why each pin.
#
# Idempotent: when the stamp written at the end matches the pins and the stack imports,
# it exits in seconds. It rebuilds mmcv when the installed torch is not the one mmcv was
# compiled against. Every step says what it does; a failing step stops the script with
# its reason. Environment: STACK, PYTHON (interpreter for the venv, default python3),
# MAX_JOBS (compile jobs for mmcv, default the core count), PVT_MM_WHEELS (where built mmcv
# wheels are kept, default ~/.cache/pvt_mm/wheels).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="${STACK:-upstream}"
case "$STACK" in
  upstream) VENV="$ROOT/.venv"; CONSTRAINTS="$ROOT/requirements/constraints.txt"; MMCV_DIST=mmcv ;;
  onedl) VENV="$ROOT/.venv-onedl"; CONSTRAINTS="$ROOT/requirements/constraints-onedl.txt"
         MMCV_DIST=onedl-mmcv ;;
  *) printf '[setup] FAILED: STACK=%s: choose upstream (default) or onedl\n' "$STACK" >&2; exit 2 ;;
esac
PY="$VENV/bin/python"
STAMP="$VENV/.pvt_mm_setup_stamp"
MMCV_TORCH="$VENV/.mmcv_built_against_torch"
WHEELS="${PVT_MM_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/pvt_mm/wheels}"
# Every pip call below takes the pins as its constraints. PIP_CONSTRAINT replaces a
# constraint file that a machine's pip configuration sets (some cap torch below the pin to
# match a wheel they keep on disk) for these commands only; the configuration is untouched.
export PIP_CONSTRAINT="$CONSTRAINTS"
export PVT_MM_STACK="$STACK"  # setup.py names this line's distributions

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] FAILED: %s\n' "$*" >&2; exit 1; }
trap 'die "command \"$BASH_COMMAND\" exited with $? (scripts/setup_env.sh line $LINENO)"' ERR

pins_hash() {
  cat "$ROOT"/requirements/constraints*.txt "$ROOT/setup.py" "${BASH_SOURCE[0]}" \
    | { cat; echo "$STACK"; } | sha256sum | cut -d' ' -f1
}

stack_imports() {
  "$PY" - <<'PY' >/dev/null 2>&1
import torch, torchvision, timm, mmcv, mmengine, mmdet, mmseg, mmpretrain, pycocotools, pvt_mm
import onnx, onnxscript, onnxruntime, openvino, nncf, pvt_deploy, xdist
from mmcv.ops import nms
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]])
nms(boxes, torch.tensor([0.9, 0.8]), 0.5)
PY
}

torch_version() { "$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo none; }
# PyPI's torch calls itself e.g. 2.13.0+cu130; the machine's local 2.13.0+cpu breaks torchvision.
torch_ok() { local v; v="$(torch_version)"; [ "${v%%+*}" = "$TORCH_PIN" ] && [ "${v#*+}" != cpu ]; }
pin_of() { cat "$ROOT"/requirements/constraints*.txt | sed -n "s/^$1==\(.*\)$/\1/p" | head -1; }
TORCH_PIN="$(pin_of torch)"; TV_PIN="$(pin_of torchvision)"

if [ -x "$PY" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(pins_hash)" ] && stack_imports; then
  log "environment in $VENV ($STACK) is up to date ($(torch_version), mmcv $("$PY" -c 'import mmcv; print(mmcv.__version__)'))"
  exit 0
fi

if [ ! -x "$PY" ]; then
  log "creating virtual environment $VENV with ${PYTHON:-python3}"
  "${PYTHON:-python3}" -m venv "$VENV"
fi
PIP=("$PY" -m pip --disable-pip-version-check)

log "installing build tools (setuptools<82 keeps pkg_resources for mmcv's setup.py, wheel, ninja)"
"${PIP[@]}" install -q "setuptools>=77,<82" wheel ninja "packaging>=24.2"

if ! torch_ok; then
  # A pip config may offer a local CPU-only torch wheel through find-links (2.13.0+cpu sorts
  # above 2.13.0); PyPI's torchvision is built against CUDA torch and dies at import beside
  # it (operator torchvision::nms does not exist), and timm with it. So take the PyPI pair
  # with find-links off.
  log "installing torch==$TORCH_PIN and torchvision==$TV_PIN from PyPI (first time: a few minutes, ~5 GB)"
  PIP_FIND_LINKS= "${PIP[@]}" install -q --no-input "torch==$TORCH_PIN" "torchvision==$TV_PIN"
fi
TORCH_NOW="$(torch_version)"
torch_ok || die "torch is $TORCH_NOW after install, expected the PyPI build of $TORCH_PIN"

mmcv_ok() { "$PY" -c 'import mmcv.ops' >/dev/null 2>&1; }

# mmcv is only a source distribution on PyPI (and onedl-mmcv's wheels stop at torch 2.12): it is
# compiled here with its ops against the installed torch. torch 2.14 and later refuse to compile
# without C++20 ("#error C++20 or later compatible compiler is required to use ATen"), and both
# mmcv 2.1.0's and onedl-mmcv 2.3.6's setup.py hard-code -std=c++17 (the CUDA flags too): the
# one change made to the source is that flag, raised to C++20, for such a torch. The wheel is
# kept per torch version in $WHEELS, so a later set-up with the same torch installs in seconds.
build_mmcv() {
  local pin="$1" torch_now="$2" tag src wheel_dir
  wheel_dir="$WHEELS/$MMCV_DIST-$pin-torch$torch_now-py$("$PY" -c 'import sys; print("%d%d" % sys.version_info[:2])')"
  if compgen -G "$wheel_dir/*.whl" >/dev/null; then
    log "installing $MMCV_DIST==$pin built earlier against torch $torch_now ($wheel_dir)"
  else
    src="$(mktemp -d)"
    log "downloading the $MMCV_DIST==$pin source"
    "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation -d "$src" "$MMCV_DIST==$pin"
    tar -xzf "$src"/*.tar.gz -C "$src"
    tag="$(ls -d "$src"/*/ | head -1)"
    if "$PY" -c 'import sys, torch; v = tuple(map(int, torch.__version__.split("+")[0].split(".")[:2])); sys.exit(v < (2, 14))'; then
      log "torch $torch_now needs C++20: raising $MMCV_DIST's -std=c++17 to -std=c++20 in its setup.py"
      sed -i -e 's/-std=c++17/-std=c++20/g' -e 's#/std:c++17#/std:c++20#g' "$tag/setup.py"
      grep -q -- '-std=c++20' "$tag/setup.py" || die "$MMCV_DIST's setup.py has no -std=c++17 to raise"
    fi
    log "compiling $MMCV_DIST==$pin with its ops against torch $torch_now (10-25 min on 2 cores, once per torch)"
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
      "${PIP[@]}" wheel --no-build-isolation --no-deps -w "$src/wheel" "$tag"
    mkdir -p "$wheel_dir"
    mv "$src"/wheel/*.whl "$wheel_dir/"
    rm -rf "$src"
  fi
  "${PIP[@]}" install -q --force-reinstall --no-deps "$wheel_dir"/*.whl
  "${PIP[@]}" install -q "$(ls "$wheel_dir"/*.whl)"  # its dependencies, under the pins
}

if ! mmcv_ok || [ "$(cat "$MMCV_TORCH" 2>/dev/null)" != "$TORCH_NOW" ]; then
  build_mmcv "$(pin_of "$MMCV_DIST")" "$TORCH_NOW"
  mmcv_ok || die "$MMCV_DIST was built but mmcv.ops does not import (see above)"
  echo "$TORCH_NOW" > "$MMCV_TORCH"
fi

# pvt_mm's extras 'all' (mmdet, mmsegmentation, mmpretrain, pycocotools, onnx, onnxruntime, openvino, nncf,
# tensorboard: the upstream or onedl distributions, as PVT_MM_STACK says) and 'tests', under the
# pins; mmcv is in place already.
log "installing pvt_mm in editable mode with its extras all and tests (setup.py, $STACK line)"
"${PIP[@]}" install -q --no-build-isolation -e "$ROOT[all,tests]"

torch_ok || die "something moved torch to $(torch_version); check requirements/constraints.txt"
if ! stack_imports; then
  "$PY" -c 'import torch, torchvision, timm, mmcv.ops, mmdet, mmseg, mmpretrain, pycocotools, pvt_mm, onnx, onnxscript, onnxruntime, openvino, nncf, pvt_deploy' || true
  die "the installed stack does not import (see the traceback above)"
fi
pins_hash > "$STAMP"
log "done: $VENV ($STACK: $(torch_version), mmcv $("$PY" -c 'import mmcv; print(mmcv.__version__)'))"
