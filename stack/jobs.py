"""The stack's jobs (spotyard:jobs, spotyard:batch) as components: BatchJobs for the jobs
with an image (and their `results: stack` bucket), FleetJobs for a fleet that jobs run on,
and JobAlerts for every job's runs. Maps the configuration to their narrow args."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from components.batch_jobs import BatchJobArgs, BatchJobs, BatchJobsArgs
from components.fleet_jobs import FleetJobs, FleetJobsArgs
from components.job_alerts import AlertedJob, JobAlerts, JobAlertsArgs
from components.results_bucket import ResultsBucket, ResultsBucketArgs
from spotyard.config import FleetConfig, StackConfig
from spotyard.config_jobs import STACK_RESULTS, JobConfig
from stack.environment import Environment
from stack.provider import stack_tags

RESULTS_BUCKET_VARIABLE = "SPOTYARD_RESULTS_BUCKET"

# A job's results: (bucket name, bucket ARN).
Results = tuple[pulumi.Input[str], pulumi.Input[str]]


def batch_jobs_from_config(
    config: StackConfig,
    environment: Environment,
    opts: pulumi.ResourceOptions,
    spot_service_roles: list[aws.iam.ServiceLinkedRole],
) -> dict[str, dict[str, pulumi.Output[str]]]:
    """The stack's Batch jobs (and their `results: stack` bucket); their entries of the `jobs` output.
    Nothing when no job has an image."""
    jobs = [job for job in config.jobs if job.image is not None]
    if not jobs:
        return {}
    account = environment.account
    stack_bucket = (
        ResultsBucket("jobs-results", ResultsBucketArgs(bucket="create", account=account), opts=opts)
        if any(job.results == STACK_RESULTS for job in jobs)
        else None
    )

    def results(job: JobConfig) -> Results | None:
        if job.results is None:
            return None
        if job.results == STACK_RESULTS and stack_bucket is not None:
            return stack_bucket.bucket_name, stack_bucket.bucket_arn
        return job.results, account.arn("s3", job.results, region=False, account=False)

    buckets = {job.name: results(job) for job in jobs}
    batch = BatchJobs(
        "jobs",
        BatchJobsArgs(
            jobs=[batch_job_args(job, buckets[job.name]) for job in jobs],
            vpc_id=environment.vpc_id,
            subnet_ids=list(environment.subnet_ids),
            account=account,
            instance_types=list(config.batch.instance_types),
            max_vcpus=config.batch.max_vcpus,
            instance_tags={**stack_tags(config), "Name": "spotyard-batch"},
            spot_service_roles=spot_service_roles,
            iam=environment.iam,
        ),
        opts=opts,
    )
    return {
        name: {
            **entry,
            "logGroup": batch.log_group.name,
            **({"resultsBucket": buckets[name][0]} if buckets[name] else {}),
        }
        for name, entry in batch.jobs.items()
    }


def batch_job_args(job: JobConfig, bucket: Results | None) -> BatchJobArgs:
    return BatchJobArgs(
        name=job.name,
        image=job.image,
        command=list(job.command),
        vcpus=job.vcpus,
        memory_mib=job.memory_mib,
        environment={**job.environment, **({RESULTS_BUCKET_VARIABLE: bucket[0]} if bucket else {})},
        secrets=dict(job.secrets),
        timeout_seconds=job.timeout_seconds,
        retries=job.retries,
        fargate=job.fargate,
        schedule_expression=job.schedule.expression if job.schedule else None,
        schedule_timezone=job.schedule.timezone if job.schedule else None,
        results_bucket_arn=bucket[1] if bucket else None,
    )


def fleet_jobs(
    name: str,
    *,
    jobs: tuple[JobConfig, ...],
    fleet: FleetConfig,
    stack_tag: str,
    instance_role_name: pulumi.Input[str],
    capacity_target_arn: pulumi.Input[str],
    environment: Environment,
    opts: pulumi.ResourceOptions,
) -> FleetJobs | None:
    """FleetJobs for `fleet` when a job of the configuration runs on it (`fleet: <name>`)."""
    if not any(job.fleet == fleet.name for job in jobs):
        return None
    return FleetJobs(
        name,
        FleetJobsArgs(
            fleet=fleet.name,
            engine=fleet.engine,
            stack_tag=stack_tag,
            instance_role_name=instance_role_name,
            capacity_target_arn=capacity_target_arn,
            account=environment.account,
        ),
        opts=opts,
    )


def job_alerts(
    name: str,
    config: StackConfig,
    environment: Environment,
    *,
    topic_arn: pulumi.Input[str] | None,
    opts: pulumi.ResourceOptions,
    batch_jobs: Mapping[str, Mapping[str, pulumi.Input[str]]],
) -> JobAlerts | None:
    """JobAlerts for the configured jobs: every fleet job, and every Batch job of `batch_jobs`
    (the BatchJobs entries: `jobQueueArn`, `jobDefinitionName`)."""
    jobs = [
        AlertedJob(
            name=job.name,
            after_failures=job.alerts.after_failures if job.alerts else None,
            success_within_hours=job.alerts.success_within_hours if job.alerts else None,
            batch_job_definition=batch_jobs[job.name]["jobDefinitionName"] if job.name in batch_jobs else None,
        )
        for job in config.jobs
        if job.fleet or job.name in batch_jobs
    ]
    if not jobs:
        return None
    return JobAlerts(
        name,
        JobAlertsArgs(
            stack_tag=config.stack_tag,
            jobs=jobs,
            job_queue_arns=[entry["jobQueueArn"] for entry in batch_jobs.values()],
            topic_arn=topic_arn,
            iam=environment.iam,
        ),
        opts=opts,
    )
