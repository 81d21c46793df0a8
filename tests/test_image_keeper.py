"""Images that follow the machine: the image keeper through its Lambda as the stack bundles
it, with the stack's environment and role; AMIs and the parameter read back from moto."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from tests import events
from tests.conftest import dev_config
from tests.harness.iam import Policy, Target

PARAMETER = "/spotyard/dev/workbench/ami"
TOKEN_1 = "11111111-1111-4111-8111-111111111111"
TOKEN_2 = "22222222-2222-4222-8222-222222222222"


@pytest.fixture
def config(aws):
    return saving_workbench_config(aws)


def saving_workbench_config(aws) -> dict:
    """The sample config with a workbench that saves its instances as AMIs (keeping 2)."""
    aws.own_ami("base", tags={"Role": "base"}, age_days=100)
    config = dev_config()
    config["spotyard:fleets"]["workbench"]["image"] = {
        "roleTag": "workbench",
        "fallbackRoleTag": "base",
        "snapshotOnTerminate": True,
        "keep": 2,
    }
    return config


@pytest.fixture
def stack(deploy, config):
    return deploy(config)


@pytest.fixture
def keeper(stack, lambda_of):
    return lambda_of(stack, "images-lambda")


def group(run) -> str:
    return run.one("aws:autoscaling/group:Group", "workbench-group").id


def hook_name(run) -> str:
    return run.one("aws:autoscaling/lifecycleHook:LifecycleHook", "images-workbench-leaving").outputs["name"]


def member(run) -> str:
    return boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group(run)])[
        "AutoScalingGroups"
    ][0]["Instances"][0]["InstanceId"]


def leaving(run, instance_id: str, token: str = TOKEN_1) -> dict:
    return events.load("ec2-instance-terminate-lifecycle-action", instance_id=None) | {
        "detail": {
            **events.load("ec2-instance-terminate-lifecycle-action")["detail"],
            "EC2InstanceId": instance_id,
            "AutoScalingGroupName": group(run),
            "LifecycleHookName": hook_name(run),
            "LifecycleActionToken": token,
        }
    }


def ami_state(image_id: str, state: str = "available") -> dict:
    return events.load("ec2-ami-state-change", ImageId=image_id, State=state)


def parameter() -> str:
    return boto3.client("ssm").get_parameter(Name=PARAMETER)["Parameter"]["Value"]


def saved(instance_id: str) -> list[dict]:
    return boto3.client("ec2").describe_images(
        Owners=["self"], Filters=[{"Name": "tag:spotyard:source-instance", "Values": [instance_id]}]
    )["Images"]


def snapshots_of(image_id: str) -> list[dict]:
    ec2 = boto3.client("ec2")
    ids = [m["Ebs"]["SnapshotId"] for m in ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"]]
    return ec2.describe_snapshots(SnapshotIds=ids)["Snapshots"]


def remaining_snapshots() -> set[str]:
    return {s["SnapshotId"] for s in boto3.client("ec2").describe_snapshots()["Snapshots"]}


def save_as_spotyard(aws, name: str, age: int, stack: str = "spotyard/dev") -> str:
    """An AMI (and its snapshot) tagged as the keeper tags the ones it saves."""
    tags = {
        "Role": "workbench",
        "spotyard:stack": stack,
        "spotyard:fleet": "workbench",
        "spotyard:source-instance": f"i-0{name}",
    }
    image_id = aws.own_ami(f"save-{name}", age_days=age, tags=tags)
    boto3.client("ec2").create_tags(
        Resources=[s["SnapshotId"] for s in snapshots_of(image_id)],
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )
    return image_id


class Completions:
    """moto lacks CompleteLifecycleAction (NotImplementedError): that call alone is answered
    here, as Auto Scaling does, refusing a second completion of the same action."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def record(self, params, **_) -> None:
        self.calls.append(dict(params))

    def answer(self, **_):
        token = self.calls[-1]["LifecycleActionToken"]
        if [c["LifecycleActionToken"] for c in self.calls].count(token) > 1:
            return (
                AWSResponse("https://autoscaling", 400, {}, None),
                {
                    "Error": {"Code": "ValidationError", "Message": "No active Lifecycle Action found with token"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
            )
        return AWSResponse("https://autoscaling", 200, {}, None), {"ResponseMetadata": {"HTTPStatusCode": 200}}

    @property
    def hooks(self):
        return (
            ("provide-client-params.autoscaling.CompleteLifecycleAction", self.record),
            ("before-call.autoscaling.CompleteLifecycleAction", self.answer),
        )


def test_an_instance_leaving_the_group_becomes_the_ami_the_next_launch_boots(stack, keeper):
    instance_id = member(stack)
    seed = parameter()
    done = Completions()
    result = keeper.invoke(leaving(stack, instance_id), hooks=done.hooks)
    (image,) = saved(instance_id)
    tags = {t["Key"]: t["Value"] for t in image["Tags"]}
    assert (tags["Role"], tags["spotyard:fleet"], tags["spotyard:stack"]) == ("workbench", "workbench", "spotyard/dev")
    (snapshot,) = snapshots_of(image["ImageId"])
    assert {t["Key"]: t["Value"] for t in snapshot["Tags"]} == {  # found by the sweep even once the AMI is gone
        "Name": tags["Name"],
        "Role": "workbench",
        "spotyard:stack": "spotyard/dev",
        "spotyard:fleet": "workbench",
        "spotyard:source-instance": instance_id,
    }
    assert result["started"] and result["parameterMoved"]
    assert parameter() == image["ImageId"] != seed
    (completion,) = done.calls
    assert completion == {
        "AutoScalingGroupName": group(stack),
        "LifecycleHookName": hook_name(stack),
        "LifecycleActionToken": TOKEN_1,
        "LifecycleActionResult": "CONTINUE",
        "InstanceId": instance_id,
    }
    template = stack.one("aws:ec2/launchTemplate:LaunchTemplate", "workbench-template")
    assert template.inputs["imageId"] == f"resolve:ssm:{PARAMETER}"  # launches read the parameter


def test_the_parameter_moves_only_once_the_ami_is_available(stack, keeper, aws):
    instance_id = member(stack)
    seed = parameter()
    done = Completions()
    aws.hold_images_pending()
    keeper.invoke(leaving(stack, instance_id), hooks=done.hooks)
    (image,) = saved(instance_id)
    assert image["State"] == "pending" and parameter() == seed and done.calls == []
    aws.make_available(image["ImageId"])
    result = keeper.invoke(ami_state(image["ImageId"]), hooks=done.hooks)
    assert result["parameterMoved"] and parameter() == image["ImageId"]
    assert [c["LifecycleActionToken"] for c in done.calls] == [TOKEN_1]


def test_duplicated_events_start_one_ami_and_complete_once(stack, keeper):
    instance_id = member(stack)
    done = Completions()
    keeper.invoke(leaving(stack, instance_id), hooks=done.hooks)
    again = keeper.invoke(leaving(stack, instance_id), hooks=done.hooks)
    assert again["started"] is False and len(saved(instance_id)) == 1
    keeper.invoke(ami_state(saved(instance_id)[0]["ImageId"]), hooks=done.hooks)  # a late duplicate
    assert parameter() == saved(instance_id)[0]["ImageId"]


def test_the_parameter_never_moves_back_to_an_older_ami(stack, keeper, aws):
    older = aws.own_ami(
        "old-save",
        tags={
            "Role": "workbench",
            "spotyard:stack": "spotyard/dev",
            "spotyard:fleet": "workbench",
            "spotyard:source-instance": "i-0old",
        },
        age_days=5,
    )
    newer = aws.own_ami(
        "new-save",
        tags={
            "Role": "workbench",
            "spotyard:stack": "spotyard/dev",
            "spotyard:fleet": "workbench",
            "spotyard:source-instance": "i-0new",
        },
    )
    assert keeper.invoke(ami_state(newer))["parameterMoved"]
    assert keeper.invoke(ami_state(older))["parameterMoved"] is False
    assert parameter() == newer


def test_amis_of_others_and_failures(stack, keeper, aws):
    foreign = aws.own_ami("someone-else", tags={"Role": "workbench"})
    assert keeper.invoke(ami_state(foreign))["ignored"] is True
    instance_id = member(stack)
    done = Completions()
    aws.hold_images_pending()
    keeper.invoke(leaving(stack, instance_id), hooks=done.hooks)
    (image,) = saved(instance_id)
    seed = parameter()
    result = keeper.invoke(ami_state(image["ImageId"], "failed"), hooks=done.hooks)
    assert result["parameterMoved"] is False and parameter() == seed
    assert [c["LifecycleActionResult"] for c in done.calls] == ["CONTINUE"]  # the instance may go


def test_a_leaving_instance_of_another_stack_is_let_go(stack, keeper):
    (other,) = boto3.client("ec2").run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"]
    done = Completions()
    assert keeper.invoke(leaving(stack, other["InstanceId"]), hooks=done.hooks)["ignored"] is True
    assert len(done.calls) == 1 and saved(other["InstanceId"]) == []


def test_an_ami_saved_by_spotyard_stop_is_reused_by_the_lifecycle_hook(stack, keeper, aws):
    from spotyard_lambda.images import start_image
    from spotyard_lambda.instances import Instance

    instance_id = member(stack)
    ec2 = boto3.client("ec2")
    instance = Instance.from_api(ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0])
    image_id, _ = start_image(ec2, instance, "spotyard/dev", "workbench")
    done = Completions()
    result = keeper.invoke(leaving(stack, instance_id, token=TOKEN_2), hooks=done.hooks)
    assert result["imageId"] == image_id and result["started"] is False
    tags = {t["Key"]: t["Value"] for t in saved(instance_id)[0]["Tags"]}
    assert tags["spotyard:lifecycle-token"] == TOKEN_2 and done.calls[0]["LifecycleActionToken"] == TOKEN_2


def test_the_sweep_keeps_the_newest_and_spares_referenced_and_foreign_amis(stack, keeper, aws):
    ages = {"a": 50, "b": 40, "c": 30, "d": 20, "e": 10}
    ids = {name: save_as_spotyard(aws, name, age) for name, age in ages.items()}
    foreign = aws.own_ami("foreign", age_days=60, tags={"Role": "workbench"})
    other_stack = save_as_spotyard(aws, "prod", 60, stack="spotyard/prod")
    boto3.client("ssm").put_parameter(Name=PARAMETER, Value=ids["a"], Type="String", Overwrite=True)
    template = stack.one("aws:ec2/launchTemplate:LaunchTemplate", "workbench-template").id
    boto3.client("ec2").create_launch_template_version(
        LaunchTemplateId=template, LaunchTemplateData={"ImageId": ids["b"]}
    )
    snapshots = {
        name: {s["SnapshotId"] for s in snapshots_of(image)}
        for name, image in {**ids, "foreign": foreign, "prod": other_stack}.items()
    }

    result = keeper.invoke(events.load("scheduled-event"))
    assert result["removed"] == {"workbench": [ids["c"]]}
    assert result["snapshotsDeleted"] == sorted(snapshots["c"])
    left = {i["ImageId"] for i in boto3.client("ec2").describe_images(Owners=["self"])["Images"]}
    assert {ids["a"], ids["b"], ids["d"], ids["e"], foreign, other_stack} <= left and ids["c"] not in left
    left = remaining_snapshots()
    assert snapshots["c"].isdisjoint(left) and set().union(*(v for k, v in snapshots.items() if k != "c")) <= left
    assert keeper.invoke(events.load("scheduled-event"))["removed"] == {"workbench": []}


def test_the_sweep_deletes_the_snapshots_an_earlier_sweep_left_behind(stack, keeper, aws):
    """An AMI deregistered by a sweep that then failed (or by hand): its snapshots, tagged
    as the stack's, are deleted by the next sweep; a snapshot of a pending AMI is kept."""
    gone = save_as_spotyard(aws, "gone", 10)
    left_behind = {s["SnapshotId"] for s in snapshots_of(gone)}
    boto3.client("ec2").deregister_image(ImageId=gone)
    aws.hold_images_pending()
    pending = save_as_spotyard(aws, "pending", 0)
    kept = {s["SnapshotId"] for s in snapshots_of(pending)}
    before = remaining_snapshots()

    result = keeper.invoke(events.load("scheduled-event"))
    assert result == {"removed": {"workbench": []}, "snapshotsDeleted": sorted(left_behind)}
    assert remaining_snapshots() == before - left_behind and kept <= remaining_snapshots()


def test_rules_hook_and_role(stack):
    hook = stack.one("aws:autoscaling/lifecycleHook:LifecycleHook", "images-workbench-leaving")
    assert hook.inputs["lifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    assert (hook.inputs["defaultResult"], hook.inputs["heartbeatTimeout"]) == ("CONTINUE", 3600)
    rule = stack.one("aws:cloudwatch/eventRule:EventRule", "images-lambda-leaving")
    pattern = json.loads(rule.inputs["eventPattern"])
    assert events.matches(pattern, leaving(stack, "i-0abcd1234ef567890"))
    other = events.load("ec2-instance-terminate-lifecycle-action")
    assert not events.matches(pattern, other)  # another group
    ami = json.loads(stack.one("aws:cloudwatch/eventRule:EventRule", "images-lambda-ami-states").inputs["eventPattern"])
    assert events.matches(ami, ami_state("ami-0123456789abcdef0"))
    assert not events.matches(ami, ami_state("ami-0123456789abcdef0", "pending"))
    sweep = stack.one("aws:cloudwatch/eventRule:EventRule", "images-lambda-sweep")
    assert sweep.inputs["scheduleExpression"] == "rate(1 day)"
    policy = Policy(json.loads(stack.one("aws:iam/rolePolicy:RolePolicy", "images-lambda-policy").inputs["policy"]))
    snapshot = "arn:aws:ec2:ap-northeast-1::snapshot/snap-0123456789abcdef0"
    assert policy.allows("ec2:CreateTags", Target(snapshot, {"ec2:CreateAction": "CreateImage"}))  # tag on create
    assert not policy.allows(
        "ec2:CreateTags", Target(snapshot, {"ec2:CreateAction": None, "ec2:ResourceTag/spotyard:stack": "spotyard/dev"})
    )
    assert policy.allows("ec2:DeleteSnapshot", Target(snapshot, {"ec2:ResourceTag/spotyard:stack": "spotyard/dev"}))
    assert not policy.allows("ec2:DeleteSnapshot", Target(snapshot, {"ec2:ResourceTag/spotyard:stack": None}))
    parameter_resource = stack.one("aws:ssm/parameter:Parameter", "workbench-ami")
    assert parameter_resource.ignore_changes == ["value"]  # the Lambda owns it now


def test_an_event_it_cannot_parse_fails(keeper):
    broken = events.load("ec2-instance-terminate-lifecycle-action")
    del broken["detail"]["LifecycleActionToken"]
    with pytest.raises(Exception, match="lifecycle action without"):
        keeper.invoke(broken)
    with pytest.raises(Exception, match="no ImageId and State"):
        keeper.invoke(events.load("ec2-ami-state-change", ImageId=None))
