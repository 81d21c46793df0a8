"""DNS registrar Lambda: EC2 state changes and a periodic reconcile keep each fleet's Route 53
names (and Elastic IP) on its running instances. Parses the event and delegates."""

from __future__ import annotations

from registrar import Registrar
from spotyard_lambda import events, log

EXPECTED = {
    "aws.ec2": ("EC2 Instance State-change Notification",),
    "aws.events": ("Scheduled Event",),
}


def handler(event, context):
    parsed = events.parse(event, EXPECTED)
    registrar = Registrar.from_environment()
    if parsed.source == "aws.events":
        result = registrar.reconcile()
    else:
        result = registrar.on_state_change(parsed.instance_id(), parsed.detail.get("state", ""))
    log.info("registrar.done", event_id=parsed.id, detail_type=parsed.detail_type, **result)
    return result
