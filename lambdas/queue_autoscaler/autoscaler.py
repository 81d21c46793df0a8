"""One autoscaler run: read the backlog and the fleet, decide, act, remember.

The decision's memory (scale-in windows, the backlog of the last scale-out) and the
fallback live in an SSM parameter, not in memory, so that a cold start or two overlapping
runs see the same history. So does a capacity change about to be made: it is recorded
before the fleet is written, and published by the run that made it or, if that run failed
after the write, by the retry (every change is published).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from decide import FleetCapacity, Memory, Policy, decide, warmed
from fallback import Fallback, Observation, step
from fleets import AutoScalingGroup, SpotFleetRequest
from spotyard_lambda import aws, log, notify
from spotyard_lambda.settings import QueueAutoscalerSettings

NAMESPACE = "spotyard"


def policy_of(config: QueueAutoscalerSettings) -> Policy:
    return Policy(
        messages_per_instance=config.messages_per_instance,
        min_capacity=config.min_capacity,
        max_capacity=config.max_capacity,
        cooldown_seconds=config.scale_in_cooldown_seconds,
        boot_seconds=config.boot_seconds,
    )


@dataclass(frozen=True)
class Change:
    """A capacity change decided and about to be written: what its notification says."""

    previous: int
    wanted: int
    reason: str
    backlog: int


@dataclass(frozen=True)
class State:
    memory: Memory = Memory()
    fallback: Fallback = Fallback()
    last_run: float | None = None
    unpublished: Change | None = None

    @classmethod
    def load(cls, parameter: str) -> State:
        raw = json.loads(aws.client("ssm").get_parameter(Name=parameter)["Parameter"]["Value"] or "{}")
        return cls(
            memory=Memory(**raw.get("memory", {})),
            fallback=Fallback(**raw.get("fallback", {})),
            last_run=raw.get("lastRun"),
            unpublished=Change(**raw["unpublished"]) if raw.get("unpublished") else None,
        )

    def save(self, parameter: str) -> None:
        value = {
            "memory": asdict(self.memory),
            "fallback": asdict(self.fallback),
            "lastRun": self.last_run,
            "unpublished": asdict(self.unpublished) if self.unpublished else None,
        }
        aws.client("ssm").put_parameter(Name=parameter, Value=json.dumps(value), Type="String", Overwrite=True)


def backlog(queue_url: str) -> tuple[int, int]:
    """Visible and in-flight messages: work waiting and work being done."""
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def run(config: QueueAutoscalerSettings, now: float, warm_up: tuple[int, int] | None = None) -> dict[str, Any]:
    """One run; `warm_up` (capacity, seconds) starts a warm-up at `now`."""
    engine = AutoScalingGroup if config.engine == "asg" else SpotFleetRequest
    fleet = engine(config.capacity_target)
    state = State.load(config.state_parameter)
    memory = state.memory
    if warm_up is not None:
        capacity, seconds = warm_up
        memory = warmed(memory, capacity, now, seconds)
    waiting, in_flight = backlog(config.queue_url)
    demand = waiting + in_flight
    view = fleet.read()
    if state.unpublished and state.unpublished.previous != view.desired:  # made by a run that then failed
        _publish(config, state.unpublished, view.desired)
    moment, boot = datetime.fromtimestamp(now, tz=UTC), timedelta(seconds=config.boot_seconds)
    on_its_way = fleet.on_its_way(view.desired, moment, boot)
    decision = decide(FleetCapacity(view.desired, on_its_way), demand, now, memory, policy_of(config), waiting)
    capacity = view.desired
    if decision.capacity != view.desired:
        change = Change(previous=view.desired, wanted=decision.capacity, reason=decision.reason, backlog=demand)
        # The decision's memory goes with the record: a retry after the write must judge the
        # backlog against the capacity this run ordered for it, not order it again.
        replace(state, memory=decision.memory, unpublished=change).save(config.state_parameter)
        capacity = fleet.set_capacity(view.desired, decision.capacity)
        _publish(config, change, capacity)
    else:
        fleet.settle(view.desired)
    fallback = state.fallback
    if config.on_demand_fallback:
        since = datetime.fromtimestamp(state.last_run or now - 120, tz=UTC)
        fallback = step(
            state.fallback,
            Observation(
                desired=capacity,
                spot_in_service=fleet.spot_in_service(),
                capacity_failures=fleet.capacity_failures(since),
            ),
            now,
        )
        changed = fallback.on_demand != state.fallback.on_demand
        if changed or fallback.on_demand != view.on_demand:  # a change, or a drift from what was set
            fleet.set_on_demand(fallback.on_demand, capacity)
        if changed:
            notify.publish(
                f"spotyard: {config.fleet} on-demand capacity {state.fallback.on_demand} -> {fallback.on_demand}",
                {
                    "fleet": config.fleet,
                    "on-demand": fallback.on_demand,
                    "reason": "Spot capacity is short" if fallback.engaged else "Spot is available again",
                },
            )
    State(memory=decision.memory, fallback=fallback, last_run=now).save(config.state_parameter)
    _metrics(config, demand, capacity, capacity - view.desired)
    result = {
        "fleet": config.fleet,
        "backlog": demand,
        "from": view.desired,
        "to": capacity,
        "reason": decision.reason,
        "onItsWay": on_its_way,
        "onDemand": fallback.on_demand,
    }
    log.info("autoscaler.run", **result)
    return result


def _publish(config: QueueAutoscalerSettings, change: Change, capacity: int) -> None:
    notify.publish(
        f"spotyard: {config.fleet} capacity {change.previous} -> {capacity} ({change.reason})",
        {
            "fleet": config.fleet,
            "backlog": change.backlog,
            "from": change.previous,
            "to": capacity,
            "reason": change.reason,
            "kept for busy instances": max(0, capacity - change.wanted),
        },
    )


def _metrics(config: QueueAutoscalerSettings, demand: int, capacity: int, change: int) -> None:
    dimensions = [{"Name": "Stack", "Value": config.stack}, {"Name": "Fleet", "Value": config.fleet}]
    data = [
        {"MetricName": "Backlog", "Dimensions": dimensions, "Value": demand, "Unit": "Count"},
        {"MetricName": "DesiredCapacity", "Dimensions": dimensions, "Value": capacity, "Unit": "Count"},
    ]
    if change:
        data.append({"MetricName": "CapacityChange", "Dimensions": dimensions, "Value": change, "Unit": "Count"})
    aws.client("cloudwatch").put_metric_data(Namespace=NAMESPACE, MetricData=data)
