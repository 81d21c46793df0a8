"""The README's worked example (examples/home_and_interruptions.py, shown verbatim in the
README) run as a user's own program under the mocks harness, against an Auto Scaling group
that exists before it: the home volume and the interruption handler are built for that group."""

from __future__ import annotations

import json
import runpy

import boto3
import pytest

from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "home_and_interruptions.py"
ROLE_ARN = "arn:aws:iam::123456789012:role/existing-workers"


@pytest.fixture
def existing_group(aws):
    """An Auto Scaling group made outside Pulumi, in the default subnets, and its security group."""
    ec2 = boto3.client("ec2")
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    vpc_id = subnets[0]["VpcId"]
    security_group = ec2.create_security_group(GroupName="existing-workers", Description="workers", VpcId=vpc_id)
    image = aws.own_ami("existing-workers")
    ec2.create_launch_template(LaunchTemplateName="existing-workers", LaunchTemplateData={"ImageId": image})
    autoscaling = boto3.client("autoscaling")
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="existing-workers",
        LaunchTemplate={"LaunchTemplateName": "existing-workers"},
        MinSize=0,
        MaxSize=2,
        DesiredCapacity=0,
        VPCZoneIdentifier=",".join(s["SubnetId"] for s in subnets),
    )
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["existing-workers"])["AutoScalingGroups"][0]
    return {"group": group, "subnets": subnets, "security_group_id": security_group["GroupId"]}


def test_the_readme_shows_the_example_verbatim():
    readme = (ROOT / "README.md").read_text()
    assert f"```python\n{EXAMPLE.read_text()}```\n" in readme


def test_the_example_builds_the_home_volume_and_the_interruption_handler_for_the_existing_group(deploy, existing_group):
    group = existing_group["group"]
    run = deploy(
        {
            "spotyard:groupName": group["AutoScalingGroupName"],
            "spotyard:securityGroupId": existing_group["security_group_id"],
            "spotyard:instanceRoleArn": ROLE_ARN,
        },
        program=lambda: runpy.run_path(str(EXAMPLE)),
    )

    mounts = run.of_type("aws:efs/mountTarget:MountTarget")
    assert sorted(m.inputs["subnetId"] for m in mounts) == sorted(s["SubnetId"] for s in existing_group["subnets"])
    nfs = run.one("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "existing-workers-home-nfs-from-fleet")
    assert nfs.inputs["referencedSecurityGroupId"] == existing_group["security_group_id"]
    policy = json.loads(
        run.one("aws:efs/fileSystemPolicy:FileSystemPolicy", "existing-workers-home-policy").inputs["policy"]
    )
    assert [s["Principal"] for s in policy["Statement"] if s["Effect"] == "Allow"] == [{"AWS": ROLE_ARN}]
    assert run.outputs["homeFileSystemId"] == run.one("aws:efs/fileSystem:FileSystem", "existing-workers-home-fs").id

    handler_policy = json.loads(
        run.one("aws:iam/rolePolicy:RolePolicy", "interruptions-lambda-policy").inputs["policy"]
    )
    detach = next(s for s in handler_policy["Statement"] if s["Sid"] == "DetachFromGroups")
    assert detach["Resource"] == [group["AutoScalingGroupARN"]]
    function = run.one("aws:lambda/function:Function", "interruptions-lambda-function")
    settings = json.loads(function.inputs["environment"]["variables"]["SPOTYARD_SETTINGS"])
    assert function.inputs["environment"]["variables"]["SPOTYARD_STACK"] == "spotyard/dev"
    mark = next(s for s in handler_policy["Statement"] if s["Sid"] == "MarkInstances")
    assert mark["Condition"] == {"StringEquals": {"ec2:ResourceTag/spotyard:stack": "spotyard/dev"}}
    assert settings["fleets"] == {
        "existing-workers": {
            "capacity_target": "existing-workers",
            "decrement_capacity": False,
            "engine": "asg",
            "image_role_tag": None,
            "on_rebalance": "notify",
            "target_groups": [],
        }
    }
