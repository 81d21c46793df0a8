"""boto3 clients with adaptive retries, created once per container."""

from __future__ import annotations

import functools

import boto3
from botocore.config import Config

RETRIES = Config(retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=5, read_timeout=20)


@functools.cache
def client(service: str):
    return boto3.client(service, config=RETRIES)


def error_code(error: Exception) -> str:
    """The AWS error code of a botocore ClientError, '' for anything else."""
    response = getattr(error, "response", None) or {}
    return response.get("Error", {}).get("Code", "")
