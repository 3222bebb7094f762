#!/usr/bin/env bash
# OpenAPI fuzz run: schemathesis (PyPI) drives the served document of a real `causeway server`
# over a store filled from the fixtures recorded by the real agent (tests/fixtures), and must
# find no 5xx.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v st >/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check schemathesis
fi
st=$(command -v st || echo "$(python3 -m site --user-base)/bin/st")
bin=target/debug/causeway
data=$(mktemp -d)
trap 'kill "$srv" 2>/dev/null || true; rm -rf "$data"' EXIT
gzip -dc tests/fixtures/build.jsonl.gz > "$data/build.jsonl"
"$bin" ingest --data-dir "$data" tests/fixtures/revshell.jsonl tests/fixtures/dropper.jsonl \
  "$data/build.jsonl" tests/fixtures/xss.jsonl
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" server --data-dir "$data" --listen "127.0.0.1:$port" &
srv=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/api/v1/health" >/dev/null && break
  sleep 0.2
done
"$st" run "http://127.0.0.1:$port/api/v1/openapi.json" --checks not_a_server_error \
  --max-examples 50 --exclude-path /api/v1/stream --seed 1
