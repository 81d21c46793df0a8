#!/usr/bin/env python3
"""spotyard's agent on every instance (stdlib and boto3 only), installed by the bootstrap.

  spotyard-busy <command> [args...]
      Runs a job with this instance kept out of scale-in while it runs: on `asg` fleets the
      instance's scale-in protection, on `spot-fleet` fleets the tag `spotyard:busy` (the
      autoscaler then only removes idle instances). Several jobs at once are counted; the
      mark goes when the last one ends, however it ends.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import shlex
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ENV_FILE = Path("/etc/spotyard/env")
STATE_DIR = Path("/run/spotyard")
BUSY_TAG = "spotyard:busy"
IMDS = "http://169.254.169.254"


def read_env(path: Path = ENV_FILE) -> dict[str, str]:
    """/etc/spotyard/env, written by the bootstrap as KEY='value' lines."""
    env = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


def instance_id(endpoint: str = IMDS) -> str:
    token_request = urllib.request.Request(f"{endpoint}/latest/api/token", method="PUT",
                                           headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    with urllib.request.urlopen(token_request, timeout=5) as response:  # noqa: S310 (link-local IMDS)
        token = response.read().decode()
    request = urllib.request.Request(f"{endpoint}/latest/meta-data/instance-id",
                                     headers={"X-aws-ec2-metadata-token": token})
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        return response.read().decode()


class Fleet:
    """This instance's place in its fleet, as the instance role lets it act on it."""

    def __init__(self, env: dict[str, str], instance: str, session=None) -> None:
        import boto3

        self.env = env
        self.instance = instance
        self.session = session or boto3.session.Session(region_name=env["SPOTYARD_REGION"])

    def group_name(self) -> str:
        found = self.session.client("autoscaling").describe_auto_scaling_instances(
            InstanceIds=[self.instance])["AutoScalingInstances"]
        if not found:
            raise RuntimeError(f"{self.instance} is not in an Auto Scaling group")
        return found[0]["AutoScalingGroupName"]

    def mark_busy(self, busy: bool) -> None:
        if self.env["SPOTYARD_ENGINE"] == "asg":
            self.session.client("autoscaling").set_instance_protection(
                InstanceIds=[self.instance], AutoScalingGroupName=self.group_name(), ProtectedFromScaleIn=busy)
        elif busy:
            self.session.client("ec2").create_tags(Resources=[self.instance], Tags=[{"Key": BUSY_TAG, "Value": "true"}])
        else:
            self.session.client("ec2").delete_tags(Resources=[self.instance], Tags=[{"Key": BUSY_TAG}])


@contextlib.contextmanager
def kept_busy(fleet: Fleet, state_dir: Path = STATE_DIR) -> Iterator[None]:
    """The first job in marks the instance busy, the last one out clears it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    counter = state_dir / "busy.json"

    def change(delta: int) -> int:
        with open(state_dir / "busy.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            jobs = json.loads(counter.read_text())["jobs"] if counter.exists() else 0
            jobs = max(0, jobs + delta)
            if (delta > 0 and jobs == 1) or (delta < 0 and jobs == 0):
                fleet.mark_busy(jobs > 0)
            counter.write_text(json.dumps({"jobs": jobs}))
            return jobs

    change(+1)
    try:
        yield
    finally:
        change(-1)


def busy(command: list[str], fleet: Fleet, state_dir: Path = STATE_DIR) -> int:
    # A stopping instance TERMs us: end the job the same way and still clear the mark.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    with kept_busy(fleet, state_dir):
        return subprocess.call(command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spotyard-agent")
    commands = parser.add_subparsers(dest="command", required=True)
    busy_parser = commands.add_parser("busy", help="run a job kept out of scale-in")
    busy_parser.add_argument("job", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    env = read_env()
    fleet = Fleet(env, instance_id())
    job = args.job[1:] if args.job[:1] == ["--"] else args.job
    if not job:
        parser.error("busy needs a command to run")
    return busy(job, fleet)


if __name__ == "__main__":
    sys.exit(main())
