"""On-demand fallback, pure: when the fleet cannot get Spot capacity for three runs in a row,
the shortfall runs on-demand; it goes back to Spot once Spot has been fulfilled again.

"Fulfilled again" is proven when the fleet's Spot part has been fully in service without a
capacity failure for three runs. When the whole fleet runs on-demand there is no Spot part
to watch, so after PROBE_SECONDS the on-demand capacity is handed back as a probe: if Spot
is still short, three starved runs engage the fallback again.
"""

from __future__ import annotations

from dataclasses import dataclass

STARVED_RUNS = 3
HEALTHY_RUNS = 3
PROBE_SECONDS = 15 * 60


@dataclass(frozen=True)
class Fallback:
    starved_runs: int = 0
    on_demand: int = 0
    engaged_at: float | None = None
    healthy_runs: int = 0

    @property
    def engaged(self) -> bool:
        return self.on_demand > 0


@dataclass(frozen=True)
class Observation:
    desired: int
    spot_in_service: int
    capacity_failures: bool


def step(state: Fallback, seen: Observation, now: float) -> Fallback:
    """The fallback after this run; its `on_demand` is the on-demand capacity to set."""
    spot_short = max(0, seen.desired - state.on_demand - seen.spot_in_service)
    if not state.engaged:
        starved = state.starved_runs + 1 if seen.capacity_failures and spot_short > 0 else 0
        if starved >= STARVED_RUNS:
            return Fallback(on_demand=spot_short, engaged_at=now)
        return Fallback(starved_runs=starved)
    on_demand = min(seen.desired, state.on_demand + (spot_short if seen.capacity_failures else 0))
    healthy = 0 if seen.capacity_failures else state.healthy_runs + 1
    spot_part = seen.desired - on_demand
    spot_proven = spot_part > 0 and seen.spot_in_service >= spot_part and healthy >= HEALTHY_RUNS
    engaged_at = now if state.engaged_at is None else state.engaged_at
    probe_due = spot_part == 0 and now - engaged_at >= PROBE_SECONDS
    if on_demand == 0 or spot_proven or probe_due:
        return Fallback()
    return Fallback(on_demand=on_demand, engaged_at=state.engaged_at, healthy_runs=healthy)
