"""ImageKeeper: for fleets with `image.snapshotOnTerminate`, every instance leaving the fleet
is saved as an AMI that the next launch boots from, and old AMIs are swept daily.

On `asg` fleets a termination lifecycle hook holds a leaving instance until its AMI is
registered (at most an hour, then it goes anyway); the interruption handler and
`spotyard stop` start AMIs on any engine. The `image_keeper` Lambda completes the hold,
moves the fleet's AMI parameter, and keeps `image.keep` AMIs per fleet.
"""

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from spotyard_lambda import settings
from spotyard_lambda.names import STACK_TAG, tag_condition
from spotyard_lambda.settings import TOPIC_VARIABLE, ImageKeeperSettings

from components.args import AccountArgs, RoleArgs
from components.iam import allow
from components.lambda_function import LambdaFunction, LambdaFunctionArgs, Trigger

HOLD_SECONDS = 3600
AMI_STATES = {
    "source": ["aws.ec2"],
    "detail-type": ["EC2 AMI State Change"],
    "detail": {"State": ["available", "failed"]},
}


@dataclass
class KeptFleet:
    name: str
    engine: str  # asg | spot-fleet
    capacity_target: pulumi.Input[str]  # group name or Spot Fleet request id
    capacity_target_arn: pulumi.Input[str]
    parameter_name: pulumi.Input[str]  # the SSM parameter naming the fleet's AMI, moved to the newest saved
    parameter_arn: pulumi.Input[str]
    launch_template_id: pulumi.Input[str]
    image_role_tag: str  # saved AMIs are tagged Role=<this>
    keep: int  # saved AMIs kept per fleet


@dataclass
class ImageKeeperArgs:
    stack_tag: str  # the spotyard:stack tag value of the fleets' instances and AMIs
    account: AccountArgs
    fleets: list[KeptFleet]
    topic_arn: pulumi.Input[str] | None = None  # notifications and alarms
    iam: RoleArgs = RoleArgs()


class ImageKeeper(pulumi.ComponentResource):
    def __init__(self, name: str, args: ImageKeeperArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotyard:index:ImageKeeper", name, None, opts)
        env = args.account
        groups = [f for f in args.fleets if f.engine == "asg"]
        for fleet in groups:
            aws.autoscaling.LifecycleHook(
                f"{name}-{fleet.name}-leaving",
                autoscaling_group_name=fleet.capacity_target,
                lifecycle_transition="autoscaling:EC2_INSTANCE_TERMINATING",
                default_result="CONTINUE",
                heartbeat_timeout=HOLD_SECONDS,
                opts=pulumi.ResourceOptions(parent=self),
            )

        ours = tag_condition({STACK_TAG: args.stack_tag})
        images, snapshots = env.arn("ec2", "image/*", account=False), env.arn("ec2", "snapshot/*", account=False)
        statements = [
            allow(
                "Find",
                [
                    "ec2:DescribeImages",
                    "ec2:DescribeInstances",
                    "ec2:DescribeLaunchTemplateVersions",
                    "ec2:DescribeSnapshots",
                ],
                "*",
            ),
            allow("SaveStackInstances", ["ec2:CreateImage"], env.arn("ec2", "instance/*"), ours),
            allow("SaveImages", ["ec2:CreateImage"], [images, snapshots]),
            # The AMI and its snapshots are tagged by CreateImage itself (tag on create).
            allow(
                "TagNewImages",
                ["ec2:CreateTags"],
                [images, snapshots],
                {"StringEquals": {"ec2:CreateAction": "CreateImage"}},
            ),
            allow("TagStackImages", ["ec2:CreateTags"], images, ours),
            allow("RemoveStackImages", ["ec2:DeregisterImage"], images, ours),
            # DeleteSnapshot takes ec2:ResourceTag conditions (Service Authorization Reference,
            # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html):
            # only the stack's snapshots, tagged so by CreateImage.
            allow("RemoveStackSnapshots", ["ec2:DeleteSnapshot"], snapshots, ours),
            allow("FollowTheNewest", ["ssm:GetParameter", "ssm:PutParameter"], [f.parameter_arn for f in args.fleets]),
        ]
        triggers = [
            Trigger("ami-states", event_pattern=AMI_STATES, description="saved AMIs become available"),
            Trigger("sweep", schedule_expression="rate(1 day)", description="keep the newest AMIs only"),
        ]
        if groups:
            statements.append(
                allow(
                    "LetInstancesGo", ["autoscaling:CompleteLifecycleAction"], [f.capacity_target_arn for f in groups]
                )
            )
            triggers.insert(
                0,
                Trigger(
                    "leaving",
                    description="instances leaving an Auto Scaling fleet",
                    event_pattern={
                        "source": ["aws.autoscaling"],
                        "detail-type": ["EC2 Instance-terminate Lifecycle Action"],
                        "detail": {"AutoScalingGroupName": [f.capacity_target for f in groups]},
                    },
                ),
            )
        if args.topic_arn is not None:
            statements.append(allow("Notify", ["sns:Publish"], args.topic_arn))

        LambdaFunction(
            f"{name}-lambda",
            LambdaFunctionArgs(
                source="image_keeper",
                description="spotyard: save leaving instances as AMIs and follow the newest",
                statements=statements,
                settings=pulumi.Output.all(*[_fleet_settings(f) for f in args.fleets]).apply(
                    lambda fleets: ImageKeeperSettings(stack=args.stack_tag, fleets=dict(fleets))
                ),
                variables={TOPIC_VARIABLE: args.topic_arn if args.topic_arn is not None else ""},
                triggers=triggers,
                alarm_topic_arn=args.topic_arn,
                iam=args.iam,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})


def _fleet_settings(fleet: KeptFleet) -> pulumi.Output[tuple[str, settings.KeptFleet]]:
    return pulumi.Output.all(fleet.parameter_name, fleet.launch_template_id).apply(
        lambda ids: (
            fleet.name,
            settings.KeptFleet(
                parameter=ids[0], launch_template_id=ids[1], image_role_tag=fleet.image_role_tag, keep=fleet.keep
            ),
        )
    )
