"""`spotyard jobs`, `spotyard run` and `spotyard logs` against moto, with the stack deployed by the
program. moto's Batch runs a job without Docker and writes no log: the `awslogs` fixture writes,
as the awslogs driver would, each run's lines into the stream Batch names for it."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from click.testing import CliRunner
from moto.batch_simple.models import BatchSimpleBackend

from spotyard import jobs as batch
from spotyard.cli import main
from tests.conftest import REGION, dev_config


def spotyard(*args: str):
    return CliRunner().invoke(main, ["--stack", "spotyard/dev", "--region", REGION, *args], catch_exceptions=False)


@pytest.fixture
def stack(deploy):
    config = dev_config()
    config["spotyard:jobs"]["adhoc"] = {"image": "public.ecr.aws/docker/library/busybox:1.36", "command": ["true"]}
    return deploy(config)


LINES = ["report: 3 batches", "report: done"]


@pytest.fixture
def awslogs(monkeypatch):
    """Each run writes LINES to its log stream when it finishes (moto's simple Batch writes none)."""
    finish = BatchSimpleBackend._mark_job_as_finished

    def finish_with_log(self, include_start_attempt, job):
        finish(self, include_start_attempt, job)
        group = job.job_definition.container_properties["logConfiguration"]["options"]["awslogs-group"]
        logs = boto3.client("logs")
        logs.create_log_stream(logGroupName=group, logStreamName=job.log_stream_name)
        logs.put_log_events(
            logGroupName=group,
            logStreamName=job.log_stream_name,
            # Now: CloudWatch Logs drops events older than 14 days (PutLogEvents API reference).
            logEvents=[{"timestamp": int(time.time() * 1000) + i, "message": line} for i, line in enumerate(LINES)],
        )

    monkeypatch.setattr(BatchSimpleBackend, "_mark_job_as_finished", finish_with_log)


@pytest.fixture
def log_group(stack):
    """The stack's log group (its Pulumi resource is synthesized, not made in moto)."""
    name = stack.one("aws:cloudwatch/logGroup:LogGroup", "jobs-logs").inputs["name"]
    boto3.client("logs").create_log_group(logGroupName=name)
    return name


def test_jobs_lists_each_job_with_its_schedule_and_no_runs_yet(stack):
    result = spotyard("jobs", "--json")
    assert result.exit_code == 0, result.output
    report = {job["name"]: job for job in json.loads(result.output)["jobs"]}
    assert report["nightly-report"]["schedule"] == {
        "expression": "cron(0 2 * * ? *)",
        "timezone": "Asia/Tokyo",
        "state": "ENABLED",
    }
    assert report["adhoc"]["schedule"] is None
    assert report["nightly-report"]["runs"] == report["adhoc"]["runs"] == []


def test_run_submits_the_job_and_jobs_shows_the_runs_newest_first(stack, awslogs, log_group):
    first, second = (spotyard("run", "nightly-report") for _ in range(2))
    ids = [result.output.split()[-1] for result in (first, second)]
    report = {job["name"]: job for job in json.loads(spotyard("jobs", "--json", "--runs", "5").output)["jobs"]}
    runs = report["nightly-report"]["runs"]
    assert {run["id"] for run in runs} == set(ids)
    assert [run["createdAt"] for run in runs] == sorted((run["createdAt"] for run in runs), reverse=True)
    assert {run["status"] for run in runs} == {"SUCCEEDED"}
    assert all(run["durationSeconds"] is not None and run["durationSeconds"] >= 0 for run in runs)
    assert report["adhoc"]["runs"] == []
    queue = stack.one("aws:batch/jobQueue:JobQueue", "jobs-queue").outputs["arn"]
    submitted = boto3.client("batch").describe_jobs(jobs=ids)["jobs"]
    assert {job["jobQueue"] for job in submitted} == {queue}
    definition = stack.one("aws:batch/jobDefinition:JobDefinition", "jobs-job-nightly-report-definition")
    assert {job["jobDefinition"] for job in submitted} == {definition.outputs["arn"]}


def test_jobs_prints_a_table_for_people(stack, awslogs, log_group, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps cells to the terminal's width
    spotyard("run", "adhoc")
    result = spotyard("jobs")
    assert result.exit_code == 0
    for text in ("nightly-report", "cron(0 2 * * ? *) Asia/Tokyo", "adhoc", "on demand", "SUCCEEDED"):
        assert text in result.output


def test_run_wait_streams_the_log_and_reports_the_end(stack, awslogs, log_group):
    result = spotyard("run", "nightly-report", "--wait")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == LINES
    assert "SUCCEEDED" in result.stderr


def test_run_wait_exits_1_when_the_run_failed(stack, awslogs, log_group, monkeypatch):
    monkeypatch.setenv("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")  # moto's simple Batch: fail at once
    result = spotyard("run", "adhoc", "--wait")
    assert result.exit_code == 1
    assert "FAILED" in result.stderr


def test_follow_keeps_looking_until_the_run_ends(stack, awslogs, log_group, monkeypatch):
    """A run still going: `follow` waits between looks and echoes each line once."""
    session = boto3.session.Session(region_name=REGION)
    job = batch.job(session, "spotyard/dev", "nightly-report")
    run_id = batch.submit(session, job)
    finished = batch.describe(session, run_id)
    looks = iter([{**finished, "status": "RUNNING"}, {**finished, "status": "RUNNING"}, finished])
    monkeypatch.setattr(batch, "describe", lambda session, run_id: next(looks))
    waits, echoed = [], []
    detail = batch.follow(session, job, run_id, echoed.append, lambda: waits.append(1))
    assert detail["status"] == "SUCCEEDED" and len(waits) == 2
    assert echoed == LINES


def test_logs_prints_the_newest_run_or_the_one_named(stack, awslogs, log_group):
    first = spotyard("run", "nightly-report").output.split()[-1]
    spotyard("run", "nightly-report")
    assert spotyard("logs", "nightly-report").output.splitlines() == LINES
    assert spotyard("logs", "nightly-report", first).output.splitlines() == LINES


def test_logs_refuses_a_run_of_another_job(stack, awslogs, log_group):
    other = spotyard("run", "adhoc").output.split()[-1]
    result = CliRunner().invoke(main, ["--stack", "spotyard/dev", "--region", REGION, "logs", "nightly-report", other])
    assert result.exit_code == 1 and "is a run of adhoc" in result.output


def test_an_unknown_job_names_the_known_ones(stack):
    result = CliRunner().invoke(main, ["--stack", "spotyard/dev", "--region", REGION, "run", "nightly"])
    assert result.exit_code == 1
    assert "no job nightly in spotyard/dev (its jobs: adhoc, nightly-report)" in result.output


def test_no_jobs_deployed_says_so(aws):
    result = CliRunner().invoke(main, ["--stack", "spotyard/dev", "--region", REGION, "jobs"])
    assert result.exit_code == 1 and "no jobs" in result.output


def test_a_job_without_runs_has_no_log(stack):
    result = CliRunner().invoke(main, ["--stack", "spotyard/dev", "--region", REGION, "logs", "adhoc"])
    assert result.exit_code == 1 and "adhoc has no runs" in result.output
