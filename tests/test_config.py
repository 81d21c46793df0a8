"""The configuration contract (spec section 1): each rule, with a bad value, names its full key."""

from __future__ import annotations

import copy
from typing import Any

import pulumi
import pytest

from spotyard import config as schema
from spotyard.config_reader import Section
from tests.conftest import ROOT, dev_config

BASE: dict[str, Any] = {
    "aws:region": "ap-northeast-1",
    "spotyard:fleets": {"box": {"instanceTypes": ["m5.large"]}},
}


def load(values: dict[str, Any]) -> schema.StackConfig:
    return schema.load(values, project="spotyard", stack="dev", project_dir=ROOT)


def problems_of(values: dict[str, Any]) -> str:
    with pytest.raises(schema.ConfigError) as raised:
        load(values)
    return str(raised.value)


def with_fleet(**fields: Any) -> dict[str, Any]:
    values = copy.deepcopy(BASE)
    values["spotyard:fleets"]["box"].update(fields)
    return values


def test_minimal_config_gets_the_documented_defaults():
    fleet = load(BASE).fleets[0]
    assert (fleet.engine, fleet.allocation_strategy) == ("asg", "price-capacity-optimized")
    assert (fleet.min_capacity, fleet.capacity, fleet.max_capacity) == (0, 1, 1)
    assert fleet.image == schema.ImageConfig()
    assert fleet.interruption == schema.InterruptionConfig(decrement_capacity=False, on_rebalance="notify")
    assert load(BASE).stack_tag == "spotyard/dev"


def test_dev_stack_file_loads_and_documents_every_key(monkeypatch):
    config = load(dev_config())
    assert [f.name for f in config.fleets] == ["workbench", "workers"]
    assert {f.engine for f in config.fleets} == {"asg", "spot-fleet"}
    # Every key the loader reads appears in the commented example users copy.
    asked: set[str] = set()
    take = Section._take
    monkeypatch.setattr(Section, "_take", lambda self, name: (asked.add(name), take(self, name))[1])
    load(EVERY_KEY)
    text = (ROOT / "Pulumi.dev.yaml").read_text()
    missing = sorted(name for name in asked if f"{name}:" not in text)
    assert not missing, f"Pulumi.dev.yaml does not document {missing}"


EVERY_KEY: dict[str, Any] = {
    "spotyard:network": {"vpcId": "vpc-1", "subnetIds": ["subnet-1"]},
    "spotyard:dns": {"zoneName": "a.example.internal", "zoneId": "Z1", "ttl": 30},
    "spotyard:notifications": {"email": "ops@example.com"},
    "spotyard:tags": {"owner": "me"},
    "spotyard:fleets": {
        "box": {
            "engine": "spot-fleet",
            "instanceTypes": ["m5.large"],
            "allocationStrategy": "diversified",
            "capacity": 1,
            "minCapacity": 0,
            "maxCapacity": 2,
            "onDemandFallback": True,
            "elasticIp": "eipalloc-1",
            "image": {"roleTag": "box", "fallbackRoleTag": "base", "snapshotOnTerminate": True, "keep": 2},
            "home": {"mountPath": "/data", "retainOnDestroy": False, "uid": 1001, "gid": 1001},
            "ssh": {
                "keyName": "k",
                "allowFrom": ["sg-1", "10.0.0.0/8"],
                "user": "dev",
                "bastion": "gw.example.com",
                "identityFile": "~/.ssh/work_rsa",
                "forwardAgent": True,
            },
            "schedule": {"start": "cron(0 9 ? * MON-FRI *)", "stop": "rate(1 day)", "timezone": "Asia/Tokyo"},
            "idleStopMinutes": 30,
            "queue": {
                "messagesPerInstance": 5,
                "scaleInCooldownSeconds": 60,
                "visibilityTimeoutSeconds": 120,
                "bootSeconds": 90,
                "warmUp": {"schedule": "cron(50 1 * * ? *)", "timezone": "Asia/Tokyo", "capacity": 2, "minutes": 20},
            },
            "results": {"bucket": "create"},
            "loadBalancer": {
                "targetGroupArns": [
                    "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/web/0123456789abcdef"
                ]
            },
            "interruption": {"decrementCapacity": True, "onRebalance": "drain"},
            "userData": "#!/bin/bash\necho hi\n",
            "rootVolume": {"size": 100, "type": "gp3", "iops": 6000, "throughput": 500},
            "instanceRole": {
                "managedPolicyArns": ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"],
                "statements": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
            },
            "securityGroupIds": ["sg-0123456789abcdef0"],
            "ingress": [{"port": 80, "toPort": 81, "protocol": "tcp", "from": ["0.0.0.0/0"]}],
            "spotMaxPrice": "0.05",
        }
    },
    "spotyard:iam": {"permissionsBoundary": "arn:aws:iam::123456789012:policy/boundary", "path": "/spotyard/"},
    "spotyard:batch": {"instanceTypes": ["m7i"], "maxVcpus": 8},
    "spotyard:jobs": {
        "nightly": {
            "image": "busybox",
            "command": ["true"],
            "vcpus": 1,
            "memoryMiB": 512,
            "environment": {"A": "1"},
            "secrets": {"B": "/b"},
            "timeoutSeconds": 60,
            "retries": 1,
            "schedule": {"expression": "rate(1 day)", "timezone": "UTC"},
            "results": "stack",
            "fargate": False,
            "alerts": {"afterFailures": 2, "successWithinHours": 26},
        },
        "on-box": {"fleet": "box"},
    },
}


def test_every_key_is_read_into_the_typed_config():
    config = load(EVERY_KEY)
    fleet = config.fleets[0]
    assert config.network == schema.NetworkConfig(vpc_id="vpc-1", subnet_ids=("subnet-1",))
    assert config.dns == schema.DnsConfig(zone_name="a.example.internal", zone_id="Z1", ttl=30)
    assert config.notifications == schema.NotificationsConfig(email="ops@example.com")
    assert fleet.home == schema.HomeConfig(mount_path="/data", retain_on_destroy=False, uid=1001, gid=1001)
    assert fleet.ssh == schema.SshConfig(
        key_name="k",
        allow_from=("sg-1", "10.0.0.0/8"),
        user="dev",
        bastion="gw.example.com",
        identity_file="~/.ssh/work_rsa",
        forward_agent=True,
    )
    assert fleet.queue == schema.QueueConfig(
        messages_per_instance=5,
        scale_in_cooldown_seconds=60,
        visibility_timeout_seconds=120,
        boot_seconds=90,
        warm_up=schema.WarmUpConfig("cron(50 1 * * ? *)", "Asia/Tokyo", 2, 20),
    )
    assert fleet.image.snapshot_on_terminate and fleet.image.keep == 2
    assert fleet.target_group_arns and fleet.results.create and fleet.on_demand_fallback
    assert fleet.interruption == schema.InterruptionConfig(decrement_capacity=True, on_rebalance="drain")
    assert fleet.schedule.timezone == "Asia/Tokyo" and fleet.idle_stop_minutes == 30


BAD_VALUES = [
    # (fleet fields, key that must be named, text that must be said)
    ({"engine": "ec2-fleet"}, "spotyard:fleets.box.engine", "must be one of asg, spot-fleet"),
    ({"allocationStrategy": "diversified"}, "spotyard:fleets.box.allocationStrategy", "must be one of"),
    ({"interruption": {"onRebalance": "ignore"}}, "spotyard:fleets.box.interruption.onRebalance", "notify, drain"),
    ({"minCapacity": 2, "capacity": 1}, "spotyard:fleets.box.capacity", "at least minCapacity (2)"),
    ({"capacity": 3, "maxCapacity": 2}, "spotyard:fleets.box.maxCapacity", "at least capacity (3)"),
    ({"minCapacity": -1}, "spotyard:fleets.box.minCapacity", "at least 0"),
    ({"capacity": "many"}, "spotyard:fleets.box.capacity", "whole number"),
    ({"instanceTypes": []}, "spotyard:fleets.box.instanceTypes", "must not be empty"),
    ({"instanceTypes": ["m5"]}, "spotyard:fleets.box.instanceTypes[0]", "family.size"),
    ({"instanceTypes": ["m5.large", "m6g.large"]}, "spotyard:fleets.box.instanceTypes", "arm64"),
    ({"image": {"amiId": "ami-1", "roleTag": "x"}}, "spotyard:fleets.box.image.amiId", "exactly one of"),
    ({"image": {"keep": 3}}, "spotyard:fleets.box.image.amiId", "exactly one of"),
    (
        {"image": {"amiId": "ami-1", "snapshotOnTerminate": True}},
        "spotyard:fleets.box.image.snapshotOnTerminate",
        "needs roleTag",
    ),
    ({"image": {"amiId": "ami-1", "fallbackRoleTag": "b"}}, "spotyard:fleets.box.image.fallbackRoleTag", "roleTag"),
    ({"image": {"roleTag": "x", "keep": 0}}, "spotyard:fleets.box.image.keep", "at least 1"),
    ({"schedule": {"start": "cron(0 9 * * MON-FRI *)"}}, "spotyard:fleets.box.schedule.start", "exactly one of"),
    ({"schedule": {"start": "cron(0 25 ? * MON-FRI *)"}}, "spotyard:fleets.box.schedule.start", "hours '25'"),
    ({"schedule": {"start": "cron(0 9 ? *)"}}, "spotyard:fleets.box.schedule.start", "6 fields"),
    ({"schedule": {"stop": "rate(0 minutes)"}}, "spotyard:fleets.box.schedule.stop", "rate("),
    ({"schedule": {"stop": "rate(2 hour)"}}, "spotyard:fleets.box.schedule.stop", "plural"),
    ({"schedule": {"stop": "at(2026-13-01T00:00:00)"}}, "spotyard:fleets.box.schedule.stop", "at(yyyy"),
    ({"schedule": {"stop": "every day"}}, "spotyard:fleets.box.schedule.stop", "cron(...), rate(...) or at(...)"),
    (
        {"schedule": {"start": "rate(1 day)", "timezone": "Mars/Olympus"}},
        "spotyard:fleets.box.schedule.timezone",
        "IANA time zone",
    ),
    ({"schedule": {"timezone": "UTC"}}, "spotyard:fleets.box.schedule.start", "needs start, stop or both"),
    ({"ssh": {"allowFrom": ["0.0.0.0"]}}, "spotyard:fleets.box.ssh.allowFrom[0]", "prefix length"),
    ({"ssh": {"allowFrom": ["bastion"]}}, "spotyard:fleets.box.ssh.allowFrom[0]", "security group id"),
    ({"ssh": {"allowFrom": ["10.0.0.1/8"]}}, "spotyard:fleets.box.ssh.allowFrom[0]", "CIDR"),
    ({"ssh": {"user": "Root User"}}, "spotyard:fleets.box.ssh.user", "Linux user name"),
    ({"ssh": {"identityFile": "id_ed25519"}}, "spotyard:fleets.box.ssh.identityFile", "starting with ~/ or /"),
    ({"ssh": {"identityFile": "~/.ssh/my key"}}, "spotyard:fleets.box.ssh.identityFile", "starting with ~/ or /"),
    ({"ssh": {"forwardAgent": "sometimes"}}, "spotyard:fleets.box.ssh.forwardAgent", "true or false"),
    ({"idleStopMinutes": 0}, "spotyard:fleets.box.idleStopMinutes", "at least 10"),
    ({"queue": {"messagesPerInstance": 0}}, "spotyard:fleets.box.queue.messagesPerInstance", "at least 1"),
    ({"queue": {"scaleInCooldownSeconds": -5}}, "spotyard:fleets.box.queue.scaleInCooldownSeconds", "at least 1"),
    ({"queue": {"bootSeconds": 0}}, "spotyard:fleets.box.queue.bootSeconds", "at least 1"),
    ({"queue": {"bootSeconds": 7200}}, "spotyard:fleets.box.queue.bootSeconds", "at most 3600"),
    ({"queue": {"warmUp": {"capacity": 1}}}, "spotyard:fleets.box.queue.warmUp.schedule", "is required"),
    ({"queue": {"warmUp": {"schedule": "daily"}}}, "spotyard:fleets.box.queue.warmUp.schedule", "cron(...)"),
    ({"queue": {"warmUp": {"schedule": "rate(1 day)"}}}, "spotyard:fleets.box.queue.warmUp.capacity", "is required"),
    (
        {"queue": {"warmUp": {"schedule": "rate(1 day)", "capacity": 0}}},
        "spotyard:fleets.box.queue.warmUp.capacity",
        "at least 1",
    ),
    (
        {"maxCapacity": 3, "queue": {"warmUp": {"schedule": "rate(1 day)", "capacity": 4}}},
        "spotyard:fleets.box.queue.warmUp.capacity",
        "at most the fleet's maxCapacity (3)",
    ),
    (
        {"queue": {"warmUp": {"schedule": "rate(1 day)", "capacity": 1, "minutes": 0}}},
        "spotyard:fleets.box.queue.warmUp.minutes",
        "at least 1",
    ),
    (
        {"queue": {"warmUp": {"schedule": "rate(1 day)", "capacity": 1, "timezone": "Mars/Olympus"}}},
        "spotyard:fleets.box.queue.warmUp.timezone",
        "IANA time zone",
    ),
    ({"queue": ["a"]}, "spotyard:fleets.box.queue", "must be a mapping"),
    ({"home": {"mountPath": "relative/path"}}, "spotyard:fleets.box.home.mountPath", "absolute path"),
    ({"home": {"mountPath": "/etc"}}, "spotyard:fleets.box.home.mountPath", "system directory"),
    ({"home": "yes"}, "spotyard:fleets.box.home", "must be a mapping"),
    ({"loadBalancer": {}}, "spotyard:fleets.box.loadBalancer.targetGroupArns", "is required"),
    (
        {"loadBalancer": {"targetGroupArns": ["arn:aws:s3:::bucket"]}},
        "spotyard:fleets.box.loadBalancer.targetGroupArns[0]",
        "target group ARN",
    ),
    ({"results": {"bucket": "Not_A_Bucket"}}, "spotyard:fleets.box.results.bucket", "'create' or the name"),
    ({"elasticIp": "1.2.3.4"}, "spotyard:fleets.box.elasticIp", "eipalloc-"),
    ({"onDemandFallback": "sometimes"}, "spotyard:fleets.box.onDemandFallback", "true or false"),
    ({"userData": "scripts/missing.sh"}, "spotyard:fleets.box.userData", "not found"),
    ({"maxCapacty": 3}, "spotyard:fleets.box.maxCapacty", "did you mean 'maxCapacity'"),
    # Integer keys stop at what the API taking them accepts (see spotyard/config.py for the sources).
    ({"maxCapacity": 2147483648}, "spotyard:fleets.box.maxCapacity", "at most 2147483647"),
    ({"capacity": 2147483648, "maxCapacity": 2147483648}, "spotyard:fleets.box.capacity", "at most 2147483647"),
    ({"minCapacity": 2147483648}, "spotyard:fleets.box.minCapacity", "at most 2147483647"),
    ({"engine": "spot-fleet", "maxCapacity": 10001}, "spotyard:fleets.box.maxCapacity", "at most 10000"),
    ({"idleStopMinutes": 10081}, "spotyard:fleets.box.idleStopMinutes", "at most 10080"),
    ({"image": {"roleTag": "box", "keep": 50001}}, "spotyard:fleets.box.image.keep", "at most 50000"),
    ({"home": {"uid": 4294967296}}, "spotyard:fleets.box.home.uid", "at most 4294967295"),
    ({"home": {"gid": -1}}, "spotyard:fleets.box.home.gid", "at least 0"),
    ({"queue": {"scaleInCooldownSeconds": 86401}}, "spotyard:fleets.box.queue.scaleInCooldownSeconds", "at most 86400"),
    (
        {"queue": {"visibilityTimeoutSeconds": 43201}},
        "spotyard:fleets.box.queue.visibilityTimeoutSeconds",
        "at most 43200",
    ),
    # Instance types are checked offline against the list botocore ships, with the nearest one.
    ({"instanceTypes": ["m5.xlage"]}, "spotyard:fleets.box.instanceTypes[0]", "did you mean 'm5.xlarge'?"),
    (
        {"instanceTypes": ["m5.large", "q9.mega"]},
        "spotyard:fleets.box.instanceTypes[1]",
        "is not an EC2 instance type, got 'q9.mega'",
    ),
    ({"home": {"mountpath": "/x"}}, "spotyard:fleets.box.home.mountpath", "did you mean 'mountPath'"),
]


@pytest.mark.parametrize(("fields", "key", "text"), BAD_VALUES, ids=[case[1] + ":" + case[2] for case in BAD_VALUES])
def test_bad_fleet_value_is_named_by_its_full_key(fields, key, text):
    report = problems_of(with_fleet(**fields))
    line = next((line for line in report.splitlines() if f"- {key}:" in line), None)
    assert line is not None, report
    assert text in line, report


BAD_STACK = [
    ({"spotyard:dns": {"zoneName": "not a name"}}, "spotyard:dns.zoneName", "DNS name"),
    ({"spotyard:dns": {"ttl": 60}}, "spotyard:dns.zoneName", "is required"),
    ({"spotyard:dns": {"zoneId": "hostedzone/1"}}, "spotyard:dns.zoneId", "hosted zone id"),
    ({"spotyard:dns": {"zoneName": "a.internal", "ttl": 0}}, "spotyard:dns.ttl", "at least 1"),
    ({"spotyard:dns": {"zoneName": "a.internal", "ttl": 86401}}, "spotyard:dns.ttl", "at most 86400"),
    ({"spotyard:network": {"subnetIds": ["subnet-1"]}}, "spotyard:network.vpcId", "required when subnetIds"),
    ({"spotyard:network": {"vpcId": "vpc-1", "subnetIds": ["sub-1"]}}, "spotyard:network.subnetIds[0]", "subnet id"),
    ({"spotyard:notifications": {"email": "ops"}}, "spotyard:notifications.email", "e-mail"),
    ({"spotyard:tags": {"aws:owner": "x"}}, "spotyard:tags.aws:owner", "reserved"),
    ({"spotyard:fleet": {}}, "spotyard:fleet", "did you mean 'fleets'"),
    ({"spotyard:fleets": {}}, "spotyard:fleets", "at least one fleet"),
    ({"spotyard:fleets": {"Work_Bench": {"instanceTypes": ["m5.large"]}}}, "spotyard:fleets.Work_Bench", "fleet names"),
]


def test_a_stack_needs_a_fleet_or_a_job():
    report = problems_of({"aws:region": "ap-northeast-1"})
    assert "- spotyard:fleets: is required: at least one fleet (or a job in spotyard:jobs)" in report
    jobs_only = load({"aws:region": "ap-northeast-1", "spotyard:jobs": {"nightly": {"image": "busybox:1.36"}}})
    assert jobs_only.fleets == () and [job.name for job in jobs_only.jobs] == ["nightly"]


@pytest.mark.parametrize(("values", "key", "text"), BAD_STACK, ids=[case[1] + ":" + case[2] for case in BAD_STACK])
def test_bad_stack_value_is_named_by_its_full_key(values, key, text):
    report = problems_of({**BASE, **values})
    assert any(f"- {key}:" in line and text in line for line in report.splitlines()), report


def test_fleets_are_required():
    assert "- spotyard:fleets: is required" in problems_of({"aws:region": "ap-northeast-1"})


def test_every_problem_is_listed_not_only_the_first():
    report = problems_of(with_fleet(engine="x", maxCapacity=0, ssh={"allowFrom": ["nowhere"]}))
    assert report.startswith("spotyard configuration has 3 problems:")
    for key in ("engine", "maxCapacity", "ssh.allowFrom[0]"):
        assert f"spotyard:fleets.box.{key}:" in report


def test_values_set_with_pulumi_config_set_path_are_strings_and_still_load():
    fleet = load(with_fleet(capacity="2", maxCapacity="3", onDemandFallback="true")).fleets[0]
    assert (fleet.capacity, fleet.max_capacity, fleet.on_demand_fallback) == (2, 3, True)


def test_user_data_file_is_read_relative_to_the_project():
    fleet = load(with_fleet(userData="scripts/workbench.sh")).fleets[0]
    assert fleet.user_data == (ROOT / "scripts" / "workbench.sh").read_text()


def test_the_program_fails_preview_with_one_run_error_naming_each_key(deploy):
    with pytest.raises(pulumi.RunError) as raised:
        deploy({"spotyard:fleets": {"box": {"instanceTypes": [], "engine": "x"}}})
    message = str(raised.value)
    assert "spotyard:fleets.box.instanceTypes" in message and "spotyard:fleets.box.engine" in message


def test_loader_reads_structured_values_as_the_engine_passes_them():
    from stack.stack_config import _decode

    assert _decode('{"box": {"capacity": 1}}') == {"box": {"capacity": 1}}
    assert _decode("[1, 2]") == [1, 2]
    assert _decode("plain") == "plain"


# The settings of issue #11 ("the settings users ask for most"), each with a bad value.
BAD_SETTINGS = [
    ({"rootVolume": {"type": "st1"}}, "spotyard:fleets.box.rootVolume.type", "must be one of gp3, gp2, io1"),
    ({"rootVolume": {"size": 0}}, "spotyard:fleets.box.rootVolume.size", "at least 1"),
    ({"rootVolume": {"type": "standard", "size": 2000}}, "spotyard:fleets.box.rootVolume.size", "at most 1024"),
    ({"rootVolume": {"iops": 2000}}, "spotyard:fleets.box.rootVolume.iops", "at least 3000"),
    ({"rootVolume": {"iops": 20000}}, "spotyard:fleets.box.rootVolume.iops", "at most 16000"),
    ({"rootVolume": {"throughput": 100}}, "spotyard:fleets.box.rootVolume.throughput", "at least 125"),
    ({"rootVolume": {"throughput": 1001}}, "spotyard:fleets.box.rootVolume.throughput", "at most 1000"),
    ({"rootVolume": {"throughput": 1000}}, "spotyard:fleets.box.rootVolume.throughput", "needs iops of at least 4000"),
    ({"rootVolume": {"size": 8, "iops": 5000}}, "spotyard:fleets.box.rootVolume.iops", "at most 500 IOPS per GiB"),
    ({"rootVolume": {"type": "io2"}}, "spotyard:fleets.box.rootVolume.iops", "is required for a io2 volume"),
    (
        {"rootVolume": {"type": "io1", "size": 10, "iops": 1000}},
        "spotyard:fleets.box.rootVolume.iops",
        "needs a size of at least 20 GiB",
    ),
    ({"rootVolume": {"type": "gp2", "iops": 3000}}, "spotyard:fleets.box.rootVolume.iops", "cannot be set on a gp2"),
    (
        {"rootVolume": {"type": "io2", "iops": 1000, "throughput": 200}},
        "spotyard:fleets.box.rootVolume.throughput",
        "gp3 only",
    ),
    (
        {"instanceRole": {"managedPolicyArns": ["AmazonS3ReadOnlyAccess"]}},
        "spotyard:fleets.box.instanceRole.managedPolicyArns[0]",
        "managed policy ARN",
    ),
    (
        {"instanceRole": {"statements": [{"Action": "s3:*", "Resource": "*"}]}},
        "spotyard:fleets.box.instanceRole.statements[0]",
        "Effect: Allow or Deny",
    ),
    (
        {"instanceRole": {"statements": [{"Effect": "Allow", "Action": "s3:*"}]}},
        "spotyard:fleets.box.instanceRole.statements[0]",
        "exactly one of Resource and NotResource",
    ),
    (
        {"instanceRole": {"statements": [{"Effect": "Allow", "Action": [], "Resource": "*"}]}},
        "spotyard:fleets.box.instanceRole.statements[0]",
        "Action must be a string or a list",
    ),
    (
        {"instanceRole": {"statements": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Principal": "*"}]}},
        "spotyard:fleets.box.instanceRole.statements[0]",
        "cannot name a Principal",
    ),
    (
        {"instanceRole": {"statements": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Conditon": {}}]}},
        "spotyard:fleets.box.instanceRole.statements[0]",
        "unknown statement element(s) Conditon",
    ),
    (
        {
            "instanceRole": {
                "statements": [
                    {
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": [f"arn:aws:s3:::bucket-{i}/*" for i in range(400)],
                    }
                ]
            }
        },
        "spotyard:fleets.box.instanceRole.statements",
        "10240 characters",
    ),
    (
        {"instanceRole": {"statements": {"Effect": "Allow"}}},
        "spotyard:fleets.box.instanceRole.statements",
        "list of IAM policy statements",
    ),
    ({"securityGroupIds": ["default"]}, "spotyard:fleets.box.securityGroupIds[0]", "security group id"),
    ({"ingress": [{"from": ["0.0.0.0/0"]}]}, "spotyard:fleets.box.ingress[0].port", "is required"),
    ({"ingress": [{"port": 70000, "from": ["0.0.0.0/0"]}]}, "spotyard:fleets.box.ingress[0].port", "at most 65535"),
    ({"ingress": [{"port": 443}]}, "spotyard:fleets.box.ingress[0].from", "is required"),
    ({"ingress": [{"port": 443, "from": ["0.0.0.0"]}]}, "spotyard:fleets.box.ingress[0].from[0]", "prefix length"),
    (
        {"ingress": [{"port": 443, "protocol": "icmp", "from": ["0.0.0.0/0"]}]},
        "spotyard:fleets.box.ingress[0].protocol",
        "must be one of tcp, udp",
    ),
    (
        {"ingress": [{"port": 8080, "toPort": 80, "from": ["0.0.0.0/0"]}]},
        "spotyard:fleets.box.ingress[0].toPort",
        "at least port (8080)",
    ),
    (
        {"ingress": [{"port": 22, "from": ["10.0.0.0/8"]}], "ssh": {"allowFrom": ["10.0.0.0/8"]}},
        "spotyard:fleets.box.ingress[0].from",
        "repeats ssh.allowFrom",
    ),
    ({"ingress": {"port": 443}}, "spotyard:fleets.box.ingress", "list of mappings"),
    ({"onDemandBaseCapacity": -1}, "spotyard:fleets.box.onDemandBaseCapacity", "at least 0"),
    (
        {"onDemandBaseCapacity": 3, "maxCapacity": 2},
        "spotyard:fleets.box.onDemandBaseCapacity",
        "at most maxCapacity (2)",
    ),
    (
        {"onDemandBaseCapacity": 1, "onDemandFallback": True},
        "spotyard:fleets.box.onDemandBaseCapacity",
        "cannot be combined with onDemandFallback",
    ),
    (
        {"onDemandBaseCapacity": 0, "onDemandFallback": True},
        "spotyard:fleets.box.onDemandBaseCapacity",
        "cannot be combined with onDemandFallback",
    ),
    ({"spotMaxPrice": "cheap"}, "spotyard:fleets.box.spotMaxPrice", "US dollars per instance-hour"),
    ({"spotMaxPrice": "0"}, "spotyard:fleets.box.spotMaxPrice", "more than 0"),
    ({"spotInstancePools": 3}, "spotyard:fleets.box.spotInstancePools", "only to allocationStrategy lowest-price"),
    (
        {"allocationStrategy": "lowest-price", "spotInstancePools": 21},
        "spotyard:fleets.box.spotInstancePools",
        "at most 20",
    ),
    (
        {"instanceTypes": [{"type": "m5.xlarge", "weight": 0}]},
        "spotyard:fleets.box.instanceTypes[0].weight",
        "at least 1",
    ),
    (
        {"instanceTypes": [{"type": "m5.xlarge", "weight": 1000}]},
        "spotyard:fleets.box.instanceTypes[0].weight",
        "at most 999",
    ),
    ({"instanceTypes": [{"type": "m5.xlarge"}]}, "spotyard:fleets.box.instanceTypes[0].weight", "is required"),
    ({"instanceTypes": [{"weight": 2}]}, "spotyard:fleets.box.instanceTypes[0].type", "is required"),
    ({"instanceTypes": [{"type": "m5", "weight": 2}]}, "spotyard:fleets.box.instanceTypes[0].type", "family.size"),
    (
        {"instanceTypes": [{"type": "m5.xlarge", "wieght": 2}]},
        "spotyard:fleets.box.instanceTypes[0].wieght",
        "did you mean 'weight'",
    ),
    ({"instanceTypes": [3]}, "spotyard:fleets.box.instanceTypes[0]", "instance type or a {type, weight}"),
    ({"instanceTypes": "m5.large"}, "spotyard:fleets.box.instanceTypes", "must be a list"),
    (
        {"instanceTypes": ["m5.large", {"type": "m5.large", "weight": 2}]},
        "spotyard:fleets.box.instanceTypes",
        "duplicate",
    ),
    (
        {"instanceTypes": [{"type": "m5.xlarge", "weight": 2}], "queue": {}},
        "spotyard:fleets.box.instanceTypes",
        "cannot be combined with queue",
    ),
    (
        {"instanceTypes": [{"type": "m5.xlarge", "weight": 2}], "idleStopMinutes": 30},
        "spotyard:fleets.box.instanceTypes",
        "cannot be combined with idleStopMinutes",
    ),
    (
        {"instanceTypes": ["t3.large"], "creditSpecification": "boost"},
        "spotyard:fleets.box.creditSpecification",
        "must be one of standard, unlimited",
    ),
    (
        {"instanceTypes": ["t3.large", "m5.large", "t4g.large"], "creditSpecification": "unlimited"},
        "spotyard:fleets.box.creditSpecification",
        "instanceTypes also has m5.large",
    ),
]


BAD_STACK_SETTINGS = [
    ({"spotyard:iam": {"path": "spotyard"}}, "spotyard:iam.path", "starts and ends with /"),
    ({"spotyard:iam": {"path": "/a b/"}}, "spotyard:iam.path", "starts and ends with /"),
    (
        {"spotyard:iam": {"permissionsBoundary": "company-boundary"}},
        "spotyard:iam.permissionsBoundary",
        "managed policy ARN",
    ),
    (
        {"spotyard:iam": {"permissionBoundary": "x"}},
        "spotyard:iam.permissionBoundary",
        "did you mean 'permissionsBoundary'",
    ),
]


@pytest.mark.parametrize(
    ("values", "key", "text"), BAD_STACK_SETTINGS, ids=[case[1] + ":" + case[2] for case in BAD_STACK_SETTINGS]
)
def test_bad_stack_setting_is_named_by_its_full_key(values, key, text):
    test_bad_stack_value_is_named_by_its_full_key(values, key, text)


@pytest.mark.parametrize(
    ("fields", "key", "text"), BAD_SETTINGS, ids=[case[1] + ":" + case[2] for case in BAD_SETTINGS]
)
def test_bad_setting_is_named_by_its_full_key(fields, key, text):
    test_bad_fleet_value_is_named_by_its_full_key(fields, key, text)


def test_settings_are_read_into_the_typed_config():
    fleet = load(EVERY_KEY).fleets[0]
    assert fleet.root_volume == schema.RootVolumeConfig(size=100, type="gp3", iops=6000, throughput=500)
    assert load(BASE).fleets[0].root_volume == schema.RootVolumeConfig()
    assert fleet.instance_role == schema.InstanceRoleConfig(
        managed_policy_arns=("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",),
        statements=({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},),
    )
    assert fleet.security_group_ids == ("sg-0123456789abcdef0",)
    assert fleet.ingress == (schema.IngressRule(port=80, to_port=81, protocol="tcp", sources=("0.0.0.0/0",)),)
    assert load(EVERY_KEY).iam == schema.IamConfig(
        path="/spotyard/", permissions_boundary="arn:aws:iam::123456789012:policy/boundary"
    )
    assert load(BASE).iam == schema.IamConfig(path="/", permissions_boundary=None)
    assert fleet.spot_max_price == "0.05"
    workshop = load(
        with_fleet(onDemandBaseCapacity=2, maxCapacity=10, allocationStrategy="lowest-price", spotInstancePools="4")
    ).fleets[0]
    assert (workshop.on_demand_base_capacity, workshop.spot_instance_pools) == (2, 4)
    assert load(BASE).fleets[0].on_demand_base_capacity is None
    mixed = load(with_fleet(instanceTypes=["m5.large", {"type": "m5.2xlarge", "weight": 4}])).fleets[0]
    assert mixed.instance_types == ("m5.large", "m5.2xlarge")
    assert mixed.instance_weights == {"m5.large": 1, "m5.2xlarge": 4}
    assert load(BASE).fleets[0].instance_weights == {}
    burstable = load(with_fleet(instanceTypes=["t3.large", "t3a.large", "t2.large"], creditSpecification="standard"))
    assert burstable.fleets[0].credit_specification == "standard"
    assert load(BASE).fleets[0].credit_specification is None
