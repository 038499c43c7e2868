#!/usr/bin/env bash
# Read-by-id benchmark of the query service (cached and uncached) beside a trivial handler and
# a raw SELECT, in one run. Starts the servers it needs (as ./deploy/dev does), builds in
# release mode, and prints the figures.
# Arguments go to the benchmark (`--concurrency 1,16,64 --seconds 8`).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
# shellcheck source=/dev/null
eval "$(./deploy/dev env)"
cargo build --release -q -p load-tests --bin read-bench
exec "${CARGO_TARGET_DIR:-target}/release/read-bench" "$@"
