#!/usr/bin/env bash
# Distributed testing: tools/dist_test.sh CONFIG CHECKPOINT GPUS [tools/test.py arguments...]
# NNODES, NODE_RANK, MASTER_ADDR and PORT come from the environment (see dist_launch.sh).
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 CONFIG CHECKPOINT GPUS [tools/test.py arguments...]" >&2
  exit 2
fi
CONFIG=$1 CHECKPOINT=$2 GPUS=$3
shift 3
exec "$(dirname "$0")/dist_launch.sh" test.py "$GPUS" "$CONFIG" "$CHECKPOINT" "$@"
