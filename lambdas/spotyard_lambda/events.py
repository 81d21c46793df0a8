"""EventBridge events as the Lambdas receive them. Anything that is not a well-formed
event of an expected kind raises `UnparseableEvent`, which fails the invocation so the
event reaches the failures queue."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}")


class UnparseableEvent(ValueError):
    """The event is not one this function can act on; it must not be silently dropped."""


@dataclass(frozen=True)
class Event:
    id: str
    source: str
    detail_type: str
    time: str
    detail: dict[str, Any]
    region: str = ""

    def instance_id(self, key: str = "instance-id") -> str:
        value = self.detail.get(key)
        if not isinstance(value, str) or not INSTANCE_ID.fullmatch(value):
            raise UnparseableEvent(f"{self.detail_type} event {self.id} has no valid detail.{key}: {value!r}")
        return value


def parse(event: Any, expected: dict[str, tuple[str, ...]]) -> Event:
    """Parse an EventBridge event whose source and detail-type are among `expected`."""
    if not isinstance(event, dict):
        raise UnparseableEvent(f"expected an EventBridge event object, got {type(event).__name__}")
    missing = [key for key in ("id", "source", "detail-type", "time", "detail") if key not in event]
    if missing:
        raise UnparseableEvent(f"not an EventBridge event: missing {', '.join(missing)}")
    source, detail_type, detail = event["source"], event["detail-type"], event["detail"]
    if detail_type not in expected.get(source, ()):
        raise UnparseableEvent(f"unexpected event {source} / {detail_type!r}")
    if not isinstance(detail, dict):
        raise UnparseableEvent(f"{detail_type} event {event['id']} has a detail that is not an object")
    return Event(
        id=str(event["id"]),
        source=source,
        detail_type=detail_type,
        time=str(event["time"]),
        detail=detail,
        region=str(event.get("region", "")),
    )
