"""The sshConfig output, parsed back with paramiko: `ssh <fleet>` lands where it should. The
Session Manager ProxyCommand is run in sh against a recording stand-in for the AWS CLI."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import paramiko
import pytest

from spotyard.ssh_config import SshHost, render
from tests.conftest import dev_config

INSTANCE = "i-0123456789abcdef0"


def lookup(text: str, host: str) -> dict:
    return paramiko.SSHConfig.from_text(text).lookup(host)


class FakeAwsCli:
    """`aws` on PATH that records each command line and answers describe-instances."""

    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        self.log = root / "aws.log"
        (root / "bin").mkdir()
        self.home.mkdir()
        script = root / "bin" / "aws"
        script.write_text(
            '#!/bin/sh\nprintf "%s\\n" "$*" >> "$AWS_LOG"\n'
            'case "$2" in describe-instances) echo "$FAKE_INSTANCE";; esac\n'
        )
        script.chmod(0o755)
        self.env = {"PATH": f"{root / 'bin'}:{os.environ['PATH']}", "HOME": str(self.home), "AWS_LOG": str(self.log)}

    def run(self, proxy_command: str, running: str = INSTANCE) -> subprocess.CompletedProcess:
        """What ssh does with ProxyCommand (after expanding %h and %p): `$SHELL -c "exec <command>"`."""
        return subprocess.run(
            ["sh", "-c", f"exec {proxy_command}"],
            capture_output=True,
            text=True,
            env={**self.env, "FAKE_INSTANCE": running},
            check=False,
        )

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def aws_cli(tmp_path) -> FakeAwsCli:
    return FakeAwsCli(tmp_path)


def test_the_sample_stack_reaches_workbench_through_session_manager_with_your_key(deploy, aws_cli):
    """Pulumi.dev.yaml as shipped: a private zone, no bastion, no open port, no key pair."""
    text = deploy(dev_config()).outputs["sshConfig"]
    fleet = lookup(text, "workbench")
    assert fleet["user"] == "ec2-user" and fleet["hostname"] == "workbench"  # not the private zone's name
    assert fleet["identityfile"] == [os.path.expanduser("~/.ssh/id_ed25519")]
    assert fleet["identitiesonly"] == "yes" and "forwardagent" not in fleet and "proxyjump" not in fleet
    result = aws_cli.run(fleet["proxycommand"])
    assert result.returncode == 0, result.stderr
    find, push, start = aws_cli.calls()
    assert find.startswith(
        "ec2 describe-instances --region ap-northeast-1 --output text --filters "
        "Name=tag:spotyard:stack,Values=spotyard/dev Name=tag:spotyard:fleet,Values=workbench "
        "Name=instance-state-name,Values=running --query "
    )
    assert find.endswith("sort_by(Reservations[].Instances[], &LaunchTime)[-1].InstanceId")
    assert push == (
        f"ec2-instance-connect send-ssh-public-key --region ap-northeast-1 --instance-id {INSTANCE} "
        f"--instance-os-user ec2-user --ssh-public-key file://{aws_cli.home}/.ssh/id_ed25519.pub"
    )
    assert start == (
        f"ssm start-session --region ap-northeast-1 --target {INSTANCE} "
        "--document-name AWS-StartSSHSession --parameters portNumber=22"
    )


def test_one_instance_by_name_goes_to_that_instance(deploy, aws_cli):
    text = deploy(dev_config()).outputs["sshConfig"]
    one = lookup(text, f"workbench-{INSTANCE}")
    assert aws_cli.run(one["proxycommand"], running="None").returncode == 0
    push, start = aws_cli.calls()  # no lookup: the name holds the id
    assert f"--instance-id {INSTANCE} " in push and f"--target {INSTANCE} " in start


def test_a_fleet_with_nothing_running_says_so_and_opens_nothing(aws_cli):
    text = render([SshHost(fleet="box", user="dev", stack_tag="spotyard/dev", region="us-east-1")])
    result = aws_cli.run(lookup(text, "box")["proxycommand"], running="None")
    assert result.returncode == 1
    assert result.stderr.strip() == "spotyard: no running instance of box (spotyard launch box)"
    assert [call.split()[1] for call in aws_cli.calls()] == ["describe-instances"]


def test_identity_file_and_agent_forwarding_follow_the_config(deploy, aws_cli):
    config = dev_config()
    config["spotyard:fleets"]["workbench"]["ssh"] |= {"identityFile": "/keys/work_rsa", "forwardAgent": True}
    fleet = lookup(deploy(config).outputs["sshConfig"], "workbench")
    assert fleet["identityfile"] == ["/keys/work_rsa"] and fleet["forwardagent"] == "yes"
    aws_cli.run(fleet["proxycommand"])
    assert aws_cli.calls()[1].endswith("--ssh-public-key file:///keys/work_rsa.pub")


@pytest.fixture
def config_with_bastion():
    config = dev_config()
    config["spotyard:fleets"]["workbench"]["ssh"]["bastion"] = "gw.example.com"
    return config


def test_with_a_bastion_ssh_jumps_to_the_dns_name(deploy, config_with_bastion):
    text = deploy(config_with_bastion).outputs["sshConfig"]
    fleet = lookup(text, "workbench")
    assert fleet["hostname"] == "workbench.spotyard.internal"
    assert fleet["user"] == "ec2-user"
    assert fleet["proxyjump"] == "gw.example.com" and "proxycommand" not in fleet
    assert fleet["identityfile"] == [os.path.expanduser("~/.ssh/id_ed25519")]
    assert fleet["stricthostkeychecking"] == "no" and fleet["userknownhostsfile"] == "/dev/null"
    one = lookup(text, "workbench-i-0123456789abcdef0")
    assert one["hostname"] == "workbench-i-0123456789abcdef0.spotyard.internal"
    assert one["proxyjump"] == "gw.example.com"


def test_with_port_22_open_ssh_goes_straight_to_the_dns_name(deploy):
    config = dev_config()
    config["spotyard:fleets"]["workbench"]["ssh"]["allowFrom"] = ["203.0.113.0/24"]
    fleet = lookup(deploy(config).outputs["sshConfig"], "workbench")
    assert fleet["hostname"] == "workbench.spotyard.internal"
    assert "proxyjump" not in fleet and "proxycommand" not in fleet


def test_only_fleets_with_ssh_get_an_entry(deploy):
    text = deploy(dev_config()).outputs["sshConfig"]
    assert "Host workbench\n" in text and "Host workers" not in text


def test_without_dns_a_bastion_or_open_port_cannot_help_and_session_manager_is_used(deploy, aws_cli):
    config = dev_config()
    del config["spotyard:dns"]
    config["spotyard:fleets"]["workbench"]["ssh"] |= {"bastion": "gw.example.com", "allowFrom": ["10.0.0.0/8"]}
    fleet = lookup(deploy(config).outputs["sshConfig"], "workbench")
    assert fleet["hostname"] == "workbench" and "proxyjump" not in fleet
    assert aws_cli.run(fleet["proxycommand"]).returncode == 0
    assert [call.split()[1] for call in aws_cli.calls()] == [
        "describe-instances",
        "send-ssh-public-key",
        "start-session",
    ]


def test_fleet_names_with_hyphens_still_yield_the_instance_id(aws_cli):
    text = render([SshHost(fleet="gpu-i-box", user="dev", stack_tag="spotyard/dev", region="us-east-1")])
    aws_cli.run(lookup(text, "gpu-i-box-i-0abc")["proxycommand"])
    assert "--target i-0abc " in aws_cli.calls()[-1]


def test_no_fleet_with_ssh_renders_nothing():
    assert render([]) == ""
