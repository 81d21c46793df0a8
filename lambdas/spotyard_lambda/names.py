"""The names the stack, its Lambdas, the CLI and the instance agent agree on: tag names,
the formats of the names spotyard gives things, the hosted-zone ARN, the defaults several
of them restate, and the IAM condition that scopes a statement by tags.

Stdlib only: the Lambdas carry this package in their bundle, the components and the CLI
import it as `spotyard_lambda.names`. The instance agent keeps a copy of the few it needs
(instance/), which tests/test_names.py proves equal to these.
"""

from __future__ import annotations

import re
from typing import Any

# Tags on the stack's resources (spec section 3).
STACK_TAG = "spotyard:stack"  # `<project>/<stack>`, on every resource
FLEET_TAG = "spotyard:fleet"  # the fleet's name, on its group / request, instances and volumes
# Set by the interruption handler: the instance is going, whatever its state says.
INTERRUPTED_TAG = "spotyard:interrupted"
DRAINED_TAG = "spotyard:drained"
DRAIN_LEFT_TAG = "spotyard:drain-left"  # the drain steps a retry still has to do
REBALANCE_NOTIFIED_TAG = "spotyard:rebalance-notified"
# Set by the agent on a spot-fleet worker running a job; the queue autoscaler spares it.
BUSY_TAG = "spotyard:busy"
# On the AMIs the image keeper saves, and on the instance while its lifecycle hook waits.
SOURCE_INSTANCE_TAG = "spotyard:source-instance"
LIFECYCLE_HOOK_TAG = "spotyard:lifecycle-hook"
LIFECYCLE_GROUP_TAG = "spotyard:lifecycle-group"
LIFECYCLE_TOKEN_TAG = "spotyard:lifecycle-token"
# On the fleet's group / request, for the CLI: its zone, its image role, its ssh settings.
DNS_ZONE_TAG = "spotyard:dns-zone"
IMAGE_ROLE_TAG = "spotyard:image-role"
SSH_TAG_PREFIX = "spotyard:ssh-"
# On the stack's ECS services (spotyard:services), for the CLI: the service's name in the
# configuration, and the host names the proxy routes to it (comma-separated).
SERVICE_TAG = "spotyard:service"
SERVICE_HOSTS_TAG = "spotyard:host-names"
PROXY_SERVICE = "proxy"  # SERVICE_TAG of the TLS proxy in front of them (not a user service name)

# Defaults of the stack's configuration that other parts of the stack would otherwise restate.
DEFAULT_TTL_SECONDS = 60  # dns.ttl
DEFAULT_MESSAGES_PER_INSTANCE = 10  # queue.messagesPerInstance
DEFAULT_SERVICE_CPU_UNITS = 128  # services.<name>.cpu (the least ECS takes on EC2)
DEFAULT_SERVICE_MEMORY_MIB = 128  # services.<name>.memoryMiB
DEFAULT_SERVICE_DESIRED_COUNT = 1  # services.<name>.desiredCount


def stack_tag_value(project: str, stack: str) -> str:
    """The `spotyard:stack` tag of everything a stack owns: `<project>/<stack>`."""
    return f"{project}/{stack}"


def instance_name(fleet: str, instance_id: str) -> str:
    """An instance's own name: its hostname and its DNS name in the stack's zone."""
    return f"{fleet}-{instance_id}"


# `instance_name` read back: `<fleet>-i-0abc` (instance ids never contain `-i-`; fleet names may).
INSTANCE_NAME = re.compile(r"(?P<fleet>.+)-(?P<instance>i-[0-9a-f]{8,17})")


def hosted_zone_arn(partition: str, zone_id: str) -> str:
    """A Route 53 hosted zone's ARN (global: no region, no account)."""
    return f"arn:{partition}:route53:::hostedzone/{zone_id}"


def fleet_parameter(project: str, stack: str, fleet: str, leaf: str) -> str:
    """The SSM parameter `/<project>/<stack>/<fleet>/<leaf>` of a fleet: AMI_PARAMETER holds
    its AMI, AUTOSCALER_PARAMETER its autoscaler's state."""
    return f"/{stack_tag_value(project, stack)}/{fleet}/{leaf}"


AMI_PARAMETER = "ami"
AUTOSCALER_PARAMETER = "autoscaler"


def tag_condition(tags: dict[str, Any], service: str = "ec2") -> dict[str, Any]:
    """An IAM condition: the resource carries each of `tags` (`<service>:ResourceTag/<key>`);
    values may be Pulumi outputs."""
    return {"StringEquals": {f"{service}:ResourceTag/{key}": value for key, value in tags.items()}}
