#!/usr/bin/env python3
"""spotyard-job: runs one job on a fleet's box and reports it the way AWS Batch jobs are
reported (stdlib and boto3 only; installed by the bootstrap beside spotyard_agent.py).

spotyard-job <name> [--results DIR] [--stop-when-done] -- <command> [args...]
    Runs the command, kept busy as `spotyard-busy` keeps a job (the idle stop waits for it;
    on a fleet with a queue, scale-in too), with its output also written to a log file,
    uploads DIR (and the log)
    to the fleet's results bucket (on S3, or on an S3-compatible endpoint with credentials
    read at run time from SSM Parameter Store or Secrets Manager) under `<name>/<start time>/`,
    puts a "spotyard Job Run Finished" event on the default event bus (its format:
    docs/spec.md section 3), and with --stop-when-done leaves the fleet like the idle stop
    does. Exits with the command's status (1 when the command succeeded but the upload failed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import spotyard_agent

# Shared with the job reporter Lambda (lambdas/spotyard_lambda/names.py; tests/test_names.py).
JOB_EVENT_SOURCE = "spotyard.job"
JOB_EVENT_DETAIL_TYPE = "spotyard Job Run Finished"
LOG_DIR = Path("/var/log/spotyard-job")
LOG_NAME = "spotyard-job.log"


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    started: float
    stopped: float

    @property
    def reason(self) -> str:
        if self.exit_code < 0:
            return f"killed by signal {-self.exit_code}"
        return f"exit status {self.exit_code}"


def run_command(command: list[str], log_path: Path, clock: Callable[[], float] = time.time) -> Outcome:
    """The command, its output copied to our stdout and to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = clock()
    with open(log_path, "wb") as log:
        try:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        except OSError as error:
            log.write(f"spotyard-job: cannot run {command[0]}: {error}\n".encode())
            return Outcome(exit_code=127, started=started, stopped=clock())
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.buffer.write(line)
            log.write(line)
        sys.stdout.flush()
        code = process.wait()
    return Outcome(exit_code=code, started=started, stopped=clock())


def results_client(env: Mapping[str, str], session):
    """An S3 client for the fleet's results: the instance role's on AWS; on an S3-compatible
    endpoint (SPOTYARD_RESULTS_ENDPOINT), the keys read now from the SSM SecureString parameter
    or Secrets Manager secret that SPOTYARD_RESULTS_CREDENTIALS names (`ssm:<name>` or
    `secretsmanager:<id>`), holding {"accessKeyId": ..., "secretAccessKey": ...}."""
    endpoint = env.get("SPOTYARD_RESULTS_ENDPOINT")
    if not endpoint:
        return session.client("s3")
    from botocore.config import Config

    kind, _, name = env["SPOTYARD_RESULTS_CREDENTIALS"].partition(":")
    if kind == "ssm":
        text = session.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    else:
        text = session.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]
    keys = json.loads(text)
    import boto3

    # Not the instance role's session: these requests go to another service, with its keys.
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=env.get("SPOTYARD_RESULTS_REGION") or None,
        aws_access_key_id=keys["accessKeyId"],
        aws_secret_access_key=keys["secretAccessKey"],
        # Path-style addressing, which MinIO, Wasabi and R2 all take; checksums only where the
        # operation requires one (botocore 1.36 added CRC32 to every upload by default, which
        # some S3-compatible services refuse: botocore Config `request_checksum_calculation`).
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def upload(client, bucket: str, prefix: str, results: Path | None, log_path: Path) -> int:
    """Every file under `results` and the log, under `prefix`; returns how many objects."""
    files = [(log_path, f"{prefix}{LOG_NAME}")]
    if results is not None:
        files += [
            (path, f"{prefix}{path.relative_to(results).as_posix()}")
            for path in sorted(results.rglob("*"))
            if path.is_file()
        ]
    for path, key in files:
        client.upload_file(str(path), bucket, key)
    return len(files)


def run_event(
    env: Mapping[str, str], instance: str, job: str, run_id: str, outcome: Outcome, reason: str, log: str
) -> dict:
    """The PutEvents entry of one finished run."""
    return {
        "Source": JOB_EVENT_SOURCE,
        "DetailType": JOB_EVENT_DETAIL_TYPE,
        "Detail": json.dumps(
            {
                "stack": env["SPOTYARD_STACK"],
                "job": job,
                "runId": run_id,
                "status": "SUCCEEDED" if not reason else "FAILED",
                "reason": reason or outcome.reason,
                "exitCode": outcome.exit_code,
                "startedAt": iso(outcome.started),
                "stoppedAt": iso(outcome.stopped),
                "durationSeconds": round(outcome.stopped - outcome.started, 3),
                "fleet": env["SPOTYARD_FLEET"],
                "instanceId": instance,
                "log": log,
            }
        ),
    }


def job(
    name: str,
    command: list[str],
    *,
    env: Mapping[str, str],
    instance: str,
    session,
    results: Path | None = None,
    stop_when_done: bool = False,
    log_dir: Path = LOG_DIR,
    state_dir: Path = spotyard_agent.STATE_DIR,
) -> int:
    run_id = str(uuid.uuid4())
    log_path = log_dir / name / f"{run_id}.log"
    fleet = spotyard_agent.Fleet(env, instance, session=session)
    with spotyard_agent.kept_busy(fleet, state_dir):
        outcome = run_command(command, log_path)
    reason = "" if outcome.exit_code == 0 else outcome.reason
    log = f"{log_path} on {instance} (gone with the instance)"
    bucket = env.get("SPOTYARD_RESULTS_BUCKET")
    if bucket:
        prefix = f"{name}/{datetime.fromtimestamp(outcome.started, UTC):%Y-%m-%dT%H%M%SZ}-{run_id[:8]}/"
        where = env.get("SPOTYARD_RESULTS_ENDPOINT") or "s3:/"
        try:
            count = upload(results_client(env, session), bucket, prefix, results, log_path)
            log = f"{where}/{bucket}/{prefix}{LOG_NAME}"
            print(json.dumps({"message": "results uploaded", "objects": count, "to": f"{where}/{bucket}/{prefix}"}))
        except Exception as error:  # any failure to store the results fails the run, and says why
            reason = reason or f"results upload failed: {error}"
    elif results is not None:
        reason = reason or "--results given but the fleet has no results bucket"
    entry = run_event(env, instance, name, run_id, outcome, reason, log)
    answer = session.client("events").put_events(Entries=[entry])
    if answer.get("FailedEntryCount"):
        raise RuntimeError(f"the run's event was refused: {answer['Entries']}")
    if stop_when_done and not fleet.leave():
        print(json.dumps({"message": "kept at minCapacity"}))
    return outcome.exit_code if outcome.exit_code or not reason else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spotyard-job", description=__doc__.split("\n\n")[1])
    parser.add_argument("name", help="the job's name (a key of spotyard:jobs)")
    parser.add_argument("--results", type=Path, help="a directory whose files are uploaded to the results bucket")
    parser.add_argument("--stop-when-done", action="store_true", help="leave the fleet once the run is reported")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("a command to run is needed after --")
    env = spotyard_agent.read_env()
    import boto3

    return job(
        args.name,
        command,
        env=env,
        instance=spotyard_agent.instance_id(os.environ.get("SPOTYARD_IMDS_ENDPOINT", spotyard_agent.IMDS)),
        session=boto3.session.Session(region_name=env["SPOTYARD_REGION"]),
        results=args.results,
        stop_when_done=args.stop_when_done,
    )


if __name__ == "__main__":
    sys.exit(main())
