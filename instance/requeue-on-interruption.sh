#!/bin/bash
# spotyard interruption hook (run by the interruption watcher): on a Spot interruption notice,
# the queue messages this instance's jobs hold (spotyard-busy --receipt-handle) are made visible
# again at once, so another worker starts them within seconds. A rebalance recommendation is
# only a risk: the jobs keep their messages.
set -euo pipefail
[ "${SPOTYARD_NOTICE:-}" = interruption ] || exit 0
exec python3 "${SPOTYARD_AGENT:-/usr/local/lib/spotyard/spotyard_agent.py}" requeue
