"""FleetSchedule: `schedule.start` and `schedule.stop` as EventBridge Scheduler schedules in
`schedule.timezone` that set the fleet's capacity directly (universal targets, no Lambda):
`capacity` at start, 0 at stop. Their role may call only that action on that fleet."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.environment import Environment
from components.iam import allow, policy_document, stack_role
from spotyard.config import FleetConfig

# Universal targets: (Scheduler target ARN, IAM action, API input) per engine.
TARGETS = {
    "asg": ("arn:aws:scheduler:::aws-sdk:autoscaling:setDesiredCapacity", "autoscaling:SetDesiredCapacity",
            lambda target, capacity: {"AutoScalingGroupName": target, "DesiredCapacity": capacity,
                                      "HonorCooldown": False}),
    "spot-fleet": ("arn:aws:scheduler:::aws-sdk:ec2:modifySpotFleetRequest", "ec2:ModifySpotFleetRequest",
                   lambda target, capacity: {"SpotFleetRequestId": target, "TargetCapacity": capacity}),
}


@dataclass
class FleetScheduleArgs:
    fleet: FleetConfig
    environment: Environment
    capacity_target: pulumi.Input[str]
    capacity_target_arn: pulumi.Input[str]


class FleetSchedule(pulumi.ComponentResource):
    def __init__(self, name: str, args: FleetScheduleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotyard:index:FleetSchedule", name, None, opts)
        fleet, schedule, env = args.fleet, args.fleet.schedule, args.environment
        if schedule is None:
            raise ValueError(f"fleet {fleet.name} has no schedule")
        child = pulumi.ResourceOptions(parent=self)
        target_arn, action, make_input = TARGETS[fleet.engine]
        role = stack_role(
            f"{name}-role", description=f"spotyard: schedules of fleet {fleet.name}", service="scheduler.amazonaws.com",
            conditions={"StringEquals": {"aws:SourceAccount": env.account_id}}, iam=env.iam, opts=child)
        aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=policy_document([
            allow("SetFleetCapacity", [action], args.capacity_target_arn)]), opts=child)
        for moment, expression, capacity in (("start", schedule.start, fleet.capacity), ("stop", schedule.stop, 0)):
            if not expression:
                continue
            aws.scheduler.Schedule(
                f"{name}-{moment}",
                description=f"spotyard: {moment} fleet {fleet.name} (capacity {capacity})",
                schedule_expression=expression,
                schedule_expression_timezone=schedule.timezone,
                flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
                target=aws.scheduler.ScheduleTargetArgs(
                    arn=target_arn, role_arn=role.arn,
                    input=pulumi.Output.from_input(args.capacity_target).apply(
                        lambda target, capacity=capacity: json.dumps(make_input(target, capacity))),
                    retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(
                        maximum_event_age_in_seconds=3600, maximum_retry_attempts=5)),
                opts=child)
        self.register_outputs({})
