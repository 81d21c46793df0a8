"""QueueAutoscaler: a fleet's job queue and the Lambda that sizes the fleet from its backlog
every minute, down to zero, with on-demand capacity only while Spot is short.

The `<fleet>-jobs` queue (encrypted, long polling) and its dead-letter queue (after five
receives, alarmed), the fleet's instances allowed to receive, delete and extend messages
on that queue only, and the `queue_autoscaler` Lambda with its state in an SSM parameter.
"""

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from spotyard_lambda.names import AUTOSCALER_PARAMETER, FLEET_TAG, STACK_TAG, fleet_parameter, tag_condition
from spotyard_lambda.settings import TOPIC_VARIABLE, QueueAutoscalerSettings

from components.args import AccountArgs, RoleArgs, as_args
from components.iam import allow, policy_document, stack_role
from components.lambda_function import LambdaFunction, LambdaFunctionArgs, Trigger, dead_letter_alarm

EVERY_MINUTE = "rate(1 minute)"
# The warm-up schedule's event, as the queue_autoscaler handler parses it; EventBridge Scheduler
# fills in the <aws.scheduler.*> context attributes when it invokes the function
# (https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html).
WARM_UP_EVENT = {
    "version": "0",
    "id": "<aws.scheduler.execution-id>",
    "source": "spotyard.warm-up",
    "detail-type": "Warm Up",
    "time": "<aws.scheduler.scheduled-time>",
}
MAX_RECEIVES = 5


@dataclass
class WarmUpArgs:
    """The fleet is held at `capacity` or more for `minutes` from each `schedule` time."""

    schedule: str  # cron()/rate()/at() expression
    timezone: str  # IANA name
    capacity: int
    minutes: int


@dataclass
class QueueAutoscalerArgs:
    fleet: str
    engine: str  # asg | spot-fleet
    capacity_target: pulumi.Input[str]  # group name or Spot Fleet request id
    capacity_target_arn: pulumi.Input[str]
    instance_role_name: pulumi.Input[str]  # the fleet's instances may work the queue
    stack_tag: str  # the spotyard:stack tag value of the fleet's instances
    account: AccountArgs
    min_capacity: int
    max_capacity: int
    messages_per_instance: int  # backlog one instance works off
    scale_in_cooldown_seconds: int  # the last instance stays this long after the queue empties
    visibility_timeout_seconds: int  # how long a received job stays hidden
    boot_seconds: int  # launch to first job: younger instances count as on their way
    on_demand_fallback: bool | None = False  # on-demand capacity while no Spot pool can be filled
    warm_up: WarmUpArgs | None = None
    topic_arn: pulumi.Input[str] | None = None  # notifications and alarms
    iam: RoleArgs | None = RoleArgs()


class QueueAutoscaler(pulumi.ComponentResource):
    queue_url: pulumi.Output[str]
    queue_arn: pulumi.Output[str]

    def __init__(self, name: str, args: QueueAutoscalerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotyard:index:QueueAutoscaler", name, None, opts)
        args = as_args(QueueAutoscalerArgs, args)
        fleet = args.fleet
        child = pulumi.ResourceOptions(parent=self)
        dead_letters = aws.sqs.Queue(
            f"{name}-dlq", sqs_managed_sse_enabled=True, message_retention_seconds=14 * 24 * 3600, opts=child
        )
        jobs = aws.sqs.Queue(
            f"{name}-queue",
            sqs_managed_sse_enabled=True,
            receive_wait_time_seconds=20,
            visibility_timeout_seconds=args.visibility_timeout_seconds,
            message_retention_seconds=4 * 24 * 3600,
            redrive_policy=dead_letters.arn.apply(
                lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": MAX_RECEIVES})
            ),
            opts=child,
        )
        self.queue_url, self.queue_arn = jobs.url, jobs.arn
        dead_letter_alarm(
            f"{name}-dlq-depth",
            queue_name=dead_letters.name,
            description=f"spotyard {fleet}: jobs failed {MAX_RECEIVES} times are in the dead-letter queue",
            topic_arn=args.topic_arn,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-workers",
            role=args.instance_role_name,
            policy=policy_document(
                [
                    allow(
                        "WorkTheJobQueue",
                        ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:ReceiveMessage"],
                        jobs.arn,
                    )
                ]
            ),
            opts=child,
        )
        state = aws.ssm.Parameter(
            f"{name}-state",
            name=fleet_parameter(pulumi.get_project(), pulumi.get_stack(), fleet, AUTOSCALER_PARAMETER),
            type="String",
            value="{}",
            description=f"spotyard {fleet} autoscaler state (owned by its Lambda)",
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["value"]),
        )

        statements = [
            allow("ReadBacklog", ["sqs:GetQueueAttributes"], jobs.arn),
            allow("KeepState", ["ssm:GetParameter", "ssm:PutParameter"], state.arn),
            allow(
                "PublishMetrics",
                ["cloudwatch:PutMetricData"],
                "*",
                {"StringEquals": {"cloudwatch:namespace": "spotyard"}},
            ),
        ]
        if args.engine == "asg":
            statements += [
                allow("ReadGroup", ["autoscaling:DescribeAutoScalingGroups"], "*"),
                allow("SizeGroup", ["autoscaling:SetDesiredCapacity"], args.capacity_target_arn),
            ]
            # Launch times of the group's members (capacity on its way); Describe* takes no resource.
            statements.append(allow("ReadLaunches", ["ec2:DescribeInstances"], "*"))
            if args.on_demand_fallback:
                statements += [
                    allow("ReadActivities", ["autoscaling:DescribeScalingActivities", "ec2:DescribeInstances"], "*"),
                    # Only the instances distribution is sent (fleets.py): a request naming
                    # the launch template would need ec2:RunInstances, iam:PassRole and
                    # ssm:GetParameters too, which this role is denied on purpose (Auto
                    # Scaling user guide, ec2-auto-scaling-launch-template-permissions).
                    allow("SetOnDemandBase", ["autoscaling:UpdateAutoScalingGroup"], args.capacity_target_arn),
                ]
        else:
            fleet_instances = tag_condition({STACK_TAG: args.stack_tag, FLEET_TAG: fleet})
            statements += [
                allow("ReadFleets", ["ec2:DescribeInstances", "ec2:DescribeSpotFleetRequests"], "*"),
                allow(
                    "SizeFleet",
                    ["ec2:DescribeSpotFleetInstances", "ec2:ModifySpotFleetRequest"],
                    args.capacity_target_arn,
                ),
                allow(
                    "RemoveIdleInstances",
                    ["ec2:TerminateInstances"],
                    args.account.arn("ec2", "instance/*"),
                    fleet_instances,
                ),
            ]
            if args.on_demand_fallback:
                statements.append(
                    allow("ReadFleetHistory", ["ec2:DescribeSpotFleetRequestHistory"], args.capacity_target_arn)
                )
        if args.topic_arn is not None:
            statements.append(allow("Notify", ["sns:Publish"], args.topic_arn))

        function = LambdaFunction(
            f"{name}-autoscaler",
            LambdaFunctionArgs(
                source="queue_autoscaler",
                description=f"spotyard: size fleet {fleet} from its job queue",
                statements=statements,
                settings=pulumi.Output.all(args.capacity_target, jobs.url, state.name).apply(
                    lambda ids: QueueAutoscalerSettings(
                        stack=args.stack_tag,
                        fleet=fleet,
                        engine=args.engine,
                        capacity_target=ids[0],
                        queue_url=ids[1],
                        messages_per_instance=args.messages_per_instance,
                        min_capacity=args.min_capacity,
                        max_capacity=args.max_capacity,
                        scale_in_cooldown_seconds=args.scale_in_cooldown_seconds,
                        boot_seconds=args.boot_seconds,
                        on_demand_fallback=args.on_demand_fallback,
                        state_parameter=ids[2],
                    )
                ),
                variables={TOPIC_VARIABLE: args.topic_arn if args.topic_arn is not None else ""},
                triggers=[
                    Trigger(
                        "every-minute",
                        schedule_expression=EVERY_MINUTE,
                        description=f"size fleet {fleet} from its backlog",
                    )
                ],
                alarm_topic_arn=args.topic_arn,
                iam=args.iam,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        if args.warm_up is not None:
            self._warm_up(name, args, function.function.arn)
        self.register_outputs({"queueUrl": self.queue_url})

    def _warm_up(self, name: str, args: QueueAutoscalerArgs, function_arn: pulumi.Output[str]) -> None:
        """`queue.warmUp`: an EventBridge Scheduler schedule that invokes the autoscaler with a
        warm-up event; its role may invoke that function only."""
        fleet, warm = args.fleet, args.warm_up
        child = pulumi.ResourceOptions(parent=self)
        role = stack_role(
            f"{name}-warm-up-role",
            description=f"spotyard: warm-up schedule of fleet {fleet}",
            service="scheduler.amazonaws.com",
            conditions={"StringEquals": {"aws:SourceAccount": args.account.account_id}},
            iam=args.iam,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-warm-up-policy",
            role=role.id,
            policy=policy_document([allow("StartWarmUp", ["lambda:InvokeFunction"], function_arn)]),
            opts=child,
        )
        event = {**WARM_UP_EVENT, "detail": {"capacity": warm.capacity, "minutes": warm.minutes}}
        aws.scheduler.Schedule(
            f"{name}-warm-up",
            description=f"spotyard: warm fleet {fleet} up to {warm.capacity} for {warm.minutes} minutes",
            schedule_expression=warm.schedule,
            schedule_expression_timezone=warm.timezone,
            flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
            target=aws.scheduler.ScheduleTargetArgs(
                arn=function_arn,
                role_arn=role.arn,
                input=json.dumps(event),
                retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(
                    maximum_event_age_in_seconds=warm.minutes * 60, maximum_retry_attempts=5
                ),
            ),
            opts=child,
        )
