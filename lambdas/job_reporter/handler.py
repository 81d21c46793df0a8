"""Job reporter Lambda: every finished run of one of the stack's jobs, from AWS Batch or from
`spotyard-job` on a fleet box, is counted for the job's alarms and, when it failed, published
once to the notification topic. Parses the event and delegates to `runs` and `report`."""

from __future__ import annotations

import report
import runs
from spotyard_lambda import events, log
from spotyard_lambda.settings import JobReporterSettings


def handler(event, context):
    parsed = events.parse(event, runs.EXPECTED)
    settings = JobReporterSettings.from_environment()
    run, why_not = runs.from_event(parsed, settings)
    if run is None:
        log.info("job_reporter.ignored", event_id=parsed.id, reason=why_not)
        return {"ignored": why_not}
    return report.report(run, settings.jobs[run.job].runs_parameter, settings.stack)
