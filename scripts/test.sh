#!/usr/bin/env bash
# The one command that passes the tests on a fresh machine, as root: installs what is needed,
# checks formatting and lints, then runs every Rust test (the eBPF ones load real programs),
# the browser tests and the API fuzz run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
cargo fmt --all --check
cargo build --workspace --locked --all-targets
cargo clippy --workspace --locked --all-targets -- -D warnings
cargo test --workspace --locked -- --test-threads=2
if [ -f ui/package.json ]; then
  (cd ui && npm test)
fi
scripts/fuzz-api.sh
