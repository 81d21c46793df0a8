"""LambdaFunction: the building block every spotyard Lambda is made of.

Bundles `lambdas/<source>/` with the shared `lambdas/spotyard_lambda/` package, runs it on
python3.13/arm64 under its own role (only the statements it is given, plus writing its own
logs and failures), keeps JSON logs in a log group with retention, sends the events it
failed on to an SQS queue, alarms on its errors, and wires its EventBridge triggers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from components.iam import allow, policy_document, stack_role
from spotyard.config import IamConfig

LAMBDAS_DIR = Path(__file__).resolve().parent.parent / "lambdas"
SHARED_PACKAGE = "spotyard_lambda"
# Statements the Lambda service itself exercises (logging, failure destination), not the handler.
PLATFORM_SID_PREFIX = "Platform"


@dataclass
class Trigger:
    """An EventBridge rule that invokes the function: an event pattern or a schedule."""

    role: str
    event_pattern: dict[str, Any] | None = None
    schedule_expression: str | None = None
    description: str = ""


@dataclass
class LambdaFunctionArgs:
    source: str
    description: str
    statements: list[dict[str, Any]]
    variables: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    triggers: list[Trigger] = field(default_factory=list)
    alarm_topic_arn: pulumi.Input[str] | None = None
    timeout_seconds: int = 60
    memory_mb: int = 256
    log_retention_days: int = 30
    iam: IamConfig = IamConfig()  # the role's path and permissions boundary (spotyard:iam)


def fleets_variable(entries: list[pulumi.Input[tuple[str, dict[str, Any]]]]) -> pulumi.Output[str]:
    """SPOTYARD_FLEETS, {fleet: what this Lambda needs of it} as JSON, as
    `spotyard_lambda.settings.fleets()` reads it; entries may hold outputs."""
    return pulumi.Output.all(*entries).apply(lambda pairs: json.dumps(dict(pairs), sort_keys=True))


def bundle(source: str) -> pulumi.AssetArchive:
    """The function's files at the archive root and the shared package beside them."""
    files = _python_files(LAMBDAS_DIR / source, "")
    files.update(_python_files(LAMBDAS_DIR / SHARED_PACKAGE, f"{SHARED_PACKAGE}/"))
    return pulumi.AssetArchive(files)


def _python_files(directory: Path, prefix: str) -> dict[str, pulumi.FileAsset]:
    if not (directory / "__init__.py").exists() and not (directory / "handler.py").exists():
        raise pulumi.RunError(f"no Lambda source in {directory}")
    return {f"{prefix}{path.relative_to(directory).as_posix()}": pulumi.FileAsset(str(path))
            for path in sorted(directory.rglob("*.py")) if "__pycache__" not in path.parts}


class LambdaFunction(pulumi.ComponentResource):
    function: aws.lambda_.Function
    failures: aws.sqs.Queue

    def __init__(self, name: str, args: LambdaFunctionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotyard:index:LambdaFunction", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stack = f"{pulumi.get_project()}-{pulumi.get_stack()}"

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", name=f"/spotyard/{stack}/{name}", retention_in_days=args.log_retention_days, opts=child)
        self.failures = aws.sqs.Queue(
            f"{name}-failures", sqs_managed_sse_enabled=True, message_retention_seconds=14 * 24 * 3600, opts=child)

        role = stack_role(f"{name}-role", service="lambda.amazonaws.com", description=f"spotyard {name} Lambda",
                          iam=args.iam, opts=child)
        platform = [
            allow(f"{PLATFORM_SID_PREFIX}Logs", ["logs:CreateLogStream", "logs:PutLogEvents"],
                  log_group.arn.apply(lambda arn: f"{arn}:*")),
            allow(f"{PLATFORM_SID_PREFIX}Failures", ["sqs:SendMessage"], self.failures.arn),
        ]
        self.policy = aws.iam.RolePolicy(f"{name}-policy", role=role.id,
                                         policy=policy_document(args.statements + platform), opts=child)

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
            environment=aws.lambda_.FunctionEnvironmentArgs(variables={
                "SPOTYARD_STACK": f"{pulumi.get_project()}/{pulumi.get_stack()}",
                **args.variables,
            }),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="JSON", log_group=log_group.name,
                application_log_level="INFO", system_log_level="WARN"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy, log_group]),
        )
        aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-async",
            function_name=self.function.name,
            maximum_retry_attempts=2,
            maximum_event_age_in_seconds=3600,
            destination_config=aws.lambda_.FunctionEventInvokeConfigDestinationConfigArgs(
                on_failure=aws.lambda_.FunctionEventInvokeConfigDestinationConfigOnFailureArgs(
                    destination=self.failures.arn)),
            opts=child)
        aws.cloudwatch.MetricAlarm(
            f"{name}-errors",
            alarm_description=f"spotyard {name} Lambda failed; the events are in its failures queue",
            namespace="AWS/Lambda", metric_name="Errors", statistic="Sum",
            dimensions={"FunctionName": self.function.name},
            period=300, evaluation_periods=1, threshold=1, comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[args.alarm_topic_arn] if args.alarm_topic_arn else [],
            ok_actions=[args.alarm_topic_arn] if args.alarm_topic_arn else [],
            opts=child)
        for trigger in args.triggers:
            self._trigger(name, trigger)

        self.register_outputs({"functionArn": self.function.arn, "failuresQueueUrl": self.failures.url})

    def _trigger(self, name: str, trigger: Trigger) -> None:
        child = pulumi.ResourceOptions(parent=self)
        rule = aws.cloudwatch.EventRule(
            f"{name}-{trigger.role}",
            description=trigger.description or f"spotyard {name}: {trigger.role}",
            event_pattern=pulumi.Output.json_dumps(trigger.event_pattern) if trigger.event_pattern else None,
            schedule_expression=trigger.schedule_expression,
            opts=child)
        aws.cloudwatch.EventTarget(
            f"{name}-{trigger.role}-target", rule=rule.name, arn=self.function.arn,
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_event_age_in_seconds=3600, maximum_retry_attempts=10),
            opts=child)
        aws.lambda_.Permission(
            f"{name}-{trigger.role}-permission", action="lambda:InvokeFunction", function=self.function.name,
            principal="events.amazonaws.com", source_arn=rule.arn, opts=child)
