#!/usr/bin/env bash
# Notifier benchmark: event-to-client latency, messages delivered, memory and CPU of the
# notifier with 100, 1,000 and 10,000 WebSocket clients while Observations are written at
# 200/s, beside a trivial axum WebSocket broadcaster with the same clients, fan-out and rate,
# in one run. Starts the servers it needs (as ./deploy/dev does), builds the services and the
# benchmark in release mode, and prints the figures. Arguments go to the benchmark
# (`--levels 100,1000,10000 --rate 200 --seconds 20`).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
# shellcheck source=/dev/null
eval "$(./deploy/dev env)"
cargo build --release -q --bins -p command-service -p projection-service -p notifier
cargo build --release -q -p load-tests --bin ws-bench
# Every client holds a socket here and one in the notifier (or the baseline server), which
# inherit this limit: 10,000 clients need more than the usual 1,024 descriptors.
want=32768
hard=$(ulimit -Hn)
if [[ $hard != unlimited ]] && ((hard < want)); then
    want=$hard
fi
ulimit -n "$want"
exec "${CARGO_TARGET_DIR:-target}/release/ws-bench" --bin-dir "${CARGO_TARGET_DIR:-target}/release" "$@"
