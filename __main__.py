"""spotyard: wires the components together from the stack configuration (spec.md)."""

from pathlib import Path

import pulumi
from spotyard_lambda.names import DEFAULT_TTL_SECONDS, DNS_ZONE_TAG, IMAGE_ROLE_TAG

from components.bootstrap import bootstrap_script, instance_environment, user_data
from components.dns_registrar import DnsRegistrar, DnsRegistrarArgs
from components.environment import resolve_environment
from components.home_volume import HomeVolume, HomeVolumeArgs
from components.image import resolve_images
from components.image_keeper import ImageKeeper, ImageKeeperArgs, KeptFleet
from components.interruption_handler import InterruptedFleet, InterruptionHandler, InterruptionHandlerArgs
from components.load_balancing import read_target_groups
from components.notifications import Notifications, NotificationsArgs
from components.provider import fleet_tags, stack_provider
from components.queue_autoscaler import QueueAutoscaler, QueueAutoscalerArgs
from components.results_bucket import ResultsBucket, ResultsBucketArgs
from components.schedules import FleetSchedule, FleetScheduleArgs
from components.services import Services, ServicesArgs, ecs_group_tags, namespace_name, service_args
from components.spot_fleet import SpotFleet, SpotFleetArgs
from components.spot_service_roles import SpotServiceRoles, SpotServiceRolesArgs, missing_spot_service_roles
from components.stack_config import load_stack_config
from spotyard.config import FleetConfig
from spotyard.ssh_config import SshHost, render, ssh_tags

config = load_stack_config(Path(__file__).resolve().parent)
provider = stack_provider(config)
environment = resolve_environment(config.network, provider, config.iam)
images = resolve_images(config.fleets, provider)
with_provider = pulumi.ResourceOptions(providers=[provider])
missing_service_roles = (
    missing_spot_service_roles(provider) if any(fleet.engine == "spot-fleet" for fleet in config.fleets) else ()
)
service_roles = (
    SpotServiceRoles(
        "spot-service-roles", SpotServiceRolesArgs(missing=missing_service_roles), opts=with_provider
    ).roles
    if missing_service_roles
    else []
)

notifications = (
    Notifications(
        "notifications",
        NotificationsArgs(environment=environment, email=config.notifications.email),
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
            dns=config.dns,
            environment=environment,
            stack_tag=config.stack_tag,
            elastic_ips=elastic_ips,
            fleets=[fleet.name for fleet in config.fleets],
            alarm_topic_arn=topic_arn,
        ),
        opts=with_provider,
    )
    if config.dns or elastic_ips
    else None
)
zone_name = registrar.zone_name if registrar else None
interrupted_fleets: list[InterruptedFleet] = []
kept_fleets: list[KeptFleet] = []
hosted_services: list[Services] = []  # the one Services component, on the fleet that hosts them


def ssh_host(fleet: FleetConfig) -> SshHost:
    return SshHost(
        fleet=fleet.name,
        user=fleet.ssh.user,
        stack_tag=config.stack_tag,
        region=environment.region,
        zone_name=zone_name,
        bastion=fleet.ssh.bastion,
        direct=bool(fleet.ssh.allow_from),
        identity_file=fleet.ssh.identity_file,
        forward_agent=fleet.ssh.forward_agent,
    )


def cli_tags(fleet: FleetConfig) -> dict[str, str]:
    """What `spotyard` (the CLI) reads back from the group or request, without Pulumi."""
    tags = {DNS_ZONE_TAG: zone_name} if zone_name else {}
    if fleet.ssh:
        tags |= ssh_tags(ssh_host(fleet))
    if fleet.image.snapshot_on_terminate:
        tags[IMAGE_ROLE_TAG] = fleet.image.role_tag or ""
    return tags


def build_fleet(fleet: FleetConfig) -> dict[str, pulumi.Input[str]]:
    """One fleet and what hangs off it; returns the fleet's entry of the `fleets` output."""
    # Read (and checked) before anything of the fleet exists: a RunError after the deferred user
    # data below would leave the launch template waiting for it.
    target_groups = read_target_groups(fleet, provider)
    # The user data names resources that need the fleet's security group and role first.
    fleet_user_data, resolve_user_data = pulumi.deferred_output()
    spot_fleet = SpotFleet(
        fleet.name,
        SpotFleetArgs(
            fleet=fleet,
            environment=environment,
            image=images[fleet.name],
            instance_tags=fleet_tags(config, fleet.name),
            user_data=fleet_user_data,
            fleet_tags=cli_tags(fleet) | ecs_group_tags(fleet.hosts_services),
            request_depends_on=service_roles,
        ),
        opts=with_provider,
    )
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
    interrupted_fleets.append(
        InterruptedFleet(
            config=fleet, capacity_target=target, capacity_target_arn=target_arn, target_groups=target_groups
        )
    )
    if fleet.image.snapshot_on_terminate:
        kept_fleets.append(
            KeptFleet(
                config=fleet,
                capacity_target=target,
                capacity_target_arn=target_arn,
                parameter_name=spot_fleet.image_parameter.name,
                parameter_arn=spot_fleet.image_parameter.arn,
                launch_template_id=spot_fleet.launch_template.id,
            )
        )
    if fleet.hosts_services:
        instance_env |= build_services(fleet, spot_fleet)
    if zone_name:
        outputs["dnsName"] = f"{fleet.name}.{zone_name}"
    if fleet.home:
        home = HomeVolume(
            f"{fleet.name}-home",
            HomeVolumeArgs(
                fleet=fleet.name,
                vpc_id=environment.vpc_id,
                subnets=environment.subnets,
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
                partition=environment.partition,
                instance_role_name=spot_fleet.instance_role.name,
                retain_on_destroy=fleet.results.retain_on_destroy,
            ),
            opts=with_provider,
        )
        outputs["resultsBucket"] = instance_env["SPOTYARD_RESULTS_BUCKET"] = results.bucket_name
    if fleet.queue:
        jobs = QueueAutoscaler(
            f"{fleet.name}-jobs",
            QueueAutoscalerArgs(
                fleet=fleet,
                environment=environment,
                stack_tag=config.stack_tag,
                capacity_target=target,
                capacity_target_arn=target_arn,
                instance_role_name=spot_fleet.instance_role.name,
                topic_arn=topic_arn,
            ),
            opts=with_provider,
        )
        outputs["queueUrl"] = instance_env["SPOTYARD_QUEUE_URL"] = jobs.queue_url
    if fleet.schedule:
        FleetSchedule(
            f"{fleet.name}-schedule",
            FleetScheduleArgs(
                fleet=fleet, environment=environment, capacity_target=target, capacity_target_arn=target_arn
            ),
            opts=with_provider,
        )

    resolve_user_data(
        pulumi.Output.all(**instance_env).apply(lambda values: user_data(bootstrap_script(values), fleet.user_data))
    )
    return outputs


def build_services(fleet: FleetConfig, spot_fleet: SpotFleet) -> dict[str, pulumi.Input[str]]:
    """`spotyard:services` on the fleet that hosts them; returns what its instances need to join."""
    services = Services(
        "services",
        ServicesArgs(
            stack_tag=config.stack_tag,
            region=environment.region,
            vpc_id=environment.vpc_id,
            subnets=environment.subnets,
            fleet=fleet.name,
            group_arn=spot_fleet.capacity_target_arn,
            security_group_id=spot_fleet.security_group_id,
            instance_role_name=spot_fleet.instance_role.name,
            namespace=namespace_name(config.project, config.stack),
            services=[service_args(service, environment) for service in config.services],
            ecs_instance_policy_arn=environment.managed_policy("service-role/AmazonEC2ContainerServiceforEC2Role"),
            iam=config.iam,
            acme_email=config.proxy.acme_email if config.proxy else None,
            acme_ca=config.proxy.acme_ca if config.proxy else None,
        ),
        opts=with_provider,
    )
    hosted_services.append(services)
    return services.instance_environment


fleet_outputs = {fleet.name: build_fleet(fleet) for fleet in config.fleets}
InterruptionHandler(
    "interruptions",
    InterruptionHandlerArgs(
        environment=environment,
        stack_tag=config.stack_tag,
        fleets=interrupted_fleets,
        zone_id=registrar.zone_id if registrar else None,
        zone_name=zone_name,
        ttl=config.dns.ttl if config.dns else DEFAULT_TTL_SECONDS,
        topic_arn=topic_arn,
    ),
    opts=with_provider,
)
if kept_fleets:
    ImageKeeper(
        "images",
        ImageKeeperArgs(environment=environment, stack_tag=config.stack_tag, fleets=kept_fleets, topic_arn=topic_arn),
        opts=with_provider,
    )
ssh_hosts = [ssh_host(fleet) for fleet in config.fleets if fleet.ssh]

pulumi.export("vpcId", environment.vpc_id)
pulumi.export("subnetIds", environment.subnet_ids)
pulumi.export("fleets", fleet_outputs)
pulumi.export("zoneId", registrar.zone_id if registrar else None)
pulumi.export("notificationTopicArn", topic_arn)
pulumi.export("sshConfig", render(ssh_hosts))
pulumi.export("services", hosted_services[0].outputs if hosted_services else None)
