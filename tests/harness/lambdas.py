"""A Lambda exactly as the stack bundles it: its archive (zipped and unpacked like the
Lambda service does), the environment and the role policy the stack gave it. `invoke`
runs the handler on a cold import, under the IAM audit."""

from __future__ import annotations

import importlib
import json
import os
import sys
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from tests.harness.iam import CallRecorder, IamAudit, Policy
from tests.harness.program import StackRun


class LambdaContext:
    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:ap-northeast-1:123456789012:function:{function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class DeployedLambda:
    name: str
    archive: pulumi.AssetArchive
    environment: dict[str, str]
    policy: Policy
    workdir: Path
    audit: IamAudit | None = None
    last_calls: list = field(default_factory=list)

    def unpack(self) -> Path:
        """Zip the archive's entries as the engine would, then unpack them as Lambda does."""
        target = self.workdir / self.name
        if not target.exists():
            zip_path = self.workdir / f"{self.name}.zip"
            with zipfile.ZipFile(zip_path, "w") as bundle:
                for entry, asset in sorted(self.archive.assets.items()):
                    bundle.write(asset.path, entry)
            with zipfile.ZipFile(zip_path) as bundle:
                bundle.extractall(target)
        return target

    def _cold_import(self, root: Path):
        names = {path.stem for path in root.glob("*.py")} | {p.name for p in root.iterdir() if p.is_dir()}
        for module in list(sys.modules):
            if module.split(".")[0] in names:
                del sys.modules[module]
        sys.path.insert(0, str(root))
        try:
            return importlib.import_module("handler")
        finally:
            sys.path.remove(str(root))

    def invoke(self, event: dict[str, Any], hooks: tuple[tuple[str, Any], ...] = ()) -> Any:
        """Run the handler on a cold import. `hooks` are botocore event handlers for the
        handler's clients, to stand in for AWS behaviour moto lacks (errors, throttling)."""
        root = self.unpack()
        saved = dict(os.environ)
        os.environ.update(self.environment)
        os.environ.update({"AWS_LAMBDA_FUNCTION_NAME": self.name, "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13"})
        recorder = CallRecorder()
        try:
            with recorder.recording() as recording:
                for event_name, hook in hooks:
                    recording.session_events.register_first(event_name, hook)
                handler = self._cold_import(root)
                sys.path.insert(0, str(root))
                try:
                    return handler.handler(json.loads(json.dumps(event)), LambdaContext(self.name))
                finally:
                    sys.path.remove(str(root))
        finally:
            os.environ.clear()
            os.environ.update(saved)
            self.last_calls = recorder.calls
            if self.audit is not None:
                self.audit.check(self.name, self.policy, recorder.calls)


def deployed_lambda(run: StackRun, name: str, workdir: Path, audit: IamAudit | None = None) -> DeployedLambda:
    """The Lambda component `name` as deployed by `run`."""
    function = run.one("aws:lambda/function:Function", f"{name}-function")
    policy = run.one("aws:iam/rolePolicy:RolePolicy", f"{name}-policy")
    return DeployedLambda(
        name=name,
        archive=function.inputs["code"],
        environment=dict(function.inputs["environment"]["variables"]),
        policy=Policy(json.loads(policy.inputs["policy"])),
        workdir=workdir,
        audit=audit,
    )
