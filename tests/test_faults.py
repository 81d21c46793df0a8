"""Exactly-once in effect: a fault at each AWS call of the queue autoscaler's and the image
keeper's janitor's runs (throttling, a 500, a call applied but answered with an error),
then a clean retry of the same event, ends in the state a run without faults ends in.

Notifications are compared as a set: SNS Publish is not idempotent, so a run that fails
after a publish and before the state recording it is saved sends the same message again
on the retry (every change is published at least once, never lost; see docs/spec.md)."""

from __future__ import annotations

import copy
import json

import boto3
import pytest

from tests import events
from tests.conftest import REGION, dev_config, subscribe
from tests.harness.faults import KINDS, Scenario, prove_exactly_once
from tests.harness.iam import IamAudit
from tests.harness.lambdas import deployed_lambda
from tests.harness.program import run_program
from tests.test_image_keeper import PARAMETER, save_as_spotyard
from tests.test_queue_autoscaler import at, capacity, drain, send


@pytest.fixture
def autoscaler_config():
    """Two fleets with queues: `batch` (Auto Scaling group, with the on-demand fallback) and
    `workers` (Spot Fleet request, without: moto lacks the history call it reads)."""
    config = dev_config()
    del config["spotyard:fleets"]["workbench"], config["spotyard:dns"]  # fewer resources to deploy per trial
    config["spotyard:fleets"]["workers"]["onDemandFallback"] = False
    config["spotyard:fleets"]["batch"] = {
        "engine": "asg", "instanceTypes": ["c5.large", "c6i.large"], "capacity": 0, "minCapacity": 0,
        "maxCapacity": 4, "onDemandFallback": True,
        "queue": {"messagesPerInstance": 10, "scaleInCooldownSeconds": 300}}
    return config


def _deployed(config, name, tmp_path):
    run = run_program(copy.deepcopy(config), region=REGION, stack="dev")
    return run, deployed_lambda(run, name, tmp_path, IamAudit())


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
        run, function = _deployed(config, f"{fleet}-jobs-autoscaler", tmp_path)
        inbox = subscribe(run.outputs["notificationTopicArn"])
        for minute, messages in steps[:-1]:
            _feed(run, fleet, messages)
            function.invoke(at(minute))
        inbox()
        minute, messages = steps[-1]
        _feed(run, fleet, messages)

        def observe():
            state = boto3.client("ssm").get_parameter(Name=function.environment["SPOTYARD_STATE_PARAMETER"])
            return {"capacity": capacity(run, fleet), "state": json.loads(state["Parameter"]["Value"]),
                    "notifications": sorted({(m["Subject"], m["Message"]) for m in inbox()})}
        return Scenario(function, at(minute), observe)
    return build


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("fleet", "steps"), [
    ("batch", [(0, 15)]),  # Auto Scaling group, scale-out 0 -> 2
    ("batch", [(0, 15), (1, None), (7, 0)]),  # Auto Scaling group, scale-in 2 -> 0 after the cooldown
    ("workers", [(0, 15)]),  # Spot Fleet request, scale-out 0 -> 2
], ids=["asg-out", "asg-in", "spot-fleet-out"])
def test_every_capacity_change_is_published_whatever_call_fails(aws, autoscaler_config, tmp_path, kind, fleet, steps):
    expected, wrong = prove_exactly_once(_autoscaler_scenario(autoscaler_config, tmp_path, fleet, steps), REGION,
                                         kinds=(kind,))
    assert expected["notifications"], "the scenario must change the capacity"
    assert not wrong, "\n".join(map(str, wrong)) + f"\nclean run: {expected!r}"


@pytest.fixture
def keeper_config():
    """The workbench fleet saves its instances as AMIs and keeps the 2 newest."""
    config = dev_config()
    del config["spotyard:fleets"]["workers"], config["spotyard:dns"]  # fewer resources to deploy per trial
    config["spotyard:fleets"]["workbench"]["image"] = {
        "roleTag": "workbench", "fallbackRoleTag": "base", "snapshotOnTerminate": True, "keep": 2}
    return config


def _sweep_scenario(config, tmp_path):
    """Four saved AMIs of the fleet and one of another stack; the sweep removes the two oldest."""
    def build(world) -> Scenario:
        world.own_ami("base", tags={"Role": "base"}, age_days=100)
        run, function = _deployed(config, "images-lambda", tmp_path)
        saved = [save_as_spotyard(world, name, age) for name, age in (("a", 40), ("b", 30), ("c", 20), ("d", 10))]
        save_as_spotyard(world, "prod", 50, stack="spotyard/prod")
        boto3.client("ssm").put_parameter(Name=PARAMETER, Value=saved[-1], Type="String", Overwrite=True)

        def observe():
            ec2 = boto3.client("ec2")
            sources = [next((t["Value"] for t in s.get("Tags", []) if t["Key"] == "spotyard:source-instance"), "-")
                       for s in ec2.describe_snapshots()["Snapshots"]]
            return {"amis": sorted(i["Name"] for i in ec2.describe_images(Owners=["self"])["Images"]),
                    "snapshots": sorted(sources)}
        return Scenario(function, events.load("scheduled-event"), observe)
    return build


@pytest.mark.parametrize("kind", KINDS)
def test_the_sweep_never_loses_a_snapshot_whatever_call_fails(aws, keeper_config, tmp_path, kind):
    expected, wrong = prove_exactly_once(_sweep_scenario(keeper_config, tmp_path), REGION, kinds=(kind,))
    assert expected["amis"] == ["base", "save-c", "save-d", "save-prod"], expected
    assert [s for s in expected["snapshots"] if s != "-"] == ["i-0c", "i-0d", "i-0prod"], expected
    assert not wrong, "\n".join(map(str, wrong)) + f"\nclean run: {expected!r}"
