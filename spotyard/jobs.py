"""A deployed stack's Batch jobs as the CLI finds them: by the `spotyard:stack` and
`spotyard:job` tags of their job definitions, with boto3 only (no Pulumi CLI, no state file).
A run is one Batch job (its id is the run's id); its log is the awslogs stream of each attempt."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from botocore.exceptions import ClientError
from spotyard_lambda.names import JOB_QUEUE_TAG, JOB_SCHEDULE_GROUP_TAG, JOB_TAG, STACK_TAG

from spotyard.fleets import NotFound

# Batch's states a run ends in (API reference, JobDetail status).
FINISHED = ("SUCCEEDED", "FAILED")
# The awslogs driver's group when a job definition names none (Batch user guide, "Using the awslogs log driver").
DEFAULT_LOG_GROUP = "/aws/batch/job"


@dataclass(frozen=True)
class Job:
    name: str
    definition: str  # the definition's name: submitted without a revision, its latest active one runs
    queue: str
    log_group: str
    schedule_group: str | None = None


@dataclass(frozen=True)
class Schedule:
    expression: str
    timezone: str
    state: str


@dataclass(frozen=True)
class Run:
    id: str
    status: str
    created: datetime
    started: datetime | None = None
    stopped: datetime | None = None
    reason: str | None = None

    @property
    def seconds(self) -> int | None:
        """How long it ran (to now while it runs); None before it started."""
        if self.started is None:
            return None
        return int(((self.stopped or datetime.now(UTC)) - self.started).total_seconds())

    @classmethod
    def from_api(cls, summary: dict) -> Run:
        return cls(
            id=summary["jobId"],
            status=summary["status"],
            created=_time(summary["createdAt"]),
            started=_time(summary.get("startedAt")),
            stopped=_time(summary.get("stoppedAt")),
            reason=summary.get("statusReason"),
        )


def _time(milliseconds: int | None) -> datetime | None:
    return None if milliseconds is None else datetime.fromtimestamp(milliseconds / 1000, UTC)


def find_jobs(session, stack: str) -> dict[str, Job]:
    """The stack's jobs, each by the newest active revision of its definition."""
    newest: dict[str, dict] = {}
    for page in session.client("batch").get_paginator("describe_job_definitions").paginate(status="ACTIVE"):
        for definition in page["jobDefinitions"]:
            tags = definition.get("tags") or {}
            name = tags.get(JOB_TAG)
            if tags.get(STACK_TAG) != stack or name is None:
                continue
            if name not in newest or definition["revision"] > newest[name]["revision"]:
                newest[name] = definition
    return {name: _job(name, definition) for name, definition in newest.items()}


def _job(name: str, definition: dict) -> Job:
    tags = definition["tags"]
    options = ((definition.get("containerProperties") or {}).get("logConfiguration") or {}).get("options") or {}
    return Job(
        name=name,
        definition=definition["jobDefinitionName"],
        queue=tags[JOB_QUEUE_TAG],
        log_group=options.get("awslogs-group", DEFAULT_LOG_GROUP),
        schedule_group=tags.get(JOB_SCHEDULE_GROUP_TAG),
    )


def job(session, stack: str, name: str) -> Job:
    jobs = find_jobs(session, stack)
    if name not in jobs:
        known = ", ".join(sorted(jobs)) or "none"
        raise NotFound(f"no job {name} in {stack} (its jobs: {known})")
    return jobs[name]


def schedule(session, job: Job) -> Schedule | None:
    """The job's EventBridge Scheduler schedule (named after the job in the stack's group), if any."""
    if job.schedule_group is None:
        return None
    try:
        found = session.client("scheduler").get_schedule(Name=job.name, GroupName=job.schedule_group)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            return None
        raise
    return Schedule(found["ScheduleExpression"], found.get("ScheduleExpressionTimezone", "UTC"), found["State"])


def runs(session, job: Job, limit: int) -> list[Run]:
    """The job's newest `limit` runs, newest first: Batch lists jobs of every status when filtered
    (API reference, ListJobs filters), for as long as it keeps them (at least 7 days)."""
    summaries = [
        summary
        for page in session.client("batch")
        .get_paginator("list_jobs")
        .paginate(jobQueue=job.queue, filters=[{"name": "JOB_NAME", "values": [job.name]}])
        for summary in page["jobSummaryList"]
    ]
    newest = sorted(summaries, key=lambda summary: summary["createdAt"], reverse=True)
    return [Run.from_api(summary) for summary in newest[:limit]]


def submit(session, job: Job) -> str:
    """Run the job now, as its schedule would; the run's id."""
    return session.client("batch").submit_job(jobName=job.name, jobQueue=job.queue, jobDefinition=job.definition)[
        "jobId"
    ]


def describe(session, run_id: str) -> dict:
    found = session.client("batch").describe_jobs(jobs=[run_id])["jobs"]
    if not found:
        raise NotFound(f"no run {run_id} (Batch keeps finished jobs for at least 7 days)")
    return found[0]


def log_streams(detail: dict) -> list[str]:
    """The log stream of every attempt of a run, in order (a retried run has several)."""
    streams = [attempt.get("container", {}).get("logStreamName") for attempt in detail.get("attempts", [])]
    streams.append((detail.get("container") or {}).get("logStreamName"))
    return list(dict.fromkeys(stream for stream in streams if stream))


class LogFollower:
    """The lines of a run's log streams not yet returned, stream by stream."""

    def __init__(self, session, log_group: str) -> None:
        self._logs = session.client("logs")
        self._group = log_group
        self._tokens: dict[str, str] = {}

    def new_lines(self, streams: list[str]) -> Iterator[str]:
        for stream in streams:
            yield from self._read(stream)

    def _read(self, stream: str) -> Iterator[str]:
        while True:
            arguments = {"logGroupName": self._group, "logStreamName": stream, "startFromHead": True}
            if stream in self._tokens:
                arguments["nextToken"] = self._tokens[stream]
            try:
                page = self._logs.get_log_events(**arguments)
            except ClientError as error:
                if error.response["Error"]["Code"] == "ResourceNotFoundException":
                    return  # the container has written nothing yet
                raise
            for event in page["events"]:
                yield event["message"]
            done = page["nextForwardToken"] == self._tokens.get(stream)
            self._tokens[stream] = page["nextForwardToken"]
            if done or not page["events"]:
                return


def follow(session, job: Job, run_id: str, echo: Callable[[str], None], wait: Callable[[], None]) -> dict:
    """Echo the run's log as it grows until the run ends; the run as Batch describes it at the end.
    `wait` pauses between looks (seconds in the CLI)."""
    follower = LogFollower(session, job.log_group)
    while True:
        detail = describe(session, run_id)
        for line in follower.new_lines(log_streams(detail)):
            echo(line)
        if detail["status"] in FINISHED:
            return detail
        wait()
