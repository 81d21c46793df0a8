"""spotyard:services under mocks (every ECS, Cloud Map, EFS and IAM resource with its inputs),
then in moto's ECS: container instances of the fleet registered in the stack's cluster get the
services' tasks, and the CLI reads them back."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from components.services import DYNAMIC_HOST_PORTS
from spotyard.cli import main
from stack.images import ECS_OPTIMIZED_PARAMETER
from tests.conftest import REGION, ROOT
from tests.shell import check_shell
from tests.user_data import bootstrap

SECRET = "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:whoami/token-AbCdEf"
SERVICES: dict[str, Any] = {
    "aws:region": REGION,
    "spotyard:fleets": {
        "web": {"instanceTypes": ["t3.small"], "minCapacity": 0, "maxCapacity": 3, "elasticIp": "eipalloc-1"},
        "batch": {"instanceTypes": ["c5.large"], "capacity": 0},
    },
    "spotyard:services": {
        "whoami": {
            "image": "traefik/whoami:v1.10",
            "containerPort": 80,
            "hostNames": ["whoami.example.com", "hello.example.com"],
            "fleet": "web",
            "memoryMiB": 4000,  # two copies do not fit on one of moto's container instances (7482 MiB)
            "desiredCount": 2,
            "environment": {"WHOAMI_NAME": "dev"},
            "secrets": {"API_TOKEN": "/whoami/api-token", "SESSION_KEY": f"{SECRET}:key::"},
            "healthCheckPath": "/health",
        },
        "wiki": {
            "image": "ghcr.io/example/wiki:1",
            "containerPort": 3000,
            "hostNames": ["wiki.example.com"],
            "fleet": "web",
        },
    },
    "spotyard:proxy": {"acmeEmail": "ops@example.com"},
}


def spotyard(*args: str):
    return CliRunner().invoke(main, ["--stack", "spotyard/dev", "--region", REGION, *args], catch_exceptions=False)


@pytest.fixture
def run(deploy):
    return deploy(copy.deepcopy(SERVICES))


def containers(run, name: str) -> list[dict]:
    return json.loads(run.one("aws:ecs/taskDefinition:TaskDefinition", name).inputs["containerDefinitions"])


def policy(run, name: str) -> dict:
    return json.loads(run.one("aws:iam/rolePolicy:RolePolicy", name).inputs["policy"])


def test_capacity_provider_scales_and_drains_the_fleets_group(run):
    group = run.one("aws:autoscaling/group:Group", "web-group")
    provider = run.one("aws:ecs/capacityProvider:CapacityProvider", "services-capacity")
    asg = provider.inputs["autoScalingGroupProvider"]
    assert asg["autoScalingGroupArn"] == group.outputs["arn"]
    assert (asg["managedScaling"]["status"], asg["managedScaling"]["targetCapacity"]) == ("ENABLED", 100)
    assert (asg["managedDraining"], asg["managedTerminationProtection"]) == ("ENABLED", "DISABLED")
    # ECS tags the group; pulumi up must not take the tag away.
    assert {"key": "AmazonECSManaged", "value": "", "propagateAtLaunch": False} in group.inputs["tags"]
    assert not any(
        t["key"] == "AmazonECSManaged" for t in run.one("aws:autoscaling/group:Group", "batch-group").inputs["tags"]
    )
    cluster = run.one("aws:ecs/cluster:Cluster", "services-cluster")
    association = run.one("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders", "services-capacity-providers")
    assert association.inputs["clusterName"] == cluster.outputs["name"]
    assert association.inputs["capacityProviders"] == [provider.outputs["name"]]


def test_hosting_fleet_boots_the_ecs_ami_and_joins_the_cluster(run, aws, tmp_path):
    ecs_ami = boto3.client("ssm").get_parameter(Name=ECS_OPTIMIZED_PARAMETER["x86_64"])["Parameter"]["Value"]
    ssm = boto3.client("ssm")
    parameters = {
        name: ssm.get_parameter(Name=name)["Parameter"]["Value"]
        for name in ("/spotyard/dev/web/ami", "/spotyard/dev/batch/ami")
    }
    assert parameters["/spotyard/dev/web/ami"] == ecs_ami
    assert parameters["/spotyard/dev/batch/ami"] != ecs_ami
    script = bootstrap(run, "web")
    cluster = run.one("aws:ecs/cluster:Cluster", "services-cluster").outputs["name"]
    assert f"SPOTYARD_ECS_CLUSTER={cluster}" in script
    for line in ("ECS_CLUSTER=${SPOTYARD_ECS_CLUSTER}", "ECS_ENABLE_SPOT_INSTANCE_DRAINING=true"):
        assert line in script
    # Every fleet installs the snippet; only one whose environment names a cluster sources it.
    assert '[ -n "${SPOTYARD_ECS_CLUSTER}" ]' in script
    assert "SPOTYARD_ECS_CLUSTER=''" in bootstrap(run, "batch")
    check_shell(script, tmp_path, "web-bootstrap.sh")
    attached = [
        a.inputs["policyArn"]
        for a in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == run.one("aws:iam/role:Role", "web-instance-role").outputs["name"]
    ]
    assert "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role" in attached


FAKE_IPTABLES = """#!/bin/bash
# iptables as the IMDS block sees it: records each call; DOCKER-USER exists once created, and
# --check finds the rule once it was inserted.
echo "$*" >> "$IPTABLES_LOG"
case "$1" in
  --new-chain) [ ! -e "$IPTABLES_STATE/chain" ] && touch "$IPTABLES_STATE/chain" ;;
  --check) [ -e "$IPTABLES_STATE/rule" ] ;;
  --insert) [ -e "$IPTABLES_STATE/chain" ] && touch "$IPTABLES_STATE/rule" ;;
esac
"""


def test_containers_are_kept_off_imds_at_every_boot_before_docker(run, tmp_path):
    """The ECS guide's rule, in DOCKER-USER (Docker's own FORWARD rules go above any of ours),
    applied by a unit that runs before Docker at every boot, and idempotent."""
    script = bootstrap(run, "web")
    assert "systemctl enable --now spotyard-imds-block.service" in script
    unit = (ROOT / "instance" / "spotyard-imds-block.service").read_text()
    assert "Before=docker.service ecs.service" in unit and "WantedBy=multi-user.target" in unit
    assert "ExecStart=/usr/local/sbin/spotyard-imds-block" in unit
    assert "cat > /usr/local/sbin/spotyard-imds-block <<'SPOTYARD_EOF'" in script
    block = ROOT / "instance" / "imds-block.sh"
    check_shell(block.read_text(), tmp_path, "spotyard-imds-block")
    fake = tmp_path / "bin" / "iptables"
    fake.parent.mkdir()
    fake.write_text(FAKE_IPTABLES)
    fake.chmod(0o755)
    log, state = tmp_path / "iptables.log", tmp_path / "state"
    state.mkdir()
    env = {
        **os.environ,
        "PATH": f"{fake.parent}:{os.environ['PATH']}",
        "IPTABLES_LOG": str(log),
        "IPTABLES_STATE": str(state),
    }
    for _ in range(2):  # applied again (the unit at a boot, or the bootstrap run again): no duplicate
        subprocess.run(["bash", str(block)], env=env, check=True)
    rule = "--in-interface docker+ --destination 169.254.169.254/32 --jump DROP"
    inserts = [line for line in log.read_text().splitlines() if line.startswith("--insert")]
    assert inserts == [f"--insert DOCKER-USER 1 {rule}"]  # once, at the top of DOCKER-USER


def test_task_definition_carries_the_service_settings(run):
    (container,) = containers(run, "services-whoami-task")
    assert (container["image"], container["cpu"], container["memory"]) == ("traefik/whoami:v1.10", 128, 4000)
    assert container["portMappings"] == [{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}]
    assert container["environment"] == [{"name": "WHOAMI_NAME", "value": "dev"}]
    assert container["secrets"] == [
        {"name": "API_TOKEN", "valueFrom": "arn:aws:ssm:ap-northeast-1:123456789012:parameter/whoami/api-token"},
        {"name": "SESSION_KEY", "valueFrom": f"{SECRET}:key::"},
    ]
    assert "http://127.0.0.1:80/health" in container["healthCheck"]["command"][1]
    assert container["logConfiguration"]["options"]["awslogs-group"] == "/spotyard/dev/services"
    definition = run.one("aws:ecs/taskDefinition:TaskDefinition", "services-whoami-task").inputs
    assert (definition["networkMode"], definition["requiresCompatibilities"]) == ("bridge", ["EC2"])
    (wiki,) = containers(run, "services-wiki-task")
    assert "healthCheck" not in wiki and "secrets" not in wiki
    logs = run.one("aws:cloudwatch/logGroup:LogGroup", "services-logs").inputs
    assert logs["retentionInDays"] == 30


def test_execution_role_reads_only_the_services_own_secrets(run):
    statements = {s["Sid"]: s for s in policy(run, "services-whoami-execution")["Statement"]}
    assert statements["ReadOwnParameters"]["Action"] == ["ssm:GetParameters"]
    assert statements["ReadOwnParameters"]["Resource"] == [
        "arn:aws:ssm:ap-northeast-1:123456789012:parameter/whoami/api-token"
    ]
    assert statements["ReadOwnSecrets"]["Resource"] == [SECRET]  # the secret, not the key within it
    assert statements["Logs"]["Resource"].endswith(":log-stream:whoami/*")
    assert set(statements) == {"Logs", "ReadOwnParameters", "ReadOwnSecrets"}
    assert {s["Sid"] for s in policy(run, "services-wiki-execution")["Statement"]} == {"Logs"}
    task_role = run.one("aws:iam/role:Role", "services-whoami-task-role")
    trust = json.loads(task_role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}  # confused deputy
    execution_role = run.one("aws:iam/role:Role", "services-whoami-execution-role")
    assert "Condition" not in json.loads(execution_role.inputs["assumeRolePolicy"])["Statement"][0]
    assert not [
        p for p in run.of_type("aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] == task_role.outputs["name"]
    ]


def test_every_role_of_the_services_has_the_stacks_path_and_boundary(deploy):
    values = copy.deepcopy(SERVICES)
    values["spotyard:iam"] = {"path": "/spotyard/", "permissionsBoundary": "arn:aws:iam::123456789012:policy/b"}
    run = deploy(values)
    component = run.one("spotyard:index:Services", "services")
    roles = [r for r in run.of_type("aws:iam/role:Role") if r.parent == component.urn]
    assert sorted(r.name for r in roles) == sorted(
        f"services-{service}-{kind}-role" for service in ("whoami", "wiki", "proxy") for kind in ("execution", "task")
    )
    for role in roles:
        assert (role.inputs["path"], role.inputs["permissionsBoundary"]) == (
            "/spotyard/",
            "arn:aws:iam::123456789012:policy/b",
        )


def test_services_run_on_the_capacity_provider_and_register_srv_records(run):
    provider = run.one("aws:ecs/capacityProvider:CapacityProvider", "services-capacity").outputs["name"]
    namespace = run.one("aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace", "services-namespace")
    assert namespace.inputs["name"] == "services.dev.spotyard.internal"
    discovery = run.one("aws:servicediscovery/service:Service", "services-whoami-discovery")
    dns = discovery.inputs["dnsConfig"]
    assert (dns["namespaceId"], dns["dnsRecords"][0]["type"]) == (namespace.id, "SRV")
    service = run.one("aws:ecs/service:Service", "services-whoami").inputs
    assert service["capacityProviderStrategies"] == [{"capacityProvider": provider, "weight": 1}]
    assert service["desiredCount"] == 2
    assert service["serviceRegistries"] == {
        "registryArn": discovery.outputs["arn"],
        "containerName": "whoami",
        "containerPort": 80,
    }
    assert service["tags"]["spotyard:host-names"] == "whoami.example.com,hello.example.com"
    association = run.one("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders", "services-capacity-providers")
    assert association.urn in run.one("aws:ecs/service:Service", "services-whoami").depends_on


def test_proxy_is_a_daemon_on_80_and_443_with_its_data_on_efs(run):
    proxy = run.one("aws:ecs/service:Service", "services-proxy").inputs
    assert (proxy["schedulingStrategy"], proxy["launchType"]) == ("DAEMON", "EC2")
    (container,) = containers(run, "services-proxy-task")
    assert {(p["containerPort"], p["hostPort"]) for p in container["portMappings"]} == {(80, 80), (443, 443)}
    caddyfile = next(e["value"] for e in container["environment"] if e["name"] == "CADDYFILE")
    for host in ("whoami.example.com", "hello.example.com"):
        assert f"{host} {{\n\treverse_proxy {{\n\t\tdynamic srv whoami.services.dev.spotyard.internal" in caddyfile
    assert "wiki.example.com {\n\treverse_proxy {\n\t\tdynamic srv wiki.services.dev.spotyard.internal" in caddyfile
    assert "email ops@example.com" in caddyfile
    (volume,) = run.one("aws:ecs/taskDefinition:TaskDefinition", "services-proxy-task").inputs["volumes"]
    efs = volume["efsVolumeConfiguration"]
    access_point = run.one("aws:efs/accessPoint:AccessPoint", "services-proxy-data-access-point")
    assert (efs["transitEncryption"], efs["authorizationConfig"]) == (
        "ENABLED",
        {"accessPointId": access_point.id, "iam": "ENABLED"},
    )
    assert container["mountPoints"] == [{"sourceVolume": "data", "containerPath": "/data"}]
    file_policy = json.loads(
        run.one("aws:efs/fileSystemPolicy:FileSystemPolicy", "services-proxy-data-policy").inputs["policy"]
    )
    (allowed,) = [s for s in file_policy["Statement"] if s["Effect"] == "Allow"]
    assert allowed["Principal"] == {"AWS": run.one("aws:iam/role:Role", "services-proxy-task-role").outputs["arn"]}


def test_ports_80_and_443_open_only_with_services(run, deploy):
    def open_ports(stack_run, fleet: str) -> set[tuple[int, str]]:
        group = stack_run.one("aws:ec2/securityGroup:SecurityGroup", f"{fleet}-sg").id
        return {
            (
                r.inputs["fromPort"],
                r.inputs.get("cidrIpv4") or r.inputs.get("cidrIpv6") or r.inputs["referencedSecurityGroupId"],
            )
            for r in stack_run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
            if r.inputs["securityGroupId"] == group
        }

    web = run.one("aws:ec2/securityGroup:SecurityGroup", "web-sg").id
    assert open_ports(run, "web") == {
        (80, "0.0.0.0/0"),
        (80, "::/0"),
        (443, "0.0.0.0/0"),
        (443, "::/0"),
        (DYNAMIC_HOST_PORTS[0], web),
    }
    assert open_ports(run, "batch") == set()
    without = copy.deepcopy(SERVICES)
    del without["spotyard:services"], without["spotyard:proxy"]
    plain = deploy(without)
    assert open_ports(plain, "web") == set()
    assert not plain.of_type("aws:ecs/cluster:Cluster") and plain.outputs["services"] is None


def register(aws, cluster: str, instance_id: str) -> None:
    """What the ECS agent does when the instance boots with the fleet's ecs.config."""
    document = json.dumps({"instanceId": instance_id, "region": REGION})
    boto3.client("ecs").register_container_instance(
        cluster=cluster, instanceIdentityDocument=document, instanceIdentityDocumentSignature="signed"
    )


def test_instances_that_join_get_the_tasks_and_the_cli_reads_them_back(run, aws):
    cluster = run.one("aws:ecs/cluster:Cluster", "services-cluster").outputs["name"]
    group = run.one("aws:autoscaling/group:Group", "web-group").id
    autoscaling = boto3.client("autoscaling")
    autoscaling.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=2)  # managed scaling's move
    first, second = sorted(
        i["InstanceId"]
        for i in autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0][
            "Instances"
        ]
    )

    register(aws, cluster, first)
    placed = {s["name"]: s for s in json.loads(spotyard("services", "--json").output)["services"]}
    assert (placed["whoami"]["running"], placed["whoami"]["instances"]) == (1, [first])  # one copy fits
    assert (placed["wiki"]["running"], placed["proxy"]["instances"]) == (1, [first])

    register(aws, cluster, second)  # the capacity managed scaling asked for arrives
    result = spotyard("services", "--json")
    assert result.exit_code == 0, result.output
    services = {s["name"]: s for s in json.loads(result.output)["services"]}
    assert sorted(services) == ["proxy", "whoami", "wiki"]
    whoami = services["whoami"]
    assert whoami["hostNames"] == ["whoami.example.com", "hello.example.com"]
    assert (whoami["desired"], whoami["running"], whoami["instances"]) == (2, 2, [first, second])
    assert whoami["lastDeployment"]["taskDefinition"] == "spotyard-dev-whoami:1"
    assert (services["wiki"]["running"], services["wiki"]["instances"]) == (1, [first])
    assert (services["proxy"]["running"], services["proxy"]["instances"]) == (2, [first, second])

    status = json.loads(spotyard("status", "--json").output)
    assert {s["name"]: s["instances"] for s in status["services"]} == {
        name: service["instances"] for name, service in services.items()
    }
    table = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["--stack", "spotyard/dev", "--region", REGION, "services"])
    row = next(line for line in table.output.splitlines() if "│ whoami" in line)
    for cell in ("whoami.example.com, hello.example.com", f"{first}, {second}", "spotyard-dev-whoami:1 completed"):
        assert cell in row


def test_services_command_says_when_the_stack_has_none(deploy):
    without = copy.deepcopy(SERVICES)
    del without["spotyard:services"], without["spotyard:proxy"]
    deploy(without)
    result = CliRunner().invoke(main, ["--stack", "spotyard/dev", "--region", REGION, "services"])
    assert result.exit_code == 1
    assert "no services: no ECS cluster is tagged spotyard:stack=spotyard/dev" in result.output
    assert json.loads(spotyard("status", "--json").output)["services"] == []


# The inputs terraform-provider-aws marks ForceNew (internal/service/ecs/cluster.go, capacity_provider.go:
# the whole auto_scaling_group_provider block and its group ARN; service.go: name, cluster, launch_type,
# scheduling_strategy, iam_role; servicediscovery/private_dns_namespace.go: name, vpc; service.go there:
# name, dns_config.namespace_id, health_check_custom_config). Task definitions are immutable by design:
# a new revision is the routine way to change a service.
SERVICES_FORCE_NEW: dict[str, tuple[str, ...]] = {
    "aws:ecs/cluster:Cluster": ("name",),
    "aws:ecs/capacityProvider:CapacityProvider": ("name", "autoScalingGroupProvider"),
    "aws:ecs/service:Service": ("name", "cluster", "launchType", "schedulingStrategy", "iamRole"),
    "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace": ("name", "vpc"),
    "aws:servicediscovery/service:Service": ("name", "dnsConfig.namespaceId", "healthCheckCustomConfig"),
}


def new_image(config: dict) -> dict:
    config["spotyard:services"]["whoami"]["image"] = "traefik/whoami:v1.11"
    return config


def new_environment_and_count(config: dict) -> dict:
    config["spotyard:services"]["whoami"].update(environment={"WHOAMI_NAME": "prod"}, desiredCount=3)
    return config


def another_service(config: dict) -> dict:
    config["spotyard:services"]["blog"] = {
        "image": "ghost:5",
        "containerPort": 2368,
        "hostNames": ["blog.example.com"],
        "fleet": "web",
    }
    return config


def _input(resource, dotted: str):
    value = resource.inputs
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


@pytest.mark.parametrize("change", [new_image, new_environment_and_count, another_service], ids=lambda c: c.__name__)
def test_a_routine_change_of_the_services_replaces_no_service(deploy, change):
    from tests.harness.redeploy import renames_between
    from tests.test_no_replacement import FORCE_NEW

    before = deploy(copy.deepcopy(SERVICES))
    after = deploy(change(copy.deepcopy(SERVICES)), previous=before)
    renames = renames_between(before, after)
    kept = {r.urn: r for r in after.resources}
    force_new = {**{t: inputs for t, (inputs, _) in FORCE_NEW.items()}, **SERVICES_FORCE_NEW}
    component = before.one("spotyard:index:Services", "services")
    checked = [r for r in before.resources if r.type in force_new and r.name.startswith("services-")]
    assert {r.type for r in checked} >= set(SERVICES_FORCE_NEW) | {"aws:efs/fileSystem:FileSystem"}
    assert all(r.parent == component.urn or r.name.startswith("services-proxy-data") for r in checked)
    replaced = []
    for resource in checked:
        twin = kept.get(resource.urn)
        if twin is None:
            replaced.append(f"{resource.urn}: no longer declared")
            continue
        for name in force_new[resource.type]:
            old, new = renames.translate(_input(resource, name)), _input(twin, name)
            if old != new:
                replaced.append(f"{resource.name}.{name}: {old!r} -> {new!r}")
    assert not replaced, "\n".join(replaced)
    if change is new_image:  # the change itself: a new task definition revision for the same service
        (container,) = containers(after, "services-whoami-task")
        assert container["image"] == "traefik/whoami:v1.11"
