"""The interruption handler, through its Lambda as the stack bundles it, with the stack's
environment and role, driven by real-format Spot events; the outcome read back from moto."""

from __future__ import annotations

import json
import time
from collections import Counter

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from tests import events
from tests.conftest import dev_config, subscribe
from tests.harness import sqs_events
from tests.harness.route53 import record_change

ZONE = "spotyard.internal"


@pytest.fixture
def target_groups(aws):
    return {
        "web": aws.target_group("web", deregistration_delay=30),
        "jobs": aws.target_group("jobs", deregistration_delay=60, target_type="ip"),
    }


@pytest.fixture
def config(aws, target_groups):
    aws.own_ami("base", tags={"Role": "base"})
    config = dev_config()
    workbench = config["spotyard:fleets"]["workbench"]
    workbench.update(
        capacity=2,
        maxCapacity=3,
        loadBalancer={"targetGroupArns": [target_groups["web"]]},
        image={"roleTag": "workbench", "fallbackRoleTag": "base", "snapshotOnTerminate": True},
    )
    config["spotyard:fleets"]["workers"]["loadBalancer"] = {"targetGroupArns": [target_groups["jobs"]]}
    return config


@pytest.fixture
def stack(deploy, config):
    return deploy(config)


@pytest.fixture
def handler(stack, lambda_of):
    return lambda_of(stack, "interruptions-lambda")


@pytest.fixture
def inbox(stack):
    """What the notification topic's subscribers receive."""
    return subscribe(stack.outputs["notificationTopicArn"])


def group(run) -> dict:
    name = run.one("aws:autoscaling/group:Group", "workbench-group").id
    return boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][
        0
    ]


def members(run) -> list[str]:
    return sorted(i["InstanceId"] for i in group(run)["Instances"])


def registered(target_group: str) -> set[str]:
    return {
        t["Target"]["Id"]
        for t in boto3.client("elbv2").describe_target_health(TargetGroupArn=target_group)["TargetHealthDescriptions"]
    }


@pytest.fixture(autouse=True)
def paced_instantly(monkeypatch):
    """The DNS registrar paces its Route 53 requests with time.sleep: not slept here."""
    monkeypatch.setattr(time, "sleep", lambda seconds: None)


def zone(run) -> str:
    return run.one("aws:route53/zone:Zone", "dns-zone").id


def record_sets(run) -> list[dict]:
    pages = boto3.client("route53").get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone(run))
    return [r for page in pages for r in page["ResourceRecordSets"]]


def names(run) -> set[str]:
    return {r["Name"].rstrip(".") for r in record_sets(run) if r["Type"] == "A"}


def answers(run, fleet: str = "workbench") -> set[str]:
    """The instances the fleet name answers for (its multivalue records' set identifiers)."""
    return {r["SetIdentifier"] for r in record_sets(run) if r["Type"] == "A" and r["Name"] == f"{fleet}.{ZONE}."}


def saved_images(instance_id: str) -> list[dict]:
    return boto3.client("ec2").describe_images(
        Owners=["self"], Filters=[{"Name": "tag:spotyard:source-instance", "Values": [instance_id]}]
    )["Images"]


def warning(instance_id: str) -> dict:
    return events.load("ec2-spot-instance-interruption-warning", instance_id=instance_id)


def rebalance(instance_id: str) -> dict:
    return events.load("ec2-instance-rebalance-recommendation", instance_id=instance_id)


def workers(run, aws, count: int) -> list[str]:
    request = run.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").id
    template = run.one("aws:ec2/launchTemplate:LaunchTemplate", "workers-template").id
    return aws.scale_spot_fleet(request, count, template)


def instance(instance_id: str) -> dict:
    return boto3.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


@pytest.fixture
def named(stack, lambda_of):
    """The DNS registrar has named every running instance."""
    lambda_of(stack, "dns-lambda").invoke(events.load("scheduled-event"))
    return names(stack)


def test_asg_warning_detaches_drains_unnames_saves_and_notifies(stack, handler, inbox, named, target_groups):
    victim, other = members(stack)
    assert victim in registered(target_groups["web"]) and f"workbench-{victim}.{ZONE}" in named
    result = handler.invoke(warning(victim))
    assert victim not in members(stack)
    assert group(stack)["DesiredCapacity"] == 2 and len(members(stack)) == 2  # a replacement started
    assert victim not in registered(target_groups["web"])
    assert f"workbench-{victim}.{ZONE}" not in names(stack) and f"workbench-{other}.{ZONE}" in names(stack)
    assert answers(stack) == {other}
    (image,) = saved_images(victim)
    tags = {t["Key"]: t["Value"] for t in image["Tags"]}
    assert tags["Role"] == "workbench" and tags["spotyard:fleet"] == "workbench"
    (message,) = inbox()
    details = instance(victim)
    assert victim in message["Subject"] and "Spot interruption" in message["Subject"]
    for fact in (
        "fleet: workbench",
        f"instance: {victim}",
        f"type: {details['InstanceType']}",
        f"availability zone: {details['Placement']['AvailabilityZone']}",
        "detached",
        "AMI",
    ):
        assert fact in message["Message"]
    assert len(result["done"]) == 4


def test_decrement_capacity_lowers_the_desired_capacity(deploy, config, lambda_of):
    config["spotyard:fleets"]["workbench"]["interruption"]["decrementCapacity"] = True
    run = deploy(config)
    victim = members(run)[0]
    lambda_of(run, "interruptions-lambda").invoke(warning(victim))
    assert group(run)["DesiredCapacity"] == 1
    assert len(members(run)) == 1 and victim not in members(run)


def test_spot_fleet_warning_deregisters_from_the_target_groups(stack, handler, inbox, aws, target_groups):
    victim, other = workers(stack, aws, 2)
    ips = {i: instance(i)["PrivateIpAddress"] for i in (victim, other)}
    elbv2 = boto3.client("elbv2")
    elbv2.register_targets(TargetGroupArn=target_groups["jobs"], Targets=[{"Id": ip} for ip in ips.values()])
    handler.invoke(warning(victim))
    assert registered(target_groups["jobs"]) == {ips[other]}
    (message,) = inbox()
    assert "fleet: workers" in message["Message"] and "deregistered from 1 target group" in message["Message"]
    assert not saved_images(victim)  # workers do not save images


def test_a_repeated_warning_does_nothing_twice(stack, handler, inbox, named):
    victim = members(stack)[0]
    handler.invoke(warning(victim))
    after_first = (members(stack), names(stack), group(stack)["DesiredCapacity"])
    assert len(inbox()) == 1
    result = handler.invoke(warning(victim))
    assert result["alreadyDrained"] is True and result["done"] == []
    assert (members(stack), names(stack), group(stack)["DesiredCapacity"]) == after_first
    assert inbox() == [] and len(saved_images(victim)) == 1


def test_an_instance_of_another_stack_is_left_alone(stack, handler, inbox):
    ec2 = boto3.client("ec2")
    (foreign,) = ec2.run_instances(
        ImageId="ami-12345678",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": "spotyard:stack", "Value": "spotyard/prod"},
                    {"Key": "spotyard:fleet", "Value": "workbench"},
                ],
            }
        ],
    )["Instances"]
    before = instance(foreign["InstanceId"]).get("Tags")
    assert handler.invoke(warning(foreign["InstanceId"]))["ignored"] is True
    assert instance(foreign["InstanceId"]).get("Tags") == before and inbox() == []
    assert handler.invoke(warning("i-0123456789abcdef0"))["ignored"] is True


@pytest.mark.parametrize(
    "event",
    [
        {"detail-type": "EC2 Spot Instance Interruption Warning"},
        events.load("ec2-spot-instance-interruption-warning", instance_id="i-bad"),
        events.load("ec2-instance-state-change"),
    ],
)
def test_an_event_it_cannot_parse_fails_with_a_clear_message(handler, event):
    with pytest.raises(Exception, match="not an EventBridge event|no valid detail.instance-id|unexpected event"):
        handler.invoke(event)


def test_rebalance_with_notify_only_publishes_once(stack, handler, inbox, named, target_groups):
    victim = members(stack)[0]
    assert handler.invoke(rebalance(victim))["done"] == ["notified"]
    assert handler.invoke(rebalance(victim))["alreadyNotified"] is True
    (message,) = inbox()
    assert "rebalance recommendation" in message["Subject"]
    assert victim in members(stack) and victim in registered(target_groups["web"]) and names(stack) == named
    handler.invoke(warning(victim))  # the interruption that may follow still drains it
    assert victim not in members(stack)


def test_rebalance_with_drain_drains(stack, handler, inbox, aws, target_groups):
    (victim,) = workers(stack, aws, 1)
    boto3.client("elbv2").register_targets(
        TargetGroupArn=target_groups["jobs"], Targets=[{"Id": instance(victim)["PrivateIpAddress"]}]
    )
    result = handler.invoke(rebalance(victim))
    assert registered(target_groups["jobs"]) == set() and result["done"]
    assert "rebalance recommendation" in inbox()[0]["Subject"]
    tags = {t["Key"] for t in instance(victim)["Tags"]}
    assert {"spotyard:interrupted", "spotyard:drained"} <= tags


def test_rebalance_with_drain_on_an_asg_fleet_leaves_the_replacement_to_capacity_rebalancing(
    deploy, config, lambda_of, target_groups
):
    """Capacity rebalancing (on with `drain`) launches a replacement and then terminates the
    instance: detaching it as well would start a second replacement and leave the detached
    instance running until Spot reclaims it, which a recommendation does not promise."""
    config["spotyard:fleets"]["workbench"]["interruption"] = {"onRebalance": "drain"}
    stack = deploy(config)
    assert group(stack)["CapacityRebalance"] is True
    handler, inbox = lambda_of(stack, "interruptions-lambda"), subscribe(stack.outputs["notificationTopicArn"])
    victim, named = members(stack)[0], names(stack)
    assert handler.invoke(rebalance(victim))["done"] == ["notified"]
    assert handler.invoke(rebalance(victim))["alreadyNotified"] is True
    (message,) = inbox()
    assert "capacity rebalancing" in message["Message"]
    assert victim in members(stack) and len(members(stack)) == 2
    assert victim in registered(target_groups["web"]) and names(stack) == named
    handler.invoke(warning(victim))  # the interruption that may follow still drains it
    assert victim not in members(stack)


def test_the_registrar_does_not_name_an_interrupted_instance_again(stack, handler, lambda_of, named):
    victim = members(stack)[0]
    handler.invoke(warning(victim))
    lambda_of(stack, "dns-lambda").invoke(events.load("scheduled-event"))
    assert f"workbench-{victim}.{ZONE}" not in names(stack)


def test_the_rule_catches_both_notices(stack):
    rule = stack.one("aws:cloudwatch/eventRule:EventRule", "interruptions-lambda-notices")
    pattern = json.loads(rule.inputs["eventPattern"])
    assert events.matches(pattern, warning("i-0abcd1234ef567890"))
    assert events.matches(pattern, rebalance("i-0abcd1234ef567890"))
    assert not events.matches(pattern, events.state_change("i-0abcd1234ef567890", "running"))


def test_preview_warns_about_target_groups_that_drain_past_the_notice(deploy, config, aws, stack):
    assert not [w for w in stack.warnings() if "drains connections" in w]
    slow = aws.target_group("slow", deregistration_delay=300)
    config["spotyard:fleets"]["workbench"]["loadBalancer"]["targetGroupArns"].append(slow)
    (warned,) = [w for w in deploy(config).warnings() if "drains connections" in w]
    assert warned.startswith("spotyard:fleets.workbench.loadBalancer.targetGroupArns: slow drains connections for 300s")


def test_notification_topic_is_encrypted_with_a_key_alarms_can_use(stack):
    topic = stack.one("aws:sns/topic:Topic", "notifications-topic")
    key = stack.one("aws:kms/key:Key", "notifications-key")
    assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"] and key.inputs["enableKeyRotation"] is True
    policy = json.loads(key.inputs["policy"])
    services = next(s for s in policy["Statement"] if s["Sid"] == "AlarmsAndEventsPublish")["Principal"]["Service"]
    assert "cloudwatch.amazonaws.com" in services
    via_sns = next(s for s in policy["Statement"] if s["Sid"] == "AccountPublishesThroughSns")
    assert via_sns["Condition"]["StringEquals"]["kms:ViaService"] == "sns.ap-northeast-1.amazonaws.com"
    assert not stack.of_type("aws:sns/topicSubscription:TopicSubscription")
    alarm = stack.one("aws:cloudwatch/metricAlarm:MetricAlarm", "interruptions-lambda-errors")
    assert alarm.inputs["alarmActions"] == [stack.outputs["notificationTopicArn"]]


def test_email_subscription_when_configured(deploy, config):
    config["spotyard:notifications"] = {"email": "ops@example.com"}
    subscription = deploy(config).one("aws:sns/topicSubscription:TopicSubscription", "notifications-email")
    assert (subscription.inputs["protocol"], subscription.inputs["endpoint"]) == ("email", "ops@example.com")


def test_role_is_scoped_to_the_stacks_fleets(stack):
    policy = json.loads(stack.one("aws:iam/rolePolicy:RolePolicy", "interruptions-lambda-policy").inputs["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["DetachFromGroups"]["Resource"] == [group(stack)["AutoScalingGroupARN"]]
    assert by_sid["MarkInstances"]["Condition"] == {"StringEquals": {"ec2:ResourceTag/spotyard:stack": "spotyard/dev"}}
    assert by_sid["Notify"]["Resource"] == stack.outputs["notificationTopicArn"]


def name_by_registrar(run, lambda_of, *instance_ids: str) -> None:
    lambda_of(run, "dns-lambda").invoke(sqs_events.batch([events.state_change(i, "running") for i in instance_ids]))


def test_a_failed_dns_step_keeps_the_others_and_the_retry_does_only_it(stack, handler, inbox, lambda_of, target_groups):
    victim = members(stack)[0]
    name_by_registrar(stack, lambda_of, victim)

    def denied(params, **_):
        return (
            AWSResponse("https://route53.amazonaws.com", 403, {}, None),
            {"Error": {"Code": "AccessDenied", "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
        )

    with pytest.raises(Exception, match="dns failed; a retry does only these"):
        handler.invoke(warning(victim), hooks=(("before-call.route53.ChangeResourceRecordSets", denied),))
    assert victim not in members(stack) and len(saved_images(victim)) == 1  # the other steps ran
    assert f"workbench-{victim}.{ZONE}" in names(stack)
    (message,) = inbox()
    assert "detached" in message["Message"] and "failed (retried): dns" in message["Message"]
    tags = {t["Key"]: t["Value"] for t in instance(victim)["Tags"]}
    assert "spotyard:drained" in tags and tags["spotyard:drain-left"] == "dns"
    capacity = group(stack)["DesiredCapacity"]

    result = handler.invoke(warning(victim))  # the event's retry
    assert result["done"] == ["DNS names removed"] and result["failed"] == []
    assert f"workbench-{victim}.{ZONE}" not in names(stack) and victim not in answers(stack)
    assert inbox() == [] and len(saved_images(victim)) == 1 and group(stack)["DesiredCapacity"] == capacity
    assert {t["Key"]: t["Value"] for t in instance(victim)["Tags"]}["spotyard:drain-left"] == ""
    assert handler.invoke(warning(victim))["alreadyDrained"] is True


def test_the_interruption_costs_the_same_in_a_fleet_of_a_thousand(stack, handler, lambda_of, aws):
    first, second = members(stack)
    name_by_registrar(stack, lambda_of, first, second)
    handler.invoke(warning(first))
    small = Counter(c.action for c in handler.last_calls)

    crowd = aws.fleet_instances("workbench", 1000)
    owner = '"heritage=spotyard,spotyard/owner=spotyard/dev,spotyard/fleet=workbench"'
    records = [
        (f"workbench-{i}.{ZONE}", kind, "", value)
        for i, ip in crowd.items()
        for kind, value in (("TXT", owner), ("A", ip))
    ] + [
        (f"workbench.{ZONE}", kind, i, value) for i, ip in crowd.items() for kind, value in (("TXT", owner), ("A", ip))
    ]
    route53 = boto3.client("route53")
    for start in range(0, len(records), 500):  # the names the registrar gave them, written in bulk
        route53.change_resource_record_sets(
            HostedZoneId=zone(stack),
            ChangeBatch={
                "Changes": [
                    record_change("CREATE", name, kind, [value], set_id)
                    for name, kind, set_id, value in records[start : start + 500]
                ]
            },
        )

    result = handler.invoke(warning(second))
    assert "DNS names removed" in result["done"] and answers(stack) == set(crowd)
    assert Counter(c.action for c in handler.last_calls) == small
