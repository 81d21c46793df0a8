"""Route 53 record-set changes written by hand in the tests, in the shape the registrar writes
them (a name with a set identifier is one answer of a multivalue record)."""

from __future__ import annotations


def record_change(action: str, name: str, kind: str, values: list[str], set_id: str = "", ttl: int = 60) -> dict:
    """One `Changes` entry of a ChangeResourceRecordSets batch."""
    record = {"Name": name, "Type": kind, "TTL": ttl, "ResourceRecords": [{"Value": value} for value in values]}
    if set_id:
        record |= {"SetIdentifier": set_id, "MultiValueAnswer": True}
    return {"Action": action, "ResourceRecordSet": record}
