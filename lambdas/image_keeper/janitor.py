"""The daily sweep: per fleet, keep the `image.keep` newest saved AMIs; deregister the
others and delete their snapshots. Never touches an AMI the fleet's parameter or one of its
launch template versions names, nor one this stack did not save.

A snapshot cannot be deleted while a registered AMI uses it, so the AMI goes first. Its
snapshots are not looked up through it: every snapshot spotyard saves carries the stack and
source-instance tags from its creation (see spotyard_lambda/images.py), and each sweep
deletes the stack's snapshots whose source instance no longer has an AMI. A sweep that
fails anywhere (a deregister answered with an error although it was applied, a snapshot
delete refused) leaves nothing behind: the next one finds the same snapshots."""

from __future__ import annotations

from typing import Any

from spotyard_lambda import aws, log
from spotyard_lambda.names import FLEET_TAG, SOURCE_INSTANCE_TAG, STACK_TAG
from spotyard_lambda.settings import ImageKeeperSettings, KeptFleet


def plan(saved: list[dict[str, Any]], keep: int, referenced: set[str]) -> list[dict[str, Any]]:
    """The saved AMIs to remove: all but the `keep` newest, sparing referenced and pending ones."""
    newest_first = sorted(saved, key=lambda image: (image["CreationDate"], image["ImageId"]), reverse=True)
    return [
        image for image in newest_first[keep:] if image["ImageId"] not in referenced and image["State"] == "available"
    ]


def sweep(config: ImageKeeperSettings) -> dict[str, Any]:
    ec2 = aws.client("ec2")
    removed: dict[str, list[str]] = {}
    for name, fleet in sorted(config.fleets.items()):
        saved = ec2.describe_images(
            Owners=["self"],
            Filters=[
                {"Name": f"tag:{STACK_TAG}", "Values": [config.stack]},
                {"Name": f"tag:{FLEET_TAG}", "Values": [name]},
                {"Name": "tag-key", "Values": [SOURCE_INSTANCE_TAG]},
            ],
        )["Images"]
        doomed = plan(saved, fleet.keep, _referenced(ec2, fleet))
        for image in doomed:
            _deregister(ec2, image)
        removed[name] = [image["ImageId"] for image in doomed]
    return {"removed": removed, "snapshotsDeleted": _delete_orphaned_snapshots(ec2, config.stack)}


def _referenced(ec2, fleet: KeptFleet) -> set[str]:
    referenced = {aws.client("ssm").get_parameter(Name=fleet.parameter)["Parameter"]["Value"]}
    pages = ec2.get_paginator("describe_launch_template_versions").paginate(LaunchTemplateId=fleet.launch_template_id)
    referenced |= {
        version["LaunchTemplateData"].get("ImageId", "") for page in pages for version in page["LaunchTemplateVersions"]
    }
    return referenced


def _deregister(ec2, image: dict[str, Any]) -> None:
    """Deregister; an AMI already gone (`InvalidAMIID.Unavailable` right after a deregister,
    `InvalidAMIID.NotFound` later) counts as done."""
    try:
        ec2.deregister_image(ImageId=image["ImageId"])
    except ec2.exceptions.ClientError as error:
        if aws.error_code(error) not in ("InvalidAMIID.Unavailable", "InvalidAMIID.NotFound"):
            raise
        log.info("images.already_deregistered", image_id=image["ImageId"], error=str(error))
    log.info("images.removed", image_id=image["ImageId"], name=image.get("Name"))


def orphaned(snapshots: list[dict[str, Any]], saved: list[dict[str, Any]]) -> list[str]:
    """The snapshots whose source instance has no AMI left. A deregistered AMI may still be
    listed for a while, in state `deregistered`; a pending one already owns its snapshots."""

    def source(resource: dict[str, Any]) -> str | None:
        return next((t["Value"] for t in resource.get("Tags", []) if t["Key"] == SOURCE_INSTANCE_TAG), None)

    live = {source(image) for image in saved if image["State"] != "deregistered"}
    return sorted(snapshot["SnapshotId"] for snapshot in snapshots if source(snapshot) not in live)


def _delete_orphaned_snapshots(ec2, stack: str) -> list[str]:
    ours = [{"Name": f"tag:{STACK_TAG}", "Values": [stack]}, {"Name": "tag-key", "Values": [SOURCE_INSTANCE_TAG]}]
    saved = ec2.describe_images(Owners=["self"], Filters=ours)["Images"]
    pages = ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], Filters=ours)
    deleted = []
    for snapshot in orphaned([s for page in pages for s in page["Snapshots"]], saved):
        try:
            ec2.delete_snapshot(SnapshotId=snapshot)
        except ec2.exceptions.ClientError as error:
            code = aws.error_code(error)
            if code == "InvalidSnapshot.InUse":  # registered again, by hand, as another AMI: kept
                log.warning("images.snapshot_kept", snapshot=snapshot, error=str(error))
                continue
            if code != "InvalidSnapshot.NotFound":
                raise
        deleted.append(snapshot)
        log.info("images.snapshot_deleted", snapshot=snapshot)
    return deleted
