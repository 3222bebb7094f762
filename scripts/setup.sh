#!/usr/bin/env bash
# Install what building (and, with `test`, testing) Causeway needs on a Debian 12 machine,
# as root (no sudo: a minimal Debian has none). Idempotent: installed packages are skipped.
#   scripts/setup.sh          build and run: the BPF toolchain, the C libraries, the web UI
#   scripts/setup.sh test     also what only the tests need (containers, browser, qemu, ...)
set -euo pipefail
cd "$(dirname "$0")/.."

build=(clang llvm libelf-dev zlib1g-dev pkg-config libclang-dev make gcc)
# Tests only: real containers (runc), the BPF-LSM guest (qemu, cpio, busybox), the browser
# tests (chromium), network namespaces (iproute2), the fuzzers' helpers (curl), the
# syslog export's real receiver (rsyslog).
testing=(runc busybox-static util-linux iproute2 chromium qemu-system-x86 cpio curl rsyslog)

need=("${build[@]}")
if [[ "${1:-}" == "test" ]]; then
  need+=("${testing[@]}")
fi
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: run as root to install ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}"
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found; install Rust 1.95 (rustup) first" >&2
  exit 1
fi

# The web UI is built from its committed lock file (no CDN, no network at run time).
if [ -f ui/package-lock.json ] && command -v npm >/dev/null; then
  (cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
fi

# Tests only: OWASP pytm from PyPI, which loads the threat-model export
# (crates/threatmodel/tests/exports.rs); python3 also runs the loopback topology of
# crates/cli/tests/model_e2e.rs. Installed for root's python3, as the tests run.
if [[ "${1:-}" == "test" ]]; then
  if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 python3 python3-pip
  fi
  if ! python3 -c "import pytm" 2>/dev/null; then
    echo "setup: installing pytm (PyPI)"
    # Debian's python3 refuses system-wide pip installs (PEP 668) unless told.
    python3 -m pip install --quiet pytm || python3 -m pip install --quiet --break-system-packages pytm
  fi
fi
