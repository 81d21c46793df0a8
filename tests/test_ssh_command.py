"""`spotyard ssh` against moto, up to the exec of ssh: the instance it picks, the key it pushes
(moto's ec2-instance-connect accepts any SendSSHPublicKey without checking it), the command
line it builds, and every AWS call — its own and the Session Manager call of that command
line — checked against the user policy in the README."""

from __future__ import annotations

import json
import re
import shlex
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from click.testing import CliRunner

from spotyard import cli
from tests.conftest import REGION, ROOT, dev_config
from tests.harness.iam import Call, CallRecorder, Policy, denied, targets

PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@laptop"
OTHER_KEY = PUBLIC_KEY.replace("me@laptop", "me@other")


def readme_user_policy(stack_tag: str = "spotyard/dev") -> Policy:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- ssh-user-policy -->\n```json\n(.*?)\n```", text, re.S)[1]
    return Policy(json.loads(block.replace("spotyard/dev", stack_tag)))


class Laptop:
    """A home with a key pair, the recorded AWS calls of the CLI, and the ssh it would exec."""

    def __init__(self, tmp_path, monkeypatch) -> None:
        self.home = tmp_path / "home"
        (self.home / ".ssh").mkdir(parents=True)
        (self.home / ".ssh" / "id_ed25519.pub").write_text(PUBLIC_KEY + "\n")
        monkeypatch.setenv("HOME", str(self.home))
        self.recorder = CallRecorder()
        real = cli.session_for
        monkeypatch.setattr(cli, "session_for", lambda stack, region: self.recorder.attach(real(stack, region)))
        self.executed: list[list[str]] = []
        monkeypatch.setattr(cli.os, "execvp", lambda file, argv: self.executed.append(argv))

    def spotyard(self, *args: str):
        return CliRunner().invoke(cli.main, ["--stack", "spotyard/dev", "--region", REGION, *args])

    def key_pushes(self) -> list[dict]:
        return [c.params for c in self.recorder.calls if c.action == "ec2-instance-connect:SendSSHPublicKey"]

    def session_call(self) -> Call:
        """The StartSession the exec'd ssh makes through its ProxyCommand."""
        (argv,) = self.executed
        proxy = next(a.split("=", 1)[1] for a in argv if a.startswith("ProxyCommand="))
        words = shlex.split(proxy)
        assert words[:3] == ["aws", "ssm", "start-session"]
        option = {words[i]: words[i + 1] for i in range(3, len(words) - 1, 2)}
        call = Call(
            "ssm:StartSession",
            {"Target": option["--target"], "DocumentName": option["--document-name"]},
            option["--region"],
        )
        return Call(call.action, call.params, call.region, tuple(targets(call)))


@pytest.fixture
def laptop(tmp_path, monkeypatch) -> Laptop:
    return Laptop(tmp_path, monkeypatch)


def workbench_instances(run) -> list[str]:
    group = run.one("aws:autoscaling/group:Group", "workbench-group").id
    autoscaling = boto3.client("autoscaling")
    autoscaling.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=2)
    ids = [
        i["InstanceId"]
        for i in autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0][
            "Instances"
        ]
    ]
    # Launch times a minute apart, the later id launched first: "newest" must follow the time.
    from moto.ec2.models import ec2_backends

    backend = ec2_backends["123456789012"][REGION]
    now = datetime.now(UTC)
    for minutes, instance_id in enumerate(sorted(ids, reverse=True)):
        backend.get_instance(instance_id).launch_time = (now + timedelta(minutes=minutes)).isoformat()
    return sorted(ids, reverse=True)  # oldest first


@pytest.fixture
def stack(deploy):
    return deploy(dev_config())


def test_ssh_to_a_fleet_pushes_the_key_to_its_newest_instance_and_goes_through_session_manager(stack, laptop):
    _, newest = workbench_instances(stack)
    result = laptop.spotyard("ssh", "workbench")
    assert result.exit_code == 0, result.output
    assert laptop.key_pushes() == [{"InstanceId": newest, "InstanceOSUser": "ec2-user", "SSHPublicKey": PUBLIC_KEY}]
    assert laptop.executed == [
        [
            "ssh",
            "-o",
            "IdentityFile=~/.ssh/id_ed25519",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ServerAliveInterval=30",
            "-o",
            f"ProxyCommand=aws ssm start-session --region {REGION} --target {newest} "
            "--document-name AWS-StartSSHSession --parameters portNumber=%p",
            f"ec2-user@{newest}",
        ]
    ]


def test_every_call_is_allowed_by_the_readme_user_policy_and_only_for_its_stack(stack, laptop):
    workbench_instances(stack)
    assert laptop.spotyard("ssh", "workbench").exit_code == 0
    calls = [*laptop.recorder.calls, laptop.session_call()]
    assert {c.action for c in calls} >= {
        "ec2-instance-connect:SendSSHPublicKey",
        "ssm:StartSession",
        "ec2:DescribeInstances",
    }
    assert denied(readme_user_policy(), calls) == []
    assert readme_user_policy().wildcard_violations() == []
    other_stack = denied(readme_user_policy("spotyard/prod"), calls)
    assert {r.split(" on ")[0] for r in other_stack} == {"ec2-instance-connect:SendSSHPublicKey", "ssm:StartSession"}
    assert not any("document/" in r for r in other_stack)  # the document is allowed; the instance is not


def test_the_policy_lets_the_key_in_only_for_the_ssh_user(stack, laptop):
    workbench_instances(stack)
    laptop.spotyard("ssh", "workbench")
    (push,) = [c for c in laptop.recorder.calls if c.action == "ec2-instance-connect:SendSSHPublicKey"]
    as_root = Call(push.action, {**push.params, "InstanceOSUser": "root"}, push.region)
    refused = denied(
        readme_user_policy(), [Call(as_root.action, as_root.params, as_root.region, tuple(targets(as_root)))]
    )
    assert [r.split(" on ")[0] for r in refused] == ["ec2-instance-connect:SendSSHPublicKey"]


def test_ssh_to_one_named_instance_runs_the_command(stack, laptop):
    oldest, _ = workbench_instances(stack)
    result = laptop.spotyard("ssh", f"workbench-{oldest}", "--", "uptime", "-p")
    assert result.exit_code == 0, result.output
    assert laptop.key_pushes()[0]["InstanceId"] == oldest
    assert laptop.executed[0][-4:] == [f"ec2-user@{oldest}", "--", "uptime", "-p"]


def test_the_bastion_route_jumps_to_the_instance_dns_name_with_the_key_pushed(deploy, laptop):
    config = dev_config()
    config["spotyard:fleets"]["workbench"]["ssh"] |= {
        "bastion": "gw.example.com",
        "forwardAgent": True,
        "identityFile": "~/.ssh/work",
    }
    (laptop.home / ".ssh" / "work.pub").write_text(PUBLIC_KEY)
    run = deploy(config)
    _, newest = workbench_instances(run)
    assert laptop.spotyard("ssh", "workbench").exit_code == 0
    (argv,) = laptop.executed
    assert "ProxyJump=gw.example.com" in argv and "ForwardAgent=yes" in argv and "IdentityFile=~/.ssh/work" in argv
    assert not any(a.startswith("ProxyCommand=") for a in argv)
    assert argv[-1] == f"ec2-user@workbench-{newest}.spotyard.internal"
    assert laptop.key_pushes()[0]["InstanceId"] == newest


def test_an_identity_file_on_the_command_line_wins(stack, laptop):
    workbench_instances(stack)
    (laptop.home / "other.pub").write_text(OTHER_KEY + "\n")
    result = laptop.spotyard("ssh", "-i", str(laptop.home / "other"), "workbench")
    assert result.exit_code == 0, result.output
    assert laptop.key_pushes()[0]["SSHPublicKey"] == OTHER_KEY
    assert f"IdentityFile={laptop.home / 'other'}" in laptop.executed[0]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("workbench-i-0123456789abcdef0", "i-0123456789abcdef0 is not a running instance of workbench"),
        ("workers", "fleet 'workers' has no ssh"),
        ("nope", "no fleet 'nope' in spotyard/dev"),
    ],
)
def test_what_cannot_be_reached_is_one_line_and_nothing_is_pushed(stack, laptop, name, message):
    result = laptop.spotyard("ssh", name)
    assert result.exit_code == 1 and f"Error: {message}" in result.output
    assert laptop.key_pushes() == [] and laptop.executed == []


def test_a_fleet_with_nothing_running_says_how_to_start_it(stack, laptop):
    group = stack.one("aws:autoscaling/group:Group", "workbench-group").id
    boto3.client("autoscaling").set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=0)
    result = laptop.spotyard("ssh", "workbench")
    assert "Error: no running instance of workbench (spotyard launch workbench)" in result.output


def test_a_missing_public_key_says_how_to_make_one(stack, laptop):
    (laptop.home / ".ssh" / "id_ed25519.pub").unlink()
    result = laptop.spotyard("ssh", "workbench")
    assert result.exit_code == 1 and "ssh-keygen -t ed25519 -f ~/.ssh/id_ed25519" in result.output
    assert laptop.key_pushes() == []


def test_the_instance_side_has_what_session_manager_and_instance_connect_need(stack):
    """The SSM agent needs AmazonSSMManagedInstanceCore on the instance role (a managed policy,
    which the IAM check cannot evaluate: its attachment is checked); Instance Connect's sshd
    reads the pushed key from IMDS, which the launch template keeps on (IMDSv2). The instance
    role needs nothing for the key push itself."""
    for fleet in ("workbench", "workers"):
        role = stack.one("aws:iam/role:Role", f"{fleet}-instance-role").outputs["name"]
        attached = {
            r.inputs["policyArn"]
            for r in stack.resources
            if r.type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment" and r.inputs["role"] == role
        }
        assert "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore" in attached
        metadata = stack.one("aws:ec2/launchTemplate:LaunchTemplate", f"{fleet}-template").inputs["metadataOptions"]
        assert (metadata["httpEndpoint"], metadata["httpTokens"]) == ("enabled", "required")
    roles = {
        stack.one("aws:iam/role:Role", f"{fleet}-instance-role").outputs["name"] for fleet in ("workbench", "workers")
    }
    instance_statements = [
        s
        for r in stack.resources
        if r.type == "aws:iam/rolePolicy:RolePolicy" and r.inputs["role"] in roles
        for s in json.loads(r.inputs["policy"])["Statement"]
    ]
    assert instance_statements and not any("ec2-instance-connect" in str(s.get("Action")) for s in instance_statements)
