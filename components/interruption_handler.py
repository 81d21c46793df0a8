"""InterruptionHandler: on the two-minute Spot interruption warning (and, per fleet, on a
rebalance recommendation) the `interruption_handler` Lambda takes the instance out of its
fleet, its target groups and DNS, saves an AMI when configured, and says so on the
notification topic. Its role can act only on this stack's fleets."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from spotyard_lambda import settings
from spotyard_lambda.dns import Zone
from spotyard_lambda.names import DEFAULT_TTL_SECONDS, STACK_TAG, hosted_zone_arn, tag_condition
from spotyard_lambda.settings import TOPIC_VARIABLE, InterruptionHandlerSettings

from components.iam import allow
from components.lambda_function import LambdaFunction, LambdaFunctionArgs, Trigger
from spotyard.config import FleetConfig
from stack.environment import Environment
from stack.target_groups import TargetGroup

NOTICES = {
    "source": ["aws.ec2"],
    "detail-type": ["EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance Recommendation"],
}


@dataclass
class InterruptedFleet:
    config: FleetConfig
    capacity_target: pulumi.Input[str]  # group name or Spot Fleet request id
    capacity_target_arn: pulumi.Input[str]
    target_groups: list[TargetGroup] = field(default_factory=list)


@dataclass
class InterruptionHandlerArgs:
    environment: Environment
    stack_tag: str
    fleets: list[InterruptedFleet]
    zone_id: pulumi.Input[str] | None = None
    zone_name: str | None = None
    ttl: int = DEFAULT_TTL_SECONDS
    topic_arn: pulumi.Input[str] | None = None


class InterruptionHandler(pulumi.ComponentResource):
    def __init__(self, name: str, args: InterruptionHandlerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotyard:index:InterruptionHandler", name, None, opts)
        env = args.environment
        ours = tag_condition({STACK_TAG: args.stack_tag})
        statements = [
            allow("FindInstances", ["ec2:DescribeInstances"], "*"),
            allow("MarkInstances", ["ec2:CreateTags"], env.arn("ec2", "instance/*"), ours),
        ]
        groups = [f.capacity_target_arn for f in args.fleets if f.config.engine == "asg"]
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
        if any(f.config.image.snapshot_on_terminate for f in args.fleets):
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
                iam=env.iam,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"functionArn": self.function.function.arn})


def _fleet_settings(fleet: InterruptedFleet) -> pulumi.Output[tuple[str, settings.InterruptedFleet]]:
    config = fleet.config
    return pulumi.Output.from_input(fleet.capacity_target).apply(
        lambda target: (
            config.name,
            settings.InterruptedFleet(
                engine=config.engine,
                capacity_target=target,
                decrement_capacity=config.interruption.decrement_capacity,
                on_rebalance=config.interruption.on_rebalance,
                target_groups=tuple(
                    settings.TargetGroup(arn=g.arn, target_type=g.target_type) for g in fleet.target_groups
                ),
                image_role_tag=config.image.role_tag if config.image.snapshot_on_terminate else None,
            ),
        )
    )
