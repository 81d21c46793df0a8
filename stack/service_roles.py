"""Which of the account's Spot service-linked roles are missing, read at preview (the
SpotServiceRoles component declares those)."""

from __future__ import annotations

import pulumi_aws as aws

from components.spot_service_roles import SERVICE_ROLE_PATH, SPOT_SERVICE_ROLES
from stack.provider import invoke_options


def missing_spot_service_roles(provider: aws.Provider) -> tuple[str, ...]:
    """The Spot service-linked roles this account does not have yet."""
    present = set(aws.iam.get_roles(path_prefix=SERVICE_ROLE_PATH, opts=invoke_options(provider)).names)
    return tuple(role for role in SPOT_SERVICE_ROLES if role not in present)
