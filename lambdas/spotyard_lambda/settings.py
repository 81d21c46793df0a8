"""What the stack tells each Lambda: one dataclass per Lambda, built by its component and
written by the Lambda building block (`encode`, JSON in SPOTYARD_SETTINGS), read back by
the Lambda with the same code (`from_environment`), so that a renamed, missing or mistyped
field fails on both sides. Every field is written: the defaults are the configuration's
(spotyard/config.py, spotyard_lambda/names.py), not restated here. The stack's tag comes
from SPOTYARD_STACK (every Lambda's) and the notification topic from SPOTYARD_TOPIC_ARN
(read by notify.py, set for the Lambdas that notify).
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from spotyard_lambda.dns import Zone

STACK_VARIABLE = "SPOTYARD_STACK"
SETTINGS_VARIABLE = "SPOTYARD_SETTINGS"
TOPIC_VARIABLE = "SPOTYARD_TOPIC_ARN"


def optional(name: str) -> str | None:
    return os.environ.get(name) or None


class InvalidSettings(Exception):
    """SPOTYARD_SETTINGS does not hold what this Lambda's settings class expects."""


class LambdaSettings:
    """Base of each Lambda's settings: `stack` (`<project>/<stack>`) travels in SPOTYARD_STACK,
    every other field in SPOTYARD_SETTINGS."""

    stack: str

    def encode(self) -> str:
        """SPOTYARD_SETTINGS, as the component writes it."""
        return json.dumps(
            {
                f.name: _plain(getattr(self, f.name))
                for f in dataclasses.fields(self)  # type: ignore[arg-type]
                if f.name != "stack"
            },
            sort_keys=True,
        )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The settings as the Lambda reads them (the process environment unless given)."""
        environ = os.environ if environ is None else environ
        try:
            data = json.loads(environ[SETTINGS_VARIABLE])
        except (KeyError, json.JSONDecodeError) as error:
            raise InvalidSettings(f"{SETTINGS_VARIABLE}: {error!r}") from None
        return _build(cls, {**data, "stack": environ[STACK_VARIABLE]}, SETTINGS_VARIABLE)


def _plain(value: Any) -> Any:
    """A settings value as JSON: dataclasses by their field names, tuples as lists."""
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _build(kind: Any, data: Any, where: str) -> Any:
    """`data` (parsed JSON) as `kind`, checked all the way down: a missing, unknown or
    mistyped field raises InvalidSettings naming where it is."""
    origin, arguments = typing.get_origin(kind), typing.get_args(kind)
    if dataclasses.is_dataclass(kind):
        if not isinstance(data, dict):
            raise InvalidSettings(f"{where}: expected an object for {kind.__name__}, got {data!r}")
        # This module's names: the harness may have swapped sys.modules' copy of it for a bundle's.
        hints = typing.get_type_hints(kind, globalns=globals())
        fields = [f for f in dataclasses.fields(kind) if f.init]
        unknown = set(data) - {f.name for f in fields}
        missing = {
            f.name
            for f in fields
            if f.name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        if unknown or missing:
            raise InvalidSettings(
                f"{where}: {kind.__name__} has no {sorted(unknown)}"
                if unknown
                else f"{where}: {kind.__name__} misses {sorted(missing)}"
            )
        return kind(**{name: _build(hints[name], value, f"{where}.{name}") for name, value in data.items()})
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in arguments:
            return None
        (inner,) = [a for a in arguments if a is not type(None)]
        return _build(inner, data, where)
    if origin is dict:
        if not isinstance(data, dict):
            raise InvalidSettings(f"{where}: expected an object, got {data!r}")
        return {key: _build(arguments[1], value, f"{where}.{key}") for key, value in data.items()}
    if origin is tuple:
        if not isinstance(data, list):
            raise InvalidSettings(f"{where}: expected a list, got {data!r}")
        return tuple(_build(arguments[0], item, f"{where}[{i}]") for i, item in enumerate(data))
    if kind is float and isinstance(data, int) and not isinstance(data, bool):
        return float(data)
    if not isinstance(data, kind) or (kind is int and isinstance(data, bool)):
        raise InvalidSettings(f"{where}: expected {kind.__name__}, got {data!r}")
    return data


@dataclass(frozen=True)
class QueueAutoscalerSettings(LambdaSettings):
    """One fleet sized from its job queue (components/queue_autoscaler.py)."""

    stack: str
    fleet: str
    engine: str  # asg | spot-fleet
    capacity_target: str  # group name or Spot Fleet request id
    queue_url: str
    messages_per_instance: int
    min_capacity: int
    max_capacity: int
    scale_in_cooldown_seconds: int
    boot_seconds: int
    on_demand_fallback: bool
    state_parameter: str


@dataclass(frozen=True)
class TargetGroup:
    arn: str
    target_type: str  # instance | ip


@dataclass(frozen=True)
class InterruptedFleet:
    engine: str  # asg | spot-fleet
    capacity_target: str  # group name or Spot Fleet request id
    decrement_capacity: bool
    on_rebalance: str  # notify | drain
    target_groups: tuple[TargetGroup, ...]
    image_role_tag: str | None  # save an AMI with this Role tag (image.snapshotOnTerminate)


@dataclass(frozen=True)
class InterruptionHandlerSettings(LambdaSettings):
    """The fleets whose instances Spot takes back are drained (components/interruption_handler.py)."""

    stack: str
    fleets: dict[str, InterruptedFleet]
    zone: Zone | None


@dataclass(frozen=True)
class KeptFleet:
    parameter: str  # the SSM parameter naming the fleet's AMI
    launch_template_id: str
    image_role_tag: str
    keep: int


@dataclass(frozen=True)
class ImageKeeperSettings(LambdaSettings):
    """The fleets whose leaving instances are saved as AMIs (components/image_keeper.py)."""

    stack: str
    fleets: dict[str, KeptFleet]


@dataclass(frozen=True)
class NamedFleet:
    elastic_ip: str | None  # allocation id kept on its holder, else the fleet's longest-running instance


@dataclass(frozen=True)
class DnsRegistrarSettings(LambdaSettings):
    """The fleets whose instances get names and Elastic IPs (components/dns_registrar.py)."""

    stack: str
    fleets: dict[str, NamedFleet]
    zone: Zone | None


@dataclass(frozen=True)
class ReportedJob:
    runs_parameter: str  # the SSM parameter holding the job's recent runs (spotyard_lambda/names.py)
    batch_job_definition: str | None  # the name of its AWS Batch job definition; None: a fleet job


@dataclass(frozen=True)
class JobReporterSettings(LambdaSettings):
    """The jobs whose runs are reported and counted (components/job_alerts.py)."""

    stack: str
    jobs: dict[str, ReportedJob]
    job_queues: tuple[str, ...]  # ARNs of the stack's Batch job queues
