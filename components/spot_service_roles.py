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

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# Role name -> the service it is linked to (`aws iam create-service-linked-role --aws-service-name`).
SPOT_SERVICE_ROLES = {
    "AWSServiceRoleForEC2SpotFleet": "spotfleet.amazonaws.com",
    "AWSServiceRoleForEC2Spot": "spot.amazonaws.com",
}
SERVICE_ROLE_PATH = "/aws-service-role/"


@dataclass
class SpotServiceRolesArgs:
    missing: list[str]  # role names, keys of SPOT_SERVICE_ROLES


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
