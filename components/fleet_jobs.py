"""FleetJobs: what a fleet's instances need to run jobs with `spotyard-job` (spec section 3):
putting the run's event on the default event bus, with the job source only, and, for
`--stop-when-done`, leaving their own fleet with one less capacity, as the idle stop does."""

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from spotyard_lambda.names import JOB_EVENT_SOURCE

from components.args import AccountArgs, as_args
from components.iam import allow, policy_document
from components.spot_fleet import leave_statements


@dataclass
class FleetJobsArgs:
    fleet: str
    engine: str  # asg | spot-fleet
    stack_tag: str
    instance_role_name: pulumi.Input[str]
    capacity_target_arn: pulumi.Input[str]  # the group's or the Spot Fleet request's ARN
    account: AccountArgs


class FleetJobs(pulumi.ComponentResource):
    def __init__(self, name: str, args: FleetJobsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotyard:index:FleetJobs", name, None, opts)
        args = as_args(FleetJobsArgs, args)
        statements = [
            # PutEvents is authorized per event bus, and `events:source` is the Source of each entry
            # (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-conditions.html).
            allow(
                "ReportJobRuns",
                ["events:PutEvents"],
                args.account.arn("events", "event-bus/default"),
                {"StringEquals": {"events:source": JOB_EVENT_SOURCE}},
            ),
            *leave_statements(
                args.engine, args.fleet, args.stack_tag, args.capacity_target_arn, args.account.arn("ec2", "instance/*")
            ),
        ]
        aws.iam.RolePolicy(
            f"{name}-policy",
            role=args.instance_role_name,
            policy=policy_document(statements),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
