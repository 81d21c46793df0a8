"""Exactly-once in effect for the queue autoscaler: a fault at each AWS call of its run
(throttling, a 500, a call applied but answered with an error), then a clean retry of the
same event, ends with the capacity, the state and the notifications of a run without faults.

Notifications are compared as a set: SNS Publish is not idempotent, so a run that fails
after a publish and before the state recording it is saved sends the same message again
on the retry (every change is published at least once, never lost; see docs/spec.md).
The Spot Fleet scenarios are in test_faults_autoscaler_spot_fleet.py: `--dist loadfile` runs a
module on one worker, and every trial deploys the stack afresh, so they run beside these."""

from __future__ import annotations

import json

import boto3
import pytest
from spotyard_lambda.settings import QueueAutoscalerSettings

from tests.conftest import REGION, subscribe
from tests.harness.faults import KINDS, Scenario, deployed, prove_exactly_once
from tests.test_queue_autoscaler import at, capacity, drain, queue_fleets_config, send


def autoscaler_config(fleet: str):
    """One of the queue autoscaler tests' fleets with queues (`batch` on Auto Scaling with the
    on-demand fallback, `workers` on Spot Fleet without), and nothing else: every trial deploys
    the stack afresh, so the fewer its resources, the faster the trials."""
    config = queue_fleets_config()
    config["spotyard:fleets"] = {fleet: config["spotyard:fleets"][fleet]}
    del config["spotyard:dns"]
    return config


def _feed(run, fleet: str, messages: int | None) -> None:
    """`messages` more jobs, or None: the workers finish every job."""
    if messages is None:
        drain(run, fleet)
    else:
        send(run, fleet, messages)


def _autoscaler_scenario(config, tmp_path, fleet: str, steps: list[tuple[float, int | None]]):
    """The fleet's autoscaler run at each (minute, jobs fed before it) of `steps`: all but the
    last cleanly, to arrange the state; the last is the run under test."""

    def build(world) -> Scenario:
        run, function = deployed(config, f"{fleet}-jobs-autoscaler", REGION, tmp_path)
        inbox = subscribe(run.outputs["notificationTopicArn"])
        for minute, messages in steps[:-1]:
            _feed(run, fleet, messages)
            function.invoke(at(minute))
            requests = [
                r for r in run.of_type("aws:ec2/spotFleetRequest:SpotFleetRequest") if r.name == f"{fleet}-request"
            ]
            if requests:  # moto leaves Spot Fleet instances untagged; AWS applies the template's tags
                template = run.one("aws:ec2/launchTemplate:LaunchTemplate", f"{fleet}-template").id
                world.scale_spot_fleet(requests[0].id, capacity(run, fleet), template)
        inbox()
        minute, messages = steps[-1]
        _feed(run, fleet, messages)

        def observe():
            state = boto3.client("ssm").get_parameter(
                Name=QueueAutoscalerSettings.from_environment(function.environment).state_parameter
            )
            running = boto3.client("ec2").describe_instances(
                Filters=[
                    {"Name": "tag:spotyard:fleet", "Values": [fleet]},
                    {"Name": "instance-state-name", "Values": ["pending", "running"]},
                ]
            )["Reservations"]
            return {
                "capacity": capacity(run, fleet),
                "instances": sum(len(r["Instances"]) for r in running),
                "state": json.loads(state["Parameter"]["Value"]),
                "notifications": sorted({(m["Subject"], m["Message"]) for m in inbox()}),
            }

        return Scenario(function, at(minute), observe)

    return build


def prove_every_change_is_published(tmp_path, kind: str, fleet: str, steps, from_call: str | None = None) -> None:
    """`from_call`: a scale-in's run reads what a scale-out's reads, whose faults the scale-out
    scenario injects already; the scale-in's are injected from its first write on."""
    expected, wrong = prove_exactly_once(
        _autoscaler_scenario(autoscaler_config(fleet), tmp_path, fleet, steps),
        REGION,
        kinds=(kind,),
        from_call=from_call,
    )
    assert expected["notifications"], "the scenario must change the capacity"
    assert not wrong, "\n".join(map(str, wrong)) + f"\nclean run: {expected!r}"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("steps", "from_call"),
    [
        ([(0, 15)], None),  # scale-out 0 -> 2, a fault at every call
        ([(0, 15), (1, None)], "PutParameter"),  # scale-in 2 -> 0 once the queue is empty
    ],
    ids=["asg-out", "asg-in"],
)
def test_every_capacity_change_is_published_whatever_call_fails(aws, tmp_path, kind, steps, from_call):
    prove_every_change_is_published(tmp_path, kind, "batch", steps, from_call)
