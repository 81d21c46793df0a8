"""`spotyard:services` and `spotyard:proxy` as the Services component's args: the Cloud Map
namespace of the stack, each service with its secrets as ARNs, the hosting fleet's group."""

from __future__ import annotations

import re

from components.args import AccountArgs
from components.services import ServiceArgs, ServicesArgs
from components.spot_fleet import SpotFleet
from spotyard.config import StackConfig
from spotyard.config_services import ServiceConfig
from stack.environment import Environment


def services_args(config: StackConfig, environment: Environment, fleet: str, spot_fleet: SpotFleet) -> ServicesArgs:
    """The services of the stack on `fleet` (the one that hosts them), built as `spot_fleet`."""
    return ServicesArgs(
        stack_tag=config.stack_tag,
        account=environment.account,
        vpc_id=environment.vpc_id,
        subnets=list(environment.subnets),
        fleet=fleet,
        group_arn=spot_fleet.capacity_target_arn,
        security_group_id=spot_fleet.security_group_id,
        instance_role_name=spot_fleet.instance_role.name,
        namespace=namespace_name(config.project, config.stack),
        services=[service_args(service, environment.account) for service in config.services],
        iam=environment.iam,
        acme_email=config.proxy.acme_email if config.proxy else None,
        acme_ca=config.proxy.acme_ca if config.proxy else None,
    )


def namespace_name(project: str, stack: str) -> str:
    """The Cloud Map namespace of a stack's services: `services.<stack>.<project>.internal` (two stacks
    in one VPC cannot share a private zone name)."""
    labels = [re.sub(r"[^a-z0-9-]+", "-", part.lower()).strip("-") for part in (stack, project)]
    return ".".join(["services", *labels, "internal"])


def secret_arns(service: ServiceConfig, account: AccountArgs) -> dict[str, str]:
    """`secrets` of a service with parameter names turned into ARNs in the stack's region and account
    (IAM needs the ARN; ECS takes either for a parameter in the same region)."""
    return {
        variable: reference
        if reference.startswith("arn:")
        else account.arn("ssm", f"parameter/{reference.lstrip('/')}")
        for variable, reference in service.secrets.items()
    }


def service_args(service: ServiceConfig, account: AccountArgs) -> ServiceArgs:
    return ServiceArgs(
        name=service.name,
        image=service.image,
        container_port=service.container_port,
        host_names=list(service.host_names),
        cpu=service.cpu,
        memory_mib=service.memory_mib,
        environment=dict(service.environment),
        secret_arns=secret_arns(service, account),
        health_check_path=service.health_check_path,
        desired_count=service.desired_count,
    )
