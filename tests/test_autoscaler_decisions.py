"""The autoscaler's pure decisions: capacity from backlog, the scale-in window, the fallback."""

from __future__ import annotations

import pytest

from tests.lambda_source import load

decide = load("queue_autoscaler", "decide")
fallback = load("queue_autoscaler", "fallback")
POLICY = decide.Policy(messages_per_instance=10, min_capacity=0, max_capacity=5, cooldown_seconds=300)


@pytest.mark.parametrize(("backlog", "capacity"), [(0, 0), (1, 1), (10, 1), (11, 2), (30, 3), (50, 5), (5000, 5)])
def test_capacity_is_the_clamped_ceiling_of_backlog_per_instance(backlog, capacity):
    assert decide.wanted(backlog, POLICY) == capacity


def test_minimum_capacity_holds_with_an_empty_queue():
    assert decide.wanted(0, decide.Policy(10, 2, 5, 300)) == 2


def test_scale_out_is_immediate_and_cancels_a_pending_scale_in():
    window = decide.ScaleInWindow(since=0, peak=1)
    assert decide.decide(2, 40, 100, window, POLICY) == decide.Decision(4, None, "scale-out")


def test_scale_in_waits_for_the_cooldown_then_goes_to_the_peak_of_the_window():
    first = decide.decide(4, 0, 1000, None, POLICY)
    assert (first.capacity, first.reason, first.window) == (4, "cooldown", decide.ScaleInWindow(1000, 0))
    second = decide.decide(4, 20, 1200, first.window, POLICY)
    assert (second.capacity, second.window) == (4, decide.ScaleInWindow(1000, 2))
    third = decide.decide(4, 0, 1299, second.window, POLICY)
    assert third.capacity == 4
    done = decide.decide(4, 0, 1300, third.window, POLICY)
    assert done == decide.Decision(2, None, "scale-in")
    assert decide.decide(2, 0, 1360, None, POLICY).capacity == 2  # a new window starts
    assert decide.decide(2, 0, 1660, decide.ScaleInWindow(1360, 0), POLICY) == decide.Decision(0, None, "scale-in")


def test_steady_demand_clears_the_window():
    assert decide.decide(3, 30, 50, decide.ScaleInWindow(0, 1), POLICY) == decide.Decision(3, None, "steady")


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
