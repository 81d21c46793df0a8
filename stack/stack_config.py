"""Reads the stack's Pulumi configuration once and hands it to the typed loader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from spotyard import config as schema


def load_stack_config(project_dir: Path) -> schema.StackConfig:
    """The typed configuration, or one RunError naming every bad key."""
    values = {key: _decode(value) for key, value in _all_config().items()}
    try:
        return schema.load(values, project=pulumi.get_project(), stack=pulumi.get_stack(), project_dir=project_dir)
    except schema.ConfigError as error:
        raise pulumi.RunError(str(error)) from None


def _all_config() -> dict[str, Any]:
    # The engine passes config through PULUMI_CONFIG; tests and set_all_config use the context.
    return {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}


def _decode(value: Any) -> Any:
    """Structured values arrive as JSON text; plain strings stay strings."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
