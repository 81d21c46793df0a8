"""AWS Batch as moto emulates it, made to behave as AWS does.

CreateComputeEnvironment without a serviceRole uses the account's Batch service-linked role,
AWSServiceRoleForBatch, and makes it when missing ("If the Batch service-linked role doesn't
exist in your account, and no role is specified here, the service attempts to create" it: API
reference, CreateComputeEnvironment serviceRole). moto refuses the call ("ServiceRole is
required") and would name the role AWSServiceRoleForbatch. Here it makes and uses the role as
AWS names it.

ComputeResource instanceTypes take Batch's bundles `default_x86_64` and `default_arm64` besides
`optimal` (API reference, ComputeResource); moto knows only `optimal` and fails on the others
("Instance type default_x86_64 does not exist"). Here moto treats them as it treats `optimal`.

SubmitJob takes a job definition as a name, name:revision, or ARN "with or without the revision
... If the revision is not specified, then the latest active revision is used" (API reference,
SubmitJob jobDefinition). moto finds an ARN only with its revision ("does not exist"). Here an
ARN without revision is looked up as its name is.
"""

from __future__ import annotations

import functools

from moto.batch.models import BatchBackend
from moto.iam import models as iam_models
from moto.iam.exceptions import NotFoundException

BUNDLES = ("default_x86_64", "default_arm64")
SERVICE_LINKED_ROLE = "AWSServiceRoleForBatch"


def _as_optimal(types: list[str]) -> list[str]:
    return ["optimal" if kind in BUNDLES else kind for kind in types]


def _service_linked_role_by_default(original):
    @functools.wraps(original)
    def create(self, compute_environment_name, _type, state, compute_resources, service_role, tags=None):
        if not service_role:
            try:
                role = self.iam_backend.get_role(SERVICE_LINKED_ROLE)
            except NotFoundException:
                role = self.iam_backend.create_service_linked_role("batch.amazonaws.com", "", "")
            service_role = role.arn
        return original(self, compute_environment_name, _type, state, compute_resources, service_role, tags)

    return create


def _bundles_validated_as_optimal(original):
    @functools.wraps(original)
    def validate(self, cr):
        if "instanceTypes" in cr:
            cr = {**cr, "instanceTypes": _as_optimal(cr["instanceTypes"])}
        return original(self, cr)

    return validate


def _bundles_sized_as_optimal(original):
    @functools.wraps(original)
    def find(instance_types, target):
        return original(_as_optimal(instance_types), target)

    return staticmethod(find)


def _arn_without_revision_as_name(original):
    @functools.wraps(original)
    def get(self, identifier):
        found = original(self, identifier)
        if found is None and "job-definition/" in identifier:
            found = original(self, identifier.split("job-definition/", 1)[1])
        return found

    return get


def apply() -> None:
    if hasattr(BatchBackend.create_compute_environment, "__wrapped__"):
        return
    iam_models.SERVICE_NAME_CONVERSION.update({"batch": "Batch"})
    BatchBackend.create_compute_environment = _service_linked_role_by_default(BatchBackend.create_compute_environment)
    BatchBackend._validate_compute_resources = _bundles_validated_as_optimal(BatchBackend._validate_compute_resources)
    BatchBackend.get_job_definition = _arn_without_revision_as_name(BatchBackend.get_job_definition)
    BatchBackend.find_min_instances_to_meet_vcpus = _bundles_sized_as_optimal(
        BatchBackend.find_min_instances_to_meet_vcpus
    )
