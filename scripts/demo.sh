#!/usr/bin/env bash
# The draft's example flow (draft-ietf-mimi-protocol-06 §3) as real `mimi` calls against a
# local federation of three providers, then each user's view of the room.
#
#   scripts/demo.sh [DIR]
#
# Brings the federation up in DIR (default $MIMI_FED_DIR, else ./federation) if it is not
# running (scripts/federation.sh up), and leaves it running. Alice (a.example) creates a room
# on her provider, adds Bob (b.example); Bob adds Cathy (c.example); messages, a reply,
# reactions, an edit, a delete, read receipts; Bob leaves; Cathy adds a second device by
# external commit. Exits non-zero if the users' views of the room disagree.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-${MIMI_FED_DIR:-$PWD/federation}}
base=${MIMI_FED_PORT:-4433}
target=${CARGO_TARGET_DIR:-$root/target}
case "$target" in /*) ;; *) target="$root/$target" ;; esac

if ! "$root/scripts/federation.sh" status "$dir" 2>/dev/null | grep -q "c.example: running"; then
    "$root/scripts/federation.sh" up "$dir" >/dev/null
fi
# Users live on in the providers' databases: a second demo in the same federation uses new
# names (alice2, bob2, ...), the first one the plain names.
runs=$(find "$dir" -maxdepth 1 -name 'clients-*' -type d 2>/dev/null | wc -l)
sfx=""
if [[ $runs -gt 0 ]]; then sfx=$((runs + 1)); fi
alice=alice$sfx bob=bob$sfx cathy=cathy$sfx
clients="$dir/clients-$(date +%s)-$$"
room_name="clubhouse$$"
room="mimi://a.example/r/$room_name"

mimi() { "${MIMI_BIN_DIR:-$target/debug}/mimi" --home "$clients" "$@"; }
step() { printf '\n\033[1m▸ %s\033[0m\n' "$*"; }
id_of() { sed -n 's/.*"id": "\([0-9a-f]*\)".*/\1/p' | head -n1; }

step "Alice, Bob and Cathy register on their own providers"
mimi -p alice register --node a.example --addr "127.0.0.1:$base" --ca "$dir/ca/ca.crt" --user "$alice" --nick Alice
mimi -p bob register --node b.example --addr "127.0.0.1:$((base + 1))" --ca "$dir/ca/ca.crt" --user "$bob" --nick Bob
mimi -p cathy register --node c.example --addr "127.0.0.1:$((base + 2))" --ca "$dir/ca/ca.crt" --user "$cathy" --nick Cathy

step "Alice creates a room on a.example (its hub) and adds Bob of b.example"
mimi -p alice room create "$room_name" --title "Club house"
mimi -p alice room add "$room" "mimi://b.example/u/$bob"

step "Bob syncs (his Welcome came from the hub through b.example) and adds Cathy of c.example"
mimi -p bob sync
mimi -p bob room add "$room" "mimi://c.example/u/$cathy"
mimi -p cathy sync

step "Messages, a reply, reactions, an edit, a delete, read receipts"
hello=$(mimi -p alice --json send "$room" "Hi Bob and Cathy!" | id_of)
mimi -p bob reply "$room" "$hello" "Hi Alice, hi Cathy"
mimi -p cathy react "$room" "$hello" "👍"
mimi -p bob react "$room" "$hello" "❤"
mimi -p alice edit "$room" "$hello" "Hi Bob and Cathy! Welcome to the club house."
oops=$(mimi -p cathy --json send "$room" "this was a mistake" | id_of)
mimi -p cathy delete "$room" "$oops"
mimi -p bob read "$room"
mimi -p cathy read "$room"

step "Bob leaves; Alice commits his removal"
mimi -p bob room leave "$room"
mimi -p alice room commit "$room"

step "Cathy adds a second device (external commit from the hub's GroupInfo)"
mimi -p cathy2 device add --from cathy --device tablet
mimi -p cathy2 send "$room" "Hello from my tablet"

for p in alice bob cathy cathy2; do
    step "$p's view"
    mimi -p "$p" history "$room" || true
done

step "Do the views agree?"
mimi -p alice room info "$room"
mimi -p alice room agree "$room" --with cathy --with cathy2
echo
echo "The federation is still running: scripts/federation.sh status $dir; stop it with scripts/federation.sh down $dir"
echo "The demo's profiles are in $clients (mimi --home $clients --profile alice history $room_name)"
