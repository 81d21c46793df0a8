"""The DNS registrar, through its Lambda as the stack bundles it, with the stack's environment
and role, driven by real-format EventBridge events; the outcome read back from moto."""

from __future__ import annotations

import json
import random

import boto3
import botocore.retries.bucket
import botocore.retries.standard
import pytest
from botocore.awsrequest import AWSResponse

from tests import events
from tests.conftest import dev_config

ZONE = "spotyard.internal"


@pytest.fixture
def stack(deploy):
    return deploy(dev_config())


@pytest.fixture
def registrar(stack, lambda_of):
    return lambda_of(stack, "dns-lambda")


def zone_id(run) -> str:
    return run.one("aws:route53/zone:Zone", "dns-zone").id


def zone_records(run) -> dict[tuple[str, str], list[str]]:
    pages = boto3.client("route53").get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id(run))
    return {(r["Name"].rstrip("."), r["Type"]): sorted(v["Value"] for v in r["ResourceRecords"])
            for page in pages for r in page["ResourceRecordSets"] if r["Type"] in ("A", "TXT")}


def running(fleet: str, stack_tag: str = "spotyard/dev") -> dict[str, str]:
    """instance id -> private IP of the fleet's running instances, read from moto."""
    reservations = boto3.client("ec2").describe_instances(Filters=[
        {"Name": "tag:spotyard:fleet", "Values": [fleet]}, {"Name": "tag:spotyard:stack", "Values": [stack_tag]},
        {"Name": "instance-state-name", "Values": ["running"]}])["Reservations"]
    return {i["InstanceId"]: i["PrivateIpAddress"] for r in reservations for i in r["Instances"]}


def expected_records(fleet: str) -> dict[tuple[str, str], list[str]]:
    owner = f'"heritage=spotyard,spotyard/owner=spotyard/dev,spotyard/fleet={fleet}"'
    instances = running(fleet)
    records = {}
    for instance_id, ip in instances.items():
        records[(f"{fleet}-{instance_id}.{ZONE}", "A")] = [ip]
        records[(f"{fleet}-{instance_id}.{ZONE}", "TXT")] = [owner]
    if instances:
        records[(f"{fleet}.{ZONE}", "A")] = sorted(instances.values())
        records[(f"{fleet}.{ZONE}", "TXT")] = [owner]
    return records


def owned(run, fleet: str) -> dict[tuple[str, str], list[str]]:
    return {key: values for key, values in zone_records(run).items()
            if key[0] == f"{fleet}.{ZONE}" or key[0].startswith(f"{fleet}-i-")}


def scale(run, fleet: str, count: int) -> None:
    group = run.one("aws:autoscaling/group:Group", f"{fleet}-group").id
    boto3.client("autoscaling").set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=count)


def terminate(instance_id: str) -> None:
    """The instance leaves its group for good (no replacement)."""
    boto3.client("autoscaling").terminate_instance_in_auto_scaling_group(
        InstanceId=instance_id, ShouldDecrementDesiredCapacity=True)


def test_launch_of_one_instance_gets_its_names(stack, registrar):
    (instance_id, ip), = running("workbench").items()
    registrar.invoke(events.state_change(instance_id, "running"))
    assert owned(stack, "workbench") == expected_records("workbench")
    assert zone_records(stack)[(f"workbench.{ZONE}", "A")] == [ip]
    assert zone_records(stack)[(f"workbench-{instance_id}.{ZONE}", "A")] == [ip]


def test_three_instances_then_one_terminated_the_fleet_name_follows(stack, registrar):
    scale(stack, "workbench", 3)
    ids = sorted(running("workbench"))
    assert len(ids) == 3
    for instance_id in ids:
        registrar.invoke(events.state_change(instance_id, "running"))
        assert owned(stack, "workbench")[(f"workbench.{ZONE}", "A")] == sorted(
            running("workbench")[i] for i in running("workbench"))
    assert len(zone_records(stack)[(f"workbench.{ZONE}", "A")]) == 3
    terminate(ids[0])
    registrar.invoke(events.state_change(ids[0], "shutting-down"))
    assert owned(stack, "workbench") == expected_records("workbench")
    registrar.invoke(events.state_change(ids[0], "terminated"))
    assert owned(stack, "workbench") == expected_records("workbench")
    assert len(zone_records(stack)[(f"workbench.{ZONE}", "A")]) == 2
    assert (f"workbench-{ids[0]}.{ZONE}", "A") not in zone_records(stack)


def test_duplicated_reversed_and_late_events_leave_the_running_set(stack, registrar):
    scale(stack, "workbench", 3)
    a, b, c = sorted(running("workbench"))
    terminate(a)  # terminated before its "running" event is delivered
    sequence = [events.state_change(a, "terminated"), events.state_change(c, "running"),
                events.state_change(a, "running"), events.state_change(b, "running"),
                events.state_change(b, "running"), events.state_change(a, "shutting-down")]
    for event in sequence + list(reversed(sequence)):
        registrar.invoke(event)
        assert (f"workbench-{a}.{ZONE}", "A") not in zone_records(stack)
    assert owned(stack, "workbench") == expected_records("workbench")
    shuffled = sequence * 2
    random.Random(7).shuffle(shuffled)
    for event in shuffled:
        registrar.invoke(event)
    assert owned(stack, "workbench") == expected_records("workbench")


def test_instances_of_another_stack_or_untagged_change_nothing(stack, registrar, aws):
    ec2 = boto3.client("ec2")
    foreign = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, TagSpecifications=[{
        "ResourceType": "instance", "Tags": [{"Key": "spotyard:stack", "Value": "spotyard/prod"},
                                             {"Key": "spotyard:fleet", "Value": "workbench"}]}])["Instances"][0]
    untagged = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0]
    before = zone_records(stack)
    for instance in (foreign, untagged):
        assert registrar.invoke(events.state_change(instance["InstanceId"], "running")) == {
            "ignored": instance["InstanceId"]}
    assert registrar.invoke(events.state_change("i-0123456789abcdef0", "terminated")) == {
        "ignored": "i-0123456789abcdef0"}
    assert zone_records(stack) == before


def test_a_name_written_by_someone_else_is_left_alone(stack, registrar):
    theirs = {"Name": f"workbench.{ZONE}", "Type": "A", "TTL": 300, "ResourceRecords": [{"Value": "10.9.9.9"}]}
    boto3.client("route53").change_resource_record_sets(HostedZoneId=zone_id(stack), ChangeBatch={
        "Changes": [{"Action": "CREATE", "ResourceRecordSet": theirs}]})
    (instance_id, ip), = running("workbench").items()
    registrar.invoke(events.state_change(instance_id, "running"))
    records = zone_records(stack)
    assert records[(f"workbench.{ZONE}", "A")] == ["10.9.9.9"]
    assert (f"workbench.{ZONE}", "TXT") not in records
    assert records[(f"workbench-{instance_id}.{ZONE}", "A")] == [ip]  # its own name is free
    terminate(instance_id)
    registrar.invoke(events.state_change(instance_id, "terminated"))
    assert zone_records(stack)[(f"workbench.{ZONE}", "A")] == ["10.9.9.9"]
    assert (f"workbench-{instance_id}.{ZONE}", "A") not in zone_records(stack)


def test_one_reconcile_converges_after_missed_events(stack, registrar):
    scale(stack, "workbench", 3)
    gone = sorted(running("workbench"))[0]
    registrar.invoke(events.state_change(gone, "running"))
    terminate(gone)  # its terminated event is lost
    stale = f"workbench-i-0deadbeef0000000f.{ZONE}"  # an owned name no instance justifies
    owner = '"heritage=spotyard,spotyard/owner=spotyard/dev,spotyard/fleet=workbench"'
    boto3.client("route53").change_resource_record_sets(HostedZoneId=zone_id(stack), ChangeBatch={"Changes": [
        {"Action": "CREATE", "ResourceRecordSet": {"Name": stale, "Type": kind, "TTL": 60,
                                                   "ResourceRecords": [{"Value": value}]}}
        for kind, value in (("TXT", owner), ("A", "10.1.1.1"))]})
    result = registrar.invoke(events.load("scheduled-event"))
    assert result["dnsChanges"] > 0
    assert owned(stack, "workbench") == expected_records("workbench")
    assert (stale, "A") not in zone_records(stack) and (f"workbench-{gone}.{ZONE}", "A") not in zone_records(stack)
    assert registrar.invoke(events.load("scheduled-event"))["dnsChanges"] == 0  # converged: nothing left to do


def test_names_of_an_instance_ec2_no_longer_knows_are_removed(stack, registrar):
    ghost = "i-0feedface0000001"
    owner = '"heritage=spotyard,spotyard/owner=spotyard/dev,spotyard/fleet=workbench"'
    boto3.client("route53").change_resource_record_sets(HostedZoneId=zone_id(stack), ChangeBatch={"Changes": [
        {"Action": "CREATE", "ResourceRecordSet": {"Name": f"workbench-{ghost}.{ZONE}", "Type": kind, "TTL": 60,
                                                   "ResourceRecords": [{"Value": value}]}}
        for kind, value in (("TXT", owner), ("A", "10.1.1.2"))]})
    registrar.invoke(events.state_change(ghost, "terminated"))
    assert (f"workbench-{ghost}.{ZONE}", "A") not in zone_records(stack)
    assert owned(stack, "workbench") == expected_records("workbench")


def test_interrupted_instances_are_not_named(stack, registrar):
    scale(stack, "workbench", 2)
    a, b = sorted(running("workbench"))
    boto3.client("ec2").create_tags(Resources=[a], Tags=[{"Key": "spotyard:interrupted", "Value": "x"}])
    registrar.invoke(events.load("scheduled-event"))
    records = zone_records(stack)
    assert records[(f"workbench.{ZONE}", "A")] == [running("workbench")[b]]
    assert (f"workbench-{a}.{ZONE}", "A") not in records


def test_changes_of_one_event_go_in_one_batch(stack, registrar):
    scale(stack, "workbench", 2)
    calls = []
    count = lambda params, **_: calls.append(params)  # noqa: E731
    registrar.invoke(events.load("scheduled-event"),
                     hooks=(("provide-client-params.route53.ChangeResourceRecordSets", count),))
    assert len(calls) == 1 and len(calls[0]["ChangeBatch"]["Changes"]) == 6


def _error(code: str, status: int = 400):
    body = (f'<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type>'
            f"<Code>{code}</Code><Message>{code} from the test</Message></Error></ErrorResponse>").encode()
    return AWSResponse("https://route53.amazonaws.com", status, {}, None), body


def test_throttling_and_prior_request_not_complete_are_retried(stack, registrar, monkeypatch):
    """botocore's adaptive retries back off on both; the waits are made instant here."""
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
    monkeypatch.setattr(botocore.retries.bucket.Clock, "sleep", lambda self, amount: None)
    failures = ["Throttling", "PriorRequestNotComplete"]
    sent = []

    def flaky(request, **_):
        sent.append(request)
        if failures:
            response, body = _error(failures.pop(0))
            response.raw = type("Raw", (), {"stream": lambda self, **k: iter([body])})()
            response._content = body
            return response
        return None

    (instance_id, _), = running("workbench").items()
    registrar.invoke(events.state_change(instance_id, "running"),
                     hooks=(("before-send.route53.ChangeResourceRecordSets", flaky),))
    assert len(sent) == 3
    assert owned(stack, "workbench") == expected_records("workbench")


def test_a_concurrent_change_is_met_by_reading_the_zone_again(stack, registrar):
    """Route 53 rejects a batch whose DELETE no longer matches; moto accepts it (see
    notes/moto-gaps.md), so the first ChangeResourceRecordSets is answered as Route 53 would."""
    (instance_id, _), = running("workbench").items()
    rejected = []

    def concurrent_writer(params, **_):
        if not rejected:
            rejected.append(params)
            return (AWSResponse("https://route53.amazonaws.com", 400, {}, None), {
                "Error": {"Code": "InvalidChangeBatch", "Message": "[Tried to delete resource record set "
                                                                   "but the values provided do not match]"},
                "ResponseMetadata": {"HTTPStatusCode": 400}})
        return None

    registrar.invoke(events.state_change(instance_id, "running"),
                     hooks=(("before-call.route53.ChangeResourceRecordSets", concurrent_writer),))
    assert rejected
    assert owned(stack, "workbench") == expected_records("workbench")


def test_any_other_error_fails_the_invocation(stack, registrar):
    def denied(params, **_):
        return (AWSResponse("https://route53.amazonaws.com", 403, {}, None),
                {"Error": {"Code": "AccessDenied", "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": 403}})

    (instance_id, _), = running("workbench").items()
    with pytest.raises(Exception, match="AccessDenied"):
        registrar.invoke(events.state_change(instance_id, "running"),
                         hooks=(("before-call.route53.ChangeResourceRecordSets", denied),))


@pytest.mark.parametrize("event", [
    {"hello": "world"},
    events.load("ec2-instance-state-change", instance_id="not-an-instance"),
    events.load("ec2-spot-instance-interruption-warning"),
])
def test_an_event_it_cannot_parse_fails_loudly(registrar, event):
    with pytest.raises(Exception, match="EventBridge event|instance-id|unexpected event"):
        registrar.invoke(event)


def test_the_rule_matches_the_state_changes_it_acts_on(stack):
    rule = stack.one("aws:cloudwatch/eventRule:EventRule", "dns-lambda-state-changes")
    pattern = json.loads(rule.inputs["eventPattern"])
    for state in ("running", "shutting-down", "terminated"):
        assert events.matches(pattern, events.state_change("i-0abcd1234ef567890", state))
    for state in ("pending", "stopping", "stopped"):
        assert not events.matches(pattern, events.state_change("i-0abcd1234ef567890", state))
    reconcile = stack.one("aws:cloudwatch/eventRule:EventRule", "dns-lambda-reconcile")
    assert reconcile.inputs["scheduleExpression"] == "rate(5 minutes)"


def test_the_elastic_ip_moves_to_the_newest_instance_when_its_holder_goes(deploy, lambda_of, aws):
    allocation = boto3.client("ec2").allocate_address(Domain="vpc")["AllocationId"]
    config = dev_config()
    config["spotyard:fleets"]["workbench"]["elasticIp"] = allocation
    run = deploy(config)
    registrar = lambda_of(run, "dns-lambda")
    (first, _), = running("workbench").items()
    aws.launched_ago(first, minutes=30)

    def holder():
        return boto3.client("ec2").describe_addresses(AllocationIds=[allocation])["Addresses"][0].get("InstanceId")

    registrar.invoke(events.state_change(first, "running"))
    assert holder() == first
    scale(run, "workbench", 2)
    (second,) = set(running("workbench")) - {first}
    registrar.invoke(events.state_change(second, "running"))
    assert holder() == second  # the newest instance holds it
    terminate(second)
    registrar.invoke(events.state_change(second, "terminated"))
    assert holder() == first
    result = registrar.invoke(events.state_change(second, "terminated"))
    assert result["elasticIpMoved"] == []  # already where it belongs


def test_role_may_only_touch_its_zone(stack):
    policy = json.loads(stack.one("aws:iam/rolePolicy:RolePolicy", "dns-lambda-policy").inputs["policy"])
    zone = next(s for s in policy["Statement"] if s["Sid"] == "ManageRecords")
    assert zone["Resource"] == f"arn:aws:route53:::hostedzone/{zone_id(stack)}"
    env = stack.one("aws:lambda/function:Function", "dns-lambda-function").inputs["environment"]["variables"]
    assert env["SPOTYARD_ZONE_ID"] == zone_id(stack) and env["SPOTYARD_ZONE_NAME"] == ZONE
    assert stack.outputs["fleets"]["workbench"]["dnsName"] == f"workbench.{ZONE}"
    assert stack.outputs["zoneId"] == zone_id(stack)
