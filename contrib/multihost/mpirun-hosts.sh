#!/bin/sh
# Open MPI across hosts, one log for all of them. Run on the host that
# should hold the log (it need not run ranks):
#
#   ./mpirun-hosts.sh -np 16 --host a:8,b:8 ./app args...
#
# The root listens on MESHLOG_PORT (7400); every rank gets the preload
# library and the root's address through mpirun's -x, so the first rank on
# each host starts that host's relay. Ranks on this host register with the
# root directly (it owns the local socket).
set -eu
PORT=${MESHLOG_PORT:-7400}
PREFIX=${MESHLOG_PREFIX:-/usr/local}
TOKEN=${MESHLOG_TOKEN_FILE:-$HOME/.meshlog/token}
HEAD=${HEAD:-$(hostname -f)}

exec "$PREFIX/bin/meshlog-collector" -j "mpi-$(date +%Y%m%d-%H%M%S).jsonl" \
    --listen-tcp "*:$PORT" --token-file "$TOKEN" -- \
    mpirun -x LD_PRELOAD="$PREFIX/lib/meshlog/libmeshlog_preload.so" \
    -x MESHLOG_UPSTREAM="tcp://$HEAD:$PORT" -x MESHLOG_TOKEN_FILE="$TOKEN" \
    "$@"
