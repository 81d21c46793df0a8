"""HomeVolume: the EFS file system a fleet's instances mount as the user's home, so that
what the user keeps survives every Spot interruption.

Encrypted, moved to Infrequent Access after 30 days and back on first access, backed up;
a mount target per availability zone behind a security group that admits NFS only from
the fleet; one access point rooted at /<fleet> owned by the ssh user; a file-system policy
that refuses clients without TLS or without the access point, and lets only the fleet's
instance role mount and write. `pulumi destroy` keeps it unless `retainOnDestroy: false`.
"""

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.args import SubnetArgs, as_args
from components.iam import policy_document


@dataclass
class HomeVolumeArgs:
    fleet: str  # the fleet whose instances mount it: names the access point's root /<fleet>
    vpc_id: pulumi.Input[str]
    subnets: list[SubnetArgs]  # the fleet's subnets: one mount target per availability zone
    fleet_security_group_id: pulumi.Input[str]  # NFS is admitted from this group only
    instance_role_arn: pulumi.Input[str]  # the only principal that may mount and write
    uid: int  # owner of the files (the ssh user's)
    gid: int
    retain_on_destroy: bool | None = True  # `pulumi destroy` keeps the file system, its data and access point


class HomeVolume(pulumi.ComponentResource):
    file_system_id: pulumi.Output[str]
    access_point_id: pulumi.Output[str]

    def __init__(self, name: str, args: HomeVolumeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotyard:index:HomeVolume", name, None, opts)
        args = as_args(HomeVolumeArgs, args)
        child = pulumi.ResourceOptions(parent=self)
        kept = pulumi.ResourceOptions(parent=self, retain_on_delete=args.retain_on_destroy)

        file_system = aws.efs.FileSystem(
            f"{name}-fs",
            encrypted=True,
            performance_mode="generalPurpose",
            throughput_mode="elastic",
            lifecycle_policies=[
                aws.efs.FileSystemLifecyclePolicyArgs(transition_to_ia="AFTER_30_DAYS"),
                aws.efs.FileSystemLifecyclePolicyArgs(transition_to_primary_storage_class="AFTER_1_ACCESS"),
            ],
            tags={"Name": f"{args.fleet}-home"},
            opts=kept,
        )
        aws.efs.BackupPolicy(
            f"{name}-backup",
            file_system_id=file_system.id,
            backup_policy=aws.efs.BackupPolicyBackupPolicyArgs(status="ENABLED"),
            opts=kept,
        )

        nfs = aws.ec2.SecurityGroup(
            f"{name}-nfs-sg",
            vpc_id=args.vpc_id,
            description=f"spotyard home volume of fleet {args.fleet}",
            tags={"Name": f"{args.fleet}-home"},
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-nfs-from-fleet",
            security_group_id=nfs.id,
            ip_protocol="tcp",
            from_port=2049,
            to_port=2049,
            referenced_security_group_id=args.fleet_security_group_id,
            description=f"NFS from fleet {args.fleet}",
            opts=child,
        )
        for subnet in _one_per_zone(args.subnets):
            aws.efs.MountTarget(
                f"{name}-mount-{subnet.availability_zone}",
                file_system_id=file_system.id,
                subnet_id=subnet.id,
                security_groups=[nfs.id],
                opts=child,
            )

        access_point = aws.efs.AccessPoint(
            f"{name}-access-point",
            file_system_id=file_system.id,
            posix_user=aws.efs.AccessPointPosixUserArgs(uid=args.uid, gid=args.gid),
            root_directory=aws.efs.AccessPointRootDirectoryArgs(
                path=f"/{args.fleet}",
                creation_info=aws.efs.AccessPointRootDirectoryCreationInfoArgs(
                    owner_uid=args.uid, owner_gid=args.gid, permissions="0750"
                ),
            ),
            tags={"Name": f"{args.fleet}-home"},
            opts=kept,
        )

        client_actions = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
        aws.efs.FileSystemPolicy(
            f"{name}-policy",
            file_system_id=file_system.id,
            policy=policy_document(
                [
                    {
                        "Sid": "DenyWithoutTls",
                        "Effect": "Deny",
                        "Principal": {"AWS": "*"},
                        "Action": "*",
                        "Resource": file_system.arn,
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                    {
                        "Sid": "DenyWithoutAccessPoint",
                        "Effect": "Deny",
                        "Principal": {"AWS": "*"},
                        "Action": [*client_actions, "elasticfilesystem:ClientRootAccess"],
                        "Resource": file_system.arn,
                        "Condition": {"StringNotEquals": {"elasticfilesystem:AccessPointArn": access_point.arn}},
                    },
                    {
                        "Sid": "FleetInstancesMountAndWrite",
                        "Effect": "Allow",
                        "Principal": {"AWS": args.instance_role_arn},
                        "Action": client_actions,
                        "Resource": file_system.arn,
                        "Condition": {"StringEquals": {"elasticfilesystem:AccessPointArn": access_point.arn}},
                    },
                ]
            ),
            opts=child,
        )

        self.file_system_id = file_system.id
        self.access_point_id = access_point.id
        self.register_outputs({"fileSystemId": self.file_system_id, "accessPointId": self.access_point_id})


def _one_per_zone(subnets: list[SubnetArgs]) -> list[SubnetArgs]:
    """EFS allows one mount target per availability zone; instances in any subnet of a zone use it."""
    chosen: dict[str, SubnetArgs] = {}
    for subnet in subnets:
        chosen.setdefault(subnet.availability_zone, subnet)
    return list(chosen.values())
