"""The existing target groups a fleet joins, read at preview: their target type (how the
interruption handler names an instance to them) and a warning when their deregistration
delay does not end inside the two-minute Spot notice."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.provider import invoke_options
from spotyard.config import FleetConfig

SPOT_NOTICE_SECONDS = 120


@dataclass(frozen=True)
class TargetGroup:
    arn: str
    target_type: str
    deregistration_delay: int


def read_target_groups(fleet: FleetConfig, provider: aws.Provider) -> list[TargetGroup]:
    groups = []
    for arn in fleet.target_group_arns:
        found = aws.lb.get_target_group(arn=arn, opts=invoke_options(provider))
        group = TargetGroup(arn=arn, target_type=found.target_type or "instance",
                            deregistration_delay=int(found.deregistration_delay or 300))
        if group.deregistration_delay >= SPOT_NOTICE_SECONDS:
            pulumi.log.warn(
                f"spotyard:fleets.{fleet.name}.loadBalancer.targetGroupArns: {found.name} drains connections for "
                f"{group.deregistration_delay}s, longer than the {SPOT_NOTICE_SECONDS}s Spot notice; set its "
                f"deregistration delay below {SPOT_NOTICE_SECONDS}s so draining ends before the instance does")
        groups.append(group)
    return groups
