"""The `spotyard:batch` and `spotyard:jobs` keys (spec section 1) as typed dataclasses.

A job either runs a container image on AWS Batch (`image`: the Batch keys below) or runs on
a fleet's box through `spotyard-job <name> -- <command>` (`fleet`); both may have `alerts`.
`spotyard:batch` shapes the managed Spot compute environment that runs the image jobs.
Called from `config.load`, which owns the `Problems` every check here reports to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from spotyard_lambda.names import (
    DEFAULT_BATCH_INSTANCE_TYPES,
    DEFAULT_BATCH_MAX_VCPUS,
    DEFAULT_TIMEZONE,
    JOB_STREAK_LIMIT,
    MAX_SUCCESS_WITHIN_HOURS,
)

from spotyard import config_rules as rules
from spotyard.config_reader import Section

# Batch's own instance type bundles: "default_x86_64 ... from the m6i, c6i, r6i, and c7i instance
# families", "default_arm64 ... m6g, c6g, r6g, and c7g", "optimal ... from the c4, m4, r4, c5, m5,
# and r5 instance families" until it follows default_x86_64 (Batch API reference, ComputeResource
# instanceTypes). spotyard's default is default_x86_64: current generations that AWS keeps current,
# x86 so that public images run, four families of every size for Spot to choose from.
BATCH_INSTANCE_BUNDLES = ("default_x86_64", "default_arm64", "optimal")
INT32_MAX = 2_147_483_647  # Batch's `Integer` (maxvCpus, vcpus, memory, attempts)

# Batch API reference, RegisterJobDefinition / ResourceRequirement: "the minimum value for the
# timeout is 60 seconds"; RetryStrategy attempts "from 1 to 10"; MEMORY "at least 4 MiB".
MIN_TIMEOUT_SECONDS = 60
DEFAULT_TIMEOUT_SECONDS = 3600
DEFAULT_VCPUS = 1
DEFAULT_MEMORY_MIB = 2048
MAX_RETRIES = 9  # attempts = retries + 1 <= 10
DEFAULT_RETRIES = 3
MIN_MEMORY_MIB = 4

# Batch API reference, ResourceRequirement: the VCPU values Fargate takes, and for each the
# MEMORY values (MiB) it takes: (lowest, highest, step).
FARGATE_MEMORY_MIB: dict[float, tuple[int, int, int]] = {
    0.25: (512, 2048, 512),
    0.5: (1024, 4096, 1024),
    1: (2048, 8192, 1024),
    2: (4096, 16384, 1024),
    4: (8192, 30720, 1024),
    8: (16384, 61440, 4096),
    16: (32768, 122880, 8192),
}

DEFAULT_AFTER_FAILURES = 1

# Batch API reference, ContainerProperties image: "Up to 255 letters (uppercase and lowercase),
# numbers, hyphens, underscores, colons, periods, forward slashes, and number signs"; `@` for a digest.
IMAGE = r"[A-Za-z0-9][A-Za-z0-9._:/#@-]{0,254}"
ENVIRONMENT_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# ECS/Batch Secret valueFrom: an SSM parameter (its name, or ARN) or a Secrets Manager secret ARN.
SECRET_SOURCE = (
    r"/[A-Za-z0-9_.\-/]{1,1010}"
    r"|arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter/[A-Za-z0-9_.\-/]+"
    r"|arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@:-]+"
)
STACK_RESULTS = "stack"
BUCKET_NAME = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
IMAGE_JOB_KEYS = (
    "image",
    "command",
    "vcpus",
    "memoryMiB",
    "environment",
    "secrets",
    "timeoutSeconds",
    "retries",
    "schedule",
    "results",
    "fargate",
)


@dataclass(frozen=True)
class BatchConfig:
    """`spotyard:batch`: the managed Spot compute environment of the image jobs."""

    instance_types: tuple[str, ...] = DEFAULT_BATCH_INSTANCE_TYPES
    max_vcpus: int = DEFAULT_BATCH_MAX_VCPUS


@dataclass(frozen=True)
class JobAlertsConfig:
    """`alerts`: alarm after `after_failures` failed runs in a row, and when no run succeeded
    within `success_within_hours` (None: no such alarm)."""

    after_failures: int = DEFAULT_AFTER_FAILURES
    success_within_hours: int | None = None


@dataclass(frozen=True)
class JobScheduleConfig:
    expression: str
    timezone: str = DEFAULT_TIMEZONE


@dataclass(frozen=True)
class JobConfig:
    """One `spotyard:jobs.<name>`: a Batch job (`image`) or a job run on a fleet's box (`fleet`)."""

    name: str
    image: str | None = None
    fleet: str | None = None
    command: tuple[str, ...] = ()  # empty: the image's own CMD
    vcpus: float = DEFAULT_VCPUS
    memory_mib: int = DEFAULT_MEMORY_MIB
    environment: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)  # variable -> SSM parameter or secret
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    retries: int = DEFAULT_RETRIES  # further attempts after a Spot reclaim, and only then
    schedule: JobScheduleConfig | None = None
    results: str | None = None  # "stack" (a bucket the stack creates) or an existing bucket's name
    fargate: bool = False
    alerts: JobAlertsConfig | None = None

    @property
    def on_batch(self) -> bool:
        return self.image is not None


def load_batch(section: Section | None) -> BatchConfig | None:
    if section is None:
        return None
    types = section.texts("instanceTypes", item=_batch_instance_type)
    if section.raw("instanceTypes") == []:
        section.problem("instanceTypes", "must not be empty (leave it out for the default)")
    max_vcpus = section.integer("maxVcpus", DEFAULT_BATCH_MAX_VCPUS, minimum=1, maximum=INT32_MAX)
    section.close()
    return BatchConfig(
        instance_types=types or DEFAULT_BATCH_INSTANCE_TYPES, max_vcpus=max_vcpus or DEFAULT_BATCH_MAX_VCPUS
    )


def load_jobs(root: Section, fleet_names: tuple[str, ...], batch: BatchConfig | None) -> tuple[JobConfig, ...]:
    """Every `spotyard:jobs.<name>`; `fleet_names` are the fleets a fleet job may name."""
    raw = root.mapping("jobs")
    if raw is None:
        if batch is not None:
            root.problem("batch", "applies only to jobs with an image (spotyard:jobs), and there are none")
        return ()
    jobs = []
    for name, value in raw.items():
        section = Section(f"{root.key_of('jobs')}.{name}", value, root.problems)
        if error := rules.resource_name("job", str(name)):
            root.problems.add(section.key, error)
        jobs.append(_job(str(name), section, fleet_names))
    ec2_jobs = [job for job in jobs if job.on_batch and not job.fargate]
    if batch is not None and not ec2_jobs:
        root.problem("batch", "applies only to jobs with an image and without fargate, and there are none")
    max_vcpus = (batch or BatchConfig()).max_vcpus
    for job in ec2_jobs:
        if job.vcpus > max_vcpus:
            root.problems.add(
                f"{root.key_of('jobs')}.{job.name}.vcpus",
                f"must be at most spotyard:batch.maxVcpus ({max_vcpus}), got {job.vcpus:g}: "
                "the job would wait in the queue forever",
            )
    return tuple(jobs)


def _job(name: str, s: Section, fleet_names: tuple[str, ...]) -> JobConfig:
    alerts = _alerts(s.child("alerts"))
    fleet = s.text("fleet")
    if s.has("fleet"):
        for key in IMAGE_JOB_KEYS:
            if s.has(key):
                s.problem(key, "applies only to jobs with an image (Batch); a fleet job runs on the fleet's box")
            s.raw(key)
        s.close()
        if fleet is not None and fleet not in fleet_names:
            s.problem("fleet", f"must name a fleet of spotyard:fleets ({', '.join(fleet_names)}), got '{fleet}'")
        return JobConfig(name=name, fleet=fleet, alerts=alerts)
    image = s.text("image", pattern=IMAGE, expected="a container image (registry/repository:tag)")
    fargate = s.flag("fargate")
    command = s.texts("command")
    vcpus = _vcpus(s, fargate)
    memory = s.integer("memoryMiB", DEFAULT_MEMORY_MIB, minimum=MIN_MEMORY_MIB, maximum=INT32_MAX)
    environment = _variables(s, "environment", _environment_value)
    secrets = _variables(s, "secrets", _secret_source)
    timeout = s.integer("timeoutSeconds", DEFAULT_TIMEOUT_SECONDS, minimum=MIN_TIMEOUT_SECONDS, maximum=INT32_MAX)
    retries = s.integer("retries", DEFAULT_RETRIES, minimum=0, maximum=MAX_RETRIES)
    schedule = _schedule(s.child("schedule"))
    results = s.text(
        "results",
        pattern=f"{STACK_RESULTS}|{BUCKET_NAME}",
        expected=f"'{STACK_RESULTS}' (a bucket the stack creates) or the name of an existing bucket",
    )
    s.close()
    if not s.has("image"):
        s.problem("image", "is required: a container image for AWS Batch, or name a fleet to run on (fleet)")
    for variable in sorted(set(environment) & set(secrets)):
        s.problems.add(f"{s.key_of('secrets')}.{variable}", "is also set in environment: keep one")
    if fargate and vcpus in FARGATE_MEMORY_MIB and memory is not None:
        low, high, step = FARGATE_MEMORY_MIB[vcpus]
        if not (low <= memory <= high and (memory - low) % step == 0):
            s.problem(
                "memoryMiB",
                f"Fargate with {vcpus:g} vCPU takes {low} to {high} MiB in steps of {step}, got {memory}",
            )
    return JobConfig(
        name=name,
        image=image,
        command=command,
        vcpus=vcpus,
        memory_mib=memory or DEFAULT_MEMORY_MIB,
        environment=environment,
        secrets=secrets,
        timeout_seconds=timeout or DEFAULT_TIMEOUT_SECONDS,
        retries=DEFAULT_RETRIES if retries is None else retries,
        schedule=schedule,
        results=results,
        fargate=fargate,
        alerts=alerts,
    )


def _vcpus(s: Section, fargate: bool) -> float:
    value = s.raw("vcpus")
    if value is None:
        return DEFAULT_VCPUS
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if fargate:
        if number not in FARGATE_MEMORY_MIB:
            choices = ", ".join(f"{v:g}" for v in FARGATE_MEMORY_MIB)
            s.problem("vcpus", f"Fargate takes {choices} vCPUs, got {value!r}")
            return DEFAULT_VCPUS
        return number
    if number is None or not number.is_integer() or not 1 <= number <= INT32_MAX:
        s.problem("vcpus", f"must be a whole number of at least 1 on EC2 (fractions need fargate: true), got {value!r}")
        return DEFAULT_VCPUS
    return int(number)


def _variables(s: Section, name: str, value_error: Callable[[Any], str | None]) -> dict[str, str]:
    raw = s.mapping(name) or {}
    variables = {}
    for variable, value in raw.items():
        key = f"{s.key_of(name)}.{variable}"
        if not re.fullmatch(ENVIRONMENT_NAME, str(variable)):
            s.problems.add(key, "must be an environment variable name (letters, digits and _, not first a digit)")
        # Batch API reference, KeyValuePair: "Environment variables cannot start with AWS_BATCH".
        elif str(variable).startswith("AWS_BATCH"):
            s.problems.add(key, "variables starting with AWS_BATCH are reserved for AWS Batch")
        elif error := value_error(value):
            s.problems.add(key, error)
        else:
            variables[str(variable)] = str(value).lower() if isinstance(value, bool) else str(value)
    return variables


def _environment_value(value: Any) -> str | None:
    if isinstance(value, (str, int, float, bool)):
        return None
    return "must be a string (a secret belongs in secrets, as an SSM parameter or Secrets Manager ARN)"


def _secret_source(value: Any) -> str | None:
    if isinstance(value, str) and re.fullmatch(SECRET_SOURCE, value):
        return None
    return (
        "must be an SSM parameter name (/path/name), an SSM parameter ARN or a Secrets Manager "
        f"secret ARN (arn:aws:secretsmanager:...), got {value!r}"
    )


def _batch_instance_type(entry: str) -> str | None:
    if entry in BATCH_INSTANCE_BUNDLES:
        return None
    if "." not in entry:
        if any(known.startswith(entry + ".") for known in rules.known_instance_types()):
            return None
        return (
            f"must be an instance type (m7i.large), a family (m7i) or one of "
            f"{', '.join(BATCH_INSTANCE_BUNDLES)}, got '{entry}'"
        )
    return rules.instance_type(entry)


def _schedule(s: Section | None) -> JobScheduleConfig | None:
    if s is None:
        return None
    expression = s.text("expression", required=True, check=rules.schedule_expression)
    timezone = s.text("timezone", DEFAULT_TIMEZONE, check=rules.time_zone)
    s.close()
    if expression is None:
        return None
    return JobScheduleConfig(expression=expression, timezone=timezone)


def _alerts(s: Section | None) -> JobAlertsConfig | None:
    if s is None:
        return None
    # The job reporter counts at most JOB_STREAK_LIMIT failures in a row: an alarm after more never fires.
    after = s.integer("afterFailures", DEFAULT_AFTER_FAILURES, minimum=1, maximum=JOB_STREAK_LIMIT)
    within = s.integer("successWithinHours", minimum=1, maximum=MAX_SUCCESS_WITHIN_HOURS)
    s.close()
    return JobAlertsConfig(after_failures=after, success_within_hours=within)
