"""Runs `__main__.py` under Pulumi mocks (a fresh event loop each time) and records every
resource with its inputs, outputs and options, the stack outputs and the engine's log."""

from __future__ import annotations

import asyncio
import json
import logging
import runpy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from tests.harness.cloud import MotoCloud

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "spotyard"
PROGRAM_TIMEOUT_SECONDS = 120


@dataclass
class Resource:
    type: str
    name: str
    urn: str
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    parent: str
    provider: str
    ignore_changes: list[str]
    retain_on_delete: bool
    depends_on: list[str]


@dataclass
class StackRun:
    resources: list[Resource]
    outputs: dict[str, Any]
    log: list[tuple[str, str]] = field(default_factory=list)

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str) -> Resource:
        found = [r for r in self.resources if r.type == type_ and r.name == name]
        assert len(found) == 1, f"expected one {type_} named {name}, found {[r.name for r in self.of_type(type_)]}"
        return found[0]

    def named(self, name: str) -> Resource:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"expected one resource named {name}, found {len(found)}"
        return found[0]

    def children(self, parent: Resource) -> list[Resource]:
        return [r for r in self.resources if r.parent == parent.urn]

    def warnings(self) -> list[str]:
        return [message for level, message in self.log if level == "WARNING"]


class RecordingMonitor(MockMonitor):
    """The mock monitor, keeping the resource options tests assert on. The SDK calls it from
    several executor threads at once, and moto's backends are not thread-safe (two security
    groups created at once: "dictionary changed size during iteration" in moto's EC2 backend):
    the calls that reach moto are made one at a time."""

    def __init__(self, mocks: MotoCloud) -> None:
        super().__init__(mocks)
        self.recorded: list[Resource] = []
        self._moto = threading.RLock()

    def Invoke(self, request):  # noqa: N802 (gRPC method name)
        with self._moto:
            return super().Invoke(request)

    def ReadResource(self, request):  # noqa: N802 (gRPC method name)
        with self._moto:
            return super().ReadResource(request)

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        with self._moto:
            response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            registration = self.resources[response.urn]
            self.recorded.append(
                Resource(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    id=registration.id,
                    inputs=pulumi.runtime.rpc.deserialize_properties(request.object),
                    outputs=dict(registration.state),
                    parent=request.parent,
                    provider=request.provider.split("::")[-2] if request.provider else "",
                    ignore_changes=list(request.ignoreChanges),
                    retain_on_delete=request.retainOnDelete,
                    depends_on=list(request.dependencies),
                )
            )
        return response


class _LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelname, record.getMessage()))


def _main_program() -> None:
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


def run_program(
    config: dict[str, Any],
    *,
    region: str,
    stack: str = "dev",
    program: Callable[[], None] = _main_program,
    previous: StackRun | None = None,
) -> StackRun:
    """Run the spotyard program (or `program`) with `config` ({"spotyard:fleets": {...}}) against moto;
    with `previous`, as an update of that deployment (see MotoCloud)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    capture = _LogCapture()
    logger = logging.getLogger(f"pulumi-engine-{id(capture)}")
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        pulumi.runtime.set_all_config(
            {
                key: value if isinstance(value, str) else json.dumps(value)
                for key, value in {"aws:region": region, **config}.items()
            }
        )
        cloud = MotoCloud(region, previous=previous.resources if previous else None)
        monitor = RecordingMonitor(cloud)
        pulumi.runtime.set_mocks(cloud, project=PROJECT, stack=stack, preview=False, monitor=monitor, logger=logger)
        # A cycle between outputs (say, user data naming the group built from it) never resolves.
        _sync_await(asyncio.wait_for(run_pulumi_func(program), timeout=PROGRAM_TIMEOUT_SECONDS))
        root = pulumi.runtime.get_root_resource()
        outputs = _sync_await(pulumi.Output.from_input(dict(root.outputs)).future()) if root.outputs else {}
        return StackRun(resources=monitor.recorded, outputs=outputs or {}, log=capture.records)
    finally:
        logger.removeHandler(capture)
        loop.close()
        asyncio.set_event_loop(None)
