"""What the job reporter does about one run: records it in the job's SSM parameter (merging
any concurrent writer's version), publishes the job's metrics, and publishes each failed run
once to the notification topic."""

from __future__ import annotations

from functools import reduce

from runs import Record, Run
from spotyard_lambda import aws, log, notify
from spotyard_lambda.names import JOB_FAILURE_STREAK_METRIC, JOB_METRICS_NAMESPACE, JOB_SUCCESS_METRIC


def load(parameter: str) -> tuple[Record, int]:
    found = aws.client("ssm").get_parameter(Name=parameter)["Parameter"]
    return Record.decode(found["Value"]), found["Version"]


def save(parameter: str, record: Record, version: int) -> tuple[Record, int]:
    """Writes `record` over `version`. SSM has no conditional write, but every write gets the
    next version number: when ours is not `version + 1`, others wrote in between, and their
    versions (read with the `name:version` selector,
    https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-versions.html)
    are merged in and written again, so no writer's run is lost."""
    ssm = aws.client("ssm")
    while True:
        written = ssm.put_parameter(Name=parameter, Value=record.encode(), Type="String", Overwrite=True)["Version"]
        if written == version + 1:
            return record, written
        others = [
            Record.decode(ssm.get_parameter(Name=f"{parameter}:{between}")["Parameter"]["Value"])
            for between in range(version + 1, written)
        ]
        log.info("job_reporter.concurrent_write", parameter=parameter, merged=len(others))
        record, version = reduce(Record.merge, others, record), written


def publish_metrics(stack: str, run: Run, streak: int) -> None:
    dimensions = [{"Name": "Stack", "Value": stack}, {"Name": "Job", "Value": run.job}]
    data = [{"MetricName": JOB_FAILURE_STREAK_METRIC, "Dimensions": dimensions, "Value": streak, "Unit": "Count"}]
    if run.succeeded:
        data.append({"MetricName": JOB_SUCCESS_METRIC, "Dimensions": dimensions, "Value": 1, "Unit": "Count"})
    aws.client("cloudwatch").put_metric_data(Namespace=JOB_METRICS_NAMESPACE, MetricData=data)


def report(run: Run, parameter: str, stack: str) -> dict[str, object]:
    record, version = load(parameter)
    if not run.succeeded and record.was_notified(run):
        log.info("job_reporter.duplicate", job=run.job, run=run.run_id)
        return {"job": run.job, "run": run.run_id, "duplicate": True}
    record, version = save(parameter, record.with_run(run), version)
    publish_metrics(stack, run, record.streak)
    notified = False
    if not run.succeeded:
        notified = notify.publish(f"spotyard job {run.job} failed", facts(run, record.streak))
        save(parameter, record.with_notified(run), version)
    log.info("job_reporter.run", job=run.job, run=run.run_id, succeeded=run.succeeded, streak=record.streak)
    return {
        "job": run.job,
        "run": run.run_id,
        "succeeded": run.succeeded,
        "streak": record.streak,
        "notified": notified,
    }


def facts(run: Run, streak: int) -> dict[str, object]:
    lines: dict[str, object] = {
        "job": run.job,
        "run": run.run_id,
        "reason": run.reason,
        "where": run.where,
        "log": run.log,
        "finished": run.finished_at,
    }
    if run.duration_seconds is not None:
        lines["duration"] = f"{run.duration_seconds:.0f} s"
    lines["failed in a row"] = streak
    return lines
