"""EC2 instances as the Lambdas see them, and which stack and fleet own them (their tags)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from spotyard_lambda.names import FLEET_TAG, INTERRUPTED_TAG, STACK_TAG


@dataclass(frozen=True)
class Instance:
    id: str
    state: str
    tags: dict[str, str]
    private_ip: str | None
    launch_time: datetime
    instance_type: str
    availability_zone: str
    lifecycle: str

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Instance:
        return cls(
            id=data["InstanceId"],
            state=data["State"]["Name"],
            tags={t["Key"]: t["Value"] for t in data.get("Tags", [])},
            private_ip=data.get("PrivateIpAddress") or None,
            launch_time=data["LaunchTime"],
            instance_type=data["InstanceType"],
            availability_zone=data.get("Placement", {}).get("AvailabilityZone", ""),
            lifecycle=data.get("InstanceLifecycle", "on-demand"),
        )

    @property
    def fleet(self) -> str | None:
        return self.tags.get(FLEET_TAG)

    @property
    def interrupted(self) -> bool:
        return INTERRUPTED_TAG in self.tags

    def owned_by(self, stack: str) -> bool:
        return self.tags.get(STACK_TAG) == stack and bool(self.fleet)


def serving(instances: list[Instance]) -> list[Instance]:
    """Instances that should be reachable: running and not being taken back by Spot."""
    return [i for i in instances if i.state == "running" and not i.interrupted]


def describe(ec2, instance_id: str) -> Instance | None:
    """The instance, or None once EC2 no longer knows it."""
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ec2.exceptions.ClientError as error:
        if error.response["Error"]["Code"] in ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"):
            return None
        raise
    found = [Instance.from_api(i) for r in reservations for i in r["Instances"]]
    return found[0] if found else None


def stack_instances(
    ec2, stack: str, *, fleet: str | None = None, states: tuple[str, ...] = ("running",)
) -> list[Instance]:
    """Instances of the stack (of one fleet, when given) in the given states."""
    filters = [
        {"Name": f"tag:{STACK_TAG}", "Values": [stack]},
        {"Name": f"tag:{FLEET_TAG}", "Values": [fleet] if fleet else ["*"]},
        {"Name": "instance-state-name", "Values": list(states)},
    ]
    pages = ec2.get_paginator("describe_instances").paginate(Filters=filters)
    return [Instance.from_api(i) for page in pages for r in page["Reservations"] for i in r["Instances"]]
