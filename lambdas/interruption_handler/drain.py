"""What happens to an instance Spot takes back, in order, each step idempotent:

1. tag it `spotyard:interrupted` (the DNS registrar stops naming it);
2. `asg`: detach it from its group (decrementing only with `decrementCapacity`, so that a
   replacement starts at once otherwise); both engines: deregister it from the fleet's
   target groups, which starts connection draining now;
3. remove its DNS names (the registrar's own code);
4. with `snapshotOnTerminate`: start an AMI, without a reboot;
5. publish one notification, then tag it `spotyard:drained`: a repeated warning finds the
   tag and does nothing twice.

A rebalance recommendation does all of this with `onRebalance: drain`; with `notify` it is
only published (once). Instances of other stacks are logged and left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spotyard_lambda import aws, dns, images, log, notify
from spotyard_lambda.instances import INTERRUPTED_TAG, Instance, describe, serving, stack_instances
from spotyard_lambda.settings import StackSettings

DRAINED_TAG = "spotyard:drained"
REBALANCE_NOTIFIED_TAG = "spotyard:rebalance-notified"


@dataclass(frozen=True)
class Notice:
    kind: str  # interruption | rebalance
    instance_id: str
    time: str
    action: str = ""


def handle(notice: Notice, config: StackSettings) -> dict[str, Any]:
    ec2 = aws.client("ec2")
    instance = describe(ec2, notice.instance_id)
    if instance is None or not instance.owned_by(config.stack) or instance.fleet not in config.fleets:
        log.info("interruption.ignored", instance_id=notice.instance_id, kind=notice.kind,
                 reason="not an instance of this stack's fleets", tags=instance.tags if instance else None)
        return {"instanceId": notice.instance_id, "ignored": True}
    fleet = config.fleets[instance.fleet]
    if notice.kind == "rebalance" and fleet.get("onRebalance", "notify") == "notify":
        return _notify_rebalance(ec2, instance, notice)
    if DRAINED_TAG in instance.tags:
        log.info("interruption.already_drained", instance_id=instance.id, drained=instance.tags[DRAINED_TAG])
        return {"instanceId": instance.id, "fleet": instance.fleet, "done": [], "alreadyDrained": True}

    _tag(ec2, instance.id, INTERRUPTED_TAG, notice.time)
    done = []
    if fleet["engine"] == "asg" and _detach(instance, fleet):
        done.append("detached from its Auto Scaling group" +
                    (" (desired capacity lowered)" if fleet.get("decrementCapacity") else
                     " (a replacement is starting)"))
    deregistered = _deregister(instance, fleet.get("targetGroups", []))
    if deregistered:
        done.append(f"deregistered from {deregistered} target group(s), connections draining")
    if config.zone:
        # The registrar's own convergence, without this instance (even before its tag shows).
        dns.converge(config.zone, config.stack, {instance.fleet}, lambda name: [
            i for i in serving(stack_instances(ec2, config.stack, fleet=name)) if i.id != instance.id])
        done.append("DNS names removed")
    if fleet.get("snapshotRoleTag"):
        image_id, _ = images.start_image(ec2, instance, config.stack, fleet["snapshotRoleTag"])
        done.append(f"AMI {image_id} started")
    notify.publish(f"spotyard: {instance.fleet} {instance.id} {_headline(notice)}",
                   _facts(instance, notice, done))
    _tag(ec2, instance.id, DRAINED_TAG, notice.time)
    return {"instanceId": instance.id, "fleet": instance.fleet, "done": done}


def _notify_rebalance(ec2, instance: Instance, notice: Notice) -> dict[str, Any]:
    if REBALANCE_NOTIFIED_TAG in instance.tags:
        return {"instanceId": instance.id, "fleet": instance.fleet, "done": [], "alreadyNotified": True}
    notify.publish(f"spotyard: {instance.fleet} {instance.id} {_headline(notice)}",
                   _facts(instance, notice, ["nothing (onRebalance: notify)"]))
    _tag(ec2, instance.id, REBALANCE_NOTIFIED_TAG, notice.time)
    return {"instanceId": instance.id, "fleet": instance.fleet, "done": ["notified"]}


def _detach(instance: Instance, fleet: dict[str, Any]) -> bool:
    """Detach from the fleet's group; False when it is no longer in it."""
    autoscaling = aws.client("autoscaling")
    found = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance.id])["AutoScalingInstances"]
    if not found or found[0]["AutoScalingGroupName"] != fleet["groupName"] or \
            found[0]["LifecycleState"] in ("Detaching", "Detached", "Terminating", "Terminated"):
        return False
    decrement = bool(fleet.get("decrementCapacity"))
    try:
        autoscaling.detach_instances(InstanceIds=[instance.id], AutoScalingGroupName=fleet["groupName"],
                                     ShouldDecrementDesiredCapacity=decrement)
    except autoscaling.exceptions.ClientError as error:
        if not decrement or aws.error_code(error) != "ValidationError":
            raise
        # The group is at its minimum size: it must replace the instance after all.
        log.warning("interruption.at_min_size", instance_id=instance.id, error=str(error))
        autoscaling.detach_instances(InstanceIds=[instance.id], AutoScalingGroupName=fleet["groupName"],
                                     ShouldDecrementDesiredCapacity=False)
    return True


def _deregister(instance: Instance, target_groups: list[dict[str, str]]) -> int:
    elbv2 = aws.client("elbv2")
    for group in target_groups:
        target = instance.private_ip if group.get("targetType") == "ip" else instance.id
        try:
            elbv2.deregister_targets(TargetGroupArn=group["arn"], Targets=[{"Id": target}])
        except elbv2.exceptions.InvalidTargetException:
            log.info("interruption.not_registered", instance_id=instance.id, target_group=group["arn"])
    return len(target_groups)


def _tag(ec2, instance_id: str, key: str, value: str) -> None:
    ec2.create_tags(Resources=[instance_id], Tags=[{"Key": key, "Value": value}])


def _headline(notice: Notice) -> str:
    if notice.kind == "interruption":
        return f"Spot interruption ({notice.action or 'terminate'})"
    return "rebalance recommendation"


def _facts(instance: Instance, notice: Notice, done: list[str]) -> dict[str, object]:
    return {"notice": _headline(notice), "fleet": instance.fleet, "instance": instance.id,
            "type": instance.instance_type, "availability zone": instance.availability_zone,
            "private ip": instance.private_ip, "notice time": notice.time, "done": "; ".join(done) or "nothing"}
