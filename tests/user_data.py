"""The parts of a fleet's user data as cloud-init reads them (gzipped when over 16 KB)."""

from __future__ import annotations

import base64
import gzip
from email import message_from_string


def decode(encoded: str) -> str:
    """A launch template's `userData` as the text cloud-init reads."""
    raw = base64.b64decode(encoded)
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode()


def parts(run, fleet: str) -> list[tuple[str, str, str]]:
    """[(content type, file name, body)] of the fleet's launch template user data."""
    encoded = run.one("aws:ec2/launchTemplate:LaunchTemplate", f"{fleet}-template").inputs["userData"]
    document = message_from_string(decode(encoded))
    assert document.get_content_type() == "multipart/mixed"
    return [(p.get_content_type(), p.get_filename(), p.get_payload()) for p in document.get_payload()]


def bootstrap(run, fleet: str) -> str:
    return parts(run, fleet)[0][2]
