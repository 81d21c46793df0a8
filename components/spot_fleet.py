"""SpotFleet: one fleet's instances on Spot, behind an Auto Scaling group or a Spot Fleet request.

Owns the fleet's security group, instance role and profile, the SSM parameter naming its
AMI, its launch template, and the group or request. Desired/target capacity is set once
at creation; afterwards it belongs to the autoscaler, the schedules and the CLI
(`ignore_changes`). So does the AMI parameter of a fleet that saves its instances as AMIs.
"""

import base64
import gzip
import re
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
from spotyard_lambda.names import AMI_PARAMETER, FLEET_TAG, STACK_TAG, fleet_parameter, tag_condition

from components.args import AccountArgs, RoleArgs, as_args
from components.iam import allow, policy_document, stack_role

# Spot Fleet spells allocation strategies in camelCase.
SPOT_FLEET_STRATEGIES = {
    "price-capacity-optimized": "priceCapacityOptimized",
    "capacity-optimized": "capacityOptimized",
    "lowest-price": "lowestPrice",
    "diversified": "diversified",
}
TAGGED_AT_LAUNCH = ("instance", "volume", "network-interface")
USER_DATA_LIMIT = 16384
# The group and the request launch from whatever version of the template is newest, so a new AMI
# or new user data (a new template version) changes neither. Pinning the version number would:
# the provider marks the request's whole `launch_template_config` ForceNew (terraform-provider-aws
# internal/service/ec2/ec2_spot_fleet_request.go; ModifySpotFleetRequest changes capacity only), so
# every new version would replace the request and terminate its instances; and on the group, every
# new version would resend the whole mixed-instances policy with the on-demand base capacity that
# Pulumi last wrote, resetting an on-demand fallback the autoscaler engaged (group.go Update sends
# `MixedInstancesPolicy` whenever anything in it changed). The EC2 API takes `$Latest` for both
# (API_FleetLaunchTemplateSpecification, API_LaunchTemplateSpecification: "Amazon EC2 uses the
# latest version"); only CloudFormation's AWS::EC2::SpotFleet refuses it, which Pulumi does not use.
LATEST_VERSION = "$Latest"


@dataclass
class IngressRuleArgs:
    """`port` (to `to_port`) over `protocol` from each of `sources` (CIDRs or security group ids)."""

    port: int
    to_port: int
    protocol: str
    sources: list[str]


@dataclass
class RootVolumeArgs:
    """The root EBS volume of every instance (always encrypted, deleted with the instance)."""

    type: str  # gp3 | gp2 | io1 | io2 | standard
    size: int | None = None  # GiB; None: the AMI's snapshot size
    iops: int | None = None
    throughput: int | None = None  # MiB/s, gp3 only


@dataclass
class SpotFleetArgs:
    fleet: str  # the fleet's name: its instances' spotyard:fleet tag
    engine: str  # asg (Auto Scaling group) | spot-fleet (Spot Fleet request)
    account: AccountArgs
    vpc_id: pulumi.Input[str]
    subnet_ids: list[str]
    image_id: str  # the AMI at preview: the AMI parameter's first value
    root_device_name: str  # the AMI's root device
    instance_types: list[str]
    allocation_strategy: str  # price-capacity-optimized | capacity-optimized | lowest-price
    capacity: int  # desired/target capacity at creation; afterwards not Pulumi's
    min_capacity: int
    max_capacity: int
    instance_tags: dict[str, str]  # the instances' and volumes' tags, spotyard:stack among them
    root_volume: RootVolumeArgs
    user_data: pulumi.Input[str] | None = None
    # On the group or request only: what the CLI reads back (ssh user, zone, saved-image role).
    fleet_tags: dict[str, str] | None = field(default_factory=dict)
    # What a Spot Fleet request needs to exist first (the account's Spot service-linked roles).
    spot_service_roles: list[aws.iam.ServiceLinkedRole] | None = field(default_factory=list)
    ssh_key_name: str | None = None
    ssh_allow_from: list[str] | None = field(default_factory=list)  # ssh (22/tcp) admitted from these
    ingress: list[IngressRuleArgs] | None = field(default_factory=list)
    security_group_ids: list[str] | None = field(default_factory=list)  # more groups for the instances
    managed_policy_arns: list[str] | None = field(default_factory=list)  # more for the instance role
    role_statements: list[dict[str, Any]] | None = field(default_factory=list)  # an inline policy of the instance role
    keeps_images: bool | None = False  # the AMI parameter follows the newest saved AMI (ImageKeeper owns it)
    works_a_queue: bool | None = False  # the agent marks busy workers (protection, busy tag)
    stops_when_idle: bool | None = False  # the agent may take its own instance out of the fleet
    capacity_rebalance: bool | None = False  # asg: replace an instance on a rebalance recommendation
    on_demand_base_capacity: int | None = None  # None: the queue autoscaler's fallback owns it
    spot_max_price: str | None = None
    spot_instance_pools: int | None = None
    instance_weights: dict[str, int] | None = field(default_factory=dict)  # units of capacity per type
    credit_specification: str | None = None  # standard | unlimited, burstable (T) types only
    target_group_arns: list[str] | None = field(default_factory=list)
    iam: RoleArgs | None = RoleArgs()


def ami_parameter_name(fleet: str) -> str:
    return fleet_parameter(pulumi.get_project(), pulumi.get_stack(), fleet, AMI_PARAMETER)


class SpotFleet(pulumi.ComponentResource):
    security_group_id: pulumi.Output[str]
    instance_role: aws.iam.Role
    launch_template: aws.ec2.LaunchTemplate
    group: aws.autoscaling.Group | None = None
    request: aws.ec2.SpotFleetRequest | None = None

    def __init__(self, name: str, args: SpotFleetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotyard:index:SpotFleet", name, None, opts)
        args = as_args(SpotFleetArgs, args)
        fleet, account = args.fleet, args.account
        child = pulumi.ResourceOptions(parent=self)

        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description=f"spotyard fleet {fleet}",
            tags={"Name": fleet},
            opts=child,
        )
        self.security_group_id = security_group.id
        for protocol_name, cidr in (("ipv4", {"cidr_ipv4": "0.0.0.0/0"}), ("ipv6", {"cidr_ipv6": "::/0"})):
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-egress-{protocol_name}",
                security_group_id=security_group.id,
                ip_protocol="-1",
                description="all outbound",
                **cidr,
                opts=child,
            )
        for source in args.ssh_allow_from:
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-ssh-from-{_slug(source)}",
                security_group_id=security_group.id,
                ip_protocol="tcp",
                from_port=22,
                to_port=22,
                description=f"ssh from {source}",
                opts=child,
                **_ingress_source(source),
            )
        for rule in args.ingress:
            ports = str(rule.port) if rule.to_port == rule.port else f"{rule.port}-{rule.to_port}"
            for source in rule.sources:
                aws.vpc.SecurityGroupIngressRule(
                    f"{name}-{rule.protocol}-{ports}-from-{_slug(source)}",
                    security_group_id=security_group.id,
                    ip_protocol=rule.protocol,
                    from_port=rule.port,
                    to_port=rule.to_port,
                    description=f"{rule.protocol} {ports} from {source}",
                    opts=child,
                    **_ingress_source(source),
                )

        self.instance_role = stack_role(
            f"{name}-instance-role",
            service="ec2.amazonaws.com",
            description=f"spotyard fleet {fleet} instances",
            iam=args.iam,
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-ssm-core",
            role=self.instance_role.name,
            policy_arn=account.managed_policy("AmazonSSMManagedInstanceCore"),
            opts=child,
        )
        for policy_arn in args.managed_policy_arns:
            # Named after the policy (path and name), so that adding or removing one leaves the others be.
            aws.iam.RolePolicyAttachment(
                f"{name}-policy-{_slug(policy_arn.split(':policy/', 1)[1])}",
                role=self.instance_role.name,
                policy_arn=policy_arn,
                opts=child,
            )
        if args.role_statements:
            aws.iam.RolePolicy(
                f"{name}-extra",
                role=self.instance_role.name,
                policy=policy_document(list(args.role_statements)),
                opts=child,
            )
        profile = aws.iam.InstanceProfile(f"{name}-profile", role=self.instance_role.name, opts=child)

        self.image_parameter = aws.ssm.Parameter(
            f"{name}-ami",
            name=ami_parameter_name(fleet),
            type="String",
            data_type="aws:ec2:image",
            value=args.image_id,
            description=f"spotyard: the AMI fleet {fleet} boots from",
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["value"] if args.keeps_images else []),
        )
        # Auto Scaling resolves the parameter at every launch. Spot Fleet cannot follow one (only
        # instant EC2 Fleets can), so its template names the AMI the parameter held at preview; the
        # next `pulumi up` writes the newest saved AMI into a new template version, which the request
        # (following `$Latest`) launches from without being replaced.
        image_id = (
            self.image_parameter.name.apply(lambda parameter: f"resolve:ssm:{parameter}")
            if args.engine == "asg"
            else args.image_id
        )
        if args.engine == "spot-fleet" and args.keeps_images:
            pulumi.log.warn(
                f"spotyard:fleets.{fleet}.image.snapshotOnTerminate: a spot-fleet fleet boots from "
                "its newest saved AMI only after the next `pulumi up` (a new launch template version, "
                "which the request follows without being replaced), not at its next launch: Spot Fleet "
                "cannot follow an SSM parameter; use engine: asg for that"
            )

        self.launch_template = aws.ec2.LaunchTemplate(
            f"{name}-template",
            description=f"spotyard fleet {fleet}",
            image_id=image_id,
            key_name=args.ssh_key_name,
            vpc_security_group_ids=[security_group.id, *args.security_group_ids],
            iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=profile.arn),
            credit_specification=aws.ec2.LaunchTemplateCreditSpecificationArgs(cpu_credits=args.credit_specification)
            if args.credit_specification
            else None,
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=2
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name=args.root_device_name,
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_type=args.root_volume.type,
                        volume_size=args.root_volume.size,
                        iops=args.root_volume.iops,
                        throughput=args.root_volume.throughput,
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            user_data=pulumi.Output.from_input(args.user_data).apply(encode_user_data),
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=args.instance_tags)
                for kind in TAGGED_AT_LAUNCH
            ],
            update_default_version=True,
            opts=child,
        )

        if args.engine == "asg":
            self.group = self._group(name, args)
            self.capacity_target = self.group.name
            self.capacity_target_arn = self.group.arn
        else:
            self.request = self._request(name, args)
            self.capacity_target = self.request.id
            self.capacity_target_arn = self.request.id.apply(
                lambda request_id: account.arn("ec2", f"spot-fleet-request/{request_id}")
            )
        agent = self._agent_statements(args)
        if agent:
            aws.iam.RolePolicy(f"{name}-agent", role=self.instance_role.name, policy=policy_document(agent), opts=child)

        self.register_outputs(
            {
                "securityGroupId": self.security_group_id,
                "launchTemplateId": self.launch_template.id,
                "capacityTarget": self.capacity_target,
                "instanceRoleName": self.instance_role.name,
                "instanceRoleArn": self.instance_role.arn,
            }
        )

    def _agent_statements(self, args: SpotFleetArgs) -> list[dict]:
        """What spotyard's agent on the instances may do to their own fleet (and nothing else)."""
        own_fleet = tag_condition({FLEET_TAG: args.fleet, STACK_TAG: args.instance_tags[STACK_TAG]})
        own_group = tag_condition({FLEET_TAG: args.fleet}, "autoscaling")
        own_instances = args.account.arn("ec2", "instance/*")
        statements = []
        if args.engine == "asg":
            if args.works_a_queue:
                statements.append(
                    allow(
                        "ProtectBusyWorkers", ["autoscaling:SetInstanceProtection"], self.capacity_target_arn, own_group
                    )
                )
            if args.stops_when_idle:
                statements += leave_statements(
                    "asg", args.fleet, args.instance_tags[STACK_TAG], self.capacity_target_arn, own_instances
                )
            if statements:
                statements.append(allow("FindOwnGroup", ["autoscaling:DescribeAutoScalingInstances"], "*"))
            return statements
        if args.works_a_queue:
            statements.append(allow("MarkBusyWorkers", ["ec2:CreateTags", "ec2:DeleteTags"], own_instances, own_fleet))
        if args.stops_when_idle:
            statements += leave_statements(
                "spot-fleet", args.fleet, args.instance_tags[STACK_TAG], self.capacity_target_arn, own_instances
            )
        return statements

    def _group(self, name: str, args: SpotFleetArgs) -> aws.autoscaling.Group:
        return aws.autoscaling.Group(
            f"{name}-group",
            min_size=args.min_capacity,
            max_size=args.max_capacity,
            desired_capacity=args.capacity,
            vpc_zone_identifiers=list(args.subnet_ids),
            # With capacity rebalancing Auto Scaling itself launches a replacement and terminates the
            # instance on a rebalance recommendation (Auto Scaling user guide, "Capacity Rebalancing"),
            # which is what `onRebalance: drain` promises and `notify` (only publish) does not.
            capacity_rebalance=args.capacity_rebalance,
            mixed_instances_policy=aws.autoscaling.GroupMixedInstancesPolicyArgs(
                instances_distribution=aws.autoscaling.GroupMixedInstancesPolicyInstancesDistributionArgs(
                    on_demand_base_capacity=args.on_demand_base_capacity or 0,
                    on_demand_percentage_above_base_capacity=0,
                    spot_allocation_strategy=args.allocation_strategy,
                    spot_max_price=args.spot_max_price,
                    spot_instance_pools=args.spot_instance_pools,
                ),
                launch_template=aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateArgs(
                    launch_template_specification=aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateLaunchTemplateSpecificationArgs(
                        launch_template_id=self.launch_template.id, version=LATEST_VERSION
                    ),
                    overrides=[
                        aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateOverrideArgs(
                            instance_type=t, weighted_capacity=_weight(args, t, str)
                        )
                        for t in args.instance_types
                    ],
                ),
            ),
            target_group_arns=list(args.target_group_arns),
            health_check_type="EC2",
            health_check_grace_period=300,
            enabled_metrics=["GroupDesiredCapacity", "GroupInServiceInstances", "GroupTotalInstances"],
            wait_for_capacity_timeout="0",
            force_delete=True,
            # Default tags do not reach Auto Scaling groups; the launch template tags the instances.
            tags=[
                aws.autoscaling.GroupTagArgs(key=key, value=value, propagate_at_launch=False)
                for key, value in sorted({**args.instance_tags, **args.fleet_tags}.items())
            ],
            opts=pulumi.ResourceOptions(
                parent=self,
                ignore_changes=[
                    "desiredCapacity",
                    *_unless_configured(args, "mixedInstancesPolicy.instancesDistribution.onDemandBaseCapacity"),
                ],
            ),
        )

    def _request(self, name: str, args: SpotFleetArgs) -> aws.ec2.SpotFleetRequest:
        child = pulumi.ResourceOptions(parent=self)
        fleet_role = stack_role(
            f"{name}-fleet-role",
            service="spotfleet.amazonaws.com",
            description=f"spotyard spot fleet {args.fleet}",
            iam=args.iam,
            opts=child,
        )
        tagging = aws.iam.RolePolicyAttachment(
            f"{name}-fleet-tagging",
            role=fleet_role.name,
            policy_arn=args.account.managed_policy("service-role/AmazonEC2SpotFleetTaggingRole"),
            opts=child,
        )
        overrides = [
            aws.ec2.SpotFleetRequestLaunchTemplateConfigOverrideArgs(
                instance_type=t, subnet_id=subnet_id, weighted_capacity=_weight(args, t, float)
            )
            for t in args.instance_types
            for subnet_id in args.subnet_ids
        ]
        return aws.ec2.SpotFleetRequest(
            f"{name}-request",
            iam_fleet_role=fleet_role.arn,
            fleet_type="maintain",
            target_capacity=args.capacity,
            # Of the target capacity, this much on-demand; ModifySpotFleetRequest changes it in place.
            on_demand_target_capacity=args.on_demand_base_capacity or 0,
            allocation_strategy=SPOT_FLEET_STRATEGIES[args.allocation_strategy],
            # Both force a new request (ForceNew in terraform-provider-aws ec2_spot_fleet_request.go): the
            # README says so.
            spot_price=args.spot_max_price,
            instance_pools_to_use_count=args.spot_instance_pools,
            launch_template_configs=[
                aws.ec2.SpotFleetRequestLaunchTemplateConfigArgs(
                    launch_template_specification=aws.ec2.SpotFleetRequestLaunchTemplateConfigLaunchTemplateSpecificationArgs(
                        id=self.launch_template.id, version=LATEST_VERSION
                    ),
                    overrides=overrides,
                )
            ],
            target_group_arns=list(args.target_group_arns),
            excess_capacity_termination_policy="Default",
            instance_interruption_behaviour="terminate",
            replace_unhealthy_instances=True,
            terminate_instances_on_delete="true",
            terminate_instances_with_expiration=True,
            wait_for_fulfillment=False,
            tags={FLEET_TAG: args.fleet, **args.fleet_tags},
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[tagging, *args.spot_service_roles],
                ignore_changes=["targetCapacity", *_unless_configured(args, "onDemandTargetCapacity")],
            ),
        )


def leave_statements(
    engine: str, fleet: str, stack_tag: str, capacity_target_arn: pulumi.Input[str], instances_arn: str
) -> list[dict]:
    """What an instance needs to leave its own fleet with one less capacity (the agent's
    `Fleet.leave`: idle stop, `spotyard-job --stop-when-done`), on that fleet only."""
    if engine == "asg":
        own_group = tag_condition({FLEET_TAG: fleet}, "autoscaling")
        return [
            allow("LeaveOwnGroup", ["autoscaling:TerminateInstanceInAutoScalingGroup"], capacity_target_arn, own_group)
        ]
    own_fleet = tag_condition({FLEET_TAG: fleet, STACK_TAG: stack_tag})
    return [
        allow("ReadOwnFleet", ["ec2:DescribeSpotFleetRequests"], "*"),
        allow("LowerOwnFleet", ["ec2:ModifySpotFleetRequest"], capacity_target_arn, own_fleet),
        allow("LeaveOwnFleet", ["ec2:TerminateInstances"], instances_arn, own_fleet),
    ]


def encode_user_data(text: str | None) -> str | None:
    """Base64 user data; gzipped (cloud-init reads both) when the text is over EC2's 16 KB."""
    if not text:
        return None
    raw = text.encode()
    if len(raw) > USER_DATA_LIMIT:
        raw = gzip.compress(raw, mtime=0)
        if len(raw) > USER_DATA_LIMIT:
            raise pulumi.RunError(f"user data is {len(raw)} bytes even gzipped; EC2 allows {USER_DATA_LIMIT}")
    return base64.b64encode(raw).decode()


def _unless_configured(fleet: SpotFleetArgs, on_demand_input: str) -> list[str]:
    """The on-demand part belongs to `onDemandBaseCapacity` where it is set (pulumi up applies it) and
    otherwise to the queue autoscaler's fallback, which changes it at run time (the two are exclusive:
    spotyard/config.py); so pulumi up ignores it unless it is configured."""
    return [] if fleet.on_demand_base_capacity is not None else [on_demand_input]


def _weight(fleet: SpotFleetArgs, instance_type: str, spelling: type[str] | type[float]) -> str | float | None:
    """The units of capacity `instance_type` counts for, as the engine spells them (Auto Scaling: a
    string; Spot Fleet: a number), or None when the fleet counts instances."""
    return spelling(fleet.instance_weights[instance_type]) if fleet.instance_weights else None


def _ingress_source(source: str) -> dict[str, str]:
    if source.startswith("sg-"):
        return {"referenced_security_group_id": source}
    return {"cidr_ipv6": source} if ":" in source else {"cidr_ipv4": source}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
