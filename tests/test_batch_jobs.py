"""Batch jobs under mocks: the compute environments, queues, job definitions, roles and schedules
the stack declares for `spotyard:jobs` with an image, checked against botocore's service model,
the IAM policies the stack wrote (tests/harness/iam.py), and moto's Batch, which runs a submitted
job without Docker (it succeeds at once)."""

from __future__ import annotations

import copy
import fnmatch
import json
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.validate import validate_parameters
from spotyard_lambda.names import JOB_QUEUE_TAG, JOB_SCHEDULE_GROUP_TAG, JOB_TAG

from tests.conftest import REGION, dev_config
from tests.harness.iam import Call, Target, denied, role_policy, targets
from tests.harness.redeploy import renames_between

JOB_DEFINITION = "aws:batch/jobDefinition:JobDefinition"
COMPUTE = "aws:batch/computeEnvironment:ComputeEnvironment"
QUEUE = "aws:batch/jobQueue:JobQueue"
SCHEDULE = "aws:scheduler/schedule:Schedule"
ROLE = "aws:iam/role:Role"
SECRET = "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:db-AbCdEf"
PARTIAL_SECRET = "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:api-key"  # without -<6 characters>
PRIVATE_IMAGE = "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/reports/builder:7"


def with_jobs() -> dict[str, Any]:
    """The dev stack's scheduled EC2 job, and two Fargate Spot jobs: one with an SSM parameter and
    an existing results bucket, one with a Secrets Manager secret and a private ECR image."""
    config = dev_config()
    config["spotyard:batch"] = {"instanceTypes": ["m7i", "c7i.large"], "maxVcpus": 32}
    config["spotyard:jobs"]["light"] = {
        "image": "public.ecr.aws/docker/library/busybox:1.36",
        "command": ["sh", "-c", "echo light"],
        "fargate": True,
        "vcpus": 0.5,
        "memoryMiB": 1024,
        "secrets": {"TOKEN": "/light/token"},
        "results": "existing-results",
    }
    config["spotyard:jobs"]["private"] = {
        "image": PRIVATE_IMAGE,
        "fargate": True,
        "secrets": {"DB": SECRET, "DB_USER": f"{SECRET}:username::", "API_KEY": PARTIAL_SECRET},
    }
    return config


@pytest.fixture
def stack(deploy):
    return deploy(with_jobs())


def definition(run, job: str):
    return run.one(JOB_DEFINITION, f"jobs-job-{job}-definition")


def container(run, job: str) -> dict[str, Any]:
    return json.loads(definition(run, job).inputs["containerProperties"])


def operation(name: str):
    return botocore.session.get_session().get_service_model("batch").operation_model(name)


def sdk_parameters(model, given: dict[str, Any]) -> dict[str, Any]:
    """A universal target's input in botocore's member names: Scheduler's aws-sdk targets, like Step
    Functions' AWS SDK integrations, spell parameters in PascalCase where the API uses camelCase."""
    members = {name.lower(): name for name in model.input_shape.members}
    unknown = sorted(key for key in given if key.lower() not in members)
    assert not unknown, f"{model.name} has no parameters {unknown}"
    return {members[key.lower()]: value for key, value in given.items()}


# -- compute --------------------------------------------------------------------------------


def test_the_compute_environment_is_spot_price_capacity_optimized_and_scales_to_zero(stack):
    compute = stack.one(COMPUTE, "jobs-compute")
    resources = compute.inputs["computeResources"]
    assert compute.inputs["type"] == "MANAGED"
    assert (resources["type"], resources["allocationStrategy"]) == ("SPOT", "SPOT_PRICE_CAPACITY_OPTIMIZED")
    assert (resources["minVcpus"], resources["maxVcpus"]) == (0, 32)
    assert resources["instanceTypes"] == ["m7i", "c7i.large"]
    assert resources["subnets"] == stack.outputs["subnetIds"]
    # Batch's own service-linked role (in-place updates), no Spot Fleet role, no bid cap.
    assert not {"serviceRole"} & set(compute.inputs)
    assert not {"spotIamFleetRole", "bidPercentage"} & set(resources)
    assert resources["tags"]["spotyard:stack"] == "spotyard/dev"
    assert boto3.client("batch").describe_compute_environments(computeEnvironments=[compute.outputs["arn"]])[
        "computeEnvironments"
    ], "moto made it with these inputs"


def test_the_instances_have_no_ingress_imdsv2_only_and_encrypted_volumes(stack):
    resources = stack.one(COMPUTE, "jobs-compute").inputs["computeResources"]
    (group_id,) = resources["securityGroupIds"]
    group = stack.one("aws:ec2/securityGroup:SecurityGroup", "jobs-sg")
    assert group.id == group_id and not group.inputs.get("ingress")
    assert not [
        r
        for r in stack.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["securityGroupId"] == group_id
    ]
    template = stack.one("aws:ec2/launchTemplate:LaunchTemplate", "jobs-template")
    assert resources["launchTemplate"] == {"launchTemplateId": template.id, "version": "$Latest"}
    assert template.inputs["metadataOptions"]["httpTokens"] == "required"
    assert template.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1  # containers cannot reach it
    (root,) = template.inputs["blockDeviceMappings"]
    assert root["ebs"]["encrypted"] == "true"
    assert resources["ec2Configurations"] == [{"imageType": "ECS_AL2023"}]


def test_the_instance_profile_carries_the_ecs_instance_role(stack):
    compute = stack.one(COMPUTE, "jobs-compute")
    profile = stack.one("aws:iam/instanceProfile:InstanceProfile", "jobs-instance-profile")
    assert compute.inputs["computeResources"]["instanceRole"] == profile.outputs["arn"]
    role = stack.one(ROLE, "jobs-instance-role")
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    attachment = stack.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "jobs-instance-ecs")
    assert attachment.inputs == {
        "role": role.id,
        "policyArn": "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role",
    }
    assert attachment.urn in compute.depends_on  # deleted after the environment, not before


def test_a_fargate_spot_environment_and_queue_exist_only_when_a_job_asks(deploy, stack):
    fargate = stack.one(COMPUTE, "jobs-fargate-compute").inputs["computeResources"]
    assert fargate["type"] == "FARGATE_SPOT" and fargate["subnets"] == stack.outputs["subnetIds"]
    queues = {r.name: r for r in stack.of_type(QUEUE)}
    assert queues["jobs-fargate-queue"].inputs["computeEnvironmentOrders"] == [
        {"computeEnvironment": stack.one(COMPUTE, "jobs-fargate-compute").outputs["arn"], "order": 1}
    ]
    assert stack.outputs["jobs"]["light"]["jobQueueArn"] == queues["jobs-fargate-queue"].outputs["arn"]
    assert stack.outputs["jobs"]["nightly-report"]["jobQueueArn"] == queues["jobs-queue"].outputs["arn"]
    plain = deploy(dev_config())
    assert [r.name for r in plain.of_type(COMPUTE)] == ["jobs-compute"]
    assert [r.name for r in plain.of_type(QUEUE)] == ["jobs-queue"]


def test_no_job_with_an_image_means_no_batch(deploy):
    config = dev_config()
    del config["spotyard:jobs"], config["spotyard:batch"]
    run = deploy(config)
    assert not [r for r in run.resources if r.type.startswith("aws:batch")]
    assert run.outputs["jobs"] == {}


# -- job definitions ------------------------------------------------------------------------


@pytest.mark.parametrize("job", ["nightly-report", "light", "private"])
def test_job_definitions_are_what_register_job_definition_takes(stack, job):
    inputs = definition(stack, job).inputs
    validate_parameters(
        container(stack, job), operation("RegisterJobDefinition").input_shape.members["containerProperties"]
    )
    assert inputs["type"] == "container" and inputs["propagateTags"] is True
    assert inputs["platformCapabilities"] == ["FARGATE" if job != "nightly-report" else "EC2"]


def test_the_job_definition_carries_the_configured_job(stack):
    properties = container(stack, "nightly-report")
    assert properties["image"] == "public.ecr.aws/docker/library/python:3.12-slim"
    assert properties["command"] == ["python", "-c", "print('report done')"]
    assert properties["resourceRequirements"] == [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}]
    bucket = stack.one("aws:s3/bucket:Bucket", "jobs-results-bucket").id
    assert properties["environment"] == [
        {"name": "REPORT_MODE", "value": "full"},
        {"name": "SPOTYARD_RESULTS_BUCKET", "value": bucket},
    ]
    assert properties["jobRoleArn"] == stack.one(ROLE, "jobs-job-nightly-report-role").outputs["arn"]
    assert "executionRoleArn" not in properties  # EC2, no secrets: nothing to start it with
    inputs = definition(stack, "nightly-report").inputs
    assert inputs["timeout"] == {"attemptDurationSeconds": 3600}
    assert inputs["retryStrategy"]["attempts"] == 4  # retries: 3
    light = container(stack, "light")
    assert light["resourceRequirements"] == [{"type": "VCPU", "value": "0.5"}, {"type": "MEMORY", "value": "1024"}]
    assert light["secrets"] == [{"name": "TOKEN", "valueFrom": "/light/token"}]
    assert light["networkConfiguration"] == {"assignPublicIp": "ENABLED"}
    assert light["runtimePlatform"]["cpuArchitecture"] == "X86_64"  # all Fargate Spot runs


def test_every_job_logs_to_the_stacks_log_group_with_retention(stack):
    group = stack.one("aws:cloudwatch/logGroup:LogGroup", "jobs-logs")
    assert group.inputs["retentionInDays"] == 30
    for job in ("nightly-report", "light", "private"):
        assert container(stack, job)["logConfiguration"] == {
            "logDriver": "awslogs",
            "options": {"awslogs-group": group.inputs["name"], "awslogs-region": REGION, "awslogs-stream-prefix": job},
        }


def test_the_cli_finds_a_job_by_the_tags_of_its_definition(stack):
    tags = definition(stack, "nightly-report").inputs["tags"]
    assert tags[JOB_TAG] == "nightly-report"
    assert tags[JOB_QUEUE_TAG] == stack.one(QUEUE, "jobs-queue").outputs["name"]
    assert (
        tags[JOB_SCHEDULE_GROUP_TAG]
        == stack.one("aws:scheduler/scheduleGroup:ScheduleGroup", "jobs-schedules").outputs["name"]
    )
    assert JOB_SCHEDULE_GROUP_TAG not in definition(stack, "light").inputs["tags"]  # not scheduled


# -- retries --------------------------------------------------------------------------------


def batch_decides(entries: list[dict[str, str]], status_reason: str | None, reason: str | None, exit_code: int | None):
    """What Batch does with a failed attempt (API reference, EvaluateOnExit; user guide, Automated job
    retries): the first entry whose every condition matches decides; a pattern may end in `*`; a
    failure no entry matches is retried. A condition on a value the failure lacks does not match."""
    values = {
        "onStatusReason": status_reason,
        "onReason": reason,
        "onExitCode": None if exit_code is None else str(exit_code),
    }
    for entry in entries:
        conditions = {key: pattern for key, pattern in entry.items() if key in values}
        if all(
            values[key] is not None and fnmatch.fnmatchcase(values[key], pattern) for key, pattern in conditions.items()
        ):
            return entry["action"].upper()
    return "RETRY"


FAILURES = [
    ("Host EC2 (instance i-0123456789abcdef0) terminated.", None, None, "RETRY"),
    ("Essential container in task exited", None, 1, "EXIT"),
    ("Job attempt duration exceeded timeout", None, None, "EXIT"),
    (None, "CannotPullContainerError: pull image manifest has been retried 5 time(s)", None, "EXIT"),
    (None, None, 137, "EXIT"),
    ("Your Spot Task was interrupted.", None, None, "EXIT"),  # a Fargate Spot reclaim: not on EC2
]


@pytest.mark.parametrize(("status_reason", "reason", "exit_code", "action"), FAILURES)
def test_an_ec2_job_is_retried_after_a_spot_reclaim_and_after_nothing_else(
    stack, status_reason, reason, exit_code, action
):
    entries = definition(stack, "nightly-report").inputs["retryStrategy"]["evaluateOnExits"]
    assert batch_decides(entries, status_reason, reason, exit_code) == action


def test_a_fargate_spot_job_is_retried_after_its_reclaim_too(stack):
    entries = definition(stack, "light").inputs["retryStrategy"]["evaluateOnExits"]
    assert batch_decides(entries, "Your Spot Task was interrupted.", None, None) == "RETRY"
    assert batch_decides(entries, "Essential container in task exited", None, 2) == "EXIT"
    assert len(entries) <= 5  # "up to 5" (API reference, RetryStrategy evaluateOnExit)


# -- roles ----------------------------------------------------------------------------------


def test_a_job_role_may_write_results_only_when_the_job_asks(stack):
    nightly = stack.one(ROLE, "jobs-job-nightly-report-role")
    trust = json.loads(nightly.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    for role in stack.of_type(ROLE):  # ECS shows the execution role's trust without conditions
        if role.name.endswith("-execution-role"):
            assert "Condition" not in json.loads(role.inputs["assumeRolePolicy"])["Statement"][0], role.name
    bucket = stack.one("aws:s3/bucket:Bucket", "jobs-results-bucket")
    policy = role_policy(stack.resources, nightly.id)
    assert policy.allows("s3:PutObject", Target(f"{bucket.outputs['arn']}/reports/today.csv"))
    assert not policy.allows("s3:PutObject", Target("arn:aws:s3:::another-bucket/x"))
    assert not policy.allows("s3:DeleteObject", Target(f"{bucket.outputs['arn']}/reports/today.csv"))
    light = role_policy(stack.resources, stack.one(ROLE, "jobs-job-light-role").id)
    assert light.allows("s3:PutObject", Target("arn:aws:s3:::existing-results/out.json"))
    assert role_policy(stack.resources, stack.one(ROLE, "jobs-job-private-role").id).statements == []
    assert stack.outputs["jobs"]["light"]["resultsBucket"] == "existing-results"


def test_the_execution_role_reads_the_jobs_own_secrets_and_pulls_its_own_image(stack):
    light = role_policy(stack.resources, stack.one(ROLE, "jobs-job-light-execution-role").id)
    parameter = "arn:aws:ssm:ap-northeast-1:123456789012:parameter/light/token"
    assert light.allows("ssm:GetParameters", Target(parameter))
    assert not light.allows("ssm:GetParameters", Target(f"{parameter}-other"))
    log_group = stack.one("aws:cloudwatch/logGroup:LogGroup", "jobs-logs").outputs["arn"]
    assert light.allows("logs:PutLogEvents", Target(f"{log_group}:log-stream:light/default/abc"))
    assert not light.allows("ecr:BatchGetImage", Target("arn:aws:ecr:ap-northeast-1:123456789012:repository/x"))
    private = role_policy(stack.resources, stack.one(ROLE, "jobs-job-private-execution-role").id)
    assert private.allows("secretsmanager:GetSecretValue", Target(SECRET))  # also read for its username key
    assert private.allows("secretsmanager:GetSecretValue", Target(f"{PARTIAL_SECRET}-Zx9Yw8"))
    assert not private.allows("secretsmanager:GetSecretValue", Target(f"{PARTIAL_SECRET}-other-Zx9Yw8"))
    repository = "arn:aws:ecr:ap-northeast-1:123456789012:repository/reports/builder"
    assert private.allows("ecr:BatchGetImage", Target(repository))
    assert not private.allows("ecr:BatchGetImage", Target(f"{repository}-other"))
    assert (
        container(stack, "private")["executionRoleArn"]
        == stack.one(ROLE, "jobs-job-private-execution-role").outputs["arn"]
    )
    assert not [r for r in stack.of_type(ROLE) if r.name == "jobs-job-nightly-report-execution-role"]
    for policy in (light, private):
        assert policy.wildcard_violations() == []


# -- schedules ------------------------------------------------------------------------------


def scheduled_call(run, job: str) -> Call:
    """The call the job's schedule makes, read from the schedule as deployed: its target's API and
    input, in botocore's names, with the resources it acts on resolved in moto."""
    target = run.one(SCHEDULE, f"jobs-job-{job}-schedule").inputs["target"]
    service, action = target["arn"].split(":")[-2:]
    assert service == "batch"
    model = operation(action[0].upper() + action[1:])
    params = sdk_parameters(model, json.loads(target["input"]))
    validate_parameters(params, model.input_shape)
    call = Call(f"batch:{model.name}", params, REGION)
    return Call(call.action, call.params, call.region, tuple(targets(call)))


def test_the_schedule_submits_the_latest_revision_on_the_configured_expression(stack):
    schedule = stack.one(SCHEDULE, "jobs-job-nightly-report-schedule").inputs
    assert (schedule["scheduleExpression"], schedule["scheduleExpressionTimezone"]) == (
        "cron(0 2 * * ? *)",
        "Asia/Tokyo",
    )
    assert schedule["flexibleTimeWindow"] == {"mode": "OFF"}
    assert schedule["target"]["arn"] == "arn:aws:scheduler:::aws-sdk:batch:submitJob"
    params = scheduled_call(stack, "nightly-report").params
    job_definition = definition(stack, "nightly-report").outputs
    assert params == {
        "jobName": "nightly-report",
        "jobQueue": stack.one(QUEUE, "jobs-queue").outputs["arn"],
        "jobDefinition": job_definition["arnPrefix"],  # no revision: the latest active one
    }
    assert job_definition["arn"] == f"{job_definition['arnPrefix']}:1"


def test_the_schedule_role_may_submit_that_job_to_that_queue_only(stack):
    role = stack.one(ROLE, "jobs-job-nightly-report-schedule-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert stack.one(SCHEDULE, "jobs-job-nightly-report-schedule").inputs["target"]["roleArn"] == role.outputs["arn"]
    policy = role_policy(stack.resources, role.id)
    call = scheduled_call(stack, "nightly-report")
    assert denied(policy, [call]) == []
    assert {a for s in policy.statements for a in s["Action"]} == {"batch:SubmitJob"}
    queue_arn, definition_arn = (target.arn for target in call.targets)
    other_queue = stack.one(QUEUE, "jobs-fargate-queue").outputs["arn"]
    other_definition = definition(stack, "light").outputs["arn"]
    assert not policy.allows("batch:SubmitJob", Target(other_queue))
    assert not policy.allows("batch:SubmitJob", Target(other_definition))
    assert policy.allows("batch:SubmitJob", Target(queue_arn)) and policy.allows(
        "batch:SubmitJob", Target(definition_arn)
    )


def submit_as_scheduled(run, job: str) -> dict[str, Any]:
    """Submit the job exactly as its schedule does, after checking the call against the schedule
    role's policy; the job as Batch describes it."""
    call = scheduled_call(run, job)
    policy = role_policy(run.resources, run.one(ROLE, f"jobs-job-{job}-schedule-role").id)
    assert denied(policy, [call]) == []
    batch = boto3.client("batch")
    job_id = batch.submit_job(**call.params)["jobId"]
    return batch.describe_jobs(jobs=[job_id])["jobs"][0]


def test_a_scheduled_submit_creates_a_job_in_the_queue(stack):
    submitted = submit_as_scheduled(stack, "nightly-report")
    queue = stack.one(QUEUE, "jobs-queue").outputs["arn"]
    listed = boto3.client("batch").list_jobs(
        jobQueue=queue, filters=[{"name": "JOB_NAME", "values": ["nightly-report"]}]
    )["jobSummaryList"]
    assert [j["jobId"] for j in listed] == [submitted["jobId"]]
    assert submitted["jobQueue"] == queue
    assert submitted["jobDefinition"] == definition(stack, "nightly-report").outputs["arn"]
    assert submitted["status"] == "SUCCEEDED"  # moto's Batch without Docker


def test_after_a_job_definition_change_the_schedule_submits_the_new_revision(stack):
    """A change registers a new revision under the same name (what the provider's Update does); the
    schedule, unchanged, submits it, and its role still may."""
    current = definition(stack, "nightly-report").outputs
    batch = boto3.client("batch")
    described = batch.describe_job_definitions(jobDefinitions=[current["arn"]])["jobDefinitions"][0]
    revised = copy.deepcopy(described["containerProperties"])
    revised["image"] = "public.ecr.aws/docker/library/python:3.13-slim"
    new = batch.register_job_definition(
        jobDefinitionName=described["jobDefinitionName"],
        type="container",
        containerProperties=revised,
        platformCapabilities=described["platformCapabilities"],
    )
    batch.deregister_job_definition(jobDefinition=current["arn"])  # deregister_on_new_revision
    submitted = submit_as_scheduled(stack, "nightly-report")
    assert new["revision"] == 2 and submitted["jobDefinition"] == new["jobDefinitionArn"]


# -- updates --------------------------------------------------------------------------------

# Inputs whose change replaces the resource for spotyard's compute environment (service-linked role,
# SPOT_PRICE_CAPACITY_OPTIMIZED: the in-place updatable kind): terraform-provider-aws
# internal/service/batch/compute_environment.go (ForceNew in the schema; CustomizeDiff forces the
# rest only when isUpdatableComputeEnvironment is false).
COMPUTE_FORCE_NEW = ("name", "namePrefix", "type", "eksConfiguration")
COMPUTE_RESOURCES_FORCE_NEW = ("ec2Configurations", "launchTemplate", "placementGroup", "spotIamFleetRole")


def routine_job_changes(config: dict) -> dict:
    config["spotyard:batch"] = {"instanceTypes": ["m7i", "c7i", "r7i"], "maxVcpus": 64}
    job = config["spotyard:jobs"]["nightly-report"]
    job.update(
        image="public.ecr.aws/docker/library/python:3.13-slim",
        command=["python", "-m", "report"],
        environment={"REPORT_MODE": "delta"},
        memoryMiB=4096,
        timeoutSeconds=1800,
        retries=2,
        schedule={"expression": "cron(30 3 * * ? *)", "timezone": "Europe/Berlin"},
    )
    return config


def test_routine_changes_replace_neither_the_compute_environment_nor_the_job_definition(deploy):
    before = deploy(dev_config())
    after = deploy(routine_job_changes(dev_config()), previous=before)
    renames = renames_between(before, after)
    old, new = before.one(COMPUTE, "jobs-compute"), after.one(COMPUTE, "jobs-compute")
    assert old.urn == new.urn
    for name in COMPUTE_FORCE_NEW:
        assert renames.translate(old.inputs.get(name)) == new.inputs.get(name), name
    for name in COMPUTE_RESOURCES_FORCE_NEW:
        assert renames.translate(old.inputs["computeResources"].get(name)) == new.inputs["computeResources"].get(
            name
        ), name
    assert new.inputs["computeResources"]["maxVcpus"] == 64  # updated in place
    # The job definition keeps its name (a new revision, not a new resource) and the schedule its input.
    # (name is its only force-new input: job_definition.go; autonamed, it stays with the URN.)
    old_definition, new_definition = definition(before, "nightly-report"), definition(after, "nightly-report")
    assert old_definition.urn == new_definition.urn and "name" not in new_definition.inputs
    old_target = before.one(SCHEDULE, "jobs-job-nightly-report-schedule").inputs["target"]
    new_target = after.one(SCHEDULE, "jobs-job-nightly-report-schedule").inputs["target"]
    assert renames.translate(old_target["input"]) == new_target["input"]


def test_a_stack_of_batch_jobs_alone_needs_no_fleet(deploy):
    config = {key: value for key, value in with_jobs().items() if key not in ("spotyard:fleets", "spotyard:dns")}
    config["spotyard:jobs"] = {name: job for name, job in config["spotyard:jobs"].items() if "image" in job}
    run = deploy(config)
    assert run.of_type("aws:batch/computeEnvironment:ComputeEnvironment")
    assert set(run.outputs["jobs"]) == set(config["spotyard:jobs"])
    assert run.outputs["fleets"] == {}
    # no instance of its own, so no interruption handler (Batch retries its reclaimed jobs)
    assert not [r for r in run.resources if r.type == "spotyard:index:InterruptionHandler"]
