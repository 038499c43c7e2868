#!/usr/bin/env bash
# Import benchmark: `wardline import` of the Synthea sample and of 2,000 generated patients
# through the command and projection services (release processes), beside Postgres COPY of the
# same JSON, in one run. Starts the servers it needs (as ./deploy/dev does), builds in release
# mode, and prints the figures. Arguments go to the benchmark (`--patients 2000`).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
# shellcheck source=/dev/null
eval "$(./deploy/dev env)"
cargo build --release -q --bins -p command-service -p projection-service
cargo build --release -q -p load-tests --bin import-bench
exec "${CARGO_TARGET_DIR:-target}/release/import-bench" --bin-dir "${CARGO_TARGET_DIR:-target}/release" "$@"
