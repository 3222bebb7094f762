#!/usr/bin/env bash
# The one command that passes the tests on a fresh machine: installs what is needed, then runs
# every Rust test (the eBPF ones load real programs and need root) and the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --workspace --locked --all-targets
cargo test --workspace --locked -- --test-threads=2
if [ -f ui/package.json ]; then
  (cd ui && npm test)
fi
scripts/fuzz-api.sh
