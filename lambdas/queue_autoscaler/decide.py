"""The autoscaler's decision, pure: from the backlog and the fleet to the fleet's capacity.

demand = clamp(ceil((visible + in-flight) / messagesPerInstance), minCapacity, maxCapacity).

Scale-out is immediate, but counts the capacity already on its way (launched, not yet
working): messages that arrived since the last scale-out are counted against it, up to
messagesPerInstance per instance on its way, so the fleet does not chase the backlog that
piles up only because its new instances are still booting.

Scale-in is designed from what a release costs: an instance released and needed again
costs a relaunch (bootSeconds of paid boot, and as long a wait for the job that needed it),
while keeping it costs one instance-minute per idle minute. So:
- while work remains and demand is lower, capacity waits until demand has stayed lower for
  the boot time, then goes to the highest demand of that window (a dip shorter than a
  relaunch never removes a worker);
- once the queue is empty (nothing visible, nothing in flight) the surplus goes at once:
  the backlog it was launched for is gone. The last instance stays until the queue has
  been empty for the cooldown, so a trickle does not flap the fleet between zero and one.

A warm-up (`queue.warmUp`, started by its schedule through `warmed`) raises the minimum to
its capacity until it ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace


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
    """What the decision carries from run to run (kept in SSM by the caller)."""

    lower_since: float | None = None  # demand below capacity, with work left, since then
    peak: int = 0  # the highest demand since `lower_since`
    empty_since: float | None = None  # the queue has been empty since then
    ordered_for: int | None = None  # the backlog the last scale-out was made for
    warm_capacity: int = 0  # the minimum while a warm-up lasts ...
    warm_until: float | None = None  # ... until then


@dataclass(frozen=True)
class Decision:
    capacity: int
    memory: Memory
    reason: str


def wanted(backlog: int, policy: Policy) -> int:
    raw = math.ceil(max(backlog, 0) / policy.messages_per_instance)
    return max(policy.min_capacity, min(policy.max_capacity, raw))


def _covered_by_capacity_on_its_way(fleet: FleetCapacity, backlog: int, memory: Memory, policy: Policy) -> int:
    """Messages that arrived since the last scale-out and that the capacity on its way will work."""
    if not fleet.on_its_way or memory.ordered_for is None:
        return 0
    return min(max(0, backlog - memory.ordered_for), fleet.on_its_way * policy.messages_per_instance)


def warmed(memory: Memory, capacity: int, now: float, seconds: int) -> Memory:
    """The memory with a warm-up from `now`: at least `capacity` for `seconds`."""
    return replace(memory, warm_capacity=capacity, warm_until=now + seconds)


def decide(fleet: FleetCapacity, backlog: int, now: float, memory: Memory, policy: Policy) -> Decision:
    warm = Memory()
    if memory.warm_until is not None and now < memory.warm_until:
        warm = Memory(warm_capacity=memory.warm_capacity, warm_until=memory.warm_until)
        policy = replace(policy, min_capacity=max(policy.min_capacity, min(warm.warm_capacity, policy.max_capacity)))
    current = fleet.desired
    demand = wanted(backlog, policy)
    empty_since = (now if memory.empty_since is None else memory.empty_since) if backlog <= 0 else None
    kept = replace(warm, empty_since=empty_since, ordered_for=memory.ordered_for)
    scale_out = wanted(backlog - _covered_by_capacity_on_its_way(fleet, backlog, memory, policy), policy)
    if scale_out > current:
        return Decision(scale_out, replace(warm, ordered_for=backlog), "scale-out")
    if demand > current:
        return Decision(current, kept, "capacity on its way")
    if demand == current:
        return Decision(current, kept, "steady")
    if backlog <= 0:
        last = max(policy.min_capacity, min(current, 1))
        if now - empty_since < policy.cooldown_seconds:
            return Decision(last, kept, "surplus released" if last < current else "last instance kept")
        return Decision(policy.min_capacity, kept, "scale-in")
    since = now if memory.lower_since is None else memory.lower_since
    peak = max(memory.peak if memory.lower_since is not None else 0, demand)
    if now - since >= policy.boot_seconds:
        return Decision(peak, replace(warm, ordered_for=memory.ordered_for), "scale-in")
    return Decision(current, replace(warm, lower_since=since, peak=peak, ordered_for=memory.ordered_for), "dip")
