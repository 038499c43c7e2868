#!/usr/bin/env bash
# Projection benchmark: events indexed per second over the Synthea set beside the command
# service's own write rates, and projection lag at fixed write rates, in one run. Starts the
# servers it needs (as ./deploy/dev does), builds in release mode, and prints the figures.
# Arguments go to the benchmark (`--rates 200,500 --seconds 10`).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
# shellcheck source=/dev/null
eval "$(./deploy/dev env)"
cargo build --release -q -p load-tests --bin projection-bench
exec "${CARGO_TARGET_DIR:-target}/release/projection-bench" "$@"
