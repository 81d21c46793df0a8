"""What the stack tells a Lambda through its environment."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from spotyard_lambda.dns import Zone


def stack() -> str:
    """This stack's `spotyard:stack` tag value, `<project>/<stack>`."""
    return os.environ["SPOTYARD_STACK"]


def fleets() -> dict[str, dict[str, Any]]:
    """The stack's fleets and what this Lambda needs to know of each (JSON in SPOTYARD_FLEETS)."""
    return json.loads(os.environ.get("SPOTYARD_FLEETS", "{}"))


def optional(name: str) -> str | None:
    return os.environ.get(name) or None


@dataclass(frozen=True)
class StackSettings:
    """What the stack tells a Lambda: its tag, its fleets (as this Lambda needs them), its zone."""

    stack: str
    fleets: dict[str, dict[str, Any]]
    zone: Zone | None

    @classmethod
    def from_environment(cls):
        return cls(stack=stack(), fleets=fleets(), zone=Zone.from_environment())
