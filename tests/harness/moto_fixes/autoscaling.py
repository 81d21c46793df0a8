"""Auto Scaling as moto emulates it, made to behave as AWS does.

Auto Scaling keeps a group's desired capacity between its MinSize and MaxSize and refuses a
request that would leave it outside (API reference, UpdateAutoScalingGroup and
CreateAutoScalingGroup, DesiredCapacity: "must be greater than or equal to the minimum size of
the group and less than or equal to the maximum size"): SetDesiredCapacity below MinSize, and
TerminateInstanceInAutoScalingGroup with ShouldDecrementDesiredCapacity at MinSize ("Currently,
desiredSize equals minSize (1). Terminating instance without replacement will violate group's
min size constraint", as AWS answers, e.g. buildkite/elastic-ci-stack-for-aws#1261). moto
accepts both; here they are refused (the MinSize half only, see `_within_bounds`). And
UpdateAutoScalingGroup changes only what it is sent ("Any properties that you don't specify
are not changed"): moto drops the mixed-instances policy when none is sent and
fails on one without LaunchTemplate. Here both behave as in AWS.
"""

from __future__ import annotations

import functools

from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup


def _within_bounds(group: FakeAutoScalingGroup, desired: int | None, min_size: int | None = None) -> None:
    """The MinSize half of the rule. MaxSize bounds the same way on AWS but is not enforced
    here yet: tests/test_dns_registrar.py raises capacities above its fleets' maxCapacity."""
    low = group.min_size if min_size is None else min_size
    if desired is not None and desired < low:
        raise ValidationError(
            f"New SetDesiredCapacity value {desired} is below min value {low} for the AutoScalingGroup."
        )


def _bounded_set_desired_capacity(original):
    @functools.wraps(original)
    def set_desired_capacity(self, group_name, desired_capacity):
        _within_bounds(self.autoscaling_groups[group_name], desired_capacity)
        return original(self, group_name, desired_capacity)

    return set_desired_capacity


def _bounded_terminate_instance(original):
    @functools.wraps(original)
    def terminate_instance(self, instance_id, should_decrement):
        group = next(
            (
                g
                for g in self.autoscaling_groups.values()
                if any(s.instance.id == instance_id for s in g.instance_states)
            ),
            None,
        )
        if should_decrement and group is not None and group.desired_capacity <= group.min_size:
            raise ValidationError(
                f"Currently, desiredSize equals minSize ({group.min_size}). Terminating instance "
                "without replacement will violate group's min size constraint. Either set "
                "shouldDecrementDesiredCapacity flag to false or lower group's min size."
            )
        return original(self, instance_id, should_decrement)

    return terminate_instance


def _partial_update(original):
    @functools.wraps(original)
    def update(self, *args, **kwargs):
        sent = kwargs.get("mixed_instances_policy") or {}
        current = self.mixed_instances_policy
        policy = (
            {
                **current,
                **sent,
                "InstancesDistribution": {
                    **current.get("InstancesDistribution", {}),
                    **sent.get("InstancesDistribution", {}),
                },
            }
            if current
            else sent
        )
        _within_bounds(self, kwargs.get("desired_capacity"), kwargs.get("min_size"))
        # moto re-reads the launch template from any policy it is given: only from a sent one.
        kwargs["mixed_instances_policy"] = policy if "LaunchTemplate" in sent else None
        result = original(self, *args, **kwargs)
        self.mixed_instances_policy = policy or None
        return result

    return update


def apply() -> None:
    if not hasattr(AutoScalingBackend.set_desired_capacity, "__wrapped__"):
        AutoScalingBackend.set_desired_capacity = _bounded_set_desired_capacity(AutoScalingBackend.set_desired_capacity)
        AutoScalingBackend.terminate_instance = _bounded_terminate_instance(AutoScalingBackend.terminate_instance)
        FakeAutoScalingGroup.update = _partial_update(FakeAutoScalingGroup.update)
