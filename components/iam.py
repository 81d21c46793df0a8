"""IAM policy documents built from statements whose values may be Pulumi outputs."""

from __future__ import annotations

import json
from typing import Any

import pulumi


def assume_role_policy(service: str, conditions: dict[str, Any] | None = None) -> str:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": service},
                                 "Action": "sts:AssumeRole"}
    if conditions:
        statement["Condition"] = conditions
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def policy_document(statements: list[dict[str, Any]]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements})


def allow(sid: str, actions: list[str], resources: Any, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    """One Allow statement; `resources` is an ARN, a list of ARNs, or outputs of either."""
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement
