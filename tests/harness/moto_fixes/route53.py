"""Route 53 as moto emulates it, made to behave as Route 53 does.

Route 53 change batches. Route 53 validates a change batch in order and applies all of it
or none of it: `DELETE` of a record set then `CREATE` of the same one is the documented way
to replace it (and the way the registrar detects a concurrent writer), a `CREATE` of a
record set that exists fails, and so does a `DELETE` whose TTL or values are not exactly
the current ones ("Tried to delete resource record set [...] but the values provided do
not match the current values", or "... but it was not found"; e.g.
kubernetes-sigs/external-dns#732, hashicorp/terraform#18509). A record set is identified
by name, type and set identifier, and records of one name and type must all use the same
routing policy (a multivalue answer record cannot join a simple one). moto 5.2 instead
checks a `CREATE` against its journal of past changes by name and type only (so a second
multivalue record of a name is refused), accepts any `DELETE`, deletes every record set
carrying a set identifier whatever its name, applies change by change, and does not
enforce the 32,000 characters of values per request (it does enforce the 1,000
ResourceRecord elements). Here a batch is checked and applied as Route 53 does
(https://docs.aws.amazon.com/Route53/latest/APIReference/API_ChangeResourceRecordSets.html,
https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/DNSLimitations.html).

Route 53 listing. moto lists record sets by name and type but ignores
`StartRecordIdentifier` and never answers `NextRecordIdentifier`, so paging through a
name that holds more multivalue records than one page returns the same page forever.
Here the listing is ordered by name, type and set identifier, and a page ends with the
identifier of the next record set, as Route 53's does.
"""

from __future__ import annotations

import bisect
import functools

from moto.core.responses import ActionResult
from moto.route53.exceptions import ResourceRecordAlreadyExists, Route53ClientError
from moto.route53.models import RecordSet, Route53Backend, reverse_domain_name
from moto.route53.responses import Route53

MAX_VALUE_CHARACTERS = 32_000


class InvalidChangeBatch(Route53ClientError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidChangeBatch", message)


def _key(record: dict) -> tuple[str, str, str]:
    return record["Name"].rstrip(".").lower(), record["Type"], record.get("SetIdentifier") or ""


def _stored_key(record: RecordSet) -> tuple[str, str, str]:
    return record.name.rstrip(".").lower(), record.type, record.set_identifier or ""


def _described(record: dict) -> str:
    identifier = f", set-identifier='{record['SetIdentifier']}'" if record.get("SetIdentifier") else ""
    return f"[name='{record['Name'].rstrip('.')}.', type='{record['Type']}'{identifier}]"


def _values(record: dict | RecordSet) -> list[str]:
    if isinstance(record, RecordSet):
        return sorted(record.records or [])
    return sorted(r["Value"] if isinstance(r, dict) else r for r in record.get("ResourceRecords", []))


def _checked_and_applied_as_a_transaction(original):
    @functools.wraps(original)
    def change_resource_record_sets(self, zoneid, change_list):
        zone = self.get_hosted_zone(zoneid)
        characters = sum(len(v) for change in change_list for v in _values(change["ResourceRecordSet"]))
        if characters > MAX_VALUE_CHARACTERS:
            raise InvalidChangeBatch(f"Total characters of values ({characters}) exceed {MAX_VALUE_CHARACTERS}")
        working = {_stored_key(r): r for r in zone.rrsets}
        for change in change_list:
            record, action = change["ResourceRecordSet"], change["Action"]
            key = _key(record)
            if action == "DELETE":
                current = working.get(key)
                if current is None:
                    raise InvalidChangeBatch(
                        f"Tried to delete resource record set {_described(record)} but it was not found"
                    )
                if current.ttl != record.get("TTL") or _values(current) != _values(record):
                    raise InvalidChangeBatch(
                        f"Tried to delete resource record set {_described(record)} "
                        f"but the values provided do not match the current values"
                    )
                del working[key]
            elif action == "CREATE":
                if key in working:
                    raise ResourceRecordAlreadyExists(name=f"{key[0]}.", _type=key[1])
                multivalue = bool(record.get("MultiValueAnswer"))
                if any(k[:2] == key[:2] and bool(r.multi_value_answer) != multivalue for k, r in working.items()):
                    raise InvalidChangeBatch(
                        f"RRSet {_described(record)} cannot be created: a record set of this "
                        f"name and type with another routing policy exists"
                    )
                working[key] = RecordSet({**record, "Name": f"{key[0]}.", "ResourceRecords": _values(record)})
            else:
                return original(self, zoneid, change_list)
        zone.rrsets = list(working.values())

    return change_resource_record_sets


def _order(record: RecordSet) -> tuple[str, str, str]:
    return reverse_domain_name(record.name), record.type, record.set_identifier or ""


def _ordered(zone) -> list[RecordSet]:
    """The zone's record sets in listing order, sorted again only after a change."""
    cached = getattr(zone, "_spotyard_ordered", None)
    if cached is None or cached[0] is not zone.rrsets or cached[1] != len(zone.rrsets):
        cached = (zone.rrsets, len(zone.rrsets), sorted(zone.rrsets, key=_order))
        zone._spotyard_ordered = cached
    return cached[2]


def list_resource_record_sets(self) -> ActionResult:
    zone = self.backend.get_hosted_zone(self._get_param("HostedZoneId"))
    max_items = self._get_int_param("MaxItems", 300)
    ordered = _ordered(zone)
    start_name = self._get_param("StartRecordName")
    if start_name:
        start = (
            reverse_domain_name(start_name),
            self._get_param("StartRecordType") or "",
            self._get_param("StartRecordIdentifier") or "",
        )
        ordered = ordered[bisect.bisect_left(ordered, start, key=_order) :]
    page, rest = ordered[:max_items], ordered[max_items:]
    following = rest[0] if rest else None
    return ActionResult(
        {
            "ResourceRecordSets": page,
            "IsTruncated": following is not None,
            "NextRecordName": following.name if following else None,
            "NextRecordType": following.type if following else None,
            "NextRecordIdentifier": following.set_identifier if following else None,
            "MaxItems": max_items,
        }
    )


def apply() -> None:
    if not hasattr(Route53Backend.change_resource_record_sets, "__wrapped__"):
        Route53Backend.change_resource_record_sets = _checked_and_applied_as_a_transaction(
            Route53Backend.change_resource_record_sets
        )
        Route53.list_resource_record_sets = list_resource_record_sets
