#!/bin/sh
# torchrun on several nodes, one log for all of them.
#
# On the head node (also node 0):   HEAD=$(hostname) ./torchrun-multinode.sh 0
# On every other node:              HEAD=head-host  ./torchrun-multinode.sh 1
#
# NNODES, NPROC (per node) and SCRIPT may be set; the rest of the
# arguments go to the training script.
set -eu
NODE_RANK=${1:?node rank}
shift
: "${HEAD:?set HEAD to the head node's address}"
NNODES=${NNODES:-2}
NPROC=${NPROC:-4}
SCRIPT=${SCRIPT:-train.py}
PORT=${MESHLOG_PORT:-7400}
PREFIX=${MESHLOG_PREFIX:-/usr/local}
TOKEN=${MESHLOG_TOKEN_FILE:-$HOME/.meshlog/token}

export MESHLOG_TOKEN_FILE="$TOKEN"
export LD_PRELOAD="$PREFIX/lib/meshlog/libmeshlog_preload.so"

if [ "$NODE_RANK" = 0 ]; then
	# The root: console view and JSON log of every node. It runs torchrun
	# itself, so it exits with torchrun's status after a final flush that
	# waits for the other nodes' relays.
	unset LD_PRELOAD
	exec "$PREFIX/bin/meshlog-collector" -j "run-$(date +%Y%m%d-%H%M%S).jsonl" \
	    --listen-tcp "*:$PORT" --token-file "$TOKEN" -- \
	    torchrun --nnodes "$NNODES" --nproc_per_node "$NPROC" \
	    --node_rank 0 --rdzv_backend c10d --rdzv_endpoint "$HEAD:29400" \
	    "$SCRIPT" "$@"
fi
# Other nodes: the first process to start (torchrun itself) starts this
# node's relay; every rank it spawns registers with it.
export MESHLOG_UPSTREAM="tcp://$HEAD:$PORT"
exec torchrun --nnodes "$NNODES" --nproc_per_node "$NPROC" \
    --node_rank "$NODE_RANK" --rdzv_backend c10d \
    --rdzv_endpoint "$HEAD:29400" "$SCRIPT" "$@"
