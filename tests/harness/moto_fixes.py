"""Where moto's emulation differs from AWS in a way that matters to these tests, made to
behave as AWS does. Each fix names the difference.

Route 53 applies a change batch in order, as one transaction: `DELETE` of a record then
`CREATE` of the same name and type is the documented way to replace it (and the way the
registrar detects a concurrent writer), and a `CREATE` of a name and type that exists
fails. moto checks a `CREATE` against its journal of past changes and then against any
record sorting after the name, before applying the batch's `DELETE`s: a replace whose new
value equals an old one is rejected, and some creates of existing names pass. Here the
check is made as Route 53 makes it, in batch order.

EC2 CreateImage tags the snapshots it creates with the `snapshot` tag specification
("The same tag is applied to all of the snapshots that are created", CreateImage API
reference, https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateImage.html);
moto raises NotImplementedError for it. Here the image is created without it and its
snapshot tagged after, as AWS would have tagged it.
"""

from __future__ import annotations

import functools
from unittest import mock

from moto.ec2.models.amis import AmiBackend
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


def _snapshots_tagged_on_create(original):
    @functools.wraps(original)
    def create_image(self, instance_id, name, description, tag_specifications):
        snapshot_tags = [tag for spec in tag_specifications if spec["ResourceType"] == "snapshot"
                         for tag in spec["Tags"]]
        image = original(self, instance_id, name, description,
                         [spec for spec in tag_specifications if spec["ResourceType"] != "snapshot"])
        for tag in snapshot_tags:
            image.ebs_snapshot.add_tag(tag["Key"], tag["Value"])
        return image
    return create_image


def apply() -> None:
    if not hasattr(Route53Backend.change_resource_record_sets, "__wrapped__"):
        Route53Backend.change_resource_record_sets = _checked_in_batch_order(Route53Backend.change_resource_record_sets)
    if not hasattr(AmiBackend.create_image, "__wrapped__"):
        AmiBackend.create_image = _snapshots_tagged_on_create(AmiBackend.create_image)
