"""Interruption handler Lambda: a Spot interruption warning (or, with `onRebalance: drain`,
a rebalance recommendation) takes the instance out of its fleet before Spot does. Parses
the event and delegates to `drain`."""

from __future__ import annotations

import drain
from spotyard_lambda import events, log
from spotyard_lambda.settings import InterruptionHandlerSettings

INTERRUPTION = "EC2 Spot Instance Interruption Warning"
REBALANCE = "EC2 Instance Rebalance Recommendation"
EXPECTED = {"aws.ec2": (INTERRUPTION, REBALANCE)}


def handler(event, context):
    parsed = events.parse(event, EXPECTED)
    notice = drain.Notice(
        kind="interruption" if parsed.detail_type == INTERRUPTION else "rebalance",
        instance_id=parsed.instance_id(),
        time=parsed.time,
        action=parsed.detail.get("instance-action", ""),
    )
    result = drain.handle(notice, InterruptionHandlerSettings.from_environment())
    log.info("interruption.done", event_id=parsed.id, **result)
    return result
