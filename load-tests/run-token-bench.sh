#!/usr/bin/env bash
# Token issue benchmark of the identity service: sign-ins through the authorization-code flow
# (production Argon2id parameters), client-credentials grants and refreshes, beside a trivial
# handler, the Argon2id check alone and the client assertion's signing alone, in one run.
# Starts the servers it needs (as ./deploy/dev does), builds in release mode, and prints the
# figures. Arguments go to the benchmark
# (`--concurrency 1,16,64 --sign-in-concurrency 1,4,16 --seconds 8`).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
# shellcheck source=/dev/null
eval "$(./deploy/dev env)"
cargo build --release -q -p load-tests --bin token-bench
exec "${CARGO_TARGET_DIR:-target}/release/token-bench" "$@"
