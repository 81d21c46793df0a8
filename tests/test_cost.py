"""`spotyard cost` against moto. moto lacks the Pricing API, answers DescribeSpotPriceHistory
with one price (0.00001) since 2006 whatever the time or zone asked, and keeps no Auto
Scaling activity history: those three calls alone are answered here, as AWS answers them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from botocore.awsrequest import AWSResponse
from click.testing import CliRunner

from spotyard import cli
from spotyard.cost import spot_cost
from tests.conftest import REGION, dev_config

NOW = datetime.now(UTC)
ON_DEMAND = {"c5.large": "0.1070000000", "t3.xlarge": "0.2176000000"}


def at(hours_ago: float) -> datetime:
    return NOW - timedelta(hours=hours_ago)


def test_the_spot_price_is_integrated_over_the_changes_inside_the_window():
    history = [
        {"Timestamp": at(30), "SpotPrice": "0.10"},
        {"Timestamp": at(3), "SpotPrice": "0.20"},
        {"Timestamp": at(1), "SpotPrice": "0.05"},
        {"Timestamp": at(0.5), "SpotPrice": "0.90"},
    ]
    # 0.10 from 4h ago to 3h ago, 0.20 for two hours, 0.05 for the last hour (0.90 comes after the end)
    assert spot_cost(history, at(4), at(0.5)) == pytest.approx(0.10 + 0.40 + 0.025)
    assert spot_cost(history, at(2), at(1)) == pytest.approx(0.20)
    assert spot_cost(history[1:], at(4), at(3)) == pytest.approx(0.20)  # nothing before: the earliest price


def answer(body: dict):
    def hook(params, **_):
        return AWSResponse("https://stub", 200, {}, None), {**body, "ResponseMetadata": {"HTTPStatusCode": 200}}

    return hook


def price_list(params, **_):
    """before-call sees the serialized request: the Pricing API's JSON body."""
    wanted = {f["Field"]: f["Value"] for f in json.loads(params["body"])["Filters"]}
    assert (wanted["regionCode"], wanted["operatingSystem"], wanted["tenancy"]) == (REGION, "Linux", "Shared")
    product = {
        "product": {"attributes": {"instanceType": wanted["instanceType"]}},
        "terms": {
            "OnDemand": {
                "X.JRTCKXETXF": {
                    "priceDimensions": {
                        "X.JRTCKXETXF.6YS6EN2CT7": {
                            "unit": "Hrs",
                            "pricePerUnit": {"USD": ON_DEMAND[wanted["instanceType"]]},
                        }
                    }
                }
            }
        },
    }
    return answer({"PriceList": [json.dumps(product)], "FormatVersion": "aws_v1"})(params)


@pytest.fixture
def fleets(deploy, aws, monkeypatch):
    """workers (spot-fleet): one Spot instance running for 10 h, one that ran 5 h and ended now;
    workbench (asg, moto's instance on-demand): running for 2 h, and one the activity
    history alone remembers (3 days ago, for a day)."""
    run = deploy(dev_config())
    global NOW
    NOW = datetime.now(UTC)  # the CLI's clock runs on: every time below is set just before it reads them
    request = run.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").id
    template = run.one("aws:ec2/launchTemplate:LaunchTemplate", "workers-template").id
    running, ended = sorted(aws.scale_spot_fleet(request, 2, template))
    backend = aws._backend
    backend.get_instance(running).launch_time = at(10).isoformat()
    backend.get_instance(ended).launch_time = at(5).isoformat()
    backend.get_instance(ended).terminate()
    (workbench,) = [
        i
        for r in backend.describe_instances()
        for i in r.instances
        if any(t["key"] == "spotyard:fleet" and t["value"] == "workbench" for t in i.get_tags())
    ]
    workbench.launch_time = at(2).isoformat()
    workbench.instance_type = "t3.xlarge"  # moto leaves the mixed-instances group's type empty
    zone = backend.get_instance(running).placement.zone
    group = run.one("aws:autoscaling/group:Group", "workbench-group").id
    old = "i-0aaaaaaaaaaaaaaaa"
    activities = {
        "Activities": [
            {
                "ActivityId": "2",
                "AutoScalingGroupName": group,
                "Description": f"Terminating EC2 instance: {old}",
                "Cause": "spot interruption",
                "StartTime": at(48),
                "EndTime": at(48),
                "StatusCode": "Successful",
                "Progress": 100,
            },
            {
                "ActivityId": "1",
                "AutoScalingGroupName": group,
                "Description": f"Launching a new EC2 instance: {old}",
                "Cause": "scale-out",
                "StartTime": at(72),
                "EndTime": at(72),
                "StatusCode": "Successful",
                "Progress": 100,
                "Details": json.dumps({"Subnet ID": "subnet-1", "Availability Zone": zone}),
            },
        ]
    }
    history = {
        "SpotPriceHistory": [
            {
                "InstanceType": "c5.large",
                "AvailabilityZone": zone,
                "ProductDescription": "Linux/UNIX",
                "SpotPrice": "0.030000",
                "Timestamp": at(30),
            },
            {
                "InstanceType": "c5.large",
                "AvailabilityZone": zone,
                "ProductDescription": "Linux/UNIX",
                "SpotPrice": "0.040000",
                "Timestamp": at(3),
            },
            {
                "InstanceType": "c5.large",
                "AvailabilityZone": "elsewhere-1a",
                "ProductDescription": "Linux/UNIX",
                "SpotPrice": "9.000000",
                "Timestamp": at(3),
            },
        ]
    }
    real = cli.session_for

    def answered(stack, region):
        session = real(stack, region)
        session.events.register("before-call.pricing.GetProducts", price_list)
        session.events.register("before-call.ec2.DescribeSpotPriceHistory", answer(history))
        session.events.register("before-call.autoscaling.DescribeScalingActivities", answer(activities))
        return session

    monkeypatch.setattr(cli, "session_for", answered)
    return run


def cost(*args: str):
    return CliRunner().invoke(
        cli.main, ["--stack", "spotyard/dev", "--region", REGION, "cost", *args], catch_exceptions=False
    )


def test_cost_per_fleet_at_spot_and_on_demand_prices(fleets):
    result = cost("--days", "7", "--json")
    assert result.exit_code == 0, result.output
    report = {f["name"]: f for f in json.loads(result.output)["fleets"]}
    workers = report["workers"]
    assert workers["instances"] == 2 and workers["instanceHours"] == pytest.approx(15, abs=0.01)
    spot_paid = (7 * 0.03 + 3 * 0.04) + (2 * 0.03 + 3 * 0.04)  # the zone's price changed 3 h ago
    assert workers["paid"] == pytest.approx(spot_paid, abs=0.001)
    assert workers["onDemand"] == pytest.approx(15 * 0.107, abs=0.001)
    assert workers["saving"] == pytest.approx(15 * 0.107 - spot_paid, abs=0.001)
    assert workers["savingPercent"] == pytest.approx(100 * (1 - spot_paid / (15 * 0.107)), abs=0.1)
    workbench = report["workbench"]  # on-demand here (moto): paid the on-demand price, no saving
    assert workbench["instances"] == 2 and workbench["instanceHours"] == pytest.approx(2 + 24, abs=0.01)
    assert workbench["unpricedHours"] == pytest.approx(24, abs=0.01)
    assert workbench["paid"] == workbench["onDemand"] == pytest.approx(2 * 0.2176, abs=0.001)
    assert workbench["saving"] == pytest.approx(0, abs=0.001)


def test_the_window_clips_what_ran_before_it(fleets):
    report = {f["name"]: f for f in json.loads(cost("--days", "1", "--json").output)["fleets"]}
    assert report["workbench"]["instanceHours"] == pytest.approx(2, abs=0.01)  # the old one ended 48 h ago
    assert report["workers"]["instanceHours"] == pytest.approx(15, abs=0.01)


def test_cost_prints_a_table_for_people(fleets):
    result = cost()
    assert result.exit_code == 0
    for text in ("spotyard/dev in ap-northeast-1, last 7 day(s), USD", "workers", "workbench", "unpriced"):
        assert text in result.output


def test_cost_with_nothing_deployed_says_so(aws):
    result = CliRunner().invoke(cli.main, ["--stack", "prod", "--region", REGION, "cost"])
    assert result.exit_code == 1 and "nothing deployed" in result.output
