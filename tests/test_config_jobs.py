"""The `spotyard:batch` and `spotyard:jobs` keys (spec section 1): the typed result, and each
rule, with a bad value, named by its full key."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from spotyard_lambda.names import JOB_STREAK_LIMIT

from spotyard.config_jobs import (
    DEFAULT_AFTER_FAILURES,
    DEFAULT_BATCH_INSTANCE_TYPES,
    DEFAULT_BATCH_MAX_VCPUS,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_SECONDS,
    BatchConfig,
    JobAlertsConfig,
    JobConfig,
    JobScheduleConfig,
)
from tests.conftest import dev_config
from tests.test_config import BASE, load, problems_of

NIGHTLY = {"image": "public.ecr.aws/docker/library/python:3.12", "command": ["python", "run.py"]}


def with_jobs(jobs: dict[str, Any], batch: dict[str, Any] | None = None) -> dict[str, Any]:
    values = copy.deepcopy(BASE)
    values["spotyard:jobs"] = jobs
    if batch is not None:
        values["spotyard:batch"] = batch
    return values


def with_job(**fields: Any) -> dict[str, Any]:
    return with_jobs({"nightly": {**NIGHTLY, **fields}})


def test_no_jobs_no_batch():
    config = load(BASE)
    assert (config.jobs, config.batch) == ((), BatchConfig())


def test_an_image_job_gets_the_documented_defaults():
    config = load(with_jobs({"nightly": {"image": NIGHTLY["image"]}}))
    assert config.jobs == (JobConfig(name="nightly", image=NIGHTLY["image"]),)
    job = config.jobs[0]
    assert (job.vcpus, job.memory_mib, job.timeout_seconds, job.retries) == (
        1,
        2048,
        DEFAULT_TIMEOUT_SECONDS,
        DEFAULT_RETRIES,
    )
    assert (job.command, job.schedule, job.results, job.fargate, job.alerts) == ((), None, None, False, None)
    assert job.on_batch
    assert config.batch == BatchConfig(instance_types=DEFAULT_BATCH_INSTANCE_TYPES, max_vcpus=DEFAULT_BATCH_MAX_VCPUS)


def test_every_job_key_is_read_into_the_typed_config():
    config = load(
        with_jobs(
            {
                "nightly": {
                    **NIGHTLY,
                    "vcpus": 2,
                    "memoryMiB": 4096,
                    "environment": {"MODE": "full", "DEBUG": False, "BATCHES": 5},
                    "secrets": {
                        "API_TOKEN": "/nightly/api-token",
                        "DB_PASSWORD": "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:db-AbCdEf",
                    },
                    "timeoutSeconds": 1800,
                    "retries": 2,
                    "schedule": {"expression": "cron(0 2 * * ? *)", "timezone": "Europe/Berlin"},
                    "results": "stack",
                    "alerts": {"afterFailures": 3, "successWithinHours": 26},
                },
                "light": {"image": "busybox", "fargate": True, "vcpus": 0.5, "memoryMiB": 1024, "results": "my-bucket"},
                "scrape": {"fleet": "box", "alerts": {"afterFailures": 2}},
            },
            batch={"instanceTypes": ["m7i", "c7i.large"], "maxVcpus": 32},
        )
    )
    nightly, light, scrape = config.jobs
    assert nightly == JobConfig(
        name="nightly",
        image=NIGHTLY["image"],
        command=("python", "run.py"),
        vcpus=2,
        memory_mib=4096,
        environment={"MODE": "full", "DEBUG": "false", "BATCHES": "5"},
        secrets={
            "API_TOKEN": "/nightly/api-token",
            "DB_PASSWORD": "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:db-AbCdEf",
        },
        timeout_seconds=1800,
        retries=2,
        schedule=JobScheduleConfig(expression="cron(0 2 * * ? *)", timezone="Europe/Berlin"),
        results="stack",
        alerts=JobAlertsConfig(after_failures=3, success_within_hours=26),
    )
    assert (light.fargate, light.vcpus, light.memory_mib, light.results) == (True, 0.5, 1024, "my-bucket")
    assert scrape == JobConfig(name="scrape", fleet="box", alerts=JobAlertsConfig(after_failures=2))
    assert not scrape.on_batch
    assert config.batch == BatchConfig(instance_types=("m7i", "c7i.large"), max_vcpus=32)


def test_alerts_default_to_an_alarm_after_the_first_failure_and_no_dead_mans_switch():
    job = load(with_job(alerts={})).jobs[0]
    assert job.alerts == JobAlertsConfig(after_failures=DEFAULT_AFTER_FAILURES, success_within_hours=None)


def test_alerts_after_more_failures_than_the_reporter_counts_are_named_by_their_full_key():
    """The job reporter counts JOB_STREAK_LIMIT failures in a row at most: an alarm after more would never fire."""
    job = load(with_job(alerts={"afterFailures": JOB_STREAK_LIMIT})).jobs[0]
    assert job.alerts.after_failures == JOB_STREAK_LIMIT
    problems = problems_of(with_job(alerts={"afterFailures": JOB_STREAK_LIMIT + 1}))
    assert "spotyard:jobs.nightly.alerts.afterFailures" in problems
    assert f"at most {JOB_STREAK_LIMIT}" in problems


def test_schedule_time_zone_defaults_to_utc():
    assert load(with_job(schedule={"expression": "rate(1 day)"})).jobs[0].schedule == JobScheduleConfig(
        "rate(1 day)", "UTC"
    )


BAD_JOBS = [
    ({"image": "not an image"}, "spotyard:jobs.nightly.image", "container image"),
    ({"image": None}, "spotyard:jobs.nightly.image", "is required"),
    ({"fleet": "nowhere", "image": None, "command": None}, "spotyard:jobs.nightly.fleet", "must name a fleet"),
    ({"fleet": "box"}, "spotyard:jobs.nightly.image", "applies only to jobs with an image"),
    ({"fleet": "box", "image": None, "retries": 1}, "spotyard:jobs.nightly.retries", "fleet job runs on"),
    ({"command": "python run.py"}, "spotyard:jobs.nightly.command", "list of strings"),
    ({"vcpus": 0.5}, "spotyard:jobs.nightly.vcpus", "fractions need fargate"),
    ({"vcpus": 0}, "spotyard:jobs.nightly.vcpus", "whole number of at least 1"),
    ({"vcpus": 3, "fargate": True}, "spotyard:jobs.nightly.vcpus", "Fargate takes 0.25, 0.5, 1, 2, 4, 8, 16"),
    (
        {"vcpus": 1, "memoryMiB": 1024, "fargate": True},
        "spotyard:jobs.nightly.memoryMiB",
        "Fargate with 1 vCPU takes 2048 to 8192 MiB in steps of 1024",
    ),
    ({"vcpus": 64}, "spotyard:jobs.nightly.vcpus", "at most spotyard:batch.maxVcpus (16)"),
    ({"memoryMiB": 2}, "spotyard:jobs.nightly.memoryMiB", "at least 4"),
    ({"environment": {"1X": "a"}}, "spotyard:jobs.nightly.environment.1X", "environment variable name"),
    ({"environment": {"AWS_BATCH_X": "a"}}, "spotyard:jobs.nightly.environment.AWS_BATCH_X", "reserved"),
    ({"environment": {"X": {"a": 1}}}, "spotyard:jobs.nightly.environment.X", "belongs in secrets"),
    ({"environment": ["X=1"]}, "spotyard:jobs.nightly.environment", "must be a mapping"),
    ({"secrets": {"TOKEN": "hunter2"}}, "spotyard:jobs.nightly.secrets.TOKEN", "SSM parameter name"),
    (
        {"secrets": {"TOKEN": "arn:aws:s3:::bucket/key"}},
        "spotyard:jobs.nightly.secrets.TOKEN",
        "Secrets Manager secret ARN",
    ),
    (
        {"environment": {"TOKEN": "x"}, "secrets": {"TOKEN": "/t"}},
        "spotyard:jobs.nightly.secrets.TOKEN",
        "also set in environment",
    ),
    ({"timeoutSeconds": 59}, "spotyard:jobs.nightly.timeoutSeconds", "at least 60"),
    ({"retries": 10}, "spotyard:jobs.nightly.retries", "at most 9"),
    ({"retries": -1}, "spotyard:jobs.nightly.retries", "at least 0"),
    ({"schedule": {"expression": "every night"}}, "spotyard:jobs.nightly.schedule.expression", "cron(...)"),
    ({"schedule": {"timezone": "UTC"}}, "spotyard:jobs.nightly.schedule.expression", "is required"),
    (
        {"schedule": {"expression": "rate(1 day)", "timezone": "Berlin"}},
        "spotyard:jobs.nightly.schedule.timezone",
        "IANA time zone",
    ),
    ({"results": "My_Bucket"}, "spotyard:jobs.nightly.results", "'stack' (a bucket the stack creates)"),
    ({"fargate": "yes"}, "spotyard:jobs.nightly.fargate", "true or false"),
    ({"alerts": {"afterFailures": 0}}, "spotyard:jobs.nightly.alerts.afterFailures", "at least 1"),
    ({"alerts": {"successWithinHours": 169}}, "spotyard:jobs.nightly.alerts.successWithinHours", "at most 168"),
    ({"alerts": {"afterFailure": 2}}, "spotyard:jobs.nightly.alerts.afterFailure", "did you mean 'afterFailures'"),
    ({"memory": 2048}, "spotyard:jobs.nightly.memory", "did you mean 'memoryMiB'"),
]


@pytest.mark.parametrize(("fields", "key", "text"), BAD_JOBS, ids=[case[1] + ":" + case[2] for case in BAD_JOBS])
def test_bad_job_value_is_named_by_its_full_key(fields, key, text):
    report = problems_of(with_job(**fields))
    assert any(f"- {key}:" in line and text in line for line in report.splitlines()), report


BAD_STACK = [
    (with_jobs({"Nightly_Job": NIGHTLY}), "spotyard:jobs.Nightly_Job", "job names must be"),
    (with_jobs([NIGHTLY]), "spotyard:jobs", "must be a mapping"),
    (with_jobs({"nightly": NIGHTLY}, batch={"instanceTypes": []}), "spotyard:batch.instanceTypes", "must not be empty"),
    (
        with_jobs({"nightly": NIGHTLY}, batch={"instanceTypes": ["m7x"]}),
        "spotyard:batch.instanceTypes[0]",
        "a family (m7i) or one of default_x86_64",
    ),
    (
        with_jobs({"nightly": NIGHTLY}, batch={"instanceTypes": ["m7i.huge"]}),
        "spotyard:batch.instanceTypes[0]",
        "is not an EC2 instance type",
    ),
    (with_jobs({"nightly": NIGHTLY}, batch={"maxVcpus": 0}), "spotyard:batch.maxVcpus", "at least 1"),
    (with_jobs({"nightly": NIGHTLY}, batch={"maxvCpus": 8}), "spotyard:batch.maxvCpus", "did you mean 'maxVcpus'"),
    ({**BASE, "spotyard:batch": {"maxVcpus": 8}}, "spotyard:batch", "applies only to jobs with an image"),
    (
        with_jobs({"light": {**NIGHTLY, "fargate": True}}, batch={"maxVcpus": 8}),
        "spotyard:batch",
        "without fargate",
    ),
]


@pytest.mark.parametrize(("values", "key", "text"), BAD_STACK, ids=[case[1] + ":" + case[2] for case in BAD_STACK])
def test_bad_jobs_section_is_named_by_its_full_key(values, key, text):
    report = problems_of(values)
    assert any(f"- {key}:" in line and text in line for line in report.splitlines()), report


def test_batch_accepts_families_types_and_batch_bundles():
    batch = load(with_jobs({"nightly": NIGHTLY}, batch={"instanceTypes": ["m7i", "c6g.xlarge", "default_arm64"]}))
    assert batch.batch.instance_types == ("m7i", "c6g.xlarge", "default_arm64")


def test_the_dev_stack_has_one_scheduled_batch_job():
    (job,) = load(dev_config()).jobs
    assert (job.name, job.on_batch, job.fargate) == ("nightly-report", True, False)
    assert job.schedule == JobScheduleConfig("cron(0 2 * * ? *)", "Asia/Tokyo")


def test_the_component_defaults_are_the_configurations():
    """A program building BatchJobs itself gets the compute environment `spotyard:batch` defaults to."""
    from components.args import AccountArgs
    from components.batch_jobs import BatchJobsArgs

    args = BatchJobsArgs(jobs=[], vpc_id="vpc-1", subnet_ids=[], account=AccountArgs("ap-northeast-1", "123456789012"))
    assert (tuple(args.instance_types), args.max_vcpus) == (BatchConfig().instance_types, BatchConfig().max_vcpus)
