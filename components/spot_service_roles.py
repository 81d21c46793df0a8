"""SpotServiceRoles: the account's service-linked roles that a Spot Fleet request (or Batch's Spot
compute environment) needs, made when the account lacks them.

"If you use the AWS CLI or an API [to create a Spot Fleet], you must ensure that these roles
exist": AWSServiceRoleForEC2SpotFleet and AWSServiceRoleForEC2Spot (EC2 user guide, "Spot Fleet
permissions"; the console makes them on first use). The stack's own fleet role is the third role
that page names (the tagging role), not one of these. They belong to the account, not the stack:
read at preview, declared only while missing, and declared `retain_on_delete`, so that the next
`pulumi up` (which finds them and no longer declares them) or `pulumi destroy` only drops them
from the state and never deletes a role other stacks rely on.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.provider import invoke_options
from spotyard.config import StackConfig

# Role name -> the service it is linked to (`aws iam create-service-linked-role --aws-service-name`).
SPOT_SERVICE_ROLES = {
    "AWSServiceRoleForEC2SpotFleet": "spotfleet.amazonaws.com",
    "AWSServiceRoleForEC2Spot": "spot.amazonaws.com",
}
SERVICE_ROLE_PATH = "/aws-service-role/"


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


@dataclass
class SpotServiceRolesArgs:
    missing: tuple[str, ...]


class SpotServiceRoles(pulumi.ComponentResource):
    roles: list[aws.iam.ServiceLinkedRole]

    def __init__(self, name: str, args: SpotServiceRolesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotyard:index:SpotServiceRoles", name, None, opts)
        self.roles = [
            aws.iam.ServiceLinkedRole(
                f"{name}-{SPOT_SERVICE_ROLES[role].split('.')[0]}",
                aws_service_name=SPOT_SERVICE_ROLES[role],
                description="made by spotyard for Spot Fleet requests; kept on destroy (the account's)",
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            )
            for role in args.missing
        ]
        self.register_outputs({})
