"""A routine `pulumi up` replaces nothing that holds work or data (issue #10, section 1).

Each test deploys a stack whose two fleets (one `asg`, one `spot-fleet`) have every stateful
piece, makes one routine change, deploys again as an update of the first deployment, and
compares, for every stateful resource, the inputs the provider treats as force-new: none may
change, and no URN may change (a new URN is a delete and a create too). Values that differ
only because the mocks mint new ids each run are translated (tests/harness/redeploy.py)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from tests.conftest import dev_config
from tests.harness.redeploy import renames_between

PROVIDER = "terraform-provider-aws internal/service"
# Inputs whose change makes the provider replace the resource (`ForceNew: true` in the schema, the
# registry's "Forces new resource"), by type. Types that a force-new input of another one quotes
# (the request's template id and fleet role ARN, the access point's file system id) are listed
# too: replacing them would change that input.
FORCE_NEW: dict[str, tuple[tuple[str, ...], str]] = {
    "aws:ec2/spotFleetRequest:SpotFleetRequest": (
        (
            "allocationStrategy",
            "context",
            "fleetType",
            "iamFleetRole",
            "instanceInterruptionBehaviour",
            "instancePoolsToUseCount",
            "launchSpecifications",
            "launchTemplateConfigs",
            "loadBalancers",
            "onDemandAllocationStrategy",
            "onDemandMaxTotalPrice",
            "replaceUnhealthyInstances",
            "spotPrice",
            "targetCapacityUnitType",
            "targetGroupArns",
            "terminateInstancesWithExpiration",
            "validFrom",
            "validUntil",
        ),
        f"{PROVIDER}/ec2/ec2_spot_fleet_request.go (Update modifies capacities only)",
    ),
    "aws:autoscaling/group:Group": (
        ("name", "namePrefix", "initialLifecycleHooks"),
        f"{PROVIDER}/autoscaling/group.go",
    ),
    "aws:efs/fileSystem:FileSystem": (
        ("availabilityZoneName", "creationToken", "encrypted", "kmsKeyId", "performanceMode"),
        f"{PROVIDER}/efs/file_system.go",
    ),
    "aws:efs/accessPoint:AccessPoint": (
        ("fileSystemId", "posixUser", "rootDirectory"),
        f"{PROVIDER}/efs/access_point.go",
    ),
    "aws:route53/zone:Zone": (("name", "delegationSetId"), f"{PROVIDER}/route53/zone.go"),
    "aws:s3/bucket:Bucket": (("bucket", "bucketPrefix", "objectLockEnabled"), f"{PROVIDER}/s3/bucket.go"),
    "aws:sqs/queue:Queue": (("name", "namePrefix", "fifoQueue"), f"{PROVIDER}/sqs/queue.go"),
    "aws:kms/key:Key": (
        ("customerMasterKeySpec", "keyUsage", "multiRegion", "customKeyStoreId", "xksKeyId"),
        f"{PROVIDER}/kms/key.go",
    ),
    "aws:ssm/parameter:Parameter": (("name", "dataType"), f"{PROVIDER}/ssm/parameter.go"),
    "aws:ec2/launchTemplate:LaunchTemplate": (("name", "namePrefix"), f"{PROVIDER}/ec2/ec2_launch_template.go"),
    "aws:iam/role:Role": (("name", "namePrefix", "path"), f"{PROVIDER}/iam/role.go"),
}
ENGINES = {"workbench": "asg", "workers": "spot-fleet"}


@pytest.fixture
def stateful_config(aws) -> dict[str, Any]:
    """Both fleets with a home, a results bucket, a job queue and a role-tagged AMI; DNS, and
    notifications (the KMS key)."""
    config = dev_config()
    assert config["spotyard:dns"] and "spotyard:notifications" in config
    for name, fleet in config["spotyard:fleets"].items():
        assert fleet["engine"] == ENGINES[name]
        aws.own_ami(f"{name}-v1", tags={"Role": name}, age_days=2)
        fleet["image"] = {"roleTag": name}
        fleet.setdefault("home", {"retainOnDestroy": True})
        fleet.setdefault("results", {"bucket": "create"})
        fleet.setdefault("queue", {"messagesPerInstance": 10})
    return config


def new_ami(config: dict, aws) -> dict:
    for name in config["spotyard:fleets"]:
        aws.own_ami(f"{name}-v2", tags={"Role": name}, age_days=1)
    return config


def new_user_data(config: dict, aws) -> dict:
    for fleet in config["spotyard:fleets"].values():
        fleet["userData"] = "#!/bin/bash\necho a new release\n"
    return config


def new_capacity_and_bounds(config: dict, aws) -> dict:
    for fleet in config["spotyard:fleets"].values():
        fleet.update(minCapacity=1, capacity=2, maxCapacity=6)
    return config


def new_ttl(config: dict, aws) -> dict:
    config["spotyard:dns"]["ttl"] = 300
    return config


def another_fleet(config: dict, aws) -> dict:
    config["spotyard:fleets"]["batch"] = {
        "engine": "spot-fleet",
        "instanceTypes": ["c5.large"],
        "capacity": 0,
        "maxCapacity": 2,
        "results": {"bucket": "create"},
    }
    return config


def without(fleet: str) -> Callable[[dict, Any], dict]:
    def remove(config: dict, aws) -> dict:
        del config["spotyard:fleets"][fleet]
        return config

    remove.__name__ = f"without_{fleet}"
    return remove


ROUTINE_CHANGES = [
    new_ami,
    new_user_data,
    new_capacity_and_bounds,
    new_ttl,
    another_fleet,
    without("workbench"),
    without("workers"),
]


def redeploy(deploy, aws, config: dict, change: Callable[[dict, Any], dict]):
    before = deploy(config)
    after = deploy(change(copy.deepcopy(config), aws), previous=before)
    return before, after


def _removed_fleet(before, after) -> set[str]:
    fleets = {r.name for r in before.of_type("spotyard:index:SpotFleet")}
    return fleets - {r.name for r in after.of_type("spotyard:index:SpotFleet")}


@pytest.mark.parametrize("change", ROUTINE_CHANGES, ids=lambda change: change.__name__)
def test_routine_change_replaces_no_stateful_resource(deploy, aws, stateful_config, change):
    before, after = redeploy(deploy, aws, stateful_config, change)
    renames = renames_between(before, after)
    removed = _removed_fleet(before, after)
    kept = {r.urn: r for r in after.resources}
    checked = [
        r
        for r in before.resources
        if r.type in FORCE_NEW and not any(r.name.startswith(f"{fleet}-") for fleet in removed)
    ]
    assert {"aws:ec2/spotFleetRequest:SpotFleetRequest", "aws:autoscaling/group:Group"} & {r.type for r in checked}
    replaced = []
    for resource in checked:
        twin = kept.get(resource.urn)
        if twin is None:
            replaced.append(f"{resource.urn}: no longer declared under this URN")
            continue
        inputs, source = FORCE_NEW[resource.type]
        for name in inputs:
            if name in twin.ignore_changes:
                continue
            old, new = renames.translate(resource.inputs.get(name)), twin.inputs.get(name)
            if old != new:
                replaced.append(f"{resource.name}.{name} ({source}): {old!r} -> {new!r}")
    assert not replaced, "\n".join(replaced)


def test_force_new_inputs_quote_only_resources_that_are_checked_too(deploy, aws, stateful_config):
    """A force-new input that names another resource changes when that one is replaced: every
    resource so named must itself be in FORCE_NEW (and so be checked above)."""
    run = deploy(stateful_config)
    owners = {
        value: r
        for r in run.resources
        for key, value in (("id", r.id), ("arn", r.outputs.get("arn")))
        if isinstance(value, str) and len(value) >= 8
    }
    unchecked = set()
    for resource in (r for r in run.resources if r.type in FORCE_NEW):
        for name in FORCE_NEW[resource.type][0]:
            text = repr(resource.inputs.get(name))
            unchecked |= {
                f"{resource.name}.{name} names {owner.type}"
                for value, owner in owners.items()
                if value in text and owner.type not in FORCE_NEW
            }
    assert not unchecked, sorted(unchecked)


@pytest.mark.parametrize("change", [new_ami, new_user_data], ids=lambda change: change.__name__)
def test_template_changes_make_a_new_version_that_the_fleets_follow(deploy, aws, stateful_config, change):
    """The launch template does get a new version (so new instances use the change) and both
    engines launch from `$Latest`, so neither the request nor the group input changes."""
    before, after = redeploy(deploy, aws, stateful_config, change)
    template = after.one("aws:ec2/launchTemplate:LaunchTemplate", "workers-template")
    assert template.outputs["latestVersion"] == 2
    request = after.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").inputs
    assert request["launchTemplateConfigs"][0]["launchTemplateSpecification"]["version"] == "$Latest"
    group = after.one("aws:autoscaling/group:Group", "workbench-group").inputs
    assert group["mixedInstancesPolicy"]["launchTemplate"]["launchTemplateSpecification"]["version"] == "$Latest"


@pytest.mark.parametrize(
    "change",
    [new_ami, new_user_data, new_capacity_and_bounds, new_ttl, another_fleet],
    ids=lambda change: change.__name__,
)
def test_routine_change_sends_no_mixed_instances_policy(deploy, aws, stateful_config, change):
    """The provider sends the group's whole MixedInstancesPolicy, with the on-demand base capacity
    Pulumi last wrote, whenever the policy input changed (group.go Update); an unchanged policy
    is not sent, so an on-demand fallback the autoscaler engaged survives the deploy."""
    before, after = redeploy(deploy, aws, stateful_config, change)
    renames = renames_between(before, after)
    old = before.one("aws:autoscaling/group:Group", "workbench-group")
    new = after.one("aws:autoscaling/group:Group", "workbench-group")
    assert renames.translate(old.inputs["mixedInstancesPolicy"]) == new.inputs["mixedInstancesPolicy"]
    assert "mixedInstancesPolicy.instancesDistribution.onDemandBaseCapacity" in new.ignore_changes


def test_spot_fleet_boots_a_saved_ami_after_the_next_up_without_a_new_request(deploy, aws, stateful_config):
    """snapshotOnTerminate on a spot-fleet fleet: once the image keeper moved the AMI parameter,
    the next `pulumi up` writes that AMI into a new template version, which the request follows."""
    stateful_config["spotyard:fleets"]["workers"]["image"]["snapshotOnTerminate"] = True
    before = deploy(stateful_config)
    assert any(
        "spotyard:fleets.workers.image.snapshotOnTerminate" in w and "next `pulumi up`" in w for w in before.warnings()
    )
    saved = aws.own_ami("workers-saved", tags={"Role": "workers"})
    boto3.client("ssm").put_parameter(
        Name="/spotyard/dev/workers/ami", Value=saved, Type="String", DataType="aws:ec2:image", Overwrite=True
    )
    after = deploy(stateful_config, previous=before)
    template = after.one("aws:ec2/launchTemplate:LaunchTemplate", "workers-template")
    assert (template.inputs["imageId"], template.outputs["latestVersion"]) == (saved, 2)
    renames = renames_between(before, after)
    old, new = (run.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request") for run in (before, after))
    assert renames.translate(old.inputs["launchTemplateConfigs"]) == new.inputs["launchTemplateConfigs"]
    assert old.urn == new.urn
