"""SpotFleet under mocks: the shipped Pulumi.dev.yaml yields one fleet per entry, both engines."""

from __future__ import annotations

import copy

import boto3
import pulumi
import pytest

from tests.conftest import REGION, dev_config
from tests.user_data import parts

FLEET_TAGS = {"spotyard:stack": "spotyard/dev", "owner": "me"}


@pytest.fixture
def dev(deploy):
    return deploy(dev_config())


def test_one_fleet_component_per_configured_fleet(dev):
    assert sorted(r.name for r in dev.of_type("spotyard:index:SpotFleet")) == ["workbench", "workers"]
    assert [r.name for r in dev.of_type("aws:autoscaling/group:Group")] == ["workbench-group"]
    assert [r.name for r in dev.of_type("aws:ec2/spotFleetRequest:SpotFleetRequest")] == ["workers-request"]


def test_every_aws_resource_uses_the_stack_provider_with_default_tags(dev):
    provider = dev.one("pulumi:providers:aws", "aws")
    assert provider.inputs["region"] == REGION
    assert '"spotyard:stack": "spotyard/dev"' in provider.inputs["defaultTags"]
    assert '"owner": "me"' in provider.inputs["defaultTags"]
    aws_resources = [r for r in dev.resources if r.type.startswith("aws:")]
    assert aws_resources and all(r.provider == "aws" for r in aws_resources)


def test_children_are_parented_and_named_after_their_component(dev):
    for component in dev.of_type("spotyard:index:SpotFleet"):
        children = dev.children(component)
        assert children and all(c.name.startswith(f"{component.name}-") for c in children)


@pytest.mark.parametrize("fleet", ["workbench", "workers"])
def test_launch_template_is_secure_and_tags_instances_and_volumes(dev, fleet):
    template = dev.one("aws:ec2/launchTemplate:LaunchTemplate", f"{fleet}-template")
    metadata = template.inputs["metadataOptions"]
    assert (metadata["httpTokens"], metadata["httpPutResponseHopLimit"]) == ("required", 2)
    (root,) = template.inputs["blockDeviceMappings"]
    assert root["deviceName"] == "/dev/xvda"
    assert root["ebs"] == {"volumeType": "gp3", "encrypted": "true", "deleteOnTermination": "true"}
    specs = {s["resourceType"]: s["tags"] for s in template.inputs["tagSpecifications"]}
    for kind in ("instance", "volume"):
        assert specs[kind] == {**FLEET_TAGS, "spotyard:fleet": fleet, "Name": fleet}
    profile = dev.one("aws:iam/instanceProfile:InstanceProfile", f"{fleet}-profile")
    assert template.inputs["iamInstanceProfile"]["arn"] == profile.outputs["arn"]
    role = dev.one("aws:iam/role:Role", f"{fleet}-instance-role")
    assert profile.inputs["role"] == role.outputs["name"]
    ssm = dev.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", f"{fleet}-ssm-core")
    assert ssm.inputs == {
        "role": role.outputs["name"],
        "policyArn": "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
    }


def booted_image(run, fleet: str) -> str:
    """The AMI the fleet's launch template boots: through its SSM parameter on asg fleets."""
    image = run.one("aws:ec2/launchTemplate:LaunchTemplate", f"{fleet}-template").inputs["imageId"]
    if image.startswith("resolve:ssm:"):
        return boto3.client("ssm").get_parameter(Name=image.removeprefix("resolve:ssm:"))["Parameter"]["Value"]
    return image


def test_launch_template_boots_the_latest_amazon_linux_by_default(dev, aws):
    parameter = boto3.client("ssm").get_parameter(
        Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    )["Parameter"]["Value"]
    assert booted_image(dev, "workbench") == booted_image(dev, "workers") == parameter


def test_the_ami_comes_from_the_fleets_ssm_parameter(dev):
    parameter = dev.one("aws:ssm/parameter:Parameter", "workbench-ami")
    assert (parameter.inputs["name"], parameter.inputs["dataType"]) == ("/spotyard/dev/workbench/ami", "aws:ec2:image")
    template = dev.one("aws:ec2/launchTemplate:LaunchTemplate", "workbench-template")
    assert template.inputs["imageId"] == "resolve:ssm:/spotyard/dev/workbench/ami"
    assert parameter.ignore_changes == []  # no saved images: pulumi up keeps it on the configured image
    # Spot Fleet cannot follow a parameter: its template names the parameter's AMI of the day.
    workers = dev.one("aws:ec2/launchTemplate:LaunchTemplate", "workers-template").inputs["imageId"]
    assert workers.startswith("ami-")


def test_user_data_is_the_configured_script(dev):
    assert "worker $(hostname) ready" in parts(dev, "workers")[1][2]


def fleet_ingress(run):
    fleet_groups = {
        run.one("aws:ec2/securityGroup:SecurityGroup", f"{fleet}-sg").id for fleet in ("workbench", "workers")
    }
    return [
        r
        for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["securityGroupId"] in fleet_groups
    ]


def test_security_group_is_closed_to_inbound_unless_configured(dev, deploy):
    assert fleet_ingress(dev) == []
    egress = dev.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    workbench_sg = dev.one("aws:ec2/securityGroup:SecurityGroup", "workbench-sg")
    assert {
        (e.inputs.get("cidrIpv4"), e.inputs.get("cidrIpv6"), e.inputs["ipProtocol"])
        for e in egress
        if e.inputs["securityGroupId"] == workbench_sg.id
    } == {("0.0.0.0/0", None, "-1"), (None, "::/0", "-1")}

    config = dev_config()
    config["spotyard:fleets"]["workbench"]["ssh"]["allowFrom"] = ["sg-0bastion", "203.0.113.0/24", "2001:db8::/32"]
    opened = fleet_ingress(deploy(config))
    sources = {
        (
            r.inputs.get("referencedSecurityGroupId") or r.inputs.get("cidrIpv4") or r.inputs.get("cidrIpv6"),
            r.inputs["fromPort"],
            r.inputs["toPort"],
            r.inputs["ipProtocol"],
        )
        for r in opened
    }
    assert sources == {
        ("sg-0bastion", 22, 22, "tcp"),
        ("203.0.113.0/24", 22, 22, "tcp"),
        ("2001:db8::/32", 22, 22, "tcp"),
    }


def test_asg_fleet_is_all_spot_over_every_type_and_subnet(dev):
    group = dev.one("aws:autoscaling/group:Group", "workbench-group")
    inputs = group.inputs
    distribution = inputs["mixedInstancesPolicy"]["instancesDistribution"]
    assert distribution == {
        "onDemandBaseCapacity": 0,
        "onDemandPercentageAboveBaseCapacity": 0,
        "spotAllocationStrategy": "price-capacity-optimized",
    }
    overrides = inputs["mixedInstancesPolicy"]["launchTemplate"]["overrides"]
    assert [o["instanceType"] for o in overrides] == ["t3.xlarge", "t3a.xlarge", "m5.xlarge", "m5a.xlarge"]
    assert sorted(inputs["vpcZoneIdentifiers"]) == sorted(dev.outputs["subnetIds"])
    assert (inputs["minSize"], inputs["maxSize"], inputs["desiredCapacity"]) == (0, 1, 1)
    assert inputs["waitForCapacityTimeout"] == "0"
    assert "desiredCapacity" in group.ignore_changes
    tags = {t["key"]: (t["value"], t["propagateAtLaunch"]) for t in inputs["tags"]}
    assert tags["spotyard:stack"] == ("spotyard/dev", False) and tags["spotyard:fleet"] == ("workbench", False)
    template = dev.one("aws:ec2/launchTemplate:LaunchTemplate", "workbench-template")
    spec = inputs["mixedInstancesPolicy"]["launchTemplate"]["launchTemplateSpecification"]
    assert spec["launchTemplateId"] == template.id


def test_asg_instances_carry_the_fleet_tags(dev, aws):
    """moto launched the group's instance from the launch template the program made."""
    group = dev.one("aws:autoscaling/group:Group", "workbench-group")
    (instance,) = [
        i
        for r in boto3.client("ec2").describe_instances(
            Filters=[{"Name": "tag:aws:autoscaling:groupName", "Values": [group.id]}]
        )["Reservations"]
        for i in r["Instances"]
    ]
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags["spotyard:fleet"] == "workbench" and tags["spotyard:stack"] == "spotyard/dev"


@pytest.mark.parametrize(("on_rebalance", "rebalanced"), [("notify", False), ("drain", True)])
def test_capacity_rebalancing_only_where_rebalance_drains(deploy, on_rebalance, rebalanced):
    """Capacity Rebalancing makes Auto Scaling replace (launch, then terminate) an instance on a
    rebalance recommendation by itself: that is `drain`, and `notify` promises only a notice."""
    config = dev_config()
    config["spotyard:fleets"]["workbench"]["interruption"]["onRebalance"] = on_rebalance
    group = deploy(config).one("aws:autoscaling/group:Group", "workbench-group")
    assert group.inputs["capacityRebalance"] is rebalanced


def test_spot_fleet_request_maintains_capacity_over_types_times_subnets(dev):
    request = dev.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request")
    inputs = request.inputs
    assert inputs["fleetType"] == "maintain"
    assert inputs["allocationStrategy"] == "priceCapacityOptimized"
    assert (inputs["targetCapacity"], inputs["onDemandTargetCapacity"]) == (0, 0)
    assert inputs["terminateInstancesOnDelete"] == "true"
    (config,) = inputs["launchTemplateConfigs"]
    pairs = {(o["instanceType"], o["subnetId"]) for o in config["overrides"]}
    types = ["c5.large", "c5a.large", "c6i.large", "m5.large"]
    assert pairs == {(t, s) for t in types for s in dev.outputs["subnetIds"]}
    role = dev.one("aws:iam/role:Role", "workers-fleet-role")
    assert inputs["iamFleetRole"] == role.outputs["arn"]
    assert "spotfleet.amazonaws.com" in role.inputs["assumeRolePolicy"]
    tagging = dev.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "workers-fleet-tagging")
    assert tagging.inputs["policyArn"] == "arn:aws:iam::aws:policy/service-role/AmazonEC2SpotFleetTaggingRole"
    assert {"targetCapacity", "onDemandTargetCapacity"} <= set(request.ignore_changes)


def test_target_groups_come_from_the_load_balancer_config(deploy, aws):
    arn = aws.target_group("web", deregistration_delay=30)
    config = dev_config()
    for fleet in config["spotyard:fleets"].values():
        fleet["loadBalancer"] = {"targetGroupArns": [arn]}
    run = deploy(config)
    assert run.one("aws:autoscaling/group:Group", "workbench-group").inputs["targetGroupArns"] == [arn]
    assert run.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").inputs["targetGroupArns"] == [arn]


def test_allocation_strategies_in_each_engines_spelling(deploy):
    config = dev_config()
    config["spotyard:fleets"]["workers"]["allocationStrategy"] = "capacity-optimized"
    config["spotyard:fleets"]["workbench"]["allocationStrategy"] = "lowest-price"
    run = deploy(config)
    assert (
        run.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").inputs["allocationStrategy"]
        == "capacityOptimized"
    )
    assert (
        run.one("aws:autoscaling/group:Group", "workbench-group").inputs["mixedInstancesPolicy"][
            "instancesDistribution"
        ]["spotAllocationStrategy"]
        == "lowest-price"
    )


def test_outputs_name_each_fleet(dev):
    fleets = dev.outputs["fleets"]
    assert fleets["workbench"]["engine"] == "asg"
    assert fleets["workbench"]["groupName"] == dev.one("aws:autoscaling/group:Group", "workbench-group").id
    assert fleets["workers"]["requestId"].startswith("sfr-")
    assert fleets["workers"]["securityGroupId"].startswith("sg-")
    assert dev.outputs["vpcId"].startswith("vpc-")


def test_configured_network_is_used(deploy, aws):
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in enumerate("ac")
    ]
    config = dev_config()
    config["spotyard:network"] = {"vpcId": vpc, "subnetIds": subnets[:1]}
    run = deploy(config)
    assert run.outputs["vpcId"] == vpc and run.outputs["subnetIds"] == subnets[:1]
    config["spotyard:network"] = {"vpcId": vpc}
    assert sorted(deploy(config).outputs["subnetIds"]) == sorted(subnets)


def test_subnet_outside_the_vpc_is_an_error(deploy, aws):
    default_subnet = boto3.client("ec2").describe_subnets()["Subnets"][0]["SubnetId"]
    vpc = boto3.client("ec2").create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    config = dev_config()
    config["spotyard:network"] = {"vpcId": vpc, "subnetIds": [default_subnet]}
    with pytest.raises(pulumi.RunError, match=f"spotyard:network.subnetIds: {default_subnet} is not in {vpc}"):
        deploy(config)


def _image_config(**image):
    config = dev_config()
    config["spotyard:fleets"]["workbench"]["image"] = image
    return config


def test_role_tag_picks_the_newest_owned_ami_then_the_fallback(deploy, aws):
    aws.own_ami("base-old", tags={"Role": "base"}, age_days=30)
    base = aws.own_ami("base-new", tags={"Role": "base"}, age_days=10)
    config = _image_config(roleTag="workbench", fallbackRoleTag="base")
    assert booted_image(deploy(config), "workbench") == base
    aws.own_ami("wb-old", tags={"Role": "workbench"}, age_days=5)
    newest = aws.own_ami("wb-new", tags={"Role": "workbench"}, age_days=1)
    run = deploy(config)
    assert booted_image(run, "workbench") == newest
    template = run.one("aws:ec2/launchTemplate:LaunchTemplate", "workbench-template")
    assert template.inputs["blockDeviceMappings"][0]["deviceName"] == "/dev/sda1"


def test_missing_role_tagged_ami_names_both_tags(deploy):
    with pytest.raises(
        pulumi.RunError,
        match="spotyard:fleets.workbench.image: no AMI owned by this account is tagged Role=workbench or Role=base",
    ):
        deploy(_image_config(roleTag="workbench", fallbackRoleTag="base"))


def test_fixed_ami_and_architecture_check(deploy, aws):
    image = aws.own_ami("fixed", arch="arm64")
    with pytest.raises(pulumi.RunError, match=f"{image} is arm64 but instanceTypes are x86_64"):
        deploy(_image_config(amiId=image))
    config = _image_config(amiId=image)
    config["spotyard:fleets"]["workbench"]["instanceTypes"] = ["m7g.large", "c7g.large"]
    assert booted_image(deploy(config), "workbench") == image


def test_graviton_fleets_boot_arm64_amazon_linux(deploy, aws):
    config = copy.deepcopy(dev_config())
    config["spotyard:fleets"]["workers"]["instanceTypes"] = ["c7g.large", "m7g.large"]
    parameter = boto3.client("ssm").get_parameter(
        Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
    )["Parameter"]["Value"]
    assert booted_image(deploy(config), "workers") == parameter


def test_asg_fleet_refuses_target_groups_that_do_not_take_instances(deploy, aws):
    web = aws.target_group("web", deregistration_delay=30)
    by_ip = aws.target_group("by-ip", deregistration_delay=30, target_type="ip")
    albs = aws.target_group("albs", deregistration_delay=30, target_type="alb")
    config = dev_config()
    config["spotyard:fleets"]["workbench"]["loadBalancer"] = {"targetGroupArns": [web, by_ip, albs]}
    with pytest.raises(pulumi.RunError) as raised:
        deploy(config)
    key = "spotyard:fleets.workbench.loadBalancer.targetGroupArns"
    assert f"{key}: by-ip has target type ip" in str(raised.value)
    assert f"{key}: albs has target type alb" in str(raised.value)
    assert "web" not in str(raised.value).replace("workbench", "")


def test_spot_fleet_warns_about_target_groups_that_do_not_take_instances(deploy, aws):
    by_ip = aws.target_group("by-ip", deregistration_delay=30, target_type="ip")
    config = dev_config()
    config["spotyard:fleets"]["workers"]["loadBalancer"] = {"targetGroupArns": [by_ip]}
    run = deploy(config)
    assert run.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").inputs["targetGroupArns"] == [by_ip]
    (warning,) = [w for w in run.warnings() if "by-ip has target type ip" in w]
    assert warning.startswith("spotyard:fleets.workers.loadBalancer.targetGroupArns: ")
