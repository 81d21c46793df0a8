"""IAM as moto emulates it, made to behave as AWS does.

IAM CreateServiceLinkedRole names the role after the service: AWS calls the roles of
spot.amazonaws.com and spotfleet.amazonaws.com AWSServiceRoleForEC2Spot and
AWSServiceRoleForEC2SpotFleet (EC2 user guide, "Spot Fleet permissions"); moto, lacking them
in its table of names, AWSServiceRoleForspot and AWSServiceRoleForspotfleet. Here the table has them.
"""

from __future__ import annotations

from moto.iam import models as iam_models


def apply() -> None:
    iam_models.SERVICE_NAME_CONVERSION.update({"spot": "EC2Spot", "spotfleet": "EC2SpotFleet"})
