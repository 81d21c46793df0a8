"""The spotyard component package: hosts spotyard's components for programs in other
languages (PulumiPlugin.yaml beside this file). The SDK infers the package schema from the
components' args dataclasses; the components turn the plain inputs it hands them back into
those dataclasses (components/args.py)."""

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The components import each other from the project root and the Lambdas' shared package from lambdas/.
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

from pulumi.provider.experimental import component_provider_host  # noqa: E402

from components.dns_registrar import DnsRegistrar  # noqa: E402
from components.home_volume import HomeVolume  # noqa: E402
from components.interruption_handler import InterruptionHandler  # noqa: E402
from components.queue_autoscaler import QueueAutoscaler  # noqa: E402
from components.spot_fleet import SpotFleet  # noqa: E402

PACKAGE = "spotyard"  # the type tokens are spotyard:index:<Component>, as in the Python program
COMPONENTS = [SpotFleet, HomeVolume, DnsRegistrar, InterruptionHandler, QueueAutoscaler]


def version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


if __name__ == "__main__":
    component_provider_host(COMPONENTS, name=PACKAGE, version=version())
