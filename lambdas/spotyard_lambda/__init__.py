"""Shared code of spotyard's Lambdas: AWS clients, JSON logs, event parsing, ownership.

Bundled beside every function (stdlib + boto3 only, both in the Lambda runtime)."""
