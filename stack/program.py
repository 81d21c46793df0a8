"""The program `__main__.py` runs: builds every component from the typed stack configuration
and returns the stack outputs (spec.md). No module-level state: each call builds one stack."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pulumi
import pulumi_aws as aws
from spotyard_lambda.names import DEFAULT_TTL_SECONDS, DNS_ZONE_TAG, IMAGE_ROLE_TAG

from components.dns_registrar import DnsRegistrar, DnsRegistrarArgs
from components.home_volume import HomeVolume, HomeVolumeArgs
from components.image_keeper import ImageKeeper, ImageKeeperArgs, KeptFleet
from components.interruption_handler import (
    InterruptedFleet,
    InterruptionHandler,
    InterruptionHandlerArgs,
    TargetGroupArgs,
)
from components.notifications import Notifications, NotificationsArgs
from components.queue_autoscaler import QueueAutoscaler, QueueAutoscalerArgs, WarmUpArgs
from components.results_bucket import ResultsBucket, ResultsBucketArgs, credentials_arn
from components.schedules import FleetSchedule, FleetScheduleArgs
from components.services import CAPACITY_GROUP_TAGS, Services
from components.spot_fleet import IngressRuleArgs, RootVolumeArgs, SpotFleet, SpotFleetArgs
from components.spot_service_roles import SpotServiceRoles, SpotServiceRolesArgs
from spotyard.config import FleetConfig, StackConfig
from spotyard.ssh_config import SshHost, render, ssh_tags
from stack.bootstrap import bootstrap_script, instance_environment, user_data
from stack.environment import Environment, resolve_environment
from stack.images import Image, resolve_images
from stack.jobs import batch_jobs_from_config, fleet_jobs, job_alerts
from stack.provider import fleet_tags, stack_provider
from stack.service_roles import missing_spot_service_roles, needed_spot_service_roles
from stack.services import services_args
from stack.target_groups import read_target_groups


@dataclass(frozen=True)
class Shared:
    """What every fleet of the stack is built with."""

    config: StackConfig
    provider: aws.Provider
    environment: Environment
    images: dict[str, Image]
    service_roles: list[aws.iam.ServiceLinkedRole]
    topic_arn: pulumi.Output[str] | None
    zone_name: pulumi.Output[str] | None

    @property
    def opts(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(providers=[self.provider])


@dataclass(frozen=True)
class BuiltFleet:
    """One fleet's entry of the `fleets` output and what the stack-wide Lambdas act on."""

    outputs: dict[str, pulumi.Input[str]]
    interrupted: InterruptedFleet
    kept: KeptFleet | None
    services: Services | None = None  # on the fleet that hosts spotyard:services


def build_stack(config: StackConfig) -> dict[str, object]:
    """Creates every resource of the stack; returns the stack outputs, in export order."""
    provider = stack_provider(config)
    environment = resolve_environment(config.network, provider, config.iam)
    images = resolve_images(config.fleets, provider)
    with_provider = pulumi.ResourceOptions(providers=[provider])
    missing_service_roles = missing_spot_service_roles(provider, needed_spot_service_roles(config))
    service_roles = (
        SpotServiceRoles(
            "spot-service-roles", SpotServiceRolesArgs(missing=list(missing_service_roles)), opts=with_provider
        ).roles
        if missing_service_roles
        else []
    )
    notifications = (
        Notifications(
            "notifications",
            NotificationsArgs(account=environment.account, email=config.notifications.email),
            opts=with_provider,
        )
        if config.notifications
        else None
    )
    topic_arn = notifications.topic_arn if notifications else None
    elastic_ips = {fleet.name: fleet.elastic_ip for fleet in config.fleets if fleet.elastic_ip}
    registrar = (
        DnsRegistrar(
            "dns",
            DnsRegistrarArgs(
                stack_tag=config.stack_tag,
                account=environment.account,
                vpc_id=environment.vpc_id,
                zone_name=config.dns.zone_name if config.dns else None,
                zone_id=config.dns.zone_id if config.dns else None,
                ttl=config.dns.ttl if config.dns else DEFAULT_TTL_SECONDS,
                elastic_ips=elastic_ips,
                fleets=[fleet.name for fleet in config.fleets],
                alarm_topic_arn=topic_arn,
                iam=environment.iam,
            ),
            opts=with_provider,
        )
        if config.dns or elastic_ips
        else None
    )
    shared = Shared(
        config=config,
        provider=provider,
        environment=environment,
        images=images,
        service_roles=service_roles,
        topic_arn=topic_arn,
        zone_name=registrar.zone_name if registrar else None,
    )
    fleets = {fleet.name: build_fleet(shared, fleet) for fleet in config.fleets}
    if fleets:  # a stack of Batch jobs alone has no instance of its own (Batch retries its jobs)
        InterruptionHandler(
            "interruptions",
            InterruptionHandlerArgs(
                stack_tag=config.stack_tag,
                account=environment.account,
                fleets=[built.interrupted for built in fleets.values()],
                zone_id=registrar.zone_id if registrar else None,
                zone_name=shared.zone_name,
                ttl=config.dns.ttl if config.dns else DEFAULT_TTL_SECONDS,
                topic_arn=topic_arn,
                iam=environment.iam,
            ),
            opts=with_provider,
        )
    kept_fleets = [built.kept for built in fleets.values() if built.kept]
    if kept_fleets:
        ImageKeeper(
            "images",
            ImageKeeperArgs(
                stack_tag=config.stack_tag,
                account=environment.account,
                fleets=kept_fleets,
                topic_arn=topic_arn,
                iam=environment.iam,
            ),
            opts=with_provider,
        )
    batch_job_outputs = batch_jobs_from_config(config, environment, with_provider, service_roles)
    job_alerts("job-alerts", config, environment, topic_arn=topic_arn, opts=with_provider, batch_jobs=batch_job_outputs)
    return {
        "vpcId": environment.vpc_id,
        "subnetIds": environment.subnet_ids,
        "fleets": {name: built.outputs for name, built in fleets.items()},
        "zoneId": registrar.zone_id if registrar else None,
        "notificationTopicArn": topic_arn,
        "sshConfig": render([ssh_host(shared, fleet) for fleet in config.fleets if fleet.ssh]),
        "jobs": batch_job_outputs,
        "services": next((built.services.outputs for built in fleets.values() if built.services), None),
    }


def ssh_host(shared: Shared, fleet: FleetConfig) -> SshHost:
    return SshHost(
        fleet=fleet.name,
        user=fleet.ssh.user,
        stack_tag=shared.config.stack_tag,
        region=shared.environment.region,
        zone_name=shared.zone_name,
        bastion=fleet.ssh.bastion,
        direct=bool(fleet.ssh.allow_from),
        identity_file=fleet.ssh.identity_file,
        forward_agent=fleet.ssh.forward_agent,
    )


def cli_tags(shared: Shared, fleet: FleetConfig) -> dict[str, str]:
    """What `spotyard` (the CLI) reads back from the group or request, without Pulumi."""
    tags = {DNS_ZONE_TAG: shared.zone_name} if shared.zone_name else {}
    if fleet.ssh:
        tags |= ssh_tags(ssh_host(shared, fleet))
    if fleet.image.snapshot_on_terminate:
        tags[IMAGE_ROLE_TAG] = fleet.image.role_tag or ""
    return tags


def build_fleet(shared: Shared, fleet: FleetConfig) -> BuiltFleet:
    """One fleet and what hangs off it."""
    config, environment, with_provider = shared.config, shared.environment, shared.opts
    # Read (and checked) before anything of the fleet exists: a RunError after the deferred user
    # data below would leave the launch template waiting for it.
    target_groups = read_target_groups(fleet, shared.provider)
    # The user data names resources that need the fleet's security group and role first.
    fleet_user_data, resolve_user_data = pulumi.deferred_output()
    spot_fleet = SpotFleet(fleet.name, spot_fleet_args(shared, fleet, fleet_user_data), opts=with_provider)
    target, target_arn = spot_fleet.capacity_target, spot_fleet.capacity_target_arn
    outputs: dict[str, pulumi.Input[str]] = {
        "engine": fleet.engine,
        "groupName" if fleet.engine == "asg" else "requestId": target,
        "securityGroupId": spot_fleet.security_group_id,
        "amiParameter": spot_fleet.image_parameter.name,
        "instanceRoleName": spot_fleet.instance_role.name,
        "instanceRoleArn": spot_fleet.instance_role.arn,
    }
    instance_env: dict[str, pulumi.Input[str]] = dict(instance_environment(config.stack_tag, environment.region, fleet))
    fleet_jobs(
        f"{fleet.name}-job-runner",
        jobs=config.jobs,
        fleet=fleet,
        stack_tag=config.stack_tag,
        instance_role_name=spot_fleet.instance_role.name,
        capacity_target_arn=target_arn,
        environment=environment,
        opts=with_provider,
    )
    saved_image_role = fleet.image.role_tag if fleet.image.snapshot_on_terminate else None
    interrupted = InterruptedFleet(
        name=fleet.name,
        engine=fleet.engine,
        capacity_target=target,
        capacity_target_arn=target_arn,
        decrement_capacity=fleet.interruption.decrement_capacity,
        on_rebalance=fleet.interruption.on_rebalance,
        target_groups=[TargetGroupArgs(arn=group.arn, target_type=group.target_type) for group in target_groups],
        image_role_tag=saved_image_role,
    )
    kept = (
        KeptFleet(
            name=fleet.name,
            engine=fleet.engine,
            capacity_target=target,
            capacity_target_arn=target_arn,
            parameter_name=spot_fleet.image_parameter.name,
            parameter_arn=spot_fleet.image_parameter.arn,
            launch_template_id=spot_fleet.launch_template.id,
            image_role_tag=saved_image_role,
            keep=fleet.image.keep,
        )
        if saved_image_role
        else None
    )
    services = (
        Services("services", services_args(config, environment, fleet.name, spot_fleet), opts=with_provider)
        if fleet.hosts_services
        else None
    )
    if services:
        instance_env |= services.instance_environment
    if shared.zone_name:
        outputs["dnsName"] = f"{fleet.name}.{shared.zone_name}"
    if fleet.home:
        home = HomeVolume(
            f"{fleet.name}-home",
            HomeVolumeArgs(
                fleet=fleet.name,
                vpc_id=environment.vpc_id,
                subnets=list(environment.subnets),
                fleet_security_group_id=spot_fleet.security_group_id,
                instance_role_arn=spot_fleet.instance_role.arn,
                uid=fleet.home.uid,
                gid=fleet.home.gid,
                retain_on_destroy=fleet.home.retain_on_destroy,
            ),
            opts=with_provider,
        )
        instance_env |= {"SPOTYARD_EFS_ID": home.file_system_id, "SPOTYARD_EFS_ACCESS_POINT": home.access_point_id}
        outputs["homeFileSystemId"] = home.file_system_id
    if fleet.results:
        results = ResultsBucket(
            f"{fleet.name}-results",
            ResultsBucketArgs(
                bucket=fleet.results.bucket,
                account=environment.account,
                instance_role_name=spot_fleet.instance_role.name,
                retain_on_destroy=fleet.results.retain_on_destroy,
                readers=list(fleet.results.readers),
                credentials_arn=credentials_arn(
                    fleet.results.credentials_parameter, fleet.results.credentials_secret, environment.account
                ),
            ),
            opts=with_provider,
        )
        outputs["resultsBucket"] = instance_env["SPOTYARD_RESULTS_BUCKET"] = results.bucket_name
    if fleet.queue:
        jobs = QueueAutoscaler(
            f"{fleet.name}-jobs",
            QueueAutoscalerArgs(
                fleet=fleet.name,
                engine=fleet.engine,
                capacity_target=target,
                capacity_target_arn=target_arn,
                instance_role_name=spot_fleet.instance_role.name,
                stack_tag=config.stack_tag,
                account=environment.account,
                min_capacity=fleet.min_capacity,
                max_capacity=fleet.max_capacity,
                messages_per_instance=fleet.queue.messages_per_instance,
                scale_in_cooldown_seconds=fleet.queue.scale_in_cooldown_seconds,
                visibility_timeout_seconds=fleet.queue.visibility_timeout_seconds,
                boot_seconds=fleet.queue.boot_seconds,
                on_demand_fallback=fleet.on_demand_fallback,
                warm_up=WarmUpArgs(**asdict(fleet.queue.warm_up)) if fleet.queue.warm_up else None,
                topic_arn=shared.topic_arn,
                iam=environment.iam,
            ),
            opts=with_provider,
        )
        outputs["queueUrl"] = instance_env["SPOTYARD_QUEUE_URL"] = jobs.queue_url
    if fleet.schedule:
        FleetSchedule(
            f"{fleet.name}-schedule",
            FleetScheduleArgs(
                fleet=fleet.name,
                engine=fleet.engine,
                capacity_target=target,
                capacity_target_arn=target_arn,
                account=environment.account,
                timezone=fleet.schedule.timezone,
                capacity=fleet.capacity,
                min_capacity=fleet.min_capacity,
                start=fleet.schedule.start,
                stop=fleet.schedule.stop,
                iam=environment.iam,
            ),
            opts=with_provider,
        )

    resolve_user_data(
        pulumi.Output.all(**instance_env).apply(lambda values: user_data(bootstrap_script(values), fleet.user_data))
    )
    return BuiltFleet(outputs=outputs, interrupted=interrupted, kept=kept, services=services)


def spot_fleet_args(shared: Shared, fleet: FleetConfig, fleet_user_data: pulumi.Input[str]) -> SpotFleetArgs:
    image = shared.images[fleet.name]
    return SpotFleetArgs(
        fleet=fleet.name,
        engine=fleet.engine,
        account=shared.environment.account,
        vpc_id=shared.environment.vpc_id,
        subnet_ids=shared.environment.subnet_ids,
        image_id=image.id,
        root_device_name=image.root_device_name,
        instance_types=list(fleet.instance_types),
        allocation_strategy=fleet.allocation_strategy,
        capacity=fleet.capacity,
        min_capacity=fleet.min_capacity,
        max_capacity=fleet.max_capacity,
        instance_tags=fleet_tags(shared.config, fleet.name),
        root_volume=RootVolumeArgs(**asdict(fleet.root_volume)),
        user_data=fleet_user_data,
        fleet_tags=cli_tags(shared, fleet) | (CAPACITY_GROUP_TAGS if fleet.hosts_services else {}),
        spot_service_roles=shared.service_roles,
        ssh_key_name=fleet.ssh.key_name if fleet.ssh else None,
        ssh_allow_from=list(fleet.ssh.allow_from) if fleet.ssh else [],
        ingress=[
            IngressRuleArgs(port=rule.port, to_port=rule.to_port, protocol=rule.protocol, sources=list(rule.sources))
            for rule in fleet.ingress
        ],
        security_group_ids=list(fleet.security_group_ids),
        managed_policy_arns=list(fleet.instance_role.managed_policy_arns),
        role_statements=[dict(statement) for statement in fleet.instance_role.statements],
        keeps_images=fleet.image.snapshot_on_terminate,
        works_a_queue=fleet.queue is not None,
        stops_when_idle=bool(fleet.idle_stop_minutes),
        capacity_rebalance=fleet.interruption.on_rebalance == "drain",
        on_demand_base_capacity=fleet.on_demand_base_capacity,
        spot_max_price=fleet.spot_max_price,
        spot_instance_pools=fleet.spot_instance_pools,
        instance_weights=dict(fleet.instance_weights),
        credit_specification=fleet.credit_specification,
        target_group_arns=list(fleet.target_group_arns),
        iam=shared.environment.iam,
    )
