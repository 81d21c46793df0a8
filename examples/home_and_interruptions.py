"""Your own Pulumi program using two spotyard components on their own, for an Auto Scaling
group you already run: an EFS home volume its instances mount, and the interruption handler
that takes an instance Spot reclaims out of the group (README, "Components in your own program")."""

import pulumi
import pulumi_aws as aws
from spotyard_lambda.names import stack_tag_value

from components.args import AccountArgs, SubnetArgs
from components.home_volume import HomeVolume, HomeVolumeArgs
from components.interruption_handler import InterruptedFleet, InterruptionHandler, InterruptionHandlerArgs

config = pulumi.Config()
group = aws.autoscaling.get_group(name=config.require("groupName"))
subnets = [aws.ec2.get_subnet(id=subnet_id) for subnet_id in sorted(group.vpc_zone_identifier.split(","))]
region, identity, partition = aws.get_region(), aws.get_caller_identity(), aws.get_partition()

home = HomeVolume(
    f"{group.name}-home",
    HomeVolumeArgs(
        fleet=group.name,
        vpc_id=subnets[0].vpc_id,
        subnets=[SubnetArgs(id=subnet.id, availability_zone=subnet.availability_zone) for subnet in subnets],
        fleet_security_group_id=config.require("securityGroupId"),  # your instances' security group
        instance_role_arn=config.require("instanceRoleArn"),  # your instances' role
        uid=1000,
        gid=1000,
    ),
)
InterruptionHandler(
    "interruptions",
    InterruptionHandlerArgs(
        # The handler acts only on instances tagged spotyard:stack=<project>/<stack> (this program's):
        # tag the group's instances so (in their launch template, or a group tag propagated at launch).
        stack_tag=stack_tag_value(pulumi.get_project(), pulumi.get_stack()),
        account=AccountArgs(region=region.region, account_id=identity.account_id, partition=partition.partition),
        fleets=[
            InterruptedFleet(
                name=group.name,
                engine="asg",
                capacity_target=group.name,
                capacity_target_arn=group.arn,
                decrement_capacity=False,  # Auto Scaling starts a replacement
                on_rebalance="notify",
            )
        ],
    ),
)
pulumi.export("homeFileSystemId", home.file_system_id)
pulumi.export("homeAccessPointId", home.access_point_id)
