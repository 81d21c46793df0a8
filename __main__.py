"""spotyard: wires the components together from the stack configuration (spec.md)."""

from pathlib import Path

import pulumi

from components.environment import resolve_environment
from components.image import resolve_images
from components.provider import fleet_tags, stack_provider
from components.results_bucket import ResultsBucket, ResultsBucketArgs
from components.spot_fleet import SpotFleet, SpotFleetArgs
from components.stack_config import load_stack_config

config = load_stack_config(Path(__file__).resolve().parent)
provider = stack_provider(config)
environment = resolve_environment(config.network, provider)
images = resolve_images(config.fleets, provider)
with_provider = pulumi.ResourceOptions(providers=[provider])

fleet_outputs = {}
for fleet in config.fleets:
    spot_fleet = SpotFleet(fleet.name, SpotFleetArgs(
        fleet=fleet,
        environment=environment,
        image=images[fleet.name],
        instance_tags=fleet_tags(config, fleet.name),
        user_data=fleet.user_data,
    ), opts=with_provider)
    outputs = {
        "engine": fleet.engine,
        "groupName" if fleet.engine == "asg" else "requestId": spot_fleet.capacity_target,
        "securityGroupId": spot_fleet.security_group_id,
    }
    if fleet.results:
        results = ResultsBucket(f"{fleet.name}-results", ResultsBucketArgs(
            bucket=fleet.results.bucket, partition=environment.partition,
            instance_role_name=spot_fleet.instance_role.name), opts=with_provider)
        outputs["resultsBucket"] = results.bucket_name
    fleet_outputs[fleet.name] = outputs

pulumi.export("vpcId", environment.vpc_id)
pulumi.export("subnetIds", environment.subnet_ids)
pulumi.export("fleets", fleet_outputs)
