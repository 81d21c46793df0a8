#!/bin/bash
# spotyard-imds-block: keep containers in the bridge network mode off the instance metadata
# service, so they cannot borrow the instance role (services fleets run IMDS with hop limit 2);
# they get their task role from the ECS agent instead. Run by spotyard-imds-block.service
# before Docker at every boot: an iptables rule does not survive a reboot by itself.
#
# ECS developer guide, "Amazon ECS task IAM role" (additional configuration for EC2):
#   iptables --insert DOCKER-USER 1 --in-interface docker+ --destination 169.254.169.254/32 --jump DROP
# DOCKER-USER, not FORWARD: Docker jumps to DOCKER-USER first and never changes its rules, while it
# inserts its own ACCEPT rules at the top of FORWARD (moby libnetwork, firewall_linux.go). Docker
# keeps a DOCKER-USER chain that exists before it starts, so the chain is created here if missing.
set -euo pipefail
rule=(--in-interface docker+ --destination 169.254.169.254/32 --jump DROP)
iptables --new-chain DOCKER-USER 2>/dev/null || true
if ! iptables --check DOCKER-USER "${rule[@]}" 2>/dev/null; then
  iptables --insert DOCKER-USER 1 "${rule[@]}"
fi
