"""Keeps a fleet's Elastic IP on its holder while that instance serves; once the holder is gone
(stopping, terminated, or being taken back by Spot), on the fleet's longest-running instance."""

from __future__ import annotations

from spotyard_lambda import log
from spotyard_lambda.instances import Instance


def longest_running(instances: list[Instance]) -> Instance | None:
    """The instance launched first (its services, such as the proxy, the most likely to be ready);
    the id breaks a tie, so that every invocation picks the same one."""
    return min(instances, key=lambda i: (i.launch_time, i.id), default=None)


def keep_on_holder(ec2, allocation_id: str, serving: list[Instance]) -> bool:
    """Leave the address on its holder while the holder is among the fleet's `serving` instances,
    else associate it with the longest-running of them; True when it moved. Decided from what EC2
    says now, so a duplicated, late or out-of-order event changes nothing."""
    successor = longest_running(serving)
    if successor is None:
        return False
    (address,) = ec2.describe_addresses(AllocationIds=[allocation_id])["Addresses"]
    held_by = address.get("InstanceId")
    if any(instance.id == held_by for instance in serving):
        return False
    ec2.associate_address(AllocationId=allocation_id, InstanceId=successor.id, AllowReassociation=True)
    log.info(
        "elastic_ip.moved",
        allocation_id=allocation_id,
        instance_id=successor.id,
        previous=held_by,
        public_ip=address.get("PublicIp"),
    )
    return True
