#!/usr/bin/env bash
# torchrun for pvt_mm's tools: tools/dist_launch.sh SCRIPT NPROC [script arguments...]
# Used by dist_train.sh and dist_test.sh. NNODES, NODE_RANK, MASTER_ADDR and PORT come from
# the environment; PORT defaults to a free port picked at start, so two jobs on one machine
# do not collide. Without a GPU the processes run on the CPU with the gloo backend.
set -euo pipefail
SCRIPT=$1
NPROC=$2
shift 2
DIR="$(cd "$(dirname "$0")" && pwd)"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x "$DIR/../.venv/bin/python" ]; then PY="$DIR/../.venv/bin/python"; else PY=python; fi
fi
PORT=${PORT:-$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')}
exec "$PY" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
  --nproc_per_node="$NPROC" --master_port="$PORT" \
  "$DIR/$SCRIPT" "$@" --launcher pytorch
