"""Checks for single configuration values: schedule expressions, time zones,
DNS names, network sources, instance types. Each returns an error text or None."""

from __future__ import annotations

import difflib
import functools
import ipaddress
import re
import zoneinfo
from datetime import datetime

import botocore
import botocore.session

_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

# (field name, lowest, highest, names, extra characters allowed)
_CRON_FIELDS = (
    ("minutes", 0, 59, (), ""),
    ("hours", 0, 23, (), ""),
    ("day-of-month", 1, 31, (), "?LW"),
    ("month", 1, 12, _MONTHS, ""),
    ("day-of-week", 1, 7, _DAYS, "?L#"),
    ("year", 1970, 2199, (), ""),
)


def schedule_expression(expression: str) -> str | None:
    """EventBridge Scheduler expressions: cron(), rate() or at()."""
    match = re.fullmatch(r"(cron|rate|at)\((.*)\)", expression.strip())
    if not match:
        return f"must be cron(...), rate(...) or at(...), got '{expression}'"
    kind, body = match.groups()
    if kind == "rate":
        return _rate(body)
    if kind == "at":
        return _at(body)
    return _cron(body)


def _rate(body: str) -> str | None:
    match = re.fullmatch(r"(\d+) (minute|minutes|hour|hours|day|days)", body.strip())
    if not match or int(match.group(1)) < 1:
        return f"rate({body}) must be 'rate(<positive number> <minutes|hours|days>)'"
    singular = not match.group(2).endswith("s")
    if (int(match.group(1)) == 1) != singular:
        return f"rate({body}) must use the singular unit for 1 and the plural otherwise"
    return None


def _at(body: str) -> str | None:
    try:
        datetime.strptime(body.strip(), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return f"at({body}) must be at(yyyy-mm-ddThh:mm:ss)"
    return None


def _cron(body: str) -> str | None:
    fields = body.split()
    if len(fields) != 6:
        return f"cron({body}) must have 6 fields (minutes hours day-of-month month day-of-week year), got {len(fields)}"
    day_of_month, day_of_week = fields[2], fields[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        return f"cron({body}): exactly one of day-of-month and day-of-week must be '?'"
    for value, (name, low, high, names, extra) in zip(fields, _CRON_FIELDS, strict=True):
        error = _cron_field(value, low, high, names, extra)
        if error:
            return f"cron({body}): {name} '{value}' {error}"
    return None


def _cron_field(value: str, low: int, high: int, names: tuple[str, ...], extra: str) -> str | None:
    if value in ("*", "?") and (value == "*" or "?" in extra):
        return None
    for part in value.split(","):
        part = part.upper()
        if "#" in part and "#" in extra:
            day, _, nth = part.partition("#")
            if _cron_number(day, low, high, names) is None or nth not in "12345" or not nth:
                return "is not a valid <day>#<n>"
            continue
        if part in ("L", "W", "LW") and "L" in extra:
            continue
        if part.endswith(("L", "W")) and part[:-1].isdigit() and "L" in extra:
            part = part[:-1]
        base, _, step = part.partition("/")
        if step and not (step.isdigit() and int(step) > 0):
            return "has a bad step"
        bounds = base.split("-") if base != "*" else [str(low), str(high)]
        if len(bounds) > 2 or any(_cron_number(b, low, high, names) is None for b in bounds):
            return f"must be within {low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "")
    return None


def _cron_number(token: str, low: int, high: int, names: tuple[str, ...]) -> int | None:
    if token in names:
        return names.index(token) + low
    if token.isdigit() and low <= int(token) <= high:
        return int(token)
    return None


# Fleet and job names: they become parts of resource names, DNS labels and tag values.
NAME = r"[a-z][a-z0-9-]{0,22}[a-z0-9]|[a-z]"


def resource_name(kind: str, value: str) -> str | None:
    """A fleet's or job's name (`kind`: fleet | job)."""
    if re.fullmatch(NAME, value):
        return None
    return (
        f"{kind} names must be 1-24 lowercase letters, digits and hyphens, "
        "start with a letter and not end with a hyphen"
    )


def time_zone(name: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"must be an IANA time zone such as Asia/Tokyo or UTC, got '{name}'"
    return None


_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def dns_name(name: str) -> str | None:
    labels = name.rstrip(".").lower().split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        return f"must be a DNS name such as aws.example.internal, got '{name}'"
    return None


def network_source(entry: str) -> str | None:
    """A security group id or a CIDR block."""
    if re.fullmatch(r"sg-[0-9a-z]+", entry):
        return None
    try:
        ipaddress.ip_network(entry, strict=True)
    except ValueError:
        return f"must be a security group id (sg-...) or a CIDR block, got '{entry}'"
    if "/" not in entry:
        return f"must be a CIDR block with a prefix length (e.g. {entry}/32), got '{entry}'"
    return None


@functools.cache
def known_instance_types() -> frozenset[str]:
    """EC2's `InstanceType` enum in the service model botocore ships: offline, no AWS call."""
    model = botocore.session.get_session().get_service_model("ec2")
    return frozenset(model.shape_for("InstanceType").enum)


def instance_type(name: str) -> str | None:
    if not re.fullmatch(r"[a-z][a-z0-9-]*\.[a-z0-9-]+", name):
        return f"must be an instance type of the form family.size (e.g. m5.xlarge), got '{name}'"
    known = known_instance_types()
    if name in known:
        return None
    nearest = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean '{nearest[0]}'? " if nearest else ""
    return (
        f"is not an EC2 instance type, got '{name}': {hint}(checked against the {len(known)} types "
        f"botocore {botocore.__version__} knows; a type newer than that needs a newer botocore)"
    )


def architecture(instance_type_name: str) -> str:
    """arm64 for Graviton families (a1, m6g, c7gn, t4g, im4gn, ...), else x86_64."""
    family = instance_type_name.split(".")[0]
    match = re.fullmatch(r"([a-z]+)(\d+)([a-z-]*)", family)
    if family == "a1" or (match and "g" in match.group(3).split("-")[0]):
        return "arm64"
    return "x86_64"


def target_group_arn(arn: str) -> str | None:
    pattern = r"arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]+"
    if re.fullmatch(pattern, arn):
        return None
    return (
        "must be a target group ARN "
        f"(arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>), got '{arn}'"
    )


def managed_policy_arn(arn: str) -> str | None:
    if re.fullmatch(r"arn:aws[a-z-]*:iam::(\d{12}|aws):policy/[!-~]+", arn):
        return None
    return f"must be a managed policy ARN (arn:aws:iam::<account or aws>:policy/<name>), got '{arn}'"


def security_group_id(entry: str) -> str | None:
    if re.fullmatch(r"sg-[0-9a-z]+", entry):
        return None
    return f"must be a security group id (sg-...), got '{entry}'"
