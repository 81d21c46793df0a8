"""`spotyard:services` and `spotyard:proxy` (spec section 1): each rule, with a bad value,
names its full key; the commented example in Pulumi.dev.yaml documents every key."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from spotyard import config as schema
from spotyard.config_reader import Section
from spotyard.config_services import ProxyConfig, ServiceConfig
from tests.conftest import ROOT

BASE: dict[str, Any] = {
    "aws:region": "ap-northeast-1",
    "spotyard:fleets": {
        "web": {"instanceTypes": ["t3.small"], "elasticIp": "eipalloc-1"},
        "box": {"instanceTypes": ["m5.large"]},
        "workers": {"engine": "spot-fleet", "instanceTypes": ["c5.large"]},
    },
    "spotyard:services": {
        "whoami": {
            "image": "traefik/whoami:v1.10",
            "containerPort": 80,
            "hostNames": ["whoami.example.com"],
            "fleet": "web",
        }
    },
}


def load(values: dict[str, Any]) -> schema.StackConfig:
    return schema.load(values, project="spotyard", stack="dev", project_dir=ROOT)


def problems_of(values: dict[str, Any]) -> str:
    with pytest.raises(schema.ConfigError) as raised:
        load(values)
    return str(raised.value)


def with_service(name: str = "whoami", **fields: Any) -> dict[str, Any]:
    values = copy.deepcopy(BASE)
    values["spotyard:services"].setdefault(name, copy.deepcopy(BASE["spotyard:services"]["whoami"])).update(fields)
    return values


def test_a_service_gets_the_documented_defaults_and_marks_its_fleet():
    config = load(BASE)
    assert config.services == (
        ServiceConfig(
            name="whoami",
            image="traefik/whoami:v1.10",
            container_port=80,
            host_names=("whoami.example.com",),
            fleet="web",
            cpu=128,
            memory_mib=128,
            desired_count=1,
        ),
    )
    assert config.proxy == ProxyConfig()
    assert {f.name: f.hosts_services for f in config.fleets} == {"web": True, "box": False, "workers": False}


def test_no_services_leaves_every_fleet_as_it_was():
    values = copy.deepcopy(BASE)
    del values["spotyard:services"]
    config = load(values)
    assert (config.services, config.proxy) == ((), None)
    assert not any(f.hosts_services for f in config.fleets)


def test_every_key_is_read():
    values = with_service(
        cpu=256,
        memoryMiB=512,
        desiredCount=3,
        environment={"MODE": "demo", "DEBUG": False, "WORKERS": 4},
        secrets={
            "TOKEN": "/whoami/token",
            "KEY": "arn:aws:ssm:ap-northeast-1:123456789012:parameter/whoami/key",
            "DB": "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:db-AbCdEf:password::",
        },
        healthCheckPath="/health",
    )
    values["spotyard:proxy"] = {"acmeEmail": "ops@example.com", "acmeCa": "https://ca.example.com/directory"}
    config = load(values)
    (service,) = config.services
    assert (service.cpu, service.memory_mib, service.desired_count, service.health_check_path) == (
        256,
        512,
        3,
        "/health",
    )
    assert service.environment == {"MODE": "demo", "DEBUG": "false", "WORKERS": "4"}
    assert service.secrets["DB"].endswith(":password::") and service.secrets["TOKEN"] == "/whoami/token"
    assert config.proxy == ProxyConfig(acme_email="ops@example.com", acme_ca="https://ca.example.com/directory")


@pytest.mark.parametrize(
    ("fields", "key", "message"),
    [
        ({"image": "traefik/whoami v1"}, "image", "must be a container image reference"),
        ({"image": None}, "image", "is required"),
        ({"containerPort": 0}, "containerPort", "must be at least 1"),
        ({"containerPort": None}, "containerPort", "is required"),
        ({"containerPort": 70000}, "containerPort", "must be at most 65535"),
        ({"hostNames": []}, "hostNames", "must not be empty"),
        ({"hostNames": ["localhost"]}, "hostNames[0]", "must be a DNS name"),
        ({"cpu": 64}, "cpu", "must be at least 128"),
        ({"cpu": 200000}, "cpu", "must be at most 196608"),
        ({"memoryMiB": 4}, "memoryMiB", "must be at least 6"),
        ({"desiredCount": -1}, "desiredCount", "must be at least 0"),
        ({"desiredCount": 5001}, "desiredCount", "must be at most 5000"),
        ({"healthCheckPath": "health"}, "healthCheckPath", "must be a path starting with /"),
        ({"environment": {"1X": "a"}}, "environment.1X", "must be an environment variable name"),
        ({"environment": {"X": ["a"]}}, "environment.X", "must be a string, number or boolean"),
        ({"secrets": {"T": "arn:aws:s3:::bucket"}}, "secrets.T", "must be an SSM parameter name"),
        ({"secrets": {"T": "/a"}, "environment": {"T": "b"}}, "secrets.T", "is also in environment"),
        ({"fleet": None}, "fleet", "is required"),
        ({"fleet": "nowhere"}, "fleet", "names no fleet: 'nowhere' (fleets: box, web, workers)"),
        ({"fleet": "workers"}, "fleet", "fleet 'workers' is a spot-fleet fleet; only asg fleets can host services"),
        ({"imag": "x"}, "imag", "unknown key (did you mean 'image'?)"),
    ],
)
def test_each_bad_service_value_is_named_by_its_full_key(fields, key, message):
    assert f"spotyard:services.whoami.{key}: {message}" in problems_of(with_service(**fields))


@pytest.mark.parametrize(
    ("owner", "value"),
    [
        ("queue", {"messagesPerInstance": 5}),
        ("schedule", {"start": "cron(0 9 * * ? *)"}),
        ("idleStopMinutes", 30),
    ],
)
def test_a_fleet_whose_capacity_something_else_sets_cannot_host_services(owner, value):
    values = copy.deepcopy(BASE)
    values["spotyard:fleets"]["web"][owner] = value
    assert f"spotyard:services.whoami.fleet: fleet 'web' has {owner}, which sets its capacity" in problems_of(values)


def test_host_names_belong_to_one_service_and_services_to_one_fleet():
    values = with_service("wiki", hostNames=["wiki.example.com", "whoami.example.com"], fleet="box")
    problems = problems_of(values)
    assert (
        "spotyard:services.wiki.hostNames: 'whoami.example.com' is already a host name of service 'whoami'" in problems
    )
    assert "spotyard:services.wiki.fleet: all services run on one fleet, behind one proxy" in problems


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Who_Am_I", "service names must be 1-24 lowercase letters"),
        ("proxy", "'proxy' is the name of spotyard's own TLS proxy service"),
    ],
)
def test_bad_service_names_are_named(name, message):
    values = copy.deepcopy(BASE)
    values["spotyard:services"] = {name: BASE["spotyard:services"]["whoami"]}
    assert f"spotyard:services.{name}: {message}" in problems_of(values)


@pytest.mark.parametrize(
    ("proxy", "key", "message"),
    [
        ({"acmeEmail": "ops"}, "acmeEmail", "must be an e-mail address"),
        ({"acmeCa": "http://ca.example.com"}, "acmeCa", "must be an ACME directory URL"),
        ({"email": "ops@example.com"}, "email", "unknown key (did you mean 'acmeEmail'?)"),
    ],
)
def test_each_bad_proxy_value_is_named_by_its_full_key(proxy, key, message):
    values = copy.deepcopy(BASE)
    values["spotyard:proxy"] = proxy
    assert f"spotyard:proxy.{key}: {message}" in problems_of(values)


def test_dev_stack_file_documents_every_services_key(monkeypatch):
    asked: set[str] = set()
    take = Section._take

    def record(self, name):
        if self.key.startswith(("spotyard:services", "spotyard:proxy")):
            asked.add(name)
        elif name in ("services", "proxy"):
            asked.add(f"spotyard:{name}")
        return take(self, name)

    monkeypatch.setattr(Section, "_take", record)
    test_every_key_is_read()
    text = (ROOT / "Pulumi.dev.yaml").read_text()
    missing = sorted(name for name in asked if not re.search(rf"^\s*#~ +{name}:", text, re.MULTILINE))
    assert len(asked) == 14 and not missing, f"Pulumi.dev.yaml does not document {missing} in its services example"
