"""Exactly-once in effect for the queue autoscaler of a Spot Fleet request (the scenarios of
test_faults_autoscaler.py, in a module of their own so that they run on another worker)."""

from __future__ import annotations

import pytest

from tests.harness.faults import KINDS
from tests.test_faults_autoscaler import prove_every_change_is_published


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("steps", "from_call"),
    [
        ([(0, 15)], None),  # scale-out 0 -> 2, a fault at every call
        # scale-in 2 -> 0: the target is lowered (noTermination), then the idle instances are
        # terminated; a run failing in between leaves the retry to end them
        ([(0, 15), (1, None)], "PutParameter"),
    ],
    ids=["spot-fleet-out", "spot-fleet-in"],
)
def test_every_capacity_change_is_published_whatever_call_fails(aws, tmp_path, kind, steps, from_call):
    prove_every_change_is_published(tmp_path, kind, "workers", steps, from_call)
