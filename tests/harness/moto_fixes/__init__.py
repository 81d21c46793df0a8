"""Where moto's emulation differs from AWS in a way that matters to these tests, made to
behave as AWS does: one module per service, each naming the difference and its source."""

from tests.harness.moto_fixes import autoscaling, batch, ec2, ecs, iam, route53


def apply() -> None:
    for service in (autoscaling, batch, ec2, ecs, iam, route53):
        service.apply()
