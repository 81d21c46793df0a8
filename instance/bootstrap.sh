# spotyard bootstrap (runs as root, first part of the user data, before the user's script).
# Reads /etc/spotyard/env, written just above by the generated header. Safe to run again.
set -euo pipefail
# shellcheck source=/dev/null
. /etc/spotyard/env

log() { echo "spotyard-bootstrap: $*" | systemd-cat -t spotyard-bootstrap -p info 2>/dev/null || echo "spotyard-bootstrap: $*"; }

imds() {
  local token
  token=$(curl -sf -m 5 -X PUT http://169.254.169.254/latest/api/token \
    -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
  curl -sf -m 5 -H "X-aws-ec2-metadata-token: ${token}" "http://169.254.169.254/latest/meta-data/$1"
}

install_packages() {
  if command -v dnf >/dev/null; then dnf install -y "$@"; elif command -v yum >/dev/null; then yum install -y "$@"
  else apt-get update && apt-get install -y "$@"; fi
}

instance_id=$(imds instance-id)
hostnamectl set-hostname "${SPOTYARD_FLEET}-${instance_id}"
log "instance ${instance_id} of fleet ${SPOTYARD_FLEET} (${SPOTYARD_STACK})"

mount_home() {
  command -v mount.efs >/dev/null || install_packages amazon-efs-utils
  local dns="${SPOTYARD_EFS_ID}.efs.${SPOTYARD_REGION}.amazonaws.com" tries=0
  until getent hosts "${dns}" >/dev/null; do
    tries=$((tries + 1))
    if [ "${tries}" -gt 60 ]; then log "mount target ${dns} never resolved"; return 1; fi
    sleep 5
  done
  install -d -o "${SPOTYARD_HOME_UID}" -g "${SPOTYARD_HOME_GID}" -m 0750 "${SPOTYARD_HOME_PATH}"
  local entry="${SPOTYARD_EFS_ID}:/ ${SPOTYARD_HOME_PATH} efs _netdev,noresvport,tls,iam,accesspoint=${SPOTYARD_EFS_ACCESS_POINT} 0 0"
  grep -qF "${entry}" /etc/fstab || echo "${entry}" >> /etc/fstab
  mountpoint -q "${SPOTYARD_HOME_PATH}" || mount "${SPOTYARD_HOME_PATH}"
  log "home ${SPOTYARD_EFS_ID} mounted at ${SPOTYARD_HOME_PATH}"
}

if [ -n "${SPOTYARD_EFS_ID}" ]; then
  mount_home
fi

# The agent (spotyard-busy) needs boto3; Amazon Linux ships it as a package.
python3 -c 'import boto3' 2>/dev/null || install_packages python3-boto3

install -d -m 0755 /etc/spotyard/on-interruption.d
systemctl daemon-reload
systemctl enable --now spotyard-interruption-watcher.service
log "interruption watcher running"

if [ -n "${SPOTYARD_IDLE_STOP_MINUTES}" ]; then
  systemctl enable --now spotyard-idle-check.timer
  log "idle stop after ${SPOTYARD_IDLE_STOP_MINUTES} minutes"
fi

if [ -n "${SPOTYARD_ECS_CLUSTER}" ]; then
  # shellcheck source=/dev/null
  . /usr/local/lib/spotyard/ecs-agent.sh
fi
