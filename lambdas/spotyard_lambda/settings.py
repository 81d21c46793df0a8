"""What the stack tells a Lambda through its environment."""

from __future__ import annotations

import json
import os
from typing import Any


def stack() -> str:
    """This stack's `spotyard:stack` tag value, `<project>/<stack>`."""
    return os.environ["SPOTYARD_STACK"]


def fleets() -> dict[str, dict[str, Any]]:
    """The stack's fleets and what this Lambda needs to know of each (JSON in SPOTYARD_FLEETS)."""
    return json.loads(os.environ.get("SPOTYARD_FLEETS", "{}"))


def optional(name: str) -> str | None:
    return os.environ.get(name) or None
