"""Services: small always-on containers on one `asg` fleet, on ECS, behind one TLS proxy.

Owns the stack's ECS cluster; the Auto Scaling capacity provider on the hosting fleet's group
(managed scaling, managed draining) and its association with the cluster; a Cloud Map
private DNS namespace and one discovery service per service; one task definition, execution
role, task role and ECS service per service; the proxy (Caddy) as a daemon service with its
certificates on EFS; the log group; the fleet's ports 80/443 and the ECS permissions of its
instance role. The fleet's user data joins the instances to the cluster (`instance_environment`,
instance/ecs-agent.sh).

Service discovery is Cloud Map DNS (SRV records) rather than ECS Service Connect:
- with Service Connect "Amazon ECS automatically adds a proxy container to each task in the
  service" (ECS developer guide, "Configure Service Connect proxy container"), whose CPU and
  memory each task must also hold: for services this small, as much as the service itself;
- with the `bridge` network mode each task gets a dynamic host port on its instance, and ECS
  registers exactly that (instance IP, host port) as an SRV record of the service while the task
  runs and removes it when the task stops (ECS API reference, ServiceRegistry: with `bridge` or
  `host` "you must specify a containerName and containerPort combination" and an SRV record);
  `awsvpc` (which A records need) would take one ENI per task, a few per small instance;
- Caddy reads SRV records natively (`reverse_proxy { dynamic srv <name> }`), so the proxy follows
  the tasks as they move between instances with no sidecar and no restart.
"""

import json
import re
import shlex
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
from spotyard_lambda.names import (
    DEFAULT_SERVICE_CPU_UNITS,
    DEFAULT_SERVICE_DESIRED_COUNT,
    DEFAULT_SERVICE_MEMORY_MIB,
    PROXY_SERVICE,
    SERVICE_HOSTS_TAG,
    SERVICE_TAG,
)

from components.args import AccountArgs, RoleArgs, SubnetArgs, as_args
from components.home_volume import HomeVolume, HomeVolumeArgs
from components.iam import allow, ecs_execution_role, ecs_task_role, policy_document, secret_resources
from components.proxy_config import DATA_DIRECTORY, ProxyRoute, render_caddyfile

PROXY_IMAGE = "caddy:2"
# ECS_DYNAMIC_HOST_PORT_RANGE (amazon-ecs-agent README, "Environment variables"): the host ports the
# agent gives `bridge` tasks. Pinned to Linux's default ephemeral range, and opened between the fleet's
# instances only, so that the proxy on one instance reaches the tasks on the others.
DYNAMIC_HOST_PORTS = (32768, 60999)
SRV_TTL_SECONDS = 10
LOG_RETENTION_DAYS = 30
# On a group that is ECS capacity: ECS adds `AmazonECSManaged` itself when the capacity provider is
# created, and "any tooling" must not remove it (ECS developer guide, "Auto Scaling group capacity
# providers"); the program that owns the group declares it, so that `pulumi up` keeps it.
CAPACITY_GROUP_TAGS = {"AmazonECSManaged": ""}


@dataclass
class ServiceArgs:
    """One container service, with its secrets as full ARNs."""

    name: str
    image: str
    container_port: int
    host_names: list[str]
    cpu: int | None = DEFAULT_SERVICE_CPU_UNITS
    memory_mib: int | None = DEFAULT_SERVICE_MEMORY_MIB
    environment: dict[str, str] | None = field(default_factory=dict)
    secret_arns: dict[str, str] | None = field(default_factory=dict)  # variable -> SSM parameter / secret ARN
    health_check_path: str | None = None
    desired_count: int | None = DEFAULT_SERVICE_DESIRED_COUNT


@dataclass
class ServicesArgs:
    stack_tag: str  # names the log group and the task definition families
    account: AccountArgs
    vpc_id: pulumi.Input[str]
    subnets: list[SubnetArgs]  # the hosting fleet's: the proxy's data volume has a mount target in each zone
    fleet: str  # the hosting fleet (an Auto Scaling group)
    group_arn: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    instance_role_name: pulumi.Input[str]
    namespace: str  # the Cloud Map private DNS namespace (a private hosted zone in the VPC)
    services: list[ServiceArgs]
    iam: RoleArgs | None = RoleArgs()
    acme_email: str | None = None
    acme_ca: str | None = None


class Services(pulumi.ComponentResource):
    cluster: aws.ecs.Cluster
    capacity_provider: aws.ecs.CapacityProvider
    instance_environment: dict[str, pulumi.Output[str] | str]

    def __init__(self, name: str, args: ServicesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotyard:index:Services", name, None, opts)
        args = as_args(ServicesArgs, args)
        child = pulumi.ResourceOptions(parent=self)

        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="disabled")],
            opts=child,
        )
        # terraform-provider-aws internal/service/ecs/capacity_provider.go: the group ARN (and the whole
        # auto_scaling_group_provider block's presence) is ForceNew; managed scaling, draining and
        # termination protection are updated in place (UpdateCapacityProvider).
        self.capacity_provider = aws.ecs.CapacityProvider(
            f"{name}-capacity",
            auto_scaling_group_provider=aws.ecs.CapacityProviderAutoScalingGroupProviderArgs(
                auto_scaling_group_arn=args.group_arn,
                # ECS sets the group's desired capacity to what the tasks need (target 100%: no idle
                # instance); spotyard's group already leaves desired capacity to others (ignore_changes).
                managed_scaling=aws.ecs.CapacityProviderAutoScalingGroupProviderManagedScalingArgs(
                    status="ENABLED", target_capacity=100, minimum_scaling_step_size=1, maximum_scaling_step_size=1
                ),
                # On scale-in ECS drains an instance's tasks (they start elsewhere) before Auto Scaling
                # terminates it (AutoScalingGroupProvider.managedDraining).
                managed_draining="ENABLED",
                # Off: it needs scale-in protection on the group and every instance (API reference,
                # AutoScalingGroupProvider.managedTerminationProtection), which would also keep
                # `spotyard stop` and any lower capacity from terminating instances; managed draining
                # already moves the tasks before a scale-in. A Spot interruption ignores both.
                managed_termination_protection="DISABLED",
            ),
            opts=child,
        )
        associated = aws.ecs.ClusterCapacityProviders(
            f"{name}-capacity-providers",
            cluster_name=self.cluster.name,
            capacity_providers=[self.capacity_provider.name],
            default_capacity_provider_strategies=[
                aws.ecs.ClusterCapacityProvidersDefaultCapacityProviderStrategyArgs(
                    capacity_provider=self.capacity_provider.name, weight=1
                )
            ],
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-ecs-instance",
            role=args.instance_role_name,
            policy_arn=args.account.managed_policy("service-role/AmazonEC2ContainerServiceforEC2Role"),
            opts=child,
        )
        self._open_ports(name, args)

        self.namespace = aws.servicediscovery.PrivateDnsNamespace(
            f"{name}-namespace", name=args.namespace, vpc=args.vpc_id, description="spotyard services", opts=child
        )
        self.task_roles: dict[str, aws.iam.Role] = {}
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", name=f"/{args.stack_tag}/services", retention_in_days=LOG_RETENTION_DAYS, opts=child
        )
        self.services = {
            service.name: self._service(name, service, args, depends_on=[associated]) for service in args.services
        }
        routes = [
            ProxyRoute(host_names=tuple(service.host_names), srv_name=f"{service.name}.{args.namespace}")
            for service in args.services
        ]
        self.caddyfile = render_caddyfile(routes, args.acme_email, args.acme_ca)
        self.proxy = self._proxy(name, args)

        self.outputs = {
            "clusterName": self.cluster.name,
            "namespace": args.namespace,
            "logGroupName": self.log_group.name,
            "services": {
                service.name: {
                    "hostNames": service.host_names,
                    "serviceName": self.services[service.name].name,
                    "taskRoleArn": self.task_roles[service.name].arn,
                }
                for service in args.services
            },
        }
        self.instance_environment = {
            "SPOTYARD_ECS_CLUSTER": self.cluster.name,
            "SPOTYARD_ECS_PORT_RANGE": f"{DYNAMIC_HOST_PORTS[0]}-{DYNAMIC_HOST_PORTS[1]}",
        }
        self.register_outputs({**self.outputs, "capacityProviderName": self.capacity_provider.name})

    def _open_ports(self, name: str, args: ServicesArgs) -> None:
        """80 and 443 from anywhere (the proxy); the dynamic host ports between the fleet's instances."""
        child = pulumi.ResourceOptions(parent=self)
        for port in (80, 443):
            for family, source in (("ipv4", {"cidr_ipv4": "0.0.0.0/0"}), ("ipv6", {"cidr_ipv6": "::/0"})):
                aws.vpc.SecurityGroupIngressRule(
                    f"{name}-tcp-{port}-{family}",
                    security_group_id=args.security_group_id,
                    ip_protocol="tcp",
                    from_port=port,
                    to_port=port,
                    description=f"services proxy, tcp {port}",
                    opts=child,
                    **source,
                )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-task-ports",
            security_group_id=args.security_group_id,
            ip_protocol="tcp",
            from_port=DYNAMIC_HOST_PORTS[0],
            to_port=DYNAMIC_HOST_PORTS[1],
            referenced_security_group_id=args.security_group_id,
            description="services proxy to the tasks' dynamic host ports",
            opts=child,
        )

    def _roles(self, name: str, service: str, args: ServicesArgs, secret_arns: list[str]) -> tuple:
        """The execution role (the agent: logs, the service's own secrets) and the task role (the
        containers: nothing unless added; its ARN is an output, to grant in resource policies)."""
        child = pulumi.ResourceOptions(parent=self)
        execution = ecs_execution_role(
            f"{name}-{service}-execution-role",
            description=f"spotyard service {service}: ECS agent",
            iam=args.iam,
            opts=child,
        )
        statements = [
            allow(
                "Logs",
                ["logs:CreateLogStream", "logs:PutLogEvents"],
                self.log_group.arn.apply(lambda arn: f"{arn}:log-stream:{service}/*"),
            )
        ]
        parameters = [arn for arn in secret_arns if arn.split(":")[2] == "ssm"]
        secrets = [resource for arn in secret_arns if arn not in parameters for resource in secret_resources(arn)]
        # ECS developer guide, "Pass sensitive data to an Amazon ECS container": the execution role
        # needs ssm:GetParameters / secretsmanager:GetSecretValue on the referenced ones (and
        # kms:Decrypt only for a customer managed key, which the user adds).
        if parameters:
            statements.append(allow("ReadOwnParameters", ["ssm:GetParameters"], parameters))
        if secrets:
            statements.append(allow("ReadOwnSecrets", ["secretsmanager:GetSecretValue"], secrets))
        aws.iam.RolePolicy(
            f"{name}-{service}-execution", role=execution.name, policy=policy_document(statements), opts=child
        )
        task = ecs_task_role(
            f"{name}-{service}-task-role",
            description=f"spotyard service {service}: containers",
            account_id=args.account.account_id,
            iam=args.iam,
            opts=child,
        )
        self.task_roles[service] = task
        return execution, task

    def _service(
        self, name: str, service: ServiceArgs, args: ServicesArgs, depends_on: list[pulumi.Resource]
    ) -> aws.ecs.Service:
        child = pulumi.ResourceOptions(parent=self)
        execution, task = self._roles(name, service.name, args, list(service.secret_arns.values()))
        container = {
            "name": service.name,
            "image": service.image,
            "essential": True,
            "cpu": service.cpu,
            "memory": service.memory_mib,
            # hostPort 0: a dynamic host port, which the SRV record carries.
            "portMappings": [{"containerPort": service.container_port, "hostPort": 0, "protocol": "tcp"}],
            "environment": [{"name": k, "value": v} for k, v in sorted(service.environment.items())],
            "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(service.secret_arns.items())],
            "healthCheck": _health_check(service.container_port, service.health_check_path),
        }
        definition = self._task_definition(name, service.name, args, (execution, task), container)
        discovery = aws.servicediscovery.Service(
            f"{name}-{service.name}-discovery",
            name=service.name,
            dns_config=aws.servicediscovery.ServiceDnsConfigArgs(
                namespace_id=self.namespace.id,
                dns_records=[aws.servicediscovery.ServiceDnsConfigDnsRecordArgs(type="SRV", ttl=SRV_TTL_SECONDS)],
                routing_policy="MULTIVALUE",
            ),
            # ECS reports each task's health to Cloud Map (custom health checks): a stopping or
            # unhealthy task leaves the answers.
            health_check_custom_config=aws.servicediscovery.ServiceHealthCheckCustomConfigArgs(),
            opts=child,
        )
        return aws.ecs.Service(
            f"{name}-{service.name}",
            cluster=self.cluster.arn,
            task_definition=definition.arn,
            desired_count=service.desired_count,
            # Tasks start only on the capacity provider, whose managed scaling adds an instance when
            # they do not fit (the strategy needs the provider associated with the cluster first).
            capacity_provider_strategies=[
                aws.ecs.ServiceCapacityProviderStrategyArgs(capacity_provider=self.capacity_provider.name, weight=1)
            ],
            # Copies of a service on different zones, then different instances: one Spot interruption
            # takes at most the copies on that instance.
            ordered_placement_strategies=[
                aws.ecs.ServiceOrderedPlacementStrategyArgs(type="spread", field="attribute:ecs.availability-zone"),
                aws.ecs.ServiceOrderedPlacementStrategyArgs(type="spread", field="instanceId"),
            ],
            service_registries=aws.ecs.ServiceServiceRegistriesArgs(
                registry_arn=discovery.arn, container_name=service.name, container_port=service.container_port
            ),
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
            enable_ecs_managed_tags=True,
            propagate_tags="SERVICE",
            tags={SERVICE_TAG: service.name, SERVICE_HOSTS_TAG: ",".join(service.host_names)},
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )

    def _task_definition(
        self,
        name: str,
        service: str,
        args: ServicesArgs,
        roles: tuple[aws.iam.Role, aws.iam.Role],
        container: dict,
        volumes: list[aws.ecs.TaskDefinitionVolumeArgs] | None = None,
    ) -> aws.ecs.TaskDefinition:
        """`service`'s task definition: one container, bridge network mode on the EC2 capacity,
        in the stack's family, logging to the services' log group; `roles` (execution, task)."""
        execution, task = roles
        return aws.ecs.TaskDefinition(
            f"{name}-{service}-task",
            family=f"{_family(args.stack_tag)}-{service}",
            network_mode="bridge",
            requires_compatibilities=["EC2"],
            execution_role_arn=execution.arn,
            task_role_arn=task.arn,
            container_definitions=_containers(container, self.log_group.name, args.account.region, service),
            volumes=volumes,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _proxy(self, name: str, args: ServicesArgs) -> aws.ecs.Service:
        child = pulumi.ResourceOptions(parent=self)
        execution, task = self._roles(name, PROXY_SERVICE, args, [])
        # Caddy's data (certificates, ACME account, locks) on EFS through the access point, mounted by
        # the agent with TLS and the task role's IAM identity, the only principal the file system admits.
        data = HomeVolume(
            f"{name}-proxy-data",
            HomeVolumeArgs(
                fleet=f"{args.fleet}-proxy",
                vpc_id=args.vpc_id,
                subnets=args.subnets,
                fleet_security_group_id=args.security_group_id,
                instance_role_arn=task.arn,
                uid=0,  # the official caddy image runs as root
                gid=0,
            ),
            opts=child,
        )
        container = {
            "name": PROXY_SERVICE,
            "image": PROXY_IMAGE,
            "essential": True,
            "cpu": 128,
            "memory": 256,
            "portMappings": [
                {"containerPort": 80, "hostPort": 80, "protocol": "tcp"},
                {"containerPort": 443, "hostPort": 443, "protocol": "tcp"},
            ],
            # The Caddyfile travels in the task definition: a new configuration is a new revision, which
            # the daemon service rolls out.
            "environment": [{"name": "CADDYFILE", "value": self.caddyfile}],
            "command": [
                "sh",
                "-c",
                'printf "%s" "$CADDYFILE" > /etc/caddy/Caddyfile && '
                "exec caddy run --config /etc/caddy/Caddyfile --adapter caddyfile",
            ],
            "mountPoints": [{"sourceVolume": "data", "containerPath": DATA_DIRECTORY}],
        }
        definition = self._task_definition(
            name,
            PROXY_SERVICE,
            args,
            (execution, task),
            container,
            volumes=[
                aws.ecs.TaskDefinitionVolumeArgs(
                    name="data",
                    efs_volume_configuration=aws.ecs.TaskDefinitionVolumeEfsVolumeConfigurationArgs(
                        file_system_id=data.file_system_id,
                        transit_encryption="ENABLED",
                        authorization_config=aws.ecs.TaskDefinitionVolumeEfsVolumeConfigurationAuthorizationConfigArgs(
                            access_point_id=data.access_point_id, iam="ENABLED"
                        ),
                    ),
                )
            ],
        )
        # One proxy on every instance of the fleet (DAEMON: "exactly one task on each active container
        # instance", API reference Service.schedulingStrategy), so that the one holding the Elastic IP
        # has one wherever the IP moves. It needs no capacity of its own to be scaled for, so it takes
        # the EC2 launch type rather than the capacity provider (CreateService: one or the other).
        return aws.ecs.Service(
            f"{name}-proxy",
            cluster=self.cluster.arn,
            task_definition=definition.arn,
            scheduling_strategy="DAEMON",
            launch_type="EC2",
            # A daemon task is replaced in place: stop the old one first, as its ports are fixed.
            deployment_minimum_healthy_percent=0,
            deployment_maximum_percent=100,
            enable_ecs_managed_tags=True,
            propagate_tags="SERVICE",
            tags={SERVICE_TAG: PROXY_SERVICE},
            opts=child,
        )


def _family(stack_tag: str) -> str:
    """Task definition families take letters, digits, hyphens and underscores (up to 255)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", stack_tag)


def _containers(container: dict, log_group: pulumi.Input[str], region: str, prefix: str) -> pulumi.Output[str]:
    """The container definitions JSON, logging to the stack's services log group under `prefix/`."""
    definition = {key: value for key, value in container.items() if value not in (None, [])}
    return pulumi.Output.from_input(log_group).apply(
        lambda group: json.dumps(
            [
                {
                    **definition,
                    "logConfiguration": {
                        "logDriver": "awslogs",
                        "options": {
                            "awslogs-group": group,
                            "awslogs-region": region,
                            "awslogs-stream-prefix": prefix,
                        },
                    },
                }
            ]
        )
    )


def _health_check(port: int, path: str | None) -> dict | None:
    """The container's own health check on `path`, run inside the container by the agent: it needs a
    shell and curl or wget in the image (leave healthCheckPath out for images without, such as
    `scratch` ones). An unhealthy task leaves the service's SRV answers and is replaced."""
    if not path:
        return None
    url = shlex.quote(f"http://127.0.0.1:{port}{path}")
    return {
        "command": ["CMD-SHELL", f"curl -fsS -o /dev/null {url} || wget -q -O /dev/null {url} || exit 1"],
        "interval": 30,
        "timeout": 5,
        "retries": 3,
        "startPeriod": 30,
    }
