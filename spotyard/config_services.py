"""`spotyard:services.<name>` and `spotyard:proxy`: small always-on containers on ECS, on one
`asg` fleet, behind one TLS proxy (spec section 1, "services").

`load_services` reads both sections with the same `Section` reader as the rest of the
configuration and records every problem by its full key; `config.load` calls it once the
fleets are read, since a service names the fleet that hosts it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from spotyard_lambda.names import (
    DEFAULT_SERVICE_CPU_UNITS,
    DEFAULT_SERVICE_DESIRED_COUNT,
    DEFAULT_SERVICE_MEMORY_MIB,
    PROXY_SERVICE,
)

from spotyard import config_rules as rules
from spotyard.config import INT32_MAX, FleetConfig
from spotyard.config_reader import Section

SERVICE_NAME = r"[a-z][a-z0-9-]{0,22}[a-z0-9]|[a-z]"
ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# ECS ContainerDefinition `image`: "Up to 255 letters (uppercase and lowercase), numbers, hyphens,
# underscores, colons, periods, forward slashes, and number signs are allowed" (also `@` of a digest).
IMAGE = r"[A-Za-z0-9_.:/#@-]{1,255}"
# Task size on EC2 (ECS developer guide, "Task definition parameters", Task size): CPU from 128 units
# (0.125 vCPU) to 196,608 units (192 vCPUs). Memory: Docker refuses a container limit under 6 MiB
# (ContainerDefinition `memory`: "The Docker 20.10.0 or later daemon reserves a minimum of 6 MiB").
CPU_UNITS = (128, 196_608)
MIN_MEMORY_MIB = 6
# ECS service quotas: "Tasks per service", 5,000 (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-quotas.html).
MAX_DESIRED_COUNT = 5_000
# A secret is an SSM parameter (its name in the stack's region, or its ARN) or a Secrets Manager
# secret ARN, optionally with `:json-key:version-stage:version-id` (ECS developer guide, "Pass
# sensitive data to an Amazon ECS container").
PARAMETER_NAME = r"/?[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*"
PARAMETER_ARN = r"arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter/.+"
SECRET_ARN = r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[^:]+(:[^:]*){0,3}"


@dataclass(frozen=True)
class ServiceConfig:
    """One `spotyard:services.<name>` entry: a container image served under `host_names`."""

    name: str
    image: str
    container_port: int
    host_names: tuple[str, ...]
    fleet: str
    cpu: int = DEFAULT_SERVICE_CPU_UNITS
    memory_mib: int = DEFAULT_SERVICE_MEMORY_MIB
    environment: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)  # variable -> parameter name or ARN
    health_check_path: str | None = None
    desired_count: int = DEFAULT_SERVICE_DESIRED_COUNT


@dataclass(frozen=True)
class ProxyConfig:
    """`spotyard:proxy`: the ACME account of the TLS proxy in front of the services."""

    acme_email: str | None = None
    acme_ca: str | None = None  # default Let's Encrypt's production directory


def load_services(root: Section, fleets: tuple[FleetConfig, ...]) -> tuple[tuple[ServiceConfig, ...], ProxyConfig]:
    """The services and the proxy, checked against the fleets that are to host them."""
    raw = root.mapping("services") or {}
    key = root.key_of("services")
    services = []
    for name, value in raw.items():
        section = Section(f"{key}.{name}", value, root.problems)
        if not re.fullmatch(SERVICE_NAME, str(name)):
            root.problems.add(
                section.key,
                "service names must be 1-24 lowercase letters, digits and hyphens, "
                "start with a letter and not end with a hyphen",
            )
        if name == PROXY_SERVICE:
            root.problems.add(section.key, f"'{PROXY_SERVICE}' is the name of spotyard's own TLS proxy service")
        service = _service(str(name), section, {fleet.name: fleet for fleet in fleets})
        if service:
            services.append(service)
    _one_host_each(key, services, root)
    _one_fleet(key, services, root)
    proxy = _proxy(root.child("proxy"))
    return tuple(services), proxy


def _service(name: str, s: Section, fleets: Mapping[str, FleetConfig]) -> ServiceConfig | None:
    image = s.text("image", required=True, pattern=IMAGE, expected="a container image reference (repo/name:tag)")
    port = s.integer("containerPort", minimum=1, maximum=65535)
    host_names = s.texts("hostNames", required=True, item=rules.dns_name)
    cpu = s.integer("cpu", DEFAULT_SERVICE_CPU_UNITS, minimum=CPU_UNITS[0], maximum=CPU_UNITS[1])
    memory = s.integer("memoryMiB", DEFAULT_SERVICE_MEMORY_MIB, minimum=MIN_MEMORY_MIB, maximum=INT32_MAX)
    environment = _variables(s, "environment", _plain_value)
    secrets = _variables(s, "secrets", _secret_reference)
    health = s.text("healthCheckPath", pattern=r"/[!-~]*", expected="a path starting with /")
    desired = s.integer("desiredCount", DEFAULT_SERVICE_DESIRED_COUNT, minimum=0, maximum=MAX_DESIRED_COUNT)
    fleet_name = s.text("fleet", required=True)
    s.close()
    if not s.has("containerPort"):
        s.problem("containerPort", "is required")
    for variable in sorted(set(environment) & set(secrets)):
        s.problems.add(f"{s.key_of('secrets')}.{variable}", "is also in environment: one value per variable")
    if fleet_name is not None:
        _check_host(s, fleet_name, fleets)
    if None in (image, port, fleet_name) or not host_names:
        return None
    return ServiceConfig(
        name=name,
        image=image,
        container_port=port,
        host_names=tuple(h.rstrip(".").lower() for h in host_names),
        fleet=fleet_name,
        cpu=cpu,
        memory_mib=memory,
        environment=environment,
        secrets=secrets,
        health_check_path=health,
        desired_count=desired,
    )


def _check_host(s: Section, fleet_name: str, fleets: Mapping[str, FleetConfig]) -> None:
    """Only an `asg` fleet can be ECS capacity (an Auto Scaling group capacity provider); and ECS
    managed scaling owns its desired capacity, which the queue autoscaler, the schedules and idle
    stop would fight over."""
    fleet = fleets.get(fleet_name)
    if fleet is None:
        known = ", ".join(sorted(fleets)) or "none"
        s.problem("fleet", f"names no fleet: '{fleet_name}' (fleets: {known})")
        return
    if fleet.engine != "asg":
        s.problem(
            "fleet",
            f"fleet '{fleet_name}' is a {fleet.engine} fleet; only asg fleets can host services "
            "(ECS capacity providers take an Auto Scaling group)",
        )
    for owner, present in (
        ("queue", fleet.queue),
        ("schedule", fleet.schedule),
        ("idleStopMinutes", fleet.idle_stop_minutes),
    ):
        if present:
            s.problem(
                "fleet",
                f"fleet '{fleet_name}' has {owner}, which sets its capacity; on a fleet hosting "
                "services ECS managed scaling does",
            )


def _variables(s: Section, name: str, check) -> dict[str, str]:
    raw = s.mapping(name) or {}
    found = {}
    for variable, value in raw.items():
        key = f"{s.key_of(name)}.{variable}"
        if not re.fullmatch(ENV_NAME, str(variable)):
            s.problems.add(key, "must be an environment variable name (letters, digits, _; not starting with a digit)")
            continue
        text, error = check(value)
        if error:
            s.problems.add(key, error)
        else:
            found[str(variable)] = text
    return found


def _plain_value(value) -> tuple[str, str | None]:
    if isinstance(value, bool):
        return str(value).lower(), None
    if isinstance(value, (str, int, float)):
        return str(value), None
    return "", "must be a string, number or boolean"


def _secret_reference(value) -> tuple[str, str | None]:
    if isinstance(value, str) and any(re.fullmatch(p, value) for p in (PARAMETER_ARN, SECRET_ARN, PARAMETER_NAME)):
        return value, None
    return "", (
        f"must be an SSM parameter name (/app/key), an SSM parameter ARN or a Secrets Manager secret ARN, got {value!r}"
    )


def _one_host_each(key: str, services: list[ServiceConfig], root: Section) -> None:
    """The proxy routes by host name: a name can lead to one service only."""
    owner: dict[str, str] = {}
    for service in services:
        for host in service.host_names:
            if host in owner and owner[host] != service.name:
                root.problems.add(
                    f"{key}.{service.name}.hostNames", f"'{host}' is already a host name of service '{owner[host]}'"
                )
            owner.setdefault(host, service.name)


def _one_fleet(key: str, services: list[ServiceConfig], root: Section) -> None:
    """One proxy answers on one fleet's Elastic IP, so every service runs on that fleet."""
    if not services:
        return
    first = services[0]
    for service in services[1:]:
        if service.fleet != first.fleet:
            root.problems.add(
                f"{key}.{service.name}.fleet",
                f"all services run on one fleet, behind one proxy: '{first.name}' is on '{first.fleet}', "
                f"got '{service.fleet}'",
            )


def _proxy(s: Section | None) -> ProxyConfig:
    if s is None:
        return ProxyConfig()
    email = s.text("acmeEmail", pattern=r"[^@\s]+@[^@\s]+\.[^@\s]+", expected="an e-mail address")
    ca = s.text("acmeCa", pattern=r"https://\S+", expected="an ACME directory URL (https://...)")
    s.close()
    return ProxyConfig(acme_email=email, acme_ca=ca)
