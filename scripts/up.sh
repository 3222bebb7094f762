#!/usr/bin/env bash
# The one command that runs Causeway on this host: installs what is needed, builds the UI and
# the binary, then starts `causeway up` (agent + backend + UI on the embedded store).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked -p causeway-cli
exec ./target/release/causeway up "$@"
