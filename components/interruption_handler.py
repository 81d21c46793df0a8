"""InterruptionHandler: on the two-minute Spot interruption warning (and, per fleet, on a
rebalance recommendation) the `interruption_handler` Lambda takes the instance out of its
fleet, its target groups and DNS, saves an AMI when configured, and says so on the
notification topic. Its role can act only on this stack's fleets."""

from dataclasses import dataclass, field

import pulumi
from spotyard_lambda import settings
from spotyard_lambda.dns import Zone
from spotyard_lambda.names import DEFAULT_TTL_SECONDS, STACK_TAG, hosted_zone_arn, tag_condition
from spotyard_lambda.settings import TOPIC_VARIABLE, InterruptionHandlerSettings

from components.args import AccountArgs, RoleArgs, as_args
from components.iam import allow
from components.lambda_function import LambdaFunction, LambdaFunctionArgs, Trigger

NOTICES = {
    "source": ["aws.ec2"],
    "detail-type": ["EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance Recommendation"],
}


@dataclass
class TargetGroupArgs:
    """A target group the fleet's instances are in: they leave it when Spot takes them back."""

    arn: str
    target_type: str  # instance | ip: how an instance is named to the group


@dataclass
class InterruptedFleet:
    name: str
    engine: str  # asg | spot-fleet
    capacity_target: pulumi.Input[str]  # group name or Spot Fleet request id
    capacity_target_arn: pulumi.Input[str]
    decrement_capacity: bool  # false: a replacement starts for an interrupted instance
    on_rebalance: str  # notify | drain, on a rebalance recommendation
    target_groups: list[TargetGroupArgs] | None = field(default_factory=list)
    image_role_tag: str | None = None  # set: save the instance as an AMI tagged Role=<this>


@dataclass
class InterruptionHandlerArgs:
    stack_tag: str  # the spotyard:stack tag value of the fleets' instances: the only ones it acts on
    account: AccountArgs
    fleets: list[InterruptedFleet]
    zone_id: pulumi.Input[str] | None = None  # the hosted zone whose names of the instances it removes
    zone_name: str | None = None
    ttl: int | None = DEFAULT_TTL_SECONDS
    topic_arn: pulumi.Input[str] | None = None  # notifications and alarms
    iam: RoleArgs | None = RoleArgs()


class InterruptionHandler(pulumi.ComponentResource):
    def __init__(self, name: str, args: InterruptionHandlerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotyard:index:InterruptionHandler", name, None, opts)
        args = as_args(InterruptionHandlerArgs, args)
        env = args.account
        ours = tag_condition({STACK_TAG: args.stack_tag})
        statements = [
            allow("FindInstances", ["ec2:DescribeInstances"], "*"),
            allow("MarkInstances", ["ec2:CreateTags"], env.arn("ec2", "instance/*"), ours),
        ]
        groups = [f.capacity_target_arn for f in args.fleets if f.engine == "asg"]
        if groups:
            statements += [
                allow("FindGroupMembership", ["autoscaling:DescribeAutoScalingInstances"], "*"),
                allow("DetachFromGroups", ["autoscaling:DetachInstances"], groups),
            ]
        target_groups = sorted({g.arn for f in args.fleets for g in f.target_groups})
        if target_groups:
            statements.append(allow("DrainTargets", ["elasticloadbalancing:DeregisterTargets"], target_groups))
        if args.zone_id is not None:
            statements.append(
                allow(
                    "RemoveNames",
                    ["route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets"],
                    pulumi.Output.from_input(args.zone_id).apply(lambda zone: hosted_zone_arn(env.partition, zone)),
                )
            )
        if any(f.image_role_tag for f in args.fleets):
            statements += [
                allow("FindSavedImages", ["ec2:DescribeImages"], "*"),
                allow("SaveImagesOfStackInstances", ["ec2:CreateImage"], env.arn("ec2", "instance/*"), ours),
                allow(
                    "SaveImages",
                    ["ec2:CreateImage"],
                    [env.arn("ec2", "image/*", account=False), env.arn("ec2", "snapshot/*", account=False)],
                ),
                # CreateImage tags the AMI and its snapshots (spotyard_lambda/images.py).
                allow(
                    "TagSavedImages",
                    ["ec2:CreateTags"],
                    [env.arn("ec2", "image/*", account=False), env.arn("ec2", "snapshot/*", account=False)],
                    {"StringEquals": {"ec2:CreateAction": "CreateImage"}},
                ),
            ]
        if args.topic_arn is not None:
            statements.append(allow("Notify", ["sns:Publish"], args.topic_arn))

        self.function = LambdaFunction(
            f"{name}-lambda",
            LambdaFunctionArgs(
                source="interruption_handler",
                description="spotyard: drain instances Spot takes back",
                statements=statements,
                settings=pulumi.Output.all(args.zone_id, *[_fleet_settings(f) for f in args.fleets]).apply(
                    lambda values: InterruptionHandlerSettings(
                        stack=args.stack_tag,
                        fleets=dict(values[1:]),
                        zone=Zone(id=values[0], name=args.zone_name or "", ttl=args.ttl) if values[0] else None,
                    )
                ),
                variables={TOPIC_VARIABLE: args.topic_arn if args.topic_arn is not None else ""},
                triggers=[
                    Trigger(
                        "notices",
                        event_pattern=NOTICES,
                        description="Spot interruption warnings and rebalance recommendations",
                    )
                ],
                alarm_topic_arn=args.topic_arn,
                timeout_seconds=60,
                iam=args.iam,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"functionArn": self.function.function.arn})


def _fleet_settings(fleet: InterruptedFleet) -> pulumi.Output[tuple[str, settings.InterruptedFleet]]:
    return pulumi.Output.from_input(fleet.capacity_target).apply(
        lambda target: (
            fleet.name,
            settings.InterruptedFleet(
                engine=fleet.engine,
                capacity_target=target,
                decrement_capacity=fleet.decrement_capacity,
                on_rebalance=fleet.on_rebalance,
                target_groups=tuple(
                    settings.TargetGroup(arn=g.arn, target_type=g.target_type) for g in fleet.target_groups
                ),
                image_role_tag=fleet.image_role_tag,
            ),
        )
    )
