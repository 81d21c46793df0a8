"""What the registrar does for an event: find the fleet concerned, then converge its DNS
records and its Elastic IP on the fleet's running instances, read fresh from EC2. Because
every run recomputes from EC2's present state, duplicated, late and out-of-order events
all converge to the same zone."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import elastic_ip
from spotyard_lambda import aws, dns, log
from spotyard_lambda.instances import Instance, describe, serving, stack_instances
from spotyard_lambda.settings import StackSettings


class Registrar(StackSettings):
    def on_state_change(self, instance_id: str, state: str) -> dict[str, Any]:
        instance = describe(aws.client("ec2"), instance_id)
        if instance is None:
            # EC2 has forgotten it: the names it still holds tell which fleet it was in.
            fleets = dns.read_zone(self.zone, self.stack).fleets_naming(instance_id) if self.zone else set()
        elif instance.owned_by(self.stack) and instance.fleet in self.fleets:
            fleets = {instance.fleet}
        else:
            log.info("registrar.ignored", instance_id=instance_id, state=state,
                     reason="not an instance of this stack's fleets", tags=instance.tags)
            return {"ignored": instance_id}
        if not fleets:
            log.info("registrar.ignored", instance_id=instance_id, state=state, reason="unknown and holds no names")
            return {"ignored": instance_id}
        return self._converge(fleets, lambda fleet: serving(stack_instances(aws.client("ec2"), self.stack,
                                                                             fleet=fleet)))

    def reconcile(self) -> dict[str, Any]:
        by_fleet: dict[str, list[Instance]] = defaultdict(list)
        for instance in serving(stack_instances(aws.client("ec2"), self.stack)):
            by_fleet[instance.fleet].append(instance)
        return self._converge(set(self.fleets), lambda fleet: by_fleet.get(fleet, []), with_owned=True)

    def _converge(self, fleets: set[str], instances_of, *, with_owned: bool = False) -> dict[str, Any]:
        cache: dict[str, list[Instance]] = {}

        def running(fleet: str) -> list[Instance]:
            if fleet not in cache:
                cache[fleet] = instances_of(fleet) if fleet in self.fleets else []
            return cache[fleet]

        changes = dns.converge(self.zone, self.stack, fleets, running, with_owned=with_owned) if self.zone else 0
        moved = [fleet for fleet in sorted(fleets)
                 if (allocation := self.fleets.get(fleet, {}).get("elasticIp"))
                 and elastic_ip.keep_on_newest(aws.client("ec2"), allocation, running(fleet))]
        return {"fleets": sorted(fleets), "dnsChanges": changes, "elasticIpMoved": moved}
