"""Pulumi mocks backed by moto: the program's invokes read moto, and the resources the
Lambdas and the CLI act on (launch templates, groups, Spot Fleet requests, zones, queues,
topics, parameters, Batch compute environments, job queues and job definitions, schedules) are created
in moto with the inputs the program gave them, so a Lambda run afterwards finds exactly what
`pulumi up` would have made. Other resources get deterministic ids and ARNs."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable
from typing import Any

import boto3
import pulumi

from tests.harness.redeploy import Renames, decoded_user_data, identities

ACCOUNT = "123456789012"


def autoname(name: str, deployment: int = 0) -> str:
    """Like Pulumi's autonaming: the logical name and a suffix, deterministic per deployment."""
    return f"{name}-{hashlib.sha1(f'{deployment}/{name}'.encode()).hexdigest()[:7]}"


def _attribute(value: Any) -> str:
    """SQS attribute text for a Pulumi input value (numbers arrive as floats)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return str(int(value))
    return str(value)


def _reveal(value: Any) -> Any:
    """Inputs with secrets (e.g. an SSM parameter's value) unwrapped, as the provider sees them."""
    if isinstance(value, dict):
        if value.get(pulumi.runtime.rpc._special_sig_key) == pulumi.runtime.rpc._special_secret_sig:
            return _reveal(value["value"])
        return {key: _reveal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_reveal(item) for item in value]
    return value


def _tags(mapping: dict[str, str] | None) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in (mapping or {}).items()]


class _Created:
    """What `identities` reads of a resource this deployment just made."""

    def __init__(self, resource_id: str, outputs: dict) -> None:
        self.id, self.outputs = resource_id, outputs


class MotoCloud(pulumi.runtime.Mocks):
    deployments = itertools.count()

    def __init__(self, region: str, previous: list[Any] | None = None) -> None:
        """`previous`: the resources of the deployment this one updates (a second `pulumi up`)."""
        self.region = region
        self.deployment = next(MotoCloud.deployments)
        self.default_tags: dict[str, str] = {}
        self._previous = {(r.type, r.name): r for r in previous or []}
        self.renames = Renames()
        self._provisioners: dict[str, Callable[[str, dict], tuple[str, dict]]] = {
            "aws:ec2/securityGroup:SecurityGroup": self._security_group,
            "aws:ec2/launchTemplate:LaunchTemplate": self._launch_template,
            "aws:autoscaling/group:Group": self._auto_scaling_group,
            "aws:ec2/spotFleetRequest:SpotFleetRequest": self._spot_fleet_request,
            "aws:route53/zone:Zone": self._hosted_zone,
            "aws:sqs/queue:Queue": self._queue,
            "aws:sns/topic:Topic": self._topic,
            "aws:ssm/parameter:Parameter": self._parameter,
            "aws:batch/computeEnvironment:ComputeEnvironment": self._compute_environment,
            "aws:batch/jobQueue:JobQueue": self._job_queue,
            "aws:batch/jobDefinition:JobDefinition": self._job_definition,
            "aws:scheduler/scheduleGroup:ScheduleGroup": self._schedule_group,
            "aws:scheduler/schedule:Schedule": self._schedule,
            "aws:ecs/cluster:Cluster": self._ecs_cluster,
            "aws:ecs/capacityProvider:CapacityProvider": self._capacity_provider,
            "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders": self._cluster_capacity_providers,
            "aws:ecs/taskDefinition:TaskDefinition": self._task_definition,
            "aws:ecs/service:Service": self._ecs_service,
            "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace": self._dns_namespace,
            "aws:servicediscovery/service:Service": self._discovery_service,
        }
        self._calls: dict[str, Callable[[dict], dict]] = {
            "aws:index/getCallerIdentity:getCallerIdentity": lambda a: {
                "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:user/moto",
                "userId": "moto",
                "id": ACCOUNT,
            },
            "aws:index/getRegion:getRegion": lambda a: {"name": self.region, "region": self.region, "id": self.region},
            "aws:index/getPartition:getPartition": lambda a: {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "id": "aws",
            },
            "aws:ec2/getVpc:getVpc": self._get_vpc,
            "aws:ec2/getSubnets:getSubnets": self._get_subnets,
            "aws:ec2/getSubnet:getSubnet": self._get_subnet,
            "aws:ec2/getAmiIds:getAmiIds": self._get_ami_ids,
            "aws:ec2/getAmi:getAmi": self._get_ami,
            "aws:ssm/getParameter:getParameter": self._get_parameter,
            "aws:ssm/getParametersByPath:getParametersByPath": self._get_parameters_by_path,
            "aws:lb/getTargetGroup:getTargetGroup": self._get_target_group,
            "aws:route53/getZone:getZone": self._get_zone,
            "aws:iam/getRoles:getRoles": self._get_roles,
            "aws:autoscaling/getGroup:getGroup": self._get_group,
        }

    def autoname(self, name: str) -> str:
        return autoname(name, self.deployment)

    def client(self, service: str):
        return boto3.client(service, region_name=self.region)

    # -- invokes ---------------------------------------------------------------------------

    def call(self, args: pulumi.runtime.MockCallArgs):
        handler = self._calls.get(args.token)
        if handler is None:
            raise NotImplementedError(f"the test cloud does not answer {args.token}")
        return handler(args.args)

    def _get_vpc(self, a: dict) -> dict:
        filters = [{"Name": "is-default", "Values": ["true"]}] if a.get("default") else []
        ids = [a["id"]] if a.get("id") else []
        vpc = self.client("ec2").describe_vpcs(VpcIds=ids, Filters=filters)["Vpcs"][0]
        return {"id": vpc["VpcId"], "cidrBlock": vpc["CidrBlock"], "default": vpc.get("IsDefault", False)}

    def _get_subnets(self, a: dict) -> dict:
        filters = [{"Name": f["name"], "Values": f["values"]} for f in a.get("filters", [])]
        subnets = self.client("ec2").describe_subnets(Filters=filters)["Subnets"]
        return {"ids": [s["SubnetId"] for s in subnets], "id": self.region}

    def _get_subnet(self, a: dict) -> dict:
        subnet = self.client("ec2").describe_subnets(SubnetIds=[a["id"]])["Subnets"][0]
        return {
            "id": subnet["SubnetId"],
            "vpcId": subnet["VpcId"],
            "cidrBlock": subnet["CidrBlock"],
            "availabilityZone": subnet["AvailabilityZone"],
        }

    def _get_group(self, a: dict) -> dict:
        group = self.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[a["name"]])
        found = group["AutoScalingGroups"][0]
        return {
            "id": found["AutoScalingGroupName"],
            "name": found["AutoScalingGroupName"],
            "arn": found["AutoScalingGroupARN"],
            "minSize": found["MinSize"],
            "maxSize": found["MaxSize"],
            "desiredCapacity": found["DesiredCapacity"],
            "vpcZoneIdentifier": found["VPCZoneIdentifier"],  # comma-separated, as the provider returns it
        }

    def _images(self, a: dict) -> list[dict]:
        filters = [{"Name": f["name"], "Values": f["values"]} for f in a.get("filters", [])]
        images = self.client("ec2").describe_images(Owners=a.get("owners", []), Filters=filters)["Images"]
        return sorted(images, key=lambda i: i["CreationDate"], reverse=not a.get("sortAscending", False))

    def _get_ami_ids(self, a: dict) -> dict:
        return {"ids": [image["ImageId"] for image in self._images(a)], "id": self.region}

    def _get_ami(self, a: dict) -> dict:
        images = self._images(a)
        if not images:
            raise Exception("Your query returned no results. Please change your search criteria and try again.")
        image = images[0]
        return {
            "id": image["ImageId"],
            "imageId": image["ImageId"],
            "architecture": image["Architecture"],
            "rootDeviceName": image["RootDeviceName"],
            "name": image["Name"],
            "tags": {t["Key"]: t["Value"] for t in image.get("Tags", [])},
        }

    def _get_parameter(self, a: dict) -> dict:
        parameter = self.client("ssm").get_parameter(Name=a["name"])["Parameter"]
        return {
            "id": parameter["Name"],
            "name": parameter["Name"],
            "value": parameter["Value"],
            "type": parameter["Type"],
            "arn": parameter["ARN"],
        }

    def _get_parameters_by_path(self, a: dict) -> dict:
        found = self.client("ssm").get_parameters_by_path(Path=a["path"])["Parameters"]
        return {
            "id": a["path"],
            "path": a["path"],
            "names": [p["Name"] for p in found],
            "values": [p["Value"] for p in found],
            "types": [p["Type"] for p in found],
            "arns": [p["ARN"] for p in found],
        }

    def _get_target_group(self, a: dict) -> dict:
        elb = self.client("elbv2")
        group = elb.describe_target_groups(TargetGroupArns=[a["arn"]])["TargetGroups"][0]
        attributes = {
            x["Key"]: x["Value"] for x in elb.describe_target_group_attributes(TargetGroupArn=a["arn"])["Attributes"]
        }
        return {
            "id": group["TargetGroupArn"],
            "arn": group["TargetGroupArn"],
            "name": group["TargetGroupName"],
            "targetType": group["TargetType"],
            "vpcId": group["VpcId"],
            "deregistrationDelay": attributes["deregistration_delay.timeout_seconds"],
        }

    def _get_roles(self, a: dict) -> dict:
        pages = self.client("iam").get_paginator("list_roles").paginate(PathPrefix=a.get("pathPrefix") or "/")
        roles = [r for page in pages for r in page["Roles"] if re.search(a.get("nameRegex") or "", r["RoleName"])]
        return {"id": self.region, "names": [r["RoleName"] for r in roles], "arns": [r["Arn"] for r in roles]}

    def _get_zone(self, a: dict) -> dict:
        zone = self.client("route53").get_hosted_zone(Id=a["zoneId"])["HostedZone"]
        return {"id": a["zoneId"], "zoneId": a["zoneId"], "name": zone["Name"].rstrip(".")}

    # -- resources -------------------------------------------------------------------------

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        if args.typ == "pulumi:providers:aws":
            raw = args.inputs.get("defaultTags")
            self.default_tags = (json.loads(raw) if isinstance(raw, str) else raw or {}).get("tags", {})
            return "aws-provider", {}
        if not args.custom:
            return "", {}
        inputs = _reveal(args.inputs)
        provision = self._provisioners.get(args.typ)
        resource_id, outputs = (
            provision(args.name, inputs) if provision else self._synthesized(args.typ, args.name, inputs)
        )
        if (before := self._previous.get((args.typ, args.name))) is not None:
            self.renames.learn(identities(before), identities(_Created(resource_id, outputs)))
        return resource_id, outputs

    def _all_tags(self, inputs: dict) -> dict[str, str]:
        return {**self.default_tags, **(inputs.get("tags") or {})}

    # Id prefixes and ARN formats of the synthesized resources tests look at.
    _ID_PREFIX = {"FileSystem": "fs", "AccessPoint": "fsap", "MountTarget": "fsmt"}
    _ARN = {
        "Role": "arn:aws:iam::{account}:role/{name}",
        "InstanceProfile": "arn:aws:iam::{account}:instance-profile/{name}",
        "Function": "arn:aws:lambda:{region}:{account}:function:{name}",
        "LogGroup": "arn:aws:logs:{region}:{account}:log-group:{name}",
        "EventRule": "arn:aws:events:{region}:{account}:rule/{name}",
        "Bucket": "arn:aws:s3:::{name}",
        "FileSystem": "arn:aws:elasticfilesystem:{region}:{account}:file-system/{id}",
        "AccessPoint": "arn:aws:elasticfilesystem:{region}:{account}:access-point/{id}",
        "Key": "arn:aws:kms:{region}:{account}:key/{id}",
    }
    _NAMED = {"Role", "InstanceProfile", "Function", "LogGroup", "EventRule", "Bucket"}

    def _synthesized(self, typ: str, name: str, inputs: dict) -> tuple[str, dict]:
        physical = inputs.get("name") or self.autoname(name)
        service, kind = typ.split(":")[1].split("/")[0], typ.split(":")[2]
        digest = hashlib.sha1(self.autoname(name).encode()).hexdigest()
        resource_id = physical if kind in self._NAMED else f"{self._ID_PREFIX.get(kind, kind.lower())}-{digest[:17]}"
        arn = self._ARN.get(kind, f"arn:aws:{service}:{{region}}:{{account}}:{kind.lower()}/{{id}}").format(
            account=ACCOUNT, region=self.region, name=physical, id=resource_id
        )
        return resource_id, {**inputs, "name": physical, "arn": arn, "tagsAll": self._all_tags(inputs)}

    def _security_group(self, name: str, inputs: dict) -> tuple[str, dict]:
        physical = self.autoname(name)
        group_id = self.client("ec2").create_security_group(
            GroupName=physical,
            Description=inputs.get("description", "x"),
            VpcId=inputs["vpcId"],
            TagSpecifications=[{"ResourceType": "security-group", "Tags": _tags(self._all_tags(inputs))}],
        )["GroupId"]
        return group_id, {
            **inputs,
            "name": physical,
            "arn": f"arn:aws:ec2:{self.region}:{ACCOUNT}:security-group/{group_id}",
        }

    def _launch_template(self, name: str, inputs: dict) -> tuple[str, dict]:
        physical = self.autoname(name)
        data: dict[str, Any] = {
            "SecurityGroupIds": inputs.get("vpcSecurityGroupIds", []),
            "TagSpecifications": [
                {"ResourceType": spec["resourceType"], "Tags": _tags(spec["tags"])}
                for spec in inputs.get("tagSpecifications", [])
            ],
            "MetadataOptions": {"HttpTokens": inputs["metadataOptions"]["httpTokens"]},
        }
        if inputs.get("imageId"):  # none in a Batch template: Batch picks the AMI
            data["ImageId"] = inputs["imageId"]
        if inputs.get("userData"):
            data["UserData"] = inputs["userData"]
        template = self.client("ec2").create_launch_template(LaunchTemplateName=physical, LaunchTemplateData=data)[
            "LaunchTemplate"
        ]
        template_id = template["LaunchTemplateId"]
        version = self._template_version(name, inputs)
        for _ in range(1, version):  # the versions the updates before this one made
            self.client("ec2").create_launch_template_version(LaunchTemplateId=template_id, LaunchTemplateData=data)
        return template_id, {
            **inputs,
            "name": physical,
            "latestVersion": version,
            "defaultVersion": version,
            "arn": f"arn:aws:ec2:{self.region}:{ACCOUNT}:launch-template/{template_id}",
        }

    def _template_version(self, name: str, inputs: dict) -> int:
        """1 at creation; on an update, the provider adds a version when the template's data changed
        (terraform-provider-aws internal/service/ec2/ec2_launch_template.go: Update calls
        CreateLaunchTemplateVersion), and the template keeps its id."""
        before = self._previous.get(("aws:ec2/launchTemplate:LaunchTemplate", name))
        if before is None:
            return 1
        changed = self.renames.translate(decoded_user_data(_reveal(before.inputs))) != decoded_user_data(inputs)
        return int(before.outputs["latestVersion"]) + changed

    def _auto_scaling_group(self, name: str, inputs: dict) -> tuple[str, dict]:
        physical = self.autoname(name)
        policy = inputs["mixedInstancesPolicy"]
        distribution = policy["instancesDistribution"]
        spec = policy["launchTemplate"]["launchTemplateSpecification"]
        client = self.client("autoscaling")
        client.create_auto_scaling_group(
            AutoScalingGroupName=physical,
            MinSize=int(inputs["minSize"]),
            MaxSize=int(inputs["maxSize"]),
            DesiredCapacity=int(inputs["desiredCapacity"]),
            VPCZoneIdentifier=",".join(inputs["vpcZoneIdentifiers"]),
            TargetGroupARNs=inputs.get("targetGroupArns", []),
            CapacityRebalance=inputs.get("capacityRebalance", False),
            MixedInstancesPolicy={
                "LaunchTemplate": {
                    "LaunchTemplateSpecification": {
                        "LaunchTemplateId": spec["launchTemplateId"],
                        "Version": str(spec["version"]),
                    },
                    "Overrides": [{"InstanceType": o["instanceType"]} for o in policy["launchTemplate"]["overrides"]],
                },
                "InstancesDistribution": {
                    "OnDemandBaseCapacity": int(distribution["onDemandBaseCapacity"]),
                    "OnDemandPercentageAboveBaseCapacity": int(distribution["onDemandPercentageAboveBaseCapacity"]),
                    "SpotAllocationStrategy": distribution["spotAllocationStrategy"],
                },
            },
            Tags=[
                {
                    "Key": t["key"],
                    "Value": t["value"],
                    "PropagateAtLaunch": t["propagateAtLaunch"],
                    "ResourceId": physical,
                    "ResourceType": "auto-scaling-group",
                }
                for t in inputs.get("tags", [])
            ],
        )
        group = client.describe_auto_scaling_groups(AutoScalingGroupNames=[physical])["AutoScalingGroups"][0]
        return physical, {**inputs, "name": physical, "arn": group["AutoScalingGroupARN"]}

    def _spot_fleet_request(self, name: str, inputs: dict) -> tuple[str, dict]:
        configs = [
            {
                "LaunchTemplateSpecification": {
                    "LaunchTemplateId": c["launchTemplateSpecification"]["id"],
                    "Version": str(c["launchTemplateSpecification"]["version"]),
                },
                "Overrides": [{"InstanceType": o["instanceType"], "SubnetId": o["subnetId"]} for o in c["overrides"]],
            }
            for c in inputs["launchTemplateConfigs"]
        ]
        request: dict[str, Any] = {
            "IamFleetRole": inputs["iamFleetRole"],
            "TargetCapacity": int(inputs["targetCapacity"]),
            "OnDemandTargetCapacity": int(inputs.get("onDemandTargetCapacity", 0)),
            "AllocationStrategy": inputs["allocationStrategy"],
            "Type": inputs["fleetType"],
            "ExcessCapacityTerminationPolicy": inputs["excessCapacityTerminationPolicy"],
            "LaunchTemplateConfigs": configs,
            "TagSpecifications": [{"ResourceType": "spot-fleet-request", "Tags": _tags(self._all_tags(inputs))}],
        }
        if inputs.get("targetGroupArns"):
            request["LoadBalancersConfig"] = {
                "TargetGroupsConfig": {"TargetGroups": [{"Arn": arn} for arn in inputs["targetGroupArns"]]}
            }
        request_id = self.client("ec2").request_spot_fleet(SpotFleetRequestConfig=request)["SpotFleetRequestId"]
        return request_id, {**inputs, "tagsAll": self._all_tags(inputs)}

    def _hosted_zone(self, name: str, inputs: dict) -> tuple[str, dict]:
        vpc = inputs["vpcs"][0]
        zone = self.client("route53").create_hosted_zone(
            Name=inputs["name"],
            CallerReference=self.autoname(name),
            HostedZoneConfig={"PrivateZone": True, "Comment": inputs.get("comment", "")},
            VPC={"VPCRegion": vpc.get("vpcRegion", self.region), "VPCId": vpc["vpcId"]},
        )["HostedZone"]
        zone_id = zone["Id"].split("/")[-1]
        return zone_id, {**inputs, "zoneId": zone_id, "arn": f"arn:aws:route53:::hostedzone/{zone_id}"}

    def _queue(self, name: str, inputs: dict) -> tuple[str, dict]:
        physical = inputs.get("name") or self.autoname(name)
        attribute_names = {
            "visibilityTimeoutSeconds": "VisibilityTimeout",
            "receiveWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
            "messageRetentionSeconds": "MessageRetentionPeriod",
            "redrivePolicy": "RedrivePolicy",
            "sqsManagedSseEnabled": "SqsManagedSseEnabled",
        }
        attributes = {aws_name: _attribute(inputs[key]) for key, aws_name in attribute_names.items() if key in inputs}
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=physical, Attributes=attributes, tags=self._all_tags(inputs))["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, {**inputs, "name": physical, "url": url, "arn": arn}

    def _topic(self, name: str, inputs: dict) -> tuple[str, dict]:
        physical = inputs.get("name") or self.autoname(name)
        attributes = {"KmsMasterKeyId": inputs["kmsMasterKeyId"]} if inputs.get("kmsMasterKeyId") else {}
        arn = self.client("sns").create_topic(Name=physical, Attributes=attributes, Tags=_tags(self._all_tags(inputs)))[
            "TopicArn"
        ]
        return arn, {**inputs, "name": physical, "arn": arn}

    def _parameter(self, name: str, inputs: dict) -> tuple[str, dict]:
        self.client("ssm").put_parameter(
            Name=inputs["name"],
            Value=inputs["value"],
            Type=inputs.get("type", "String"),
            DataType=inputs.get("dataType", "text"),
            Overwrite=True,
        )
        arn = f"arn:aws:ssm:{self.region}:{ACCOUNT}:parameter{inputs['name']}"
        return inputs["name"], {**inputs, "arn": arn}

    # -- Batch -----------------------------------------------------------------------------

    def _compute_environment(self, name: str, inputs: dict) -> tuple[str, dict]:
        physical = inputs.get("name") or self.autoname(name)
        resources = dict(inputs["computeResources"])
        if "instanceRole" in resources:
            # IAM is synthesized, not in moto; Batch checks that the instance profile exists.
            profile = resources["instanceRole"].rsplit("/", 1)[-1]
            iam = self.client("iam")
            if not any(p["InstanceProfileName"] == profile for p in iam.list_instance_profiles()["InstanceProfiles"]):
                iam.create_instance_profile(InstanceProfileName=profile)
        arn = self.client("batch").create_compute_environment(
            computeEnvironmentName=physical,
            type=inputs["type"],
            computeResources=_compute_resources(resources),
            tags=self._all_tags(inputs),
        )["computeEnvironmentArn"]
        return physical, {**inputs, "name": physical, "arn": arn}

    def _job_queue(self, name: str, inputs: dict) -> tuple[str, dict]:
        physical = inputs.get("name") or self.autoname(name)
        arn = self.client("batch").create_job_queue(
            jobQueueName=physical,
            state=inputs["state"],
            priority=int(inputs["priority"]),
            computeEnvironmentOrder=[
                {"order": int(order["order"]), "computeEnvironment": order["computeEnvironment"]}
                for order in inputs["computeEnvironmentOrders"]
            ],
            tags=self._all_tags(inputs),
        )["jobQueueArn"]
        return arn, {**inputs, "name": physical, "arn": arn}

    def _job_definition(self, name: str, inputs: dict) -> tuple[str, dict]:
        physical = inputs.get("name") or self.autoname(name)
        retry = inputs.get("retryStrategy") or {}
        registered = self.client("batch").register_job_definition(
            jobDefinitionName=physical,
            type=inputs["type"],
            containerProperties=json.loads(inputs["containerProperties"]),
            platformCapabilities=inputs.get("platformCapabilities", []),
            retryStrategy={
                "attempts": int(retry["attempts"]),
                "evaluateOnExit": [dict(entry) for entry in retry.get("evaluateOnExits", [])],
            }
            if retry
            else {},
            timeout={"attemptDurationSeconds": int(inputs["timeout"]["attemptDurationSeconds"])}
            if inputs.get("timeout")
            else {},
            propagateTags=bool(inputs.get("propagateTags")),
            tags=self._all_tags(inputs),
        )
        arn = registered["jobDefinitionArn"]
        return arn, {
            **inputs,
            "name": physical,
            "arn": arn,
            "arnPrefix": arn.rsplit(":", 1)[0],
            "revision": registered["revision"],
        }

    # -- EventBridge Scheduler ---------------------------------------------------------------

    def _schedule_group(self, name: str, inputs: dict) -> tuple[str, dict]:
        physical = inputs.get("name") or self.autoname(name)
        arn = self.client("scheduler").create_schedule_group(Name=physical, Tags=_tags(self._all_tags(inputs)))[
            "ScheduleGroupArn"
        ]
        return physical, {**inputs, "name": physical, "arn": arn}

    def _schedule(self, name: str, inputs: dict) -> tuple[str, dict]:
        physical = inputs.get("name") or self.autoname(name)
        group = inputs.get("groupName") or "default"
        target = inputs["target"]
        retry = target.get("retryPolicy") or {}
        arn = self.client("scheduler").create_schedule(
            Name=physical,
            GroupName=group,
            ScheduleExpression=inputs["scheduleExpression"],
            ScheduleExpressionTimezone=inputs.get("scheduleExpressionTimezone", "UTC"),
            FlexibleTimeWindow={"Mode": inputs["flexibleTimeWindow"]["mode"]},
            State=inputs.get("state", "ENABLED"),
            Target={
                "Arn": target["arn"],
                "RoleArn": target["roleArn"],
                **({"Input": target["input"]} if "input" in target else {}),
                **(
                    {
                        "RetryPolicy": {
                            "MaximumEventAgeInSeconds": int(retry["maximumEventAgeInSeconds"]),
                            "MaximumRetryAttempts": int(retry["maximumRetryAttempts"]),
                        }
                    }
                    if retry
                    else {}
                ),
            },
        )["ScheduleArn"]
        # The provider's id: <group>/<name> (terraform-provider-aws internal/service/scheduler/schedule.go).
        return f"{group}/{physical}", {**inputs, "name": physical, "groupName": group, "arn": arn}

    # -- ECS and Cloud Map: what `spotyard:services` makes, so that container instances registered
    # in a test get the service's tasks (tests/harness/moto_fixes/ecs.py schedules them).

    def _ecs_cluster(self, name: str, inputs: dict) -> tuple[str, dict]:
        physical = inputs.get("name") or self.autoname(name)
        arn = self.client("ecs").create_cluster(clusterName=physical, tags=_ecs_tags(self._all_tags(inputs)))[
            "cluster"
        ]["clusterArn"]
        return arn, {**inputs, "name": physical, "arn": arn}

    def _capacity_provider(self, name: str, inputs: dict) -> tuple[str, dict]:
        physical = inputs.get("name") or self.autoname(name)
        provider = inputs["autoScalingGroupProvider"]
        scaling = provider["managedScaling"]
        arn = self.client("ecs").create_capacity_provider(
            name=physical,
            autoScalingGroupProvider={
                "autoScalingGroupArn": provider["autoScalingGroupArn"],
                "managedScaling": {
                    "status": scaling["status"],
                    "targetCapacity": int(scaling["targetCapacity"]),
                    "minimumScalingStepSize": int(scaling["minimumScalingStepSize"]),
                    "maximumScalingStepSize": int(scaling["maximumScalingStepSize"]),
                },
                "managedTerminationProtection": provider["managedTerminationProtection"],
            },
        )["capacityProvider"]["capacityProviderArn"]
        return arn, {**inputs, "name": physical, "arn": arn}

    def _cluster_capacity_providers(self, name: str, inputs: dict) -> tuple[str, dict]:
        self.client("ecs").put_cluster_capacity_providers(
            cluster=inputs["clusterName"],
            capacityProviders=inputs["capacityProviders"],
            defaultCapacityProviderStrategy=[
                {"capacityProvider": s["capacityProvider"], "weight": int(s.get("weight", 0))}
                for s in inputs.get("defaultCapacityProviderStrategies", [])
            ],
        )
        return inputs["clusterName"], inputs

    def _task_definition(self, name: str, inputs: dict) -> tuple[str, dict]:
        definition = self.client("ecs").register_task_definition(
            family=inputs["family"],
            containerDefinitions=json.loads(inputs["containerDefinitions"]),
            networkMode=inputs["networkMode"],
            requiresCompatibilities=inputs["requiresCompatibilities"],
            executionRoleArn=inputs["executionRoleArn"],
            taskRoleArn=inputs["taskRoleArn"],
        )["taskDefinition"]
        return inputs["family"], {
            **inputs,
            "arn": definition["taskDefinitionArn"],
            "revision": definition["revision"],
        }

    def _ecs_service(self, name: str, inputs: dict) -> tuple[str, dict]:
        physical = inputs.get("name") or self.autoname(name)
        request: dict[str, Any] = {
            "cluster": inputs["cluster"],
            "serviceName": physical,
            "taskDefinition": inputs["taskDefinition"],
            "schedulingStrategy": inputs.get("schedulingStrategy", "REPLICA"),
            "tags": _ecs_tags(self._all_tags(inputs)),
        }
        if request["schedulingStrategy"] == "REPLICA":
            request["desiredCount"] = int(inputs["desiredCount"])
        if inputs.get("launchType"):
            request["launchType"] = inputs["launchType"]
        service = self.client("ecs").create_service(**request)["service"]
        return service["serviceArn"], {**inputs, "name": physical}

    def _dns_namespace(self, name: str, inputs: dict) -> tuple[str, dict]:
        """Kept when it exists: Cloud Map refuses a second namespace of the same name in a VPC
        (ConflictingDomainExists), and a second deployment here stands for an update."""
        discovery = self.client("servicediscovery")
        if not self._namespace(inputs["name"]):
            discovery.create_private_dns_namespace(Name=inputs["name"], Vpc=inputs["vpc"])
        namespace = self._namespace(inputs["name"])
        return namespace["Id"], {**inputs, "arn": namespace["Arn"]}

    def _namespace(self, name: str) -> dict | None:
        found = [n for n in self.client("servicediscovery").list_namespaces()["Namespaces"] if n["Name"] == name]
        return found[0] if found else None

    def _discovery_service(self, name: str, inputs: dict) -> tuple[str, dict]:
        dns = inputs["dnsConfig"]
        discovery = self.client("servicediscovery")
        existing = [
            s
            for s in discovery.list_services()["Services"]
            if s["Name"] == inputs["name"] and s.get("NamespaceId", dns["namespaceId"]) == dns["namespaceId"]
        ]
        service = (
            existing[0]
            if existing
            else discovery.create_service(
                Name=inputs["name"],
                NamespaceId=dns["namespaceId"],
                DnsConfig={
                    "RoutingPolicy": dns["routingPolicy"],
                    "DnsRecords": [{"Type": r["type"], "TTL": int(r["ttl"])} for r in dns["dnsRecords"]],
                },
                HealthCheckCustomConfig={},
            )["Service"]
        )
        return service["Id"], {**inputs, "arn": service["Arn"]}


def _compute_resources(given: dict) -> dict:
    """The provider's compute_resources as CreateComputeEnvironment takes them (botocore's ComputeResource)."""
    spelled = {"minVcpus": "minvCpus", "maxVcpus": "maxvCpus", "ec2Configurations": "ec2Configuration"}
    taken = {
        "type",
        "allocationStrategy",
        "minVcpus",
        "maxVcpus",
        "instanceTypes",
        "subnets",
        "securityGroupIds",
        "instanceRole",
        "tags",
        "launchTemplate",
        "ec2Configurations",
    }
    resources = {spelled.get(key, key): value for key, value in given.items() if key in taken}
    for key in ("minvCpus", "maxvCpus"):
        if key in resources:
            resources[key] = int(resources[key])
    return resources


def _ecs_tags(mapping: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in mapping.items()]
