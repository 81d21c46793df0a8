"""Keeps a fleet's Elastic IP on its newest running instance."""

from __future__ import annotations

from spotyard_lambda import log
from spotyard_lambda.instances import Instance


def newest(instances: list[Instance]) -> Instance | None:
    return max(instances, key=lambda i: (i.launch_time, i.id), default=None)


def keep_on_newest(ec2, allocation_id: str, instances: list[Instance]) -> bool:
    """Associate the address with the newest instance; True when it moved."""
    holder = newest(instances)
    if holder is None:
        return False
    (address,) = ec2.describe_addresses(AllocationIds=[allocation_id])["Addresses"]
    if address.get("InstanceId") == holder.id:
        return False
    ec2.associate_address(AllocationId=allocation_id, InstanceId=holder.id, AllowReassociation=True)
    log.info(
        "elastic_ip.moved",
        allocation_id=allocation_id,
        instance_id=holder.id,
        previous=address.get("InstanceId"),
        public_ip=address.get("PublicIp"),
    )
    return True
