"""The spotyard CLI against moto, with the stack deployed by the program: every command,
and each error a user can meet."""

from __future__ import annotations

import json

import boto3
import paramiko
import pytest
from click.testing import CliRunner

from spotyard.cli import main
from tests.conftest import REGION, ROOT, dev_config


def spotyard(*args: str) -> object:
    return CliRunner().invoke(main, ["--stack", "spotyard/dev", "--region", REGION, *args], catch_exceptions=False)


@pytest.fixture
def stack(deploy, aws):
    aws.own_ami("base", tags={"Role": "base"})
    config = dev_config()
    config["spotyard:fleets"]["workbench"]["image"] = {
        "roleTag": "workbench",
        "fallbackRoleTag": "base",
        "snapshotOnTerminate": True,
    }
    config["spotyard:fleets"]["workbench"]["ssh"]["bastion"] = "gw.example.com"
    config["spotyard:fleets"]["workbench"]["maxCapacity"] = 2  # Auto Scaling refuses a capacity above it
    return deploy(config)


def group_desired(run) -> int:
    name = run.one("aws:autoscaling/group:Group", "workbench-group").id
    return boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][
        0
    ]["DesiredCapacity"]


def test_status_as_json_describes_fleets_and_instances(stack):
    result = spotyard("status", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["stack"], report["region"]) == ("spotyard/dev", REGION)
    fleets = {f["name"]: f for f in report["fleets"]}
    assert (fleets["workbench"]["engine"], fleets["workbench"]["desired"], fleets["workbench"]["running"]) == (
        "asg",
        1,
        1,
    )
    assert (fleets["workers"]["engine"], fleets["workers"]["desired"], fleets["workers"]["instances"]) == (
        "spot-fleet",
        0,
        [],
    )
    (instance,) = fleets["workbench"]["instances"]
    described = boto3.client("ec2").describe_instances(InstanceIds=[instance["id"]])["Reservations"][0]["Instances"][0]
    assert instance["type"] == described["InstanceType"] and instance["privateIp"] == described["PrivateIpAddress"]
    assert instance["availabilityZone"] == described["Placement"]["AvailabilityZone"]
    assert instance["dnsName"] == f"workbench-{instance['id']}.spotyard.internal"
    assert instance["market"] == "on-demand"  # moto starts Auto Scaling instances on-demand
    assert instance["uptimeSeconds"] >= 0
    prices = boto3.client("ec2").describe_spot_price_history(InstanceTypes=[instance["type"]])["SpotPriceHistory"]
    expected = {p["SpotPrice"] for p in prices if p["AvailabilityZone"] == instance["availabilityZone"]}
    assert instance["spotPrice"] in expected | ({None} if not expected else set())


def test_status_shows_spot_instances_of_a_spot_fleet(stack, aws):
    request = stack.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").id
    template = stack.one("aws:ec2/launchTemplate:LaunchTemplate", "workers-template").id
    launched = aws.scale_spot_fleet(request, 2, template)
    workers = next(f for f in json.loads(spotyard("status", "--json").output)["fleets"] if f["name"] == "workers")
    assert workers["desired"] == 2 and sorted(i["id"] for i in workers["instances"]) == sorted(launched)
    assert {i["market"] for i in workers["instances"]} == {"spot"}


def test_status_prints_tables_for_people(stack):
    result = spotyard("status")
    assert result.exit_code == 0
    for text in ("spotyard/dev in ap-northeast-1", "workbench", "workers", "spot-fleet", "asg"):
        assert text in result.output


def test_launch_sets_the_capacity_of_either_engine(stack):
    assert spotyard("launch", "workbench", "-n", "2").output == "workbench: capacity 1 -> 2\n"
    assert group_desired(stack) == 2
    assert spotyard("launch", "workers", "--count", "3").exit_code == 0
    request = stack.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").id
    assert (
        boto3.client("ec2").describe_spot_fleet_requests(SpotFleetRequestIds=[request])["SpotFleetRequestConfigs"][0][
            "SpotFleetRequestConfig"
        ]["TargetCapacity"]
        == 3
    )


def test_stop_saves_an_ami_first_when_the_fleet_keeps_images(stack):
    (running,) = [
        i["id"]
        for f in json.loads(spotyard("status", "--json").output)["fleets"]
        if f["name"] == "workbench"
        for i in f["instances"]
    ]
    result = spotyard("stop", "workbench")
    assert result.exit_code == 0, result.output
    (image,) = boto3.client("ec2").describe_images(
        Owners=["self"], Filters=[{"Name": "tag:spotyard:source-instance", "Values": [running]}]
    )["Images"]
    assert result.output.splitlines() == [
        f"workbench: saving {running} as {image['ImageId']}",
        "workbench: 1 AMI(s) available",
        "workbench: capacity 1 -> 0",
    ]
    assert {t["Key"]: t["Value"] for t in image["Tags"]}["Role"] == "workbench"
    assert group_desired(stack) == 0


def test_stop_without_images_only_lowers_capacity(stack):
    spotyard("launch", "workers", "-n", "2")
    result = spotyard("stop", "workers")
    assert result.output == "workers: capacity 2 -> 0\n"
    assert (
        boto3.client("ec2").describe_images(
            Owners=["self"], Filters=[{"Name": "tag:spotyard:fleet", "Values": ["workers"]}]
        )["Images"]
        == []
    )


def test_stop_terminates_what_a_no_termination_scale_in_left_on_a_spot_fleet(stack, aws):
    """The autoscaler and idle stop leave `noTermination` on the request; Spot Fleet keeps it
    (tests/harness/moto_fixes/): the CLI's lower targets must say `default`."""
    request = stack.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").id
    instances = aws.scale_spot_fleet(
        request, 3, stack.one("aws:ec2/launchTemplate:LaunchTemplate", "workers-template").id
    )
    ec2 = boto3.client("ec2")
    ec2.modify_spot_fleet_request(
        SpotFleetRequestId=request, TargetCapacity=3, ExcessCapacityTerminationPolicy="noTermination"
    )

    def running():
        return sorted(
            i["InstanceId"]
            for r in ec2.describe_instances(InstanceIds=instances)["Reservations"]
            for i in r["Instances"]
            if i["State"]["Name"] == "running"
        )

    assert spotyard("launch", "workers", "-n", "2").exit_code == 0
    assert len(running()) == 2
    assert spotyard("stop", "workers").output == "workers: capacity 2 -> 0\n"
    assert running() == []


def test_stop_lowers_the_minimum_of_a_group_that_keeps_one(deploy):
    """Auto Scaling refuses a desired capacity below MinSize: the minimum goes down with it."""
    config = dev_config()
    config["spotyard:fleets"]["workbench"] |= {"minCapacity": 1, "capacity": 1}
    run = deploy(config)
    result = spotyard("stop", "workbench")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "workbench: capacity 1 -> 0",
        "workbench: minimum 1 -> 0 (Auto Scaling "
        "keeps capacity at or above it; the start schedule or `pulumi up "
        "--refresh` restores it)",
    ]
    name = run.one("aws:autoscaling/group:Group", "workbench-group").id
    group = boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][
        0
    ]
    assert (group["MinSize"], group["DesiredCapacity"], group["Instances"]) == (0, 0, [])


def test_ssh_config_matches_the_stack_output(stack):
    result = spotyard("ssh-config")
    assert result.output == stack.outputs["sshConfig"]
    host = paramiko.SSHConfig.from_text(result.output).lookup("workbench")
    assert (host["hostname"], host["user"], host["proxyjump"]) == (
        "workbench.spotyard.internal",
        "ec2-user",
        "gw.example.com",
    )


def test_an_unknown_fleet_names_the_known_ones(stack):
    result = CliRunner().invoke(main, ["--stack", "spotyard/dev", "--region", REGION, "launch", "workbnch"])
    assert result.exit_code == 1
    assert "Error: no fleet 'workbnch' in spotyard/dev; its fleets are: workbench, workers" in result.output


def test_nothing_deployed_says_so(aws):
    for command in (["status"], ["launch", "workbench"], ["ssh-config"]):
        result = CliRunner().invoke(main, ["--stack", "prod", "--region", REGION, *command])
        assert result.exit_code == 1
        assert "nothing deployed: no spotyard fleet is tagged spotyard:stack=spotyard/prod" in result.output


def test_stack_names_take_the_project_from_pulumi_yaml(monkeypatch, aws):
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["--stack", "staging", "--region", REGION, "status"])
    assert "spotyard:stack=spotyard/staging" in result.output


def test_no_credentials_is_a_clear_error(monkeypatch, tmp_path):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    result = CliRunner().invoke(main, ["--stack", "dev", "--region", REGION, "status"])
    assert result.exit_code == 1
    assert "no AWS credentials: run `aws configure`" in result.output


def test_no_region_is_a_clear_error(no_region, aws):
    result = CliRunner().invoke(main, ["--stack", "dev", "status"])  # and no Pulumi.dev.yaml here
    assert result.exit_code == 1
    assert "no AWS region: pass --region, set AWS_REGION, or set aws:region in Pulumi.<stack>.yaml" in result.output


def test_the_cli_runs_as_a_module():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "spotyard", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and "launch" in result.stdout and "ssh-config" in result.stdout


@pytest.fixture
def no_region(monkeypatch, tmp_path):
    """Neither AWS_REGION nor AWS_DEFAULT_REGION, no AWS config file, in an empty directory."""
    for key in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def where_it_looked(*args: str) -> str:
    result = CliRunner().invoke(main, [*args, "status"])
    assert result.exit_code == 1
    return result.output.split(" in ")[-1].split()[0]


def test_the_region_comes_from_the_stack_file_when_nothing_else_sets_it(aws, no_region, monkeypatch):
    (no_region / "Pulumi.staging.yaml").write_text("config:\n  aws:region: eu-west-1\n")
    assert where_it_looked("--stack", "staging") == "eu-west-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-2")
    assert where_it_looked("--stack", "staging") == "us-east-2"
    monkeypatch.setenv("AWS_REGION", "us-west-2")  # AWS_REGION wins over AWS_DEFAULT_REGION, as in the AWS CLI
    assert where_it_looked("--stack", "staging") == "us-west-2"
    assert where_it_looked("--stack", "staging", "--region", "sa-east-1") == "sa-east-1"


def test_the_shipped_stack_file_gives_the_cli_its_region(aws, no_region, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert where_it_looked("--stack", "dev") == dev_config()["aws:region"]


def test_an_endpoint_that_refuses_ends_in_one_line_after_few_attempts(monkeypatch):
    import socket

    from spotyard import cli

    with socket.socket() as probe:  # a port nobody listens on: connections are refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    attempts = []
    real = cli.session_for

    def counted(stack, region):
        session = real(stack, region)
        session.events.register("before-send", lambda **kwargs: attempts.append(kwargs["request"].url))
        return session

    monkeypatch.setattr(cli, "session_for", counted)
    result = CliRunner().invoke(main, ["--stack", "dev", "--region", REGION, "status"])
    assert result.exit_code == 1
    assert (
        result.output == f'Error: AWS unreachable: Could not connect to the endpoint URL: "http://127.0.0.1:{port}/"\n'
    )
    assert len(attempts) == cli.CLIENT_CONFIG.retries["total_max_attempts"] == 2  # the first try included
    assert cli.CLIENT_CONFIG.connect_timeout <= 5 and cli.CLIENT_CONFIG.read_timeout <= 30


def test_plain_pulumi_uses_the_state_make_up_writes():
    """Pulumi.yaml's backend is the Makefile's default PULUMI_BACKEND_URL, relative to the
    project directory (pulumi resolves a relative file:// path against where it runs)."""
    import re

    import yaml

    url = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["backend"]["url"]
    makefile = re.search(
        r"^export PULUMI_BACKEND_URL \?= file://\$\(CURDIR\)/(\S+)$", (ROOT / "Makefile").read_text(), re.M
    )[1]
    assert url.startswith("file://./") and (ROOT / url.removeprefix("file://")).resolve() == (ROOT / makefile).resolve()
    assert (ROOT / makefile).is_dir()  # in the clone, so the first plain `pulumi stack select` finds it
