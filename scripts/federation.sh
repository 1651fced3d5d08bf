#!/usr/bin/env bash
# A local MIMI federation: three providers (a.example, b.example, c.example) on this machine.
#
#   scripts/federation.sh up [DIR]       builds mimi-node and mimi, creates a CA, the three
#                                        providers' certificates, configs and SQLite files under
#                                        DIR, starts them in the background, waits until they
#                                        answer, prints how to use them
#   scripts/federation.sh down [DIR]     stops exactly those processes (their pid files)
#   scripts/federation.sh status [DIR]   which are running, and where
#
# DIR defaults to $MIMI_FED_DIR, else ./federation. Ports: $MIMI_FED_PORT (default 4433) for
# a.example, +1 for b.example, +2 for c.example (UDP, loopback only); their admin listeners on
# TCP +10, +11, +12 (`mimi-lab view --federation DIR`). Binaries: built with cargo
# (debug), or taken from $MIMI_BIN_DIR without building. Every wait is bounded.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-}
dir=${2:-${MIMI_FED_DIR:-$PWD/federation}}
domains=(a.example b.example c.example)
base=${MIMI_FED_PORT:-4433}
target=${CARGO_TARGET_DIR:-$root/target}
case "$target" in /*) ;; *) target="$root/$target" ;; esac
bins=${MIMI_BIN_DIR:-$target/debug}
node_bin="$bins/mimi-node"
mimi_bin="$bins/mimi"

usage() {
    echo "usage: scripts/federation.sh up|down|status [DIR]" >&2
    exit 2
}
[[ -n "$cmd" ]] || usage

port_of() { echo $((base + $1)); }

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

status() {
    local any=0
    for i in 0 1 2; do
        local d=${domains[$i]} pidf="$dir/${domains[$i]}/node.pid"
        if alive "$pidf"; then
            echo "$d: running (pid $(cat "$pidf")) on $(grep -m1 -o 'listening on [^ ]*' "$dir/$d/node.log" | cut -d' ' -f3)"
            any=1
        else
            echo "$d: stopped"
        fi
    done
    [[ $any -eq 1 ]]
}

down() {
    for d in "${domains[@]}"; do
        local pidf="$dir/$d/node.pid"
        if alive "$pidf"; then
            local pid
            pid=$(cat "$pidf")
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 100); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            if kill -0 "$pid" 2>/dev/null; then
                echo "$d did not stop within 10 s; killing it" >&2
                kill -KILL "$pid" 2>/dev/null || true
            fi
            echo "$d: stopped"
        fi
        rm -f "$pidf"
    done
}

up() {
    if [[ -z "${MIMI_BIN_DIR:-}" ]]; then
        echo "building mimi-node and mimi (debug) ..." >&2
        (cd "$root" && cargo build -q -p mimi-node -p mimi-client -p mimi-lab --bins)
    fi
    for b in "$node_bin" "$mimi_bin"; do
        [[ -x "$b" ]] || { echo "error: $b is missing (unset MIMI_BIN_DIR to build it)" >&2; exit 1; }
    done
    mkdir -p "$dir"
    if [[ ! -f "$dir/ca/ca.key" ]]; then
        "$node_bin" ca new --dir "$dir/ca" --name "MIMI local federation" >/dev/null
    fi
    for i in 0 1 2; do
        local d=${domains[$i]}
        if alive "$dir/$d/node.pid"; then
            echo "$d is running already (scripts/federation.sh down $dir to stop it)"
            continue
        fi
        if [[ ! -f "$dir/$d/node.toml" ]]; then
            local peers=()
            for j in 0 1 2; do
                [[ $j -eq $i ]] || peers+=(--peer "${domains[$j]}=127.0.0.1:$(port_of $j)")
            done
            "$node_bin" init --domain "$d" --ca "$dir/ca" --dir "$dir/$d" \
                --listen "127.0.0.1:$(port_of $i)" "${peers[@]}" --open-registration >/dev/null
            # The admin listener (/metrics, /status, /rooms, /events) on TCP base+10+i, for
            # `mimi-lab view --federation DIR`; a top-level key, so before the first table.
            awk -v line="admin_listen = \"127.0.0.1:$((base + 10 + i))\"" \
                '!done && /^\[/ { print line; done = 1 } { print } END { if (!done) print line }' \
                "$dir/$d/node.toml" >"$dir/$d/node.toml.new"
            mv "$dir/$d/node.toml.new" "$dir/$d/node.toml"
        fi
        : >"$dir/$d/node.log"
        RUST_LOG=${RUST_LOG:-info} nohup "$node_bin" run --config "$dir/$d/node.toml" \
            >"$dir/$d/node.log" 2>&1 &
        echo $! >"$dir/$d/node.pid"
    done
    for d in "${domains[@]}"; do
        local ok=0
        for _ in $(seq 1 300); do
            if grep -q "listening on" "$dir/$d/node.log" 2>/dev/null; then
                ok=1
                break
            fi
            if ! alive "$dir/$d/node.pid"; then
                break
            fi
            sleep 0.1
        done
        if [[ $ok -ne 1 ]]; then
            echo "error: $d did not start; its log ($dir/$d/node.log) ends with:" >&2
            tail -n 5 "$dir/$d/node.log" >&2 || true
            echo "(a port in use? set MIMI_FED_PORT to another base port)" >&2
            down >/dev/null
            exit 1
        fi
    done
    status
    cat <<USAGE

The federation is up in $dir. Watch it in a browser:

  $bins/mimi-lab view --federation $dir      # then open http://127.0.0.1:8080/

Try it:

  mimi="$mimi_bin --home $dir/clients"
  \$mimi --profile alice register --node a.example --addr 127.0.0.1:$(port_of 0) --ca $dir/ca/ca.crt --user alice
  \$mimi --profile bob   register --node b.example --addr 127.0.0.1:$(port_of 1) --ca $dir/ca/ca.crt --user bob
  \$mimi --profile alice room create clubhouse --title "Club house"
  \$mimi --profile alice room add clubhouse mimi://b.example/u/bob
  \$mimi --profile bob   send mimi://a.example/r/clubhouse "Hi Alice"
  \$mimi --profile alice history clubhouse

Stop it with: scripts/federation.sh down $dir
USAGE
}

case "$cmd" in
    up) up ;;
    down) down ;;
    status) status || true ;;
    *) usage ;;
esac
