#!/usr/bin/env bash
# Create benchmark: FHIR creates beside a trivial axum handler and a raw INSERT, in one run.
# Starts the servers it needs (as ./deploy/dev does), builds in release mode, and prints the
# table and the ratios. Arguments go to the benchmark (`--seconds 10 --concurrency 1,16,64`).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
# shellcheck source=/dev/null
eval "$(./deploy/dev env)"
cargo build --release -q -p load-tests --bin create-bench
exec "${CARGO_TARGET_DIR:-target}/release/create-bench" "$@"
