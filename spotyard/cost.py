"""`spotyard cost`: per fleet, the instance-hours of the last N days, what they cost at the Spot
prices of their type and zone over the hours they ran, what they would have cost on demand,
and the saving.

Which instances are counted (boto3 only, no CloudTrail, no Cost Explorer):
- every instance EC2 still describes with the fleet's tags: the running ones, and those
  that stopped or terminated within about the last hour (EC2 forgets terminated instances
  after that); their end is the time in `StateTransitionReason`;
- for `asg` fleets, older ones from the Auto Scaling activity history (six weeks): the
  "Launching a new EC2 instance: i-..." and "Terminating EC2 instance: i-..." activities
  give each instance's start and end, and the zone; not its type, so their hours are
  counted but not priced (reported as `unpricedHours`).
A `spot-fleet` fleet's older instances are not counted: its request history keeps 48 hours
and moto lacks it. The Spot price is the price history of the instance's type and zone
(Linux/UNIX) integrated over its hours; on-demand instances (onDemandFallback) are charged
the on-demand price. On-demand prices come from the Pricing API (`GetProducts`, in
us-east-1). EBS, EFS, data transfer and Lambda are not included.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from spotyard import fleets as found

LINUX = "Linux/UNIX"
PRICING_REGION = (
    "us-east-1"  # https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/using-the-aws-price-list-query-api.html
)
_ENDED = re.compile(r"\((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (?:GMT|UTC)\)")  # AWS writes GMT, moto UTC
_ACTIVITY = re.compile(r"(Launching a new|Terminating) EC2 instance: (i-[0-9a-f]+)")


@dataclass(frozen=True)
class Usage:
    """One instance's time in the window."""

    instance_id: str
    start: datetime
    end: datetime
    instance_type: str | None = None  # None: known only from the activity history
    zone: str | None = None
    spot: bool = True

    @property
    def hours(self) -> float:
        return max((self.end - self.start).total_seconds(), 0) / 3600


def _ended_at(instance: dict, until: datetime) -> datetime:
    if instance["State"]["Name"] in ("pending", "running"):
        return until
    ended = _ENDED.search(instance.get("StateTransitionReason") or "")
    return datetime.strptime(ended[1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC) if ended else until


def described(session, stack: str, fleet: str, since: datetime, until: datetime) -> list[Usage]:
    pages = (
        session.client("ec2")
        .get_paginator("describe_instances")
        .paginate(
            Filters=[
                {"Name": f"tag:{found.STACK_TAG}", "Values": [stack]},
                {"Name": f"tag:{found.FLEET_TAG}", "Values": [fleet]},
            ]
        )
    )
    usages = []
    for instance in (i for page in pages for r in page["Reservations"] for i in r["Instances"]):
        start, end = max(instance["LaunchTime"], since), min(_ended_at(instance, until), until)
        if end > start:
            usages.append(
                Usage(
                    instance["InstanceId"],
                    start,
                    end,
                    instance["InstanceType"],
                    instance["Placement"]["AvailabilityZone"],
                    instance.get("InstanceLifecycle") == "spot",
                )
            )
    return usages


def from_activities(session, group: str, since: datetime, until: datetime, known: set[str]) -> list[Usage]:
    """Instances of an Auto Scaling group EC2 no longer describes, from its activity history."""
    starts: dict[str, datetime] = {}
    ends: dict[str, datetime] = {}
    zones: dict[str, str] = {}
    pages = (
        session.client("autoscaling").get_paginator("describe_scaling_activities").paginate(AutoScalingGroupName=group)
    )
    for activity in (a for page in pages for a in page["Activities"]):
        matched = _ACTIVITY.search(activity.get("Description", ""))
        if not matched or activity.get("StatusCode") != "Successful" or matched[2] in known:
            continue
        if matched[1] == "Launching a new":
            starts[matched[2]] = activity["StartTime"]
            zones[matched[2]] = json.loads(activity.get("Details") or "{}").get("Availability Zone")
        else:
            ends[matched[2]] = activity.get("EndTime") or activity["StartTime"]
    usages = []
    for instance_id in starts.keys() | ends.keys():
        start = max(starts.get(instance_id, since), since)
        end = min(ends.get(instance_id, until), until)
        if end > start:
            usages.append(Usage(instance_id, start, end, zone=zones.get(instance_id)))
    return usages


def spot_cost(history: list[dict], start: datetime, end: datetime) -> float:
    """The price in effect at each moment (the latest change at or before it), integrated over
    [start, end]. DescribeSpotPriceHistory also returns the change in effect at StartTime."""
    changes = sorted((entry["Timestamp"], float(entry["SpotPrice"])) for entry in history)
    if not changes:
        raise found.NotFound(f"no Spot price history from {start:%Y-%m-%d %H:%M}")
    total, moment = 0.0, start
    in_effect = next((price for at, price in reversed(changes) if at <= start), changes[0][1])
    for at, price in changes:
        if start < at < end:
            total += in_effect * (at - moment).total_seconds() / 3600
            moment, in_effect = at, price
    return total + in_effect * (end - moment).total_seconds() / 3600


def price_history(session, instance_type: str, zone: str, start: datetime, end: datetime) -> list[dict]:
    pages = (
        session.client("ec2")
        .get_paginator("describe_spot_price_history")
        .paginate(
            InstanceTypes=[instance_type],
            AvailabilityZone=zone,
            ProductDescriptions=[LINUX],
            StartTime=start,
            EndTime=end,
        )
    )
    return [
        entry
        for page in pages
        for entry in page["SpotPriceHistory"]
        if entry.get("AvailabilityZone", zone) == zone and entry["InstanceType"] == instance_type
    ]


def on_demand_price(session, instance_type: str, region: str) -> float:
    """USD per hour of Linux, shared tenancy, no pre-installed software, in `region`."""
    filters = {
        "instanceType": instance_type,
        "regionCode": region,
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
    }
    products = session.client("pricing", region_name=PRICING_REGION).get_products(
        ServiceCode="AmazonEC2", Filters=[{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in filters.items()]
    )
    for product in map(json.loads, products["PriceList"]):
        for term in product["terms"]["OnDemand"].values():
            for dimension in term["priceDimensions"].values():
                return float(dimension["pricePerUnit"]["USD"])
    raise found.NotFound(f"no on-demand price for {instance_type} in {region}")


def report(session, stack: str, days: int, now: datetime | None = None) -> dict:
    until = now or datetime.now(UTC)
    since = until - timedelta(days=days)
    on_demand: dict[str, float] = {}
    fleets = []
    for name, fleet in sorted(found.find_fleets(session, stack).items()):
        usages = described(session, stack, name, since, until)
        if fleet.engine == "asg":
            usages += from_activities(session, fleet.target, since, until, {u.instance_id for u in usages})
        paid = would_pay = 0.0
        for usage in (u for u in usages if u.instance_type):
            rate = on_demand.get(usage.instance_type)
            if rate is None:
                rate = on_demand[usage.instance_type] = on_demand_price(
                    session, usage.instance_type, session.region_name
                )
            would_pay += rate * usage.hours
            paid += (
                spot_cost(
                    price_history(session, usage.instance_type, usage.zone, usage.start, usage.end),
                    usage.start,
                    usage.end,
                )
                if usage.spot
                else rate * usage.hours
            )
        fleets.append(
            {
                "name": name,
                "instances": len(usages),
                "instanceHours": round(sum(u.hours for u in usages), 2),
                "unpricedHours": round(sum(u.hours for u in usages if not u.instance_type), 2),
                "paid": round(paid, 4),
                "onDemand": round(would_pay, 4),
                "saving": round(would_pay - paid, 4),
                "savingPercent": round(100 * (would_pay - paid) / would_pay, 1) if would_pay else None,
            }
        )
    return {
        "stack": stack,
        "region": session.region_name,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "currency": "USD",
        "fleets": fleets,
    }
