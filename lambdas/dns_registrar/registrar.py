"""What the registrar does for a batch of EC2 state changes, or for the periodic reconcile:
find the fleet of each instance, then make its DNS records (and its fleet's Elastic IP)
follow what EC2 says of it now. Because every run recomputes from EC2's present state,
duplicated, late and out-of-order events all converge to the same zone.

A batch costs one DescribeInstances and, per instance, one Route 53 read of its own name
(plus, per fleet, two reads of the fleet name's first records) and, for all of them, one
change request when Route 53's limits allow: nothing grows with the size of the fleets."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import elastic_ip
from spotyard_lambda import aws, dns, log
from spotyard_lambda.instances import Instance, serving, stack_instances
from spotyard_lambda.settings import DnsRegistrarSettings

# DescribeInstances filter values per call (the registrar's batches are no larger).
DESCRIBE_CHUNK = 100


@dataclass
class BatchResult:
    fleets: set[str] = field(default_factory=set)
    dns_changes: int = 0
    failed: set[str] = field(default_factory=set)  # instances whose names could not be made right
    ignored: set[str] = field(default_factory=set)
    elastic_ip_moved: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "fleets": sorted(self.fleets),
            "dnsChanges": self.dns_changes,
            "failed": sorted(self.failed),
            "ignored": sorted(self.ignored),
            "elasticIpMoved": self.elastic_ip_moved,
        }


class Registrar(DnsRegistrarSettings):
    def on_state_changes(self, instance_ids: list[str]) -> BatchResult:
        """The instances' names (and their fleets' Elastic IPs) as EC2 now says they should be."""
        result = BatchResult()
        known = describe_all(aws.client("ec2"), sorted(set(instance_ids)))
        route53 = dns.Route53(self.zone) if self.zone else None
        targets = []
        for instance_id in sorted(set(instance_ids)):
            instance = known.get(instance_id)
            if instance is None:
                # EC2 has forgotten it: the names it still holds tell which fleet it was in.
                fleets = dns.fleets_naming(route53, self.stack, sorted(self.fleets), instance_id) if route53 else set()
            elif instance.owned_by(self.stack) and instance.fleet in self.fleets:
                fleets = {instance.fleet}
            else:
                fleets = set()
            if not fleets:
                log.info(
                    "registrar.ignored",
                    instance_id=instance_id,
                    reason="not an instance of this stack's fleets",
                    tags=instance.tags if instance else None,
                )
                result.ignored.add(instance_id)
                continue
            named = instance is not None and bool(serving([instance]))
            targets += [dns.Target(instance_id, fleet, instance.private_ip if named else None) for fleet in fleets]
            result.fleets |= fleets
        if route53 and targets:
            outcome = dns.converge_instances(route53, self.stack, targets)
            result.dns_changes, result.failed = outcome.changes, outcome.refused
        result.elastic_ip_moved = self._keep_elastic_ips(result.fleets)
        return result

    def reconcile(self) -> BatchResult:
        by_fleet: dict[str, list[Instance]] = defaultdict(list)
        for instance in serving(stack_instances(aws.client("ec2"), self.stack)):
            by_fleet[instance.fleet].append(instance)
        result = BatchResult(fleets=set(self.fleets))
        if self.zone:
            outcome = dns.converge_zone(
                dns.Route53(self.zone),
                self.stack,
                set(self.fleets),
                lambda fleet: by_fleet.get(fleet, []) if fleet in self.fleets else [],
            )
            result.dns_changes, result.failed = outcome.changes, outcome.refused
        result.elastic_ip_moved = self._keep_elastic_ips(set(self.fleets), by_fleet)
        return result

    def _keep_elastic_ips(self, fleets: set[str], running: dict[str, list[Instance]] | None = None) -> list[str]:
        """Only fleets with an Elastic IP read their running instances (one box, typically)."""
        moved = []
        for fleet in sorted(fleets):
            allocation = self.fleets[fleet].elastic_ip if fleet in self.fleets else None
            if not allocation:
                continue
            instances = (
                running[fleet]
                if running is not None
                else serving(stack_instances(aws.client("ec2"), self.stack, fleet=fleet))
            )
            if elastic_ip.keep_on_holder(aws.client("ec2"), allocation, instances):
                moved.append(fleet)
        return moved


def describe_all(ec2, instance_ids: list[str]) -> dict[str, Instance]:
    """The instances EC2 still knows, by id. A filter, unlike InstanceIds, does not fail the
    whole call for one id EC2 has forgotten."""
    found = {}
    for start in range(0, len(instance_ids), DESCRIBE_CHUNK):
        chunk = instance_ids[start : start + DESCRIBE_CHUNK]
        pages = ec2.get_paginator("describe_instances").paginate(Filters=[{"Name": "instance-id", "Values": chunk}])
        found |= {
            i["InstanceId"]: Instance.from_api(i)
            for page in pages
            for r in page["Reservations"]
            for i in r["Instances"]
        }
    return found
