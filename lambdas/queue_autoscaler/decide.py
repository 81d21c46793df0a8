"""The autoscaler's decision, pure: from the backlog to the fleet's capacity.

capacity = clamp(ceil((visible + in-flight) / messagesPerInstance), minCapacity, maxCapacity).
Scale-out is immediate. Scale-in waits until demand has stayed lower for the cooldown, then
goes to the highest capacity wanted during that window (as Kubernetes' HPA stabilization
window and KEDA do), so a dip shorter than the cooldown never removes a worker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    messages_per_instance: int
    min_capacity: int
    max_capacity: int
    cooldown_seconds: int


@dataclass(frozen=True)
class ScaleInWindow:
    """Demand has been below the current capacity since `since`; `peak` is the most it asked for."""

    since: float
    peak: int


@dataclass(frozen=True)
class Decision:
    capacity: int
    window: ScaleInWindow | None
    reason: str


def wanted(backlog: int, policy: Policy) -> int:
    raw = math.ceil(max(backlog, 0) / policy.messages_per_instance)
    return max(policy.min_capacity, min(policy.max_capacity, raw))


def decide(current: int, backlog: int, now: float, window: ScaleInWindow | None, policy: Policy) -> Decision:
    target = wanted(backlog, policy)
    if target > current:
        return Decision(target, None, "scale-out")
    if target == current:
        return Decision(current, None, "steady")
    window = ScaleInWindow(since=window.since, peak=max(window.peak, target)) if window else \
        ScaleInWindow(since=now, peak=target)
    if now - window.since >= policy.cooldown_seconds:
        return Decision(window.peak, None, "scale-in")
    return Decision(current, window, "cooldown")
