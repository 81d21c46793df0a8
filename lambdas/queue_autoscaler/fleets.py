"""The two engines as the autoscaler sees them: read capacity and how much of it is still on
its way, set it, set the on-demand part, and tell whether Spot launches failed for lack of
capacity since a given time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from spotyard_lambda import aws, log
from spotyard_lambda.instances import Instance
from spotyard_lambda.names import BUSY_TAG, INTERRUPTED_TAG

# Why a Spot launch fails when the capacity is not there (Auto Scaling activity messages).
CAPACITY_REASONS = (
    "InsufficientInstanceCapacity",
    "InsufficientCapacity",
    "UnfulfillableCapacity",
    "MaxSpotInstanceCountExceeded",
    "SpotMaxPriceTooLow",
    "capacity",
)
# Spot Fleet history events that mean the same.
CAPACITY_EVENTS = (
    "allLaunchSpecsTemporarilyBlacklisted",
    "launchSpecTemporarilyBlacklisted",
    "spotInstanceCountLimitExceeded",
)
# Auto Scaling lifecycle states of an instance launched but not yet in service
# (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-lifecycle.html).
PENDING_STATES = ("Pending", "Pending:Wait", "Pending:Proceed")


def _booting(ec2, instance_ids: list[str], now: datetime, boot: timedelta) -> int:
    """Of these instances, those still pending, or running but launched less than `boot` before
    `now` (a stale listing may name an instance already shutting down: it is not on its way)."""
    if not instance_ids:
        return 0
    reservations = ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]
    return sum(
        i.state == "pending" or (i.state == "running" and now - i.launch_time < boot)
        for i in (Instance.from_api(d) for r in reservations for d in r["Instances"])
    )


@dataclass(frozen=True)
class FleetView:
    desired: int
    on_demand: int


class AutoScalingGroup:
    def __init__(self, name: str) -> None:
        self.name = name
        self.client = aws.client("autoscaling")
        self._members: list[dict] = []
        self._policy: dict = {}

    def read(self) -> FleetView:
        (group,) = self.client.describe_auto_scaling_groups(AutoScalingGroupNames=[self.name])["AutoScalingGroups"]
        self._members = group["Instances"]
        self._policy = group.get("MixedInstancesPolicy", {})
        distribution = self._policy.get("InstancesDistribution", {})
        return FleetView(desired=group["DesiredCapacity"], on_demand=distribution.get("OnDemandBaseCapacity", 0))

    def spot_in_service(self) -> int:
        """Of the members `read` saw, those in service on Spot."""
        serving = [i["InstanceId"] for i in self._members if i["LifecycleState"] == "InService"]
        if not serving:
            return 0
        reservations = aws.client("ec2").describe_instances(InstanceIds=serving)["Reservations"]
        return sum(Instance.from_api(i).lifecycle == "spot" for r in reservations for i in r["Instances"])

    def on_its_way(self, desired: int, now: datetime, boot: timedelta) -> int:
        """Capacity not yet working, of the members `read` saw: members still Pending, members in
        service launched less than `boot` ago, and capacity the group has not launched yet."""
        pending = sum(i["LifecycleState"] in PENDING_STATES for i in self._members)
        serving = [i["InstanceId"] for i in self._members if i["LifecycleState"] == "InService"]
        booting = _booting(aws.client("ec2"), serving, now, boot)
        return max(0, desired - pending - len(serving)) + pending + booting

    def set_capacity(self, current: int, capacity: int) -> int:
        """Busy instances are protected from scale-in, so the group itself spares them."""
        self.client.set_desired_capacity(AutoScalingGroupName=self.name, DesiredCapacity=capacity, HonorCooldown=False)
        return capacity

    def set_on_demand(self, count: int, capacity: int) -> None:
        """The group's instances distribution, as `read` saw it, with the new on-demand base, and
        no launch template: UpdateAutoScalingGroup leaves what it is not sent unchanged, and a
        request that names a template would be authorized as the caller's ec2:RunInstances,
        iam:PassRole and ssm:GetParameters too, which this role does not have (API reference,
        UpdateAutoScalingGroup: "Any properties that you don't specify are not changed";
        https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-launch-template-permissions.html)."""
        self.client.update_auto_scaling_group(
            AutoScalingGroupName=self.name,
            MixedInstancesPolicy={
                "InstancesDistribution": {**self._policy["InstancesDistribution"], "OnDemandBaseCapacity": count}
            },
        )

    def settle(self, target: int) -> None:
        """Nothing: Auto Scaling itself terminates instances beyond the desired capacity."""

    def capacity_failures(self, since: datetime) -> bool:
        activities = self.client.describe_scaling_activities(AutoScalingGroupName=self.name, MaxRecords=20)
        return any(
            a["StartTime"] >= since
            and a["StatusCode"] in ("Failed", "Cancelled")
            and any(reason in a.get("StatusMessage", "") for reason in CAPACITY_REASONS)
            for a in activities["Activities"]
        )


class SpotFleetRequest:
    def __init__(self, request_id: str) -> None:
        self.id = request_id
        self.client = aws.client("ec2")

    def read(self) -> FleetView:
        (request,) = self.client.describe_spot_fleet_requests(SpotFleetRequestIds=[self.id])["SpotFleetRequestConfigs"]
        config = request["SpotFleetRequestConfig"]
        return FleetView(desired=int(config["TargetCapacity"]), on_demand=int(config.get("OnDemandTargetCapacity", 0)))

    def _active(self, spot: bool | None = None) -> list[str]:
        """The fleet's active instances; only its Spot (or only its On-Demand) ones when `spot` is
        True (False): an On-Demand Instance has no Spot request."""
        pages = self.client.get_paginator("describe_spot_fleet_instances").paginate(SpotFleetRequestId=self.id)
        return [
            i["InstanceId"]
            for page in pages
            for i in page["ActiveInstances"]
            if spot is None or bool(i.get("SpotInstanceRequestId")) == spot
        ]

    def _described(self, instance_ids: list[str]) -> list[Instance]:
        if not instance_ids:
            return []
        reservations = self.client.describe_instances(InstanceIds=instance_ids)["Reservations"]
        return [Instance.from_api(i) for r in reservations for i in r["Instances"]]

    def _idle_newest_first(self, instance_ids: list[str], count: int) -> list[Instance]:
        """Up to `count` of these instances that run no job (not tagged spotyard:busy), newest first."""
        if count <= 0:
            return []
        return sorted(
            (i for i in self._described(instance_ids) if BUSY_TAG not in i.tags and i.state == "running"),
            key=lambda i: (i.launch_time, i.id),
            reverse=True,
        )[:count]

    def spot_in_service(self) -> int:
        return len(self._active(spot=True))

    def on_its_way(self, desired: int, now: datetime, boot: timedelta) -> int:
        """Capacity not yet working: active instances still pending or launched less than `boot`
        ago, and target capacity without an instance yet (the fleet's instance list is refreshed
        periodically, so a fresh launch may be missing from it: it counts as on its way)."""
        active = self._active()
        return max(0, desired - len(active)) + _booting(self.client, active, now, boot)

    def set_capacity(self, current: int, capacity: int) -> int:
        """Scale-out sets the target. Scale-in lowers the target without letting the fleet choose
        (`noTermination`) and terminates only idle instances (not tagged spotyard:busy), newest
        first; busy ones keep the capacity up. Returns the capacity set."""
        if capacity >= current:
            self.client.modify_spot_fleet_request(SpotFleetRequestId=self.id, TargetCapacity=capacity)
            return capacity
        active = self._active()
        needed = max(0, len(active) - capacity)
        idle = self._idle_newest_first(active, needed)
        target = capacity + needed - len(idle)
        self.client.modify_spot_fleet_request(
            SpotFleetRequestId=self.id, TargetCapacity=target, ExcessCapacityTerminationPolicy="noTermination"
        )
        if idle:
            self.client.terminate_instances(InstanceIds=[i.id for i in idle])
        if target > capacity:
            log.info("autoscaler.busy_kept", fleet_request=self.id, busy=target - capacity)
        return target

    def settle(self, target: int) -> None:
        """Instances the fleet keeps beyond its target: a scale-in lowers the target with
        `noTermination`, then terminates; a run that failed in between leaves its retry a target
        already lowered, and the surplus would run until the next scale-in. The idle ones beyond
        the target go, newest first, counting only live instances under no interruption notice
        (the instance list is refreshed periodically; an interrupted one is being replaced)."""
        active = self._active()
        if len(active) <= target:
            return
        live = [
            i.id for i in self._described(active) if i.state in ("pending", "running") and INTERRUPTED_TAG not in i.tags
        ]
        surplus = self._idle_newest_first(live, len(live) - target)
        if surplus:
            self.client.terminate_instances(InstanceIds=[i.id for i in surplus])
            log.info("autoscaler.surplus_terminated", fleet_request=self.id, instances=[i.id for i in surplus])

    def set_on_demand(self, count: int, capacity: int) -> None:
        """The on-demand part of the (unchanged) total capacity. A larger part launches On-Demand
        Instances; a smaller one terminates none, as the fleet already has its target's size (EC2
        user guide, "Modify a Spot Fleet request": lowering capacity terminates Spot Instances
        only). So the idle On-Demand Instances beyond the part are terminated here, newest first,
        and the fleet, which maintains its target, replaces them with Spot Instances; busy ones
        stay until a later run finds them idle."""
        self.client.modify_spot_fleet_request(
            SpotFleetRequestId=self.id, TargetCapacity=capacity, OnDemandTargetCapacity=count
        )
        on_demand = self._active(spot=False)
        surplus = self._idle_newest_first(on_demand, len(on_demand) - count)
        if surplus:
            self.client.terminate_instances(InstanceIds=[i.id for i in surplus])
            log.info("autoscaler.on_demand_replaced", fleet_request=self.id, instances=[i.id for i in surplus])

    def capacity_failures(self, since: datetime) -> bool:
        history = self.client.describe_spot_fleet_request_history(SpotFleetRequestId=self.id, StartTime=since)
        return any(
            record["EventType"] in ("error", "information")
            and (
                record.get("EventInformation", {}).get("EventSubType") in CAPACITY_EVENTS
                or "capacity" in record.get("EventInformation", {}).get("EventDescription", "").lower()
            )
            for record in history["HistoryRecords"]
        )
