#!/bin/sh
# A small mesh for the README: four ranks started the way a launcher does
# (RANK/LOCAL_RANK/WORLD_SIZE in the environment), each a Python process
# that prints, logs, writes to stderr and runs a C program using printf.
# Run it under the collector:  meshlog-collector -j demo.jsonl -- demo.sh
here=$(dirname "$0")
: "${DEMO_PRINTF:=$here/demo-printf}"
export DEMO_PRINTF
for r in 0 1 2 3; do
	RANK=$r LOCAL_RANK=$r WORLD_SIZE=4 python3 "$here/rank.py" &
done
wait
echo "demo: all 4 ranks finished"
