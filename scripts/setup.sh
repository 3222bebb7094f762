#!/usr/bin/env bash
# Install what building and testing Causeway needs on a Debian 12 machine (idempotent).
# Runs as root (apt-get). Skips packages that are already installed, so a second run is fast.
set -euo pipefail

need=(clang llvm libelf-dev zlib1g-dev pkg-config libclang-dev make gcc
      runc busybox-static util-linux iproute2 chromium qemu-system-x86 cpio curl
      rsyslog)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found; install Rust 1.95 (rustup) first" >&2
  exit 1
fi

# The web UI is built from its committed lock file (no CDN, no network at run time).
if [ -f ui/package-lock.json ] && command -v npm >/dev/null; then
  (cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
fi
