"""The existing target groups a fleet joins, read at preview: their target type (how the
interruption handler names an instance to them), an error (asg) or a warning (spot-fleet)
when a group's target type is not `instance`, and a warning when their deregistration delay
does not end inside the two-minute Spot notice."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from spotyard.config import FleetConfig
from stack.provider import invoke_options

SPOT_NOTICE_SECONDS = 120
# An Auto Scaling group attaches only target groups of target type `instance` (Auto Scaling user
# guide, "Prepare to attach an Elastic Load Balancing load balancer": the target type must be
# instance, not ip): anything else fails preview. Spot Fleet "registers the running Spot
# Instances with these target groups" (EC2 API_TargetGroupsConfig), by instance id, which an
# `ip` group refuses ("... is not a valid IPv4 address"); its docs do not say the request itself
# is refused, so a spot-fleet fleet gets a warning (an `ip` group works if something else
# registers the instances' addresses).
INSTANCE_TARGETS = "instance"


@dataclass(frozen=True)
class TargetGroup:
    arn: str
    target_type: str
    deregistration_delay: int


def read_target_groups(fleet: FleetConfig, provider: aws.Provider) -> list[TargetGroup]:
    """The fleet's target groups, or one RunError naming each that its Auto Scaling group cannot attach."""
    key = f"spotyard:fleets.{fleet.name}.loadBalancer.targetGroupArns"
    groups, problems = [], []
    for arn in fleet.target_group_arns:
        found = aws.lb.get_target_group(arn=arn, opts=invoke_options(provider))
        group = TargetGroup(
            arn=arn,
            target_type=found.target_type or INSTANCE_TARGETS,
            deregistration_delay=int(found.deregistration_delay or 300),
        )
        if group.target_type != INSTANCE_TARGETS and fleet.engine == "asg":
            problems.append(
                f"{key}: {found.name} has target type {group.target_type}; an Auto Scaling group "
                f"can only attach target groups of target type {INSTANCE_TARGETS}"
            )
            continue
        if group.target_type != INSTANCE_TARGETS:
            pulumi.log.warn(
                f"{key}: {found.name} has target type {group.target_type}; Spot Fleet registers "
                f"its instances by instance id, which only target groups of target type "
                f"{INSTANCE_TARGETS} take: register the instances' addresses some other way"
            )
        if group.deregistration_delay >= SPOT_NOTICE_SECONDS:
            pulumi.log.warn(
                f"{key}: {found.name} drains connections for "
                f"{group.deregistration_delay}s, longer than the {SPOT_NOTICE_SECONDS}s Spot notice; set its "
                f"deregistration delay below {SPOT_NOTICE_SECONDS}s so draining ends before the instance does"
            )
        groups.append(group)
    if problems:
        raise pulumi.RunError("\n".join(problems))
    return groups
