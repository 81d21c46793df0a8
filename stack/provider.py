"""The stack's one AWS provider: region, and default tags on every taggable resource."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
from spotyard_lambda.names import FLEET_TAG, STACK_TAG

from spotyard.config import StackConfig


def stack_tags(config: StackConfig) -> dict[str, str]:
    """Tags every resource carries: the user's tags and `spotyard:stack=<project>/<stack>`."""
    return {**config.tags, STACK_TAG: config.stack_tag}


def fleet_tags(config: StackConfig, fleet_name: str) -> dict[str, str]:
    """Tags of a fleet's instances and volumes (spec section 3)."""
    return {**stack_tags(config), FLEET_TAG: fleet_name, "Name": fleet_name}


def stack_provider(config: StackConfig) -> aws.Provider:
    return aws.Provider(
        "aws",
        region=config.region,
        default_tags=aws.ProviderDefaultTagsArgs(tags=stack_tags(config)),
    )


def invoke_options(provider: aws.Provider) -> pulumi.InvokeOptions:
    return pulumi.InvokeOptions(provider=provider)
