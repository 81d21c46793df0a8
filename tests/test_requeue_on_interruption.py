"""Jobs of an interrupted worker go back to the queue at once: `spotyard-busy --receipt-handle`
keeps the handle of the message a job holds on record, and the interruption hook's `requeue`
makes those messages visible again, against moto's SQS with the instance role's IAM check."""

from __future__ import annotations

import json
import os
import subprocess

import boto3
import pytest

from stack.bootstrap import INSTANCE_DIR
from tests.agent import OnInstance, agent
from tests.conftest import dev_config
from tests.shell import check_shell
from tests.user_data import bootstrap

HOOK = INSTANCE_DIR / "requeue-on-interruption.sh"


@pytest.mark.parametrize(
    ("job", "environ", "expected"),
    [
        (["--receipt-handle", "AQEB1", "--", "./job.sh", "x"], {}, ("AQEB1", ["./job.sh", "x"])),
        (["--receipt-handle", "AQEB1", "./job.sh"], {"SPOTYARD_RECEIPT_HANDLE": "other"}, ("AQEB1", ["./job.sh"])),
        (
            ["./job.sh", "--receipt-handle"],
            {"SPOTYARD_RECEIPT_HANDLE": "AQEB2"},
            ("AQEB2", ["./job.sh", "--receipt-handle"]),
        ),
        (["--", "./job.sh"], {}, (None, ["./job.sh"])),
    ],
)
def test_the_receipt_handle_comes_from_the_option_or_the_environment(job, environ, expected):
    assert agent.receipt_handle_of(job, environ) == expected


def test_a_handle_is_on_record_only_while_its_job_runs_however_it_ends(tmp_path):
    with agent.holding("AQEB1", tmp_path):
        (record,) = (tmp_path / "held").glob("*.handle")
        assert record.read_text() == "AQEB1"
    assert list((tmp_path / "held").glob("*.handle")) == []
    with pytest.raises(SystemExit), agent.holding("AQEB2", tmp_path):
        raise SystemExit(143)  # how `busy` ends a job the instance TERMs
    assert list((tmp_path / "held").glob("*.handle")) == []
    with agent.holding(None, tmp_path):  # a job without a message: nothing on record
        assert list((tmp_path / "held").glob("*.handle")) == []


@pytest.fixture
def stack(deploy):
    return deploy(dev_config())


def receive(url: str, count: int) -> list[dict]:
    return (
        boto3.client("sqs")
        .receive_message(QueueUrl=url, MaxNumberOfMessages=count, WaitTimeSeconds=0)
        .get("Messages", [])
    )


def test_requeue_makes_the_held_messages_visible_at_once(stack, aws, tmp_path):
    url = stack.outputs["fleets"]["workers"]["queueUrl"]
    sqs = boto3.client("sqs")
    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": json.dumps({"job": i})} for i in range(3)]
    )
    taken = receive(url, 3)
    assert len(taken) == 3 and receive(url, 3) == []  # in flight, hidden for the visibility timeout (600 s)
    request = stack.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").id
    template = stack.one("aws:ec2/launchTemplate:LaunchTemplate", "workers-template").id
    (instance,) = aws.scale_spot_fleet(request, 1, template)
    worker = OnInstance(stack, "workers", "spot-fleet", instance)
    env = {"SPOTYARD_QUEUE_URL": url}
    with agent.holding(taken[0]["ReceiptHandle"], tmp_path), agent.holding(taken[1]["ReceiptHandle"], tmp_path):
        # two jobs running on the interrupted worker; the third message's job ended elsewhere
        assert agent.requeue(env, worker.fleet.session, tmp_path) == 2
        back = receive(url, 3)
        assert sorted(m["Body"] for m in back) == sorted(m["Body"] for m in taken[:2])
        assert {c.action for c in worker.recorder.calls} == {"sqs:ChangeMessageVisibility"}
        assert worker.refused() == []  # the instance role may change visibility on its own queue
        for message in back:  # another worker took them and finished
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        assert agent.requeue(env, worker.fleet.session, tmp_path) == 0  # stale handles: refused, not fatal


def test_requeue_without_a_held_job_or_a_queue_calls_nothing(stack, aws, tmp_path):
    worker = OnInstance(stack, "workers", "spot-fleet", "i-0123456789abcdef0")
    assert agent.requeue({"SPOTYARD_QUEUE_URL": "https://sqs/x"}, worker.fleet.session, tmp_path) == 0
    with agent.holding("AQEB1", tmp_path):
        assert agent.requeue({"SPOTYARD_QUEUE_URL": ""}, worker.fleet.session, tmp_path) == 0
    assert worker.recorder.calls == []


def run_hook(tmp_path, notice: str) -> list[str]:
    """The hook as the watcher runs it, with a python3 on PATH that records its arguments."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    log = tmp_path / "python3.log"
    (fake / "python3").write_text(f'#!/bin/bash\necho "$@" >> {log}\n')
    (fake / "python3").chmod(0o755)
    env = {"PATH": f"{fake}:{os.environ['PATH']}", "SPOTYARD_NOTICE": notice}
    subprocess.run(["bash", str(HOOK)], env=env, check=True)
    return log.read_text().splitlines() if log.exists() else []


def test_the_hook_requeues_on_an_interruption_only(tmp_path):
    assert run_hook(tmp_path, "rebalance") == []
    assert run_hook(tmp_path, "interruption") == ["/usr/local/lib/spotyard/spotyard_agent.py requeue"]
    check_shell(HOOK.read_text(), tmp_path, "50-spotyard-requeue")


def test_every_instance_gets_the_hook_in_the_watchers_directory(stack):
    script = bootstrap(stack, "workers")
    assert "cat > /etc/spotyard/on-interruption.d/50-spotyard-requeue <<'SPOTYARD_EOF'" in script
    assert "chmod 0755 /etc/spotyard/on-interruption.d/50-spotyard-requeue" in script
