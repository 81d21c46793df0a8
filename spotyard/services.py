"""A deployed stack's services (spotyard:services) as the CLI finds them: the ECS cluster
tagged with the stack, its services by their `spotyard:service` tag, where their tasks run
and their last deployment, with boto3 only (no Pulumi)."""

from __future__ import annotations

from typing import Any

from spotyard_lambda.names import SERVICE_HOSTS_TAG, SERVICE_TAG, STACK_TAG

# DescribeServices, DescribeTasks and DescribeContainerInstances take at most 10, 100 and 100
# items a call (ECS API reference).
SERVICES_PER_CALL = 10
TASKS_PER_CALL = 100


def _tags(items: list[dict[str, str]]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in items}


def _chunks(items: list[str], size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def find_cluster(ecs, stack: str) -> str | None:
    """The ARN of the stack's ECS cluster, or None when the stack has no services."""
    arns = [arn for page in ecs.get_paginator("list_clusters").paginate() for arn in page["clusterArns"]]
    for chunk in _chunks(arns, TASKS_PER_CALL):
        for cluster in ecs.describe_clusters(clusters=chunk, include=["TAGS"])["clusters"]:
            if _tags(cluster.get("tags", [])).get(STACK_TAG) == stack and cluster["status"] == "ACTIVE":
                return cluster["clusterArn"]
    return None


def find_services(session, stack: str) -> list[dict[str, Any]]:
    """Each service of the stack (the proxy among them): host names, desired and running tasks,
    the EC2 instances its tasks run on, and its newest deployment. Empty without services."""
    ecs = session.client("ecs")
    cluster = find_cluster(ecs, stack)
    if cluster is None:
        return []
    arns = [arn for page in ecs.get_paginator("list_services").paginate(cluster=cluster) for arn in page["serviceArns"]]
    described = [
        service
        for chunk in _chunks(arns, SERVICES_PER_CALL)
        for service in ecs.describe_services(cluster=cluster, services=chunk, include=["TAGS"])["services"]
    ]
    hosts_of_instances = _instances_of_tasks(ecs, cluster)
    found = []
    for service in described:
        tags = _tags(service.get("tags", []))
        if SERVICE_TAG not in tags:
            continue
        tasks = [
            arn
            for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, serviceName=service["serviceName"])
            for arn in page["taskArns"]
        ]
        found.append(
            {
                "name": tags[SERVICE_TAG],
                "hostNames": [h for h in tags.get(SERVICE_HOSTS_TAG, "").split(",") if h],
                "serviceName": service["serviceName"],
                "desired": service["desiredCount"],
                "running": service["runningCount"],
                "instances": sorted({hosts_of_instances[arn] for arn in tasks if arn in hosts_of_instances}),
                "lastDeployment": _last_deployment(service.get("deployments", [])),
            }
        )
    return sorted(found, key=lambda s: s["name"])


def _instances_of_tasks(ecs, cluster: str) -> dict[str, str]:
    """task ARN -> EC2 instance id, for every task of the cluster."""
    tasks = [arn for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster) for arn in page["taskArns"]]
    container_instance_of: dict[str, str] = {}
    for chunk in _chunks(tasks, TASKS_PER_CALL):
        for task in ecs.describe_tasks(cluster=cluster, tasks=chunk)["tasks"]:
            if task.get("containerInstanceArn"):
                container_instance_of[task["taskArn"]] = task["containerInstanceArn"]
    instance_of: dict[str, str] = {}
    for chunk in _chunks(sorted(set(container_instance_of.values())), TASKS_PER_CALL):
        for instance in ecs.describe_container_instances(cluster=cluster, containerInstances=chunk)[
            "containerInstances"
        ]:
            instance_of[instance["containerInstanceArn"]] = instance["ec2InstanceId"]
    return {task: instance_of[ci] for task, ci in container_instance_of.items() if ci in instance_of}


def _last_deployment(deployments: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not deployments:
        return None
    newest = max(deployments, key=lambda d: d.get("createdAt") or d.get("updatedAt"))
    created = newest.get("createdAt")
    return {
        "status": newest.get("status"),
        "rolloutState": newest.get("rolloutState"),
        "taskDefinition": newest.get("taskDefinition", "").rsplit("/", 1)[-1],
        "createdAt": created.isoformat() if created else None,
    }
