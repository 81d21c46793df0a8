"""Fresh accounts: the Spot service-linked roles a Spot Fleet request needs are made when
missing, never twice, and never deleted by the stack."""

from __future__ import annotations

import boto3
import pytest

from components.spot_service_roles import SPOT_SERVICE_ROLES
from tests.conftest import dev_config

LINKED_ROLE = "aws:iam/serviceLinkedRole:ServiceLinkedRole"


def _have(*roles: str) -> None:
    """The account already has these roles (as `aws iam create-service-linked-role` makes them)."""
    for role in roles:
        boto3.client("iam").create_service_linked_role(AWSServiceName=SPOT_SERVICE_ROLES[role])


def test_fresh_account_gets_both_roles_before_the_request(deploy):
    run = deploy(dev_config())
    made = run.of_type(LINKED_ROLE)
    assert sorted(r.inputs["awsServiceName"] for r in made) == ["spot.amazonaws.com", "spotfleet.amazonaws.com"]
    assert all(r.retain_on_delete for r in made)
    request = run.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request")
    assert {r.urn for r in made} <= set(request.depends_on)


@pytest.mark.parametrize("present", [("AWSServiceRoleForEC2Spot",), tuple(SPOT_SERVICE_ROLES)])
def test_roles_the_account_has_are_left_alone(deploy, aws, present):
    _have(*present)
    names = {boto3.client("iam").get_role(RoleName=role)["Role"]["RoleName"] for role in present}
    assert names == set(present)
    made = deploy(dev_config()).of_type(LINKED_ROLE)
    assert sorted(r.inputs["awsServiceName"] for r in made) == sorted(
        service for role, service in SPOT_SERVICE_ROLES.items() if role not in present
    )


def test_next_deploy_drops_them_from_the_state_only(deploy, aws):
    """Once made, the next `pulumi up` finds the roles and declares them no more: that removal
    deletes nothing because the first declaration was retain_on_delete."""
    first = deploy(dev_config())
    assert first.of_type(LINKED_ROLE) and all(r.retain_on_delete for r in first.of_type(LINKED_ROLE))
    _have(*SPOT_SERVICE_ROLES)
    assert deploy(dev_config(), previous=first).of_type(LINKED_ROLE) == []


def without_batch_jobs(config: dict) -> dict:
    del config["spotyard:jobs"], config["spotyard:batch"]
    return config


def test_asg_only_stack_needs_no_spot_fleet_roles(deploy):
    config = without_batch_jobs(dev_config())
    del config["spotyard:fleets"]["workers"]
    assert deploy(config).of_type(LINKED_ROLE) == []


def test_batch_on_spot_needs_the_spot_role_only_and_waits_for_it(deploy):
    config = dev_config()
    del config["spotyard:fleets"]["workers"]
    run = deploy(config)
    (made,) = run.of_type(LINKED_ROLE)
    assert made.inputs["awsServiceName"] == "spot.amazonaws.com" and made.retain_on_delete
    assert made.urn in run.one("aws:batch/computeEnvironment:ComputeEnvironment", "jobs-compute").depends_on


def test_batch_on_fargate_only_needs_no_spot_role(deploy):
    config = dev_config()
    del config["spotyard:fleets"]["workers"], config["spotyard:batch"]
    config["spotyard:jobs"]["nightly-report"]["fargate"] = True
    assert deploy(config).of_type(LINKED_ROLE) == []
