"""A second `pulumi up` under mocks: what a resource of the first run is called in the second.

Under mocks every run creates everything afresh, so ids, ARNs, autonames and URLs differ
between two runs even for a resource that `pulumi up` would keep (and whose ids would then
stay). `Renames` maps the first run's values to the second's for the resources both runs
declare (same type and logical name), so the inputs of the two runs can be compared as the
engine compares old and new inputs."""

from __future__ import annotations

from typing import Any

from tests.user_data import decode

# Outputs that name a resource (what other resources' inputs quote of it).
IDENTITY_OUTPUTS = ("arn", "name", "url", "zoneId")


def identities(resource: Any) -> dict[str, str]:
    """The resource's id and the outputs that name it, by field."""
    found = {"id": resource.id} if resource.id else {}
    found |= {key: resource.outputs[key] for key in IDENTITY_OUTPUTS if isinstance(resource.outputs.get(key), str)}
    return found


class Renames:
    def __init__(self) -> None:
        self._mapping: dict[str, str] = {}

    def learn(self, before: dict[str, str], after: dict[str, str]) -> None:
        """`before` and `after` are one resource's identities in the two runs."""
        for key, old in before.items():
            new = after.get(key)
            if new is not None and new != old and len(old) > 3:
                self._mapping[old] = new

    def translate(self, value: Any) -> Any:
        """`value` (an input of the first run) in the second run's names."""
        if isinstance(value, dict):
            return {key: self.translate(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.translate(item) for item in value]
        if isinstance(value, str):
            for old in sorted(self._mapping, key=len, reverse=True):
                value = value.replace(old, self._mapping[old])
        return value


def renames_between(before: Any, after: Any) -> Renames:
    """Renames for every resource both StackRuns declare."""
    renames = Renames()
    later = {(r.type, r.name): r for r in after.resources}
    for resource in before.resources:
        if (twin := later.get((resource.type, resource.name))) is not None:
            renames.learn(identities(resource), identities(twin))
    return renames


def decoded_user_data(inputs: dict[str, Any]) -> dict[str, Any]:
    """Launch template inputs with the user data as text (it quotes other resources' ids)."""
    encoded = inputs.get("userData")
    return {**inputs, "userData": decode(encoded)} if encoded else inputs
