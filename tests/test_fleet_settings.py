"""The fleet settings of issue #11 under Pulumi mocks: each configured value reaches the resource
it sets, on both engines (`asg` on workbench, `spot-fleet` on workers, as in Pulumi.dev.yaml)."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.conftest import dev_config


def fleet_config(**fields):
    """Pulumi.dev.yaml with `fields` set on both fleets."""
    config = dev_config()
    for fleet in config["spotyard:fleets"].values():
        fleet.update(fields)
    return config


@pytest.mark.parametrize("fleet", ["workbench", "workers"])
def test_root_volume_reaches_the_launch_template(deploy, fleet):
    run = deploy(fleet_config(rootVolume={"size": 100, "type": "gp3", "iops": 6000, "throughput": 500}))
    (root,) = run.one("aws:ec2/launchTemplate:LaunchTemplate", f"{fleet}-template").inputs["blockDeviceMappings"]
    assert root["ebs"] == {
        "volumeType": "gp3",
        "volumeSize": 100,
        "iops": 6000,
        "throughput": 500,
        "encrypted": "true",
        "deleteOnTermination": "true",
    }


def every_role_config(aws) -> dict:
    """Pulumi.dev.yaml with everything that makes a role: both engines (instance and fleet roles),
    a schedule, a job queue with a warm-up, saved images, DNS (the Lambdas' roles)."""
    config = dev_config()
    workers = config["spotyard:fleets"]["workers"]
    workers["queue"]["warmUp"] = {"schedule": "cron(50 1 * * ? *)", "capacity": 2}
    aws.own_ami("workers-v1", tags={"Role": "workers"}, age_days=1)
    workers["image"] = {"roleTag": "workers", "snapshotOnTerminate": True}
    return config


def test_every_role_gets_the_stack_path_and_permissions_boundary(deploy, aws):
    boundary = "arn:aws:iam::123456789012:policy/company-boundary"
    config = every_role_config(aws)
    config["spotyard:iam"] = {"permissionsBoundary": boundary, "path": "/spotyard/"}
    roles = deploy(config).of_type("aws:iam/role:Role")
    kinds = {role.name.split("-", 1)[1] for role in roles}
    assert {
        "instance-role",
        "fleet-role",
        "schedule-role",
        "jobs-warm-up-role",
        "jobs-autoscaler-role",
        "lambda-role",
    } <= kinds, kinds
    assert len(roles) >= 9  # dns, interruptions and images Lambdas besides the fleets' own roles
    for role in roles:
        assert (role.name, role.inputs.get("path"), role.inputs.get("permissionsBoundary")) == (
            role.name,
            "/spotyard/",
            boundary,
        )


def test_roles_keep_the_root_path_and_no_boundary_by_default(deploy, aws):
    roles = deploy(every_role_config(aws)).of_type("aws:iam/role:Role")
    assert roles and all(r.inputs.get("path") == "/" and "permissionsBoundary" not in r.inputs for r in roles)


@pytest.mark.parametrize("fleet", ["workbench", "workers"])
def test_instance_role_extras_reach_the_role(deploy, fleet):
    statement = {
        "Effect": "Allow",
        "Action": ["secretsmanager:GetSecretValue"],
        "Resource": "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:dev/*",
    }
    run = deploy(
        fleet_config(
            instanceRole={
                "managedPolicyArns": [
                    "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
                    "arn:aws:iam::123456789012:policy/team/build-cache",
                ],
                "statements": [statement],
            }
        )
    )
    role = run.one("aws:iam/role:Role", f"{fleet}-instance-role")
    attached = {
        a.inputs["policyArn"]
        for a in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == role.outputs["name"]
    }
    assert attached == {
        "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
        "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
        "arn:aws:iam::123456789012:policy/team/build-cache",
    }
    extra = run.one("aws:iam/rolePolicy:RolePolicy", f"{fleet}-extra")
    assert extra.inputs["role"] == role.outputs["name"]
    assert json.loads(extra.inputs["policy"]) == {"Version": "2012-10-17", "Statement": [statement]}
    outputs = run.outputs["fleets"][fleet]
    assert (outputs["instanceRoleName"], outputs["instanceRoleArn"]) == (role.outputs["name"], role.outputs["arn"])


def test_no_extra_role_policy_unless_configured(deploy):
    run = deploy(dev_config())
    assert not [p for p in run.of_type("aws:iam/rolePolicy:RolePolicy") if p.name.endswith("-extra")]
    assert run.outputs["fleets"]["workers"]["instanceRoleArn"].startswith("arn:aws:iam::")


@pytest.mark.parametrize("fleet", ["workbench", "workers"])
def test_extra_security_groups_and_ingress_reach_the_instances(deploy, aws, fleet):
    extra = boto3.client("ec2").create_security_group(GroupName="corp", Description="corp")["GroupId"]
    run = deploy(
        fleet_config(
            securityGroupIds=[extra],
            ingress=[
                {"port": 443, "from": ["0.0.0.0/0", "::/0"]},
                {"port": 80, "from": ["sg-0alb"]},
                {"port": 60000, "toPort": 61000, "protocol": "udp", "from": ["203.0.113.0/24"]},
            ],
        )
    )
    own = run.one("aws:ec2/securityGroup:SecurityGroup", f"{fleet}-sg")
    template = run.one("aws:ec2/launchTemplate:LaunchTemplate", f"{fleet}-template")
    assert template.inputs["vpcSecurityGroupIds"] == [own.id, extra]
    opened = {
        (
            r.inputs.get("referencedSecurityGroupId") or r.inputs.get("cidrIpv4") or r.inputs.get("cidrIpv6"),
            r.inputs["ipProtocol"],
            r.inputs["fromPort"],
            r.inputs["toPort"],
        )
        for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["securityGroupId"] == own.id
    }
    assert opened == {
        ("0.0.0.0/0", "tcp", 443, 443),
        ("::/0", "tcp", 443, 443),
        ("sg-0alb", "tcp", 80, 80),
        ("203.0.113.0/24", "udp", 60000, 61000),
    }


def test_purchase_options_reach_the_group_and_the_request(deploy):
    config = fleet_config(
        spotMaxPrice="0.08",
        allocationStrategy="lowest-price",
        spotInstancePools=3,
        maxCapacity=4,
        onDemandFallback=False,
        onDemandBaseCapacity=2,
    )
    run = deploy(config)
    group = run.one("aws:autoscaling/group:Group", "workbench-group")
    distribution = group.inputs["mixedInstancesPolicy"]["instancesDistribution"]
    assert distribution == {
        "onDemandBaseCapacity": 2,
        "onDemandPercentageAboveBaseCapacity": 0,
        "spotAllocationStrategy": "lowest-price",
        "spotMaxPrice": "0.08",
        "spotInstancePools": 3,
    }
    request = run.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request")
    assert (
        request.inputs["onDemandTargetCapacity"],
        request.inputs["spotPrice"],
        request.inputs["instancePoolsToUseCount"],
        request.inputs["allocationStrategy"],
    ) == (2, "0.08", 3, "lowestPrice")
    # Configured, the base is Pulumi's: a new value reaches the group and the request at the next up.
    assert "mixedInstancesPolicy.instancesDistribution.onDemandBaseCapacity" not in group.ignore_changes
    assert "onDemandTargetCapacity" not in request.ignore_changes


def test_pulumi_leaves_the_on_demand_part_alone_unless_it_is_configured(deploy):
    """Without onDemandBaseCapacity the fallback may change it at run time: pulumi up ignores it."""
    run = deploy(fleet_config(onDemandFallback=True))
    group = run.one("aws:autoscaling/group:Group", "workbench-group")
    assert "mixedInstancesPolicy.instancesDistribution.onDemandBaseCapacity" in group.ignore_changes
    request = run.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request")
    assert "onDemandTargetCapacity" in request.ignore_changes
    assert "spotPrice" not in request.inputs and "instancePoolsToUseCount" not in request.inputs


def test_weights_count_capacity_in_units_on_both_engines(deploy):
    config = dev_config()
    for fleet in config["spotyard:fleets"].values():
        fleet.pop("queue", None)
        fleet.pop("idleStopMinutes", None)
        fleet["instanceTypes"] = ["m5.large", {"type": "m5.xlarge", "weight": 2}, {"type": "m5.4xlarge", "weight": 8}]
    run = deploy(config)
    overrides = run.one("aws:autoscaling/group:Group", "workbench-group").inputs["mixedInstancesPolicy"][
        "launchTemplate"
    ]["overrides"]
    assert [(o["instanceType"], o["weightedCapacity"]) for o in overrides] == [
        ("m5.large", "1"),
        ("m5.xlarge", "2"),
        ("m5.4xlarge", "8"),
    ]
    (launch,) = run.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").inputs["launchTemplateConfigs"]
    assert {(o["instanceType"], o["weightedCapacity"]) for o in launch["overrides"]} == {
        ("m5.large", 1.0),
        ("m5.xlarge", 2.0),
        ("m5.4xlarge", 8.0),
    }
    assert len(launch["overrides"]) == 3 * len(run.outputs["subnetIds"])


def test_without_weights_capacity_counts_instances(deploy):
    run = deploy(dev_config())
    overrides = run.one("aws:autoscaling/group:Group", "workbench-group").inputs["mixedInstancesPolicy"][
        "launchTemplate"
    ]["overrides"]
    (launch,) = run.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").inputs["launchTemplateConfigs"]
    assert not [o for o in overrides + launch["overrides"] if "weightedCapacity" in o]


@pytest.mark.parametrize("fleet", ["workbench", "workers"])
def test_credit_specification_reaches_the_launch_template(deploy, fleet):
    run = deploy(fleet_config(instanceTypes=["t3.large", "t3a.large"], creditSpecification="unlimited"))
    template = run.one("aws:ec2/launchTemplate:LaunchTemplate", f"{fleet}-template")
    assert template.inputs["creditSpecification"] == {"cpuCredits": "unlimited"}
    assert (
        "creditSpecification"
        not in deploy(dev_config()).one("aws:ec2/launchTemplate:LaunchTemplate", f"{fleet}-template").inputs
    )
