"""Queue autoscaler Lambda: every minute, the fleet's capacity follows its SQS backlog.
Parses the scheduled event and delegates to `autoscaler.run`, on the event's own clock
(a retried event is judged at the time it was scheduled)."""

from __future__ import annotations

from datetime import datetime

import autoscaler
from spotyard_lambda import events

EXPECTED = {"aws.events": ("Scheduled Event",)}


def handler(event, context):
    parsed = events.parse(event, EXPECTED)
    try:
        now = datetime.fromisoformat(parsed.time).timestamp()
    except ValueError:
        raise events.UnparseableEvent(f"scheduled event {parsed.id} has no valid time: {parsed.time!r}") from None
    return autoscaler.run(autoscaler.Settings.from_environment(), now=now)
