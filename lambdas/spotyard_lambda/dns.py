"""The Route 53 records of a stack's fleets (spec section 3, DNS): computed, compared with the
zone and changed without ever touching a record spotyard did not write, at a cost per
instance that does not depend on the size of its fleet.

For every running instance, four record sets, always created and removed together in one
change batch (so that its own name tells what the other two hold):
- `<fleet>-<instance-id>.<zone>` A -> its private IP, with a TXT ownership record beside it;
- `<fleet>.<zone>` A -> its private IP as a multivalue answer record whose set identifier
  is the instance id, with a TXT ownership record of the same routing and set identifier
  (as ExternalDNS's TXT registry gives each owner record its endpoint's set identifier,
  kubernetes-sigs/external-dns registry/txt/registry.go). Route 53 answers a query for the
  fleet name with up to eight of them (Developer Guide, routing-policy-multivalue.html).
A record set without spotyard's TXT at the same name and set identifier is someone else's.

Route 53 limits (Developer Guide, DNSLimitations.html, "Number of elements and characters
in ChangeResourceRecordSets requests"): at most 1,000 ResourceRecord elements and 32,000
characters of values per request; ListResourceRecordSets pages hold at most 300 record
sets. Requests are paced to the rate the stack gives (SPOTYARD_ROUTE53_REQUESTS_PER_SECOND),
as Route 53 throttles per account.

Used by the DNS registrar and by the interruption handler (to remove an instance's names).
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from spotyard_lambda import aws, log
from spotyard_lambda.instances import Instance
from spotyard_lambda.names import instance_name

MAX_RESOURCE_RECORDS_PER_REQUEST = 1_000
MAX_VALUE_CHARACTERS_PER_REQUEST = 32_000
LIST_PAGE_SIZE = 300
CONFLICT_ATTEMPTS = 3
# What Route 53 says when a batch was computed from a view that changed since (a concurrent
# writer): the only InvalidChangeBatch worth reading the zone again for. Anything else in
# an InvalidChangeBatch (a limit, a name outside the zone, another routing policy in the
# way) fails the same way every time.
STALE_VIEW = (
    "but it was not found",
    "but the values provided do not match the current values",
    "but it already exists",
)
INSTANCE_LABEL = re.compile(r"-(i-[0-9a-f]{8,17})$")


@dataclass(frozen=True)
class Zone:
    id: str
    name: str
    ttl: int
    requests_per_second: float = 0  # 0: not paced

    def fqdn(self, label: str) -> str:
        return f"{label}.{self.name}.".lower()


@dataclass(frozen=True)
class RecordSet:
    name: str
    type: str
    ttl: int
    values: tuple[str, ...]
    set_id: str = ""
    multivalue: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return self.name, self.type, self.set_id

    @classmethod
    def from_api(cls, data: dict) -> RecordSet:
        return cls(
            name=data["Name"].lower(),
            type=data["Type"],
            ttl=data.get("TTL", 0),
            values=tuple(sorted(r["Value"] for r in data.get("ResourceRecords", []))),
            set_id=data.get("SetIdentifier", ""),
            multivalue=bool(data.get("MultiValueAnswer")),
        )

    def to_api(self) -> dict:
        data = {
            "Name": self.name,
            "Type": self.type,
            "TTL": self.ttl,
            "ResourceRecords": [{"Value": v} for v in self.values],
        }
        if self.set_id:
            data["SetIdentifier"] = self.set_id
        if self.multivalue:
            data["MultiValueAnswer"] = True
        return data


def owner_text(stack: str, fleet: str) -> str:
    return f'"heritage=spotyard,spotyard/owner={stack},spotyard/fleet={fleet}"'


def _owner_of(txt: RecordSet, stack: str) -> str | None:
    """The fleet a TXT record says owns its record sets, if this stack wrote it."""
    prefix = f'"heritage=spotyard,spotyard/owner={stack},spotyard/fleet='
    for value in txt.values:
        if value.startswith(prefix) and value.endswith('"'):
            return value[len(prefix) : -1]
    return None


def instance_records(zone: Zone, stack: str, fleet: str, instance_id: str, ip: str) -> list[RecordSet]:
    """The four record sets of one serving instance (see the module docstring)."""
    own, shared, owner = zone.fqdn(instance_name(fleet, instance_id)), zone.fqdn(fleet), (owner_text(stack, fleet),)
    return [
        RecordSet(own, "A", zone.ttl, (ip,)),
        RecordSet(own, "TXT", zone.ttl, owner),
        RecordSet(shared, "A", zone.ttl, (ip,), instance_id, True),
        RecordSet(shared, "TXT", zone.ttl, owner, instance_id, True),
    ]


def instance_keys(zone: Zone, fleet: str, instance_id: str) -> set[tuple[str, str, str]]:
    return {r.key for r in instance_records(zone, "", fleet, instance_id, "")}


def desired(zone: Zone, stack: str, fleet: str, instances: Iterable[Instance]) -> dict[tuple, RecordSet]:
    """The records a fleet should have for these (running, not interrupted) instances."""
    return {
        r.key: r for i in instances if i.private_ip for r in instance_records(zone, stack, fleet, i.id, i.private_ip)
    }


def group_of(record: RecordSet) -> str:
    """The instance a record set belongs to (its set identifier, or the id ending its first
    label): an instance's record sets always go to Route 53 in the same request."""
    if record.set_id:
        return record.set_id
    found = INSTANCE_LABEL.search(record.name.split(".", 1)[0])
    return found.group(1) if found else record.name


@dataclass
class ZoneView:
    """Record sets of the zone (all of it, or those one run needs), which of them this stack
    owns (by the fleet its TXT names) and, per name and type, every record set there."""

    records: dict[tuple[str, str, str], RecordSet]
    owner: dict[tuple[str, str], str]  # (name, set identifier) -> fleet, for record sets this stack owns
    by_name_type: dict[tuple[str, str], list[RecordSet]] = field(default_factory=dict)

    @classmethod
    def of(cls, record_sets: Iterable[RecordSet], stack: str) -> ZoneView:
        records = {r.key: r for r in record_sets if r.type in ("A", "TXT")}
        owner = {
            (name, set_id): fleet
            for (name, kind, set_id), r in records.items()
            if kind == "TXT" and (fleet := _owner_of(r, stack))
        }
        by_name_type: dict[tuple[str, str], list[RecordSet]] = defaultdict(list)
        for r in records.values():
            by_name_type[(r.name, r.type)].append(r)
        return cls(records=records, owner=owner, by_name_type=by_name_type)

    def owned(self, fleets: set[str]) -> dict[tuple, RecordSet]:
        return {key: r for key, r in self.records.items() if self.owner.get((key[0], key[2])) in fleets}

    def blocked(self, want: RecordSet, leaving: set[tuple]) -> bool:
        """Another writer's record set stands where `want` would go, or a record set of the same
        name and type with another routing policy does (Route 53 does not mix them) and is
        not being removed by this run."""
        if want.key in self.records and (want.name, want.set_id) not in self.owner:
            return True
        return any(
            r.multivalue != want.multivalue and r.key not in leaving
            for r in self.by_name_type.get((want.name, want.type), [])
        )


def plan(view: ZoneView, wanted: dict[tuple, RecordSet], scope: set[tuple]) -> list[dict]:
    """Changes that make this stack's record sets within `scope` equal `wanted`. A record set is
    replaced by DELETE of its exact current values then CREATE, so a batch computed from a
    stale view fails as a whole instead of overwriting a newer one."""
    current = {key: r for key, r in view.records.items() if key in scope and (key[0], key[2]) in view.owner}
    leaving = {key for key, r in current.items() if wanted.get(key) != r}
    # A record and its ownership TXT go in together or not at all.
    taken = {(w.name, w.set_id) for w in wanted.values() if w != current.get(w.key) and view.blocked(w, leaving)}
    for name in sorted({name for name, _ in taken}):
        log.warning("dns.name_taken", record=name, detail="a record spotyard did not write has this name")
    changes = []
    for key in sorted(set(current) | set(wanted)):
        have, want = current.get(key), wanted.get(key)
        if want and (want.name, want.set_id) in taken:
            want = None
        if have == want:
            continue
        if have:
            changes.append({"Action": "DELETE", "ResourceRecordSet": have.to_api()})
        if want:
            changes.append({"Action": "CREATE", "ResourceRecordSet": want.to_api()})
    return changes


def _size(changes: list[dict]) -> tuple[int, int]:
    """(ResourceRecord elements, characters of values) as Route 53 counts them."""
    values = [r["Value"] for c in changes for r in c["ResourceRecordSet"].get("ResourceRecords", [])]
    return len(values), sum(len(v) for v in values)


def _in_order(changes: list[dict]) -> list[dict]:
    """Deletions first (a record set of another routing policy must be gone before its
    successor comes); an ownership TXT goes in before its A record and out after it."""
    rank = {("DELETE", "A"): 0, ("DELETE", "TXT"): 1, ("CREATE", "TXT"): 2, ("CREATE", "A"): 3}
    return sorted(
        changes,
        key=lambda c: (
            rank.get((c["Action"], c["ResourceRecordSet"]["Type"]), 1),
            c["ResourceRecordSet"]["Name"],
            c["ResourceRecordSet"].get("SetIdentifier", ""),
        ),
    )


def batches(changes: list[dict]) -> list[list[dict]]:
    """As few requests as Route 53's limits allow; an instance's record sets never split
    between two requests, and requests holding only deletions go first."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for change in changes:
        groups[group_of(RecordSet.from_api(change["ResourceRecordSet"]))].append(change)
    ordered = sorted(groups.values(), key=lambda g: any(c["Action"] == "CREATE" for c in g))
    requests: list[list[dict]] = [[]]
    records = characters = 0
    for group in ordered:
        more_records, more_characters = _size(group)
        if requests[-1] and (
            records + more_records > MAX_RESOURCE_RECORDS_PER_REQUEST
            or characters + more_characters > MAX_VALUE_CHARACTERS_PER_REQUEST
        ):
            requests.append([])
            records = characters = 0
        requests[-1].extend(group)
        records, characters = records + more_records, characters + more_characters
    return [_in_order(r) for r in requests if r]


class Pacer:
    """Spaces calls at least 1/rate seconds apart (no burst), so that one run stays within its
    share of Route 53's per-account request rate."""

    def __init__(
        self, rate: float, clock: Callable[[], float] | None = None, sleep: Callable[[float], None] | None = None
    ) -> None:
        self.interval = 1 / rate if rate else 0.0
        self.clock, self.sleep = clock, sleep
        self.next = float("-inf")

    def wait(self) -> None:
        if not self.interval:
            return
        now = (self.clock or time.monotonic)()
        if now < self.next:
            (self.sleep or time.sleep)(self.next - now)
            now = self.next
        self.next = now + self.interval


class ChangesRefused(Exception):
    """Route 53 refused some changes for good; the instances are named."""


class Route53:
    """The zone's Route 53 calls, paced."""

    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.client = aws.client("route53")
        self.pacer = Pacer(zone.requests_per_second)

    def _list(self, **start) -> dict:
        self.pacer.wait()
        return self.client.list_resource_record_sets(HostedZoneId=self.zone.id, **start)

    def records_at(self, name: str, kind: str | None = None, max_items: int = 10) -> list[RecordSet]:
        """The record sets of one name (of one type: only the first `max_items`)."""
        start = {"StartRecordName": name, "MaxItems": str(max_items), **({"StartRecordType": kind} if kind else {})}
        found = []
        while True:
            page = self._list(**start)
            found += [
                r
                for r in map(RecordSet.from_api, page["ResourceRecordSets"])
                if r.name == name and (kind is None or r.type == kind)
            ]
            if kind or not page["IsTruncated"] or page["NextRecordName"].lower() != name:
                return found
            start = _next_page(page, max_items)

    def all_records(self) -> Iterator[RecordSet]:
        start: dict = {"MaxItems": str(LIST_PAGE_SIZE)}
        while True:
            page = self._list(**start)
            yield from map(RecordSet.from_api, page["ResourceRecordSets"])
            if not page["IsTruncated"]:
                return
            start = _next_page(page, LIST_PAGE_SIZE)

    def change(self, changes: list[dict], comment: str) -> None:
        self.pacer.wait()
        self.client.change_resource_record_sets(
            HostedZoneId=self.zone.id, ChangeBatch={"Comment": comment, "Changes": changes}
        )


def _next_page(page: dict, max_items: int) -> dict:
    start = {
        "StartRecordName": page["NextRecordName"],
        "StartRecordType": page["NextRecordType"],
        "MaxItems": str(max_items),
    }
    if page.get("NextRecordIdentifier"):
        start["StartRecordIdentifier"] = page["NextRecordIdentifier"]
    return start


@dataclass
class Outcome:
    changes: int = 0
    refused: set[str] = field(default_factory=set)  # instances whose changes Route 53 refused


def _submit(route53: Route53, changes: list[dict], comment: str, outcome: Outcome) -> set[str]:
    """Send the changes; returns the instances whose request met a concurrent change. A
    request refused for another reason is sent again one instance at a time, so that one
    instance's refused change does not hold back the others."""
    stale: set[str] = set()
    for request in batches(changes):
        groups = {group_of(RecordSet.from_api(c["ResourceRecordSet"])) for c in request}
        try:
            route53.change(request, comment)
            outcome.changes += len(request)
        except route53.client.exceptions.InvalidChangeBatch as error:
            if any(text in str(error) for text in STALE_VIEW):
                log.warning("dns.conflict", instances=sorted(groups), error=str(error))
                stale |= groups
            elif len(groups) > 1:
                stale |= _submit_each(route53, request, comment, outcome)
            else:
                log.warning("dns.refused", instances=sorted(groups), error=str(error))
                outcome.refused |= groups
    return stale


def _submit_each(route53: Route53, request: list[dict], comment: str, outcome: Outcome) -> set[str]:
    by_group: dict[str, list[dict]] = defaultdict(list)
    for change in request:
        by_group[group_of(RecordSet.from_api(change["ResourceRecordSet"]))].append(change)
    return set().union(*(_submit(route53, changes, comment, outcome) for changes in by_group.values()))


def _log_changes(changes: list[dict]) -> None:
    if changes:
        log.info(
            "dns.changed",
            count=len(changes),
            changes=[
                f"{c['Action']} {c['ResourceRecordSet']['Type']} {c['ResourceRecordSet']['Name']}"
                f"{' ' + c['ResourceRecordSet']['SetIdentifier'] if 'SetIdentifier' in c['ResourceRecordSet'] else ''}"
                for c in changes[:50]
            ],
        )


@dataclass(frozen=True)
class Target:
    """An instance whose names one run makes right: `ip` when it should be named, else None."""

    instance_id: str
    fleet: str
    ip: str | None


def converge_instances(route53: Route53, stack: str, targets: list[Target]) -> Outcome:
    """Make each target's four record sets match it. Reads only each target's own name and,
    once per fleet, the first A and TXT record sets of the fleet name (whether another
    writer's record of another routing policy holds it); whatever the size of the fleets."""
    outcome, pending = Outcome(), list(targets)
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        view = _view_of(route53, stack, pending)
        wanted = {
            r.key: r
            for t in pending
            if t.ip
            for r in instance_records(route53.zone, stack, t.fleet, t.instance_id, t.ip)
        }
        scope = set().union(*(instance_keys(route53.zone, t.fleet, t.instance_id) for t in pending))
        changes = plan(view, wanted, scope)
        _log_changes(changes)
        stale = _submit(route53, changes, f"spotyard {stack}", outcome)
        pending = [t for t in pending if t.instance_id in stale]
        if not pending:
            return outcome
        log.warning("dns.retry", attempt=attempt, instances=[t.instance_id for t in pending])
    outcome.refused |= {t.instance_id for t in pending}
    return outcome


def _view_of(route53: Route53, stack: str, targets: list[Target]) -> ZoneView:
    zone, records = route53.zone, []
    blocked_fleets = set()
    for fleet in sorted({t.fleet for t in targets}):
        for kind in ("A", "TXT"):
            other = [r for r in route53.records_at(zone.fqdn(fleet), kind, max_items=1) if not r.multivalue]
            records += other
            blocked_fleets |= {fleet} if other else set()
    for target in targets:
        own = route53.records_at(zone.fqdn(instance_name(target.fleet, target.instance_id)))
        records += own
        if target.fleet not in blocked_fleets:
            records += _fleet_name_records(zone, stack, target, own)
    return ZoneView.of(records, stack)


def _fleet_name_records(zone: Zone, stack: str, target: Target, own: list[RecordSet]) -> list[RecordSet]:
    """The instance's record sets at the fleet name, as its own name tells them: both are
    always written in the same change batch."""
    by_type = {r.type: r for r in own if not r.set_id}
    a, txt = by_type.get("A"), by_type.get("TXT")
    if not a or not txt or _owner_of(txt, stack) != target.fleet:
        return []
    shared = zone.fqdn(target.fleet)
    return [
        RecordSet(shared, "A", a.ttl, a.values, target.instance_id, True),
        RecordSet(shared, "TXT", txt.ttl, txt.values, target.instance_id, True),
    ]


def fleets_naming(route53: Route53, stack: str, fleets: Iterable[str], instance_id: str) -> set[str]:
    """The fleets (among `fleets`) in which this stack named the instance: one read per fleet."""
    named = set()
    for fleet in fleets:
        own = route53.records_at(route53.zone.fqdn(instance_name(fleet, instance_id)), "TXT", max_items=1)
        if any(_owner_of(r, stack) == fleet for r in own):
            named.add(fleet)
    return named


def converge_zone(
    route53: Route53, stack: str, fleets: set[str], instances_of: Callable[[str], list[Instance]]
) -> Outcome:
    """The reconcile: make every record set this stack owns (of `fleets` and of any fleet
    owning one in the zone) match `instances_of(fleet)`. Reads the whole zone, page by page."""
    outcome = Outcome()
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        view = ZoneView.of(route53.all_records(), stack)
        every = fleets | set(view.owner.values())
        wanted: dict[tuple, RecordSet] = {}
        for fleet in sorted(every):
            wanted |= desired(route53.zone, stack, fleet, instances_of(fleet))
        changes = plan(view, wanted, set(view.owned(every)) | set(wanted))
        _log_changes(changes)
        if not _submit(route53, changes, f"spotyard {stack} reconcile", outcome):
            return outcome
        log.warning("dns.retry", attempt=attempt, reconcile=True)
    raise ChangesRefused("the zone kept changing under the reconcile")
