"""FleetSchedule: `schedule.start` and `schedule.stop` as EventBridge Scheduler schedules in
`schedule.timezone` that set the fleet's capacity directly (universal targets, no Lambda):
`capacity` at start, 0 at stop (an `asg` fleet with a minCapacity also moves MinSize: 0 at
stop, minCapacity at start). Their role may call only that action on that fleet."""

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.args import AccountArgs, RoleArgs
from components.iam import allow, policy_document, stack_role


@dataclass
class FleetScheduleArgs:
    fleet: str
    engine: str  # asg | spot-fleet
    capacity_target: pulumi.Input[str]  # group name or Spot Fleet request id
    capacity_target_arn: pulumi.Input[str]
    account: AccountArgs  # only this account's Scheduler may assume the schedules' role
    timezone: str  # IANA name the expressions are read in
    capacity: int  # set at start
    min_capacity: int  # an asg group's MinSize at start (0 at stop)
    start: str | None = None  # cron()/rate()/at() expression
    stop: str | None = None
    iam: RoleArgs = RoleArgs()


def capacity_api(fleet: FleetScheduleArgs) -> tuple[str, str]:
    """(universal target ARN, IAM action) of the call that sets the fleet's capacity."""
    if fleet.engine == "spot-fleet":
        service, action = "ec2", "ModifySpotFleetRequest"
    elif fleet.min_capacity == 0:
        service, action = "autoscaling", "SetDesiredCapacity"
    else:  # Auto Scaling refuses a desired capacity below MinSize: the bounds move with it
        service, action = "autoscaling", "UpdateAutoScalingGroup"
    # https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets-universal.html
    return f"arn:aws:scheduler:::aws-sdk:{service}:{action[0].lower()}{action[1:]}", f"{service}:{action}"


def capacity_input(fleet: FleetScheduleArgs, target: str, capacity: int, minimum: int) -> dict[str, Any]:
    """The API input that sets `fleet` to `capacity` (and its group's MinSize to `minimum`)."""
    if fleet.engine == "spot-fleet":
        # A request keeps the ExcessCapacityTerminationPolicy it was last sent: the autoscaler's and
        # idle stop's `noTermination` would leave the instances above a lower target running and
        # billing. `default` (the API's spelling, EC2 API reference, ModifySpotFleetRequest) terminates.
        return {"SpotFleetRequestId": target, "TargetCapacity": capacity, "ExcessCapacityTerminationPolicy": "default"}
    if fleet.min_capacity == 0:
        return {"AutoScalingGroupName": target, "DesiredCapacity": capacity, "HonorCooldown": False}
    # DesiredCapacity "must be greater than or equal to the minimum size of the group" (API
    # reference, UpdateAutoScalingGroup). No launch template in the request, so none of the
    # launch-template permissions is checked (Auto Scaling user guide, launch template permissions).
    return {"AutoScalingGroupName": target, "MinSize": minimum, "DesiredCapacity": capacity}


class FleetSchedule(pulumi.ComponentResource):
    def __init__(self, name: str, args: FleetScheduleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotyard:index:FleetSchedule", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        target_arn, action = capacity_api(args)
        role = stack_role(
            f"{name}-role",
            description=f"spotyard: schedules of fleet {args.fleet}",
            service="scheduler.amazonaws.com",
            conditions={"StringEquals": {"aws:SourceAccount": args.account.account_id}},
            iam=args.iam,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=policy_document([allow("SetFleetCapacity", [action], args.capacity_target_arn)]),
            opts=child,
        )
        for moment, expression, capacity, minimum in (
            ("start", args.start, args.capacity, args.min_capacity),
            ("stop", args.stop, 0, 0),
        ):
            if not expression:
                continue
            aws.scheduler.Schedule(
                f"{name}-{moment}",
                description=f"spotyard: {moment} fleet {args.fleet} (capacity {capacity})",
                schedule_expression=expression,
                schedule_expression_timezone=args.timezone,
                flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
                target=aws.scheduler.ScheduleTargetArgs(
                    arn=target_arn,
                    role_arn=role.arn,
                    input=pulumi.Output.from_input(args.capacity_target).apply(
                        lambda target, capacity=capacity, minimum=minimum: json.dumps(
                            capacity_input(args, target, capacity, minimum)
                        )
                    ),
                    retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(
                        maximum_event_age_in_seconds=3600, maximum_retry_attempts=5
                    ),
                ),
                opts=child,
            )
        self.register_outputs({})
