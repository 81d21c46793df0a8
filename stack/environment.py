"""Facts about the AWS account and network the stack deploys into, looked up once.

Everything here is read with invokes at program start, so components can create one
resource per subnet and name ARNs without waiting on outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.args import AccountArgs, RoleArgs, SubnetArgs
from spotyard.config import IamConfig, NetworkConfig
from stack.provider import invoke_options


@dataclass(frozen=True)
class Environment:
    account: AccountArgs  # region, account id and partition
    vpc_id: str
    subnets: tuple[SubnetArgs, ...]
    iam: RoleArgs = RoleArgs()  # the path and permissions boundary of every role (spotyard:iam)

    @property
    def region(self) -> str:
        return self.account.region

    @property
    def subnet_ids(self) -> list[str]:
        return [subnet.id for subnet in self.subnets]


def resolve_environment(network: NetworkConfig, provider: aws.Provider, iam: IamConfig) -> Environment:
    opts = invoke_options(provider)
    identity = aws.get_caller_identity(opts=opts)
    region = aws.get_region(opts=opts)
    partition = aws.get_partition(opts=opts)
    vpc_id, subnets = _network(network, opts)
    return Environment(
        account=AccountArgs(
            region=region.region or region.name, account_id=identity.account_id, partition=partition.partition
        ),
        vpc_id=vpc_id,
        subnets=subnets,
        iam=RoleArgs(path=iam.path, permissions_boundary=iam.permissions_boundary),
    )


def _network(network: NetworkConfig, opts: pulumi.InvokeOptions) -> tuple[str, tuple[SubnetArgs, ...]]:
    """The configured VPC and subnets, or the default VPC and its default subnets."""
    if network.vpc_id:
        vpc_id = aws.ec2.get_vpc(id=network.vpc_id, opts=opts).id
        filters = [aws.ec2.GetSubnetsFilterArgs(name="vpc-id", values=[vpc_id])]
    else:
        vpc_id = aws.ec2.get_vpc(default=True, opts=opts).id
        filters = [
            aws.ec2.GetSubnetsFilterArgs(name="vpc-id", values=[vpc_id]),
            aws.ec2.GetSubnetsFilterArgs(name="default-for-az", values=["true"]),
        ]
    subnet_ids = list(network.subnet_ids) or sorted(aws.ec2.get_subnets(filters=filters, opts=opts).ids)
    subnets = []
    for subnet_id in subnet_ids:
        subnet = aws.ec2.get_subnet(id=subnet_id, opts=opts)
        if subnet.vpc_id != vpc_id:
            raise pulumi.RunError(f"spotyard:network.subnetIds: {subnet_id} is not in {vpc_id}")
        subnets.append(SubnetArgs(id=subnet_id, availability_zone=subnet.availability_zone))
    if not subnets:
        raise pulumi.RunError(f"spotyard:network: VPC {vpc_id} has no subnets to launch into")
    return vpc_id, tuple(subnets)
