"""ResultsBucket: results are data. `pulumi destroy` keeps a created bucket by default and
empties and deletes it with `results.retainOnDestroy: false`; either way it succeeds with
objects in the bucket."""

from __future__ import annotations

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
