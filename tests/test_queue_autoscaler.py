"""The queue autoscaler, through its Lambda as the stack bundles it, with the stack's
environment and role, on both engines; the backlog and capacities read from moto."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from spotyard_lambda.settings import QueueAutoscalerSettings

from tests import events
from tests.agent import OnInstance, agent
from tests.conftest import dev_config, subscribe
from tests.user_data import bootstrap

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ENGINES = {"asg": "batch", "spot-fleet": "workers"}


@pytest.fixture
def config():
    return queue_fleets_config()


def queue_fleets_config() -> dict:
    """workers (spot-fleet) without the fallback: moto lacks the history call it reads;
    the fallback test turns it on and answers that call; batch (asg) with it."""
    config = dev_config()
    config["spotyard:fleets"]["workers"]["onDemandFallback"] = False
    config["spotyard:fleets"]["batch"] = {
        "engine": "asg",
        "instanceTypes": ["c5.large", "c6i.large"],
        "capacity": 0,
        "minCapacity": 0,
        "maxCapacity": 4,
        "onDemandFallback": True,
        "queue": {"messagesPerInstance": 10, "scaleInCooldownSeconds": 300},
    }
    return config


@pytest.fixture
def stack(deploy, config):
    return deploy(config)


@pytest.fixture
def scaler(stack, lambda_of):
    return lambda fleet: lambda_of(stack, f"{fleet}-jobs-autoscaler")


def at(minutes: float) -> dict:
    """The every-minute scheduled event, `minutes` after START."""
    moment = START + timedelta(minutes=minutes)
    return events.load("scheduled-event") | {"time": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}


def queue_url(run, fleet: str) -> str:
    return run.outputs["fleets"][fleet]["queueUrl"]


def send(run, fleet: str, count: int) -> None:
    sqs = boto3.client("sqs")
    for start in range(0, count, 10):
        sqs.send_message_batch(
            QueueUrl=queue_url(run, fleet),
            Entries=[
                {"Id": str(i), "MessageBody": json.dumps({"job": start + i})} for i in range(min(10, count - start))
            ],
        )


def take(run, fleet: str, count: int) -> None:
    """Workers receive `count` messages: they are in flight until deleted or timed out."""
    taken = 0
    while taken < count:
        taken += len(
            boto3.client("sqs")
            .receive_message(
                QueueUrl=queue_url(run, fleet), MaxNumberOfMessages=min(10, count - taken), WaitTimeSeconds=0
            )
            .get("Messages", [])
        )


def drain(run, fleet: str) -> None:
    """Workers finish every job: received and deleted."""
    sqs = boto3.client("sqs")
    while messages := sqs.receive_message(
        QueueUrl=queue_url(run, fleet), MaxNumberOfMessages=10, WaitTimeSeconds=0
    ).get("Messages"):
        sqs.delete_message_batch(
            QueueUrl=queue_url(run, fleet),
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )


def capacity(run, fleet: str) -> int:
    if fleet == "batch":
        name = run.one("aws:autoscaling/group:Group", "batch-group").id
        return boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
            "AutoScalingGroups"
        ][0]["DesiredCapacity"]
    request = run.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").id
    return int(
        boto3.client("ec2").describe_spot_fleet_requests(SpotFleetRequestIds=[request])["SpotFleetRequestConfigs"][0][
            "SpotFleetRequestConfig"
        ]["TargetCapacity"]
    )


def members(run, fleet: str) -> list[str]:
    """The fleet's instances, as its engine lists them."""
    if fleet == "batch":
        name = run.one("aws:autoscaling/group:Group", "batch-group").id
        return [
            i["InstanceId"]
            for i in boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
                "AutoScalingGroups"
            ][0]["Instances"]
        ]
    request = run.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").id
    return [
        i["InstanceId"]
        for i in boto3.client("ec2").describe_spot_fleet_instances(SpotFleetRequestId=request)["ActiveInstances"]
    ]


def booted(run, fleet: str, aws) -> None:
    """The fleet's instances launched an hour before START: booted, none on its way. (moto
    stamps a launch with the wall clock, not with the scheduled event's time the Lambda judges by.)"""
    ids = members(run, fleet)
    for reservation in boto3.client("ec2").describe_instances(InstanceIds=ids)["Reservations"] if ids else []:
        for instance in reservation["Instances"]:
            ahead = (instance["LaunchTime"] - (START - timedelta(hours=1))).total_seconds()
            aws.launched_ago(instance["InstanceId"], max(0, math.ceil(ahead / 60)))


def tag_spot_instances(run, aws) -> list[str]:
    """moto leaves Spot Fleet instances untagged; AWS applies the launch template's tags."""
    request = run.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").id
    template = run.one("aws:ec2/launchTemplate:LaunchTemplate", "workers-template").id
    return aws.scale_spot_fleet(request, capacity(run, "workers"), template)


@pytest.mark.parametrize("engine", ENGINES)
def test_backlog_to_capacity(stack, scaler, engine, aws):
    fleet = ENGINES[engine]
    autoscaler = scaler(fleet)
    steps = [(0, 0), (1, 1), (20, 2), (1000, 4)]  # backlog: 0, 1, exactly 2 x 10, far above max
    for minute, (backlog, expected) in enumerate(steps):
        send(stack, fleet, backlog - (steps[minute - 1][0] if minute else 0))
        result = autoscaler.invoke(at(minute))
        assert (result["backlog"], result["onItsWay"], capacity(stack, fleet)) == (backlog, 0, expected), result
        booted(stack, fleet, aws)  # the new instances are at work by the next run


@pytest.mark.parametrize("engine", ENGINES)
def test_capacity_on_its_way_is_counted_against_the_backlog(stack, scaler, engine, aws):
    """Launched less than bootSeconds (120) before the run: on its way."""
    fleet = ENGINES[engine]
    autoscaler = scaler(fleet)
    send(stack, fleet, 10)
    assert autoscaler.invoke(at(0))["to"] == 1
    send(stack, fleet, 5)  # the queue grows while the instance boots, slower than it works: left to it
    result = autoscaler.invoke(at(1))
    assert (result["reason"], result["onItsWay"], capacity(stack, fleet)) == ("capacity on its way", 1, 1)
    booted(stack, fleet, aws)  # it works now, and the backlog still asks for two
    result = autoscaler.invoke(at(2))
    assert (result["reason"], result["onItsWay"], capacity(stack, fleet)) == ("scale-out", 0, 2)


def test_a_group_member_still_pending_is_on_its_way(stack, scaler, aws):
    """moto puts a group's instances InService at once; Auto Scaling keeps a new one Pending
    (Pending:Wait with a launch lifecycle hook) until it is in service: set here in moto's backend."""
    from moto.autoscaling.models import autoscaling_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    autoscaler = scaler("batch")
    send(stack, "batch", 10)
    autoscaler.invoke(at(0))
    booted(stack, "batch", aws)  # launched long ago, but ...
    group = stack.one("aws:autoscaling/group:Group", "batch-group").id
    (member,) = autoscaling_backends[DEFAULT_ACCOUNT_ID][aws.region].autoscaling_groups[group].instance_states
    member.lifecycle_state = "Pending:Wait"  # ... still held by a launch lifecycle hook
    send(stack, "batch", 5)
    result = autoscaler.invoke(at(1))
    assert (result["onItsWay"], result["to"]) == (1, 1)


@pytest.mark.parametrize("engine", ENGINES)
def test_in_flight_messages_count(stack, scaler, engine):
    fleet = ENGINES[engine]
    send(stack, fleet, 25)
    take(stack, fleet, 20)
    assert scaler(fleet).invoke(at(0))["backlog"] == 25
    assert capacity(stack, fleet) == 3


def test_minimum_capacity_is_kept_with_an_empty_queue(deploy, config, lambda_of):
    config["spotyard:fleets"]["batch"].update(minCapacity=2, capacity=2)
    run = deploy(config)
    result = lambda_of(run, "batch-jobs-autoscaler").invoke(at(0))
    assert (result["reason"], capacity(run, "batch")) == ("steady", 2)


@pytest.mark.parametrize("engine", ENGINES)
def test_surplus_leaves_once_nothing_waits_and_the_last_instance_after_the_hold(stack, scaler, engine, aws):
    fleet = ENGINES[engine]
    autoscaler = scaler(fleet)
    send(stack, fleet, 30)
    assert autoscaler.invoke(at(0))["to"] == 3
    if engine == "spot-fleet":
        tag_spot_instances(stack, aws)
    booted(stack, fleet, aws)
    drain(stack, fleet)
    send(stack, fleet, 5)
    take(stack, fleet, 5)  # nothing waits: the last 5 jobs are in one worker's hands
    assert autoscaler.invoke(at(1)) == {
        "fleet": fleet,
        "backlog": 5,
        "from": 3,
        "to": 1,
        "reason": "surplus released",
        "onItsWay": 0,
        "onDemand": 0,
    }
    assert capacity(stack, fleet) == 1
    boto3.client("sqs").purge_queue(QueueUrl=queue_url(stack, fleet))  # the jobs are done
    # every run is a fresh import: the memory is kept in SSM
    result = autoscaler.invoke(at(2))  # no history of gaps: nothing says more work is coming
    assert (result["reason"], capacity(stack, fleet)) == ("scale-in", 0)
    send(stack, fleet, 5)
    assert autoscaler.invoke(at(3))["to"] == 1  # needed again 60 s after the queue emptied: learned
    booted(stack, fleet, aws)
    drain(stack, fleet)
    assert autoscaler.invoke(at(4))["reason"] == "last instance kept"  # for the learned hold, 60 s
    assert capacity(stack, fleet) == 1
    assert autoscaler.invoke(at(5))["to"] == 0
    send(stack, fleet, 5)
    autoscaler.invoke(at(13))  # the queue stayed empty 480 s: the gap is learned (at most the cooldown)
    parameter = QueueAutoscalerSettings.from_environment(autoscaler.environment).state_parameter
    state = json.loads(boto3.client("ssm").get_parameter(Name=parameter)["Parameter"]["Value"])
    assert state["memory"]["gaps"] == [60, 300]


def test_a_memory_record_written_before_the_learned_hold_still_loads(stack, scaler, aws):
    """A record of the previous format (no gaps, no dip release): the run reads it, keeps its
    fields and adds the new ones."""
    autoscaler = scaler("batch")
    parameter = QueueAutoscalerSettings.from_environment(autoscaler.environment).state_parameter
    old = {
        "memory": {
            "lower_since": None,
            "peak": 0,
            "empty_since": START.timestamp(),
            "ordered_for": 30,
            "warm_capacity": 0,
            "warm_until": None,
        },
        "fallback": {},
        "lastRun": START.timestamp(),
        "unpublished": None,
    }
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name=parameter, Value=json.dumps(old), Type="String", Overwrite=True)
    send(stack, "batch", 5)
    assert autoscaler.invoke(at(4))["to"] == 1
    memory = json.loads(ssm.get_parameter(Name=parameter)["Parameter"]["Value"])["memory"]
    assert memory["gaps"] == [240] and memory["ordered_for"] == 5  # the old empty_since ended a gap


def test_a_dip_is_held_for_the_boot_time_then_scales_in_to_its_peak(stack, scaler, aws):
    autoscaler = scaler("batch")
    send(stack, "batch", 40)
    autoscaler.invoke(at(0))
    booted(stack, "batch", aws)
    drain(stack, "batch")
    send(stack, "batch", 10)  # demand falls to one instance's worth, work remains
    assert autoscaler.invoke(at(1))["reason"] == "dip"
    send(stack, "batch", 10)  # ... then asks for two
    assert autoscaler.invoke(at(2))["reason"] == "dip"
    assert capacity(stack, "batch") == 4
    assert autoscaler.invoke(at(3))["to"] == 2  # lower for 120 s: down to the peak of the dip, not 1


def test_a_busy_instance_survives_scale_in_on_asg(stack, scaler, tmp_path):
    autoscaler = scaler("batch")
    send(stack, "batch", 20)
    autoscaler.invoke(at(0))
    group = stack.one("aws:autoscaling/group:Group", "batch-group").id
    members = boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
        "AutoScalingGroups"
    ][0]["Instances"]
    busy, idle = sorted(i["InstanceId"] for i in members)
    worker = OnInstance(stack, "batch", "asg", busy)
    with agent.kept_busy(worker.fleet, state_dir=tmp_path):
        drain(stack, "batch")
        autoscaler.invoke(at(1))
        autoscaler.invoke(at(6))
        left = boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
            "AutoScalingGroups"
        ][0]
        assert left["DesiredCapacity"] == 0
        assert [i["InstanceId"] for i in left["Instances"]] == [busy]
        assert left["Instances"][0]["ProtectedFromScaleIn"] is True
    assert (
        boto3.client("autoscaling").describe_auto_scaling_instances(InstanceIds=[busy])["AutoScalingInstances"][0][
            "ProtectedFromScaleIn"
        ]
        is False
    )
    assert {c.action for c in worker.recorder.calls} == {
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:SetInstanceProtection",
    }
    assert worker.refused() == []  # the instance role allows exactly this


def test_only_idle_instances_leave_a_spot_fleet(stack, scaler, aws, tmp_path):
    autoscaler = scaler("workers")
    send(stack, "workers", 30)
    autoscaler.invoke(at(0))
    busy, *_ = instances = sorted(tag_spot_instances(stack, aws))
    assert len(instances) == 3
    worker = OnInstance(stack, "workers", "spot-fleet", busy)
    with agent.kept_busy(worker.fleet, state_dir=tmp_path):
        drain(stack, "workers")
        autoscaler.invoke(at(1))
        result = autoscaler.invoke(at(6))
    assert result["to"] == 1 and capacity(stack, "workers") == 1
    states = {
        i["InstanceId"]: i["State"]["Name"]
        for r in boto3.client("ec2").describe_instances(InstanceIds=instances)["Reservations"]
        for i in r["Instances"]
    }
    assert states[busy] == "running"
    assert sorted(s for i, s in states.items() if i != busy) == ["terminated", "terminated"]
    assert "spotyard:busy" not in {
        t["Key"]
        for t in boto3.client("ec2").describe_instances(InstanceIds=[busy])["Reservations"][0]["Instances"][0]["Tags"]
    }
    assert worker.refused() == []


def test_each_change_is_notified_and_measured(stack, scaler):
    inbox = subscribe(stack.outputs["notificationTopicArn"])
    send(stack, "batch", 15)
    scaler("batch").invoke(at(0))
    scaler("batch").invoke(at(1))  # no change: no message
    (message,) = inbox()
    assert message["Subject"] == "spotyard: batch capacity 0 -> 2 (scale-out)"
    assert "backlog: 15" in message["Message"]
    metrics = boto3.client("cloudwatch").list_metrics(Namespace="spotyard")["Metrics"]
    assert {m["MetricName"] for m in metrics} == {"Backlog", "DesiredCapacity", "CapacityChange"}
    assert {"Name": "Fleet", "Value": "batch"} in metrics[0]["Dimensions"]


def _answer(operation: str, body: dict):
    def hook(params, **_):
        return AWSResponse(f"https://{operation}", 200, {}, None), {**body, "ResponseMetadata": {"HTTPStatusCode": 200}}

    return hook


def spot_starved(group: str, minute: int) -> tuple:
    """Hooks answering DescribeScalingActivities with the failed launch Auto Scaling reports
    when Spot is short (moto never simulates a shortage and always answers with nothing)."""
    activity = {
        "ActivityId": f"a-{minute}",
        "AutoScalingGroupName": group,
        "Cause": "scale-out",
        "StartTime": START + timedelta(minutes=minute),
        "StatusCode": "Failed",
        "Progress": 100,
        "StatusMessage": (
            "Could not launch Spot Instances. InsufficientInstanceCapacity - There is no "
            "Spot capacity available that matches your request. Launching EC2 instance failed."
        ),
    }
    return (("before-call.autoscaling.DescribeScalingActivities", _answer("autoscaling", {"Activities": [activity]})),)


def test_asg_falls_back_to_on_demand_after_three_starved_runs_and_hands_back(stack, scaler):
    """moto does not simulate Spot shortage and always answers DescribeScalingActivities with
    nothing: that call alone is answered here with what Auto Scaling reports when Spot is short."""
    autoscaler = scaler("batch")
    group = stack.one("aws:autoscaling/group:Group", "batch-group").id

    send(stack, "batch", 20)
    for minute in (0, 1):
        assert autoscaler.invoke(at(minute), hooks=spot_starved(group, minute))["onDemand"] == 0
    assert autoscaler.invoke(at(2), hooks=spot_starved(group, 2))["onDemand"] == 2
    distribution = boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
        "AutoScalingGroups"
    ][0]["MixedInstancesPolicy"]["InstancesDistribution"]
    assert distribution["OnDemandBaseCapacity"] == 2
    quiet = (("before-call.autoscaling.DescribeScalingActivities", _answer("autoscaling", {"Activities": []})),)
    assert autoscaler.invoke(at(10), hooks=quiet)["onDemand"] == 2
    assert autoscaler.invoke(at(18), hooks=quiet)["onDemand"] == 0  # the whole fleet was on-demand: a probe
    assert (
        boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0][
            "MixedInstancesPolicy"
        ]["InstancesDistribution"]["OnDemandBaseCapacity"]
        == 0
    )


def test_spot_fleet_falls_back_to_on_demand_and_hands_back_when_spot_is_fulfilled(deploy, config, lambda_of, aws):
    """moto lacks DescribeSpotFleetRequestHistory (NotImplementedError): that call alone is
    answered here, as Spot Fleet reports capacity it cannot find."""
    config["spotyard:fleets"]["workers"]["onDemandFallback"] = True
    stack = deploy(config)
    autoscaler = lambda_of(stack, "workers-jobs-autoscaler")

    def history(short: bool):
        records = (
            [
                {
                    "EventType": "error",
                    "Timestamp": START,
                    "EventInformation": {
                        "EventSubType": "allLaunchSpecsTemporarilyBlacklisted",
                        "EventDescription": "There is no Spot capacity available that matches your request.",
                    },
                }
            ]
            if short
            else []
        )
        return (
            (
                "before-call.ec2.DescribeSpotFleetRequestHistory",
                _answer(
                    "ec2",
                    {
                        "HistoryRecords": records,
                        "SpotFleetRequestId": "x",
                        "StartTime": START,
                        "LastEvaluatedTime": START,
                    },
                ),
            ),
        )

    send(stack, "workers", 20)
    autoscaler.invoke(at(0), hooks=history(False))
    lost, kept = sorted(tag_spot_instances(stack, aws))
    boto3.client("ec2").terminate_instances(InstanceIds=[lost])  # Spot took it; none to replace it

    # moto's ModifySpotFleetRequest ignores OnDemandTargetCapacity: the requests are read as sent.
    modified = []
    sent = ("provide-client-params.ec2.ModifySpotFleetRequest", lambda params, **_: modified.append(params))
    results = [autoscaler.invoke(at(minute), hooks=(*history(True), sent)) for minute in (1, 2, 3)]
    assert [r["onDemand"] for r in results] == [0, 0, 1]
    request = stack.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").id
    assert modified == [{"SpotFleetRequestId": request, "TargetCapacity": 2, "OnDemandTargetCapacity": 1}]
    assert kept
    # The On-Demand Instance Spot Fleet launches for that part (moto launches none): listed by
    # DescribeSpotFleetInstances without a Spot request, tagged as the fleet's template tags it.
    (on_demand,) = aws.fleet_instances("workers", 1)
    aws.launched_ago(on_demand, 10)
    member = {"InstanceId": on_demand, "InstanceType": "m5.large", "InstanceHealth": "healthy"}
    listed = ("after-call.ec2.DescribeSpotFleetInstances", lambda parsed, **_: parsed["ActiveInstances"].append(member))
    for minute in (4, 5):
        assert autoscaler.invoke(at(minute), hooks=(*history(False), listed))["onDemand"] == 1
    assert state_of(on_demand) == "running"  # the part it was launched for still stands
    result = autoscaler.invoke(at(6), hooks=(*history(False), sent, listed))
    assert result["onDemand"] == 0  # Spot part fulfilled 3 runs
    assert modified[-1] == {"SpotFleetRequestId": request, "TargetCapacity": 2, "OnDemandTargetCapacity": 0}
    # Lowering the part terminates no On-Demand Instance on AWS: the idle one goes here, and the
    # fleet, which maintains its target, launches a Spot Instance in its place.
    assert state_of(on_demand) == "terminated" and state_of(kept) == "running"


@pytest.mark.parametrize("interrupted", [False, True])
def test_instances_a_spot_fleet_keeps_beyond_its_target_are_ended(stack, scaler, aws, interrupted):
    """A scale-in lowered the target with noTermination, then failed before terminating: the next
    steady run ends the idle surplus, but never counts one under an interruption notice."""
    autoscaler = scaler("workers")
    send(stack, "workers", 20)
    assert autoscaler.invoke(at(0))["to"] == 2
    older, newer = tag_spot_instances(stack, aws)
    booted(stack, "workers", aws)
    aws.launched_ago(older, 5)  # so that "newest" is `newer`
    drain(stack, "workers")
    send(stack, "workers", 10)  # one worker's worth left: the demand is one instance
    request = stack.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").id
    ec2 = boto3.client("ec2")
    ec2.modify_spot_fleet_request(
        SpotFleetRequestId=request, TargetCapacity=1, ExcessCapacityTerminationPolicy="noTermination"
    )
    if interrupted:
        ec2.create_tags(Resources=[older], Tags=[{"Key": "spotyard:interrupted", "Value": "2026-12-02T00:00:00Z"}])
    assert autoscaler.invoke(at(1))["reason"] == "steady"
    assert (state_of(older), state_of(newer)) == (("running", "running") if interrupted else ("running", "terminated"))


def state_of(instance_id: str) -> str:
    (reservation,) = boto3.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservation["Instances"][0]["State"]["Name"]


def warm_up_event(run, fleet: str, minute: float) -> dict:
    """The event the warm-up schedule sends, its context attributes filled in as Scheduler does."""
    target = run.one("aws:scheduler/schedule:Schedule", f"{fleet}-jobs-warm-up").inputs["target"]
    moment = (START + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.loads(
        target["input"]
        .replace("<aws.scheduler.execution-id>", "d32c5kddcf5bb8c3")
        .replace("<aws.scheduler.scheduled-time>", moment)
    )


def test_a_warm_up_schedule_holds_the_fleet_warm_then_lets_it_go(deploy, config, lambda_of):
    config["spotyard:fleets"]["batch"]["queue"]["warmUp"] = {
        "schedule": "cron(50 1 * * ? *)",
        "timezone": "Asia/Tokyo",
        "capacity": 3,
        "minutes": 10,
    }
    run = deploy(config)
    schedule = run.one("aws:scheduler/schedule:Schedule", "batch-jobs-warm-up")
    function = run.one("aws:lambda/function:Function", "batch-jobs-autoscaler-function")
    assert (schedule.inputs["scheduleExpression"], schedule.inputs["scheduleExpressionTimezone"]) == (
        "cron(50 1 * * ? *)",
        "Asia/Tokyo",
    )
    assert schedule.inputs["target"]["arn"] == function.outputs["arn"]
    role = run.one("aws:iam/role:Role", "batch-jobs-warm-up-role")
    assert schedule.inputs["target"]["roleArn"] == role.outputs["arn"]
    assert json.loads(run.one("aws:iam/rolePolicy:RolePolicy", "batch-jobs-warm-up-policy").inputs["policy"])[
        "Statement"
    ] == [
        {
            "Sid": "StartWarmUp",
            "Effect": "Allow",
            "Action": ["lambda:InvokeFunction"],
            "Resource": function.outputs["arn"],
        }
    ]
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "scheduler.amazonaws.com"
    }
    autoscaler = lambda_of(run, "batch-jobs-autoscaler")
    result = autoscaler.invoke(warm_up_event(run, "batch", 0))
    assert (result["to"], capacity(run, "batch")) == (3, 3)
    assert autoscaler.invoke(warm_up_event(run, "batch", 0))["to"] == 3  # a duplicate changes nothing
    for minute in (1, 5, 9):  # the queue stays empty: the warm-up holds, across cold starts
        assert autoscaler.invoke(at(minute))["to"] == 3
    assert autoscaler.invoke(at(10))["to"] == 0  # over: empty for longer than the hold, so zero
    with pytest.raises(Exception, match="positive capacity and minutes"):
        autoscaler.invoke({**warm_up_event(run, "batch", 11), "detail": {"capacity": "3"}})


def test_no_warm_up_schedule_without_warm_up(stack):
    assert [s.name for s in stack.of_type("aws:scheduler/schedule:Schedule") if "warm-up" in s.name] == []


def test_job_queue_has_a_dead_letter_queue_and_workers_may_only_work_it(stack):
    queue = stack.one("aws:sqs/queue:Queue", "workers-jobs-queue")
    dead = stack.one("aws:sqs/queue:Queue", "workers-jobs-dlq")
    assert json.loads(queue.inputs["redrivePolicy"]) == {
        "deadLetterTargetArn": dead.outputs["arn"],
        "maxReceiveCount": 5,
    }
    assert queue.inputs["sqsManagedSseEnabled"] and queue.inputs["receiveWaitTimeSeconds"] == 20
    assert queue.inputs["visibilityTimeoutSeconds"] == 600 and queue.outputs["name"].startswith("workers-jobs")
    alarm = stack.one("aws:cloudwatch/metricAlarm:MetricAlarm", "workers-jobs-dlq-depth")
    assert alarm.inputs["dimensions"] == {"QueueName": dead.outputs["name"]}
    assert alarm.inputs["alarmActions"] == [stack.outputs["notificationTopicArn"]]
    policy = json.loads(stack.one("aws:iam/rolePolicy:RolePolicy", "workers-jobs-workers").inputs["policy"])
    assert policy["Statement"] == [
        {
            "Sid": "WorkTheJobQueue",
            "Effect": "Allow",
            "Resource": queue.outputs["arn"],
            "Action": ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:ReceiveMessage"],
        }
    ]
    instance_role = stack.one("aws:iam/role:Role", "workers-instance-role")
    assert (
        stack.one("aws:iam/rolePolicy:RolePolicy", "workers-jobs-workers").inputs["role"]
        == instance_role.outputs["name"]
    )
    state = stack.one("aws:ssm/parameter:Parameter", "workers-jobs-state")
    assert "value" in state.ignore_changes and state.inputs["name"] == "/spotyard/dev/workers/autoscaler"
    rule = stack.one("aws:cloudwatch/eventRule:EventRule", "workers-jobs-autoscaler-every-minute")
    assert rule.inputs["scheduleExpression"] == "rate(1 minute)"


def test_instances_are_told_the_queue(stack):
    script = bootstrap(stack, "workers")
    assert f"SPOTYARD_QUEUE_URL={queue_url(stack, 'workers')}" in script
    assert "cat > /usr/local/bin/spotyard-busy" in script


def test_an_event_it_cannot_parse_fails(scaler):
    with pytest.raises(Exception, match="unexpected event"):
        scaler("workers").invoke(events.state_change("i-0abcd1234ef567890", "running"))


def test_the_asg_fallback_sends_only_the_distribution_and_keeps_the_launch_template(stack, scaler):
    """A request naming the launch template would be authorized as the Lambda's
    ec2:RunInstances, iam:PassRole and ssm:GetParameters (Auto Scaling user guide, launch
    template permissions; checked by tests/harness/iam.py): the fallback sends none."""
    autoscaler = scaler("batch")
    group = stack.one("aws:autoscaling/group:Group", "batch-group").id
    autoscaling = boto3.client("autoscaling")
    before = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
    send(stack, "batch", 20)
    for minute in (0, 1, 2):
        autoscaler.invoke(at(minute), hooks=spot_starved(group, minute))
    (update,) = [c for c in autoscaler.last_calls if c.action == "autoscaling:UpdateAutoScalingGroup"]
    assert update.params == {
        "AutoScalingGroupName": group,
        "MixedInstancesPolicy": {
            "InstancesDistribution": {
                **before["MixedInstancesPolicy"]["InstancesDistribution"],
                "OnDemandBaseCapacity": 2,
            }
        },
    }
    after = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
    assert after["MixedInstancesPolicy"]["LaunchTemplate"] == before["MixedInstancesPolicy"]["LaunchTemplate"]
    assert after["MixedInstancesPolicy"]["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] == 0
