"""Job alerts: finished runs (AWS Batch job state changes, in the format of the AWS Batch user
guide's example, and the events `spotyard-job` puts from fleet boxes) go through the stack's own
EventBridge rules to the job reporter Lambda as bundled, under its own role; the notifications
are read from an SQS subscriber of the topic, and the metrics against the recorded alarms."""

from __future__ import annotations

import importlib
import itertools
import json
import operator
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from spotyard_lambda.names import JOB_STREAK_LIMIT

from tests import events
from tests.conftest import REGION, ROOT, dev_config, subscribe

JOB = "nightly-report"  # the Batch job of Pulumi.dev.yaml: alerts after 3 failures, success within 26 hours
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
RULE = "aws:cloudwatch/eventRule:EventRule"
COMPARE = {
    "GreaterThanOrEqualToThreshold": operator.ge,
    "GreaterThanThreshold": operator.gt,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}


@pytest.fixture
def stack(deploy):
    return deploy(dev_config())


@pytest.fixture
def reporter(stack, lambda_of):
    return lambda_of(stack, "job-alerts-reporter")


@pytest.fixture
def inbox(stack):
    return subscribe(stack.outputs["notificationTopicArn"])


def deliver(run, reporter, event: dict) -> list:
    """What EventBridge does with `event`: one invocation per rule of the stack that matches it."""
    patterns = [
        json.loads(rule.inputs["eventPattern"]) for rule in run.of_type(RULE) if rule.inputs.get("eventPattern")
    ]
    return [reporter.invoke(event) for pattern in patterns if events.matches(pattern, event)]


def batch_run(
    run, status: str = "FAILED", *, job_id: str | None = None, queue: str | None = None, definition=None
) -> dict:
    """The AWS Batch user guide's example event, for the stack's job (its queue and job definition)."""
    job = run.outputs["jobs"][JOB]
    event = events.load("batch-job-state-change")
    event["region"] = REGION
    detail = event["detail"]
    name = definition or job["jobDefinitionName"]
    detail.update(
        status=status,
        jobQueue=queue or job["jobQueueArn"],
        jobDefinition=f"arn:aws:batch:{REGION}:123456789012:job-definition/{name}:3",
        jobId=job_id or event["id"],
    )
    detail["container"]["logConfiguration"] = {"logDriver": "awslogs", "options": {"awslogs-group": job["logGroup"]}}
    return event


def alarm(run, kind: str, job: str = JOB):
    return run.one(ALARM, f"job-alerts-{job}-{kind}").inputs


def crossed(definition: dict, value: float) -> bool:
    return COMPARE[definition["comparisonOperator"]](value, definition["threshold"])


def statistic_now(definition: dict) -> float | None:
    """The alarm's own statistic of its own metric over its last period, as CloudWatch has it."""
    now, period = datetime.now(UTC), int(definition["period"])
    points = boto3.client("cloudwatch").get_metric_statistics(
        Namespace=definition["namespace"],
        MetricName=definition["metricName"],
        Dimensions=[{"Name": k, "Value": v} for k, v in definition["dimensions"].items()],
        StartTime=now - timedelta(seconds=period),
        EndTime=now + timedelta(seconds=period),
        Period=period,
        Statistics=[definition["statistic"]],
    )["Datapoints"]
    return max(p[definition["statistic"]] for p in points) if points else None


def test_a_failed_batch_job_through_the_stacks_rule_is_notified_once_with_its_reason_and_log(stack, reporter, inbox):
    event = batch_run(stack)
    log_group = stack.outputs["jobs"][JOB]["logGroup"]
    (result,) = deliver(stack, reporter, event)
    assert result["streak"] == 1 and result["notified"]
    (message,) = inbox()
    assert message["Subject"] == f"spotyard job {JOB} failed"
    body = message["Message"]
    for fact in (
        f"job: {JOB}",
        f"run: {event['detail']['jobId']}",
        "Essential container in task exited",
        "exit code 1",
        f"log group {log_group}, stream first-run-job-definition/default/f6e5d4c3b2a1",
        f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}#logsV2:log-groups/log-group/"
        f"{log_group.replace('/', '$252F')}/log-events/first-run-job-definition$252Fdefault$252Ff6e5d4c3b2a1",
        "duration: 100 s",
    ):
        assert fact in body, body


def test_a_redelivered_failure_is_neither_notified_nor_counted_twice(stack, reporter, inbox):
    event = batch_run(stack)
    deliver(stack, reporter, event)
    (again,) = deliver(stack, reporter, {**event, "id": "another-delivery"})
    assert again["duplicate"] is True
    assert len(inbox()) == 1
    (second,) = deliver(stack, reporter, batch_run(stack))
    assert second["streak"] == 2


def test_n_failures_in_a_row_cross_the_alarms_own_threshold(stack, reporter):
    definition = alarm(stack, "failed-in-a-row")
    assert definition["metricName"] == "ConsecutiveFailures" and definition["namespace"] == "spotyard/Jobs"
    assert definition["dimensions"] == {"Stack": "spotyard/dev", "Job": JOB}
    assert definition["treatMissingData"] == "ignore"  # a box that is off keeps the alarm where it is
    for _ in range(int(definition["threshold"]) - 1):
        deliver(stack, reporter, batch_run(stack))
    assert not crossed(definition, statistic_now(definition))
    deliver(stack, reporter, batch_run(stack))
    assert crossed(definition, statistic_now(definition))


def test_a_success_ends_the_streak_and_feeds_the_dead_mans_switch(stack, reporter):
    deliver(stack, reporter, batch_run(stack))
    (result,) = deliver(stack, reporter, batch_run(stack, "SUCCEEDED"))
    assert result["streak"] == 0
    switch = alarm(stack, "no-success")
    assert switch["treatMissingData"] == "breaching"  # no run at all counts as no success
    assert switch["period"] * switch["evaluationPeriods"] == 26 * 3600 <= 604_800
    assert switch["datapointsToAlarm"] == switch["evaluationPeriods"]
    assert not crossed(switch, statistic_now(switch))
    assert crossed(switch, 0)  # an hour without a success breaches


def test_a_late_failure_older_than_the_last_success_does_not_start_a_streak(stack, reporter, inbox):
    late = batch_run(stack)  # stopped at 1641944400058
    success = batch_run(stack, "SUCCEEDED")
    success["detail"]["stoppedAt"] = 1641944500058  # after it, but delivered first
    deliver(stack, reporter, success)
    (result,) = deliver(stack, reporter, late)
    assert result["streak"] == 0 and result["notified"]
    assert len(inbox()) == 1


def test_events_of_other_queues_and_definitions_are_not_delivered_or_ignored(stack, reporter, inbox):
    assert (
        deliver(stack, reporter, batch_run(stack, queue=f"arn:aws:batch:{REGION}:123456789012:job-queue/other")) == []
    )
    (result,) = deliver(stack, reporter, batch_run(stack, definition="someone-elses"))
    assert "no job of this stack" in result["ignored"]
    (child,) = deliver(stack, reporter, batch_run(stack, job_id="4c7599ae-0a82-49aa-ba5a-4727fcce14a8:3"))
    assert child["ignored"] == "child of an array job"
    assert inbox() == []


def test_a_concurrent_writer_is_merged_not_overwritten(stack, reporter):
    """Two runs recorded at the same time: the other writer's version lands between our read
    and our write (answered through a botocore hook, as SSM would interleave them)."""
    parameter = stack.one("aws:ssm/parameter:Parameter", f"job-alerts-{JOB}-runs").inputs["name"]
    rival = batch_run(stack)["detail"]["jobId"]

    def other_writer(**kwargs):
        if other_writer.done:
            return
        other_writer.done = True
        record = {"lastSuccess": None, "failures": {rival: "2026-12-01T00:00:00.000Z"}, "notified": {}}
        boto3.session.Session(region_name=REGION).client("ssm").put_parameter(
            Name=parameter, Value=json.dumps(record), Type="String", Overwrite=True
        )

    other_writer.done = False
    result = reporter.invoke(batch_run(stack), hooks=(("before-call.ssm.PutParameter", other_writer),))
    assert result["streak"] == 2
    stored = json.loads(boto3.client("ssm").get_parameter(Name=parameter)["Parameter"]["Value"])
    assert rival in stored["failures"] and len(stored["failures"]) == 2


def test_an_event_that_is_not_a_run_fails_loudly(stack, reporter):
    broken = batch_run(stack)
    del broken["detail"]["jobDefinition"]
    with pytest.raises(Exception, match="no jobId, jobDefinition or final status"):
        reporter.invoke(broken)


def reporter_module(name: str):
    """A module of the job reporter's source (its pure decisions), imported as the bundle names it."""
    import sys

    path = str(ROOT / "lambdas" / "job_reporter")
    sys.path.insert(0, path)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(path)


def test_a_jobs_record_converges_whatever_the_order_and_repetition_of_its_runs():
    """The record's decisions (lambdas/job_reporter/runs.py): any order and any repetition of
    the same runs, recorded one by one or merged from two concurrent writers, give one record."""
    runs = reporter_module("runs")

    def run(run_id: str, day: int, succeeded: bool = False):
        return runs.Run("j", run_id, succeeded, f"2026-12-0{day}T00:00:00.000Z", "", "", "")

    history = [run("a", 1), run("b", 2), run("ok", 3, succeeded=True), run("c", 4), run("d", 5)]
    records = set()
    for order in itertools.permutations([*history, history[1], history[3]]):
        record = runs.Record()
        for each in order:
            record = record.with_run(each)
        records.add(record.encode())
        halves = [runs.Record(), runs.Record()]
        for index, each in enumerate(order):
            halves[index % 2] = halves[index % 2].with_run(each)
        records.add(halves[1].merge(halves[0]).encode())
    (only,) = records
    assert runs.Record.decode(only).streak == 2  # c and d, after the success


def test_the_record_counts_up_to_the_streak_limit_and_fits_a_standard_parameter():
    runs = reporter_module("runs")
    record = runs.Record()
    for night in range(JOB_STREAK_LIMIT + 5):
        failed = runs.Run("j", str(uuid.UUID(int=night)), False, runs.from_millis(night * 86_400_000), "", "", "")
        record = record.with_run(failed).with_notified(failed)
    assert record.streak == JOB_STREAK_LIMIT
    assert len(record.encode()) < 4096  # SSM's standard tier: 4 KB a value
