"""The names the stack, its Lambdas, the CLI and the instance agent agree on: tag names,
the formats of the names spotyard gives things, the hosted-zone ARN, the defaults several
of them restate, and the IAM condition that scopes a statement by tags.

Stdlib only: the Lambdas carry this package in their bundle, the components and the CLI
import it as `spotyard_lambda.names`. The instance agent keeps a copy of the few it needs
(instance/), which tests/test_names.py proves equal to these.
"""

from __future__ import annotations

import re
from typing import Any

# Tags on the stack's resources (spec section 3).
STACK_TAG = "spotyard:stack"  # `<project>/<stack>`, on every resource
FLEET_TAG = "spotyard:fleet"  # the fleet's name, on its group / request, instances and volumes
# Set by the interruption handler: the instance is going, whatever its state says.
INTERRUPTED_TAG = "spotyard:interrupted"
DRAINED_TAG = "spotyard:drained"
DRAIN_LEFT_TAG = "spotyard:drain-left"  # the drain steps a retry still has to do
REBALANCE_NOTIFIED_TAG = "spotyard:rebalance-notified"
# Set by the agent on a spot-fleet worker running a job; the queue autoscaler spares it.
BUSY_TAG = "spotyard:busy"
# On the AMIs the image keeper saves, and on the instance while its lifecycle hook waits.
SOURCE_INSTANCE_TAG = "spotyard:source-instance"
LIFECYCLE_HOOK_TAG = "spotyard:lifecycle-hook"
LIFECYCLE_GROUP_TAG = "spotyard:lifecycle-group"
LIFECYCLE_TOKEN_TAG = "spotyard:lifecycle-token"
# On the fleet's group / request, for the CLI: its zone, its image role, its ssh settings.
DNS_ZONE_TAG = "spotyard:dns-zone"
IMAGE_ROLE_TAG = "spotyard:image-role"
SSH_TAG_PREFIX = "spotyard:ssh-"
# On a Batch job's definition, for the CLI: the job's name, its queue's name and, when it runs on a
# schedule, the schedule group holding its schedule (named after the job).
JOB_TAG = "spotyard:job"
JOB_QUEUE_TAG = "spotyard:job-queue"
JOB_SCHEDULE_GROUP_TAG = "spotyard:job-schedule-group"
# On the stack's ECS services (spotyard:services), for the CLI: the service's name in the
# configuration, and the host names the proxy routes to it (comma-separated).
SERVICE_TAG = "spotyard:service"
SERVICE_HOSTS_TAG = "spotyard:host-names"
PROXY_SERVICE = "proxy"  # SERVICE_TAG of the TLS proxy in front of them (not a user service name)

# Defaults of the stack's configuration that other parts of the stack would otherwise restate.
DEFAULT_TTL_SECONDS = 60  # dns.ttl
DEFAULT_MESSAGES_PER_INSTANCE = 10  # queue.messagesPerInstance
DEFAULT_ROLE_PATH = "/"  # iam.path: the IAM path of every role the stack creates
DEFAULT_TIMEZONE = "UTC"  # the time zone of every schedule (fleet schedules, warm-ups, jobs)
DEFAULT_SERVICE_CPU_UNITS = 128  # services.<name>.cpu (the least ECS takes on EC2)
DEFAULT_SERVICE_MEMORY_MIB = 128  # services.<name>.memoryMiB
DEFAULT_SERVICE_DESIRED_COUNT = 1  # services.<name>.desiredCount
DEFAULT_BATCH_INSTANCE_TYPES = ("default_x86_64",)  # batch.instanceTypes (why: spotyard/config_jobs.py)
DEFAULT_BATCH_MAX_VCPUS = 16  # batch.maxVcpus


def stack_tag_value(project: str, stack: str) -> str:
    """The `spotyard:stack` tag of everything a stack owns: `<project>/<stack>`."""
    return f"{project}/{stack}"


def instance_name(fleet: str, instance_id: str) -> str:
    """An instance's own name: its hostname and its DNS name in the stack's zone."""
    return f"{fleet}-{instance_id}"


# `instance_name` read back: `<fleet>-i-0abc` (instance ids never contain `-i-`; fleet names may).
INSTANCE_NAME = re.compile(r"(?P<fleet>.+)-(?P<instance>i-[0-9a-f]{8,17})")


def hosted_zone_arn(partition: str, zone_id: str) -> str:
    """A Route 53 hosted zone's ARN (global: no region, no account)."""
    return f"arn:{partition}:route53:::hostedzone/{zone_id}"


def fleet_parameter(project: str, stack: str, fleet: str, leaf: str) -> str:
    """The SSM parameter `/<project>/<stack>/<fleet>/<leaf>` of a fleet: AMI_PARAMETER holds
    its AMI, AUTOSCALER_PARAMETER its autoscaler's state."""
    return f"/{stack_tag_value(project, stack)}/{fleet}/{leaf}"


AMI_PARAMETER = "ami"
AUTOSCALER_PARAMETER = "autoscaler"

# Jobs (spec section 3, "Jobs and their alerts"): what `spotyard-job` on a fleet box puts on the
# default event bus when a run ends, the job reporter's metrics, its state and the alarms on them.
JOB_EVENT_SOURCE = "spotyard.job"
JOB_EVENT_DETAIL_TYPE = "spotyard Job Run Finished"
JOB_METRICS_NAMESPACE = "spotyard/Jobs"  # dimensions: Stack (`<project>/<stack>`), Job
JOB_FAILURE_STREAK_METRIC = "ConsecutiveFailures"  # failed runs since the last success, at each run
JOB_SUCCESS_METRIC = "Succeeded"  # 1 at each successful run
# The reporter remembers this many failures since the last success (the state must fit a
# standard SSM parameter, 4 KB): `alerts.afterFailures` can be at most this.
JOB_STREAK_LIMIT = 30
# `alerts.successWithinHours` at most: the no-success alarm has hour-long periods, and
# PutMetricAlarm takes Period x EvaluationPeriods up to 604,800 s (seven days) for periods of an
# hour or more (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html).
MAX_SUCCESS_WITHIN_HOURS = 604_800 // 3600


def job_parameter(project: str, stack: str, job: str) -> str:
    """The SSM parameter `/<project>/<stack>/jobs/<job>/runs`: the job reporter's record of a job's runs."""
    return f"/{stack_tag_value(project, stack)}/jobs/{job}/runs"


def job_alarm_name(project: str, stack: str, job: str, kind: str) -> str:
    """`spotyard-<project>-<stack>-job-<job>-<kind>`; kind: `failed-in-a-row` or `no-success`."""
    return f"spotyard-{project}-{stack}-job-{job}-{kind}"


def tag_condition(tags: dict[str, Any], service: str = "ec2") -> dict[str, Any]:
    """An IAM condition: the resource carries each of `tags` (`<service>:ResourceTag/<key>`);
    values may be Pulumi outputs."""
    return {"StringEquals": {f"{service}:ResourceTag/{key}": value for key, value in tags.items()}}
