#!/usr/bin/env bash
# A longer run of the resilience suite's load case (issue 7, case 9) than CI's:
# 40 rooms x 3 providers x 15 members, 3 senders x 100 messages per room (12,000 messages),
# on SQLite (and PostgreSQL for the cases that take it, when MIMI_TEST_POSTGRES_URL is set).
# Not timed yet on this machine (expect several minutes on 2 cores, plus a release build). Override with MIMI_LOAD_ROOMS, MIMI_LOAD_MEMBERS, MIMI_LOAD_MESSAGES.
set -euo pipefail
cd "$(dirname "$0")/.."
export MIMI_LOAD_ROOMS=${MIMI_LOAD_ROOMS:-40}
export MIMI_LOAD_MEMBERS=${MIMI_LOAD_MEMBERS:-15}
export MIMI_LOAD_MESSAGES=${MIMI_LOAD_MESSAGES:-100}
echo "load: $MIMI_LOAD_ROOMS rooms x 3 providers x $MIMI_LOAD_MEMBERS members, $MIMI_LOAD_MESSAGES messages per sender"
time cargo test --release -p mimi-interop --test it -- case9 case1 --nocapture
