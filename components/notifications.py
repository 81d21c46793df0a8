"""Notifications: the stack's one SNS topic, encrypted with its own KMS key, that the
Lambdas publish to and the alarms alert on; optionally an e-mail subscription.

A customer-managed key, because CloudWatch alarms and EventBridge cannot publish to a topic
encrypted with the AWS-managed SNS key. Publishers need no KMS rights of their own: the
key lets this account's principals use it through SNS only.
"""

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from spotyard_lambda.names import stack_tag_value

from components.args import AccountArgs
from components.iam import policy_document


@dataclass
class NotificationsArgs:
    account: AccountArgs  # the key lets this account's principals publish through SNS
    email: str | None = None


class Notifications(pulumi.ComponentResource):
    topic_arn: pulumi.Output[str]

    def __init__(self, name: str, args: NotificationsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("spotyard:index:Notifications", name, None, opts)
        env = args.account
        child = pulumi.ResourceOptions(parent=self)
        use = ["kms:Decrypt", "kms:GenerateDataKey*"]
        key = aws.kms.Key(
            f"{name}-key",
            description=f"spotyard {stack_tag_value(pulumi.get_project(), pulumi.get_stack())} notifications",
            enable_key_rotation=True,
            deletion_window_in_days=7,
            policy=policy_document(
                [
                    {
                        "Sid": "AccountAdministers",
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:{env.partition}:iam::{env.account_id}:root"},
                        "Action": "kms:*",
                        "Resource": "*",
                    },
                    {
                        "Sid": "AlarmsAndEventsPublish",
                        "Effect": "Allow",
                        "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]},
                        "Action": use,
                        "Resource": "*",
                    },
                    {
                        "Sid": "AccountPublishesThroughSns",
                        "Effect": "Allow",
                        "Principal": {"AWS": "*"},
                        "Action": use,
                        "Resource": "*",
                        "Condition": {
                            "StringEquals": {
                                "kms:CallerAccount": env.account_id,
                                "kms:ViaService": f"sns.{env.region}.amazonaws.com",
                            }
                        },
                    },
                ]
            ),
            opts=child,
        )
        topic = aws.sns.Topic(f"{name}-topic", display_name="spotyard", kms_master_key_id=key.arn, opts=child)
        if args.email:
            aws.sns.TopicSubscription(
                f"{name}-email", topic=topic.arn, protocol="email", endpoint=args.email, opts=child
            )
        self.topic_arn = topic.arn
        self.register_outputs({"topicArn": self.topic_arn})
