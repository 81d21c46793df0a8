"""`spotyard-job` on a fleet box (instance/spotyard_job.py), tested on the instance side like the
idle agent: a real command, a fake IMDSv2 on 127.0.0.1, the instance role checked against every
AWS call, and an S3-compatible service (the Wasabi of the README's example) emulated by moto's
server on localhost. Its event then goes through the stack's own rule to the job reporter."""

from __future__ import annotations

import importlib.util
import json
import shlex
import socket
import sys

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests import events
from tests.agent import agent  # loads spotyard_agent, which spotyard_job imports
from tests.conftest import REGION, ROOT, dev_config, subscribe
from tests.harness.iam import CallRecorder, denied, role_policy
from tests.shell import check_shell
from tests.test_interruption_watcher import FakeImds
from tests.test_job_alerts import alarm, crossed, deliver, statistic_now
from tests.user_data import bootstrap

_spec = importlib.util.spec_from_file_location("spotyard_job", ROOT / "instance" / "spotyard_job.py")
spotyard_job = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = spotyard_job
_spec.loader.exec_module(spotyard_job)

KEYS = {"accessKeyId": "wasabi-access", "secretAccessKey": "wasabi-secret"}
RESULTS = {
    "bucket": "nightly-results",
    "endpoint": "https://s3.eu-central-2.wasabisys.com",
    "region": "eu-central-2",
    "credentials": {"ssmParameter": "/spotyard/wasabi"},
}


@pytest.fixture
def wasabi():
    """An S3-compatible endpoint on 127.0.0.1 (moto's server), holding the results bucket."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=url,
        region_name="eu-central-2",
        aws_access_key_id=KEYS["accessKeyId"],
        aws_secret_access_key=KEYS["secretAccessKey"],
    )
    client.create_bucket(Bucket=RESULTS["bucket"], CreateBucketConfiguration={"LocationConstraint": "eu-central-2"})
    yield url, client
    server.stop()


@pytest.fixture
def stack(deploy):
    config = dev_config()
    config["spotyard:fleets"]["workers"]["results"] = RESULTS
    config["spotyard:jobs"]["nightly"] = {"fleet": "workers", "alerts": {"afterFailures": 2, "successWithinHours": 26}}
    boto3.client("ssm").put_parameter(Name="/spotyard/wasabi", Value=json.dumps(KEYS), Type="SecureString")
    return deploy(config)


@pytest.fixture
def imds():
    server = FakeImds()
    yield server
    server.shutdown()


class Box:
    """One workers instance as the bootstrap set it up: /etc/spotyard/env from its user data,
    its id from IMDS, its AWS calls recorded for the IAM check."""

    def __init__(self, run, aws, imds, endpoint: str) -> None:
        request = run.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").id
        template = run.one("aws:ec2/launchTemplate:LaunchTemplate", "workers-template").id
        self.run, self.request = run, request
        self.instance, self.other = sorted(aws.scale_spot_fleet(request, 2, template))
        imds.instance_id = self.instance
        script = bootstrap(run, "workers")
        lines = script.split("cat > /etc/spotyard/env <<'SPOTYARD_EOF'\n")[1].split("\nSPOTYARD_EOF")[0]
        self.env = {
            key: (shlex.split(value) or [""])[0]
            for key, _, value in (line.partition("=") for line in lines.splitlines())
        }
        # The stack names Wasabi's endpoint; here moto's server stands in for it.
        assert self.env["SPOTYARD_RESULTS_ENDPOINT"] == RESULTS["endpoint"]
        self.env["SPOTYARD_RESULTS_ENDPOINT"] = endpoint
        self.recorder = CallRecorder()
        self.session = self.recorder.attach(boto3.session.Session(region_name=REGION))
        self.imds = imds

    def job(self, tmp_path, script: str, **options) -> tuple[int, dict]:
        before = len(self.recorder.calls)
        code = spotyard_job.job(
            "nightly",
            ["bash", "-c", script],
            env=self.env,
            instance=agent.instance_id(self.imds.url),  # from the fake IMDSv2
            session=self.session,
            log_dir=tmp_path / "log",
            state_dir=tmp_path / "run",
            **options,
        )
        (put,) = [c for c in self.recorder.calls[before:] if c.action == "events:PutEvents"]
        return code, put.params["Entries"][0]

    def refused(self) -> list[str]:
        role = self.run.one("aws:iam/role:Role", "workers-instance-role").outputs["name"]
        return denied(role_policy(self.run.resources, role), self.recorder.calls)


@pytest.fixture
def box(stack, aws, imds, wasabi):
    return Box(stack, aws, imds, wasabi[0])


def objects(client) -> dict[str, bytes]:
    listed = client.list_objects_v2(Bucket=RESULTS["bucket"]).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=RESULTS["bucket"], Key=o["Key"])["Body"].read() for o in listed}


def test_a_failed_run_uploads_reports_once_and_stops_the_box(stack, box, wasabi, tmp_path, lambda_of):
    out = tmp_path / "out"
    inbox = subscribe(stack.outputs["notificationTopicArn"])
    code, entry = box.job(
        tmp_path,
        f"echo scraping batch 1; mkdir -p {out}/batches; echo a,b > {out}/batches/1.csv; exit 3",
        results=out,
        stop_when_done=True,
    )
    assert code == 3
    stored = objects(wasabi[1])
    (prefix,) = {key.rsplit("/", 2)[0] for key in stored if key.endswith("/1.csv")}
    assert stored[f"{prefix}/batches/1.csv"] == b"a,b\n"
    assert b"scraping batch 1" in stored[f"{prefix}/spotyard-job.log"]
    detail = json.loads(entry["Detail"])
    assert entry["Source"] == "spotyard.job" and entry["DetailType"] == "spotyard Job Run Finished"
    assert detail | {"runId": "", "startedAt": "", "stoppedAt": "", "durationSeconds": 0} == {
        "stack": "spotyard/dev",
        "job": "nightly",
        "runId": "",
        "status": "FAILED",
        "reason": "exit status 3",
        "exitCode": 3,
        "startedAt": "",
        "stoppedAt": "",
        "durationSeconds": 0,
        "fleet": "workers",
        "instanceId": box.instance,
        "log": f"{wasabi[0]}/{RESULTS['bucket']}/{prefix}/spotyard-job.log",
    }
    # --stop-when-done: left the fleet like the idle stop (target lowered, instance terminated).
    ec2 = boto3.client("ec2")
    request = ec2.describe_spot_fleet_requests(SpotFleetRequestIds=[box.request])["SpotFleetRequestConfigs"][0]
    assert request["SpotFleetRequestConfig"]["TargetCapacity"] == 1
    state = ec2.describe_instances(InstanceIds=[box.instance])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "terminated"
    assert box.refused() == []  # the keys' parameter, PutEvents (its source only), leaving its own fleet
    # The box reports like a Batch job: through the stack's own rule, one notification.
    reporter = lambda_of(stack, "job-alerts-reporter")
    (result,) = deliver(stack, reporter, events.delivered(entry, region=REGION))
    assert result["streak"] == 1
    (message,) = inbox()
    assert "job: nightly" in message["Message"] and "reason: exit status 3" in message["Message"]
    assert f"where: fleet workers, instance {box.instance}" in message["Message"]
    assert f"log: {detail['log']}" in message["Message"]


def test_two_failed_nights_cross_the_alarm_a_success_resets_the_streak(stack, box, tmp_path, lambda_of):
    reporter = lambda_of(stack, "job-alerts-reporter")
    definition = alarm(stack, "failed-in-a-row", job="nightly")
    for _ in range(2):
        _, entry = box.job(tmp_path, "exit 1")
        deliver(stack, reporter, events.delivered(entry, region=REGION))
    assert crossed(definition, statistic_now(definition))
    code, entry = box.job(tmp_path, "echo done")
    assert code == 0 and json.loads(entry["Detail"])["status"] == "SUCCEEDED"
    (result,) = deliver(stack, reporter, events.delivered(entry, region=REGION))
    assert result["streak"] == 0 and result["succeeded"] is True


def test_the_box_is_busy_while_the_job_runs(stack, box, tmp_path):
    """The idle check counts the job (a low-CPU job is not stopped mid-run); on this fleet,
    which works a queue, the autoscaler's scale-in leaves the box too (the busy tag)."""
    before = len(box.recorder.calls)
    count = tmp_path / "run" / "busy.json"
    code, entry = box.job(tmp_path, f"grep -q '\"jobs\": 1' {count}")
    assert code == 0 and json.loads(entry["Detail"])["status"] == "SUCCEEDED"  # it saw itself counted
    assert agent.busy_jobs(tmp_path / "run") == 0  # and the count is back once it ended
    marks = [c.action for c in box.recorder.calls[before:] if c.action in ("ec2:CreateTags", "ec2:DeleteTags")]
    assert marks == ["ec2:CreateTags", "ec2:DeleteTags"]
    assert box.refused() == []


def test_a_run_whose_results_cannot_be_uploaded_fails(stack, box, tmp_path):
    box.env["SPOTYARD_RESULTS_BUCKET"] = "no-such-bucket"
    code, entry = box.job(tmp_path, "true", results=tmp_path)
    detail = json.loads(entry["Detail"])
    assert code == 1 and detail["status"] == "FAILED" and detail["reason"].startswith("results upload failed")


def test_spotyard_job_is_installed_and_its_wrapper_passes_shellcheck(stack, tmp_path):
    script = bootstrap(stack, "workers")
    assert "cat > /usr/local/bin/spotyard-job <<'SPOTYARD_EOF'" in script
    assert "cat > /usr/local/lib/spotyard/spotyard_job.py <<'SPOTYARD_EOF'" in script
    check_shell((ROOT / "instance" / "spotyard-job").read_text(), tmp_path, "spotyard-job")


def test_its_event_names_are_the_reporters(stack):
    from spotyard_lambda import names

    assert (spotyard_job.JOB_EVENT_SOURCE, spotyard_job.JOB_EVENT_DETAIL_TYPE) == (
        names.JOB_EVENT_SOURCE,
        names.JOB_EVENT_DETAIL_TYPE,
    )
