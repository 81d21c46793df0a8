"""ResultsBucket: results are data. `pulumi destroy` keeps a created bucket by default and
empties and deletes it with `results.retainOnDestroy: false`; either way it succeeds with
objects in the bucket."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.conftest import dev_config
from tests.test_config import problems_of, with_fleet

BUCKET = "aws:s3/bucket:Bucket"


def _config(**results):
    config = dev_config()
    config["spotyard:fleets"]["workers"]["results"] = {"bucket": "create", **results}
    return config


def destroy(run, resource_name: str) -> str:
    """What `pulumi destroy` does to one bucket of `run`, against moto's S3 holding an object:
    nothing for a retained resource; else the provider's delete (terraform-provider-aws
    internal/service/s3/bucket.go: DeleteBucket, and on BucketNotEmpty with force_destroy, delete
    every object and retry). Returns what is left: "kept" or "deleted"."""
    bucket = run.one(BUCKET, resource_name)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket.id, CreateBucketConfiguration={"LocationConstraint": s3.meta.region_name})
    s3.put_object(Bucket=bucket.id, Key="run-1/output.csv", Body=b"results")
    if bucket.retain_on_delete:
        return "kept"
    try:
        s3.delete_bucket(Bucket=bucket.id)
    except ClientError as error:
        if error.response["Error"]["Code"] != "BucketNotEmpty" or not bucket.inputs.get("forceDestroy"):
            raise
        for found in s3.list_objects_v2(Bucket=bucket.id).get("Contents", []):
            s3.delete_object(Bucket=bucket.id, Key=found["Key"])
        s3.delete_bucket(Bucket=bucket.id)
    return "deleted"


def test_created_bucket_and_its_settings_are_retained_by_default(deploy):
    run = deploy(_config())
    component = run.one("spotyard:index:ResultsBucket", "workers-results")
    settings = [r for r in run.children(component) if r.type != "aws:iam/rolePolicy:RolePolicy"]
    assert {r.type.split(":")[-1] for r in settings} == {
        "Bucket",
        "BucketServerSideEncryptionConfiguration",
        "BucketPublicAccessBlock",
        "BucketOwnershipControls",
        "BucketPolicy",
    }
    assert all(r.retain_on_delete for r in settings)
    assert not run.one(BUCKET, "workers-results-bucket").inputs.get("forceDestroy")
    assert destroy(run, "workers-results-bucket") == "kept"


def test_retain_on_destroy_false_empties_and_deletes_the_bucket(deploy):
    run = deploy(_config(retainOnDestroy=False))
    component = run.one("spotyard:index:ResultsBucket", "workers-results")
    assert not any(r.retain_on_delete for r in run.children(component))
    assert run.one(BUCKET, "workers-results-bucket").inputs["forceDestroy"] is True
    assert destroy(run, "workers-results-bucket") == "deleted"
    with pytest.raises(ClientError, match="Not Found"):
        boto3.client("s3").head_bucket(Bucket=run.one(BUCKET, "workers-results-bucket").id)


@pytest.mark.parametrize(
    ("results", "text"),
    [
        ({"bucket": "create", "retainOnDestroy": "maybe"}, "must be true or false"),
        ({"bucket": "my-existing-results", "retainOnDestroy": False}, "applies only to bucket: create"),
    ],
)
def test_bad_retain_on_destroy_is_named_by_its_full_key(results, text):
    report = problems_of(with_fleet(results=results))
    assert f"- spotyard:fleets.box.results.retainOnDestroy: {text}" in report, report


WASABI = {
    "bucket": "nightly-results",
    "endpoint": "https://s3.eu-central-2.wasabisys.com",
    "region": "eu-central-2",
    "credentials": {"ssmParameter": "/spotyard/wasabi"},
}
HOME_CLUSTER = "arn:aws:iam::210987654321:role/home-cluster"


@pytest.mark.parametrize(
    ("results", "key", "text"),
    [
        ({**WASABI, "endpoint": "http://s3.wasabisys.com"}, "results.endpoint", "an https:// URL"),
        ({**WASABI, "bucket": "create"}, "results.endpoint", "needs the name of an existing bucket"),
        ({k: v for k, v in WASABI.items() if k != "credentials"}, "results.credentials", "is required with endpoint"),
        ({"bucket": "create", "credentials": {"secret": "keys"}}, "results.credentials", "applies only with endpoint"),
        ({**WASABI, "credentials": {}}, "results.credentials", "exactly one of ssmParameter and secret"),
        (
            {**WASABI, "credentials": {"ssmParameter": "/a", "secret": "b"}},
            "results.credentials",
            "exactly one of ssmParameter and secret",
        ),
        ({**WASABI, "credentials": {"ssmParameter": "no-slash"}}, "results.credentials.ssmParameter", "SSM parameter"),
        ({**WASABI, "credentials": {"accessKeyId": "AKIA"}}, "results.credentials.accessKeyId", "unknown key"),
        ({**WASABI, "region": "Europe Central"}, "results.region", "a region name"),
        ({"bucket": "create", "readers": ["home-cluster"]}, "results.readers[0]", "an IAM role, user or account ARN"),
        (
            {"bucket": "my-existing-results", "readers": [HOME_CLUSTER]},
            "results.readers",
            "applies only to bucket: create",
        ),
    ],
)
def test_bad_s3_compatible_or_readers_setting_is_named_by_its_full_key(results, key, text):
    report = problems_of(with_fleet(results=results))
    named = [line for line in report.splitlines() if line.startswith(f"  - spotyard:fleets.box.{key}: ")]
    assert any(text in line for line in named), report


def _bucket_policy(run) -> list[dict]:
    return json.loads(run.one("aws:s3/bucketPolicy:BucketPolicy", "workers-results-tls-only").inputs["policy"])[
        "Statement"
    ]


def test_readers_may_list_and_read_a_created_bucket_and_nothing_else(deploy):
    run = deploy(_config(readers=[HOME_CLUSTER]))
    statements = _bucket_policy(run)
    bucket_arn = run.one(BUCKET, "workers-results-bucket").outputs["arn"]
    allowed = [s for s in statements if s["Effect"] == "Allow"]
    assert {(s["Action"], s["Resource"]) for s in allowed} == {
        ("s3:ListBucket", bucket_arn),
        ("s3:GetObject", f"{bucket_arn}/*"),
    }
    assert all(s["Principal"] == {"AWS": [HOME_CLUSTER]} for s in allowed)
    (tls,) = [s for s in statements if s["Effect"] == "Deny"]  # TLS only, for the readers too
    assert tls["Principal"] == "*" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # Another account cannot decrypt with the AWS managed key: the bucket has its own, which the
    # readers may use to decrypt, through S3 only.
    key = run.one("aws:kms/key:Key", "workers-results-key")
    encryption = run.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "workers-results-encryption",
    )
    default = encryption.inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    assert default["kmsMasterKeyId"] == key.outputs["arn"]
    (readers,) = [s for s in json.loads(key.inputs["policy"])["Statement"] if s["Sid"] == "ReadersDecryptThroughS3"]
    assert readers["Action"] == "kms:Decrypt" and readers["Principal"] == {"AWS": [HOME_CLUSTER]}
    assert readers["Condition"] == {"StringEquals": {"kms:ViaService": "s3.ap-northeast-1.amazonaws.com"}}
    assert key.retain_on_delete  # the objects' key stays as long as the bucket does


def test_without_readers_the_bucket_policy_opens_nothing(deploy):
    run = deploy(_config())
    assert [s["Effect"] for s in _bucket_policy(run)] == ["Deny"]
    assert not run.of_type("aws:kms/key:Key") or all(
        r.name != "workers-results-key" for r in run.of_type("aws:kms/key:Key")
    )


@pytest.mark.parametrize(
    ("credentials", "action", "resource"),
    [
        (
            {"ssmParameter": "/spotyard/wasabi"},
            "ssm:GetParameter",
            "arn:aws:ssm:ap-northeast-1:123456789012:parameter/spotyard/wasabi",
        ),
        (
            {"secret": "wasabi-keys"},
            "secretsmanager:GetSecretValue",
            "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:wasabi-keys-??????",
        ),
    ],
)
def test_on_an_s3_compatible_service_the_instances_may_read_only_its_keys(deploy, credentials, action, resource):
    config = dev_config()
    config["spotyard:fleets"]["workers"]["results"] = {**WASABI, "credentials": credentials}
    run = deploy(config)
    assert [r.type for r in run.children(run.one("spotyard:index:ResultsBucket", "workers-results"))] == [
        "aws:iam/rolePolicy:RolePolicy"
    ]  # no AWS bucket: it is on the other service
    policy = json.loads(run.one("aws:iam/rolePolicy:RolePolicy", "workers-results-access").inputs["policy"])
    assert policy["Statement"] == [
        {"Sid": "ReadResultsKeys", "Effect": "Allow", "Action": [action], "Resource": resource}
    ]
    from tests.user_data import bootstrap

    script = bootstrap(run, "workers")
    assert "SPOTYARD_RESULTS_ENDPOINT=https://s3.eu-central-2.wasabisys.com" in script
    assert "SPOTYARD_RESULTS_BUCKET=nightly-results" in script
    kind = "ssm:/spotyard/wasabi" if "ssmParameter" in credentials else "secretsmanager:wasabi-keys"
    assert f"SPOTYARD_RESULTS_CREDENTIALS={kind}" in script
