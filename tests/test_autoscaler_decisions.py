"""The autoscaler's pure decisions on hand-made minute-by-minute sequences: capacity from
backlog, scale-out with capacity on its way, scale-in (dips, surplus, the last instance), the fallback."""

from __future__ import annotations

import pytest

from tests.lambda_source import load

decide = load("queue_autoscaler", "decide")
fallback = load("queue_autoscaler", "fallback")
POLICY = decide.Policy(messages_per_instance=10, min_capacity=0, max_capacity=5, cooldown_seconds=300, boot_seconds=120)


@pytest.mark.parametrize(("backlog", "capacity"), [(0, 0), (1, 1), (10, 1), (11, 2), (30, 3), (50, 5), (5000, 5)])
def test_capacity_is_the_clamped_ceiling_of_backlog_per_instance(backlog, capacity):
    assert decide.wanted(backlog, POLICY) == capacity


def test_minimum_capacity_holds_with_an_empty_queue():
    policy = decide.Policy(10, 2, 5, 300, 120)
    assert decide.wanted(0, policy) == 2
    assert decide.decide(decide.FleetCapacity(4), 0, 0, decide.Memory(), policy).capacity == 2
    assert decide.decide(decide.FleetCapacity(2), 0, 900, decide.Memory(empty_since=0), policy).capacity == 2


def replay(backlogs, capacity=0, on_its_way=(), policy=POLICY):
    """Run the decision once a minute over `backlogs` (one per minute), with the capacity it
    sets and, per minute, how much of it is on its way (0 when not given); returns the
    capacities and the reasons."""
    memory, capacities, reasons = decide.Memory(), [], []
    for minute, backlog in enumerate(backlogs):
        fleet = decide.FleetCapacity(capacity, on_its_way[minute] if minute < len(on_its_way) else 0)
        decision = decide.decide(fleet, backlog, minute * 60, memory, policy)
        capacity, memory = decision.capacity, decision.memory
        capacities.append(capacity)
        reasons.append(decision.reason)
    return capacities, reasons


def test_scale_out_is_immediate_and_cancels_a_dip():
    window = decide.Memory(lower_since=0, peak=1)
    decision = decide.decide(decide.FleetCapacity(2), 40, 100, window, POLICY)
    assert (decision.capacity, decision.reason, decision.memory) == (4, "scale-out", decide.Memory(ordered_for=40))


def test_a_one_minute_dip_never_removes_a_needed_worker():
    capacities, reasons = replay([30, 10, 30, 30], capacity=3)
    assert capacities == [3, 3, 3, 3] and reasons[1] == "dip"


def test_a_dip_as_long_as_a_relaunch_scales_in_to_the_highest_demand_of_the_dip():
    # demand 3, then lower for the boot time (120 s: the runs at 60, 120 and 180 s)
    capacities, reasons = replay([30, 10, 20, 15, 15], capacity=3)
    assert capacities == [3, 3, 3, 2, 2] and reasons[3] == "scale-in"


def test_a_trickle_of_one_job_every_few_minutes_does_not_flap_between_zero_and_one():
    trickle = [1 if minute % 4 == 0 else 0 for minute in range(40)]  # one job every 4 minutes
    capacities, reasons = replay(trickle + [0] * 6)
    assert capacities[:42] == [1] * 42  # launched once, kept through the gaps
    assert reasons[1] == "last instance kept"
    # the last job at minute 36, the queue empty from minute 37: zero 300 s later
    assert capacities[42:] == [0] * 4 and reasons[42] == "scale-in"
    # without the hold (cooldown 0), the same trickle would relaunch for every job
    flapping, _ = replay(trickle, policy=decide.Policy(10, 0, 5, 0, 120))
    assert sum(a == 0 and b == 1 for a, b in zip(flapping, flapping[1:], strict=False)) == 9


def test_a_burst_does_not_leave_idle_surplus_for_the_cooldown():
    capacities, reasons = replay([50, 50, 40, 0, 0, 0, 0, 0, 0, 0], capacity=0)
    assert capacities[0] == 5
    assert capacities[3] == 1 and reasons[3] == "surplus released"  # the queue is empty: one is left
    assert capacities[3:8] == [1] * 5 and capacities[8] == 0  # the last one 300 s after the queue emptied


def test_capacity_on_its_way_is_counted_against_the_backlog_it_will_work():
    # 15 messages: 2 instances launched; while they boot the queue grows to 30, then 45.
    capacities, reasons = replay([15, 30, 45], on_its_way=[0, 2, 2])
    assert capacities == [2, 2, 3] and reasons[1] == "capacity on its way"
    # the growth beyond what is on its way (10 messages per instance) still scales out at once
    assert replay([15, 60], on_its_way=[0, 2])[0] == [2, 4]
    # once the instances work, the backlog counts in full again
    assert replay([15, 30], on_its_way=[0, 0])[0] == [2, 3]


def test_a_warm_up_holds_its_capacity_until_it_ends_then_the_usual_rules_apply():
    memory = decide.warmed(decide.Memory(), 4, now=0, seconds=600)
    capacities = []
    for minute in range(0, 17):
        decision = decide.decide(
            decide.FleetCapacity(capacities[-1] if capacities else 0), 0, minute * 60, memory, POLICY
        )
        memory = decision.memory
        capacities.append(decision.capacity)
    assert capacities[:10] == [4] * 10  # warm for 600 s with an empty queue
    assert capacities[10] == 0  # then the empty queue (for 300 s already) lets it go
    big = decide.decide(decide.FleetCapacity(0), 0, 0, decide.warmed(decide.Memory(), 9, 0, 60), POLICY)
    assert big.capacity == POLICY.max_capacity  # never above maxCapacity


def test_steady_demand_clears_the_dip():
    decision = decide.decide(decide.FleetCapacity(3), 30, 50, decide.Memory(lower_since=0, peak=1), POLICY)
    assert decision == decide.Decision(3, decide.Memory(), "steady")


def observe(desired, spot, failures):
    return fallback.Observation(desired=desired, spot_in_service=spot, capacity_failures=failures)


def test_fallback_engages_after_three_consecutive_starved_runs():
    state = fallback.Fallback()
    for run in range(2):
        state = fallback.step(state, observe(4, 1, True), now=run * 60)
        assert not state.engaged and state.starved_runs == run + 1
    state = fallback.step(state, observe(4, 1, True), now=120)
    assert (state.on_demand, state.engaged_at) == (3, 120)


def test_a_run_that_is_not_starved_resets_the_count():
    state = fallback.Fallback(starved_runs=2)
    assert fallback.step(state, observe(4, 4, True), 0) == fallback.Fallback()  # failures but no shortfall
    assert fallback.step(state, observe(4, 1, False), 0) == fallback.Fallback()  # shortfall without failures


def test_fallback_grows_with_a_larger_shortfall_and_hands_back_once_spot_is_proven():
    state = fallback.Fallback(on_demand=1, engaged_at=0)
    state = fallback.step(state, observe(4, 1, True), 60)
    assert state.on_demand == 3
    for run in range(2):
        state = fallback.step(state, observe(4, 1, False), 120 + 60 * run)
        assert state.on_demand == 3
    assert fallback.step(state, observe(4, 1, False), 300) == fallback.Fallback()


def test_a_fleet_all_on_demand_probes_spot_after_a_while():
    state = fallback.Fallback(on_demand=2, engaged_at=0)
    state = fallback.step(state, observe(2, 0, False), fallback.PROBE_SECONDS - 1)
    assert state.on_demand == 2
    assert fallback.step(state, observe(2, 0, False), fallback.PROBE_SECONDS) == fallback.Fallback()


def test_fallback_shrinks_with_the_fleet_and_ends_at_zero():
    state = fallback.Fallback(on_demand=3, engaged_at=0)
    assert fallback.step(state, observe(1, 0, True), 60).on_demand == 1
    assert fallback.step(state, observe(0, 0, False), 60) == fallback.Fallback()
