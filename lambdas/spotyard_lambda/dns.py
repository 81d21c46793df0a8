"""The Route 53 records of a stack's fleets (spec section 3, DNS), computed, compared with the
zone and changed without ever touching a record spotyard did not write.

For every running instance of a fleet: `<fleet>-<instance-id>.<zone>` A -> its private IP,
and `<fleet>.<zone>` A -> the private IPs of all of them. Beside each name, a TXT record
marks it as this stack's (as ExternalDNS does); a name without it belongs to someone else.
Used by the DNS registrar and by the interruption handler (to remove an instance's names).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from spotyard_lambda import aws, log
from spotyard_lambda.instances import Instance

MAX_CHANGES_PER_BATCH = 500
CONFLICT_ATTEMPTS = 3


@dataclass(frozen=True)
class Zone:
    id: str
    name: str
    ttl: int

    @classmethod
    def from_environment(cls) -> Zone | None:
        """The stack's zone (SPOTYARD_ZONE_ID, _NAME, SPOTYARD_TTL), None when it has no DNS."""
        zone_id = os.environ.get("SPOTYARD_ZONE_ID")
        if not zone_id:
            return None
        return cls(id=zone_id, name=os.environ["SPOTYARD_ZONE_NAME"], ttl=int(os.environ.get("SPOTYARD_TTL", "60")))

    def fqdn(self, label: str) -> str:
        return f"{label}.{self.name}.".lower()


@dataclass(frozen=True)
class RecordSet:
    name: str
    type: str
    ttl: int
    values: tuple[str, ...]

    @classmethod
    def from_api(cls, data: dict) -> RecordSet:
        return cls(name=data["Name"].lower(), type=data["Type"], ttl=data.get("TTL", 0),
                   values=tuple(sorted(r["Value"] for r in data.get("ResourceRecords", []))))

    def to_api(self) -> dict:
        return {"Name": self.name, "Type": self.type, "TTL": self.ttl,
                "ResourceRecords": [{"Value": v} for v in self.values]}


def owner_text(stack: str, fleet: str) -> str:
    return f'"heritage=spotyard,spotyard/owner={stack},spotyard/fleet={fleet}"'


def _owner_of(txt: RecordSet, stack: str) -> str | None:
    """The fleet a TXT record says owns its name, if this stack wrote it."""
    prefix = f'"heritage=spotyard,spotyard/owner={stack},spotyard/fleet='
    for value in txt.values:
        if value.startswith(prefix) and value.endswith('"'):
            return value[len(prefix):-1]
    return None


def desired(zone: Zone, stack: str, fleet: str, instances: Iterable[Instance]) -> dict[tuple[str, str], RecordSet]:
    """The records a fleet should have for these (running, not interrupted) instances."""
    records: dict[tuple[str, str], RecordSet] = {}
    ips = []
    for instance in instances:
        if not instance.private_ip:
            continue
        ips.append(instance.private_ip)
        name = zone.fqdn(f"{fleet}-{instance.id}")
        records[(name, "A")] = RecordSet(name, "A", zone.ttl, (instance.private_ip,))
        records[(name, "TXT")] = RecordSet(name, "TXT", zone.ttl, (owner_text(stack, fleet),))
    if ips:
        name = zone.fqdn(fleet)
        records[(name, "A")] = RecordSet(name, "A", zone.ttl, tuple(sorted(ips)))
        records[(name, "TXT")] = RecordSet(name, "TXT", zone.ttl, (owner_text(stack, fleet),))
    return records


@dataclass
class ZoneView:
    """The zone's A and TXT records, split into this stack's (by fleet) and everyone else's names."""

    records: dict[tuple[str, str], RecordSet]
    owner: dict[str, str]  # name -> fleet, for names this stack owns

    @classmethod
    def of(cls, record_sets: Iterable[RecordSet], stack: str) -> ZoneView:
        records = {(r.name, r.type): r for r in record_sets if r.type in ("A", "TXT")}
        owner = {name: fleet for (name, kind), r in records.items()
                 if kind == "TXT" and (fleet := _owner_of(r, stack))}
        return cls(records=records, owner=owner)

    def owned(self, fleets: set[str]) -> dict[tuple[str, str], RecordSet]:
        return {key: r for key, r in self.records.items() if self.owner.get(key[0]) in fleets}

    def foreign(self, name: str) -> bool:
        return name not in self.owner and any((name, kind) in self.records for kind in ("A", "TXT"))

    def fleets_naming(self, instance_id: str) -> set[str]:
        return {fleet for name, fleet in self.owner.items() if name.startswith(f"{fleet}-{instance_id}.")}


def plan(view: ZoneView, wanted: dict[tuple[str, str], RecordSet], fleets: set[str]) -> list[dict]:
    """Changes that make this stack's records of `fleets` equal `wanted`. Records are
    replaced by DELETE of the exact current values then CREATE, so a batch computed from a
    stale view fails as a whole instead of overwriting a newer one."""
    changes = []
    current = view.owned(fleets)
    for key in sorted(set(current) | set(wanted)):
        name = key[0]
        have, want = current.get(key), wanted.get(key)
        if have == want:
            continue
        if want and view.foreign(name):
            log.warning("dns.name_taken", record=name, detail="a record spotyard did not write has this name")
            continue
        if have:
            changes.append({"Action": "DELETE", "ResourceRecordSet": have.to_api()})
        if want:
            changes.append({"Action": "CREATE", "ResourceRecordSet": want.to_api()})
    # TXT ownership goes in before its A record, and comes out after it.
    return sorted(changes, key=lambda c: (c["ResourceRecordSet"]["Name"],
                                          _order(c["Action"], c["ResourceRecordSet"]["Type"])))


def _order(action: str, kind: str) -> int:
    return {("DELETE", "A"): 0, ("DELETE", "TXT"): 1, ("CREATE", "TXT"): 2, ("CREATE", "A"): 3}[(action, kind)]


def read_zone(zone: Zone, stack: str, prefix: str | None = None) -> ZoneView:
    """The zone, or only the names whose label next to the zone starts with `prefix` (a
    fleet's names and any that share its prefix): Route 53 lists names in order with their
    labels reversed, so those are one run starting at `<prefix>.<zone>`, read in as few pages."""
    return ZoneView.of(_record_sets(zone, prefix), stack)


def _record_sets(zone: Zone, prefix: str | None) -> Iterable[RecordSet]:
    start = {"StartRecordName": zone.fqdn(prefix)} if prefix else {}
    suffix = f".{zone.name}.".lower()
    pages = aws.client("route53").get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone.id, **start)
    for page in pages:
        for data in page["ResourceRecordSets"]:
            record = RecordSet.from_api(data)
            # The label next to the zone decides the order (a.b.zone sorts with b.zone).
            if prefix and not record.name.removesuffix(suffix).rsplit(".", 1)[-1].startswith(prefix):
                return
            yield record


def converge(zone: Zone, stack: str, fleets: set[str], instances_of: Callable[[str], list[Instance]], *,
             with_owned: bool = False) -> int:
    """Make the records of `fleets` (and, `with_owned`, of every fleet owning a name in the
    zone) match `instances_of(fleet)`; returns the number of changes. A conflicting
    concurrent change (InvalidChangeBatch) is met by reading the zone again."""
    prefix = next(iter(fleets)) if len(fleets) == 1 and not with_owned else None
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        view = read_zone(zone, stack, prefix)
        if with_owned:
            fleets = fleets | set(view.owner.values())
        wanted: dict[tuple[str, str], RecordSet] = {}
        for fleet in fleets:
            wanted |= desired(zone, stack, fleet, instances_of(fleet))
        changes = plan(view, wanted, fleets)
        try:
            for batch in _batches(changes):
                aws.client("route53").change_resource_record_sets(
                    HostedZoneId=zone.id, ChangeBatch={"Comment": f"spotyard {stack}", "Changes": batch})
        except aws.client("route53").exceptions.InvalidChangeBatch as error:
            if attempt == CONFLICT_ATTEMPTS:
                raise
            log.warning("dns.conflict", attempt=attempt, error=str(error))
            continue
        if changes:
            log.info("dns.changed", fleets=sorted(fleets), changes=[
                f"{c['Action']} {c['ResourceRecordSet']['Type']} {c['ResourceRecordSet']['Name']}" for c in changes])
        return len(changes)
    return 0


def _batches(changes: list[dict]) -> list[list[dict]]:
    """One batch when possible; a large reconcile is split between names, never within one."""
    batches: list[list[dict]] = [[]]
    for name in dict.fromkeys(c["ResourceRecordSet"]["Name"] for c in changes):
        group = [c for c in changes if c["ResourceRecordSet"]["Name"] == name]
        if len(batches[-1]) + len(group) > MAX_CHANGES_PER_BATCH:
            batches.append([])
        batches[-1].extend(group)
    return [b for b in batches if b]
