#!/usr/bin/env bash
# Replay benchmark: a scenario played into a teaching sandbox at 3600x, beside live creates of
# the same resources from one client, in one run. Starts the servers it needs (as ./deploy/dev
# does), builds in release mode. Arguments go to the benchmark (`--events 2000 --seconds 10`).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
# shellcheck source=/dev/null
eval "$(./deploy/dev env)"
cargo build --release -q -p load-tests --bin replay-bench
exec "${CARGO_TARGET_DIR:-target}/release/replay-bench" "$@"
