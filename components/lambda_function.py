"""LambdaFunction: the building block every spotyard Lambda is made of.

Bundles `lambdas/<source>/` with the shared `lambdas/spotyard_lambda/` package, runs it on
python3.13/arm64 under its own role (only the statements it is given, plus writing its own
logs and failures), keeps JSON logs in a log group with retention, sends the events it
failed on to an SQS queue, alarms on its errors, and wires its EventBridge triggers: each
rule invokes the function directly, or (`Trigger.queue`) sends its events to an encrypted
SQS queue that the function reads in batches.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
from spotyard_lambda.names import stack_tag_value
from spotyard_lambda.settings import SETTINGS_VARIABLE, STACK_VARIABLE, LambdaSettings

from components.args import RoleArgs
from components.iam import allow, policy_document, stack_role

LAMBDAS_DIR = Path(__file__).resolve().parent.parent / "lambdas"
SHARED_PACKAGE = "spotyard_lambda"
# Statements the Lambda service itself exercises (logging, failure destination, reading a
# trigger's queue), not the handler.
PLATFORM_SID_PREFIX = "Platform"
# Lambda's advice for a queue that feeds a function: a visibility timeout of at least six
# times the function's timeout (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html).
VISIBILITY_TIMEOUTS_PER_FUNCTION_TIMEOUT = 6
# "The total size of the set can be no more than 4 KB" (Lambda developer guide, environment
# variables; Lambda quotas: 4 KB for all of a function's environment variables, combined).
ENVIRONMENT_LIMIT_BYTES = 4096


@dataclass
class QueueDelivery:
    """The rule's events go to an SQS queue and reach the function in batches: up to
    `batch_size` messages gathered for up to `batching_window_seconds`, by at most
    `maximum_concurrency` invocations at a time (the event source mapping's scaling config,
    at least 2); the function answers with the messages it failed on
    (`ReportBatchItemFailures`), which come back until the `max_receive_count`-th receive,
    then go to the failures queue.
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html,
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html"""

    batch_size: int = 100
    batching_window_seconds: int = 20
    maximum_concurrency: int = 2
    max_receive_count: int = 5


@dataclass
class Trigger:
    """An EventBridge rule that invokes the function: an event pattern or a schedule;
    through a queue when `queue` is given."""

    role: str
    event_pattern: dict[str, Any] | None = None
    schedule_expression: str | None = None
    description: str = ""
    queue: QueueDelivery | None = None


@dataclass
class LambdaFunctionArgs:
    source: str
    description: str
    statements: list[dict[str, Any]]
    settings: pulumi.Input[LambdaSettings] | None = None  # what the Lambda reads with from_environment()
    variables: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    triggers: list[Trigger] = field(default_factory=list)
    alarm_topic_arn: pulumi.Input[str] | None = None
    timeout_seconds: int = 60
    memory_mb: int = 256
    log_retention_days: int = 30
    iam: RoleArgs = RoleArgs()  # the role's path and permissions boundary (spotyard:iam)


def _encode(function: str, settings: LambdaSettings, stack: str, other_variables: dict[str, str]) -> str:
    """SPOTYARD_SETTINGS; the settings' stack is the one SPOTYARD_STACK names, and with the other
    variables it fits Lambda's 4 KB (a clear error at deploy, before Lambda refuses it)."""
    if settings.stack != stack:
        raise pulumi.RunError(f"{type(settings).__name__} of stack {settings.stack} given to a Lambda of {stack}")
    encoded = settings.encode()
    variables = {**other_variables, SETTINGS_VARIABLE: encoded}
    size = sum(len(key.encode()) + len(value.encode()) for key, value in variables.items())
    if size > ENVIRONMENT_LIMIT_BYTES:
        raise pulumi.RunError(
            f"the {function} Lambda's settings take {size} bytes of environment, more than Lambda's "
            f"{ENVIRONMENT_LIMIT_BYTES}: split the stack (fewer fleets or jobs per stack)"
        )
    return encoded


def bundle(source: str) -> pulumi.AssetArchive:
    """The function's files at the archive root and the shared package beside them."""
    files = _python_files(LAMBDAS_DIR / source, "")
    files.update(_python_files(LAMBDAS_DIR / SHARED_PACKAGE, f"{SHARED_PACKAGE}/"))
    return pulumi.AssetArchive(files)


def _python_files(directory: Path, prefix: str) -> dict[str, pulumi.FileAsset]:
    if not (directory / "__init__.py").exists() and not (directory / "handler.py").exists():
        raise pulumi.RunError(f"no Lambda source in {directory}")
    return {
        f"{prefix}{path.relative_to(directory).as_posix()}": pulumi.FileAsset(str(path))
        for path in sorted(directory.rglob("*.py"))
        if "__pycache__" not in path.parts
    }


class LambdaFunction(pulumi.ComponentResource):
    function: aws.lambda_.Function
    failures: aws.sqs.Queue

    def __init__(self, name: str, args: LambdaFunctionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotyard:index:LambdaFunction", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stack = stack_tag_value(pulumi.get_project(), pulumi.get_stack())

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/spotyard/{pulumi.get_project()}-{pulumi.get_stack()}/{name}",
            retention_in_days=args.log_retention_days,
            opts=child,
        )
        self.failures = aws.sqs.Queue(
            f"{name}-failures", sqs_managed_sse_enabled=True, message_retention_seconds=14 * 24 * 3600, opts=child
        )
        self.queues = {trigger.role: self._queue(name, trigger, args) for trigger in args.triggers if trigger.queue}

        role = stack_role(
            f"{name}-role",
            service="lambda.amazonaws.com",
            description=f"spotyard {name} Lambda",
            iam=args.iam,
            opts=child,
        )
        platform = [
            allow(
                f"{PLATFORM_SID_PREFIX}Logs",
                ["logs:CreateLogStream", "logs:PutLogEvents"],
                log_group.arn.apply(lambda arn: f"{arn}:*"),
            ),
            allow(f"{PLATFORM_SID_PREFIX}Failures", ["sqs:SendMessage"], self.failures.arn),
        ]
        if self.queues:
            platform.append(
                allow(
                    f"{PLATFORM_SID_PREFIX}ReadTriggerQueues",
                    ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                    [queue.arn for queue in self.queues.values()],
                )
            )
        self.policy = aws.iam.RolePolicy(
            f"{name}-policy", role=role.id, policy=policy_document(args.statements + platform), opts=child
        )

        plain_variables = {STACK_VARIABLE: stack, **args.variables}
        self.function = aws.lambda_.Function(
            f"{name}-function",
            description=args.description,
            runtime="python3.13",
            architectures=["arm64"],
            handler="handler.handler",
            code=bundle(args.source),
            role=role.arn,
            timeout=args.timeout_seconds,
            memory_size=args.memory_mb,
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={
                    **plain_variables,
                    **(
                        {
                            SETTINGS_VARIABLE: pulumi.Output.all(args.settings, plain_variables).apply(
                                lambda resolved: _encode(name, resolved[0], stack, resolved[1])
                            )
                        }
                        if args.settings is not None
                        else {}
                    ),
                }
            ),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="JSON", log_group=log_group.name, application_log_level="INFO", system_log_level="WARN"
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy, log_group]),
        )
        aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-async",
            function_name=self.function.name,
            maximum_retry_attempts=2,
            maximum_event_age_in_seconds=3600,
            destination_config=aws.lambda_.FunctionEventInvokeConfigDestinationConfigArgs(
                on_failure=aws.lambda_.FunctionEventInvokeConfigDestinationConfigOnFailureArgs(
                    destination=self.failures.arn
                )
            ),
            opts=child,
        )
        aws.cloudwatch.MetricAlarm(
            f"{name}-errors",
            alarm_description=f"spotyard {name} Lambda failed; the events are in its failures queue",
            namespace="AWS/Lambda",
            metric_name="Errors",
            statistic="Sum",
            dimensions={"FunctionName": self.function.name},
            period=300,
            evaluation_periods=1,
            threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[args.alarm_topic_arn] if args.alarm_topic_arn else [],
            ok_actions=[args.alarm_topic_arn] if args.alarm_topic_arn else [],
            opts=child,
        )
        for trigger in args.triggers:
            self._trigger(name, trigger, args.alarm_topic_arn)

        self.register_outputs({"functionArn": self.function.arn, "failuresQueueUrl": self.failures.url})

    def _queue(self, name: str, trigger: Trigger, args: LambdaFunctionArgs) -> aws.sqs.Queue:
        """The trigger's queue (encrypted); what fails `max_receive_count` times goes to the failures queue."""
        delivery = trigger.queue
        assert delivery is not None
        return aws.sqs.Queue(
            f"{name}-{trigger.role}-queue",
            sqs_managed_sse_enabled=True,
            visibility_timeout_seconds=VISIBILITY_TIMEOUTS_PER_FUNCTION_TIMEOUT * args.timeout_seconds,
            message_retention_seconds=4 * 24 * 3600,
            redrive_policy=self.failures.arn.apply(
                lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": delivery.max_receive_count})
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _trigger(self, name: str, trigger: Trigger, alarm_topic_arn: pulumi.Input[str] | None) -> None:
        child = pulumi.ResourceOptions(parent=self)
        rule = aws.cloudwatch.EventRule(
            f"{name}-{trigger.role}",
            description=trigger.description or f"spotyard {name}: {trigger.role}",
            event_pattern=pulumi.Output.json_dumps(trigger.event_pattern) if trigger.event_pattern else None,
            schedule_expression=trigger.schedule_expression,
            opts=child,
        )
        queue = self.queues.get(trigger.role)
        aws.cloudwatch.EventTarget(
            f"{name}-{trigger.role}-target",
            rule=rule.name,
            arn=queue.arn if queue else self.function.arn,
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_event_age_in_seconds=3600, maximum_retry_attempts=10
            ),
            opts=child,
        )
        if queue is None:
            aws.lambda_.Permission(
                f"{name}-{trigger.role}-permission",
                action="lambda:InvokeFunction",
                function=self.function.name,
                principal="events.amazonaws.com",
                source_arn=rule.arn,
                opts=child,
            )
            return
        delivery = trigger.queue
        assert delivery is not None
        aws.sqs.QueuePolicy(
            f"{name}-{trigger.role}-queue-policy",
            queue_url=queue.url,
            policy=policy_document(
                [
                    {
                        "Sid": "FromItsRule",
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": queue.arn,
                        "Condition": {"ArnEquals": {"aws:SourceArn": rule.arn}},
                    }
                ]
            ),
            opts=child,
        )
        aws.lambda_.EventSourceMapping(
            f"{name}-{trigger.role}-batches",
            event_source_arn=queue.arn,
            function_name=self.function.arn,
            batch_size=delivery.batch_size,
            maximum_batching_window_in_seconds=delivery.batching_window_seconds,
            scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(
                maximum_concurrency=delivery.maximum_concurrency
            ),
            function_response_types=["ReportBatchItemFailures"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy]),
        )
        dead_letter_alarm(
            f"{name}-{trigger.role}-dead-letters",
            queue_name=self.failures.name,
            description=f"spotyard {name}: {trigger.role} events failed {delivery.max_receive_count} times "
            f"are in its failures queue",
            topic_arn=alarm_topic_arn,
            opts=child,
        )


def dead_letter_alarm(
    name: str,
    *,
    queue_name: pulumi.Input[str],
    description: str,
    topic_arn: pulumi.Input[str] | None,
    opts: pulumi.ResourceOptions,
) -> aws.cloudwatch.MetricAlarm:
    """An alarm, to `topic_arn`, as soon as a message lands in the dead-letter queue `queue_name`."""
    return aws.cloudwatch.MetricAlarm(
        name,
        alarm_description=description,
        namespace="AWS/SQS",
        metric_name="ApproximateNumberOfMessagesVisible",
        statistic="Maximum",
        dimensions={"QueueName": queue_name},
        period=300,
        evaluation_periods=1,
        threshold=1,
        comparison_operator="GreaterThanOrEqualToThreshold",
        treat_missing_data="notBreaching",
        alarm_actions=[topic_arn] if topic_arn else [],
        opts=opts,
    )
