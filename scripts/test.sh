#!/usr/bin/env bash
# The test command of the README: every test of every crate, on a fresh machine.
# The storage tests run on SQLite always and on PostgreSQL too: this script starts a throwaway
# PostgreSQL server (scripts/pg.sh) when the binaries are on the machine and
# MIMI_TEST_POSTGRES_URL is not already set, and stops it afterwards.
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install the Rust toolchain (rustc 1.95) first" >&2
    exit 1
fi

if [[ -z "${MIMI_TEST_POSTGRES_URL:-}" ]]; then
    if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
        pgdir=$(mktemp -d /tmp/mimi-pg.XXXXXX)
        trap 'scripts/pg.sh stop "$pgdir" || true; rm -rf "$pgdir"' EXIT
        MIMI_TEST_POSTGRES_URL=$(scripts/pg.sh start "$pgdir")
        export MIMI_TEST_POSTGRES_URL
        echo "PostgreSQL for the storage tests: $MIMI_TEST_POSTGRES_URL"
    else
        echo "note: PostgreSQL binaries not found; storage tests run on SQLite only" >&2
        echo "      (apt-get install -y postgresql, or set MIMI_TEST_POSTGRES_URL)" >&2
    fi
fi

cargo test --workspace "$@"
