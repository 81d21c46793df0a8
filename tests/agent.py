"""The on-instance agent (components/instance/spotyard_agent.py), imported for tests."""

from __future__ import annotations

import importlib.util
import sys

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("spotyard_agent", ROOT / "components" / "instance" / "spotyard_agent.py")
agent = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = agent
_spec.loader.exec_module(agent)
