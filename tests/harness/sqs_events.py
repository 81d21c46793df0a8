"""Events as a Lambda reads them from an SQS queue (an event source mapping's batch), in the
real format of tests/events/sqs-ec2-instance-state-change.json: each record's body is the
EventBridge event the rule sent to the queue."""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from typing import Any

from tests.events import HERE


def batch(bodies: list[dict[str, Any] | str]) -> dict[str, Any]:
    """One batch holding these events (or raw bodies), each in a message of its own."""
    (template,) = json.loads((HERE / "sqs-ec2-instance-state-change.json").read_text())["Records"]
    records = []
    for body in bodies:
        text = body if isinstance(body, str) else json.dumps(body)
        record = copy.deepcopy(template)
        record.update(messageId=str(uuid.uuid4()), body=text, md5OfBody=hashlib.md5(text.encode()).hexdigest())  # noqa: S324
        records.append(record)
    return {"Records": records}


def message_ids(event: dict[str, Any], instance_id: str) -> set[str]:
    """The messages of `event` that carry this instance's state change."""
    return {r["messageId"] for r in event["Records"] if instance_id in r["body"]}
