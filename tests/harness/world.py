"""What an AWS account holds before spotyard is deployed, built in moto: Amazon's public
Amazon Linux 2023 AMIs (plain and ECS-optimized), the user's own tagged AMIs, target groups, Elastic IPs.

moto ships the public SSM parameters for Amazon Linux but not the AMIs they name, and its
RegisterImage ignores the architecture; those two gaps are filled through moto's backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami

AMAZON_OWNER = "137112412989"
AMAZON_LINUX = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{arch}"
ECS_OPTIMIZED = {
    "x86_64": "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id",
    "arm64": "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id",
}


class World:
    def __init__(self, region: str) -> None:
        self.region = region
        self.ec2 = boto3.client("ec2", region_name=region)
        self._backend = ec2_backends[DEFAULT_ACCOUNT_ID][region]
        self._clock = datetime(2026, 1, 1, tzinfo=UTC)

    def seed(self) -> World:
        ssm = boto3.client("ssm", region_name=self.region)
        public = [
            (arch, name, parameter)
            for arch in ("x86_64", "arm64")
            for name, parameter in (
                (f"al2023-ami-2023.9-kernel-6.1-{arch}", AMAZON_LINUX.format(arch=arch)),
                (f"al2023-ami-ecs-hvm-2023.0-kernel-6.1-{arch}", ECS_OPTIMIZED[arch]),
            )
        ]
        for arch, name, parameter in public:
            image_id = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
            self._backend.amis[image_id] = Ami(
                self._backend,
                image_id,
                name=name,
                architecture=arch,
                root_device_name="/dev/xvda",
                owner_id=AMAZON_OWNER,
                public=True,
            )
        return self

    def own_ami(self, name: str, *, arch: str = "x86_64", tags: dict[str, str] | None = None, age_days: int = 0) -> str:
        """An AMI this account owns, created `age_days` ago (each one newer than the last at equal age)."""
        (instance,) = self.ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"]
        instance_id = instance["InstanceId"]
        specs = [{"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}] if tags else []
        image_id = self.ec2.create_image(InstanceId=instance_id, Name=name, TagSpecifications=specs)["ImageId"]
        self.ec2.terminate_instances(InstanceIds=[instance_id])
        image = self._backend.amis[image_id]
        image.architecture = arch
        self._clock += timedelta(seconds=1)
        image.creation_date = self._clock - timedelta(days=age_days)
        return image_id

    def scale_spot_fleet(self, request_id: str, capacity: int, launch_template_id: str) -> list[str]:
        """Set a Spot Fleet's target capacity; returns its active instances. moto does not apply
        the launch template's tag specifications to Spot Fleet instances (AWS does): done here."""
        self.ec2.modify_spot_fleet_request(SpotFleetRequestId=request_id, TargetCapacity=capacity)
        data = self.ec2.describe_launch_template_versions(LaunchTemplateId=launch_template_id)[
            "LaunchTemplateVersions"
        ][0]["LaunchTemplateData"]
        tags = [t for s in data.get("TagSpecifications", []) if s["ResourceType"] == "instance" for t in s["Tags"]]
        ids = [
            i["InstanceId"]
            for i in self.ec2.describe_spot_fleet_instances(SpotFleetRequestId=request_id)["ActiveInstances"]
        ]
        if ids and tags:
            self.ec2.create_tags(Resources=ids, Tags=tags)
        return ids

    def hold_images_pending(self) -> None:
        """AMIs created from now on stay `pending` (moto makes them available at once)."""
        original = self._backend.create_image

        def pending(*args, **kwargs):
            image = original(*args, **kwargs)
            image.state = "pending"
            return image

        self._backend.create_image = pending

    def make_available(self, image_id: str) -> None:
        self._backend.amis[image_id].state = "available"

    def launched_ago(self, instance_id: str, minutes: int) -> None:
        """Backdate an instance's launch (moto stamps launches to the second)."""
        instance = self._backend.get_instance(instance_id)
        instance.launch_time = instance.launch_time - timedelta(minutes=minutes)

    def fleet_instances(self, fleet: str, count: int, *, stack: str = "spotyard/dev") -> dict[str, str]:
        """`count` running instances of a fleet (id -> private IP), launched in one call (as a
        large scale-out would launch them), tagged as the fleet's launch template tags them."""
        tags = [
            {"Key": "spotyard:stack", "Value": stack},
            {"Key": "spotyard:fleet", "Value": fleet},
            {"Key": "Name", "Value": fleet},
        ]
        launched = self.ec2.run_instances(
            ImageId="ami-12345678",
            MinCount=count,
            MaxCount=count,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
        return {i["InstanceId"]: i["PrivateIpAddress"] for i in launched["Instances"]}

    def target_group(self, name: str, *, deregistration_delay: int = 300, target_type: str = "instance") -> str:
        elb = boto3.client("elbv2", region_name=self.region)
        vpc_id = self.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
        arn = elb.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc_id, TargetType=target_type)[
            "TargetGroups"
        ][0]["TargetGroupArn"]
        elb.modify_target_group_attributes(
            TargetGroupArn=arn,
            Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(deregistration_delay)}],
        )
        return arn
