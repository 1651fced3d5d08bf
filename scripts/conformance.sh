#!/usr/bin/env bash
# Runs mimi-conformance against a mimi-node started for the purpose, as hub and as follower,
# and writes the report (human on stdout, JSON and JUnit XML in DIR).
#
#   scripts/conformance.sh [DIR]          DIR defaults to ./results/conformance
#
# To test another implementation, run the runner yourself (see the README):
#   target/debug/mimi-conformance --target <domain>=<host:port> --ca-dir <CA it trusts> \
#       --as conformance.example --listen <addr it can reach> [--role hub|follower|both]
# Ports: $MIMI_CONF_PORT (default 4600) for the node, +1 for the runner.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$PWD/results/conformance}
port=${MIMI_CONF_PORT:-4600}
target=${CARGO_TARGET_DIR:-$root/target}
case "$target" in /*) ;; *) target="$root/$target" ;; esac
bins=${MIMI_BIN_DIR:-$target/debug}
if [[ -z "${MIMI_BIN_DIR:-}" ]]; then
    (cd "$root" && cargo build -q -p mimi-node -p mimi-conformance --bins)
fi
work=$(mktemp -d /tmp/mimi-conformance.XXXXXX)
trap 'kill "$node_pid" 2>/dev/null || true; wait "$node_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$out"
"$bins/mimi-node" ca new --dir "$work/ca" >/dev/null
"$bins/mimi-node" init --domain a.example --ca "$work/ca" --dir "$work/a" \
    --listen "127.0.0.1:$port" --peer "conformance.example=127.0.0.1:$((port + 1))" \
    --open-registration >/dev/null
"$bins/mimi-node" run --config "$work/a/node.toml" >"$work/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 1 300); do
    grep -q "listening on" "$work/node.log" && break
    kill -0 "$node_pid" 2>/dev/null || { cat "$work/node.log" >&2; exit 1; }
    sleep 0.1
done
"$bins/mimi-conformance" --target "a.example=127.0.0.1:$port" --ca-dir "$work/ca" \
    --as conformance.example --listen "127.0.0.1:$((port + 1))" --role both \
    --work-dir "$work/runner" --json "$out/report.json" --junit "$out/junit.xml"
