"""Schedules under mocks: EventBridge Scheduler universal targets that set a fleet's capacity,
checked against botocore's service model, their role, and their call made on moto."""

from __future__ import annotations

import json

import boto3
import botocore.session
import pytest
from botocore.validate import validate_parameters

from tests.conftest import dev_config
from tests.harness.iam import Call, Policy, Target, denied, targets


@pytest.fixture
def stack(deploy):
    config = dev_config()
    config["spotyard:fleets"]["workers"]["schedule"] = {
        "start": "cron(0 1 * * ? *)",
        "stop": "rate(12 hours)",
        "timezone": "Europe/Paris",
    }
    config["spotyard:fleets"]["workers"]["capacity"] = 2
    return deploy(config)


def operation(target_arn: str):
    """arn:aws:scheduler:::aws-sdk:<service>:<apiAction> -> botocore's operation model."""
    service, action = target_arn.split(":")[-2:]
    model = botocore.session.get_session().get_service_model(service)
    return model.operation_model(action[0].upper() + action[1:])


@pytest.mark.parametrize(
    ("fleet", "moment", "expression", "timezone", "capacity"),
    [
        ("workbench", "start", "cron(0 9 ? * MON-FRI *)", "Asia/Tokyo", 1),
        ("workbench", "stop", "cron(0 21 * * ? *)", "Asia/Tokyo", 0),
        ("workers", "start", "cron(0 1 * * ? *)", "Europe/Paris", 2),
        ("workers", "stop", "rate(12 hours)", "Europe/Paris", 0),
    ],
)
def test_schedules_call_the_capacity_api_with_valid_input(stack, fleet, moment, expression, timezone, capacity):
    schedule = stack.one("aws:scheduler/schedule:Schedule", f"{fleet}-schedule-{moment}")
    assert (schedule.inputs["scheduleExpression"], schedule.inputs["scheduleExpressionTimezone"]) == (
        expression,
        timezone,
    )
    assert schedule.inputs["flexibleTimeWindow"] == {"mode": "OFF"}
    target = schedule.inputs["target"]
    model = operation(target["arn"])
    params = json.loads(target["input"])
    validate_parameters(params, model.input_shape)  # raises on any parameter the API would refuse
    if fleet == "workbench":
        assert model.name == "SetDesiredCapacity"
        assert params["AutoScalingGroupName"] == stack.one("aws:autoscaling/group:Group", "workbench-group").id
        assert params["DesiredCapacity"] == capacity
    else:
        assert model.name == "ModifySpotFleetRequest"
        assert params == {
            "SpotFleetRequestId": stack.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").id,
            "TargetCapacity": capacity,
            "ExcessCapacityTerminationPolicy": "default",
        }


@pytest.mark.parametrize("fleet", ["workbench", "workers"])
def test_the_role_allows_that_call_on_that_fleet_and_nothing_else(stack, fleet):
    role = stack.one("aws:iam/role:Role", f"{fleet}-schedule-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    document = json.loads(stack.one("aws:iam/rolePolicy:RolePolicy", f"{fleet}-schedule-policy").inputs["policy"])
    (statement,) = document["Statement"]
    assert len(statement["Action"]) == 1
    policy = Policy(document)
    for moment in ("start", "stop"):
        target = stack.one("aws:scheduler/schedule:Schedule", f"{fleet}-schedule-{moment}").inputs["target"]
        assert target["roleArn"] == role.outputs["arn"]
        service, action = target["arn"].split(":")[-2:]
        call = Call(
            action=f"{service}:{action[0].upper()}{action[1:]}",
            params=json.loads(target["input"]),
            region="ap-northeast-1",
        )
        call = Call(call.action, call.params, call.region, tuple(targets(call)))
        assert denied(policy, [call]) == []  # the call and the dependent actions AWS checks with it
        others = {
            "workbench": "arn:aws:autoscaling:ap-northeast-1:123456789012:autoScalingGroup:x:"
            "autoScalingGroupName/another-group",
            "workers": "arn:aws:ec2:ap-northeast-1:123456789012:spot-fleet-request/sfr-another",
        }
        assert not policy.allows(call.action, Target(others[fleet]))


def scheduled_input(run, name: str) -> dict:
    return json.loads(run.one("aws:scheduler/schedule:Schedule", name).inputs["target"]["input"])


def test_the_scheduled_calls_work_on_moto(stack):
    start, stop = scheduled_input(stack, "workbench-schedule-start"), scheduled_input(stack, "workbench-schedule-stop")
    autoscaling = boto3.client("autoscaling")
    autoscaling.set_desired_capacity(**stop)
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[stop["AutoScalingGroupName"]])
    assert group["AutoScalingGroups"][0]["DesiredCapacity"] == 0
    autoscaling.set_desired_capacity(**start)
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[start["AutoScalingGroupName"]])
    assert group["AutoScalingGroups"][0]["DesiredCapacity"] == 1


def test_the_spot_fleet_schedules_terminate_what_a_lower_target_leaves(stack, aws):
    """The autoscaler's scale-in and idle stop leave `noTermination` on the request (Spot Fleet
    keeps it, see tests/harness/moto_fixes/): the stop must still terminate the instances."""
    request = stack.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").id
    template = stack.one("aws:ec2/launchTemplate:LaunchTemplate", "workers-template").id
    instances = aws.scale_spot_fleet(request, 3, template)
    ec2 = boto3.client("ec2")
    ec2.modify_spot_fleet_request(
        SpotFleetRequestId=request, TargetCapacity=2, ExcessCapacityTerminationPolicy="noTermination"
    )
    stop = scheduled_input(stack, "workers-schedule-stop")
    assert (
        stop["ExcessCapacityTerminationPolicy"]
        in operation("arn:aws:scheduler:::aws-sdk:ec2:modifySpotFleetRequest")
        .input_shape.members["ExcessCapacityTerminationPolicy"]
        .enum
    )
    ec2.modify_spot_fleet_request(**stop)
    states = {
        i["State"]["Name"]
        for r in ec2.describe_instances(InstanceIds=instances)["Reservations"]
        for i in r["Instances"]
    }
    assert states == {"terminated"}


@pytest.fixture
def kept_minimum(deploy):
    """workbench keeps at least one instance: Auto Scaling refuses a desired capacity below MinSize."""
    config = dev_config()
    config["spotyard:fleets"]["workbench"] |= {"minCapacity": 1, "capacity": 2, "maxCapacity": 3}
    return deploy(config)


def test_an_asg_stop_lowers_the_minimum_with_the_capacity_and_start_restores_both(kept_minimum):
    run = kept_minimum
    start, stop = scheduled_input(run, "workbench-schedule-start"), scheduled_input(run, "workbench-schedule-stop")
    group = run.one("aws:autoscaling/group:Group", "workbench-group").id
    for moment, params in (("start", start), ("stop", stop)):
        target = run.one("aws:scheduler/schedule:Schedule", f"workbench-schedule-{moment}").inputs["target"]
        assert operation(target["arn"]).name == "UpdateAutoScalingGroup"
        validate_parameters(params, operation(target["arn"]).input_shape)
    assert stop == {"AutoScalingGroupName": group, "MinSize": 0, "DesiredCapacity": 0}
    assert start == {"AutoScalingGroupName": group, "MinSize": 1, "DesiredCapacity": 2}
    autoscaling = boto3.client("autoscaling")

    def bounds():
        found = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
        return found["MinSize"], found["DesiredCapacity"], len(found["Instances"])

    autoscaling.update_auto_scaling_group(**stop)
    assert bounds() == (0, 0, 0)
    autoscaling.update_auto_scaling_group(**start)
    assert bounds() == (1, 2, 2)
    document = json.loads(run.one("aws:iam/rolePolicy:RolePolicy", "workbench-schedule-policy").inputs["policy"])
    (statement,) = document["Statement"]
    assert (statement["Action"], statement["Resource"]) == (
        ["autoscaling:UpdateAutoScalingGroup"],
        run.one("aws:autoscaling/group:Group", "workbench-group").outputs["arn"],
    )
    calls = [Call("autoscaling:UpdateAutoScalingGroup", params, "ap-northeast-1") for params in (start, stop)]
    assert denied(Policy(document), [Call(c.action, c.params, c.region, tuple(targets(c))) for c in calls]) == []


def test_fleets_without_a_schedule_get_none(deploy):
    config = dev_config()
    del config["spotyard:fleets"]["workbench"]["schedule"]
    del config["spotyard:jobs"], config["spotyard:batch"]  # Batch job schedules: tests/test_batch_jobs.py
    assert deploy(config).of_type("aws:scheduler/schedule:Schedule") == []
