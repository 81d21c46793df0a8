"""The queue autoscaler against two references, on the same job traces, in a deterministic
discrete-event simulation (one-minute ticks).

- spotyard: the autoscaler's own decision code (lambdas/queue_autoscaler/decide.py);
- classic: the usual CloudWatch alarm step policy: every 5 minutes, on the 5-minute average
  of visible messages, +1 instance at >= 100 and -1 at <= 20, between 2 and 5 instances;
- oracle: knows every arrival in advance and starts instances exactly when needed.

An instance is useful two minutes after launch and works one job at a time; only idle
instances are removed on scale-in (busy ones are protected). Prints, per trace and policy,
the p50 and p95 wait of a job (minutes from arrival to start) and the instance-minutes paid.
"""

from __future__ import annotations

import math
import random
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.lambda_source import load  # noqa: E402  (the Lambda's own module, from its source)

BOOT_MINUTES = 2
SERVICE_MINUTES = 4
HORIZON_LIMIT = 5 * 24 * 60
decide = load("queue_autoscaler", "decide")
SPOTYARD_POLICY = decide.Policy(messages_per_instance=5, min_capacity=0, max_capacity=50, cooldown_seconds=300)


@dataclass
class Instance:
    ready_at: int
    busy_until: int = 0


@dataclass
class Cluster:
    instances: list[Instance] = field(default_factory=list)

    def resize(self, desired: int, now: int) -> None:
        while len(self.instances) < desired:
            self.instances.append(Instance(ready_at=now + BOOT_MINUTES))
        idle = [i for i in self.instances if i.busy_until <= now]
        for instance in sorted(idle, key=lambda i: i.ready_at, reverse=True)[:len(self.instances) - desired]:
            self.instances.remove(instance)


# -- policies: (minute, visible, in_flight, current capacity) -> desired capacity -------------

def spotyard_policy() -> Callable[[int, int, int, int], int]:
    window = None

    def policy(now: int, visible: int, in_flight: int, current: int) -> int:
        nonlocal window
        decision = decide.decide(current, visible + in_flight, now * 60, window, SPOTYARD_POLICY)
        window = decision.window
        return decision.capacity
    return policy


def classic_policy() -> Callable[[int, int, int, int], int]:
    history: deque[int] = deque(maxlen=5)

    def policy(now: int, visible: int, in_flight: int, current: int) -> int:
        history.append(visible)
        current = max(2, min(5, current))
        if now % 5 or len(history) < 5:
            return current
        average = sum(history) / len(history)
        if average >= 100:
            return min(5, current + 1)
        if average <= 20:
            return max(2, current - 1)
        return current
    return policy


def oracle_policy(arrivals: list[int]) -> Callable[[int, int, int, int], int]:
    """Instances for every job in service from its arrival, launched a boot time early."""
    in_service = [0] * (max(arrivals, default=0) + SERVICE_MINUTES + BOOT_MINUTES + 2)
    for arrival in arrivals:
        for minute in range(arrival, arrival + SERVICE_MINUTES):
            in_service[minute] += 1

    def policy(now: int, visible: int, in_flight: int, current: int) -> int:
        return min(SPOTYARD_POLICY.max_capacity, max(in_service[now:now + BOOT_MINUTES + 1], default=0))
    return policy


# -- traces ------------------------------------------------------------------------------------

def steady() -> list[int]:
    return list(range(8 * 60))


def nightly_burst() -> list[int]:
    return [60] * 2000


def random_spikes(seed: int = 7) -> list[int]:
    rng = random.Random(seed)
    arrivals = [minute for minute in range(12 * 60) if rng.random() < 0.2]
    for _ in range(6):
        start = rng.randrange(0, 12 * 60)
        arrivals += [start + rng.randrange(0, 10) for _ in range(rng.randrange(100, 300))]
    return sorted(arrivals)


TRACES = {"steady stream (1 job/min, 8 h)": steady, "nightly burst (2,000 jobs)": nightly_burst,
          "random spikes (12 h, seeded)": random_spikes}


@dataclass
class Outcome:
    waits: list[int]
    instance_minutes: int

    def percentile(self, q: float) -> float:
        ordered = sorted(self.waits)
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def simulate(arrivals: list[int], policy: Callable[[int, int, int, int], int]) -> Outcome:
    pending = deque(sorted(arrivals))
    queue: deque[int] = deque()
    cluster, waits, paid, now = Cluster(), [], 0, 0
    while (pending or queue or any(i.busy_until > now for i in cluster.instances)) and now < HORIZON_LIMIT:
        while pending and pending[0] <= now:
            queue.append(pending.popleft())
        for instance in cluster.instances:
            if instance.ready_at <= now and instance.busy_until <= now and queue:
                waits.append(now - queue.popleft())
                instance.busy_until = now + SERVICE_MINUTES
        in_flight = sum(i.busy_until > now for i in cluster.instances)
        cluster.resize(policy(now, len(queue), in_flight, len(cluster.instances)), now)
        paid += len(cluster.instances)
        now += 1
    return Outcome(waits=waits, instance_minutes=paid)


def main() -> None:
    print("| trace | policy | p50 wait (min) | p95 wait (min) | instance-minutes |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name, trace in TRACES.items():
        arrivals = trace()
        policies = {"spotyard": spotyard_policy(), "classic step alarms": classic_policy(),
                    "oracle": oracle_policy(arrivals)}
        for label, policy in policies.items():
            outcome = simulate(arrivals, policy)
            assert len(outcome.waits) == len(arrivals), f"{label} left jobs undone on {name}"
            print(f"| {name} | {label} | {outcome.percentile(0.5):.0f} | {outcome.percentile(0.95):.0f} | "
                  f"{outcome.instance_minutes:,} |")
    print(f"\nspotyard: messagesPerInstance {SPOTYARD_POLICY.messages_per_instance}, "
          f"{SPOTYARD_POLICY.min_capacity}..{SPOTYARD_POLICY.max_capacity} instances, "
          f"scale-in cooldown {SPOTYARD_POLICY.cooldown_seconds} s; boot {BOOT_MINUTES} min, "
          f"{SERVICE_MINUTES} min per job; one deterministic run per row.")


if __name__ == "__main__":
    main()
