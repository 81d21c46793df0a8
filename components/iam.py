"""IAM policy documents built from statements whose values may be Pulumi outputs."""

import json
import re
from typing import Any

import pulumi
import pulumi_aws as aws

from components.args import RoleArgs


def assume_role_policy(service: str, conditions: dict[str, Any] | None = None) -> str:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if conditions:
        statement["Condition"] = conditions
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def policy_document(statements: list[dict[str, Any]]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements})


def allow(sid: str, actions: list[str], resources: Any, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    """One Allow statement; `resources` is an ARN, a list of ARNs, or outputs of either."""
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def stack_role(
    name: str,
    *,
    service: str,
    description: str,
    iam: RoleArgs,
    conditions: dict[str, Any] | None = None,
    opts: pulumi.ResourceOptions | None = None,
) -> aws.iam.Role:
    """A role `service` may assume, with the stack's `spotyard:iam` path and permissions boundary:
    every role the stack creates is made here. A new path replaces the role (`path` is ForceNew,
    `permissions_boundary` is updated in place with PutRolePermissionsBoundary:
    terraform-provider-aws internal/service/iam/role.go)."""
    return aws.iam.Role(
        name,
        assume_role_policy=assume_role_policy(service, conditions),
        description=description,
        path=iam.path,
        permissions_boundary=iam.permissions_boundary,
        opts=opts,
    )


ECS_TASKS = "ecs-tasks.amazonaws.com"


def ecs_task_role(
    name: str, *, description: str, account_id: str, iam: RoleArgs, opts: pulumi.ResourceOptions | None = None
) -> aws.iam.Role:
    """The role a task's containers act as. Only tasks of this account may assume it: ECS
    developer guide, "Amazon ECS task IAM role": "it is recommended that you use the
    aws:SourceAccount or aws:SourceArn condition keys ... in the trust relationship" (the
    confused deputy problem)."""
    return stack_role(
        name,
        service=ECS_TASKS,
        description=description,
        conditions={"StringEquals": {"aws:SourceAccount": account_id}},
        iam=iam,
        opts=opts,
    )


def ecs_execution_role(
    name: str, *, description: str, iam: RoleArgs, opts: pulumi.ResourceOptions | None = None
) -> aws.iam.Role:
    """The role ECS starts a task with (its image, its logs, its secrets). ECS developer guide,
    "Amazon ECS task execution IAM role", gives its trust policy without conditions, and a
    condition ECS does not meet when it assumes the role would stop every task from starting:
    none here (a role cannot be passed to a service of another account anyway)."""
    return stack_role(name, service=ECS_TASKS, description=description, iam=iam, opts=opts)


def secret_resources(value_from: str) -> list[str]:
    """The secret a Secrets Manager `valueFrom` reads, as IAM names it. ECS takes `<secret ARN>` or
    `<secret ARN>:<json-key>:<version-stage>:<version-id>` (ECS developer guide, "Pass Secrets
    Manager secrets through Amazon ECS environment variables"); a secret's full ARN ends in `-` and
    six random characters, which a partial ARN lacks: `-??????` matches them (Secrets Manager user
    guide, "Permissions policy examples")."""
    arn = ":".join(value_from.split(":")[:7])
    return [arn] if re.search(r"-[A-Za-z0-9]{6}$", arn) else [arn, f"{arn}-??????"]
