"""The DNS registrar, through its Lambda as the stack bundles it, with the stack's environment
and role, driven by real-format events (state changes in SQS batches, as the event source
mapping delivers them; the scheduled reconcile straight from EventBridge); the outcome
read back from moto (see tests/harness/moto_fixes/ for how its Route 53 was made to
check change batches, set identifiers and limits as Route 53 does)."""

from __future__ import annotations

import json
import random
import time
from collections import Counter

import boto3
import botocore.retries.bucket
import botocore.retries.standard
import pytest
from botocore.awsrequest import AWSResponse
from spotyard_lambda.names import INTERRUPTED_TAG
from spotyard_lambda.settings import DnsRegistrarSettings

from tests import events
from tests.conftest import dev_config
from tests.harness import sqs_events
from tests.harness.route53 import record_change

ZONE = "spotyard.internal"
OWNER = '"heritage=spotyard,spotyard/owner=spotyard/dev,spotyard/fleet={fleet}"'


@pytest.fixture(autouse=True)
def paced_instantly(monkeypatch):
    """The registrar paces its Route 53 requests with time.monotonic and time.sleep: here a
    sleep is recorded and moves the monotonic clock on instead of waiting."""
    slept: list[float] = []
    real_monotonic = time.monotonic
    monkeypatch.setattr(time, "sleep", slept.append)
    monkeypatch.setattr(time, "monotonic", lambda: real_monotonic() + sum(slept))
    return slept


@pytest.fixture
def stack(deploy):
    return deploy(dev_config())


@pytest.fixture
def registrar(stack, lambda_of):
    return lambda_of(stack, "dns-lambda")


def zone_id(run) -> str:
    return run.one("aws:route53/zone:Zone", "dns-zone").id


def zone_records(run) -> dict[tuple[str, str, str], list[str]]:
    """(name, type, set identifier) -> values, of every A and TXT record set in the zone."""
    pages = boto3.client("route53").get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id(run))
    return {
        (r["Name"].rstrip("."), r["Type"], r.get("SetIdentifier", "")): sorted(v["Value"] for v in r["ResourceRecords"])
        for page in pages
        for r in page["ResourceRecordSets"]
        if r["Type"] in ("A", "TXT")
    }


def running(fleet: str, stack_tag: str = "spotyard/dev") -> dict[str, str]:
    """instance id -> private IP of the fleet's running instances, read from moto."""
    reservations = boto3.client("ec2").describe_instances(
        Filters=[
            {"Name": "tag:spotyard:fleet", "Values": [fleet]},
            {"Name": "tag:spotyard:stack", "Values": [stack_tag]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
    )["Reservations"]
    return {i["InstanceId"]: i["PrivateIpAddress"] for r in reservations for i in r["Instances"]}


def expected_records(fleet: str, instances: dict[str, str] | None = None) -> dict[tuple[str, str, str], list[str]]:
    """The contract: per running instance, its own name and one multivalue record of the fleet
    name whose set identifier is the instance id, each with its ownership TXT."""
    owner = [OWNER.format(fleet=fleet)]
    records = {}
    for instance_id, ip in (running(fleet) if instances is None else instances).items():
        records[(f"{fleet}-{instance_id}.{ZONE}", "A", "")] = [ip]
        records[(f"{fleet}-{instance_id}.{ZONE}", "TXT", "")] = owner
        records[(f"{fleet}.{ZONE}", "A", instance_id)] = [ip]
        records[(f"{fleet}.{ZONE}", "TXT", instance_id)] = owner
    return records


def owned(run, fleet: str) -> dict[tuple[str, str, str], list[str]]:
    return {
        key: values
        for key, values in zone_records(run).items()
        if key[0] == f"{fleet}.{ZONE}" or key[0].startswith(f"{fleet}-i-")
    }


def fleet_answers(run, fleet: str) -> list[str]:
    return sorted(
        v
        for (name, kind, _), values in zone_records(run).items()
        if name == f"{fleet}.{ZONE}" and kind == "A"
        for v in values
    )


def scale(run, fleet: str, count: int) -> None:
    group = run.one("aws:autoscaling/group:Group", f"{fleet}-group").id
    boto3.client("autoscaling").set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=count)


def terminate(instance_id: str) -> None:
    """The instance leaves its group for good (no replacement)."""
    boto3.client("autoscaling").terminate_instance_in_auto_scaling_group(
        InstanceId=instance_id, ShouldDecrementDesiredCapacity=True
    )


def changes_of(registrar, *instance_states: tuple[str, str]) -> dict:
    """Deliver these state changes as one SQS batch, as the event source mapping would."""
    return registrar.invoke(sqs_events.batch([events.state_change(i, state) for i, state in instance_states]))


def calls(registrar, action: str) -> list:
    return [c for c in registrar.last_calls if c.action == action]


def put(run, *records: tuple[str, str, str, str]) -> None:
    """Records written by hand: (name, type, set identifier or '', value)."""
    changes = [record_change("CREATE", name, kind, [value], set_id) for name, kind, set_id, value in records]
    boto3.client("route53").change_resource_record_sets(HostedZoneId=zone_id(run), ChangeBatch={"Changes": changes})


def test_launch_of_one_instance_gets_its_name_and_a_fleet_answer(stack, registrar):
    ((instance_id, ip),) = running("workbench").items()
    assert changes_of(registrar, (instance_id, "running")) == {"batchItemFailures": []}
    assert owned(stack, "workbench") == expected_records("workbench")
    assert zone_records(stack)[(f"workbench.{ZONE}", "A", instance_id)] == [ip]
    assert zone_records(stack)[(f"workbench-{instance_id}.{ZONE}", "A", "")] == [ip]
    created = calls(registrar, "route53:ChangeResourceRecordSets")[0].params["ChangeBatch"]["Changes"]
    shared = [c["ResourceRecordSet"] for c in created if c["ResourceRecordSet"]["Name"] == f"workbench.{ZONE}."]
    assert {(r["Type"], r["SetIdentifier"], r["MultiValueAnswer"]) for r in shared} == {
        ("A", instance_id, True),
        ("TXT", instance_id, True),
    }


def test_three_instances_then_one_terminated_the_fleet_name_follows(stack, registrar):
    scale(stack, "workbench", 3)
    ids = sorted(running("workbench"))
    assert len(ids) == 3
    for instance_id in ids:
        changes_of(registrar, (instance_id, "running"))
        assert owned(stack, "workbench") == expected_records(
            "workbench", {i: ip for i, ip in running("workbench").items() if i <= instance_id}
        )
    assert fleet_answers(stack, "workbench") == sorted(running("workbench").values())
    terminate(ids[0])
    changes_of(registrar, (ids[0], "shutting-down"))
    assert owned(stack, "workbench") == expected_records("workbench")
    changes_of(registrar, (ids[0], "terminated"))
    assert owned(stack, "workbench") == expected_records("workbench")
    assert len(fleet_answers(stack, "workbench")) == 2
    assert not [key for key in zone_records(stack) if ids[0] in key[0] or key[2] == ids[0]]


def test_duplicated_reversed_and_late_events_leave_the_running_set(stack, registrar):
    scale(stack, "workbench", 3)
    a, b, c = sorted(running("workbench"))
    terminate(a)  # terminated before its "running" event is delivered
    sequence = [(a, "terminated"), (c, "running"), (a, "running"), (b, "running"), (b, "running"), (a, "shutting-down")]
    for change in sequence + list(reversed(sequence)):
        changes_of(registrar, change)
        assert (f"workbench-{a}.{ZONE}", "A", "") not in zone_records(stack)
    assert owned(stack, "workbench") == expected_records("workbench")
    shuffled = sequence * 2
    random.Random(7).shuffle(shuffled)
    changes_of(registrar, *shuffled)  # all of them in one batch
    assert owned(stack, "workbench") == expected_records("workbench")


def test_instances_of_another_stack_or_untagged_change_nothing(stack, registrar, aws):
    (foreign,) = aws.fleet_instances("workbench", 1, stack="spotyard/prod")
    untagged = boto3.client("ec2").run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0]
    before = zone_records(stack)
    assert changes_of(
        registrar, (foreign, "running"), (untagged["InstanceId"], "running"), ("i-0123456789abcdef0", "terminated")
    ) == {"batchItemFailures": []}
    assert zone_records(stack) == before
    assert not calls(registrar, "route53:ChangeResourceRecordSets")


def test_a_fleet_name_written_by_someone_else_is_left_alone(stack, registrar):
    put(stack, (f"workbench.{ZONE}", "A", "", "10.9.9.9"))  # a plain A record: multivalue ones cannot join it
    ((instance_id, ip),) = running("workbench").items()
    changes_of(registrar, (instance_id, "running"))
    records = zone_records(stack)
    assert fleet_answers(stack, "workbench") == ["10.9.9.9"]
    assert not [key for key in records if key[0] == f"workbench.{ZONE}" and key[1] == "TXT"]
    assert records[(f"workbench-{instance_id}.{ZONE}", "A", "")] == [ip]  # its own name is free
    assert registrar.invoke(events.load("scheduled-event"))["dnsChanges"] == 0  # nor does the reconcile take it
    terminate(instance_id)
    changes_of(registrar, (instance_id, "terminated"))
    assert fleet_answers(stack, "workbench") == ["10.9.9.9"]
    assert (f"workbench-{instance_id}.{ZONE}", "A", "") not in zone_records(stack)


def test_another_writers_multivalue_answer_stays_beside_spotyards(stack, registrar):
    put(stack, (f"workbench.{ZONE}", "A", "legacy-box", "10.9.9.8"))
    ((instance_id, ip),) = running("workbench").items()
    changes_of(registrar, (instance_id, "running"))
    assert fleet_answers(stack, "workbench") == sorted(["10.9.9.8", ip])
    registrar.invoke(events.load("scheduled-event"))
    terminate(instance_id)
    changes_of(registrar, (instance_id, "terminated"))
    assert fleet_answers(stack, "workbench") == ["10.9.9.8"]


def test_one_reconcile_converges_after_missed_events(stack, registrar):
    scale(stack, "workbench", 3)
    gone = sorted(running("workbench"))[0]
    changes_of(registrar, (gone, "running"))
    terminate(gone)  # its terminated event is lost
    stale = "i-0deadbeef0000000f"  # owned names no instance justifies
    owner = OWNER.format(fleet="workbench")
    put(
        stack,
        (f"workbench-{stale}.{ZONE}", "TXT", "", owner),
        (f"workbench-{stale}.{ZONE}", "A", "", "10.1.1.1"),
        (f"workbench.{ZONE}", "TXT", stale, owner),
        (f"workbench.{ZONE}", "A", stale, "10.1.1.1"),
    )
    result = registrar.invoke(events.load("scheduled-event"))
    assert result["dnsChanges"] > 0
    assert owned(stack, "workbench") == expected_records("workbench")
    assert not [key for key in zone_records(stack) if stale in key[0] or key[2] in (stale, gone)]
    assert registrar.invoke(events.load("scheduled-event"))["dnsChanges"] == 0  # converged: nothing left to do


def test_the_reconcile_moves_a_zone_of_the_old_shape_to_multivalue_answers(stack, registrar):
    """Before, the fleet name was one record holding every IP, with one TXT beside it."""
    scale(stack, "workbench", 2)
    owner = OWNER.format(fleet="workbench")
    ips = sorted(running("workbench").values())
    boto3.client("route53").change_resource_record_sets(
        HostedZoneId=zone_id(stack),
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": f"workbench.{ZONE}",
                        "Type": kind,
                        "TTL": 60,
                        "ResourceRecords": [{"Value": v} for v in values],
                    },
                }
                for kind, values in (("TXT", [owner]), ("A", ips))
            ]
        },
    )
    registrar.invoke(events.load("scheduled-event"))
    assert owned(stack, "workbench") == expected_records("workbench")


def test_names_of_an_instance_ec2_no_longer_knows_are_removed(stack, registrar):
    ghost = "i-0feedface0000001"
    owner = OWNER.format(fleet="workbench")
    put(
        stack,
        (f"workbench-{ghost}.{ZONE}", "TXT", "", owner),
        (f"workbench-{ghost}.{ZONE}", "A", "", "10.1.1.2"),
        (f"workbench.{ZONE}", "TXT", ghost, owner),
        (f"workbench.{ZONE}", "A", ghost, "10.1.1.2"),
    )
    changes_of(registrar, (ghost, "terminated"))
    assert not [key for key in zone_records(stack) if ghost in key[0] or key[2] == ghost]
    assert owned(stack, "workbench") == {}


def test_interrupted_instances_are_not_named(stack, registrar):
    scale(stack, "workbench", 2)
    a, b = sorted(running("workbench"))
    boto3.client("ec2").create_tags(Resources=[a], Tags=[{"Key": "spotyard:interrupted", "Value": "x"}])
    registrar.invoke(events.load("scheduled-event"))
    assert fleet_answers(stack, "workbench") == [running("workbench")[b]]
    assert (f"workbench-{a}.{ZONE}", "A", "") not in zone_records(stack)


def test_a_batch_of_events_makes_one_change_request(stack, registrar):
    scale(stack, "workbench", 3)
    ids = sorted(running("workbench"))
    changes_of(registrar, *[(i, "running") for i in ids], (ids[0], "running"))
    (request,) = calls(registrar, "route53:ChangeResourceRecordSets")
    assert len(request.params["ChangeBatch"]["Changes"]) == 12
    # Per instance one read of its own name, per fleet two of the fleet name, one DescribeInstances.
    assert len(calls(registrar, "route53:ListResourceRecordSets")) == 3 + 2
    assert len(calls(registrar, "ec2:DescribeInstances")) == 1


def _error(code: str, status: int = 400):
    body = (
        f'<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{code} from the test</Message></Error></ErrorResponse>"
    ).encode()
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

    ((instance_id, _),) = running("workbench").items()
    registrar.invoke(
        sqs_events.batch([events.state_change(instance_id, "running")]),
        hooks=(("before-send.route53.ChangeResourceRecordSets", flaky),),
    )
    assert len(sent) == 3
    assert owned(stack, "workbench") == expected_records("workbench")


def refuse(message: str, times: int | None = None, when=lambda params: True):
    """A botocore hook answering ChangeResourceRecordSets with InvalidChangeBatch(message)."""
    refused = []

    def hook(params, **_):
        if when(params) and (times is None or len(refused) < times):
            refused.append(params)
            return (
                AWSResponse("https://route53.amazonaws.com", 400, {}, None),
                {
                    "Error": {"Code": "InvalidChangeBatch", "Message": message},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
            )
        return None

    return hook, refused


def test_a_concurrent_change_is_met_by_reading_the_names_again(stack, registrar):
    """moto_fixes makes moto refuse a stale DELETE as Route 53 does: here another writer
    replaced the instance's own A record between the registrar's read and its write."""
    ((instance_id, ip),) = running("workbench").items()
    changes_of(registrar, (instance_id, "running"))
    boto3.client("ec2").create_tags(Resources=[instance_id], Tags=[{"Key": "spotyard:interrupted", "Value": "x"}])
    mine = {key: values for key, values in owned(stack, "workbench").items()}

    def concurrent_writer(params, **_):
        """Another run (the interruption handler's, say) removes the same names first."""
        if not concurrent_writer.done:
            concurrent_writer.done = True
            boto3.client("route53").change_resource_record_sets(
                HostedZoneId=zone_id(stack),
                ChangeBatch={
                    "Changes": [
                        record_change("DELETE", name, kind, values, set_id)
                        for (name, kind, set_id), values in sorted(mine.items(), key=lambda i: i[0][1])
                    ]
                },
            )

    concurrent_writer.done = False

    result = registrar.invoke(
        sqs_events.batch([events.state_change(instance_id, "running")]),
        hooks=(("before-call.route53.ChangeResourceRecordSets", concurrent_writer),),
    )
    assert result == {"batchItemFailures": []}
    assert len(calls(registrar, "route53:ChangeResourceRecordSets")) == 2  # refused once, then done
    assert owned(stack, "workbench") == {}


def test_a_permanent_refusal_is_not_taken_for_a_conflict(stack, registrar):
    ((instance_id, _),) = running("workbench").items()
    hook, refused = refuse("[RRSet with DNS name workbench.spotyard.internal. is not permitted in zone x.]")
    event = sqs_events.batch([events.state_change(instance_id, "running")])
    result = registrar.invoke(event, hooks=(("before-call.route53.ChangeResourceRecordSets", hook),))
    assert result == {"batchItemFailures": [{"itemIdentifier": m} for m in sqs_events.message_ids(event, instance_id)]}
    assert len(refused) == 1  # not sent again, and the names were read once
    assert len(calls(registrar, "route53:ListResourceRecordSets")) == 1 + 2


def test_one_instance_refused_does_not_hold_back_the_others(stack, registrar):
    scale(stack, "workbench", 3)
    bad, *good = sorted(running("workbench"))
    hook, refused = refuse(
        "[Invalid Resource Record: FATAL problem]", when=lambda params: bad.encode() in params["body"]
    )
    event = sqs_events.batch([events.state_change(i, "running") for i in [bad, *good, bad]])
    result = registrar.invoke(event, hooks=(("before-call.route53.ChangeResourceRecordSets", hook),))
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == sorted(
        sqs_events.message_ids(event, bad)
    )
    assert owned(stack, "workbench") == expected_records("workbench", {i: running("workbench")[i] for i in good})


def test_any_other_error_fails_the_invocation(stack, registrar):
    def denied(params, **_):
        return (
            AWSResponse("https://route53.amazonaws.com", 403, {}, None),
            {"Error": {"Code": "AccessDenied", "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
        )

    ((instance_id, _),) = running("workbench").items()
    with pytest.raises(Exception, match="AccessDenied"):
        registrar.invoke(
            sqs_events.batch([events.state_change(instance_id, "running")]),
            hooks=(("before-call.route53.ChangeResourceRecordSets", denied),),
        )


@pytest.mark.parametrize(
    "event",
    [
        {"hello": "world"},
        events.state_change("i-0abcd1234ef567890", "running"),  # state changes come through the queue only
        events.load("ec2-spot-instance-interruption-warning"),
    ],
)
def test_an_event_it_cannot_parse_fails_loudly(registrar, event):
    with pytest.raises(Exception, match="EventBridge event|unexpected event"):
        registrar.invoke(event)


def test_a_message_it_cannot_parse_is_reported_and_the_others_are_done(stack, registrar):
    ((instance_id, _),) = running("workbench").items()
    event = sqs_events.batch(
        [
            "not json",
            events.load("ec2-instance-state-change", instance_id="not-an-instance"),
            events.state_change(instance_id, "running"),
        ]
    )
    result = registrar.invoke(event)
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [r["messageId"] for r in event["Records"][:2]]
    assert owned(stack, "workbench") == expected_records("workbench")


def test_state_changes_reach_the_function_in_batches_through_an_encrypted_queue(stack):
    rule = stack.one("aws:cloudwatch/eventRule:EventRule", "dns-lambda-state-changes")
    pattern = json.loads(rule.inputs["eventPattern"])
    for state in ("running", "shutting-down", "terminated"):
        assert events.matches(pattern, events.state_change("i-0abcd1234ef567890", state))
    for state in ("pending", "stopping", "stopped"):
        assert not events.matches(pattern, events.state_change("i-0abcd1234ef567890", state))
    queue = stack.one("aws:sqs/queue:Queue", "dns-lambda-state-changes-queue")
    function = stack.one("aws:lambda/function:Function", "dns-lambda-function")
    target = stack.one("aws:cloudwatch/eventTarget:EventTarget", "dns-lambda-state-changes-target")
    assert target.inputs["arn"] == queue.outputs["arn"]
    assert queue.inputs["sqsManagedSseEnabled"] is True
    assert queue.inputs["visibilityTimeoutSeconds"] >= 6 * function.inputs["timeout"]
    failures = stack.one("aws:sqs/queue:Queue", "dns-lambda-failures")
    assert json.loads(queue.inputs["redrivePolicy"])["deadLetterTargetArn"] == failures.outputs["arn"]
    policy = json.loads(
        stack.one("aws:sqs/queuePolicy:QueuePolicy", "dns-lambda-state-changes-queue-policy").inputs["policy"]
    )
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule.outputs["arn"]}}
    mapping = stack.one("aws:lambda/eventSourceMapping:EventSourceMapping", "dns-lambda-state-changes-batches")
    assert mapping.inputs["eventSourceArn"] == queue.outputs["arn"]
    assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping.inputs["maximumBatchingWindowInSeconds"] > 0 and mapping.inputs["batchSize"] == 100
    assert mapping.inputs["scalingConfig"] == {"maximumConcurrency": 2}
    assert not [
        p for p in stack.of_type("aws:lambda/permission:Permission") if p.name.startswith("dns-lambda-state-changes")
    ]  # EventBridge no longer invokes it for state changes
    reconcile = stack.one("aws:cloudwatch/eventRule:EventRule", "dns-lambda-reconcile")
    assert reconcile.inputs["scheduleExpression"] == "rate(5 minutes)"
    sent = json.loads(sqs_events.batch([events.state_change("i-0abcd1234ef567890", "running")])["Records"][0]["body"])
    assert events.matches(pattern, sent)


def test_route53_requests_are_paced_to_the_stacks_rate(stack, registrar, paced_instantly):
    """Each run spaces its Route 53 requests 1/rate apart: 5 requests at 1.5 per second wait
    at least (5 - 1) / 1.5 seconds in all."""
    rate = DnsRegistrarSettings.from_environment(registrar.environment).zone.requests_per_second
    assert rate * 3 <= 5  # two batches and a reconcile at a time stay within Route 53's 5 per second
    ((instance_id, _),) = running("workbench").items()
    changes_of(registrar, (instance_id, "running"))
    requests = [c for c in registrar.last_calls if c.action.startswith("route53:")]
    assert len(requests) == 4
    assert (len(requests) - 1) / rate - 1 <= sum(paced_instantly) <= (len(requests) - 1) / rate


def test_pacer_spaces_calls_by_its_rate():
    from spotyard_lambda.dns import Pacer

    now = [100.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(2.0, clock=lambda: now[0], sleep=sleep)
    stamps = []
    for _ in range(5):
        pacer.wait()
        stamps.append(now[0])
    assert stamps == [100.0, 100.5, 101.0, 101.5, 102.0]
    now[0] += 10
    pacer.wait()
    assert slept == [0.5] * 4  # an idle pacer does not wait


def elastic_ip_fleet(deploy, lambda_of):
    """The dev stack with an Elastic IP on workbench: (run, registrar, holder())."""
    allocation = boto3.client("ec2").allocate_address(Domain="vpc")["AllocationId"]
    config = dev_config()
    config["spotyard:fleets"]["workbench"]["elasticIp"] = allocation
    run = deploy(config)

    def holder():
        return boto3.client("ec2").describe_addresses(AllocationIds=[allocation])["Addresses"][0].get("InstanceId")

    return run, lambda_of(run, "dns-lambda"), holder


def test_the_elastic_ip_stays_on_its_holder_while_it_runs(deploy, lambda_of, aws):
    run, registrar, holder = elastic_ip_fleet(deploy, lambda_of)
    ((first, _),) = running("workbench").items()
    aws.launched_ago(first, minutes=30)
    changes_of(registrar, (first, "running"))
    assert holder() == first
    scale(run, "workbench", 2)
    (second,) = set(running("workbench")) - {first}
    changes_of(registrar, (second, "running"))
    assert holder() == first  # a new box does not take the address from a running holder
    terminate(second)
    changes_of(registrar, (second, "terminated"))
    assert holder() == first
    changes_of(registrar, (second, "terminated"))
    assert not calls(registrar, "ec2:AssociateAddress")  # already where it belongs
    assert registrar.invoke(events.load("scheduled-event"))["elasticIpMoved"] == []


def test_a_gone_holder_hands_the_elastic_ip_to_the_longest_running_instance(deploy, lambda_of, aws):
    run, registrar, holder = elastic_ip_fleet(deploy, lambda_of)
    ((first, _),) = running("workbench").items()
    changes_of(registrar, (first, "running"))
    scale(run, "workbench", 3)
    second, third = sorted(set(running("workbench")) - {first})
    aws.launched_ago(second, minutes=20)
    aws.launched_ago(third, minutes=5)
    changes_of(registrar, (third, "running"), (second, "running"))
    assert holder() == first
    terminate(first)
    changes_of(registrar, (first, "terminated"))
    assert holder() == second  # launched before third: its proxy is the most likely to be ready
    # Late, duplicated and out-of-order events leave it there.
    changes_of(registrar, (first, "running"), (third, "running"), (first, "terminated"))
    assert holder() == second and not calls(registrar, "ec2:AssociateAddress")
    assert registrar.invoke(events.load("scheduled-event"))["elasticIpMoved"] == []
    # A holder Spot is taking back is gone too: the address goes to the one left.
    boto3.client("ec2").create_tags(Resources=[second], Tags=[{"Key": INTERRUPTED_TAG, "Value": "x"}])
    changes_of(registrar, (second, "running"))
    assert holder() == third


def test_a_single_box_fleets_elastic_ip_follows_its_replacement(deploy, lambda_of):
    run, registrar, holder = elastic_ip_fleet(deploy, lambda_of)
    ((first, _),) = running("workbench").items()
    changes_of(registrar, (first, "running"))
    assert holder() == first
    terminate(first)
    scale(run, "workbench", 1)
    (replacement,) = running("workbench")
    changes_of(registrar, (first, "terminated"), (replacement, "running"))
    assert holder() == replacement


def test_role_may_only_touch_its_zone_and_read_its_queue(stack):
    policy = json.loads(stack.one("aws:iam/rolePolicy:RolePolicy", "dns-lambda-policy").inputs["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["ManageRecords"]["Resource"] == f"arn:aws:route53:::hostedzone/{zone_id(stack)}"
    queue = stack.one("aws:sqs/queue:Queue", "dns-lambda-state-changes-queue")
    assert by_sid["PlatformReadTriggerQueues"]["Resource"] == [queue.outputs["arn"]]
    env = stack.one("aws:lambda/function:Function", "dns-lambda-function").inputs["environment"]["variables"]
    zone = DnsRegistrarSettings.from_environment(env).zone
    assert zone.id == zone_id(stack) and zone.name == ZONE
    assert stack.outputs["fleets"]["workbench"]["dnsName"] == f"workbench.{ZONE}"
    assert stack.outputs["zoneId"] == zone_id(stack)


# -- at scale: one fleet of 1,000 instances --------------------------------------------------


def zone_size(run) -> int:
    pages = boto3.client("route53").get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id(run))
    return sum(len(page["ResourceRecordSets"]) for page in pages)


def records_of(run, fleet: str, instance_id: str) -> dict[tuple[str, str, str], list[str]]:
    """One instance's record sets, read without listing the zone (cheap in a big one)."""
    route53 = boto3.client("route53")
    starts = [{"StartRecordName": f"{fleet}-{instance_id}.{ZONE}", "MaxItems": "2"}] + [
        {
            "StartRecordName": f"{fleet}.{ZONE}",
            "StartRecordType": kind,
            "StartRecordIdentifier": instance_id,
            "MaxItems": "1",
        }
        for kind in ("A", "TXT")
    ]
    found = [
        r
        for start in starts
        for r in route53.list_resource_record_sets(HostedZoneId=zone_id(run), **start)["ResourceRecordSets"]
    ]
    keys = set(expected_records(fleet, {instance_id: ""}))
    return {
        key: sorted(v["Value"] for v in r["ResourceRecords"])
        for r in found
        if (key := (r["Name"].rstrip("."), r["Type"], r.get("SetIdentifier", ""))) in keys
    }


def test_a_fleet_of_a_thousand_instances(stack, registrar, aws):
    """Launch, termination and reconcile at 1,000 instances in one fleet, each event at the
    cost it has at 10, the reconcile growing only by pages; then a storm of 1,000 shuffled,
    duplicated events in batches of 100, each batch making at most one change request.
    (3,000 instances: bench/dns.py; the interruption at 1,000: test_interruption_handler.)"""
    fleet = running("workbench") | aws.fleet_instances("workbench", 9)  # the group's instance and 9
    registrar.invoke(events.load("scheduled-event"))

    def launch_and_terminate() -> tuple[Counter, Counter]:
        ((instance_id, ip),) = aws.fleet_instances("workbench", 1).items()
        changes_of(registrar, (instance_id, "running"))
        assert records_of(stack, "workbench", instance_id) == expected_records("workbench", {instance_id: ip})
        launch = Counter(c.action for c in registrar.last_calls)
        boto3.client("ec2").terminate_instances(InstanceIds=[instance_id])
        changes_of(registrar, (instance_id, "terminated"))
        assert records_of(stack, "workbench", instance_id) == {}
        return launch, Counter(c.action for c in registrar.last_calls)

    at_ten = launch_and_terminate()
    assert at_ten[0]["route53:ChangeResourceRecordSets"] == at_ten[1]["route53:ChangeResourceRecordSets"] == 1

    big = aws.fleet_instances("workbench", 990)
    fleet |= big
    pages_before = -(-zone_size(stack) // 300)
    result = registrar.invoke(events.load("scheduled-event"))
    assert result["dnsChanges"] == 4 * 990
    assert len(calls(registrar, "route53:ListResourceRecordSets")) == pages_before  # grows by pages only
    requests = [
        [r["Value"] for c in call.params["ChangeBatch"]["Changes"] for r in c["ResourceRecordSet"]["ResourceRecords"]]
        for call in calls(registrar, "route53:ChangeResourceRecordSets")
    ]
    for values in requests:  # Route 53 takes at most 1,000 ResourceRecord elements and 32,000 characters a request
        assert len(values) <= 1000 and sum(map(len, values)) <= 32000
    elements, characters = sum(map(len, requests)), sum(len(v) for values in requests for v in values)
    assert len(requests) <= max(-(-elements // 1000), -(-characters // 32000)) + 1  # and as few as fit

    assert launch_and_terminate() == at_ten

    ids = list(big)
    leaving, staying = ids[:250], ids[250:500]
    boto3.client("ec2").terminate_instances(InstanceIds=leaving)
    storm = (
        [(i, "shutting-down") for i in leaving]
        + [(i, "terminated") for i in leaving]
        + [(i, "running") for i in staying] * 2
    )
    random.Random(16).shuffle(storm)
    assert len(storm) == 1000
    for start in range(0, len(storm), 100):
        assert changes_of(registrar, *storm[start : start + 100]) == {"batchItemFailures": []}
        assert len(calls(registrar, "route53:ChangeResourceRecordSets")) <= 1
    left = {i: ip for i, ip in fleet.items() if i not in leaving}
    assert owned(stack, "workbench") == expected_records("workbench", left) and len(left) == 750
