"""The autoscaler's decision, pure: from the backlog and the fleet to the fleet's capacity.

demand = clamp(ceil((visible + in-flight) / messagesPerInstance), minCapacity, maxCapacity).

Scale-out is immediate, but counts the capacity already on its way (launched, not yet
working): messages that arrived since the last scale-out are left to it, up to
messagesPerInstance per instance on its way, as long as they pile up slower than that per
bootSeconds (an instance launched now would be ready after those on their way, to find them
worked); so the fleet does not chase the backlog that piles up only because its new
instances are still booting, yet follows at once arrivals that outrun what it ordered.

Scale-in is a ski rental. Idle capacity costs one instance-second a second; releasing it
costs a relaunch (bootSeconds of paid boot, and as long a wait) if it is needed again, and
nothing if it is not. So idle capacity is kept for a hold, then released:
- while messages wait and demand is lower (a dip), capacity waits until demand has stayed
  lower for the hold, then goes to the highest demand of that window;
- once nothing waits (nothing visible) the surplus goes at once, down to the workers still in
  a job: the backlog it was launched for is gone; once the queue is empty (nothing in flight
  either) the last instance stays for the hold, and goes at once when there is no history yet
  (nothing says more work is coming; if it comes, that one relaunch is the first gap learned).
The hold is learned. The memory keeps the last GAPS_KEPT gaps, each from the start of a
surplus until capacity was needed again, at most scaleInCooldownSeconds: from the queue
emptying to the next message; from the start of a dip to demand back at the capacity (held)
or to a scale-out above what its release kept (released). The hold is the one that would
have cost least over those gaps (a gap g costs g held idle if the hold covers it, else the
hold plus a relaunch): 0 when releasing at once is cheapest (gaps longer than a relaunch:
the fleet then pays what a rule without any cooldown pays), up to the longest gap worth
covering when most gaps are shorter than a relaunch (a dense trickle keeps its instance
instead of flapping), shorter than scaleInCooldownSeconds. With no history a dip is held
bootSeconds (at most scaleInCooldownSeconds): never more than twice what the best hold in
hindsight costs, and a one-minute dip never removes a worker. A warm instance finishes jobs
shorter than a run unseen: gaps are then over-estimated, which errs towards releasing.

A warm-up (`queue.warmUp`, started by its schedule through `warmed`) raises the minimum to
its capacity until it ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

GAPS_KEPT = 32


@dataclass(frozen=True)
class Policy:
    messages_per_instance: int
    min_capacity: int
    max_capacity: int
    cooldown_seconds: int
    boot_seconds: int


@dataclass(frozen=True)
class FleetCapacity:
    """The fleet as this run reads it: its desired capacity, and how much of it is still on its
    way (pending, launched less than the boot time ago, or not launched yet)."""

    desired: int
    on_its_way: int = 0


@dataclass(frozen=True)
class Memory:
    """What the decision carries from run to run (kept in SSM by the caller, as JSON: a record
    written before a field existed loads with that field's default)."""

    lower_since: float | None = None  # demand below capacity, with work left, since then
    peak: int = 0  # the highest demand since `lower_since`
    empty_since: float | None = None  # the queue has been empty since then
    ordered_for: int | None = None  # the backlog the last scale-out was made for ...
    ordered_at: float | None = None  # ... at this time
    warm_capacity: int = 0  # the minimum while a warm-up lasts ...
    warm_until: float | None = None  # ... until then
    gaps: tuple[int, ...] = ()  # the last GAPS_KEPT gaps (seconds, at most the cooldown)
    released_at: float | None = None  # a dip released capacity then, down to ...
    released_to: int = 0  # ... this: a scale-out above it within the cooldown ends a gap

    def __post_init__(self) -> None:
        object.__setattr__(self, "gaps", tuple(self.gaps))  # JSON gives a list


@dataclass(frozen=True)
class Decision:
    capacity: int
    memory: Memory
    reason: str


def wanted(backlog: int, policy: Policy) -> int:
    raw = math.ceil(max(backlog, 0) / policy.messages_per_instance)
    return max(policy.min_capacity, min(policy.max_capacity, raw))


def hold_seconds(gaps: tuple[int, ...], policy: Policy) -> int:
    """How long idle capacity is kept: the hold that would have cost least over `gaps` (the
    shortest of equals), shorter than the cooldown; with no gaps, bootSeconds."""
    if not gaps:
        return min(policy.boot_seconds, policy.cooldown_seconds)

    def cost(hold: int) -> int:
        return sum(gap if gap <= hold else hold + policy.boot_seconds for gap in gaps)

    return min((0, *(gap for gap in gaps if gap < policy.cooldown_seconds)), key=lambda hold: (cost(hold), hold))


def _history(
    backlog: int, demand: int, scale_out: int, fleet: FleetCapacity, now: float, memory: Memory, policy: Policy
) -> Memory:
    """The memory's gaps with those this run ends, each from the start of the surplus: the
    queue's, when a message comes after it was empty; a dip's, when demand is back to the
    capacity; a released dip's, at a scale-out above what it kept, or after the cooldown."""
    history = Memory(
        gaps=memory.gaps,
        released_at=memory.released_at,
        released_to=memory.released_to,
        ordered_for=memory.ordered_for,
        ordered_at=memory.ordered_at,
    )
    ended = []
    if backlog > 0 and memory.empty_since is not None:
        ended.append(now - memory.empty_since)
    if memory.lower_since is not None and demand >= fleet.desired:
        ended.append(now - memory.lower_since)
    if memory.released_at is not None and (
        scale_out > max(fleet.desired, memory.released_to) or now - memory.released_at >= policy.cooldown_seconds
    ):
        ended.append(now - memory.released_at)
        history = replace(history, released_at=None, released_to=0)
    for gap in ended:
        history = replace(history, gaps=(*history.gaps, int(min(gap, policy.cooldown_seconds)))[-GAPS_KEPT:])
    return history


def _covered_by_capacity_on_its_way(
    fleet: FleetCapacity, backlog: int, now: float, memory: Memory, policy: Policy
) -> int:
    """Messages that arrived since the last scale-out and that the capacity on its way will work:
    all of them while they pile up slower than messagesPerInstance per instance on its way per
    bootSeconds, none once they come faster (the arrivals then outrun what was ordered)."""
    if not fleet.on_its_way or memory.ordered_for is None or memory.ordered_at is None:
        return 0
    arrived = max(0, backlog - memory.ordered_for)
    per_boot = arrived * policy.boot_seconds / max(1.0, now - memory.ordered_at)
    return arrived if per_boot <= fleet.on_its_way * policy.messages_per_instance else 0


def warmed(memory: Memory, capacity: int, now: float, seconds: int) -> Memory:
    """The memory with a warm-up from `now`: at least `capacity` for `seconds`."""
    return replace(memory, warm_capacity=capacity, warm_until=now + seconds)


def decide(
    fleet: FleetCapacity, backlog: int, now: float, memory: Memory, policy: Policy, waiting: int | None = None
) -> Decision:
    """`backlog`: visible plus in-flight messages; `waiting`: of those, the visible ones (no
    worker holds them), all of the backlog when not given."""
    waiting = backlog if waiting is None else waiting
    warm = {}
    if memory.warm_until is not None and now < memory.warm_until:
        warm = {"warm_capacity": memory.warm_capacity, "warm_until": memory.warm_until}
        policy = replace(policy, min_capacity=max(policy.min_capacity, min(memory.warm_capacity, policy.max_capacity)))
    current = fleet.desired
    demand = wanted(backlog, policy)
    scale_out = wanted(backlog - _covered_by_capacity_on_its_way(fleet, backlog, now, memory, policy), policy)
    carried = replace(_history(backlog, demand, scale_out, fleet, now, memory, policy), **warm)
    hold = hold_seconds(carried.gaps, policy)
    empty_since = (now if memory.empty_since is None else memory.empty_since) if backlog <= 0 else None
    kept = replace(carried, empty_since=empty_since)
    if scale_out > current:
        return Decision(scale_out, replace(carried, ordered_for=backlog, ordered_at=now), "scale-out")
    if demand > current:
        return Decision(current, kept, "capacity on its way")
    if demand == current:
        return Decision(current, kept, "steady")
    if waiting <= 0 < backlog:
        return Decision(demand, kept, "surplus released")
    if backlog <= 0:
        last = max(policy.min_capacity, min(current, 1))
        kept_for = hold if carried.gaps else 0  # no history: nothing says more work is coming
        if now - empty_since < kept_for:
            return Decision(last, kept, "surplus released" if last < current else "last instance kept")
        return Decision(policy.min_capacity, kept, "scale-in")
    since = now if memory.lower_since is None else memory.lower_since
    peak = max(memory.peak if memory.lower_since is not None else 0, demand)
    if now - since >= hold:
        if carried.released_at is None:  # its gap runs from the start of the dip
            carried = replace(carried, released_at=since, released_to=peak)
        return Decision(peak, carried, "scale-in")
    return Decision(current, replace(carried, lower_since=since, peak=peak), "dip")
