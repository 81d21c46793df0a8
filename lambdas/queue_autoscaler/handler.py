"""Queue autoscaler Lambda: every minute, the fleet's capacity follows its SQS backlog.
Parses the scheduled event (or the `queue.warmUp` schedule's warm-up event) and delegates
to `autoscaler.run`, on the event's own clock (a retried event is judged at the time it was
scheduled)."""

from __future__ import annotations

from datetime import datetime

import autoscaler
from spotyard_lambda import events
from spotyard_lambda.settings import QueueAutoscalerSettings

WARM_UP = ("spotyard.warm-up", "Warm Up")  # source and detail-type of the warm-up schedule's event
EXPECTED = {"aws.events": ("Scheduled Event",), WARM_UP[0]: (WARM_UP[1],)}


def handler(event, context):
    parsed = events.parse(event, EXPECTED)
    try:
        now = datetime.fromisoformat(parsed.time).timestamp()
    except ValueError:
        raise events.UnparseableEvent(f"scheduled event {parsed.id} has no valid time: {parsed.time!r}") from None
    warm_up = None
    if parsed.source == WARM_UP[0]:
        capacity, minutes = parsed.detail.get("capacity"), parsed.detail.get("minutes")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (capacity, minutes)):
            raise events.UnparseableEvent(f"warm-up event {parsed.id} needs a positive capacity and minutes")
        warm_up = (capacity, minutes * 60)
    return autoscaler.run(QueueAutoscalerSettings.from_environment(), now=now, warm_up=warm_up)
