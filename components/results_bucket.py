"""ResultsBucket: the S3 bucket a fleet's instances (or Batch jobs) write their outputs to.

`bucket: create` makes an encrypted, private, TLS-only bucket; a bucket name reuses an
existing one. Either way the role named (a fleet's instance role) may list, read and write
objects there; `results_access` is that permission for other roles (Batch job roles).
Results are data: `pulumi destroy` keeps a created bucket, its objects and its settings
(retained) unless `retainOnDestroy: false`, which empties and deletes it instead.
"""

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.iam import allow, policy_document


@dataclass
class ResultsBucketArgs:
    bucket: str
    partition: str
    instance_role_name: pulumi.Input[str] | None = None  # None: no role gets access here
    retain_on_destroy: bool = True


class ResultsBucket(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ResultsBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotyard:index:ResultsBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if args.bucket == "create":
            # Either way `pulumi destroy` succeeds with objects in the bucket: a retained bucket
            # (and the settings that keep it private and encrypted) is only dropped from the state;
            # otherwise force_destroy lets the provider delete its objects first (S3 refuses to
            # delete a non-empty bucket: BucketNotEmpty). Both are read from the state at destroy,
            # so a change of retainOnDestroy needs a `pulumi up` first.
            kept = pulumi.ResourceOptions(parent=self, retain_on_delete=args.retain_on_destroy)
            bucket = aws.s3.Bucket(f"{name}-bucket", force_destroy=not args.retain_on_destroy, opts=kept)
            aws.s3.BucketServerSideEncryptionConfiguration(
                f"{name}-encryption",
                bucket=bucket.id,
                rules=[
                    aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                        apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                            sse_algorithm="aws:kms"
                        ),
                        bucket_key_enabled=True,
                    )
                ],
                opts=kept,
            )
            aws.s3.BucketPublicAccessBlock(
                f"{name}-private",
                bucket=bucket.id,
                block_public_acls=True,
                block_public_policy=True,
                ignore_public_acls=True,
                restrict_public_buckets=True,
                opts=kept,
            )
            aws.s3.BucketOwnershipControls(
                f"{name}-ownership",
                bucket=bucket.id,
                rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
                opts=kept,
            )
            aws.s3.BucketPolicy(
                f"{name}-tls-only",
                bucket=bucket.id,
                policy=policy_document(
                    [
                        {
                            "Sid": "DenyInsecureTransport",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [bucket.arn, bucket.arn.apply(lambda arn: f"{arn}/*")],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ]
                ),
                opts=kept,
            )
            self.bucket_name = bucket.id
            self.bucket_arn = bucket.arn
        else:
            self.bucket_name = pulumi.Output.from_input(args.bucket)
            self.bucket_arn = pulumi.Output.from_input(f"arn:{args.partition}:s3:::{args.bucket}")
        if args.instance_role_name is not None:
            aws.iam.RolePolicy(
                f"{name}-access",
                role=args.instance_role_name,
                policy=policy_document(results_access(self.bucket_arn)),
                opts=child,
            )
        self.register_outputs({"bucketName": self.bucket_name})


def results_access(bucket_arn: pulumi.Output[str]) -> list[dict]:
    """The statements that let a role list, read and write a results bucket's objects."""
    return [
        allow("ListResults", ["s3:ListBucket"], bucket_arn),
        allow(
            "ReadWriteResults",
            ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
            bucket_arn.apply(lambda arn: f"{arn}/*"),
        ),
    ]
