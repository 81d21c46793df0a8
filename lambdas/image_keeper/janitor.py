"""The daily sweep: per fleet, keep the `image.keep` newest saved AMIs; deregister the
others and delete their snapshots. Never touches an AMI the fleet's parameter or one of its
launch template versions names, nor one this stack did not save."""

from __future__ import annotations

from typing import Any

from spotyard_lambda import aws, images, log
from spotyard_lambda.instances import FLEET_TAG, STACK_TAG
from spotyard_lambda.settings import StackSettings


def plan(saved: list[dict[str, Any]], keep: int, referenced: set[str]) -> list[dict[str, Any]]:
    """The saved AMIs to remove: all but the `keep` newest, sparing referenced and pending ones."""
    newest_first = sorted(saved, key=lambda image: (image["CreationDate"], image["ImageId"]), reverse=True)
    return [image for image in newest_first[keep:]
            if image["ImageId"] not in referenced and image["State"] == "available"]


def sweep(config: StackSettings) -> dict[str, Any]:
    ec2 = aws.client("ec2")
    removed: dict[str, list[str]] = {}
    for name, fleet in sorted(config.fleets.items()):
        saved = ec2.describe_images(Owners=["self"], Filters=[
            {"Name": f"tag:{STACK_TAG}", "Values": [config.stack]}, {"Name": f"tag:{FLEET_TAG}", "Values": [name]},
            {"Name": "tag-key", "Values": [images.SOURCE_TAG]}])["Images"]
        doomed = plan(saved, int(fleet["keep"]), _referenced(ec2, fleet))
        for image in doomed:
            _remove(ec2, image)
        removed[name] = [image["ImageId"] for image in doomed]
    return {"removed": removed}


def _referenced(ec2, fleet: dict[str, Any]) -> set[str]:
    referenced = {aws.client("ssm").get_parameter(Name=fleet["parameter"])["Parameter"]["Value"]}
    pages = ec2.get_paginator("describe_launch_template_versions").paginate(
        LaunchTemplateId=fleet["launchTemplateId"])
    referenced |= {version["LaunchTemplateData"].get("ImageId", "") for page in pages
                   for version in page["LaunchTemplateVersions"]}
    return referenced


def _remove(ec2, image: dict[str, Any]) -> None:
    ec2.deregister_image(ImageId=image["ImageId"])
    for mapping in image.get("BlockDeviceMappings", []):
        snapshot = mapping.get("Ebs", {}).get("SnapshotId")
        if not snapshot:
            continue
        try:
            ec2.delete_snapshot(SnapshotId=snapshot)
        except ec2.exceptions.ClientError as error:
            if aws.error_code(error) not in ("InvalidSnapshot.NotFound", "InvalidSnapshot.InUse"):
                raise
            log.warning("images.snapshot_kept", snapshot=snapshot, error=str(error))
    log.info("images.removed", image_id=image["ImageId"], name=image.get("Name"))
