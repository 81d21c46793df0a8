"""A deployed stack's fleets as the CLI finds them: by their `spotyard:stack` tag, with
boto3 only (no Pulumi CLI, no state file)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from spotyard_lambda.names import FLEET_TAG, STACK_TAG

LIVE_REQUEST_STATES = ("submitted", "active", "modifying")


class NotFound(Exception):
    """Nothing deployed, or no such fleet: the message says which."""


@dataclass
class Fleet:
    name: str
    engine: str
    target: str  # Auto Scaling group name or Spot Fleet request id
    desired: int
    tags: dict[str, str] = field(default_factory=dict)
    minimum: int = 0  # an Auto Scaling group's MinSize


def _tags(items: list[dict[str, str]]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items}


def find_fleets(session, stack: str) -> dict[str, Fleet]:
    fleets: dict[str, Fleet] = {}
    autoscaling = session.client("autoscaling")
    for page in autoscaling.get_paginator("describe_auto_scaling_groups").paginate(
        Filters=[{"Name": f"tag:{STACK_TAG}", "Values": [stack]}]
    ):
        for group in page["AutoScalingGroups"]:
            tags = _tags(group.get("Tags", []))
            if tags.get(STACK_TAG) == stack and FLEET_TAG in tags:
                fleets[tags[FLEET_TAG]] = Fleet(
                    tags[FLEET_TAG],
                    "asg",
                    group["AutoScalingGroupName"],
                    group["DesiredCapacity"],
                    tags,
                    group["MinSize"],
                )
    for page in session.client("ec2").get_paginator("describe_spot_fleet_requests").paginate():
        for request in page["SpotFleetRequestConfigs"]:
            tags = _tags(request.get("Tags", []))
            if (
                tags.get(STACK_TAG) == stack
                and FLEET_TAG in tags
                and request["SpotFleetRequestState"] in LIVE_REQUEST_STATES
            ):
                fleets[tags[FLEET_TAG]] = Fleet(
                    tags[FLEET_TAG],
                    "spot-fleet",
                    request["SpotFleetRequestId"],
                    int(request["SpotFleetRequestConfig"]["TargetCapacity"]),
                    tags,
                )
    return fleets


def fleet(session, stack: str, name: str) -> Fleet:
    fleets = find_fleets(session, stack)
    if not fleets:
        raise NotFound(
            f"nothing deployed: no spotyard fleet is tagged {STACK_TAG}={stack} in "
            f"{session.region_name} (run `make up`, or pass --stack/--region)"
        )
    if name not in fleets:
        raise NotFound(f"no fleet '{name}' in {stack}; its fleets are: {', '.join(sorted(fleets))}")
    return fleets[name]


def instances(session, stack: str, name: str) -> list[dict[str, Any]]:
    pages = (
        session.client("ec2")
        .get_paginator("describe_instances")
        .paginate(
            Filters=[
                {"Name": f"tag:{STACK_TAG}", "Values": [stack]},
                {"Name": f"tag:{FLEET_TAG}", "Values": [name]},
                {"Name": "instance-state-name", "Values": ["pending", "running"]},
            ]
        )
    )
    return sorted(
        (i for page in pages for r in page["Reservations"] for i in r["Instances"]),
        key=lambda i: (i["LaunchTime"], i["InstanceId"]),
    )


def set_capacity(session, target: Fleet, capacity: int) -> None:
    """`capacity` instances; fewer means the extra instances terminate, on either engine."""
    if target.engine == "spot-fleet":
        # The request keeps the last ExcessCapacityTerminationPolicy it was sent (the autoscaler and
        # idle stop send `noTermination`): say `default` so that a lower target terminates (EC2 API
        # reference, ModifySpotFleetRequest).
        session.client("ec2").modify_spot_fleet_request(
            SpotFleetRequestId=target.target, TargetCapacity=capacity, ExcessCapacityTerminationPolicy="default"
        )
    elif capacity < target.minimum:
        # Auto Scaling refuses a desired capacity below MinSize (API reference, UpdateAutoScalingGroup):
        # the minimum goes down with it, until a start schedule or `pulumi up --refresh` restores it.
        session.client("autoscaling").update_auto_scaling_group(
            AutoScalingGroupName=target.target, MinSize=capacity, DesiredCapacity=capacity
        )
    else:
        session.client("autoscaling").set_desired_capacity(
            AutoScalingGroupName=target.target, DesiredCapacity=capacity, HonorCooldown=False
        )


def spot_prices(session, pools: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The current Spot price of each (instance type, availability zone) pool."""
    ec2, prices = session.client("ec2"), {}
    for instance_type in sorted({t for t, _ in pools}):
        history = ec2.describe_spot_price_history(
            InstanceTypes=[instance_type],
            StartTime=datetime.now(UTC),
            ProductDescriptions=["Linux/UNIX", "Linux/UNIX (Amazon VPC)"],
        )
        for entry in history["SpotPriceHistory"]:
            prices.setdefault((entry["InstanceType"], entry["AvailabilityZone"]), entry["SpotPrice"])
    return {pool: prices[pool] for pool in pools if pool in prices}
