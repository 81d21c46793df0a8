"""DNS registrar Lambda. EC2 state changes arrive in batches from an SQS queue (EventBridge ->
queue -> this function, see components/dns_registrar.py); the periodic reconcile arrives
straight from EventBridge. Parses the events and delegates.

A batch answers with the messages it could not act on (`batchItemFailures`, the event
source mapping reports partial failures): a message that is not a state change of the
expected form, and the events of instances whose names Route 53 refused. SQS delivers
those again, and after the queue's receive limit moves them to the failures queue."""

from __future__ import annotations

import json

from registrar import Registrar
from spotyard_lambda import events, log

STATE_CHANGE = {"aws.ec2": ("EC2 Instance State-change Notification",)}
SCHEDULED = {"aws.events": ("Scheduled Event",)}


def handler(event, context):
    if isinstance(event, dict) and isinstance(event.get("Records"), list):
        return _batch(event["Records"])
    parsed = events.parse(event, SCHEDULED)
    result = Registrar.from_environment().reconcile()
    log.info("registrar.reconciled", event_id=parsed.id, **result.summary())
    if result.failed:
        raise RuntimeError(f"Route 53 refused the names of {sorted(result.failed)}")
    return result.summary()


def _batch(records: list) -> dict:
    """One run for the whole batch: an instance named by several messages is handled once."""
    by_instance: dict[str, list[str]] = {}
    failures = []
    for record in records:
        message_id = record.get("messageId") if isinstance(record, dict) else None
        try:
            if not message_id:
                raise events.UnparseableEvent("an SQS record without a messageId")
            parsed = events.parse(json.loads(record.get("body", "")), STATE_CHANGE)
            by_instance.setdefault(parsed.instance_id(), []).append(message_id)
        except (events.UnparseableEvent, json.JSONDecodeError) as error:
            if not message_id:
                raise
            log.warning("registrar.unparseable", message_id=message_id, error=str(error))
            failures.append(message_id)
    result = Registrar.from_environment().on_state_changes(list(by_instance))
    failures += [message for instance_id in sorted(result.failed) for message in by_instance.get(instance_id, [])]
    log.info("registrar.done", messages=len(records), instances=len(by_instance), **result.summary())
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}
