"""The stack configuration (`Pulumi.<stack>.yaml`, spec section 1) as typed dataclasses.

`load(...)` reads every `spotyard:` key once, checks each against the contract, and
raises one `pulumi.RunError` that lists every problem by its full key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spotyard_lambda.names import (
    DEFAULT_MESSAGES_PER_INSTANCE,
    DEFAULT_ROLE_PATH,
    DEFAULT_TIMEZONE,
    DEFAULT_TTL_SECONDS,
    stack_tag_value,
)

from spotyard import config_rules as rules
from spotyard.config_jobs import BatchConfig, JobConfig, load_batch, load_jobs
from spotyard.config_reader import Problems, Section
from spotyard.ssh_config import DEFAULT_IDENTITY_FILE

if TYPE_CHECKING:
    from spotyard.config_services import ProxyConfig, ServiceConfig

NAMESPACE = "spotyard"
ENGINES = ("asg", "spot-fleet")
ALLOCATION_STRATEGIES = {
    "asg": ("price-capacity-optimized", "capacity-optimized", "lowest-price"),
    "spot-fleet": ("price-capacity-optimized", "capacity-optimized", "lowest-price", "diversified"),
}
REBALANCE_ACTIONS = ("notify", "drain")

# Upper bounds of integer keys: what the AWS API that takes the value accepts.
# Auto Scaling MinSize/MaxSize/DesiredCapacity are 32-bit `integer`s (botocore's autoscaling model).
INT32_MAX = 2_147_483_647
# A Spot Fleet's TargetCapacity: "Target capacity per Spot Fleet" quota, 10,000
# (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/fleet-quotas.html).
MAX_CAPACITY = {"asg": INT32_MAX, "spot-fleet": 10_000}
# Route 53 takes a TTL of 0 to 2,147,483,647 (botocore's route53 `TTL` shape); spotyard keeps names a day at most.
MAX_TTL_SECONDS = 86_400
# SQS VisibilityTimeout: 0 to 43,200 seconds, 12 hours (SetQueueAttributes API reference).
MAX_VISIBILITY_TIMEOUT_SECONDS = 43_200
# AMIs per Region: 50,000 by default (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ami-quotas.html).
MAX_KEPT_IMAGES = 50_000
# EFS access point PosixUser Uid/Gid: 0 to 4,294,967,295 (botocore's efs `Uid`/`Gid` shapes).
MAX_POSIX_ID = 4_294_967_295
# No AWS API takes these two; spotyard's own limits: longer is "never" (leave the key out).
MAX_COOLDOWN_SECONDS = 86_400
MAX_IDLE_STOP_MINUTES = 10_080

# Defaults of optional keys (spec section 1), each written once: the readers return them typed
# (config_reader.Section) and the dataclasses below default to them.
DEFAULT_ENGINE = "asg"
DEFAULT_ALLOCATION_STRATEGY = "price-capacity-optimized"
DEFAULT_KEPT_IMAGES = 3
DEFAULT_POSIX_ID = 1000  # ec2-user on Amazon Linux
DEFAULT_SSH_USER = "ec2-user"
DEFAULT_SCALE_IN_COOLDOWN_SECONDS = 300
DEFAULT_BOOT_SECONDS = 120
DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 300
DEFAULT_WARM_UP_MINUTES = 15
DEFAULT_ON_REBALANCE = "notify"
DEFAULT_ROOT_VOLUME_TYPE = "gp3"
# What a gp3 volume gets without `iops` (EC2 user guide, General Purpose SSD volumes: 3,000 IOPS baseline).
GP3_BASELINE_IOPS = 3000


@dataclass(frozen=True)
class NetworkConfig:
    vpc_id: str | None = None
    subnet_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class DnsConfig:
    zone_name: str | None
    zone_id: str | None
    ttl: int


@dataclass(frozen=True)
class NotificationsConfig:
    email: str | None


@dataclass(frozen=True)
class ImageConfig:
    """Where a fleet's AMI comes from. No amiId and no roleTag: the latest Amazon Linux 2023."""

    ami_id: str | None = None
    role_tag: str | None = None
    fallback_role_tag: str | None = None
    snapshot_on_terminate: bool = False
    keep: int = DEFAULT_KEPT_IMAGES


@dataclass(frozen=True)
class HomeConfig:
    mount_path: str
    retain_on_destroy: bool
    uid: int
    gid: int


@dataclass(frozen=True)
class SshConfig:
    key_name: str | None
    allow_from: tuple[str, ...]
    user: str
    bastion: str | None
    identity_file: str = DEFAULT_IDENTITY_FILE
    forward_agent: bool = False


@dataclass(frozen=True)
class ScheduleConfig:
    start: str | None
    stop: str | None
    timezone: str


@dataclass(frozen=True)
class WarmUpConfig:
    """`queue.warmUp`: the fleet is held at `capacity` or more for `minutes` from each `schedule` time."""

    schedule: str
    timezone: str
    capacity: int
    minutes: int


@dataclass(frozen=True)
class QueueConfig:
    messages_per_instance: int
    scale_in_cooldown_seconds: int
    visibility_timeout_seconds: int
    boot_seconds: int = DEFAULT_BOOT_SECONDS
    warm_up: WarmUpConfig | None = None


@dataclass(frozen=True)
class ResultsConfig:
    bucket: str
    retain_on_destroy: bool = True
    # An S3-compatible service (Wasabi, MinIO, R2) instead of S3: its endpoint and region, and
    # the SSM SecureString parameter or Secrets Manager secret holding the access keys.
    endpoint: str | None = None
    region: str | None = None
    credentials_parameter: str | None = None
    credentials_secret: str | None = None
    readers: tuple[str, ...] = ()  # principals (IAM ARNs) that may read a created bucket

    @property
    def create(self) -> bool:
        return self.bucket == "create"


@dataclass(frozen=True)
class InterruptionConfig:
    decrement_capacity: bool = False
    on_rebalance: str = DEFAULT_ON_REBALANCE


@dataclass(frozen=True)
class RootVolumeConfig:
    """`rootVolume`: the root EBS volume of every instance (encrypted, deleted with the instance)."""

    size: int | None = None  # GiB; None: the AMI's snapshot size
    type: str = DEFAULT_ROOT_VOLUME_TYPE
    iops: int | None = None
    throughput: int | None = None  # MiB/s, gp3 only


@dataclass(frozen=True)
class IngressRule:
    """One `ingress` entry: `port` (to `toPort`) over `protocol` from each of `sources`."""

    port: int
    to_port: int
    protocol: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class InstanceRoleConfig:
    """`instanceRole`: more for the instances' role than SSM and spotyard's own needs."""

    managed_policy_arns: tuple[str, ...] = ()
    statements: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class FleetConfig:
    name: str
    engine: str = DEFAULT_ENGINE
    instance_types: tuple[str, ...] = ()
    allocation_strategy: str = DEFAULT_ALLOCATION_STRATEGY
    capacity: int = 1
    min_capacity: int = 0
    max_capacity: int = 1
    on_demand_fallback: bool = False
    elastic_ip: str | None = None
    image: ImageConfig = field(default_factory=ImageConfig)
    home: HomeConfig | None = None
    ssh: SshConfig | None = None
    schedule: ScheduleConfig | None = None
    idle_stop_minutes: int | None = None
    queue: QueueConfig | None = None
    results: ResultsConfig | None = None
    target_group_arns: tuple[str, ...] = ()
    interruption: InterruptionConfig = field(default_factory=InterruptionConfig)
    user_data: str | None = None
    root_volume: RootVolumeConfig = field(default_factory=RootVolumeConfig)
    instance_role: InstanceRoleConfig = field(default_factory=InstanceRoleConfig)
    security_group_ids: tuple[str, ...] = ()
    ingress: tuple[IngressRule, ...] = ()
    on_demand_base_capacity: int | None = None  # None: not configured (then 0, and not Pulumi's to reset)
    spot_max_price: str | None = None
    spot_instance_pools: int | None = None
    # Units of capacity each type counts for, for every type when any `instanceTypes` entry has a
    # weight; empty when capacity counts instances.
    instance_weights: Mapping[str, int] = field(default_factory=dict)
    credit_specification: str | None = None  # standard | unlimited, burstable (T) types only
    hosts_services: bool = False  # some `spotyard:services` entry runs on it (ECS capacity)

    @property
    def architecture(self) -> str:
        return rules.architecture(self.instance_types[0]) if self.instance_types else "x86_64"

    @property
    def ssh_user(self) -> str:
        return self.ssh.user if self.ssh else DEFAULT_SSH_USER


@dataclass(frozen=True)
class IamConfig:
    """`spotyard:iam`: the path and permissions boundary of every role the stack creates."""

    path: str = DEFAULT_ROLE_PATH
    permissions_boundary: str | None = None


@dataclass(frozen=True)
class StackConfig:
    project: str
    stack: str
    region: str | None
    network: NetworkConfig
    dns: DnsConfig | None
    notifications: NotificationsConfig | None
    tags: Mapping[str, str]
    fleets: tuple[FleetConfig, ...]
    iam: IamConfig = field(default_factory=IamConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    jobs: tuple[JobConfig, ...] = ()
    services: tuple[ServiceConfig, ...] = ()
    proxy: ProxyConfig | None = None  # with services: spotyard:proxy (defaults when absent)

    @property
    def stack_tag(self) -> str:
        """Value of the `spotyard:stack` tag on everything this stack owns."""
        return stack_tag_value(self.project, self.stack)


class ConfigError(Exception):
    """Raised with the whole list of problems; the program turns it into a RunError."""


def load(values: Mapping[str, Any], *, project: str, stack: str, project_dir: Path) -> StackConfig:
    """Parse `{"spotyard:fleets": {...}, "aws:region": "..."}` (values already JSON-decoded)."""
    problems = Problems()
    ours = {key.split(":", 1)[1]: value for key, value in values.items() if key.startswith(NAMESPACE + ":")}
    root = Section(NAMESPACE, ours, problems, separator=":")
    network = _network(root.child("network"))
    dns = _dns(root.child("dns"))
    notifications = _notifications(root.child("notifications"))
    tags = _tags(root)
    fleets = _fleets(root, project_dir)
    iam = _iam(root.child("iam"))
    batch = load_batch(root.child("batch"))
    jobs = load_jobs(root, tuple(fleet.name for fleet in fleets), batch)
    from spotyard.config_services import load_services  # it reads FleetConfig from here

    services, proxy = load_services(root, fleets)
    hosts = {service.fleet for service in services}
    fleets = tuple(replace(fleet, hosts_services=True) if fleet.name in hosts else fleet for fleet in fleets)
    root.close()
    if problems:
        raise ConfigError(problems.report())
    region = values.get("aws:region")
    return StackConfig(
        project=project,
        stack=stack,
        region=str(region) if region else None,
        network=network,
        dns=dns,
        notifications=notifications,
        tags=tags,
        fleets=fleets,
        iam=iam,
        batch=batch or BatchConfig(),
        jobs=jobs,
        services=services,
        proxy=proxy if services else None,
    )


def _network(section: Section | None) -> NetworkConfig:
    if section is None:
        return NetworkConfig()
    vpc_id = section.text("vpcId", pattern=r"vpc-[0-9a-z]+", expected="a VPC id (vpc-...)")
    subnet_ids = section.texts(
        "subnetIds",
        item=lambda s: (
            None if s.startswith("subnet-") and len(s) > 7 else f"must be a subnet id (subnet-...), got '{s}'"
        ),
    )
    section.close()
    if subnet_ids and vpc_id is None and not section.has("vpcId"):
        section.problem("vpcId", "is required when subnetIds is set")
    return NetworkConfig(vpc_id=vpc_id, subnet_ids=subnet_ids)


def _dns(section: Section | None) -> DnsConfig | None:
    if section is None:
        return None
    zone_name = section.text("zoneName", check=rules.dns_name)
    zone_id = section.text("zoneId", pattern=r"Z[0-9A-Z]+", expected="a hosted zone id (Z...)")
    ttl = section.integer("ttl", DEFAULT_TTL_SECONDS, minimum=1, maximum=MAX_TTL_SECONDS)
    section.close()
    if not section.has("zoneName") and not section.has("zoneId"):
        section.problem("zoneName", "is required (or name an existing zone with zoneId)")
    return DnsConfig(zone_name=zone_name.rstrip(".").lower() if zone_name else None, zone_id=zone_id, ttl=ttl)


def _notifications(section: Section | None) -> NotificationsConfig | None:
    if section is None:
        return None
    email = section.text("email", pattern=r"[^@\s]+@[^@\s]+\.[^@\s]+", expected="an e-mail address")
    section.close()
    return NotificationsConfig(email=email)


def _tags(root: Section) -> dict[str, str]:
    raw = root.mapping("tags") or {}
    tags = {}
    for key, value in raw.items():
        full = f"{root.key_of('tags')}.{key}"
        if key.lower().startswith(("aws:", f"{NAMESPACE}:")):
            root.problems.add(full, f"tag keys starting with aws: or {NAMESPACE}: are reserved")
        elif not 1 <= len(key) <= 128:
            root.problems.add(full, "tag keys must be 1 to 128 characters long")
        elif not isinstance(value, (str, int, float, bool)) or len(str(value)) > 256:
            root.problems.add(full, "tag values must be strings of at most 256 characters")
        else:
            tags[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    return tags


def _fleets(root: Section, project_dir: Path) -> tuple[FleetConfig, ...]:
    raw = root.mapping("fleets")
    key = root.key_of("fleets")
    if raw is None:
        if not root.has("fleets") and not root.has("jobs"):  # a stack of Batch jobs needs no fleet
            root.problems.add(key, "is required: at least one fleet (or a job in spotyard:jobs)")
        return ()
    if not raw:
        root.problems.add(key, "must name at least one fleet")
    fleets = []
    for name, value in raw.items():
        section = Section(f"{key}.{name}", value, root.problems)
        if error := rules.resource_name("fleet", str(name)):
            root.problems.add(section.key, error)
        fleets.append(_fleet(str(name), section, project_dir))
    return tuple(fleets)


def _fleet(name: str, s: Section, project_dir: Path) -> FleetConfig:
    engine = s.text("engine", DEFAULT_ENGINE, choices=ENGINES)
    instance_types, instance_weights = _instance_types(s)
    strategy = s.text("allocationStrategy", DEFAULT_ALLOCATION_STRATEGY, choices=ALLOCATION_STRATEGIES[engine])
    limit = MAX_CAPACITY[engine]
    min_capacity = s.integer("minCapacity", 0, minimum=0, maximum=limit)
    capacity = s.integer("capacity", max(1, min_capacity), minimum=0, maximum=limit)
    max_capacity = s.integer("maxCapacity", max(1, capacity), minimum=1, maximum=limit)
    if capacity < min_capacity:
        s.problem("capacity", f"must be at least minCapacity ({min_capacity}), got {capacity}")
    if max_capacity < capacity:
        s.problem("maxCapacity", f"must be at least capacity ({capacity}), got {max_capacity}")
    architectures = {rules.architecture(t) for t in instance_types}
    if len(architectures) > 1:
        s.problem("instanceTypes", "mixes arm64 (Graviton) and x86_64 types; one AMI cannot boot both")
    ssh = _ssh(s.child("ssh"))
    queue = _queue(s.child("queue"), max_capacity)
    fleet = FleetConfig(
        name=name,
        engine=engine,
        instance_types=instance_types,
        allocation_strategy=strategy,
        capacity=capacity,
        min_capacity=min_capacity,
        max_capacity=max_capacity,
        on_demand_fallback=s.flag("onDemandFallback"),
        elastic_ip=s.text(
            "elasticIp", pattern=r"eipalloc-[0-9a-z]+", expected="an Elastic IP allocation id (eipalloc-...)"
        ),
        image=_image(s.child("image")),
        home=_home(s.child("home"), ssh.user if ssh else DEFAULT_SSH_USER),
        ssh=ssh,
        schedule=_schedule(s.child("schedule")),
        idle_stop_minutes=s.integer("idleStopMinutes", minimum=10, maximum=MAX_IDLE_STOP_MINUTES),
        queue=queue,
        results=_results(s.child("results")),
        target_group_arns=_load_balancer(s.child("loadBalancer")),
        interruption=_interruption(s.child("interruption")),
        user_data=_user_data(s, project_dir),
        root_volume=_root_volume(s.child("rootVolume")),
        instance_role=_instance_role(s.child("instanceRole")),
        security_group_ids=s.texts("securityGroupIds", item=rules.security_group_id),
        ingress=_ingress(s, ssh),
        **_purchase(s, strategy, max_capacity),
        instance_weights=instance_weights,
        credit_specification=_credit_specification(s, instance_types),
    )
    s.close()
    if instance_weights:
        for name, counted in (("queue", "instances per backlog"), ("idleStopMinutes", "an idle instance as 1")):
            if s.has(name):
                s.problem(
                    "instanceTypes",
                    f"weights cannot be combined with {name}, which counts {counted}, not units of capacity",
                )
    # The queue autoscaler's fallback owns the on-demand base at run time: it sets it to the shortfall
    # and back to 0, and resets any other value it finds (lambdas/queue_autoscaler/autoscaler.py: "a
    # drift from what was set"), so a configured base would be lost at the fallback's first run.
    if fleet.on_demand_base_capacity is not None and fleet.on_demand_fallback:
        s.problem(
            "onDemandBaseCapacity",
            "cannot be combined with onDemandFallback: the fallback sets the "
            "on-demand capacity itself (to the Spot shortfall, then back to 0)",
        )
    return fleet


def _image(s: Section | None) -> ImageConfig:
    if s is None:
        return ImageConfig()
    ami_id = s.text("amiId", pattern=r"ami-[0-9a-z]+", expected="an AMI id (ami-...)")
    role_tag = s.text("roleTag", pattern=r"[A-Za-z0-9_.:/=+@ -]{1,256}", expected="a tag value")
    fallback = s.text("fallbackRoleTag", pattern=r"[A-Za-z0-9_.:/=+@ -]{1,256}", expected="a tag value")
    snapshot = s.flag("snapshotOnTerminate")
    keep = s.integer("keep", DEFAULT_KEPT_IMAGES, minimum=1, maximum=MAX_KEPT_IMAGES)
    s.close()
    if s.has("amiId") == s.has("roleTag"):
        s.problem("amiId", "set exactly one of amiId and roleTag")
    if s.has("fallbackRoleTag") and not s.has("roleTag"):
        s.problem("fallbackRoleTag", "needs roleTag")
    if snapshot and not s.has("roleTag"):
        s.problem("snapshotOnTerminate", "needs roleTag: saved AMIs are tagged Role=<roleTag>")
    return ImageConfig(
        ami_id=ami_id, role_tag=role_tag, fallback_role_tag=fallback, snapshot_on_terminate=snapshot, keep=keep
    )


def _home(s: Section | None, user: str) -> HomeConfig | None:
    if s is None:
        return None
    mount_path = s.text(
        "mountPath",
        f"/home/{user}/var",  # the default, here only
        pattern=r"/[A-Za-z0-9._/-]*[A-Za-z0-9._-]",
        expected="an absolute path of letters, digits, . _ - and /",
    )
    retain = s.flag("retainOnDestroy", True)
    uid = s.integer("uid", DEFAULT_POSIX_ID, minimum=0, maximum=MAX_POSIX_ID)
    gid = s.integer("gid", DEFAULT_POSIX_ID, minimum=0, maximum=MAX_POSIX_ID)
    s.close()
    system = ("/", "/home", "/etc", "/usr", "/var", "/boot", "/tmp", "/root")
    if mount_path in system or mount_path.startswith(("/proc/", "/sys/", "/dev/")):
        s.problem("mountPath", f"must not be a system directory, got '{mount_path}'")
    return HomeConfig(
        mount_path=mount_path,
        retain_on_destroy=retain,
        uid=uid,
        gid=gid,
    )


def _ssh(s: Section | None) -> SshConfig | None:
    if s is None:
        return None
    key_name = s.text("keyName", pattern=r"[ -~]{1,255}", expected="a key pair name")
    allow_from = s.texts("allowFrom", item=rules.network_source)
    user = s.text("user", DEFAULT_SSH_USER, pattern=r"[a-z_][a-z0-9_-]{0,31}", expected="a Linux user name")
    bastion = s.text(
        "bastion",
        pattern=r"([A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+(:\d{1,5})?",
        expected="a host name, optionally user@host:port",
    )
    # The private key on your laptop; its `.pub` is what EC2 Instance Connect pushes.
    identity_file = s.text(
        "identityFile",
        DEFAULT_IDENTITY_FILE,
        pattern=r"(~/|/)[A-Za-z0-9._/@+-]+",
        expected="a path starting with ~/ or / (letters, digits, . _ / @ + -)",
    )
    forward_agent = s.flag("forwardAgent")
    s.close()
    return SshConfig(
        key_name=key_name,
        allow_from=allow_from,
        user=user,
        bastion=bastion,
        identity_file=identity_file,
        forward_agent=forward_agent,
    )


def _schedule(s: Section | None) -> ScheduleConfig | None:
    if s is None:
        return None
    start = s.text("start", check=rules.schedule_expression)
    stop = s.text("stop", check=rules.schedule_expression)
    timezone = s.text("timezone", DEFAULT_TIMEZONE, check=rules.time_zone)
    s.close()
    if not s.has("start") and not s.has("stop"):
        s.problem("start", "a schedule needs start, stop or both")
    return ScheduleConfig(start=start, stop=stop, timezone=timezone)


def _queue(s: Section | None, max_capacity: int | None) -> QueueConfig | None:
    if s is None:
        return None
    warm_up = _warm_up(s.child("warmUp"), max_capacity)
    per_instance = s.integer("messagesPerInstance", DEFAULT_MESSAGES_PER_INSTANCE, minimum=1)
    cooldown = s.integer(
        "scaleInCooldownSeconds", DEFAULT_SCALE_IN_COOLDOWN_SECONDS, minimum=1, maximum=MAX_COOLDOWN_SECONDS
    )
    boot = s.integer("bootSeconds", DEFAULT_BOOT_SECONDS, minimum=1, maximum=3600)
    visibility = s.integer(
        "visibilityTimeoutSeconds",
        DEFAULT_VISIBILITY_TIMEOUT_SECONDS,
        minimum=1,
        maximum=MAX_VISIBILITY_TIMEOUT_SECONDS,
    )
    s.close()
    return QueueConfig(
        messages_per_instance=per_instance,
        scale_in_cooldown_seconds=cooldown,
        boot_seconds=boot,
        warm_up=warm_up,
        visibility_timeout_seconds=visibility,
    )


def _warm_up(s: Section | None, max_capacity: int | None) -> WarmUpConfig | None:
    if s is None:
        return None
    schedule = s.text("schedule", required=True, check=rules.schedule_expression)
    timezone = s.text("timezone", DEFAULT_TIMEZONE, check=rules.time_zone)
    capacity = s.integer("capacity", minimum=1)
    minutes = s.integer("minutes", DEFAULT_WARM_UP_MINUTES, minimum=1, maximum=1440)
    s.close()
    if not s.has("capacity"):
        s.problem("capacity", "is required")
    if capacity is not None and max_capacity is not None and capacity > max_capacity:
        s.problem("capacity", f"must be at most the fleet's maxCapacity ({max_capacity}), got {capacity}")
    if schedule is None or capacity is None:
        return None
    return WarmUpConfig(schedule=schedule, timezone=timezone, capacity=capacity, minutes=minutes)


def _results(s: Section | None) -> ResultsConfig | None:
    if s is None:
        return None
    bucket = s.text(
        "bucket",
        required=True,
        pattern=r"create|[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
        expected="'create' or the name of an existing bucket",
    )
    retain = s.flag("retainOnDestroy", True)
    endpoint = s.text("endpoint", pattern=r"https://[A-Za-z0-9.-]+(:\d{1,5})?/?", expected="an https:// URL")
    region = s.text("region", pattern=r"[a-z0-9-]{2,32}", expected="a region name (eu-central-2, auto)")
    parameter, secret = _results_credentials(s.child("credentials"))
    readers = s.texts("readers", item=_reader)
    s.close()
    if s.has("retainOnDestroy") and bucket and bucket != "create":
        s.problem("retainOnDestroy", "applies only to bucket: create (pulumi destroy never touches an existing bucket)")
    if s.has("endpoint") and bucket == "create":
        s.problem("endpoint", "needs the name of an existing bucket on that service (bucket: create makes one on S3)")
    if s.has("endpoint") and not s.has("credentials"):
        s.problem("credentials", "is required with endpoint (ssmParameter or secret holding the access keys)")
    for key in ("credentials", "region"):
        if s.has(key) and not s.has("endpoint"):
            s.problem(key, "applies only with endpoint (on S3 the instance role has access)")
    if s.has("readers") and bucket and bucket != "create":
        s.problem("readers", "applies only to bucket: create (the stack sets no policy on a bucket it does not own)")
    if not bucket:
        return None
    return ResultsConfig(
        bucket=bucket,
        retain_on_destroy=retain,
        endpoint=endpoint.rstrip("/") if endpoint else None,
        region=region,
        credentials_parameter=parameter,
        credentials_secret=secret,
        readers=readers,
    )


def _results_credentials(s: Section | None) -> tuple[str | None, str | None]:
    """`credentials`: exactly one of `ssmParameter` (a SecureString parameter's name or ARN) and
    `secret` (a Secrets Manager secret's name or ARN); either holds
    {"accessKeyId": ..., "secretAccessKey": ...}. Never the keys themselves."""
    if s is None:
        return None, None
    parameter = s.text(
        "ssmParameter",
        pattern=r"/[A-Za-z0-9_.\-/]{1,1010}|arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter/[A-Za-z0-9_.\-/]+",
        expected="an SSM parameter name (/path/name) or ARN",
    )
    secret = s.text(
        "secret",
        pattern=r"[A-Za-z0-9/_+=.@-]{1,512}|arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+",
        expected="a Secrets Manager secret name or ARN",
    )
    s.close()
    if s.has("ssmParameter") == s.has("secret"):
        s.problems.add(s.key, "needs exactly one of ssmParameter and secret")
    return parameter, secret


def _reader(entry: str) -> str | None:
    if re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:(root|(role|user)/[\w+=,.@/-]+)", entry):
        return None
    return f"must be an IAM role, user or account ARN (arn:aws:iam::123456789012:role/name), got '{entry}'"


def _load_balancer(s: Section | None) -> tuple[str, ...]:
    if s is None:
        return ()
    arns = s.texts("targetGroupArns", required=True, item=rules.target_group_arn)
    s.close()
    return arns


def _interruption(s: Section | None) -> InterruptionConfig:
    if s is None:
        return InterruptionConfig()
    decrement = s.flag("decrementCapacity")
    on_rebalance = s.text("onRebalance", DEFAULT_ON_REBALANCE, choices=REBALANCE_ACTIONS)
    s.close()
    return InterruptionConfig(decrement_capacity=decrement, on_rebalance=on_rebalance)


def _user_data(s: Section, project_dir: Path) -> str | None:
    value = s.text("userData")
    if value is None:
        return None
    if "\n" in value or value.startswith("#!"):
        return value
    path = project_dir / value
    if not path.is_file():
        s.problem(
            "userData",
            f"file '{value}' not found in the project directory (inline shell "
            "must start with #! or span several lines)",
        )
        return None
    return path.read_text()


# Per volume type: (size GiB, IOPS range or None, most IOPS per GiB). EC2 API reference,
# EbsBlockDevice (what a launch template's mapping takes) and CreateVolume: "gp3: 3,000 - 16,000 IOPS;
# io1: 100 - 64,000 IOPS; io2: 100 - 256,000 IOPS", "Throughput ... valid only for gp3 volumes. Valid
# Range: Minimum value of 125. Maximum value of 1000", sizes "gp2 and gp3: 1 - 16,384 GiB; io1: 4 - 16,384;
# io2: 4 - 65,536; standard: 1 - 1,024"; EBS user guide, volume types: at most 500 IOPS per GiB (gp3),
# 50 (io1), 1,000 (io2), and 0.25 MiB/s of throughput per provisioned IOPS (gp3).
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EbsBlockDevice.html
ROOT_VOLUME_TYPES: dict[str, tuple[tuple[int, int], tuple[int, int] | None, int]] = {
    "gp3": ((1, 16384), (3000, 16000), 500),
    "gp2": ((1, 16384), None, 0),
    "io1": ((4, 16384), (100, 64000), 50),
    "io2": ((4, 65536), (100, 256000), 1000),
    "standard": ((1, 1024), None, 0),
}
GP3_THROUGHPUT = (125, 1000)


def _root_volume(s: Section | None) -> RootVolumeConfig:
    if s is None:
        return RootVolumeConfig()
    kind = s.text("type", DEFAULT_ROOT_VOLUME_TYPE, choices=tuple(ROOT_VOLUME_TYPES))
    (size_low, size_high), iops_range, iops_per_gib = ROOT_VOLUME_TYPES[kind]
    size = s.integer("size", minimum=size_low, maximum=size_high)
    iops = s.integer("iops", minimum=iops_range[0], maximum=iops_range[1]) if iops_range else s.integer("iops")
    throughput = (
        s.integer("throughput", minimum=GP3_THROUGHPUT[0], maximum=GP3_THROUGHPUT[1])
        if kind == "gp3"
        else s.integer("throughput")
    )
    if iops is not None and iops_range is None:
        s.problem("iops", f"cannot be set on a {kind} volume (gp3, io1 and io2 only)")
        iops = None
    if throughput is not None and kind != "gp3":
        s.problem("throughput", f"cannot be set on a {kind} volume (gp3 only)")
        throughput = None
    s.close()
    if kind in ("io1", "io2") and not s.has("iops"):
        s.problem("iops", f"is required for a {kind} volume")
    if iops and size and iops > size * iops_per_gib:
        s.problem(
            "iops",
            f"{kind} allows at most {iops_per_gib} IOPS per GiB: {iops} needs a size of at least "
            f"{-(-iops // iops_per_gib)} GiB, got {size}",
        )
    effective_iops = iops or GP3_BASELINE_IOPS
    if throughput and throughput * 4 > effective_iops:
        s.problem(
            "throughput",
            f"gp3 allows at most 0.25 MiB/s per IOPS: {throughput} MiB/s needs iops of at "
            f"least {throughput * 4}, got {effective_iops}",
        )
    return RootVolumeConfig(size=size, type=kind, iops=iops, throughput=throughput)


def _iam(s: Section | None) -> IamConfig:
    if s is None:
        return IamConfig()
    # IAM API reference, CreateRole: Path "(\u002F)|(\u002F[\u0021-\u007E]+\u002F)", 1-512 characters;
    # PermissionsBoundary: the ARN of a managed policy.
    path = s.text(
        "path",
        DEFAULT_ROLE_PATH,
        pattern=r"/|/[!-~]{1,510}/",
        expected="a path that starts and ends with / (e.g. /spotyard/), at most 512 printable ASCII characters",
    )
    boundary = s.text("permissionsBoundary", check=rules.managed_policy_arn)
    s.close()
    return IamConfig(path=path, permissions_boundary=boundary)


# IAM quotas: "Role policy size ... cannot exceed 10,240 characters" (the sum of a role's inline policies,
# whitespace not counted). https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html
INLINE_POLICY_CHARACTERS = 10240
STATEMENT_KEYS = {
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
    "Principal",
    "NotPrincipal",
}


def _instance_role(s: Section | None) -> InstanceRoleConfig:
    if s is None:
        return InstanceRoleConfig()
    arns = s.texts("managedPolicyArns", item=rules.managed_policy_arn)
    raw = s.raw("statements") or []
    s.close()
    if not isinstance(raw, list):
        s.problem("statements", "must be a list of IAM policy statements")
        return InstanceRoleConfig(managed_policy_arns=arns)
    statements = []
    for index, statement in enumerate(raw):
        error = _statement_error(statement)
        if error:
            s.problems.add(f"{s.key_of('statements')}[{index}]", error)
        else:
            statements.append(statement)
    if len(json.dumps(statements, separators=(",", ":"))) > INLINE_POLICY_CHARACTERS:
        s.problem(
            "statements",
            f"exceed IAM's {INLINE_POLICY_CHARACTERS} characters of inline policy per role: "
            "attach a managed policy (managedPolicyArns) instead",
        )
    return InstanceRoleConfig(managed_policy_arns=arns, statements=tuple(statements))


def _statement_error(statement: Any) -> str | None:
    """An identity policy statement: Effect, Action or NotAction, Resource or NotResource (IAM JSON policy
    element reference); Principal belongs to resource policies only."""
    if not isinstance(statement, Mapping):
        return "must be a mapping (an IAM policy statement)"
    unknown = sorted(set(statement) - STATEMENT_KEYS)
    if unknown:
        return f"unknown statement element(s) {', '.join(unknown)}"
    if statement.get("Effect") not in ("Allow", "Deny"):
        return "needs Effect: Allow or Deny"
    if "Principal" in statement or "NotPrincipal" in statement:
        return "a role's own policy cannot name a Principal"
    for element, negated in (("Action", "NotAction"), ("Resource", "NotResource")):
        if (element in statement) == (negated in statement):
            return f"needs exactly one of {element} and {negated}"
        value = statement.get(element, statement.get(negated))
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) and v for v in values):
            return f"{element if element in statement else negated} must be a string or a list of strings"
    return None


def _ingress(s: Section, ssh: SshConfig | None) -> tuple[IngressRule, ...]:
    rules_ = []
    for entry in s.sections("ingress"):
        port = entry.integer("port", minimum=1, maximum=65535)
        to_port = entry.integer("toPort", port, minimum=1, maximum=65535)
        protocol = entry.text("protocol", "tcp", choices=("tcp", "udp"))
        sources = entry.texts("from", required=True, item=rules.network_source)
        entry.close()
        if not entry.has("port"):
            entry.problem("port", "is required")
            continue
        if port is None or to_port is None or protocol is None:
            continue
        if to_port < port:
            entry.problem("toPort", f"must be at least port ({port}), got {to_port}")
            continue
        if protocol == "tcp" and port <= 22 <= to_port and ssh and set(sources) & set(ssh.allow_from):
            entry.problem(
                "from", "repeats ssh.allowFrom on port 22 (one rule per port and source: AWS refuses duplicates)"
            )
            continue
        rules_.append(IngressRule(port=port, to_port=to_port, protocol=protocol, sources=sources))
    return tuple(rules_)


# Auto Scaling API reference, InstancesDistribution: SpotInstancePools "Valid only when the Spot allocation
# strategy is lowest-price ... Valid Range: Minimum value of 1. Maximum value of 20"; Spot Fleet's
# InstancePoolsToUseCount is "Valid only when Spot AllocationStrategy is set to lowest-price".
SPOT_INSTANCE_POOLS = (1, 20)


def _purchase(s: Section, strategy: str | None, max_capacity: int | None) -> dict[str, Any]:
    """onDemandBaseCapacity, spotMaxPrice and spotInstancePools (the FleetConfig fields of the same names)."""
    base = s.integer("onDemandBaseCapacity", minimum=0)
    price = s.text(
        "spotMaxPrice",
        pattern=r"(0|[1-9]\d*)(\.\d{1,5})?",
        expected="a price in US dollars per instance-hour, such as 0.05",
    )
    pools = s.integer("spotInstancePools", minimum=SPOT_INSTANCE_POOLS[0], maximum=SPOT_INSTANCE_POOLS[1])
    if price is not None and float(price) <= 0:
        s.problem("spotMaxPrice", f"must be more than 0, got '{price}'")
        price = None
    if base and max_capacity is not None and base > max_capacity:
        s.problem("onDemandBaseCapacity", f"must be at most maxCapacity ({max_capacity}), got {base}")
    if pools is not None and strategy != "lowest-price":
        s.problem("spotInstancePools", f"applies only to allocationStrategy lowest-price, got '{strategy}'")
        pools = None
    return {"on_demand_base_capacity": base, "spot_max_price": price, "spot_instance_pools": pools}


# Auto Scaling API reference, LaunchTemplateOverrides: WeightedCapacity "Valid Range: 1-999"; "If you
# specify a value for WeightedCapacity for one instance type, you must specify a value for all of them"
# (an entry without a weight counts 1). Spot Fleet's LaunchTemplateOverrides take any positive weight.
INSTANCE_WEIGHT = (1, 999)


def _instance_types(s: Section) -> tuple[tuple[str, ...], dict[str, int]]:
    """`instanceTypes`: names (`m5.large`) or `{type: m5.2xlarge, weight: 4}`; the weights, if any."""
    name = "instanceTypes"
    raw = s.raw(name)
    if raw is None:
        s.problem(name, "is required (a non-empty list)")
        return (), {}
    if not isinstance(raw, list):
        s.problem(name, "must be a list of instance types (or {type, weight} mappings)")
        return (), {}
    if not raw:
        s.problem(name, "must not be empty")
    types, weights = [], {}
    for index, entry in enumerate(raw):
        key = f"{s.key_of(name)}[{index}]"
        if isinstance(entry, Mapping):
            weighted = Section(key, entry, s.problems)
            kind = weighted.text("type", required=True, check=rules.instance_type)
            weight = weighted.integer("weight", minimum=INSTANCE_WEIGHT[0], maximum=INSTANCE_WEIGHT[1])
            weighted.close()
            if not weighted.has("weight"):
                weighted.problem("weight", "is required (or write the type alone: it counts 1)")
            if kind and weight:
                types.append(kind)
                weights[kind] = weight
        elif isinstance(entry, str):
            error = rules.instance_type(entry)
            if error:
                s.problems.add(key, error)
            else:
                types.append(entry)
        else:
            s.problems.add(key, "must be an instance type or a {type, weight} mapping")
    if len(set(types)) != len(types):
        s.problem(name, "has duplicate entries")
    return tuple(types), {kind: weights.get(kind, 1) for kind in types} if weights else {}


# EC2 API reference, CreditSpecificationRequest: "The credit option for CPU usage of a T instance. Valid
# values: standard | unlimited"; EC2 user guide, "Burstable performance instances": the T2, T3, T3a and
# T4g families. A launch template with a credit specification fails to launch other types.
CPU_CREDITS = ("standard", "unlimited")
BURSTABLE_FAMILY = r"t[234][a-z]*"


def _credit_specification(s: Section, instance_types: tuple[str, ...]) -> str | None:
    credits = s.text("creditSpecification", choices=CPU_CREDITS)
    others = [t for t in instance_types if not re.fullmatch(BURSTABLE_FAMILY, t.split(".")[0])]
    if credits and others:
        s.problem(
            "creditSpecification",
            f"applies only to burstable instance types (t2, t3, t3a, t4g); instanceTypes also has {', '.join(others)}",
        )
        return None
    return credits
