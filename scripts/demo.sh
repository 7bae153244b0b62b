#!/usr/bin/env bash
# The README's main job: toy data (generated if missing) -> train RetinaNet-PVT-T with
# tools/train.py -> evaluate the checkpoint with tools/test.py (pycocotools COCO mAP) ->
# draw one prediction with tools/demo.py -> plot the training curve. About 3 minutes on 2 CPU
# cores.
# Environment: DATA (default data/toy), WORK_DIR (default work_dirs/toy_demo).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="$ROOT/$([ "${STACK:-upstream}" = onedl ] && echo .venv-onedl || echo .venv)/bin/python"
DATA="${DATA:-data/toy}"
WORK_DIR="${WORK_DIR:-work_dirs/toy_demo}"
CONFIG=configs/toy/retinanet_pvt_t_toy.py

step() { printf '\n[demo] %s\n' "$*"; }

if [ ! -f "$DATA/coco/annotations/instances_val2017.json" ]; then
  step "generating the toy dataset in $DATA"
  "$PY" tools/data/make_toy_data.py --out "$DATA"
fi
step "training RetinaNet + PVT-Tiny on the toy set (tools/train.py, ~2 min on a CPU)"
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" --data-root "$DATA/coco/"
CKPT="$WORK_DIR/$(cat "$WORK_DIR/last_checkpoint" | xargs basename)"
step "evaluating $CKPT (tools/test.py, COCO box mAP)"
"$PY" tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK_DIR" --data-root "$DATA/coco/" \
  | tee "$WORK_DIR/test_output.txt" | grep -E 'bbox_mAP_copypaste|pvt_mm metrics'
IMAGE="$(ls "$DATA"/coco/val2017/*.jpg | head -n 1)"
step "drawing the prediction on $IMAGE (tools/demo.py)"
"$PY" tools/demo.py "$IMAGE" "$CONFIG" "$CKPT" --out "$WORK_DIR/demo_prediction.png"
step "plotting the training curve (tools/analysis/plot_curves.py)"
"$PY" tools/analysis/plot_curves.py "$WORK_DIR" --out "$WORK_DIR/training_curve.png"
step "done: metrics above; picture $WORK_DIR/demo_prediction.png, curve $WORK_DIR/training_curve.png; logs and checkpoints in $WORK_DIR"
