"""FleetJobs: what a fleet's instances need to run jobs with `spotyard-job` (spec section 3):
putting the run's event on the default event bus, with the job source only, and, for
`--stop-when-done`, leaving their own fleet with one less capacity, as the idle stop does."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from spotyard_lambda.names import JOB_EVENT_SOURCE

from components.environment import Environment
from components.iam import allow, policy_document
from components.spot_fleet import leave_statements
from spotyard.config import FleetConfig
from spotyard.config_jobs import JobConfig


@dataclass
class FleetJobsArgs:
    fleet: str
    engine: str  # asg | spot-fleet
    stack_tag: str
    instance_role_name: pulumi.Input[str]
    capacity_target_arn: pulumi.Input[str]  # the group's or the Spot Fleet request's ARN
    default_event_bus_arn: str  # arn:<partition>:events:<region>:<account>:event-bus/default
    instances_arn: str  # arn:<partition>:ec2:<region>:<account>:instance/*


class FleetJobs(pulumi.ComponentResource):
    def __init__(self, name: str, args: FleetJobsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotyard:index:FleetJobs", name, None, opts)
        statements = [
            # PutEvents is authorized per event bus, and `events:source` is the Source of each entry
            # (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-conditions.html).
            allow(
                "ReportJobRuns",
                ["events:PutEvents"],
                args.default_event_bus_arn,
                {"StringEquals": {"events:source": JOB_EVENT_SOURCE}},
            ),
            *leave_statements(args.engine, args.fleet, args.stack_tag, args.capacity_target_arn, args.instances_arn),
        ]
        aws.iam.RolePolicy(
            f"{name}-policy",
            role=args.instance_role_name,
            policy=policy_document(statements),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})


def fleet_jobs(
    name: str,
    *,
    jobs: tuple[JobConfig, ...],
    fleet: FleetConfig,
    stack_tag: str,
    instance_role_name: pulumi.Input[str],
    capacity_target_arn: pulumi.Input[str],
    environment: Environment,
    opts: pulumi.ResourceOptions,
) -> FleetJobs | None:
    """FleetJobs for `fleet` when a job of the configuration runs on it (`fleet: <name>`)."""
    if not any(job.fleet == fleet.name for job in jobs):
        return None
    return FleetJobs(
        name,
        FleetJobsArgs(
            fleet=fleet.name,
            engine=fleet.engine,
            stack_tag=stack_tag,
            instance_role_name=instance_role_name,
            capacity_target_arn=capacity_target_arn,
            default_event_bus_arn=environment.arn("events", "event-bus/default"),
            instances_arn=environment.arn("ec2", "instance/*"),
        ),
        opts=opts,
    )
