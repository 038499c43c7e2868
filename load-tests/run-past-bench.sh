#!/usr/bin/env bash
# Benchmark of the record's past and of teaching sandboxes: the ten clinical searches of the
# search benchmark at a position halfway through the tenfold Synthea set (with updates on both
# sides of it) beside the same searches of the present, and sandbox creation, first requests,
# writes and reset on the x1 and x10 sets, in one run. Starts the servers it needs (as
# ./deploy/dev does) unless DATABASE_URL, NATS_URL and REDIS_URL name running ones, builds in
# release mode, and prints the figures.
# Arguments go to the benchmark (`--concurrency 1,16 --seconds 5 --sandboxes 20`).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
if [[ -z ${DATABASE_URL:-} || -z ${NATS_URL:-} || -z ${REDIS_URL:-} ]]; then
    # shellcheck source=/dev/null
    eval "$(./deploy/dev env)"
fi
cargo build --release -q -p load-tests --bin past-bench
exec "${CARGO_TARGET_DIR:-target}/release/past-bench" "$@"
