"""Import one pure module of a Lambda from its source directory, for unit tests of decisions."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tests.conftest import ROOT


def load(function: str, module: str) -> ModuleType:
    path = ROOT / "lambdas" / function / f"{module}.py"
    spec = importlib.util.spec_from_file_location(f"spotyard_test_{function}_{module}", path)
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded
    spec.loader.exec_module(loaded)
    return loaded
