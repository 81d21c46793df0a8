"""Saving a leaving instance as an AMI and following it with the fleet's AMI parameter.

An instance leaving an `asg` fleet is held by a termination lifecycle hook: its AMI is
started (no reboot) and tagged with the pending action, and when EC2 reports the AMI
available the parameter moves to it (only forward: never to an AMI older than the one it
names) and the action is completed, letting the instance go. AMIs started elsewhere (the
interruption handler, `spotyard stop`) move the parameter the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spotyard_lambda import aws, images, log, notify
from spotyard_lambda.events import INSTANCE_ID, UnparseableEvent
from spotyard_lambda.instances import describe
from spotyard_lambda.names import (
    FLEET_TAG,
    LIFECYCLE_GROUP_TAG,
    LIFECYCLE_HOOK_TAG,
    LIFECYCLE_TOKEN_TAG,
    SOURCE_INSTANCE_TAG,
    STACK_TAG,
)
from spotyard_lambda.settings import ImageKeeperSettings


@dataclass(frozen=True)
class LifecycleAction:
    instance_id: str
    group: str
    hook: str
    token: str

    @classmethod
    def from_detail(cls, detail: dict[str, Any]) -> LifecycleAction:
        fields = {
            key: detail.get(key)
            for key in ("EC2InstanceId", "AutoScalingGroupName", "LifecycleHookName", "LifecycleActionToken")
        }
        if not all(isinstance(v, str) and v for v in fields.values()) or not INSTANCE_ID.fullmatch(
            fields["EC2InstanceId"]
        ):
            raise UnparseableEvent(f"lifecycle action without instance, group, hook and token: {fields}")
        return cls(
            instance_id=fields["EC2InstanceId"],
            group=fields["AutoScalingGroupName"],
            hook=fields["LifecycleHookName"],
            token=fields["LifecycleActionToken"],
        )


def on_leaving(config: ImageKeeperSettings, action: LifecycleAction) -> dict[str, Any]:
    ec2 = aws.client("ec2")
    instance = describe(ec2, action.instance_id)
    fleet = config.fleets.get(instance.fleet) if instance and instance.owned_by(config.stack) else None
    if instance is None or fleet is None:
        log.info("images.not_ours", instance_id=action.instance_id, group=action.group)
        _complete(action.group, action.hook, action.token, action.instance_id)
        return {"instanceId": action.instance_id, "ignored": True}
    image_id, started = images.start_image(
        ec2,
        instance,
        config.stack,
        fleet.image_role_tag,
        extra_tags={
            LIFECYCLE_HOOK_TAG: action.hook,
            LIFECYCLE_GROUP_TAG: action.group,
            LIFECYCLE_TOKEN_TAG: action.token,
        },
    )
    result = {"instanceId": instance.id, "imageId": image_id, "started": started}
    (image,) = ec2.describe_images(ImageIds=[image_id])["Images"]
    if image["State"] == "available":  # already saved (e.g. by `spotyard stop`): nothing to wait for
        result |= on_image_state(config, image_id, "available")
    return result


def on_image_state(config: ImageKeeperSettings, image_id: str, state: str) -> dict[str, Any]:
    ec2 = aws.client("ec2")
    found = ec2.describe_images(ImageIds=[image_id])["Images"]
    tags = {t["Key"]: t["Value"] for t in found[0].get("Tags", [])} if found else {}
    fleet = config.fleets.get(tags.get(FLEET_TAG, "")) if tags.get(STACK_TAG) == config.stack else None
    if fleet is None or SOURCE_INSTANCE_TAG not in tags:
        log.info("images.not_ours", image_id=image_id, state=state)
        return {"imageId": image_id, "ignored": True}
    moved = state == "available" and _follow(ec2, fleet.parameter, found[0])
    if state == "failed":
        notify.publish(
            f"spotyard: {tags[FLEET_TAG]} AMI {image_id} failed",
            {"fleet": tags[FLEET_TAG], "image": image_id, "instance": tags[SOURCE_INSTANCE_TAG]},
        )
    if LIFECYCLE_TOKEN_TAG in tags:
        _complete(
            tags[LIFECYCLE_GROUP_TAG], tags[LIFECYCLE_HOOK_TAG], tags[LIFECYCLE_TOKEN_TAG], tags[SOURCE_INSTANCE_TAG]
        )
    return {"imageId": image_id, "state": state, "parameterMoved": moved}


def _follow(ec2, parameter: str, image: dict[str, Any]) -> bool:
    """Point the parameter at `image` unless it already names it or a newer one."""
    ssm = aws.client("ssm")
    current = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    if current == image["ImageId"]:
        return False
    named = ec2.describe_images(ImageIds=[current])["Images"] if current.startswith("ami-") else []
    if named and named[0]["CreationDate"] > image["CreationDate"]:
        log.info("images.older_than_current", image_id=image["ImageId"], current=current)
        return False
    ssm.put_parameter(Name=parameter, Value=image["ImageId"], Type="String", DataType="aws:ec2:image", Overwrite=True)
    log.info("images.parameter_moved", parameter=parameter, image_id=image["ImageId"], previous=current)
    return True


def _complete(group: str, hook: str, token: str, instance_id: str) -> None:
    """Let the instance go. A second completion of the same action is not an error."""
    autoscaling = aws.client("autoscaling")
    try:
        autoscaling.complete_lifecycle_action(
            AutoScalingGroupName=group,
            LifecycleHookName=hook,
            LifecycleActionToken=token,
            LifecycleActionResult="CONTINUE",
            InstanceId=instance_id,
        )
    except autoscaling.exceptions.ClientError as error:
        if aws.error_code(error) != "ValidationError":
            raise
        log.info("images.action_already_completed", group=group, instance_id=instance_id, error=str(error))
