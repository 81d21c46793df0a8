"""EC2 as moto emulates it, made to behave as AWS does, and the differences the tests work
around rather than fix (at the end).

EC2 CreateLaunchTemplateVersion takes the same base64 `UserData` as CreateLaunchTemplate.
moto parses it on CreateLaunchTemplate only; a version made by CreateLaunchTemplateVersion
keeps the raw text, and a launch from it fails moto's own assertion. Here both parse it.

Spot Fleet keeps a request's ExcessCapacityTerminationPolicy (`noTermination` | `default`, API
reference, ModifySpotFleetRequest) until a later request changes it. moto forgets it, treats a
missing one as terminating, and compares against "Default", so the API's `default` never
terminates. Here the policy is the request's, spelled as the API spells it.

EC2 CreateImage tags the snapshots it creates with the `snapshot` tag specification
("The same tag is applied to all of the snapshots that are created", CreateImage API
reference, https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateImage.html);
moto raises NotImplementedError for it. Here the image is created without it and its
snapshot tagged after, as AWS would have tagged it.
"""

from __future__ import annotations

import functools

from moto.core.responses import ActionResult
from moto.ec2.exceptions import InvalidParameterValueError
from moto.ec2.models.amis import AmiBackend
from moto.ec2.models.launch_templates import LaunchTemplate
from moto.ec2.responses.spot_fleets import SpotFleets
from moto.ec2.utils import parse_user_data


def _user_data_parsed(original):
    @functools.wraps(original)
    def create_version(self, data, description):
        if isinstance(data.get("UserData"), str):
            data = {**data, "UserData": parse_user_data(data["UserData"])}
        return original(self, data, description)

    return create_version


def _sticky_termination_policy(self):
    """SpotFleets.modify_spot_fleet_request, with the request's own termination policy."""
    request_id = self._get_param("SpotFleetRequestId")
    request = self.ec2_backend.get_spot_fleet_request(request_id)
    sent = self._get_param("ExcessCapacityTerminationPolicy")
    if sent is not None:
        if sent not in ("noTermination", "default"):
            raise InvalidParameterValueError(sent)
        request.excess_capacity_termination_policy = sent
    policy = getattr(request, "excess_capacity_termination_policy", "default")
    self.ec2_backend.modify_spot_fleet_request(
        request_id, self._get_int_param("TargetCapacity"), "Default" if policy == "default" else policy
    )
    return ActionResult({"Return": True})


def _snapshots_tagged_on_create(original):
    @functools.wraps(original)
    def create_image(self, instance_id, name, description, tag_specifications):
        snapshot_tags = [
            tag for spec in tag_specifications if spec["ResourceType"] == "snapshot" for tag in spec["Tags"]
        ]
        image = original(
            self,
            instance_id,
            name,
            description,
            [spec for spec in tag_specifications if spec["ResourceType"] != "snapshot"],
        )
        for tag in snapshot_tags:
            image.ebs_snapshot.add_tag(tag["Key"], tag["Value"])
        return image

    return create_image


def apply() -> None:
    if not hasattr(LaunchTemplate.create_version, "__wrapped__"):
        LaunchTemplate.create_version = _user_data_parsed(LaunchTemplate.create_version)
        SpotFleets.modify_spot_fleet_request = _sticky_termination_policy
        AmiBackend.create_image = _snapshots_tagged_on_create(AmiBackend.create_image)


# Differences the ssh and cost tests work around rather than fix (moto 5.2):
# - StateTransitionReason of a terminated instance ends "(YYYY-MM-DD HH:MM:SS UTC)"; AWS writes
#   "GMT". spotyard/cost.py reads both.
# - ec2-instance-connect SendSSHPublicKey always succeeds: no check that the instance runs, of
#   the OS user or the key. tests/test_ssh_command.py asserts what was sent instead.
# - DescribeSpotPriceHistory answers 0.00001 since 2006 for every type and zone, ignoring
#   StartTime, EndTime and AvailabilityZone; there is no Pricing API; Auto Scaling instances
#   of a mixed-instances group have an empty InstanceType. tests/test_cost.py answers the two
#   calls and sets the type.
