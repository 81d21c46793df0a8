"""ECS as moto emulates it, made to behave as AWS does for services.

ECS's service scheduler starts a service's tasks on the cluster's container instances and
keeps them there: `desiredCount` copies of a REPLICA service, one copy on every container
instance of a DAEMON service, including instances that register later (ECS developer guide,
"Amazon ECS services", service scheduler concepts). Tasks a service starts belong to the task
group `service:<service name>` (developer guide, "Task groups"), which is how ListTasks
`serviceName` finds them. moto's CreateService stores the service and starts no task (its
running count comes from an environment variable), and its ListTasks ignores `serviceName`.

Here a small scheduler places the missing tasks after CreateService and after
RegisterContainerInstance. It places them as ECS's `spread` on `instanceId` does (each task on
the instance with the fewest tasks of that service, among those with the CPU, memory and
ports it needs), the strategy spotyard's services use; moto's own RunTask fills the first
instance instead. And a port mapping with hostPort 0 asks for a dynamic host port (ECS API
reference, PortMapping: "If you use containers in a task with the bridge network mode and
you specify a container port and not a host port, your container automatically receives a
host port in the ephemeral port range"), which moto counts as a reserved port "0", so that
a second such task never fits on an instance: here it reserves nothing.

What it does not emulate: the capacity provider strategy (every container
instance of the cluster is a candidate; spotyard's cluster has one capacity provider), the
availability-zone spread, task health, and Cloud Map registration of the tasks (moto's ECS does
not call Cloud Map).
"""

from __future__ import annotations

import functools

from moto.ecs.models import EC2ContainerServiceBackend, Service


def service_group(service_name: str) -> str:
    return f"service:{service_name}"


def _schedule(backend: EC2ContainerServiceBackend, cluster_name: str) -> None:
    instances = [
        instance
        for instance in backend.container_instances.get(cluster_name, {}).values()
        if instance.status == "ACTIVE"
    ]
    for service in list(backend.services.values()):
        if service.cluster_name != cluster_name or service.status != "ACTIVE" or not service.task_definition:
            continue
        _place(backend, service, instances)


def _place(backend: EC2ContainerServiceBackend, service: Service, instances: list) -> None:
    group = service_group(service.name)
    definition = backend.describe_task_definition(service.task_definition)
    needs = backend._calculate_task_resource_requirements(definition)
    tasks = [t for t in backend.tasks.get(service.cluster_name, {}).values() if t.group == group]
    count = {i.container_instance_arn: 0 for i in instances}
    for task in tasks:
        if task.container_instance_arn in count:
            count[task.container_instance_arn] += 1
    daemon = service.scheduling_strategy == "DAEMON"
    missing = sum(1 for c in count.values() if c == 0) if daemon else service.desired_count - len(tasks)
    deployment = service.deployments[0]["id"] if service.deployments else "ecs-svc"
    for _ in range(max(missing, 0)):
        fitting = [
            i
            for i in instances
            if backend._can_be_placed(i, needs) and not (daemon and count[i.container_instance_arn])
        ]
        if not fitting:
            break
        target = min(fitting, key=lambda i: count[i.container_instance_arn])
        backend.start_task(
            service.cluster_name, service.task_definition, [target.container_instance_arn], {}, deployment, group=group
        )
        count[target.container_instance_arn] += 1
    running = sum(count.values())
    service.running_count = running
    service.pending_count = max((len(instances) if daemon else service.desired_count) - running, 0)
    if daemon:
        service.desired_count = len(instances)
    for entry in service.deployments:
        entry.update(runningCount=running, pendingCount=service.pending_count, desiredCount=service.desired_count)
        entry["rolloutState"] = "COMPLETED" if service.pending_count == 0 else "IN_PROGRESS"


def _dynamic_ports_reserve_nothing(original):
    @functools.wraps(original)
    def requirements(task_definition):
        needs = original(task_definition)
        return {**needs, "PORTS": [p for p in needs["PORTS"] if str(p) != "0"]}

    return requirements


def _then_schedule(original):
    @functools.wraps(original)
    def wrapped(self, cluster_str, *args, **kwargs):
        result = original(self, cluster_str, *args, **kwargs)
        _schedule(self, cluster_str.split("/")[-1])
        return result

    return wrapped


def _list_tasks_of_service(original):
    @functools.wraps(original)
    def list_tasks(
        self, cluster_str=None, container_instance=None, family=None, started_by=None, service_name=None, status=None
    ):
        tasks = original(self, cluster_str, container_instance, family, started_by, None, status)
        return [t for t in tasks if t.group == service_group(service_name)] if service_name else tasks

    return list_tasks


def apply() -> None:
    if hasattr(EC2ContainerServiceBackend.create_service, "__wrapped__"):
        return
    EC2ContainerServiceBackend.create_service = _then_schedule(EC2ContainerServiceBackend.create_service)
    EC2ContainerServiceBackend.register_container_instance = _then_schedule(
        EC2ContainerServiceBackend.register_container_instance
    )
    EC2ContainerServiceBackend.list_tasks = _list_tasks_of_service(EC2ContainerServiceBackend.list_tasks)
    EC2ContainerServiceBackend._calculate_task_resource_requirements = staticmethod(
        _dynamic_ports_reserve_nothing(EC2ContainerServiceBackend._calculate_task_resource_requirements)
    )
