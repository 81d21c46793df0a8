"""Fixtures: moto with fake credentials, the program under mocks, stack configurations."""

from __future__ import annotations

import copy
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
REGION = "ap-northeast-1"
# The CLI imports the Lambdas' shared package (installed beside it by `pip install -e .`).
sys.path.append(str(ROOT / "lambdas"))
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials so nothing can reach a real account."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def aws() -> Iterator[Any]:
    """moto, seeded with what an account has before spotyard: see tests/harness/world.py."""
    from moto import mock_aws

    from tests.harness import moto_fixes
    from tests.harness.world import World

    moto_fixes.apply()
    # moto's Batch without Docker: a submitted job succeeds at once (moto/batch_simple).
    with mock_aws(config={"batch": {"use_docker": False}}):
        yield World(REGION).seed()


def dev_config() -> dict[str, Any]:
    """The shipped Pulumi.dev.yaml, as the CLI would hand it to the program."""
    return yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]


@pytest.fixture
def deploy(aws) -> Callable[..., Any]:
    """Run the program against moto: deploy(config) -> StackRun."""
    from tests.harness.program import run_program

    def run(config: dict[str, Any], stack: str = "dev", **kwargs: Any):
        return run_program(copy.deepcopy(config), region=REGION, stack=stack, **kwargs)

    return run


@pytest.fixture(scope="module")
def iam_audit() -> Iterator[Any]:
    """Every Lambda call of this module's tests checked against its role; at the end, every
    action the role grants must have been exercised by one of them."""
    from tests.harness.iam import IamAudit

    audit = IamAudit()
    yield audit
    unexercised = {name: sorted(actions) for name, actions in audit.unexercised().items() if actions}
    assert not unexercised, f"granted but never exercised by this module's tests: {unexercised}"


@pytest.fixture
def lambda_of(iam_audit, tmp_path) -> Callable[..., Any]:
    """lambda_of(run, "dns") -> the deployed Lambda, invoked under the IAM audit."""
    from tests.harness.lambdas import deployed_lambda

    return lambda run, name: deployed_lambda(run, name, tmp_path, iam_audit)


def subscribe(topic_arn: str) -> Callable[[], list[dict[str, Any]]]:
    """An SQS queue subscribed to `topic_arn`; the returned function reads (and removes)
    what subscribers received so far: the SNS notifications as JSON."""
    import boto3

    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=f"inbox-{abs(hash(topic_arn))}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)

    def received() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return [json.loads(message["Body"]) for message in messages]

    return received
