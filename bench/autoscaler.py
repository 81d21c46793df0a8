"""The queue autoscaler against two references, on the same job traces, in a deterministic
discrete-event simulation of SQS and a fleet (six-second steps, one autoscaler run a minute).

- spotyard: the autoscaler's own decision code (lambdas/queue_autoscaler/decide.py) with
  default settings, fed what the Lambda reads: visible + in-flight messages, the desired
  capacity, and how much of it is on its way (launched less than the boot time ago);
- backlog rule, no cooldown: the same demand, ceil((visible + in-flight) / messagesPerInstance),
  applied at once in both directions (what a KEDA-style scaler without stabilization does);
- classic step alarms: every 5 minutes, on the 5-minute average of visible messages, +1
  instance at >= 100 and -1 at <= 20, between 2 and 5 instances;
- and, for the record, spotyard's rule before issue #14: the same demand, scale-in only after
  it stayed lower for a 300-s window, to the window's peak.

An instance takes BOOT_SECONDS from launch to its first job and then works one job at a time,
JOB_SECONDS each (10 jobs a minute); scale-in removes only idle instances (busy ones are
protected, as `spotyard-busy` does), newest first. Bounds 0..10, messagesPerInstance 10.
Prints, per trace and policy, the p50 and p95 wait of a job (minutes from arrival to start)
and the instance-minutes paid (from launch to removal, boot included), until the fleet has
scaled in after the last job (at most 30 minutes after it).

Also: the spikes trace drawn with SEEDS other seeds, spotyard against the rule without
cooldown on each (one seed is one trace: how often, and by how much, either is ahead); the
nightly burst with a `queue.warmUp`, the spikes with `minCapacity: 1` (an instance always
warm), and the spikes under other `scaleInCooldownSeconds`.

Then the delay a Spot interruption adds to the jobs the interrupted worker holds: without the
requeue hook a held message comes back after the visibility timeout; with it
(`spotyard-busy --receipt-handle`) it is visible again at the two-minute notice.
"""

from __future__ import annotations

import math
import random
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from spotyard_lambda.names import DEFAULT_MESSAGES_PER_INSTANCE  # noqa: E402

from tests.lambda_source import load  # noqa: E402  (the Lambda's own module, from its source)

STEP = 6  # seconds
BOOT_SECONDS = 120
JOB_SECONDS = 6
VISIBILITY_TIMEOUT = 300  # the queue's default visibilityTimeoutSeconds
NOTICE_SECONDS = 120
TRAILING_SECONDS = 30 * 60
SEEDS = 40
decide = load("queue_autoscaler", "decide")
DEFAULTS = decide.Policy(
    messages_per_instance=DEFAULT_MESSAGES_PER_INSTANCE,
    min_capacity=0,
    max_capacity=10,
    cooldown_seconds=300,
    boot_seconds=BOOT_SECONDS,
)


@dataclass
class Instance:
    launched: int
    job: tuple[int, int] | None = None  # (message, finish time) of the job in hand

    def ready(self, now: int) -> bool:
        return now - self.launched >= BOOT_SECONDS


@dataclass
class Run:
    """What one autoscaler run sees."""

    now: int
    visible: int
    in_flight: int
    desired: int
    on_its_way: int


# -- policies: Run -> desired capacity ---------------------------------------------------------


def spotyard_policy(policy=DEFAULTS, warm_up: tuple[int, int, int] | None = None) -> Callable[[Run], int]:
    """`warm_up`: (time, capacity, seconds) of a `queue.warmUp` schedule's event."""
    memory = decide.Memory()

    def decide_run(run: Run) -> int:
        nonlocal memory
        if warm_up and run.now == warm_up[0]:
            memory = decide.warmed(memory, warm_up[1], run.now, warm_up[2])
        decision = decide.decide(
            decide.FleetCapacity(run.desired, run.on_its_way),
            run.visible + run.in_flight,
            run.now,
            memory,
            policy,
            waiting=run.visible,
        )
        memory = decision.memory
        return decision.capacity

    return decide_run


def backlog_rule() -> Callable[[Run], int]:
    return lambda run: decide.wanted(run.visible + run.in_flight, DEFAULTS)


def stabilization_window(seconds: int = 300) -> Callable[[Run], int]:
    """spotyard before issue #14: scale-in once demand has stayed lower for `seconds`, to the
    highest demand of that window (Kubernetes HPA's scale-down stabilization)."""
    window: tuple[int, int] | None = None  # (since, peak)

    def policy(run: Run) -> int:
        nonlocal window
        demand = decide.wanted(run.visible + run.in_flight, DEFAULTS)
        if demand >= run.desired:
            window = None
            return demand
        window = (window[0], max(window[1], demand)) if window else (run.now, demand)
        if run.now - window[0] >= seconds:
            peak, window = window[1], None
            return peak
        return run.desired

    return policy


def classic_policy() -> Callable[[Run], int]:
    history: deque[int] = deque(maxlen=5)

    def policy(run: Run) -> int:
        history.append(run.visible)
        current = max(2, min(5, run.desired))
        if (run.now // 60) % 5 or len(history) < 5:
            return current
        average = sum(history) / len(history)
        if average >= 100:
            return min(5, current + 1)
        if average <= 20:
            return max(2, current - 1)
        return current

    return policy


# -- traces: arrival times in seconds ---------------------------------------------------------


def steady() -> list[int]:
    """15 jobs a minute for three hours: one every four seconds (1.5 instances' worth)."""
    return list(range(0, 3 * 3600, 4))


def nightly_burst() -> list[int]:
    return [3600] * 2000


def random_spikes(seed: int = 7) -> list[int]:
    """A trickle (a job in 20% of minutes) over 12 hours, and six spikes of 100-300 jobs over
    10 minutes each, at seeded random seconds."""
    rng = random.Random(seed)
    minutes = [minute for minute in range(12 * 60) if rng.random() < 0.2]
    for _ in range(6):
        start = rng.randrange(0, 12 * 60)
        minutes += [start + rng.randrange(0, 10) for _ in range(rng.randrange(100, 300))]
    return sorted(minute * 60 + rng.randrange(0, 60) for minute in minutes)


TRACES = {
    "steady (15 jobs/min, 3 h)": steady,
    "nightly burst (2,000 jobs)": nightly_burst,
    "random spikes over a trickle (12 h)": random_spikes,
}


@dataclass
class Outcome:
    waits: list[float]
    instance_minutes: float
    requeue_delays: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.waits)
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def simulate(
    arrivals: list[int], policy: Callable[[Run], int], *, interruptions: tuple[int, ...] = (), requeue: bool = False
) -> Outcome:
    """`interruptions`: times at which the oldest busy instance gets the two-minute notice and
    leaves the fleet (paid until Spot reclaims it). The job in hand comes back to the queue at
    the notice (`requeue`) or a visibility timeout after it was received, for another worker."""
    arrival = sorted(arrivals)
    pending = deque(range(len(arrival)))  # message ids, in arrival order
    queue: deque[int] = deque()
    hidden: dict[int, int] = {}  # message of an interrupted worker -> time it is visible again
    first_start: dict[int, int] = {}  # message of an interrupted worker -> when it was first started
    instances: list[Instance] = []
    notices = deque(sorted(interruptions))
    waits, delays, paid, now = [], [], 0, 0
    done = None  # when the last job ended: the fleet is then paid until it scales in, or TRAILING_SECONDS
    while done is None or (instances and now < done + TRAILING_SECONDS):
        if done is None and not (pending or queue or hidden or any(i.job and i.job[1] > now for i in instances)):
            done = now
        while pending and arrival[pending[0]] <= now:
            queue.append(pending.popleft())
        for message in [m for m, at in hidden.items() if at <= now]:
            del hidden[message]
            queue.appendleft(message)
        for instance in instances:
            if instance.job and instance.job[1] <= now:
                instance.job = None
            if instance.ready(now) and not instance.job and queue:
                message = queue.popleft()
                if message in first_start:
                    delays.append((now - first_start.pop(message)) / 60)
                else:
                    waits.append((now - arrival[message]) / 60)
                instance.job = (message, now + JOB_SECONDS)
        while notices and notices[0] <= now:
            notices.popleft()
            victim = next((i for i in instances if i.job), None)
            if victim:
                instances.remove(victim)
                paid += NOTICE_SECONDS
                message, finish = victim.job
                first_start[message] = finish - JOB_SECONDS
                hidden[message] = now if requeue else first_start[message] + VISIBILITY_TIMEOUT
        if now % 60 == 0:
            run = Run(
                now=now,
                visible=len(queue) + len(hidden),
                in_flight=sum(bool(i.job) for i in instances),
                desired=len(instances),
                on_its_way=sum(not i.ready(now) for i in instances),
            )
            desired = policy(run)
            instances += [Instance(launched=now) for _ in range(desired - len(instances))]
            idle = sorted((i for i in instances if not i.job), key=lambda i: i.launched, reverse=True)
            for instance in idle[: max(0, len(instances) - desired)]:
                instances.remove(instance)
        paid += len(instances) * STEP
        now += STEP
    return Outcome(waits=waits, instance_minutes=paid / 60, requeue_delays=delays)


POLICIES = {
    "spotyard (defaults)": spotyard_policy,
    "backlog rule, no cooldown": backlog_rule,
    "classic step alarms": classic_policy,
    "300-s stabilization window (spotyard before #14)": stabilization_window,
}


def print_other_seeds() -> None:
    """spotyard minus the rule without cooldown on the spikes trace of each seed."""
    waits, costs = [], []
    for seed in range(SEEDS):
        arrivals = random_spikes(seed)
        ours, theirs = simulate(arrivals, spotyard_policy()), simulate(arrivals, backlog_rule())
        waits.append((ours.percentile(0.95) - theirs.percentile(0.95)) * 60)
        costs.append(ours.instance_minutes - theirs.instance_minutes)
    print(f"random spikes over a trickle, seeds 0..{SEEDS - 1}: spotyard minus the backlog rule without cooldown\n")
    print("| measure | seeds where spotyard is better | equal | worse | mean | worst |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, deltas, unit in (("p95 wait", waits, "s"), ("instance-minutes", costs, "")):
        better, worse = sum(d < -1e-9 for d in deltas), sum(d > 1e-9 for d in deltas)
        print(
            f"| {label} | {better} | {len(deltas) - better - worse} | {worse} | "
            f"{sum(deltas) / len(deltas):+.1f}{unit} | {max(deltas):+.1f}{unit} |"
        )
    print()


def main() -> None:
    print("| trace | policy | p50 wait (min) | p95 wait (min) | instance-minutes |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name, trace in TRACES.items():
        arrivals = trace()
        for label, make in POLICIES.items():
            outcome = simulate(arrivals, make())
            assert len(outcome.waits) == len(arrivals), f"{label} left jobs undone on {name}"
            print(
                f"| {name} | {label} | {outcome.percentile(0.5):.2f} | {outcome.percentile(0.95):.2f} | "
                f"{outcome.instance_minutes:,.0f} |"
            )
    print(
        f"\nspotyard: messagesPerInstance {DEFAULTS.messages_per_instance}, {DEFAULTS.min_capacity}.."
        f"{DEFAULTS.max_capacity} instances, scaleInCooldownSeconds {DEFAULTS.cooldown_seconds}, bootSeconds "
        f"{DEFAULTS.boot_seconds}; instances boot in {BOOT_SECONDS} s and work one {JOB_SECONDS}-s job at a "
        "time; one deterministic run per row.\n"
    )
    print_other_seeds()
    warm = simulate(nightly_burst(), spotyard_policy(warm_up=(3600 - BOOT_SECONDS, 10, 15 * 60)))
    print(
        f"nightly burst with queue.warmUp (capacity 10, 15 minutes, {BOOT_SECONDS} s before it): p50 "
        f"{warm.percentile(0.5):.1f}, p95 {warm.percentile(0.95):.1f} min, "
        f"{warm.instance_minutes:,.0f} instance-minutes\n"
    )
    floor = simulate(random_spikes(), spotyard_policy(replace(DEFAULTS, min_capacity=1)))
    print(
        f"random spikes over a trickle with minCapacity 1 (one instance always warm): p50 "
        f"{floor.percentile(0.5):.1f}, p95 {floor.percentile(0.95):.1f} min, "
        f"{floor.instance_minutes:,.0f} instance-minutes\n"
    )
    print("| trace | spotyard scaleInCooldownSeconds | p50 wait (min) | p95 wait (min) | instance-minutes |")
    print("| --- | ---: | ---: | ---: | ---: |")
    arrivals = random_spikes()
    for cooldown in (60, 120, 300, 600):
        outcome = simulate(arrivals, spotyard_policy(replace(DEFAULTS, cooldown_seconds=cooldown)))
        print(
            f"| random spikes over a trickle | {cooldown} | {outcome.percentile(0.5):.1f} | "
            f"{outcome.percentile(0.95):.1f} | {outcome.instance_minutes:,.0f} |"
        )
    print()
    interruptions = tuple(range(1800, 3 * 3600 - 1800, 600))  # a notice every 10 minutes, steady trace
    print("| interrupted worker's job | jobs | mean delay added (min) | max delay added (min) |")
    print("| --- | ---: | ---: | ---: |")
    for label, requeue in (("comes back after the visibility timeout", False), ("requeued at the notice", True)):
        delays = simulate(steady(), spotyard_policy(), interruptions=interruptions, requeue=requeue).requeue_delays
        print(f"| {label} | {len(delays)} | {sum(delays) / len(delays):.1f} | {max(delays):.1f} |")
    print(
        f"\nvisibility timeout {VISIBILITY_TIMEOUT} s (the queue's default); delay added = from the job's first "
        "start to its restart on another worker."
    )


if __name__ == "__main__":
    main()
