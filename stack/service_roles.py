"""Which of the account's Spot service-linked roles the stack needs and which of those are
missing, read at preview (the SpotServiceRoles component declares those)."""

from __future__ import annotations

import pulumi_aws as aws

from components.spot_service_roles import SERVICE_ROLE_PATH, SPOT_SERVICE_ROLES
from spotyard.config import StackConfig
from stack.provider import invoke_options


def needed_spot_service_roles(config: StackConfig) -> tuple[str, ...]:
    """Both roles for a spot-fleet fleet; AWSServiceRoleForEC2Spot alone for Batch's Spot compute
    environment (Batch user guide, "Create Amazon EC2 spot fleet roles with the AWS CLI": create
    AWSServiceRoleForEC2Spot; its Spot Fleet role is for BEST_FIT only, which spotyard does not use)."""
    if any(fleet.engine == "spot-fleet" for fleet in config.fleets):
        return tuple(SPOT_SERVICE_ROLES)
    if any(job.on_batch and not job.fargate for job in config.jobs):
        return ("AWSServiceRoleForEC2Spot",)
    return ()


def missing_spot_service_roles(provider: aws.Provider, needed: tuple[str, ...]) -> tuple[str, ...]:
    """The `needed` Spot service-linked roles this account does not have yet."""
    if not needed:
        return ()
    present = set(aws.iam.get_roles(path_prefix=SERVICE_ROLE_PATH, opts=invoke_options(provider)).names)
    return tuple(role for role in needed if role not in present)
