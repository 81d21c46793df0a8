"""The spotyard component package (provider/): the schema Pulumi's Python SDK infers from the
hosted components names each of them and every field of their args (nested args types
included), and the plain inputs the host hands a component become the same args dataclass a
Python program passes."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import typing
from typing import Any

import pytest
from pulumi.provider.experimental.analyzer import Analyzer
from pulumi.provider.experimental.component import ComponentProvider

from components.args import AccountArgs, RoleArgs, as_args
from components.interruption_handler import InterruptedFleet, InterruptionHandlerArgs, TargetGroupArgs
from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("spotyard_package", ROOT / "provider" / "__main__.py")
package = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(package)


def camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word[:1].upper() + word[1:] for word in rest)


def args_of(component: type) -> type:
    return inspect.signature(component.__init__).parameters["args"].annotation


def nested_args(cls: type) -> set[type]:
    """The args dataclasses `cls`'s fields hold (in lists, dicts, optionals, inputs), transitively."""
    found: set[type] = set()

    def visit(hint: Any) -> None:
        if dataclasses.is_dataclass(hint) and isinstance(hint, type) and hint not in found:
            found.add(hint)
            for field in dataclasses.fields(hint):
                visit(field.type)
        for argument in typing.get_args(hint):
            visit(argument)

    for field in dataclasses.fields(cls):
        visit(field.type)
    return found


def required(cls: type) -> set[str]:
    return {
        camel(f.name)
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return Analyzer(package.PACKAGE).analyze(package.COMPONENTS)


def test_the_package_hosts_the_fleet_home_volume_dns_interruption_and_autoscaler_components(schema):
    assert set(schema["component_definitions"]) == {
        "SpotFleet",
        "HomeVolume",
        "DnsRegistrar",
        "InterruptionHandler",
        "QueueAutoscaler",
    }


@pytest.mark.parametrize("component", package.COMPONENTS, ids=lambda c: c.__name__)
def test_the_schema_takes_every_field_of_the_components_args(schema, component):
    args = args_of(component)
    inputs = schema["component_definitions"][component.__name__].inputs
    assert set(inputs) == {camel(f.name) for f in dataclasses.fields(args)}
    # What another language may leave out is exactly what the dataclass has a default for.
    assert {name for name, prop in inputs.items() if not prop.optional} == required(args)


@pytest.mark.parametrize("component", package.COMPONENTS, ids=lambda c: c.__name__)
def test_the_schema_has_every_nested_args_type_with_every_field(schema, component):
    types = schema["type_definitions"]
    for nested in nested_args(args_of(component)):
        assert set(types[nested.__name__].properties) == {camel(f.name) for f in dataclasses.fields(nested)}
        assert {n for n, p in types[nested.__name__].properties.items() if not p.optional} == required(nested)


def test_the_hosts_plain_inputs_become_the_args_a_python_program_passes():
    provider = ComponentProvider(package.COMPONENTS, package.PACKAGE)
    definition = provider._component_defs["InterruptionHandler"]
    # As the engine hands them over: camelCase, numbers as floats, nested args as dicts.
    inputs = {
        "stackTag": "spotyard/dev",
        "account": {"region": "ap-northeast-1", "accountId": "123456789012"},
        "fleets": [
            {
                "name": "web",
                "engine": "asg",
                "capacityTarget": "web-group",
                "capacityTargetArn": "arn:aws:autoscaling:ap-northeast-1:123456789012:autoScalingGroup:x",
                "decrementCapacity": True,
                "onRebalance": "drain",
                "targetGroups": [{"arn": "arn:aws:elasticloadbalancing:tg/web", "targetType": "instance"}],
            }
        ],
        "ttl": 30.0,
        "iam": {"path": "/spotyard/"},
    }
    built = as_args(InterruptionHandlerArgs, provider.map_inputs(inputs, definition))
    assert built == InterruptionHandlerArgs(
        stack_tag="spotyard/dev",
        account=AccountArgs(region="ap-northeast-1", account_id="123456789012"),
        fleets=[
            InterruptedFleet(
                name="web",
                engine="asg",
                capacity_target="web-group",
                capacity_target_arn="arn:aws:autoscaling:ap-northeast-1:123456789012:autoScalingGroup:x",
                decrement_capacity=True,
                on_rebalance="drain",
                target_groups=[TargetGroupArgs(arn="arn:aws:elasticloadbalancing:tg/web", target_type="instance")],
            )
        ],
        ttl=30,
        iam=RoleArgs(path="/spotyard/"),
    )
