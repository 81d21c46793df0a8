"""AMIs saved from a fleet's instances (`image.snapshotOnTerminate`): started without a
reboot, tagged Role=<roleTag> for the fleet, at most one per instance. Their snapshots carry
the same stack, fleet and source-instance tags from the start, so that the janitor can find
(and is allowed to delete) them once their AMI is gone."""

from __future__ import annotations

import re

from spotyard_lambda import aws, log
from spotyard_lambda.instances import Instance
from spotyard_lambda.names import FLEET_TAG, SOURCE_INSTANCE_TAG, STACK_TAG


def image_name(stack: str, fleet: str, instance_id: str) -> str:
    """Unique per instance, so that a second request for the same instance is refused by EC2."""
    return re.sub(r"[^A-Za-z0-9()\[\]./\-'@_]", "-", f"spotyard-{stack}-{fleet}-{instance_id}")


def start_image(
    ec2, instance: Instance, stack: str, role_tag: str, extra_tags: dict[str, str] | None = None
) -> tuple[str, bool]:
    """The AMI of this instance: (image id, whether this call started it). `extra_tags` are
    set on it either way."""
    existing = ec2.describe_images(
        Owners=["self"], Filters=[{"Name": f"tag:{SOURCE_INSTANCE_TAG}", "Values": [instance.id]}]
    )["Images"]
    if existing:
        if extra_tags:
            ec2.create_tags(Resources=[existing[0]["ImageId"]], Tags=_tags(extra_tags))
        return existing[0]["ImageId"], False
    name = image_name(stack, instance.fleet or "", instance.id)
    owned = {
        "Name": name,
        "Role": role_tag,
        STACK_TAG: stack,
        FLEET_TAG: instance.fleet or "",
        SOURCE_INSTANCE_TAG: instance.id,
    }
    try:
        # CreateImage tags the AMI and every snapshot it creates in the same request:
        # https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateImage.html (TagSpecifications)
        image_id = ec2.create_image(
            InstanceId=instance.id,
            Name=name,
            NoReboot=True,
            Description=f"spotyard: {instance.fleet} instance {instance.id} as it left the fleet",
            TagSpecifications=[
                {"ResourceType": "image", "Tags": _tags({**owned, **(extra_tags or {})})},
                {"ResourceType": "snapshot", "Tags": _tags(owned)},
            ],
        )["ImageId"]
    except ec2.exceptions.ClientError as error:
        if aws.error_code(error) != "InvalidAMIName.Duplicate":
            raise
        (found,) = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])["Images"]
        return found["ImageId"], False
    log.info("image.started", image_id=image_id, instance_id=instance.id, fleet=instance.fleet)
    return image_id, True


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]
