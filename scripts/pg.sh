#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests, in a directory of your choice.
#   scripts/pg.sh start <dir>   creates a cluster there (first time), starts it on 127.0.0.1 and
#                               a free port, creates the database "mimi", prints its postgres:// URL
#   scripts/pg.sh stop <dir>    stops it
# PostgreSQL refuses to run as root, so as root the server runs as the "postgres" user.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [[ -z "$cmd" || -z "$dir" ]]; then
    echo "usage: scripts/pg.sh start|stop <dir>" >&2
    exit 2
fi

bin=""
for d in /usr/lib/postgresql/*/bin; do
    [[ -x "$d/initdb" ]] && bin="$d"
done
if [[ -z "$bin" ]]; then
    echo "error: PostgreSQL server binaries not found (looked in /usr/lib/postgresql/*/bin)." >&2
    echo "install them with: apt-get install -y postgresql" >&2
    exit 1
fi

as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        su postgres -s /bin/bash -c "$*"
    else
        bash -c "$*"
    fi
}

case "$cmd" in
start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [[ $(id -u) -eq 0 ]]; then chown postgres "$dir"; fi
    if [[ ! -f "$dir/data/PG_VERSION" ]]; then
        as_pg "'$bin/initdb' -D '$dir/data' -A trust -U postgres --no-sync >'$dir/initdb.log' 2>&1" || {
            cat "$dir/initdb.log" >&2
            exit 1
        }
    fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_pg "'$bin/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w -t 60 -o \"-h 127.0.0.1 -p $port -k '$dir' -c fsync=off\" start >/dev/null" || {
        cat "$dir/server.log" >&2
        exit 1
    }
    for _ in $(seq 1 60); do
        if as_pg "'$bin/pg_isready' -h 127.0.0.1 -p $port -q"; then break; fi
        sleep 0.5
    done
    as_pg "'$bin/createdb' -h 127.0.0.1 -p $port -U postgres mimi" 2>/dev/null || true
    echo "postgres://postgres@127.0.0.1:$port/mimi"
    ;;
stop)
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        as_pg "'$bin/pg_ctl' -D '$dir/data' -m fast -w -t 60 stop >/dev/null" || true
    fi
    ;;
*)
    echo "usage: scripts/pg.sh start|stop <dir>" >&2
    exit 2
    ;;
esac
