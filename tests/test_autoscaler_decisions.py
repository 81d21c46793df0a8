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


def replay(backlogs, capacity=0, on_its_way=(), policy=POLICY, memory=None, waiting=None):
    """Run the decision once a minute over `backlogs` (one per minute), with the capacity it
    sets and, per minute, how much of it is on its way (0 when not given) and how much of the
    backlog waits (all of it when not given), from `memory` (none by default); returns the
    capacities and the reasons."""
    memory, capacities, reasons = memory or decide.Memory(), [], []
    for minute, backlog in enumerate(backlogs):
        fleet = decide.FleetCapacity(capacity, on_its_way[minute] if minute < len(on_its_way) else 0)
        decision = decide.decide(fleet, backlog, minute * 60, memory, policy, waiting and waiting[minute])
        capacity, memory = decision.capacity, decision.memory
        capacities.append(capacity)
        reasons.append(decision.reason)
    return capacities, reasons


def test_scale_out_is_immediate_and_cancels_a_dip():
    window = decide.Memory(lower_since=0, peak=1)
    decision = decide.decide(decide.FleetCapacity(2), 40, 100, window, POLICY)
    assert (decision.capacity, decision.reason) == (4, "scale-out")
    assert decision.memory == decide.Memory(ordered_for=40, ordered_at=100, gaps=(100,))  # the dip's gap: 100 s


def test_a_one_minute_dip_never_removes_a_needed_worker():
    capacities, reasons = replay([30, 10, 30, 30], capacity=3)
    assert capacities == [3, 3, 3, 3] and reasons[1] == "dip"


def test_a_dip_as_long_as_a_relaunch_scales_in_to_the_highest_demand_of_the_dip():
    # demand 3, then lower for the boot time (120 s: the runs at 60, 120 and 180 s)
    capacities, reasons = replay([30, 10, 20, 15, 15], capacity=3)
    assert capacities == [3, 3, 3, 2, 2] and reasons[3] == "scale-in"


def no_cooldown(backlogs):
    """The backlog rule applied at once both ways, on the same backlogs."""
    return [decide.wanted(backlog, POLICY) for backlog in backlogs]


def test_a_trickle_denser_than_a_relaunch_does_not_flap_between_zero_and_one():
    """One job every 2 minutes: the queue stays empty 60 s between jobs. Keeping the instance
    costs 60 idle seconds a gap, releasing it a relaunch (120 s of boot) a gap: once the first
    gap is learned, it is kept."""
    trickle = [1 if minute % 2 == 0 else 0 for minute in range(40)]
    capacities, reasons = replay(trickle + [0] * 3)
    assert capacities[:2] == [1, 0] and reasons[1] == "scale-in"  # no history: nothing says more is coming
    assert capacities[2:40] == [1] * 38  # relaunched once, then kept through every gap
    assert reasons[3] == "last instance kept"
    # the last job at minute 38, the queue empty from 39: kept for the learned hold (60 s), no longer
    assert capacities[40:] == [0] * 3 and reasons[40] == "scale-in"


def test_a_trickle_sparser_than_a_relaunch_is_served_like_the_rule_without_cooldown():
    """One job every 4 minutes: the queue stays empty 180 s between jobs. Keeping the instance
    would cost 180 idle seconds a gap, releasing it a relaunch (120 s of boot) a gap: once one
    gap is seen, the fleet keeps releasing at once, as the backlog rule without any cooldown does
    (same waits, same cost)."""
    trickle = [1 if minute % 4 == 0 else 0 for minute in range(40)]
    capacities, reasons = replay(trickle)
    assert capacities == no_cooldown(trickle)  # a relaunch per job, as it is cheaper
    assert reasons[5] == "scale-in" and 0 in capacities


def test_a_burst_does_not_leave_idle_surplus_for_the_cooldown():
    burst = [50, 50, 40, 0, 0, 0, 0, 0]
    capacities, reasons = replay(burst)
    assert capacities[0] == 5
    assert capacities[3:] == [0] * 5 and reasons[3] == "scale-in"  # no history: all of it at once
    # a fleet whose gaps were short keeps one instance for the learned hold (60 s), not 300 s
    capacities, reasons = replay(burst, memory=decide.Memory(gaps=(60, 60, 60)))
    assert capacities[3:] == [1, 0, 0, 0, 0] and reasons[3] == "surplus released"
    # after an empty queue that lasted longer than a relaunch, nothing is kept at all
    capacities, _ = replay([0, 0, 0, 50, 50, 40, 0, 0])
    assert capacities[6:] == [0, 0]


def test_surplus_goes_once_nothing_waits_down_to_the_workers_in_a_job():
    # 50 messages: 5 instances; a minute later 12 are left, all in workers' hands
    capacities, reasons = replay([50, 50, 12], waiting=[50, 30, 0])
    assert capacities == [5, 5, 2] and reasons[2] == "surplus released"
    # the same backlog with messages still waiting is a dip: held
    capacities, reasons = replay([50, 50, 12])
    assert capacities == [5, 5, 5] and reasons[2] == "dip"


@pytest.mark.parametrize(
    ("gaps", "hold"),
    [
        ((), 120),  # no history: the ski-rental break-even, bootSeconds
        ((60, 60, 60), 60),  # gaps shorter than a relaunch: covered
        ((60, 240, 60), 60),  # 60 + 180 + 60 idle seconds beat three relaunches (360)
        ((300, 300, 300), 0),  # not needed again within the cooldown: release at once
        ((60, 300, 300), 0),  # 60 + 180 + 180 idle seconds cost more than three relaunches
        ((180, 180), 0),  # longer than a relaunch: a relaunch is cheaper than the idle time
    ],
)
def test_the_hold_is_the_one_that_would_have_cost_least_on_the_recent_gaps(gaps, hold):
    assert decide.hold_seconds(gaps, POLICY) == hold


def test_the_hold_is_shorter_than_the_cooldown():
    short = decide.Policy(10, 0, 5, 60, 120)
    assert decide.hold_seconds((), short) == 60  # no history: bootSeconds, at most the cooldown
    assert decide.hold_seconds((30, 60, 60), short) == 30  # a gap of the cooldown is never covered
    assert decide.hold_seconds((), decide.Policy(10, 0, 5, 0, 120)) == 0


def test_learning_follows_the_trickle_when_it_becomes_denser():
    sparse = [1 if minute % 6 == 0 else 0 for minute in range(60)]  # gaps of 300 s: released at once
    dense = [1 if minute % 2 == 0 else 0 for minute in range(4 * decide.GAPS_KEPT)]  # gaps of 60 s
    capacities, _ = replay(sparse + dense)
    relaunches = [m for m in range(1, len(capacities)) if capacities[m - 1] == 0 and capacities[m] == 1]
    assert relaunches[-1] < 60 + 2 * decide.GAPS_KEPT  # within GAPS_KEPT dense gaps it stops flapping
    assert capacities[-2 * decide.GAPS_KEPT :] == [1] * 2 * decide.GAPS_KEPT


def test_one_minute_dips_teach_a_fleet_that_released_at_once_to_hold_them():
    """A history of gaps longer than the cooldown says: release at once. Then one-minute dips
    come: each release is relaunched a minute later (a gap of 60 s, worth holding: 60 idle
    seconds against a 120-s relaunch). Once those gaps weigh more than the old ones, the dips
    are held and the fleet stops flapping."""
    history = decide.Memory(gaps=(300,) * decide.GAPS_KEPT)
    capacities, _ = replay([30, 10] * decide.GAPS_KEPT, capacity=3, memory=history)
    releases = [m for m in range(1, len(capacities)) if capacities[m] < capacities[m - 1]]
    # k short gaps of 60 s and GAPS_KEPT - k old ones: holding 60 s costs 60 k + 180 (GAPS_KEPT - k),
    # releasing 120 GAPS_KEPT; holding is cheaper once k > GAPS_KEPT / 2
    short_gaps = decide.GAPS_KEPT // 2 + 1
    assert releases == list(range(1, 2 * short_gaps, 2))
    assert capacities[2 * short_gaps :] == [3] * (len(capacities) - 2 * short_gaps)


def test_a_dip_longer_than_a_relaunch_teaches_the_fleet_to_release_at_once():
    """No history: the dip is held bootSeconds, then released; the workers are needed again
    240 s after the dip began, which a relaunch (120 s) serves cheaper than holding: the next
    dip is released at once."""
    dip = [30, 10, 10, 10, 10]
    capacities, reasons = replay(dip + dip, capacity=3)
    assert capacities[:5] == [3, 3, 3, 1, 1]  # held 120 s with no history
    assert capacities[5:7] == [3, 1] and reasons[6] == "scale-in"  # then released at once


def test_capacity_on_its_way_takes_what_piles_up_slower_than_it_works():
    # 15 messages: 2 instances launched; while they boot 10 more arrive a minute, 20 per boot
    # time (120 s): no more than 10 for each instance on its way, so they are left to them
    capacities, reasons = replay([15, 25, 35], on_its_way=[0, 2, 2])
    assert capacities == [2, 2, 2] and reasons[1:] == ["capacity on its way"] * 2
    # 11 more a minute (22 per boot time) outrun them: the whole backlog counts, at once
    assert replay([15, 26], on_its_way=[0, 2])[0] == [2, 3]
    # once the instances work, the backlog counts in full again
    assert replay([15, 25], on_its_way=[0, 0])[0] == [2, 3]
    # a memory recorded before the order's time was kept: the whole backlog counts
    old = decide.decide(decide.FleetCapacity(2, 2), 25, 60, decide.Memory(ordered_for=15), POLICY)
    assert (old.capacity, old.reason) == (3, "scale-out")


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
    assert decision == decide.Decision(3, decide.Memory(gaps=(50,)), "steady")  # and learns its gap


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
