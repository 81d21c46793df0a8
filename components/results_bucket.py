"""ResultsBucket: the S3 bucket a fleet's instances (or Batch jobs) write their outputs to.

`bucket: create` makes an encrypted, private, TLS-only bucket; a bucket name reuses an
existing one. Either way the role named (a fleet's instance role) may list, read and write
objects there; `results_access` is that permission for other roles (Batch job roles).
Results are data: `pulumi destroy` keeps a created bucket, its objects and its settings
(retained) unless `retainOnDestroy: false`, which empties and deletes it instead.
A created bucket may be read by `readers` (IAM principals, of this account or another), and
by nobody else. On an S3-compatible service (`credentials_arn`), no AWS bucket is involved:
the instance role may only read the parameter or secret that holds the service's keys.
"""

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.args import AccountArgs, as_args
from components.iam import allow, policy_document


@dataclass
class ResultsBucketArgs:
    bucket: str  # `create`, or an existing bucket's name
    account: AccountArgs  # with readers: the bucket's own KMS key is this account's
    instance_role_name: pulumi.Input[str] | None = None  # None: no role gets access here
    retain_on_destroy: bool | None = True
    readers: list[str] | None = field(
        default_factory=list
    )  # IAM principal ARNs that may list and read a created bucket
    credentials_arn: str | None = None  # an S3-compatible service's keys: SSM parameter or secret ARN


def credentials_arn(parameter: str | None, secret: str | None, account: AccountArgs) -> str | None:
    """The ARN of the SSM parameter or Secrets Manager secret named by `results.credentials`.
    A secret's ARN ends in a hyphen and six random characters that Secrets Manager adds to its
    name (Secrets Manager API reference, SecretId): `-??????` matches them."""
    if parameter:
        if parameter.startswith("arn:"):
            return parameter
        return account.arn("ssm", f"parameter/{parameter.lstrip('/')}")
    if secret:
        if secret.startswith("arn:"):
            return secret
        return account.arn("secretsmanager", f"secret:{secret}-??????")
    return None


class ResultsBucket(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ResultsBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotyard:index:ResultsBucket", name, None, opts)
        args = as_args(ResultsBucketArgs, args)
        child = pulumi.ResourceOptions(parent=self)
        if args.credentials_arn is not None:
            if args.instance_role_name is None:
                raise pulumi.RunError(f"{name}: a bucket on an S3-compatible service is for a fleet's instances")
            self.bucket_name = pulumi.Output.from_input(args.bucket)
            reads_keys = ["ssm:GetParameter"] if ":ssm:" in args.credentials_arn else ["secretsmanager:GetSecretValue"]
            aws.iam.RolePolicy(
                f"{name}-access",
                role=args.instance_role_name,
                policy=policy_document([allow("ReadResultsKeys", reads_keys, args.credentials_arn)]),
                opts=child,
            )
            self.register_outputs({"bucketName": self.bucket_name})
            return
        if args.bucket == "create":
            # Either way `pulumi destroy` succeeds with objects in the bucket: a retained bucket
            # (and the settings that keep it private and encrypted) is only dropped from the state;
            # otherwise force_destroy lets the provider delete its objects first (S3 refuses to
            # delete a non-empty bucket: BucketNotEmpty). Both are read from the state at destroy,
            # so a change of retainOnDestroy needs a `pulumi up` first.
            kept = pulumi.ResourceOptions(parent=self, retain_on_delete=args.retain_on_destroy)
            bucket = aws.s3.Bucket(f"{name}-bucket", force_destroy=not args.retain_on_destroy, opts=kept)
            # The AWS managed key aws/s3 cannot be shared with another account (its key policy is AWS's
            # and cannot be edited: https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-key),
            # so a bucket with readers gets a key of its own that they may decrypt with, through S3 only.
            key = self._readers_key(name, args, kept) if args.readers else None
            aws.s3.BucketServerSideEncryptionConfiguration(
                f"{name}-encryption",
                bucket=bucket.id,
                rules=[
                    aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                        apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                            sse_algorithm="aws:kms", kms_master_key_id=key.arn if key else None
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
                        },
                        *_reader_statements(args.readers, bucket.arn),
                    ]
                ),
                opts=kept,
            )
            self.bucket_name = bucket.id
            self.bucket_arn = bucket.arn
        else:
            self.bucket_name = pulumi.Output.from_input(args.bucket)
            self.bucket_arn = pulumi.Output.from_input(args.account.arn("s3", args.bucket, region=False, account=False))
        if args.instance_role_name is not None:
            aws.iam.RolePolicy(
                f"{name}-access",
                role=args.instance_role_name,
                policy=policy_document(results_access(self.bucket_arn)),
                opts=child,
            )
        self.register_outputs({"bucketName": self.bucket_name})

    def _readers_key(self, name: str, args: ResultsBucketArgs, opts: pulumi.ResourceOptions) -> aws.kms.Key:
        """The bucket's key: this account administers it and uses it through S3 (the instances
        write with it), the readers decrypt with it through S3, and nobody uses it directly."""
        through_s3 = f"s3.{args.account.region}.amazonaws.com"
        return aws.kms.Key(
            f"{name}-key",
            description=f"spotyard results bucket {name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=policy_document(
                [
                    {
                        "Sid": "AccountAdministers",
                        "Effect": "Allow",
                        "Principal": {"AWS": args.account.arn("iam", "root", region=False)},
                        "Action": "kms:*",
                        "Resource": "*",
                    },
                    {
                        "Sid": "AccountWritesThroughS3",
                        "Effect": "Allow",
                        "Principal": {"AWS": "*"},
                        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                        "Resource": "*",
                        "Condition": {
                            "StringEquals": {"kms:CallerAccount": args.account.account_id, "kms:ViaService": through_s3}
                        },
                    },
                    {
                        "Sid": "ReadersDecryptThroughS3",
                        "Effect": "Allow",
                        "Principal": {"AWS": args.readers},
                        "Action": "kms:Decrypt",
                        "Resource": "*",
                        "Condition": {"StringEquals": {"kms:ViaService": through_s3}},
                    },
                ]
            ),
            opts=opts,
        )


def _reader_statements(readers: list[str], bucket_arn: pulumi.Output[str]) -> list[dict]:
    """The readers may list the bucket and get its objects; nothing else is opened."""
    if not readers:
        return []
    return [
        {
            "Sid": "ReadersList",
            "Effect": "Allow",
            "Principal": {"AWS": readers},
            "Action": "s3:ListBucket",
            "Resource": bucket_arn,
        },
        {
            "Sid": "ReadersRead",
            "Effect": "Allow",
            "Principal": {"AWS": readers},
            "Action": "s3:GetObject",
            "Resource": bucket_arn.apply(lambda arn: f"{arn}/*"),
        },
    ]


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
