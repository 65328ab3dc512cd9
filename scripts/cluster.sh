#!/usr/bin/env bash
# `make cluster`: a local cluster on one machine. Starts redis-server (AOF in a temporary folder),
# two `serve` nodes sharing it and one token secret, and the Textual dashboard on node A.
# Everything stops when the dashboard exits (or on Ctrl-C).
#
#   REDIS_PORT (6390), NODE_A_PORT (8001), NODE_B_PORT (8002) choose the ports;
#   REACTIVE_AIOPS_TOKEN_SECRET is used if set, otherwise one is generated for this run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
REDIS_PORT=${REDIS_PORT:-6390}
A=${NODE_A_PORT:-8001}
B=${NODE_B_PORT:-8002}

if ! command -v redis-server >/dev/null 2>&1; then
    echo "make cluster: redis-server not found; install it (Debian: apt-get install redis-server)" >&2
    exit 2
fi
WORK=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

export REACTIVE_AIOPS_TOKEN_SECRET=${REACTIVE_AIOPS_TOKEN_SECRET:-$($PY -c 'import secrets; print(secrets.token_urlsafe(32))')}
export REACTIVE_AIOPS_API_KEY=${REACTIVE_AIOPS_API_KEY:-$($PY -c 'import secrets; print(secrets.token_urlsafe(24))')}
export REACTIVE_AIOPS_REDIS_URL="redis://127.0.0.1:${REDIS_PORT}/0"

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK" --appendonly yes \
    --save '' --logfile "$WORK/redis.log" &
pids+=($!)
for _ in $(seq 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done

$PY -m reactive_aiops serve --port "$A" >"$WORK/node-a.log" 2>&1 &
pids+=($!)
$PY -m reactive_aiops serve --port "$B" >"$WORK/node-b.log" 2>&1 &
pids+=($!)
sleep 1

export REACTIVE_AIOPS_TOKEN=$($PY -c 'import os, time
from reactive_aiops.server import mint_token
print(mint_token(os.environ["REACTIVE_AIOPS_TOKEN_SECRET"], "operator", exp=time.time() + 8 * 3600,
                 roles=["operator"]))')
echo "cluster: redis 127.0.0.1:$REDIS_PORT, nodes ws://127.0.0.1:$A and ws://127.0.0.1:$B (logs in $WORK)"
$PY -m reactive_aiops dashboard --url "ws://127.0.0.1:$A/connection/websocket" "$@"
