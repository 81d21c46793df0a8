"""Real-format EventBridge events (JSON fixtures beside this file), for a given instance."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def load(name: str, *, instance_id: str | None = None, **detail: Any) -> dict[str, Any]:
    """The fixture `name`.json with a fresh id, the instance and detail fields given."""
    event = copy.deepcopy(json.loads((HERE / f"{name}.json").read_text()))
    event["id"] = str(uuid.uuid4())
    if instance_id:
        event["detail"]["instance-id"] = instance_id
        event["resources"] = [f"arn:aws:ec2:{event['region']}:{event['account']}:instance/{instance_id}"]
    event["detail"].update(detail)
    return event


def state_change(instance_id: str, state: str) -> dict[str, Any]:
    return load("ec2-instance-state-change", instance_id=instance_id, state=state)


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge matching, by moto's implementation (moto's TestEventPattern returns nothing)."""
    from moto.events.models import EventPattern

    return EventPattern.load(json.dumps(pattern)).matches_event(event)


def delivered(entry: dict[str, Any], *, region: str, account: str = "123456789012") -> dict[str, Any]:
    """The event EventBridge delivers for one PutEvents entry (its envelope around the entry's
    Source, DetailType and Detail: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": account,
        "time": entry.get("Time") or "2026-12-01T20:00:00Z",
        "region": region,
        "resources": entry.get("Resources", []),
        "detail": json.loads(entry["Detail"]),
    }
