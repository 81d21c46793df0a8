"""The small args dataclasses several components share (where they deploy, how their roles
are made, a subnet), and `as_args`, which lets a component take its args either as the
dataclass (a Python program) or as the plain dict of the same fields that Pulumi's component
provider host hands it (a TypeScript or Go program using the spotyard package: provider/).

A field with a default is typed `X | None`: the SDK's schema analyzer makes only Optional fields
optional, so that another language may leave it out (and the default applies, `as_args`)."""

import dataclasses
import types
import typing
from typing import Any, TypeVar, get_args, get_origin

from spotyard_lambda.names import DEFAULT_ROLE_PATH

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class AccountArgs:
    """The account and region the component deploys into; its ARNs are built from them."""

    region: str
    account_id: str
    partition: str | None = "aws"

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account_id if account else ''}:{resource}"
        )

    def managed_policy(self, name: str) -> str:
        return f"arn:{self.partition}:iam::aws:policy/{name}"


@dataclasses.dataclass(frozen=True)
class RoleArgs:
    """The path and permissions boundary of every IAM role the component creates."""

    path: str | None = DEFAULT_ROLE_PATH
    permissions_boundary: str | None = None


@dataclasses.dataclass(frozen=True)
class SubnetArgs:
    id: str
    availability_zone: str


def as_args(cls: type[T], value: Any) -> T:
    """`value` as the args dataclass `cls`: as is, or built from a dict of its fields (nested
    args dataclasses, lists and dicts of them included); absent fields take their defaults."""
    if isinstance(value, cls):
        return value
    hints = {f.name: f.type for f in dataclasses.fields(cls)}
    return cls(**{key: _coerce(hints[key], item) for key, item in value.items()})


def _coerce(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return as_args(hint, value)
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in get_args(hint):
            if dataclasses.is_dataclass(option) or get_origin(option) in (list, dict):
                return _coerce(option, value)
        return value
    if origin is list and isinstance(value, list):
        return [_coerce(get_args(hint)[0], item) for item in value]
    if origin is dict and isinstance(value, dict):
        return {key: _coerce(get_args(hint)[1], item) for key, item in value.items()}
    return value
