"""Job runs as the job reporter sees them (pure, no AWS calls): one `Run` from an AWS Batch
"Batch Job State Change" event or from the event `spotyard-job` puts on a fleet box, and the
`Record` of a job's recent runs that duplicated, late and out-of-order events converge on."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from urllib.parse import quote

from spotyard_lambda.events import Event, UnparseableEvent
from spotyard_lambda.names import JOB_EVENT_DETAIL_TYPE, JOB_EVENT_SOURCE, JOB_STREAK_LIMIT
from spotyard_lambda.settings import JobReporterSettings

BATCH_SOURCE = "aws.batch"
BATCH_DETAIL_TYPE = "Batch Job State Change"
EXPECTED = {BATCH_SOURCE: (BATCH_DETAIL_TYPE,), JOB_EVENT_SOURCE: (JOB_EVENT_DETAIL_TYPE,)}
FINAL_STATUSES = ("SUCCEEDED", "FAILED")
# Where Batch sends a container's log unless its job definition names another group
# (https://docs.aws.amazon.com/batch/latest/userguide/using_awslogs.html).
BATCH_DEFAULT_LOG_GROUP = "/aws/batch/job"
# Failures already published that the record keeps to recognise a duplicate (their ids are
# 36-character UUIDs: with JOB_STREAK_LIMIT failures this stays under SSM's 4 KB).
NOTIFIED_KEPT = 20


def iso(moment: datetime) -> str:
    """One spelling for every time in the record, so that they compare as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(text: str, where: str) -> str:
    try:
        return iso(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except (TypeError, ValueError, AttributeError):
        raise UnparseableEvent(f"{where}: not an ISO 8601 time: {text!r}") from None


def from_millis(millis: int) -> str:
    return iso(datetime.fromtimestamp(millis / 1000, UTC))


@dataclass(frozen=True)
class Run:
    job: str
    run_id: str
    succeeded: bool
    finished_at: str  # iso()
    reason: str
    where: str  # "AWS Batch job <id>" or "fleet <fleet>, instance <id>"
    log: str  # where to read its output
    duration_seconds: float | None = None


def from_event(event: Event, settings: JobReporterSettings) -> tuple[Run | None, str]:
    """The run the event reports, or None and why the event is not this stack's to count."""
    if event.source == BATCH_SOURCE:
        return _from_batch(event, settings)
    return _from_box(event, settings)


def _from_batch(event: Event, settings: JobReporterSettings) -> tuple[Run | None, str]:
    # The detail resembles DescribeJobs' JobDetail
    # (https://docs.aws.amazon.com/batch/latest/userguide/batch_job_events.html).
    detail = event.detail
    job_id, status, definition = detail.get("jobId"), detail.get("status"), detail.get("jobDefinition")
    if not isinstance(job_id, str) or not isinstance(definition, str) or status not in FINAL_STATUSES:
        raise UnparseableEvent(f"Batch event {event.id}: no jobId, jobDefinition or final status")
    if detail.get("jobQueue") not in settings.job_queues:
        return None, f"job queue {detail.get('jobQueue')} is not this stack's"
    if ":" in job_id:  # an array job's child `<parent id>:<index>`: its parent's run counts once
        return None, "child of an array job"
    definition_name = definition.rsplit("/", 1)[-1].split(":")[0]
    names = [name for name, job in settings.jobs.items() if job.batch_job_definition == definition_name]
    if not names:
        return None, f"job definition {definition_name} is no job of this stack"
    attempts = detail.get("attempts") or [{}]
    last = attempts[-1] if isinstance(attempts[-1], dict) else {}
    container = last.get("container") or detail.get("container") or {}
    stopped, started = detail.get("stoppedAt"), detail.get("startedAt")
    reasons = [detail.get("statusReason"), container.get("reason")]
    if container.get("exitCode") is not None:
        reasons.append(f"exit code {container['exitCode']}")
    return (
        Run(
            job=names[0],
            run_id=job_id,
            succeeded=status == "SUCCEEDED",
            finished_at=from_millis(stopped) if isinstance(stopped, int) else parse_time(event.time, event.id),
            reason="; ".join(str(r) for r in reasons if r) or status,
            where=f"AWS Batch job {job_id} ({detail.get('jobName', '')})",
            log=_batch_log(detail, container, event),
            duration_seconds=(stopped - started) / 1000
            if isinstance(stopped, int) and isinstance(started, int)
            else None,
        ),
        "",
    )


def _batch_log(detail: Mapping, container: Mapping, event: Event) -> str:
    stream = container.get("logStreamName") or (detail.get("container") or {}).get("logStreamName")
    if not stream:
        return "no log stream (the job never started a container)"
    configuration = (detail.get("container") or {}).get("logConfiguration") or {}
    group = (configuration.get("options") or {}).get("awslogs-group") or BATCH_DEFAULT_LOG_GROUP
    region = event.region
    # The CloudWatch console escapes '/' in group and stream names as $252F.
    console = (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups/log-group/"
        f"{quote(group, safe='').replace('%', '$25')}/log-events/{quote(stream, safe='').replace('%', '$25')}"
    )
    return f"log group {group}, stream {stream}: {console}"


def _from_box(event: Event, settings: JobReporterSettings) -> tuple[Run | None, str]:
    """The event `spotyard-job` puts (instance/spotyard_job.py, spec section 3)."""
    detail = event.detail
    missing = [key for key in ("stack", "job", "runId", "status", "stoppedAt") if not isinstance(detail.get(key), str)]
    if missing or detail["status"] not in FINAL_STATUSES:
        raise UnparseableEvent(f"spotyard job event {event.id}: missing {missing} or status not final")
    if detail["stack"] != settings.stack:
        return None, f"stack {detail['stack']} is not this one"
    if detail["job"] not in settings.jobs:
        return None, f"job {detail['job']} is no job of this stack"
    duration = detail.get("durationSeconds")
    return (
        Run(
            job=detail["job"],
            run_id=detail["runId"],
            succeeded=detail["status"] == "SUCCEEDED",
            finished_at=parse_time(detail["stoppedAt"], f"{event.id} stoppedAt"),
            reason=str(detail.get("reason") or detail["status"]),
            where=f"fleet {detail.get('fleet', '?')}, instance {detail.get('instanceId', '?')}",
            log=str(detail.get("log") or "not recorded"),
            duration_seconds=float(duration) if isinstance(duration, int | float) else None,
        ),
        "",
    )


@dataclass(frozen=True)
class Record:
    """A job's runs as far as the alarms need them: the newest success, the failures since
    (their ids, so a duplicate does not count twice), and the failures already published.
    Merging two records gives the same result in any order (`merge`), so that concurrent
    writers and redelivered events converge."""

    last_success: str | None = None
    failures: Mapping[str, str] = field(default_factory=dict)  # run id -> finished_at
    notified: Mapping[str, str] = field(default_factory=dict)  # run id -> finished_at

    @classmethod
    def decode(cls, text: str) -> Record:
        raw = json.loads(text)
        return cls(raw.get("lastSuccess"), raw.get("failures", {}), raw.get("notified", {}))._pruned()

    def encode(self) -> str:
        return json.dumps(
            {"lastSuccess": self.last_success, "failures": self.failures, "notified": self.notified}, sort_keys=True
        )

    @property
    def streak(self) -> int:
        """Failed runs in a row, up to JOB_STREAK_LIMIT."""
        return len(self.failures)

    def with_run(self, run: Run) -> Record:
        if run.succeeded:
            return replace(self, last_success=max(filter(None, (self.last_success, run.finished_at))))._pruned()
        return replace(self, failures={**self.failures, run.run_id: run.finished_at})._pruned()

    def was_notified(self, run: Run) -> bool:
        return run.run_id in self.notified

    def with_notified(self, run: Run) -> Record:
        return replace(self, notified={**self.notified, run.run_id: run.finished_at})._pruned()

    def merge(self, other: Record) -> Record:
        successes = [s for s in (self.last_success, other.last_success) if s]
        return Record(
            last_success=max(successes) if successes else None,
            failures={**self.failures, **other.failures},
            notified={**self.notified, **other.notified},
        )._pruned()

    def _pruned(self) -> Record:
        """Only failures after the newest success count; the newest few of each are kept."""
        since = {
            run_id: at for run_id, at in self.failures.items() if self.last_success is None or at > self.last_success
        }
        return Record(self.last_success, _newest(since, JOB_STREAK_LIMIT), _newest(self.notified, NOTIFIED_KEPT))


def _newest(runs: Mapping[str, str], count: int) -> dict[str, str]:
    kept = sorted(runs.items(), key=lambda item: (item[1], item[0]))[-count:]
    return dict(sorted(kept))
