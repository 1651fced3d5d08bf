#!/usr/bin/env bash
# The standard benchmark set (issue 8): mimi-bench in a release build, results (Markdown
# tables, SVG plots) in DIR (default results/bench). A few minutes on 2 cores after the build.
# PostgreSQL figures too when MIMI_TEST_POSTGRES_URL is set (scripts/pg.sh start <dir> prints one).
#   scripts/bench.sh [DIR] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/bench}
shift || true
cargo build -q --release -p mimi-bench --bin mimi-bench
target=${CARGO_TARGET_DIR:-target}
"$target/release/mimi-bench" --out "$out" "$@"
