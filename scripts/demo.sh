#!/usr/bin/env bash
# The draft's example flow (draft-ietf-mimi-protocol-06 §3) as real `mimi` calls against a
# local federation of three providers, then each user's view of the room.
#
#   scripts/demo.sh [DIR]
#
# Brings the federation up in DIR (default $MIMI_FED_DIR, else ./federation) if it is not
# running (scripts/federation.sh up), and leaves it running. Alice (a.example) creates a room
# on her provider, adds Bob (b.example); Bob adds Cathy (c.example); messages, a reply,
# reactions, an edit, a delete, read receipts; Dave joins by a single-use join link (a second
# user is refused it); Cathy sends a file that Alice downloads and checks; Alice reports Dave's
# spam with its frank; Alice removes Dave, whose view stops; Bob leaves; Cathy adds a second
# device by external commit. Exits non-zero if the users' views of the room disagree, or if
# the link, the file or the removal does not behave.
#
#   scripts/demo.sh --mixed [DIR]
#
# Issue 18 instead: one room whose devices run two MLS libraries (openmls at a.example and
# c.example, mls-rs at b.example and c.example) in the same running federation (`mimi-mixed`):
# messages of every kind, franks, self-updates, a commit race, an own-device add and removal,
# with the epoch authenticator every device agreed on after each step.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mixed=""
if [[ "${1:-}" == "--mixed" ]]; then
    mixed=1
    shift
fi
dir=${1:-${MIMI_FED_DIR:-$PWD/federation}}
base=${MIMI_FED_PORT:-4433}
target=${CARGO_TARGET_DIR:-$root/target}
case "$target" in /*) ;; *) target="$root/$target" ;; esac

if ! "$root/scripts/federation.sh" status "$dir" 2>/dev/null | grep -q "c.example: running"; then
    "$root/scripts/federation.sh" up "$dir" >/dev/null
fi
if [[ -n "$mixed" ]]; then
    (cd "$root" && cargo build -q -p mimi-harness --bin mimi-mixed)
    "$target/debug/mimi-mixed" --ca "$dir/ca/ca.crt" \
        --node "a.example=127.0.0.1:$base" --node "b.example=127.0.0.1:$((base + 1))" \
        --node "c.example=127.0.0.1:$((base + 2))"
    echo "The federation is still running: scripts/federation.sh status $dir; stop it with scripts/federation.sh down $dir"
    exit 0
fi
# Users live on in the providers' databases: a second demo in the same federation uses new
# names (alice2, bob2, ...), the first one the plain names.
runs=$(find "$dir" -maxdepth 1 -name 'clients-*' -type d 2>/dev/null | wc -l)
sfx=""
if [[ $runs -gt 0 ]]; then sfx=$((runs + 1)); fi
alice=alice$sfx bob=bob$sfx cathy=cathy$sfx dave=dave$sfx eve=eve$sfx
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

step "Alice makes a single-use join link; Dave of b.example, whom nobody added, joins with it"
mimi -p dave register --node b.example --addr "127.0.0.1:$((base + 1))" --ca "$dir/ca/ca.crt" --user "$dave" --nick Dave
link=$(mimi -p alice --json room link "$room" --expires 3600 | sed -n 's/.*"link": "\([^"]*\)".*/\1/p')
echo "$link"
mimi -p dave join "$link"
if mimi -p eve register --node c.example --addr "127.0.0.1:$((base + 2))" --ca "$dir/ca/ca.crt" --user "$eve" >/dev/null &&
    mimi -p eve join "$link" 2>/dev/null; then
    echo "error: the single-use link admitted a second user" >&2
    exit 1
fi
echo "(the link is used up: Eve of c.example is refused)"

step "Cathy sends a file (encrypted on her device, uploaded to c.example); Alice downloads it through a.example"
printf 'Minutes of the club house meeting\n1. MIMI works across providers.\n' >"$clients/minutes.txt"
minutes=$(mimi -p cathy --json send "$room" --file "$clients/minutes.txt" "the minutes" | id_of)
mimi -p alice sync >/dev/null
mimi -p alice download "$room" "$minutes" --out "$clients/minutes-alice.txt"
cmp "$clients/minutes.txt" "$clients/minutes-alice.txt"
echo "(the downloaded file is identical; its hash and tag were checked)"

step "Dave posts spam; Alice reports it with the hub's frank, and the hub verifies the frank"
spam=$(mimi -p dave --json send "$room" "BUY CHEAP WATCHES" | id_of)
mimi -p alice sync >/dev/null
mimi -p alice report "$room" "$spam" --reason "spam"

step "Alice removes Dave; from the removing commit on, his view of the room stops"
mimi -p alice room remove "$room" "mimi://b.example/u/$dave"
mimi -p alice send "$room" "Dave is gone"
mimi -p dave sync
if mimi -p dave --json history "$room" | grep -q "Dave is gone"; then
    echo "error: a removed user still gets the room's messages" >&2
    exit 1
fi
echo "(Dave's device holds the commit that removed him and nothing after it)"

step "Bob leaves; Alice commits his removal"
mimi -p bob room leave "$room"
mimi -p alice room commit "$room"

step "Cathy adds a second device (external commit from the hub's GroupInfo)"
mimi -p cathy2 device add --from cathy --device tablet
mimi -p cathy2 send "$room" "Hello from my tablet"

for p in alice bob cathy cathy2 dave; do
    step "$p's view"
    mimi -p "$p" history "$room" || true
done

step "Do the views agree?"
mimi -p alice room info "$room"
mimi -p alice room agree "$room" --with cathy --with cathy2
echo
echo "The federation is still running: scripts/federation.sh status $dir; stop it with scripts/federation.sh down $dir"
echo "The demo's profiles are in $clients (mimi --home $clients --profile alice history $room_name)"
