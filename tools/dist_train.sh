#!/usr/bin/env bash
# Distributed training: tools/dist_train.sh CONFIG GPUS [tools/train.py arguments...]
# NNODES, NODE_RANK, MASTER_ADDR and PORT come from the environment (see dist_launch.sh).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 CONFIG GPUS [tools/train.py arguments...]" >&2
  exit 2
fi
CONFIG=$1 GPUS=$2
shift 2
exec "$(dirname "$0")/dist_launch.sh" train.py "$GPUS" "$CONFIG" "$@"
