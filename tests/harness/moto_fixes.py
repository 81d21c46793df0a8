"""Where moto's emulation differs from AWS in a way that matters to these tests, made to
behave as AWS does. Each fix names the difference.

Route 53 applies a change batch in order, as one transaction: `DELETE` of a record then
`CREATE` of the same name and type is the documented way to replace it (and the way the
registrar detects a concurrent writer), and a `CREATE` of a name and type that exists
fails. moto checks a `CREATE` against its journal of past changes and then against any
record sorting after the name, before applying the batch's `DELETE`s: a replace whose new
value equals an old one is rejected, and some creates of existing names pass. Here the
check is made as Route 53 makes it, in batch order.

EC2 CreateLaunchTemplateVersion takes the same base64 `UserData` as CreateLaunchTemplate.
moto parses it on CreateLaunchTemplate only; a version made by CreateLaunchTemplateVersion
keeps the raw text, and a launch from it fails moto's own assertion. Here both parse it.

IAM CreateServiceLinkedRole names the role after the service: AWS calls the roles of
spot.amazonaws.com and spotfleet.amazonaws.com AWSServiceRoleForEC2Spot and
AWSServiceRoleForEC2SpotFleet (EC2 user guide, "Spot Fleet permissions"); moto, lacking them
in its table of names, AWSServiceRoleForspot and AWSServiceRoleForspotfleet. Here the table has them.
"""

from __future__ import annotations

import functools
from unittest import mock

from moto.ec2.models.launch_templates import LaunchTemplate
from moto.ec2.utils import parse_user_data
from moto.iam import models as iam_models
from moto.route53.exceptions import ResourceRecordAlreadyExists
from moto.route53.models import ChangeList, Route53Backend


def _checked_in_batch_order(original):
    @functools.wraps(original)
    def change_resource_record_sets(self, zoneid, change_list):
        zone = self.get_hosted_zone(zoneid)
        existing = {(r.name.rstrip("."), r.type) for r in zone.rrsets}
        for change in change_list:
            record = change["ResourceRecordSet"]
            key = (record["Name"].rstrip("."), record["Type"])
            if change["Action"] == "DELETE":
                existing.discard(key)
            elif change["Action"] == "CREATE":
                if key in existing:
                    raise ResourceRecordAlreadyExists(name=f"{key[0]}.", _type=key[1])
                existing.add(key)
        with mock.patch.object(ChangeList, "__contains__", lambda journal, item: False):
            return original(self, zoneid, change_list)
    return change_resource_record_sets


def _user_data_parsed(original):
    @functools.wraps(original)
    def create_version(self, data, description):
        if isinstance(data.get("UserData"), str):
            data = {**data, "UserData": parse_user_data(data["UserData"])}
        return original(self, data, description)
    return create_version


def apply() -> None:
    iam_models.SERVICE_NAME_CONVERSION.update({"spot": "EC2Spot", "spotfleet": "EC2SpotFleet"})
    if not hasattr(LaunchTemplate.create_version, "__wrapped__"):
        LaunchTemplate.create_version = _user_data_parsed(LaunchTemplate.create_version)
    if not hasattr(Route53Backend.change_resource_record_sets, "__wrapped__"):
        Route53Backend.change_resource_record_sets = _checked_in_batch_order(Route53Backend.change_resource_record_sets)


# Differences the ssh and cost tests work around rather than fix (moto 5.2):
# - StateTransitionReason of a terminated instance ends "(YYYY-MM-DD HH:MM:SS UTC)"; AWS writes
#   "GMT". spotyard/cost.py reads both.
# - ec2-instance-connect SendSSHPublicKey always succeeds: no check that the instance runs, of
#   the OS user or the key. tests/test_ssh_command.py asserts what was sent instead.
# - DescribeSpotPriceHistory answers 0.00001 since 2006 for every type and zone, ignoring
#   StartTime, EndTime and AvailabilityZone; there is no Pricing API; Auto Scaling instances
#   of a mixed-instances group have an empty InstanceType. tests/test_cost.py answers the two
#   calls and sets the type.
