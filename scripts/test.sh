#!/usr/bin/env bash
# The test command of the README: every test of every crate, on a fresh machine.
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install the Rust toolchain (rustc 1.95) first" >&2
    exit 1
fi

cargo test --workspace "$@"
