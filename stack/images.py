"""Finds each fleet's AMI at preview: a fixed id, the newest self-owned AMI tagged
Role=<roleTag> (else Role=<fallbackRoleTag>), or the latest Amazon Linux 2023 (ECS-optimized on a
fleet that hosts services). For a fleet whose AMI parameter the image keeper owns, the AMI it
points to now."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.spot_fleet import ami_parameter_name
from spotyard.config import FleetConfig
from stack.provider import invoke_options

AMAZON_LINUX_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{arch}"
# A fleet hosting services boots the ECS-optimized Amazon Linux 2023 AMI (agent, Docker, EFS utilities)
# from its public parameter (ECS developer guide, "Retrieving Amazon ECS-optimized Linux AMI metadata").
ECS_OPTIMIZED_PARAMETER = {
    "x86_64": "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id",
    "arm64": "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id",
}


@dataclass(frozen=True)
class Image:
    id: str
    root_device_name: str
    architecture: str


def resolve_images(fleets: tuple[FleetConfig, ...], provider: aws.Provider) -> dict[str, Image]:
    """One image per fleet, or one RunError naming every fleet whose image cannot be found."""
    opts = invoke_options(provider)
    images, problems = {}, []
    for fleet in fleets:
        key = f"spotyard:fleets.{fleet.name}.image"
        image_id = _image_id(fleet, opts)
        if image_id is None:
            tags = " or ".join(f"Role={tag}" for tag in (fleet.image.role_tag, fleet.image.fallback_role_tag) if tag)
            problems.append(f"{key}: no AMI owned by this account is tagged {tags}")
            continue
        found = aws.ec2.get_ami(filters=[aws.ec2.GetAmiFilterArgs(name="image-id", values=[image_id])], opts=opts)
        if found.architecture != fleet.architecture:
            problems.append(f"{key}: {image_id} is {found.architecture} but instanceTypes are {fleet.architecture}")
            continue
        images[fleet.name] = Image(
            id=image_id, root_device_name=found.root_device_name, architecture=found.architecture
        )
    if problems:
        raise pulumi.RunError("\n".join(problems))
    return images


def _image_id(fleet: FleetConfig, opts: pulumi.InvokeOptions) -> str | None:
    image = fleet.image
    if image.snapshot_on_terminate and (current := _current_parameter(fleet.name, opts)):
        return current
    if image.ami_id:
        return image.ami_id
    if image.role_tag:
        for tag in (image.role_tag, image.fallback_role_tag):
            if tag and (found := _newest_tagged(tag, opts)):
                return found
        return None
    parameter = (
        ECS_OPTIMIZED_PARAMETER[fleet.architecture]
        if fleet.hosts_services
        else AMAZON_LINUX_PARAMETER.format(arch=fleet.architecture)
    )
    return aws.ssm.get_parameter(name=parameter, opts=opts).value


def _current_parameter(fleet: str, opts: pulumi.InvokeOptions) -> str | None:
    """The AMI the fleet's parameter names today (None before the first deployment)."""
    name = ami_parameter_name(fleet)
    found = aws.ssm.get_parameters_by_path(path=name.rsplit("/", 1)[0], opts=opts)
    return dict(zip(found.names, found.values, strict=True)).get(name)


def _newest_tagged(role: str, opts: pulumi.InvokeOptions) -> str | None:
    ids = aws.ec2.get_ami_ids(
        owners=["self"],
        filters=[
            aws.ec2.GetAmiIdsFilterArgs(name="tag:Role", values=[role]),
            aws.ec2.GetAmiIdsFilterArgs(name="state", values=["available"]),
        ],
        sort_ascending=False,
        opts=opts,
    ).ids
    return ids[0] if ids else None
