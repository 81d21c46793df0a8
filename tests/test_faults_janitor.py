"""Exactly-once in effect for the image keeper's janitor: a fault at each AWS call of its
daily sweep (throttling, a 500, a call applied but answered with an error), then a clean
retry of the same event, ends with the AMIs and snapshots of a sweep without faults."""

from __future__ import annotations

import boto3
import pytest

from tests import events
from tests.conftest import REGION, dev_config
from tests.harness.faults import KINDS, Scenario, deployed, prove_exactly_once
from tests.test_image_keeper import PARAMETER, save_as_spotyard


@pytest.fixture
def keeper_config():
    """The workbench fleet saves its instances as AMIs and keeps the 2 newest."""
    config = dev_config()
    del config["spotyard:fleets"]["workers"], config["spotyard:dns"]  # fewer resources to deploy per trial
    config["spotyard:fleets"]["workbench"]["image"] = {
        "roleTag": "workbench",
        "fallbackRoleTag": "base",
        "snapshotOnTerminate": True,
        "keep": 2,
    }
    return config


def _sweep_scenario(config, tmp_path):
    """Four saved AMIs of the fleet and one of another stack; the sweep removes the two oldest."""

    def build(world) -> Scenario:
        world.own_ami("base", tags={"Role": "base"}, age_days=100)
        _, function = deployed(config, "images-lambda", REGION, tmp_path)
        saved = [save_as_spotyard(world, name, age) for name, age in (("a", 40), ("b", 30), ("c", 20), ("d", 10))]
        save_as_spotyard(world, "prod", 50, stack="spotyard/prod")
        boto3.client("ssm").put_parameter(Name=PARAMETER, Value=saved[-1], Type="String", Overwrite=True)

        def observe():
            ec2 = boto3.client("ec2")
            sources = [
                next((t["Value"] for t in s.get("Tags", []) if t["Key"] == "spotyard:source-instance"), "-")
                for s in ec2.describe_snapshots()["Snapshots"]
            ]
            return {
                "amis": sorted(i["Name"] for i in ec2.describe_images(Owners=["self"])["Images"]),
                "snapshots": sorted(sources),
            }

        return Scenario(function, events.load("scheduled-event"), observe)

    return build


@pytest.mark.parametrize("kind", KINDS)
def test_the_sweep_never_loses_a_snapshot_whatever_call_fails(aws, keeper_config, tmp_path, kind):
    expected, wrong = prove_exactly_once(_sweep_scenario(keeper_config, tmp_path), REGION, kinds=(kind,))
    assert expected["amis"] == ["base", "save-c", "save-d", "save-prod"], expected
    assert [s for s in expected["snapshots"] if s != "-"] == ["i-0c", "i-0d", "i-0prod"], expected
    assert not wrong, "\n".join(map(str, wrong)) + f"\nclean run: {expected!r}"
