#!/usr/bin/env bash
# The one command that runs Causeway on this host, as root: installs what building and
# running needs (not the test tools), builds the UI and the binary, then starts `causeway up`
# (agent + backend + UI on the embedded store). Extra arguments go to `causeway up`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked -p causeway-cli
exec ./target/release/causeway up "$@"
