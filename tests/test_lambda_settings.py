"""What the stack tells each Lambda (lambdas/spotyard_lambda/settings.py): the settings the
program writes under mocks, read back by the Lambda's own reader into its dataclass, say
what the configuration and the stack's resources say; a renamed, missing or mistyped field
fails the reader."""

from __future__ import annotations

import dataclasses
import json

import pytest
from spotyard_lambda import settings
from spotyard_lambda.dns import Zone
from spotyard_lambda.names import DEFAULT_TTL_SECONDS

from tests.test_image_keeper import saving_workbench_config

FUNCTIONS = {
    "workers-jobs-autoscaler": settings.QueueAutoscalerSettings,
    "interruptions-lambda": settings.InterruptionHandlerSettings,
    "images-lambda": settings.ImageKeeperSettings,
    "dns-lambda": settings.DnsRegistrarSettings,
    "job-alerts-reporter": settings.JobReporterSettings,
}


@pytest.fixture
def config(aws):
    """The image keeper tests' config: every Lambda of the sample config, and the image keeper."""
    return saving_workbench_config(aws)


@pytest.fixture
def stack(deploy, config):
    return deploy(config)


def environment(stack, function: str) -> dict[str, str]:
    return dict(stack.one("aws:lambda/function:Function", f"{function}-function").inputs["environment"]["variables"])


def read(stack, function: str):
    return FUNCTIONS[function].from_environment(environment(stack, function))


def test_each_lambda_is_told_its_stack_its_settings_and_at_most_its_topic(stack):
    for function in FUNCTIONS:
        told = set(environment(stack, function))
        assert (
            {settings.STACK_VARIABLE, settings.SETTINGS_VARIABLE}
            <= told
            <= {settings.STACK_VARIABLE, settings.SETTINGS_VARIABLE, settings.TOPIC_VARIABLE}
        ), function
        assert read(stack, function).stack == "spotyard/dev"


def test_the_queue_autoscaler_reads_its_fleet_queue_and_policy(stack, config):
    fleet = config["spotyard:fleets"]["workers"]
    told = read(stack, "workers-jobs-autoscaler")
    assert (told.fleet, told.engine) == ("workers", "spot-fleet")
    assert told.capacity_target == stack.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").id
    assert told.queue_url == stack.one("aws:sqs/queue:Queue", "workers-jobs-queue").outputs["url"]
    assert told.state_parameter == stack.one("aws:ssm/parameter:Parameter", "workers-jobs-state").inputs["name"]
    assert (told.min_capacity, told.max_capacity) == (fleet.get("minCapacity", 0), fleet["maxCapacity"])
    assert told.messages_per_instance == fleet["queue"]["messagesPerInstance"]
    assert told.on_demand_fallback is fleet["onDemandFallback"]
    assert told.boot_seconds > 0 and told.scale_in_cooldown_seconds > 0


def test_the_interruption_handler_reads_each_fleet_and_the_zone(stack, config):
    told = read(stack, "interruptions-lambda")
    assert set(told.fleets) == set(config["spotyard:fleets"])
    for name, fleet in config["spotyard:fleets"].items():
        interruption = fleet["interruption"]
        assert (told.fleets[name].decrement_capacity, told.fleets[name].on_rebalance) == (
            interruption["decrementCapacity"],
            interruption["onRebalance"],
        ), name
    assert told.fleets["workbench"] == settings.InterruptedFleet(
        engine="asg",
        capacity_target=stack.one("aws:autoscaling/group:Group", "workbench-group").outputs["name"],
        decrement_capacity=False,
        on_rebalance=told.fleets["workbench"].on_rebalance,
        target_groups=(),
        image_role_tag="workbench",
    )
    assert told.fleets["workers"].image_role_tag is None
    zone = stack.one("aws:route53/zone:Zone", "dns-zone")
    assert told.zone == Zone(id=zone.outputs["zoneId"], name=zone.inputs["name"], ttl=DEFAULT_TTL_SECONDS)


def test_the_job_reporter_reads_each_jobs_record_definition_and_the_queues(stack):
    told = read(stack, "job-alerts-reporter")
    batch = stack.outputs["jobs"]["nightly-report"]
    assert told.jobs == {
        "nightly-report": settings.ReportedJob(
            runs_parameter="/spotyard/dev/jobs/nightly-report/runs",
            batch_job_definition=batch["jobDefinitionName"],
        )
    }
    assert told.job_queues == (batch["jobQueueArn"],)


def test_the_image_keeper_reads_each_kept_fleets_parameter_template_and_keep(stack):
    told = read(stack, "images-lambda")
    assert told.fleets == {
        "workbench": settings.KeptFleet(
            parameter=stack.one("aws:ssm/parameter:Parameter", "workbench-ami").inputs["name"],
            launch_template_id=stack.one("aws:ec2/launchTemplate:LaunchTemplate", "workbench-template").id,
            image_role_tag="workbench",
            keep=2,
        )
    }


def test_the_dns_registrar_reads_the_fleets_and_its_paced_zone(stack, config):
    told = read(stack, "dns-lambda")
    assert told.fleets == {name: settings.NamedFleet(elastic_ip=None) for name in config["spotyard:fleets"]}
    assert told.zone.id == stack.one("aws:route53/zone:Zone", "dns-zone").outputs["zoneId"]
    assert told.zone.requests_per_second > 0


@pytest.mark.parametrize("function", FUNCTIONS)
def test_what_is_written_reads_back_equal(stack, function):
    told = read(stack, function)
    assert (
        type(told).from_environment({settings.STACK_VARIABLE: told.stack, settings.SETTINGS_VARIABLE: told.encode()})
        == told
    )


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_renamed_or_missing_field_fails_the_reader(stack, function):
    env = environment(stack, function)
    written = json.loads(env[settings.SETTINGS_VARIABLE])
    name = next(f.name for f in dataclasses.fields(FUNCTIONS[function]) if f.name in written)
    renamed = {("renamed" if key == name else key): value for key, value in written.items()}
    with pytest.raises(settings.InvalidSettings, match="renamed"):
        FUNCTIONS[function].from_environment({**env, settings.SETTINGS_VARIABLE: json.dumps(renamed)})
    missing = {key: value for key, value in written.items() if key != name}
    with pytest.raises(settings.InvalidSettings, match=name):
        FUNCTIONS[function].from_environment({**env, settings.SETTINGS_VARIABLE: json.dumps(missing)})


def test_a_mistyped_field_fails_the_reader(stack):
    env = environment(stack, "workers-jobs-autoscaler")
    written = json.loads(env[settings.SETTINGS_VARIABLE])
    for field, wrong in (("on_demand_fallback", "true"), ("max_capacity", "4"), ("fleet", None)):
        with pytest.raises(settings.InvalidSettings, match=field):
            settings.QueueAutoscalerSettings.from_environment(
                {**env, settings.SETTINGS_VARIABLE: json.dumps({**written, field: wrong})}
            )
