#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests, in a directory of your choice.
#
#   scripts/pg.sh start <dir>   creates a cluster in <dir>/data (first time), starts it on
#                               127.0.0.1 and a free port (unix socket in <dir>), creates the
#                               database "mimi" and prints its postgres:// URL on stdout.
#                               Started already: prints the same URL again.
#   scripts/pg.sh stop <dir>    stops it (nothing running: does nothing).
#   scripts/pg.sh url <dir>     prints the URL of the running server.
#
# Non-interactive, every wait bounded (60 s). PostgreSQL refuses to run as root, so as root the
# server runs as the "postgres" user (runuser, else su), which must be able to reach <dir>
# (use a directory under /tmp). Server binaries: PostgreSQL 15 in /usr/lib/postgresql/15/bin
# preferred, another version there, or PG_BIN=<dir>; missing, the script says how to install.
set -euo pipefail

usage() {
    echo "usage: scripts/pg.sh start|stop|url <dir>" >&2
    exit 2
}
cmd=${1:-}
dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || usage

bin=${PG_BIN:-}
if [[ -z "$bin" ]]; then
    for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
        if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
            bin="$d"
            break
        fi
    done
fi
if [[ -z "$bin" || ! -x "$bin/initdb" ]]; then
    echo "error: PostgreSQL server binaries not found (looked in /usr/lib/postgresql/*/bin; set PG_BIN to override)." >&2
    echo "install them from Debian's packages with: apt-get update && apt-get install -y postgresql" >&2
    exit 1
fi

# Runs a command line as the database owner.
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        if command -v runuser >/dev/null 2>&1; then
            runuser -u postgres -- bash -c "$1"
        else
            su postgres -s /bin/bash -c "$1"
        fi
    else
        bash -c "$1"
    fi
}

url_of() { echo "postgres://postgres@127.0.0.1:$1/mimi"; }

running() {
    [[ -f "$dir/data/postmaster.pid" ]] && as_pg "'$bin/pg_ctl' -D '$dir/data' status >/dev/null 2>&1"
}

free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
    else
        # No python: a random high port that nothing listens on.
        local p
        for _ in $(seq 1 50); do
            p=$((20000 + RANDOM % 30000))
            if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
                echo "$p"
                return
            fi
        done
        echo "error: no free port found" >&2
        return 1
    fi
}

case "$cmd" in
start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [[ $(id -u) -eq 0 ]]; then chown postgres "$dir"; fi
    if running && [[ -f "$dir/port" ]]; then
        url_of "$(cat "$dir/port")"
        exit 0
    fi
    if [[ ! -f "$dir/data/PG_VERSION" ]]; then
        as_pg "'$bin/initdb' -D '$dir/data' -A trust -U postgres --no-sync -E UTF8 >'$dir/initdb.log' 2>&1" || {
            cat "$dir/initdb.log" >&2
            exit 1
        }
    fi
    port=$(free_port)
    as_pg "'$bin/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w -t 60 \
        -o \"-h 127.0.0.1 -p $port -k '$dir' -c fsync=off -c synchronous_commit=off -c full_page_writes=off\" start >/dev/null" || {
        cat "$dir/server.log" >&2 || true
        exit 1
    }
    echo "$port" >"$dir/port"
    ready=""
    for _ in $(seq 1 120); do
        if as_pg "'$bin/pg_isready' -h 127.0.0.1 -p $port -q"; then
            ready=1
            break
        fi
        sleep 0.5
    done
    if [[ -z "$ready" ]]; then
        echo "error: the server did not become ready within 60 s (log: $dir/server.log)" >&2
        exit 1
    fi
    if ! as_pg "'$bin/psql' -h 127.0.0.1 -p $port -U postgres -d postgres -tAc \"SELECT 1 FROM pg_database WHERE datname = 'mimi'\"" | grep -q 1; then
        as_pg "'$bin/createdb' -h 127.0.0.1 -p $port -U postgres mimi"
    fi
    url_of "$port"
    ;;
stop)
    [[ -d "$dir" ]] || exit 0
    if running; then
        as_pg "'$bin/pg_ctl' -D '$dir/data' -m fast -w -t 60 stop >/dev/null"
    fi
    rm -f "$dir/port"
    ;;
url)
    if running && [[ -f "$dir/port" ]]; then
        url_of "$(cat "$dir/port")"
    else
        echo "error: no server running in $dir" >&2
        exit 1
    fi
    ;;
*)
    usage
    ;;
esac
