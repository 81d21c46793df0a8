"""The on-instance agent (instance/spotyard_agent.py), imported for tests, and an
agent on a given instance whose AWS calls are checked against an instance role."""

from __future__ import annotations

import importlib.util
import sys

import boto3

from tests.conftest import REGION, ROOT
from tests.harness.iam import CallRecorder, denied, role_policy

_spec = importlib.util.spec_from_file_location("spotyard_agent", ROOT / "instance" / "spotyard_agent.py")
agent = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = agent
_spec.loader.exec_module(agent)


class OnInstance:
    """The agent of `instance_id` in `fleet`, as the bootstrap's environment sets it up."""

    def __init__(self, run, fleet: str, engine: str, instance_id: str) -> None:
        self.run = run
        self.recorder = CallRecorder()
        session = self.recorder.attach(boto3.session.Session(region_name=REGION))
        env = {
            "SPOTYARD_ENGINE": engine,
            "SPOTYARD_REGION": REGION,
            "SPOTYARD_FLEET": fleet,
            "SPOTYARD_STACK": "spotyard/dev",
            "SPOTYARD_QUEUE_URL": run.outputs["fleets"][fleet].get("queueUrl", ""),  # as the bootstrap writes it
        }
        self.fleet = agent.Fleet(env, instance_id, session=session)
        self.role_fleet = fleet

    def refused(self, role_fleet: str | None = None) -> list[str]:
        """The calls made so far that the instance role of `role_fleet` (its own by default) refuses."""
        role = self.run.one("aws:iam/role:Role", f"{role_fleet or self.role_fleet}-instance-role").outputs["name"]
        return denied(role_policy(self.run.resources, role), self.recorder.calls)
