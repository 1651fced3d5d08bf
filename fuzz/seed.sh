#!/usr/bin/env bash
# Seeds the fuzz corpora with the published vectors (one directory per target).
set -euo pipefail
cd "$(dirname "$0")"
python3 - <<'PY'
import json, glob, os
m = {"KeyMaterialRequest": "key_material_request", "KeyMaterialResponse": "key_material_response",
     "HandshakeBundle": "handshake_bundle", "UpdateRoomResponse": "update_room_response",
     "SubmitMessageRequest": "submit_message_request", "SubmitMessageResponse": "submit_message_response",
     "FanoutMessage": "fanout_message", "GroupInfoRequest": "group_info_request",
     "GroupInfoRatchetTreeTBE": "group_info_tbe", "GroupInfoResponse": "group_info_response",
     "ConsentEntry": "consent_entry", "ConsentScope": "consent_scope",
     "IdentifierRequest": "identifier_request", "IdentifierResponse": "identifier_response",
     "AbuseReport": "abuse_report", "ParticipantListData": "participant_list",
     "ParticipantListUpdate": "participant_list_update", "RoomMetaData": "room_metadata"}
for f in sorted(glob.glob("../interop-tests/vectors/protocol/*.json")):
    v = json.load(open(f))
    for target in [m[v["struct"]]] + (["notify_body"] if v["struct"] == "FanoutMessage" else []):
        d = f"corpus/{target}"
        os.makedirs(d, exist_ok=True)
        open(f"{d}/{v['name']}", "wb").write(bytes.fromhex(v["hex"]))
os.makedirs("corpus/mimi_content", exist_ok=True)
for f in sorted(glob.glob("../interop-tests/vectors/content/*.cbor")):
    open("corpus/mimi_content/" + os.path.basename(f), "wb").write(open(f, "rb").read())
PY
echo "corpora in fuzz/corpus/"
