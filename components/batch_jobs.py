"""BatchJobs: what the `spotyard:jobs` with an image need on AWS Batch, and nothing more.

A managed compute environment on EC2 Spot (price-capacity-optimized, the stack's subnets, a
security group with no ingress, 0 vCPUs when idle) and its queue; a Fargate Spot environment
and queue only when a job asks for `fargate`; per job a job definition (resources, environment,
secrets, timeout, retries after a Spot reclaim and after nothing else), a job role (results
bucket write only when asked), an execution role only when the job needs one, and, when
scheduled, an EventBridge Scheduler schedule whose own role may submit that job to that queue
only. All jobs log to one log group with retention.

stack/jobs.py builds its args from the stack configuration; a program of its own builds them by hand.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
from spotyard_lambda.names import (
    DEFAULT_BATCH_INSTANCE_TYPES,
    DEFAULT_BATCH_MAX_VCPUS,
    DEFAULT_TIMEZONE,
    JOB_QUEUE_TAG,
    JOB_SCHEDULE_GROUP_TAG,
    JOB_TAG,
)

from components.args import AccountArgs, RoleArgs, as_args
from components.iam import allow, ecs_execution_role, ecs_task_role, policy_document, secret_resources, stack_role
from components.results_bucket import results_access

# Retry after a Spot reclaim, and only then. "If evaluateOnExit is specified, but none of the retry
# strategies match, then the job is retried. For jobs that don't match to exit, add a final entry
# that exits for any reason" (Batch user guide, Automated job retries,
# https://docs.aws.amazon.com/batch/latest/userguide/job_retries.html). A reclaimed host ends the
# attempt with the status reason "Host EC2 (instance i-...) terminated." (AWS workshop
# awslabs/ec2-spot-workshops, rendering-with-batch/aws-fis; AWS CDK aws_batch
# Reason.SPOT_INSTANCE_RECLAIMED = onStatusReason "Host EC2*": the user guide itself has no such
# example). Patterns may only end in `*` (API reference, EvaluateOnExit). The
# catch-alls cover each field, because a failure may lack a reason or an exit code.
SPOT_RECLAIM_RETRY = [{"onStatusReason": "Host EC2*", "action": "RETRY"}]
# ECS's stopped reason of a Fargate Spot task taken back (ECS developer guide, "Fargate capacity
# providers": "stoppedReason": "Your Spot Task was interrupted."). That Batch passes it on as the
# job's status reason is not documented: a Fargate Spot reclaim that Batch words otherwise fails
# the job instead of retrying.
FARGATE_SPOT_RECLAIM_RETRY = [{"onStatusReason": "Your Spot Task was interrupted*", "action": "RETRY"}]
EXIT_OTHERWISE = [
    {"onReason": "*", "action": "EXIT"},
    {"onStatusReason": "*", "action": "EXIT"},
    {"onExitCode": "*", "action": "EXIT"},
]
# Batch's ECS-optimized Amazon Linux 2023 AMI for the instances (API reference, Ec2Configuration).
IMAGE_TYPE = "ECS_AL2023"
ROOT_DEVICE = "/dev/xvda"  # the root device of the ECS-optimized Amazon Linux AMIs
LOG_RETENTION_DAYS = 30
# A private ECR image, `<account>.dkr.ecr.<region>.amazonaws.com/<repository>[:tag|@digest]`.
ECR_IMAGE = re.compile(r"(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<repo>[^:@]+)")


@dataclass
class BatchJobArgs:
    """One job with an image: what its job definition, roles and schedule are made of."""

    name: str
    image: str
    vcpus: float
    memory_mib: int
    timeout_seconds: int  # an attempt running longer is stopped
    retries: int  # further attempts after a Spot reclaim (0-9)
    command: list[str] | None = field(default_factory=list)
    environment: dict[str, pulumi.Input[str]] | None = field(default_factory=dict)
    secrets: dict[str, str] | None = field(
        default_factory=dict
    )  # variable -> SSM parameter (name or ARN) or secret ARN
    fargate: bool | None = False
    schedule_expression: str | None = None
    schedule_timezone: str | None = DEFAULT_TIMEZONE
    results_bucket_arn: pulumi.Input[str] | None = None


@dataclass
class BatchJobsArgs:
    jobs: list[BatchJobArgs]
    vpc_id: pulumi.Input[str]
    subnet_ids: list[pulumi.Input[str]]
    account: AccountArgs
    instance_types: list[str] | None = field(default_factory=lambda: list(DEFAULT_BATCH_INSTANCE_TYPES))
    max_vcpus: int | None = DEFAULT_BATCH_MAX_VCPUS  # of the EC2 Spot compute environment
    instance_tags: dict[str, pulumi.Input[str]] | None = field(default_factory=dict)  # on the instances Batch starts
    log_retention_days: int | None = LOG_RETENTION_DAYS
    # What the compute environment must wait for (the account's Spot service-linked role, when made here).
    spot_service_roles: list[aws.iam.ServiceLinkedRole] | None = field(default_factory=list)
    iam: RoleArgs | None = RoleArgs()


class BatchJobs(pulumi.ComponentResource):
    jobs: dict[str, dict[str, pulumi.Output[str]]]  # job -> its entry of the `jobs` stack output

    def __init__(self, name: str, args: BatchJobsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotyard:index:BatchJobs", name, None, opts)
        args = as_args(BatchJobsArgs, args)
        self._name, self._args = name, args
        self._child = pulumi.ResourceOptions(parent=self)
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description="spotyard Batch jobs: no inbound, all outbound",
            tags={"Name": f"{name}-batch"},
            opts=self._child,
        )
        for protocol_name, cidr in (("ipv4", {"cidr_ipv4": "0.0.0.0/0"}), ("ipv6", {"cidr_ipv6": "::/0"})):
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-egress-{protocol_name}",
                security_group_id=self.security_group.id,
                ip_protocol="-1",
                description="all outbound",
                **cidr,
                opts=self._child,
            )
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/spotyard/{pulumi.get_project()}-{pulumi.get_stack()}/{name}",
            retention_in_days=args.log_retention_days,
            opts=self._child,
        )
        queues = {}
        if any(not job.fargate for job in args.jobs):
            queues[False] = self._queue(f"{name}-queue", self._ec2_environment())
        if any(job.fargate for job in args.jobs):
            queues[True] = self._queue(f"{name}-fargate-queue", self._fargate_environment())
        scheduled = [job for job in args.jobs if job.schedule_expression]
        self.schedule_group = aws.scheduler.ScheduleGroup(f"{name}-schedules", opts=self._child) if scheduled else None
        self.jobs = {job.name: self._job(job, queues[job.fargate]) for job in args.jobs}
        self.register_outputs({"jobs": self.jobs, "logGroup": self.log_group.name})

    # -- compute ---------------------------------------------------------------------------

    def _ec2_environment(self) -> aws.batch.ComputeEnvironment:
        """Managed, Spot, price-capacity-optimized, 0 vCPUs when idle. No serviceRole: Batch uses (and
        makes) its service-linked role, AWSServiceRoleForBatch (API reference, CreateComputeEnvironment
        serviceRole). With that role and a *_CAPACITY_OPTIMIZED strategy, the provider updates instance
        types, vCPUs, subnets, security groups and tags in place; otherwise each of these replaces the
        environment (terraform-provider-aws internal/service/batch/compute_environment.go,
        isUpdatableComputeEnvironment). Neither spotIamFleetRole (BEST_FIT only: API reference,
        ComputeResource) nor a bid percentage is set: Spot is paid at the Spot price."""
        name, args = self._name, self._args
        role = stack_role(
            f"{name}-instance-role",
            service="ec2.amazonaws.com",
            description="spotyard Batch instances (ECS container instances)",
            iam=args.iam,
            opts=self._child,
        )
        # "Amazon ECS instance role" (Batch user guide): the ECS agent registers the instance, pulls
        # images and ships the awslogs driver's logs with it.
        ecs_policy = aws.iam.RolePolicyAttachment(
            f"{name}-instance-ecs",
            role=role.name,
            policy_arn=args.account.managed_policy("service-role/AmazonEC2ContainerServiceforEC2Role"),
            opts=self._child,
        )
        profile = aws.iam.InstanceProfile(f"{name}-instance-profile", role=role.name, opts=self._child)
        # Batch keeps what it sets itself (instance type, profile, security groups, user data) and
        # takes the rest from the template. Hop limit 1: containers (one hop away) cannot reach the
        # instance's role through IMDS (EC2 user guide, "Configure the Instance Metadata Service
        # options"); jobs use their job role.
        template = aws.ec2.LaunchTemplate(
            f"{name}-template",
            description="spotyard Batch instances: IMDSv2, encrypted root volume",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name=ROOT_DEVICE,
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_type="gp3", encrypted="true", delete_on_termination="true"
                    ),
                )
            ],
            update_default_version=True,
            opts=self._child,
        )
        return aws.batch.ComputeEnvironment(
            f"{name}-compute",
            type="MANAGED",
            compute_resources=aws.batch.ComputeEnvironmentComputeResourcesArgs(
                type="SPOT",
                allocation_strategy="SPOT_PRICE_CAPACITY_OPTIMIZED",
                min_vcpus=0,
                max_vcpus=args.max_vcpus,
                instance_types=list(args.instance_types),
                subnets=list(args.subnet_ids),
                security_group_ids=[self.security_group.id],
                instance_role=profile.arn,
                ec2_configurations=[
                    aws.batch.ComputeEnvironmentComputeResourcesEc2ConfigurationArgs(image_type=IMAGE_TYPE)
                ],
                # `$Latest`, not the template's latest_version output: an unknown version forces a
                # new environment (compute_environment.go, resourceComputeEnvironmentCustomizeDiff).
                # A new template version reaches instances Batch starts after its next infrastructure
                # update (Batch user guide, "Update a compute environment").
                launch_template=aws.batch.ComputeEnvironmentComputeResourcesLaunchTemplateArgs(
                    launch_template_id=template.id, version="$Latest"
                ),
                tags=dict(args.instance_tags),
            ),
            # Deleting the environment needs its instance role's policy to the end (Pulumi registry,
            # aws.batch.ComputeEnvironment: "make sure to set depends_on to the related
            # aws.iam.RolePolicyAttachment").
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ecs_policy, *args.spot_service_roles]),
        )

    def _fargate_environment(self) -> aws.batch.ComputeEnvironment:
        return aws.batch.ComputeEnvironment(
            f"{self._name}-fargate-compute",
            type="MANAGED",
            compute_resources=aws.batch.ComputeEnvironmentComputeResourcesArgs(
                type="FARGATE_SPOT",
                max_vcpus=self._args.max_vcpus,
                subnets=list(self._args.subnet_ids),
                security_group_ids=[self.security_group.id],
            ),
            opts=self._child,
        )

    def _queue(self, name: str, environment: aws.batch.ComputeEnvironment) -> aws.batch.JobQueue:
        return aws.batch.JobQueue(
            name,
            priority=1,
            state="ENABLED",
            compute_environment_orders=[
                aws.batch.JobQueueComputeEnvironmentOrderArgs(compute_environment=environment.arn, order=1)
            ],
            opts=self._child,
        )

    # -- jobs ------------------------------------------------------------------------------

    def _job(self, job: BatchJobArgs, queue: aws.batch.JobQueue) -> dict[str, pulumi.Output[str]]:
        name, args = f"{self._name}-job-{job.name}", self._args  # never a shared child's name
        job_role = ecs_task_role(
            f"{name}-role",
            description=f"spotyard Batch job {job.name}",
            account_id=args.account.account_id,
            iam=args.iam,
            opts=self._child,
        )
        if job.results_bucket_arn is not None:
            aws.iam.RolePolicy(
                f"{name}-results",
                role=job_role.id,
                policy=policy_document(results_access(pulumi.Output.from_input(job.results_bucket_arn))),
                opts=self._child,
            )
        execution_role = self._execution_role(name, job)
        properties = pulumi.Output.all(
            environment=dict(job.environment),
            job_role=job_role.arn,
            execution_role=execution_role.arn if execution_role else None,
            log_group=self.log_group.name,
        ).apply(lambda values: json.dumps(self._container_properties(job, **values)))
        tags: dict[str, pulumi.Input[str]] = {JOB_TAG: job.name, JOB_QUEUE_TAG: queue.name}
        if self.schedule_group is not None and job.schedule_expression:
            tags[JOB_SCHEDULE_GROUP_TAG] = self.schedule_group.name
        # A change registers a new revision under the same name (the provider's Update calls
        # RegisterJobDefinition) and deregisters the one before (deregister_on_new_revision, default
        # true); only a new name replaces it (terraform-provider-aws internal/service/batch/
        # job_definition.go). Whoever submits by `arn_prefix` (no revision) gets the latest.
        definition = aws.batch.JobDefinition(
            f"{name}-definition",
            type="container",
            platform_capabilities=["FARGATE" if job.fargate else "EC2"],
            container_properties=properties,
            retry_strategy=aws.batch.JobDefinitionRetryStrategyArgs(
                attempts=job.retries + 1,
                evaluate_on_exits=[
                    aws.batch.JobDefinitionRetryStrategyEvaluateOnExitArgs(
                        action=entry["action"],
                        on_status_reason=entry.get("onStatusReason"),
                        on_reason=entry.get("onReason"),
                        on_exit_code=entry.get("onExitCode"),
                    )
                    for entry in retry_on_spot_reclaim(job.fargate)
                ],
            ),
            timeout=aws.batch.JobDefinitionTimeoutArgs(attempt_duration_seconds=job.timeout_seconds),
            propagate_tags=True,
            tags=tags,
            opts=self._child,
        )
        outputs: dict[str, pulumi.Output[str]] = {
            "jobQueueArn": queue.arn,
            "jobDefinitionArn": definition.arn,
            "jobDefinitionName": definition.name,
            "jobRoleArn": job_role.arn,
        }
        if job.schedule_expression and self.schedule_group is not None:
            outputs["scheduleArn"] = self._schedule(
                name, job, job.schedule_expression, self.schedule_group, queue, definition
            ).arn
        return outputs

    def _execution_role(self, name: str, job: BatchJobArgs) -> aws.iam.Role | None:
        """The role ECS uses to start the container: read its secrets; on Fargate also pull a private
        ECR image and write its logs (on EC2 the instance role does both). None if nothing is needed."""
        args = self._args
        statements = []
        parameters = [
            self._parameter_arn(source) for source in job.secrets.values() if ":secretsmanager:" not in source
        ]
        secrets = [
            arn for source in job.secrets.values() if ":secretsmanager:" in source for arn in secret_resources(source)
        ]
        # Batch user guide, "Specifying sensitive data": ssm:GetParameters and
        # secretsmanager:GetSecretValue for the execution role. A SecureString under a customer
        # managed KMS key also needs kms:Decrypt on that key (not granted here).
        if parameters:
            statements.append(allow("ReadParameters", ["ssm:GetParameters"], sorted(parameters)))
        if secrets:
            statements.append(allow("ReadSecrets", ["secretsmanager:GetSecretValue"], sorted(secrets)))
        if job.fargate:
            statements.append(
                allow(
                    "WriteLogs",
                    ["logs:CreateLogStream", "logs:PutLogEvents"],
                    self.log_group.arn.apply(lambda arn: f"{arn}:*"),
                )
            )
            if (ecr := ECR_IMAGE.match(job.image)) is not None:
                statements += [
                    allow("EcrLogin", ["ecr:GetAuthorizationToken"], "*"),
                    allow(
                        "PullImage",
                        ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                        f"arn:{args.account.partition}:ecr:{ecr['region']}:{ecr['account']}:repository/{ecr['repo']}",
                    ),
                ]
        if not statements:
            return None
        role = ecs_execution_role(
            f"{name}-execution-role",
            description=f"spotyard Batch job {job.name}: starts its container",
            iam=args.iam,
            opts=self._child,
        )
        aws.iam.RolePolicy(f"{name}-execution", role=role.id, policy=policy_document(statements), opts=self._child)
        return role

    def _parameter_arn(self, source: str) -> str:
        """An SSM parameter named by name or ARN, as the ARN IAM checks."""
        if source.startswith("arn:"):
            return source
        return self._args.account.arn("ssm", f"parameter{source}")

    def _container_properties(
        self,
        job: BatchJobArgs,
        *,
        environment: dict[str, str],
        job_role: str,
        execution_role: str | None,
        log_group: str,
    ) -> dict[str, Any]:
        """RegisterJobDefinition containerProperties (Batch API reference, ContainerProperties)."""
        properties: dict[str, Any] = {
            "image": job.image,
            "resourceRequirements": [
                {"type": "VCPU", "value": f"{job.vcpus:g}"},
                {"type": "MEMORY", "value": str(job.memory_mib)},
            ],
            "jobRoleArn": job_role,
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": log_group,
                    "awslogs-region": self._args.account.region,
                    "awslogs-stream-prefix": job.name,
                },
            },
        }
        if environment:
            properties["environment"] = [{"name": key, "value": value} for key, value in sorted(environment.items())]
        if job.secrets:
            properties["secrets"] = [{"name": key, "valueFrom": value} for key, value in sorted(job.secrets.items())]
        if job.command:
            properties["command"] = list(job.command)
        if execution_role:
            properties["executionRoleArn"] = execution_role
        if job.fargate:
            # Fargate Spot runs X86_64 Linux only (ECS developer guide, Fargate capacity providers); a
            # public IP lets a task in a subnet without NAT pull its image (nothing can reach it: the
            # security group has no ingress).
            properties["networkConfiguration"] = {"assignPublicIp": "ENABLED"}
            properties["fargatePlatformConfiguration"] = {"platformVersion": "LATEST"}
            properties["runtimePlatform"] = {"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"}
        return properties

    def _schedule(
        self,
        name: str,
        job: BatchJobArgs,
        expression: str,
        group: aws.scheduler.ScheduleGroup,
        queue: aws.batch.JobQueue,
        definition: aws.batch.JobDefinition,
    ) -> aws.scheduler.Schedule:
        """Submits the job on its schedule through the `batch:submitJob` universal target
        (https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets-universal.html), by the
        definition's ARN without revision: the latest active revision (Batch API reference, SubmitJob
        jobDefinition). Its role may submit to this queue with this definition only; IAM checks the
        revision the request resolves to, hence `:*` (Batch user guide, "Restrict to job definition
        prefix on job submission": a policy naming the definition without a revision matches nothing)."""
        args = self._args
        role = stack_role(
            f"{name}-schedule-role",
            service="scheduler.amazonaws.com",
            description=f"spotyard: schedule of Batch job {job.name}",
            conditions={"StringEquals": {"aws:SourceAccount": args.account.account_id}},
            iam=args.iam,
            opts=self._child,
        )
        aws.iam.RolePolicy(
            f"{name}-schedule-policy",
            role=role.id,
            policy=policy_document(
                [
                    allow(
                        "SubmitJob",
                        ["batch:SubmitJob"],
                        [queue.arn, definition.arn_prefix.apply(lambda prefix: f"{prefix}:*")],
                    )
                ]
            ),
            opts=self._child,
        )
        return aws.scheduler.Schedule(
            f"{name}-schedule",
            name=job.name,
            group_name=group.name,
            description=f"spotyard: submit Batch job {job.name}",
            schedule_expression=expression,
            schedule_expression_timezone=job.schedule_timezone,
            flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
            target=aws.scheduler.ScheduleTargetArgs(
                arn=SUBMIT_JOB_TARGET,
                role_arn=role.arn,
                input=pulumi.Output.json_dumps(
                    {"JobName": job.name, "JobQueue": queue.arn, "JobDefinition": definition.arn_prefix}
                ),
                retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(
                    maximum_event_age_in_seconds=3600, maximum_retry_attempts=5
                ),
            ),
            opts=self._child,
        )


SUBMIT_JOB_TARGET = "arn:aws:scheduler:::aws-sdk:batch:submitJob"


def retry_on_spot_reclaim(fargate: bool) -> list[dict[str, str]]:
    """The job definition's evaluateOnExit: RETRY on a Spot reclaim, EXIT on anything else."""
    return [*SPOT_RECLAIM_RETRY, *(FARGATE_SPOT_RECLAIM_RETRY if fargate else []), *EXIT_OTHERWISE]
