"""What happens to an instance Spot takes back, each step idempotent and independent of the
others (one failing does not keep the next from running):

1. tag it `spotyard:interrupted` (the DNS registrar stops naming it);
2. `asg`: detach it from its group (decrementing only with `decrementCapacity`, so that a
   replacement starts at once otherwise); both engines: deregister it from the fleet's
   target groups, which starts connection draining now;
3. remove its DNS names (the registrar's own code, for this one instance);
4. with `snapshotOnTerminate`: start an AMI, without a reboot;
5. publish one notification (saying what was done and what failed), then tag it
   `spotyard:drained`, with the steps that failed in `spotyard:drain-left`.

When a step failed, the run still fails (so the event is retried); the retry finds the
`spotyard:drained` tag and does only the steps `spotyard:drain-left` names. A repeated
warning after a complete drain does nothing.

A rebalance recommendation does all of this on `spot-fleet` fleets with `onRebalance: drain`;
on `asg` fleets with `drain` the group's own capacity rebalancing (turned on only there)
launches a replacement and then terminates the instance through the group (and its
lifecycle hook), so here it is only published, once: detaching it too would start a second
replacement and leave the detached instance running, and billed, until Spot reclaims it,
which a recommendation does not promise. With `notify` it is only published (once).
Instances of other stacks are logged and left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spotyard_lambda import aws, dns, images, log, notify
from spotyard_lambda.instances import Instance, describe
from spotyard_lambda.names import DRAIN_LEFT_TAG, DRAINED_TAG, INTERRUPTED_TAG, REBALANCE_NOTIFIED_TAG
from spotyard_lambda.settings import InterruptedFleet, InterruptionHandlerSettings, TargetGroup

STEPS = ("detach", "deregister", "dns", "image", "notify")


@dataclass(frozen=True)
class Notice:
    kind: str  # interruption | rebalance
    instance_id: str
    time: str
    action: str = ""


def handle(notice: Notice, config: InterruptionHandlerSettings) -> dict[str, Any]:
    ec2 = aws.client("ec2")
    instance = describe(ec2, notice.instance_id)
    if instance is None or not instance.owned_by(config.stack) or instance.fleet not in config.fleets:
        log.info(
            "interruption.ignored",
            instance_id=notice.instance_id,
            kind=notice.kind,
            reason="not an instance of this stack's fleets",
            tags=instance.tags if instance else None,
        )
        return {"instanceId": notice.instance_id, "ignored": True}
    fleet = config.fleets[instance.fleet]
    if notice.kind == "rebalance" and fleet.on_rebalance == "notify":
        return _notify_rebalance(ec2, instance, notice, "nothing (onRebalance: notify)")
    if notice.kind == "rebalance" and fleet.engine == "asg":
        # Capacity rebalancing: https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-capacity-rebalancing.html
        return _notify_rebalance(
            ec2,
            instance,
            notice,
            "nothing here: the group's capacity rebalancing launches a replacement, then terminates this instance",
        )
    if DRAINED_TAG in instance.tags:
        left = [step for step in instance.tags.get(DRAIN_LEFT_TAG, "").split(",") if step]
        if not left:
            log.info("interruption.already_drained", instance_id=instance.id, drained=instance.tags[DRAINED_TAG])
            return {"instanceId": instance.id, "fleet": instance.fleet, "done": [], "alreadyDrained": True}
        log.info("interruption.retrying", instance_id=instance.id, steps=left)
        return _drain(ec2, instance, fleet, notice, config, left)
    _tag(ec2, instance.id, {INTERRUPTED_TAG: notice.time})
    return _drain(ec2, instance, fleet, notice, config, list(STEPS))


class StepsFailed(Exception):
    """Some drain steps failed; the others ran. The retry does what is left."""


def _drain(
    ec2,
    instance: Instance,
    fleet: InterruptedFleet,
    notice: Notice,
    config: InterruptionHandlerSettings,
    steps: list[str],
) -> dict[str, Any]:
    done, failed, errors = [], [], []
    actions: dict[str, Callable[[], str | None]] = {
        "detach": lambda: _detach(instance, fleet),
        "deregister": lambda: _deregister(instance, fleet.target_groups),
        "dns": lambda: _unname(instance, config),
        "image": lambda: _save_image(ec2, instance, config.stack, fleet.image_role_tag),
        "notify": lambda: _publish(instance, notice, done, failed),
    }
    for step in (s for s in STEPS if s in steps):
        try:
            outcome = actions[step]()
        except Exception as error:  # noqa: BLE001 (each step runs whatever the others did; the run fails below)
            log.warning("interruption.step_failed", instance_id=instance.id, step=step, error=repr(error))
            failed.append(step)
            errors.append(error)
            continue
        if outcome:
            done.append(outcome)
    _tag(ec2, instance.id, {DRAINED_TAG: notice.time, DRAIN_LEFT_TAG: ",".join(failed)})
    result = {"instanceId": instance.id, "fleet": instance.fleet, "done": done, "failed": failed}
    if failed:
        log.info("interruption.incomplete", **result)
        raise StepsFailed(f"{instance.id}: {', '.join(failed)} failed; a retry does only these") from errors[0]
    return result


def _unname(instance: Instance, config: InterruptionHandlerSettings) -> str | None:
    """The registrar's own convergence, for this instance only, without names (even before
    its `spotyard:interrupted` tag shows)."""
    if not config.zone:
        return None
    outcome = dns.converge_instances(
        dns.Route53(config.zone), config.stack, [dns.Target(instance.id, instance.fleet, None)]
    )
    if outcome.refused:
        raise dns.ChangesRefused(f"Route 53 refused to remove the names of {instance.id}")
    return "DNS names removed"


def _save_image(ec2, instance: Instance, stack: str, role_tag: str | None) -> str | None:
    if not role_tag:
        return None
    image_id, _ = images.start_image(ec2, instance, stack, role_tag)
    return f"AMI {image_id} started"


def _publish(instance: Instance, notice: Notice, done: list[str], failed: list[str]) -> None:
    notify.publish(
        f"spotyard: {instance.fleet} {instance.id} {_headline(notice)}", _facts(instance, notice, done, failed)
    )


def _notify_rebalance(ec2, instance: Instance, notice: Notice, outcome: str) -> dict[str, Any]:
    if REBALANCE_NOTIFIED_TAG in instance.tags:
        return {"instanceId": instance.id, "fleet": instance.fleet, "done": [], "alreadyNotified": True}
    notify.publish(f"spotyard: {instance.fleet} {instance.id} {_headline(notice)}", _facts(instance, notice, [outcome]))
    _tag(ec2, instance.id, {REBALANCE_NOTIFIED_TAG: notice.time})
    return {"instanceId": instance.id, "fleet": instance.fleet, "done": ["notified"]}


def _detach(instance: Instance, fleet: InterruptedFleet) -> str | None:
    """Detach from the fleet's group (`asg` fleets); None when it is no longer in one."""
    if fleet.engine != "asg":
        return None
    autoscaling = aws.client("autoscaling")
    found = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance.id])["AutoScalingInstances"]
    if (
        not found
        or found[0]["AutoScalingGroupName"] != fleet.capacity_target
        or found[0]["LifecycleState"] in ("Detaching", "Detached", "Terminating", "Terminated")
    ):
        return None
    decrement = fleet.decrement_capacity
    try:
        autoscaling.detach_instances(
            InstanceIds=[instance.id],
            AutoScalingGroupName=fleet.capacity_target,
            ShouldDecrementDesiredCapacity=decrement,
        )
    except autoscaling.exceptions.ClientError as error:
        if not decrement or aws.error_code(error) != "ValidationError":
            raise
        # The group is at its minimum size: it must replace the instance after all.
        log.warning("interruption.at_min_size", instance_id=instance.id, error=str(error))
        autoscaling.detach_instances(
            InstanceIds=[instance.id], AutoScalingGroupName=fleet.capacity_target, ShouldDecrementDesiredCapacity=False
        )
        decrement = False
    return "detached from its Auto Scaling group" + (
        " (desired capacity lowered)" if decrement else " (a replacement is starting)"
    )


def _deregister(instance: Instance, target_groups: tuple[TargetGroup, ...]) -> str | None:
    elbv2 = aws.client("elbv2")
    for group in target_groups:
        target = instance.private_ip if group.target_type == "ip" else instance.id
        try:
            elbv2.deregister_targets(TargetGroupArn=group.arn, Targets=[{"Id": target}])
        except elbv2.exceptions.InvalidTargetException:
            log.info("interruption.not_registered", instance_id=instance.id, target_group=group.arn)
    if not target_groups:
        return None
    return f"deregistered from {len(target_groups)} target group(s), connections draining"


def _tag(ec2, instance_id: str, tags: dict[str, str]) -> None:
    ec2.create_tags(Resources=[instance_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])


def _headline(notice: Notice) -> str:
    if notice.kind == "interruption":
        return f"Spot interruption ({notice.action or 'terminate'})"
    return "rebalance recommendation"


def _facts(instance: Instance, notice: Notice, done: list[str], failed: list[str] | None = None) -> dict[str, object]:
    facts: dict[str, object] = {
        "notice": _headline(notice),
        "fleet": instance.fleet,
        "instance": instance.id,
        "type": instance.instance_type,
        "availability zone": instance.availability_zone,
        "private ip": instance.private_ip,
        "notice time": notice.time,
        "done": "; ".join(done) or "nothing",
    }
    if failed:
        facts["failed (retried)"] = ", ".join(failed)
    return facts
