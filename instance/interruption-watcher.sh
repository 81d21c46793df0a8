#!/bin/bash
# spotyard interruption watcher: polls IMDSv2 every 5 s for a Spot interruption notice
# (spot/instance-action) and a rebalance recommendation (events/recommendations/rebalance).
# On each new notice it runs the executables in /etc/spotyard/on-interruption.d/ at once,
# each cut off after SPOTYARD_HOOK_SECONDS so all finish inside the two-minute notice,
# tells logged-in users with wall, and syncs the disks. Without a notice it does nothing.
set -uo pipefail

IMDS=${SPOTYARD_IMDS_ENDPOINT:-http://169.254.169.254}
HOOKS=${SPOTYARD_HOOKS_DIR:-/etc/spotyard/on-interruption.d}
STATE=${SPOTYARD_STATE_DIR:-/run/spotyard}
POLL_SECONDS=${SPOTYARD_POLL_SECONDS:-5}
HOOK_SECONDS=${SPOTYARD_HOOK_SECONDS:-90}
WALL=${SPOTYARD_WALL:-wall}

log() { echo "spotyard-interruption-watcher: $*" >&2; }

token() {
  curl -sf -m 2 -X PUT "${IMDS}/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 300"
}

# Prints the document at $2 and succeeds only when IMDS has one (it answers 404 otherwise).
notice() {
  curl -sf -m 2 -H "X-aws-ec2-metadata-token: $1" "${IMDS}/latest/meta-data/$2"
}

run_hooks() {
  local kind=$1 detail=$2 hook pids=() names=()
  for hook in "${HOOKS}"/*; do
    [ -f "${hook}" ] && [ -x "${hook}" ] || continue
    SPOTYARD_NOTICE="${kind}" SPOTYARD_NOTICE_DETAIL="${detail}" \
      timeout --kill-after=5 "${HOOK_SECONDS}" "${hook}" </dev/null &
    pids+=("$!")
    names+=("${hook}")
  done
  local i status
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}"
    status=$?
    if [ "${status}" -eq 124 ] || [ "${status}" -eq 137 ]; then
      log "hook ${names[$i]} cut off after ${HOOK_SECONDS}s"
    elif [ "${status}" -ne 0 ]; then
      log "hook ${names[$i]} failed with status ${status}"
    fi
  done
}

handle() {
  local kind=$1 detail=$2 seen="${STATE}/$1"
  if [ -f "${seen}" ] && [ "$(cat "${seen}")" = "${detail}" ]; then
    return 0
  fi
  printf '%s' "${detail}" > "${seen}"
  log "${kind} notice: ${detail}"
  if [ "${kind}" = interruption ]; then
    echo "Spot is taking this instance back (${detail}). Save your work now: it stops within two minutes." | "${WALL}"
  else
    echo "Spot capacity for this instance is at risk (rebalance recommendation). Save your work." | "${WALL}"
  fi
  run_hooks "${kind}" "${detail}"
  sync
  log "${kind} hooks done"
}

mkdir -p "${STATE}"
log "watching ${IMDS} every ${POLL_SECONDS}s"
while true; do
  if imds_token=$(token); then
    if detail=$(notice "${imds_token}" spot/instance-action); then
      handle interruption "${detail}"
    fi
    if detail=$(notice "${imds_token}" events/recommendations/rebalance); then
      handle rebalance "${detail}"
    fi
  fi
  sleep "${POLL_SECONDS}"
done
