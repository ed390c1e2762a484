#!/usr/bin/env bash
# Rank a paths file with NPROC processes per node on NNODES nodes, launched by torchrun.
# Run this same script on every node with its NODE_RANK (0 .. NNODES-1); MASTER_ADDR is node 0.
# The job folder OUT must be on a file system every node sees (shard files are written there
# and merged by rank 0 at the end). Rerun the same command to resume after a failure.
#
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 scripts/rank_torchrun.sh ckpt.pt paths.txt /shared/job
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 scripts/rank_torchrun.sh ckpt.pt paths.txt /shared/job
#
# Two "nodes" on one machine (what tests/test_rank_job.py::test_two_nodes_by_torchrun_... runs):
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=127.0.0.1 ACCELERATOR=cpu scripts/rank_torchrun.sh ... &
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=127.0.0.1 ACCELERATOR=cpu scripts/rank_torchrun.sh ...
set -euo pipefail
CKPT=${1:?checkpoint}; PATHS=${2:?paths file}; OUT=${3:?job folder}; shift 3
NNODES=${NNODES:-1}; NODE_RANK=${NODE_RANK:-0}; NPROC=${NPROC:-1}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}; MASTER_PORT=${MASTER_PORT:-29511}
ACCELERATOR=${ACCELERATOR:-auto}; TOP_K=${TOP_K:-100}; PY=${PY:-python}
cd "$(dirname "$0")/.."
exec "$PY" -m torch.distributed.run --nnodes "$NNODES" --nproc-per-node "$NPROC" \
    --node-rank "$NODE_RANK" --master-addr "$MASTER_ADDR" --master-port "$MASTER_PORT" \
    scripts/rank.py "$CKPT" --paths "$PATHS" --top-k "$TOP_K" --emotion all --out "$OUT" \
    --devices "$NPROC" --num-nodes "$NNODES" --accelerator "$ACCELERATOR" --no-progress "$@"
