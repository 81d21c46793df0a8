"""DnsRegistrar: every instance gets its Route 53 names by itself, and loses them when it goes.

A private hosted zone in the VPC (or the configured `zoneId`), and the `dns_registrar`
Lambda: EC2 `running` / `shutting-down` / `terminated` state changes go from EventBridge to
an encrypted SQS queue and reach it in batches (a batching window, a bounded concurrency,
one Route 53 change request per batch when the limits allow), and it reconciles every 5
minutes. Each run paces its Route 53 requests so that all of them together stay within
Route 53's per-account rate. It also keeps each fleet's `elasticIp` on its newest
instance, so the component exists when `dns` is set or any fleet has an Elastic IP.
"""

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
from spotyard_lambda.dns import Zone
from spotyard_lambda.names import DEFAULT_TTL_SECONDS, STACK_TAG, hosted_zone_arn, tag_condition
from spotyard_lambda.settings import DnsRegistrarSettings, NamedFleet

from components.args import AccountArgs, RoleArgs, as_args
from components.iam import allow
from components.lambda_function import LambdaFunction, LambdaFunctionArgs, QueueDelivery, Trigger

STATE_CHANGES = {
    "source": ["aws.ec2"],
    "detail-type": ["EC2 Instance State-change Notification"],
    "detail": {"state": ["running", "shutting-down", "terminated"]},
}
RECONCILE_EVERY = "rate(5 minutes)"
# Route 53 allows 5 requests per second per account
# (https://repost.aws/knowledge-center/route-53-avoid-throttling-errors): at most two batches
# and one reconcile at a time, each paced to 1.5 requests per second, leave room for the
# interruption handler's few requests (which boto3's adaptive retries absorb).
STATE_CHANGE_BATCHES = QueueDelivery(batch_size=100, batching_window_seconds=20, maximum_concurrency=2)
ROUTE53_REQUESTS_PER_SECOND = 1.5
# A batch of 100 instances is about 105 paced requests (70 s); a reconcile of 3,000
# instances about 55.
TIMEOUT_SECONDS = 300


@dataclass
class DnsRegistrarArgs:
    stack_tag: str  # the spotyard:stack tag value of the instances it names
    account: AccountArgs
    vpc_id: pulumi.Input[str]  # a created private zone is associated with this VPC
    zone_name: str | None = None  # a private hosted zone of this name is created, unless zone_id is given
    zone_id: str | None = None  # an existing hosted zone; none of both: Elastic IPs only
    ttl: int | None = DEFAULT_TTL_SECONDS
    elastic_ips: dict[str, str] | None = field(default_factory=dict)  # fleet -> allocation id
    fleets: list[str] | None = field(default_factory=list)  # the fleets whose instances get names
    alarm_topic_arn: pulumi.Input[str] | None = None
    iam: RoleArgs | None = RoleArgs()


class DnsRegistrar(pulumi.ComponentResource):
    zone_id: pulumi.Output[str] | None = None
    zone_name: str | None = None

    def __init__(self, name: str, args: DnsRegistrarArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotyard:index:DnsRegistrar", name, None, opts)
        args = as_args(DnsRegistrarArgs, args)
        env = args.account
        if args.zone_id:
            existing = aws.route53.get_zone(zone_id=args.zone_id, opts=pulumi.InvokeOptions(parent=self))
            self.zone_id = pulumi.Output.from_input(args.zone_id)
            self.zone_name = (args.zone_name or existing.name).rstrip(".").lower()
        elif args.zone_name:
            zone = aws.route53.Zone(
                f"{name}-zone",
                name=args.zone_name,
                comment=f"spotyard {args.stack_tag}",
                vpcs=[aws.route53.ZoneVpcArgs(vpc_id=args.vpc_id, vpc_region=env.region)],
                force_destroy=True,  # the records in it are the registrar's, written at run time
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.zone_id = zone.zone_id
            self.zone_name = args.zone_name

        statements = [allow("FindInstances", ["ec2:DescribeInstances"], "*")]
        if self.zone_id is not None:
            statements.append(
                allow(
                    "ManageRecords",
                    ["route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets"],
                    self.zone_id.apply(lambda zone_id: hosted_zone_arn(env.partition, zone_id)),
                )
            )
        if args.elastic_ips:
            statements += [
                allow("FindAddresses", ["ec2:DescribeAddresses"], "*"),
                allow(
                    "MoveAddresses",
                    ["ec2:AssociateAddress"],
                    [env.arn("ec2", f"elastic-ip/{allocation}") for allocation in args.elastic_ips.values()],
                ),
                allow(
                    "OntoStackInstances",
                    ["ec2:AssociateAddress"],
                    env.arn("ec2", "instance/*"),
                    tag_condition({STACK_TAG: args.stack_tag}),
                ),
            ]
        self.function = LambdaFunction(
            f"{name}-lambda",
            LambdaFunctionArgs(
                source="dns_registrar",
                description="spotyard: Route 53 names and Elastic IPs follow the fleets' instances",
                statements=statements,
                settings=pulumi.Output.all(self.zone_id, pulumi.Output.from_input(args.elastic_ips)).apply(
                    lambda values: self._settings(args, *values)
                ),
                triggers=[
                    Trigger(
                        "state-changes",
                        event_pattern=STATE_CHANGES,
                        description="instances start and stop",
                        queue=STATE_CHANGE_BATCHES,
                    ),
                    Trigger(
                        "reconcile",
                        schedule_expression=RECONCILE_EVERY,
                        description="repair what missed events left behind",
                    ),
                ],
                alarm_topic_arn=args.alarm_topic_arn,
                timeout_seconds=TIMEOUT_SECONDS,
                iam=args.iam,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"zoneId": self.zone_id, "zoneName": self.zone_name})

    def _settings(
        self, args: DnsRegistrarArgs, zone_id: str | None, elastic_ips: dict[str, str]
    ) -> DnsRegistrarSettings:
        zone = (
            Zone(id=zone_id, name=self.zone_name or "", ttl=args.ttl, requests_per_second=ROUTE53_REQUESTS_PER_SECOND)
            if zone_id
            else None
        )
        return DnsRegistrarSettings(
            stack=args.stack_tag,
            zone=zone,
            fleets={fleet: NamedFleet(elastic_ip=elastic_ips.get(fleet)) for fleet in [*args.fleets, *elastic_ips]},
        )
