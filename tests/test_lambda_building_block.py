"""The LambdaFunction building block and the harness that tests every Lambda through it:
bundle, runtime, role, logs, failures queue, alarm, triggers; and the IAM check itself."""

from __future__ import annotations

import json
import shutil

import pulumi
import pulumi_aws as aws
import pytest

from components import lambda_function
from components.iam import allow
from components.lambda_function import LambdaFunction, LambdaFunctionArgs, QueueDelivery, Trigger
from tests.conftest import subscribe
from tests.harness.iam import IamAudit, Policy, Target
from tests.harness.lambdas import deployed_lambda

PROBE = '''"""A probe Lambda for the building block's tests."""
import os

from spotyard_lambda import aws, log


def handler(event, context):
    aws.client("sns").publish(TopicArn=os.environ["TOPIC_ARN"], Message="probe")
    if event.get("describe"):
        aws.client("ec2").describe_instances()
    log.info("probe.done", request=context.aws_request_id)
    return {"stack": os.environ["SPOTYARD_STACK"]}
'''


@pytest.fixture
def probe_source(tmp_path, monkeypatch):
    root = tmp_path / "lambdas"
    (root / "probe").mkdir(parents=True)
    (root / "probe" / "handler.py").write_text(PROBE)
    (root / "probe" / "__pycache__").mkdir()
    (root / "probe" / "__pycache__" / "stale.py").write_text("raise SystemExit")
    shutil.copytree(lambda_function.LAMBDAS_DIR / "spotyard_lambda", root / "spotyard_lambda")
    monkeypatch.setattr(lambda_function, "LAMBDAS_DIR", root)
    return root


def probe_program(statements_for, queued: QueueDelivery | None = None):
    def program():
        provider = aws.Provider("aws", region="ap-northeast-1")
        opts = pulumi.ResourceOptions(provider=provider)
        topic = aws.sns.Topic("alerts", opts=opts)
        LambdaFunction(
            "probe",
            LambdaFunctionArgs(
                source="probe",
                description="probe",
                statements=statements_for(topic),
                variables={"TOPIC_ARN": topic.arn},
                triggers=[
                    Trigger("tick", schedule_expression="rate(5 minutes)"),
                    Trigger("events", event_pattern={"source": ["aws.ec2"]}, queue=queued),
                ],
                alarm_topic_arn=topic.arn,
            ),
            opts=pulumi.ResourceOptions(providers=[provider]),
        )

    return program


def scoped(topic):
    return [allow("Publish", ["sns:Publish"], topic.arn), allow("Read", ["ec2:DescribeInstances"], "*")]


@pytest.fixture
def probe(deploy, probe_source):
    return deploy({}, program=probe_program(scoped))


def test_function_runs_python_313_on_arm64_with_json_logs(probe):
    function = probe.one("aws:lambda/function:Function", "probe-function")
    inputs = function.inputs
    assert (inputs["runtime"], inputs["architectures"], inputs["handler"]) == (
        "python3.13",
        ["arm64"],
        "handler.handler",
    )
    logs = probe.one("aws:cloudwatch/logGroup:LogGroup", "probe-logs")
    assert logs.inputs["retentionInDays"] == 30 and logs.inputs["name"] == "/spotyard/spotyard-dev/probe"
    assert inputs["loggingConfig"] == {
        "logFormat": "JSON",
        "logGroup": logs.outputs["name"],
        "applicationLogLevel": "INFO",
        "systemLogLevel": "WARN",
    }
    assert inputs["environment"]["variables"]["SPOTYARD_STACK"] == "spotyard/dev"
    assert all(child.name.startswith("probe-") for child in probe.children(probe.named("probe")))


def test_bundle_is_the_function_directory_and_the_shared_package(probe, probe_source):
    archive = probe.one("aws:lambda/function:Function", "probe-function").inputs["code"]
    assert "handler.py" in archive.assets
    assert {"spotyard_lambda/aws.py", "spotyard_lambda/log.py", "spotyard_lambda/events.py"} <= set(archive.assets)
    assert not [name for name in archive.assets if "__pycache__" in name]
    assert archive.assets["handler.py"].path == str(probe_source / "probe" / "handler.py")


def test_bundles_are_anchored_on_the_repository():
    from tests.conftest import ROOT

    assert lambda_function.LAMBDAS_DIR == ROOT / "lambdas"


def test_role_gets_its_statements_plus_its_own_logs_and_failures(probe):
    policy = json.loads(probe.one("aws:iam/rolePolicy:RolePolicy", "probe-policy").inputs["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    topic = probe.one("aws:sns/topic:Topic", "alerts")
    assert by_sid["Publish"]["Resource"] == topic.outputs["arn"]
    logs = probe.one("aws:cloudwatch/logGroup:LogGroup", "probe-logs")
    assert by_sid["PlatformLogs"]["Resource"] == f"{logs.outputs['arn']}:*"
    failures = probe.one("aws:sqs/queue:Queue", "probe-failures")
    assert by_sid["PlatformFailures"] == {
        "Sid": "PlatformFailures",
        "Effect": "Allow",
        "Action": ["sqs:SendMessage"],
        "Resource": failures.outputs["arn"],
    }
    role = probe.one("aws:iam/role:Role", "probe-role")
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "lambda.amazonaws.com"
    }


def test_failed_events_go_to_an_encrypted_queue_and_errors_alarm(probe):
    failures = probe.one("aws:sqs/queue:Queue", "probe-failures")
    assert failures.inputs["sqsManagedSseEnabled"] is True
    invoke_config = probe.one("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", "probe-async")
    assert invoke_config.inputs["destinationConfig"]["onFailure"]["destination"] == failures.outputs["arn"]
    alarm = probe.one("aws:cloudwatch/metricAlarm:MetricAlarm", "probe-errors")
    function = probe.one("aws:lambda/function:Function", "probe-function")
    topic = probe.one("aws:sns/topic:Topic", "alerts")
    assert (alarm.inputs["namespace"], alarm.inputs["metricName"]) == ("AWS/Lambda", "Errors")
    assert alarm.inputs["dimensions"] == {"FunctionName": function.outputs["name"]}
    assert alarm.inputs["alarmActions"] == [topic.outputs["arn"]]


def test_each_trigger_is_a_rule_a_target_and_a_permission(probe):
    function = probe.one("aws:lambda/function:Function", "probe-function")
    tick = probe.one("aws:cloudwatch/eventRule:EventRule", "probe-tick")
    assert tick.inputs["scheduleExpression"] == "rate(5 minutes)"
    events = probe.one("aws:cloudwatch/eventRule:EventRule", "probe-events")
    assert json.loads(events.inputs["eventPattern"]) == {"source": ["aws.ec2"]}
    for rule in (tick, events):
        target = probe.one("aws:cloudwatch/eventTarget:EventTarget", f"{rule.name}-target")
        assert (target.inputs["rule"], target.inputs["arn"]) == (rule.outputs["name"], function.outputs["arn"])
        permission = probe.one("aws:lambda/permission:Permission", f"{rule.name}-permission")
        assert permission.inputs["sourceArn"] == rule.outputs["arn"]
        assert permission.inputs["principal"] == "events.amazonaws.com"


def test_bundled_handler_runs_with_the_stack_environment_under_the_iam_check(probe, tmp_path):
    audit = IamAudit()
    function = deployed_lambda(probe, "probe", tmp_path, audit)
    assert function.invoke({"describe": True}) == {"stack": "spotyard/dev"}
    assert function.invoke({}) == {"stack": "spotyard/dev"}
    assert audit.exercised["probe"] == {"sns:Publish", "ec2:DescribeInstances"}
    assert audit.unexercised() == {"probe": set()}


def test_iam_check_fails_a_call_the_role_does_not_allow(deploy, probe_source, tmp_path):
    run = deploy({}, program=probe_program(lambda topic: [allow("Publish", ["sns:Publish"], topic.arn)]))
    function = deployed_lambda(run, "probe", tmp_path, IamAudit())
    with pytest.raises(AssertionError, match="ec2:DescribeInstances on \\*"):
        function.invoke({"describe": True})


def test_iam_check_reports_granted_actions_no_test_exercised(probe, tmp_path):
    audit = IamAudit()
    deployed_lambda(probe, "probe", tmp_path, audit).invoke({})
    assert audit.unexercised() == {"probe": {"ec2:DescribeInstances"}}


def test_iam_check_fails_resource_star_for_resource_scoped_actions(deploy, probe_source, tmp_path):
    run = deploy({}, program=probe_program(lambda topic: [allow("Publish", ["sns:Publish"], "*")]))
    with pytest.raises(AssertionError, match="grants Resource '\\*' for resource-scoped actions: \\['sns:Publish'\\]"):
        deployed_lambda(run, "probe", tmp_path, IamAudit()).invoke({})


def test_policy_conditions_on_resource_tags_are_evaluated():
    policy = Policy(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["ec2:CreateTags"],
                    "Resource": "arn:aws:ec2:*:*:instance/*",
                    "Condition": {"StringEquals": {"ec2:ResourceTag/spotyard:stack": "spotyard/dev"}},
                }
            ]
        }
    )
    ours = Target("arn:aws:ec2:r:1:instance/i-1", {"ec2:ResourceTag/spotyard:stack": "spotyard/dev"})
    theirs = Target("arn:aws:ec2:r:1:instance/i-2", {"ec2:ResourceTag/spotyard:stack": "other/dev"})
    assert policy.allows("ec2:CreateTags", ours) and not policy.allows("ec2:CreateTags", theirs)
    assert not policy.allows("ec2:DeleteTags", ours)
    with pytest.raises(AssertionError, match="knows no value of ec2:ResourceTag/spotyard:stack"):
        policy.allows("ec2:CreateTags", Target("arn:aws:ec2:r:1:instance/i-3"))


def test_explicit_deny_wins():
    policy = Policy(
        {
            "Statement": [
                {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
                {"Effect": "Deny", "Action": "sqs:DeleteQueue", "Resource": "arn:aws:sqs:*:*:keep"},
            ]
        }
    )
    assert policy.allows("sqs:DeleteQueue", Target("arn:aws:sqs:r:1:other"))
    assert not policy.allows("sqs:DeleteQueue", Target("arn:aws:sqs:r:1:keep"))


def test_moto_sees_the_calls_the_handler_made(probe, tmp_path):
    inbox = subscribe(probe.one("aws:sns/topic:Topic", "alerts").outputs["arn"])
    deployed_lambda(probe, "probe", tmp_path).invoke({})
    (message,) = inbox()
    assert message["Message"] == "probe"


def test_a_queued_trigger_delivers_its_events_in_batches_through_an_encrypted_queue(deploy, probe_source):
    run = deploy(
        {},
        program=probe_program(
            scoped, QueueDelivery(batch_size=50, batching_window_seconds=10, maximum_concurrency=3, max_receive_count=4)
        ),
    )
    function = run.one("aws:lambda/function:Function", "probe-function")
    rule = run.one("aws:cloudwatch/eventRule:EventRule", "probe-events")
    queue = run.one("aws:sqs/queue:Queue", "probe-events-queue")
    failures = run.one("aws:sqs/queue:Queue", "probe-failures")
    assert queue.inputs["sqsManagedSseEnabled"] is True
    assert queue.inputs["visibilityTimeoutSeconds"] == 6 * function.inputs["timeout"]
    assert json.loads(queue.inputs["redrivePolicy"]) == {
        "deadLetterTargetArn": failures.outputs["arn"],
        "maxReceiveCount": 4,
    }
    assert (
        run.one("aws:cloudwatch/eventTarget:EventTarget", "probe-events-target").inputs["arn"] == queue.outputs["arn"]
    )
    (statement,) = json.loads(run.one("aws:sqs/queuePolicy:QueuePolicy", "probe-events-queue-policy").inputs["policy"])[
        "Statement"
    ]
    assert (statement["Principal"], statement["Action"], statement["Resource"]) == (
        {"Service": "events.amazonaws.com"},
        "sqs:SendMessage",
        queue.outputs["arn"],
    )
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule.outputs["arn"]}}
    mapping = run.one("aws:lambda/eventSourceMapping:EventSourceMapping", "probe-events-batches")
    assert (mapping.inputs["eventSourceArn"], mapping.inputs["functionName"]) == (
        queue.outputs["arn"],
        function.outputs["arn"],
    )
    assert (
        mapping.inputs["batchSize"],
        mapping.inputs["maximumBatchingWindowInSeconds"],
        mapping.inputs["scalingConfig"],
        mapping.inputs["functionResponseTypes"],
    ) == (50, 10, {"maximumConcurrency": 3}, ["ReportBatchItemFailures"])
    assert [p.name for p in run.of_type("aws:lambda/permission:Permission")] == ["probe-tick-permission"]
    policy = json.loads(run.one("aws:iam/rolePolicy:RolePolicy", "probe-policy").inputs["policy"])
    reads = next(s for s in policy["Statement"] if s["Sid"] == "PlatformReadTriggerQueues")
    assert reads["Resource"] == [queue.outputs["arn"]] and sorted(reads["Action"]) == [
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
    ]
    alarm = run.one("aws:cloudwatch/metricAlarm:MetricAlarm", "probe-events-dead-letters")
    assert alarm.inputs["dimensions"] == {"QueueName": failures.outputs["name"]}


def test_triggers_without_a_queue_make_no_queue(probe):
    assert [q.name for q in probe.of_type("aws:sqs/queue:Queue")] == ["probe-failures"]
    assert not probe.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")
    policy = json.loads(probe.one("aws:iam/rolePolicy:RolePolicy", "probe-policy").inputs["policy"])
    assert "PlatformReadTriggerQueues" not in {s["Sid"] for s in policy["Statement"]}


def test_settings_beyond_lambdas_4_kb_of_environment_fail_the_deploy_naming_the_function():
    from spotyard_lambda.settings import DnsRegistrarSettings, NamedFleet

    def settings(fleets: int) -> DnsRegistrarSettings:
        named = {f"fleet-{n:03}": NamedFleet(elastic_ip=f"eipalloc-{n:017}") for n in range(fleets)}
        return DnsRegistrarSettings(stack="spotyard/dev", fleets=named, zone=None)

    others = {"SPOTYARD_STACK": "spotyard/dev", "TOPIC_ARN": "arn:aws:sns:ap-northeast-1:123456789012:alerts"}
    assert lambda_function._encode("dns", settings(10), "spotyard/dev", others) == settings(10).encode()
    with pytest.raises(pulumi.RunError, match=r"the dns Lambda's settings take (\d+) bytes of environment") as error:
        lambda_function._encode("dns", settings(100), "spotyard/dev", others)
    every = {**others, "SPOTYARD_SETTINGS": settings(100).encode()}  # names and values, all counted
    assert f"take {sum(len(k) + len(v) for k, v in every.items())} bytes" in str(error.value)
