"""The sshConfig output, parsed back with paramiko: `ssh <fleet>` lands where it should."""

from __future__ import annotations

import subprocess

import paramiko
import pytest

from spotyard.ssh_config import SshHost, render
from tests.conftest import dev_config


def lookup(text: str, host: str) -> dict:
    return paramiko.SSHConfig.from_text(text).lookup(host)


@pytest.fixture
def config_with_bastion():
    config = dev_config()
    config["spotyard:fleets"]["workbench"]["ssh"]["bastion"] = "gw.example.com"
    return config


def test_ssh_fleet_resolves_to_its_dns_name_user_and_bastion(deploy, config_with_bastion):
    text = deploy(config_with_bastion).outputs["sshConfig"]
    fleet = lookup(text, "workbench")
    assert fleet["hostname"] == "workbench.spotyard.internal"
    assert fleet["user"] == "ec2-user"
    assert fleet["proxyjump"] == "gw.example.com"
    assert fleet["stricthostkeychecking"] == "no" and fleet["userknownhostsfile"] == "/dev/null"
    one = lookup(text, "workbench-i-0123456789abcdef0")
    assert one["hostname"] == "workbench-i-0123456789abcdef0.spotyard.internal"
    assert one["proxyjump"] == "gw.example.com"


def test_only_fleets_with_ssh_get_an_entry(deploy):
    text = deploy(dev_config()).outputs["sshConfig"]
    assert "Host workbench\n" in text and "Host workers" not in text
    assert "proxyjump" not in lookup(text, "workbench")


def test_without_dns_ssh_goes_through_session_manager(deploy):
    config = dev_config()
    del config["spotyard:dns"]
    text = deploy(config).outputs["sshConfig"]
    fleet = lookup(text, "workbench")
    assert fleet["user"] == "ec2-user"
    command = fleet["proxycommand"]
    assert command.startswith("aws ssm start-session --region ap-northeast-1 --target $(aws ec2 describe-instances")
    assert "Name=tag:spotyard:stack,Values=spotyard/dev Name=tag:spotyard:fleet,Values=workbench" in command
    assert "--document-name AWS-StartSSHSession --parameters portNumber=22" in command
    one = lookup(text, "workbench-i-0123456789abcdef0")["proxycommand"]
    assert "--target i-$(echo workbench-i-0123456789abcdef0 | sed 's/.*-i-//')" in one


def test_the_instance_id_lookup_in_the_proxy_command_works_in_a_shell():

    text = render([SshHost(fleet="box", user="dev", stack_tag="spotyard/dev", region="us-east-1")])
    command = lookup(text, "box-i-0abc").get("proxycommand")
    target = command.split("--target ", 1)[1].split(" --document-name")[0]
    assert subprocess.run(["sh", "-c", f"echo {target}"], capture_output=True, text=True).stdout.strip() == "i-0abc"


def test_no_fleet_with_ssh_renders_nothing():
    assert render([]) == ""
