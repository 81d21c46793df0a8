#!/usr/bin/env python3
"""spotyard's agent on every instance (stdlib and boto3 only), installed by the bootstrap.

spotyard-busy <command> [args...]
    Runs a job with this instance kept out of scale-in while it runs: on `asg` fleets the
    instance's scale-in protection, on `spot-fleet` fleets the tag `spotyard:busy` (the
    autoscaler then only removes idle instances). Several jobs at once are counted; the
    mark goes when the last one ends, however it ends.

spotyard-busy --receipt-handle <handle> [--] <command> [args...]
    The same, for a job taken from the fleet's queue: while it runs, the receipt handle of
    its message is on record (also taken from $SPOTYARD_RECEIPT_HANDLE), so that on a Spot
    interruption notice the message goes back to the queue at once (see requeue).

spotyard_agent.py requeue      (on the interruption notice, from /etc/spotyard/on-interruption.d)
    Makes the messages the running jobs hold visible again (ChangeMessageVisibility to 0),
    so another worker starts them within seconds instead of after the visibility timeout.

spotyard_agent.py idle-check      (every minute, from spotyard-idle-check.timer)
    With no ssh or Session Manager session, no spotyard-busy job and the CPU under 10%
    for `idleStopMinutes`, the instance leaves its fleet and lowers the fleet's capacity
    by one (`asg`: terminated in its group with decrement, unless the group is at its
    minimum size, which keeps it; `spot-fleet`: target lowered without termination, then it
    terminates itself). Logged-in users get a wall warning 5 minutes before.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

ENV_FILE = Path("/etc/spotyard/env")
STATE_DIR = Path("/run/spotyard")
IDLE_STATE = Path("/var/lib/spotyard/idle.json")
BUSY_TAG = "spotyard:busy"
IMDS = "http://169.254.169.254"
IDLE_CPU_PERCENT = 10.0
WARNING_MINUTES = 5


def read_env(path: Path = ENV_FILE) -> dict[str, str]:
    """/etc/spotyard/env, written by the bootstrap as KEY='value' lines."""
    env = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


def instance_id(endpoint: str = IMDS) -> str:
    token_request = urllib.request.Request(
        f"{endpoint}/latest/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}
    )
    with urllib.request.urlopen(token_request, timeout=5) as response:  # noqa: S310 (link-local IMDS)
        token = response.read().decode()
    request = urllib.request.Request(
        f"{endpoint}/latest/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": token}
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        return response.read().decode()


class Fleet:
    """This instance in its fleet, with what the instance role lets it do to that fleet."""

    def __init__(self, env: dict[str, str], instance: str, session=None) -> None:
        import boto3

        self.env = env
        self.engine = env["SPOTYARD_ENGINE"]
        self.instance = instance
        self.session = session or boto3.session.Session(region_name=env["SPOTYARD_REGION"])

    def group(self) -> str:
        """The Auto Scaling group this instance is in (the user data cannot name it: the group
        is created from the launch template that carries the user data)."""
        found = self.session.client("autoscaling").describe_auto_scaling_instances(InstanceIds=[self.instance])[
            "AutoScalingInstances"
        ]
        if not found:
            raise RuntimeError(f"{self.instance} is not in an Auto Scaling group")
        return found[0]["AutoScalingGroupName"]

    def spot_fleet_request(self) -> str:
        """This fleet's active Spot Fleet request, found by the fleet's and stack's tags."""
        wanted = {"spotyard:fleet": self.env["SPOTYARD_FLEET"], "spotyard:stack": self.env["SPOTYARD_STACK"]}
        pages = self.session.client("ec2").get_paginator("describe_spot_fleet_requests").paginate()
        for page in pages:
            for request in page["SpotFleetRequestConfigs"]:
                tags = {t["Key"]: t["Value"] for t in request.get("Tags", [])}
                if request["SpotFleetRequestState"] in ("active", "modifying") and all(
                    tags.get(k) == v for k, v in wanted.items()
                ):
                    return request["SpotFleetRequestId"]
        raise RuntimeError(f"no active Spot Fleet request of fleet {wanted['spotyard:fleet']}")

    def mark_busy(self, busy: bool) -> None:
        """Keep the fleet's autoscaler off this instance (only a fleet with a queue has one, and
        only its instance role may set the mark; elsewhere the local count is what matters)."""
        if not self.env.get("SPOTYARD_QUEUE_URL"):
            return
        if self.engine == "asg":
            self.session.client("autoscaling").set_instance_protection(
                InstanceIds=[self.instance], AutoScalingGroupName=self.group(), ProtectedFromScaleIn=busy
            )
        elif busy:
            self.session.client("ec2").create_tags(Resources=[self.instance], Tags=[{"Key": BUSY_TAG, "Value": "true"}])
        else:
            self.session.client("ec2").delete_tags(Resources=[self.instance], Tags=[{"Key": BUSY_TAG}])

    def leave(self) -> bool:
        """Leave the fleet, one less capacity, and terminate; False when the fleet is at its
        minimum (`minCapacity`), which keeps the instance."""
        if self.engine == "asg":
            autoscaling = self.session.client("autoscaling")
            try:
                autoscaling.terminate_instance_in_auto_scaling_group(
                    InstanceId=self.instance, ShouldDecrementDesiredCapacity=True
                )
            except autoscaling.exceptions.ClientError as error:
                # At MinSize, Auto Scaling refuses the decrement: "Currently, desiredSize equals minSize
                # (1). Terminating instance without replacement will violate group's min size constraint"
                # (ValidationError). minCapacity instances stay, idle or not.
                if error.response["Error"]["Code"] != "ValidationError" or "min size" not in str(error):
                    raise
                return False
            return True
        ec2 = self.session.client("ec2")
        request_id = self.spot_fleet_request()
        (request,) = ec2.describe_spot_fleet_requests(SpotFleetRequestIds=[request_id])["SpotFleetRequestConfigs"]
        target = int(request["SpotFleetRequestConfig"]["TargetCapacity"])
        if target <= int(self.env.get("SPOTYARD_MIN_CAPACITY") or 0):  # Spot Fleet has no minimum of its own
            return False
        ec2.modify_spot_fleet_request(
            SpotFleetRequestId=request_id,
            TargetCapacity=max(0, target - 1),
            ExcessCapacityTerminationPolicy="noTermination",
        )
        ec2.terminate_instances(InstanceIds=[self.instance])
        return True


# -- busy ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def kept_busy(fleet: Fleet, state_dir: Path = STATE_DIR) -> Iterator[None]:
    """The first job in marks the instance busy, the last one out clears it."""
    state_dir.mkdir(parents=True, exist_ok=True)

    def change(delta: int) -> int:
        with open(state_dir / "busy.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            jobs = max(0, busy_jobs(state_dir) + delta)
            if (delta > 0 and jobs == 1) or (delta < 0 and jobs == 0):
                fleet.mark_busy(jobs > 0)
            (state_dir / "busy.json").write_text(json.dumps({"jobs": jobs}))
            return jobs

    change(+1)
    try:
        yield
    finally:
        change(-1)


def busy_jobs(state_dir: Path = STATE_DIR) -> int:
    counter = state_dir / "busy.json"
    return json.loads(counter.read_text())["jobs"] if counter.exists() else 0


def busy(command: list[str], fleet: Fleet, state_dir: Path = STATE_DIR) -> int:
    # A stopping instance TERMs us: end the job the same way and still clear the mark.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    with kept_busy(fleet, state_dir):
        return subprocess.call(command)


# -- requeue on interruption -------------------------------------------------------------------


def receipt_handle_of(job: list[str], environ: Mapping[str, str] = os.environ) -> tuple[str | None, list[str]]:
    """`[--receipt-handle HANDLE] [--] command...` -> (the handle, else $SPOTYARD_RECEIPT_HANDLE; the command)."""
    if job[:1] == ["--receipt-handle"] and len(job) > 1:
        handle, job = job[1], job[2:]
    else:
        handle = environ.get("SPOTYARD_RECEIPT_HANDLE") or None
    return handle, job[1:] if job[:1] == ["--"] else job


@contextlib.contextmanager
def holding(handle: str | None, state_dir: Path = STATE_DIR) -> Iterator[None]:
    """While the job runs, the receipt handle of its message is on record for `requeue`."""
    if handle is None:
        yield
        return
    record = state_dir / "held" / f"{uuid.uuid4().hex}.handle"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(handle)
    try:
        yield
    finally:
        record.unlink(missing_ok=True)


def requeue(env: Mapping[str, str], session, state_dir: Path = STATE_DIR) -> int:
    """Every message a running job holds made visible again at once; returns how many. A handle
    SQS refuses (the message was deleted, or received again elsewhere) is reported, not fatal."""
    handles = [record.read_text() for record in sorted((state_dir / "held").glob("*.handle"))]
    if not handles or not env.get("SPOTYARD_QUEUE_URL"):
        return 0
    sqs, requeued = session.client("sqs"), 0
    for handle in handles:
        try:
            sqs.change_message_visibility(QueueUrl=env["SPOTYARD_QUEUE_URL"], ReceiptHandle=handle, VisibilityTimeout=0)
            requeued += 1
        except sqs.exceptions.ClientError as error:
            print(json.dumps({"message": "requeue refused", "error": str(error)}), file=sys.stderr)
    return requeued


# -- idle -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuSample:
    total: int
    idle: int

    @classmethod
    def parse(cls, proc_stat: str) -> CpuSample:
        """The aggregate `cpu` line of /proc/stat: idle time includes iowait."""
        fields = [int(v) for v in proc_stat.splitlines()[0].split()[1:9]]
        return cls(total=sum(fields), idle=fields[3] + fields[4])

    def busy_percent_since(self, earlier: CpuSample) -> float:
        elapsed = self.total - earlier.total
        return 0.0 if elapsed <= 0 else 100.0 * (elapsed - (self.idle - earlier.idle)) / elapsed


# The unprivileged sshd process of one connection without a terminal (OpenSSH 9.8+ names it
# sshd-session); with a terminal it is `<user>@pts/N`, and `who` lists that login already.
SSH_WITHOUT_TERMINAL = re.compile(r"sshd(-session)?: \S+@notty")
SESSION_MANAGER_WORKER = "ssm-session-worker"


def sessions(who: str, processes: list[str]) -> int:
    """Everyone using the box, from `who` and `ps -eo args=`: logins with a terminal (`who`),
    ssh connections without one — VS Code Remote-SSH, `ssh -N -L` port forwards, `ssh host cmd`,
    scp/rsync — which write no utmp entry, so `who` misses them, and Session Manager sessions
    (their worker processes; an ssh through Session Manager shows both)."""
    logins = [line for line in who.splitlines() if line.strip()]
    commands = [line.strip() for line in processes if line.strip()]
    without_terminal = sum(bool(SSH_WITHOUT_TERMINAL.fullmatch(command)) for command in commands)
    session_manager = sum(Path(command.split()[0]).name == SESSION_MANAGER_WORKER for command in commands)
    return len(logins) + without_terminal + session_manager


@dataclass(frozen=True)
class IdleState:
    idle_since: float | None = None
    warned: bool = False
    cpu: CpuSample | None = None

    @classmethod
    def load(cls, path: Path) -> IdleState | None:
        if not path.exists():
            return None
        raw = json.loads(path.read_text())
        return cls(
            idle_since=raw["idle_since"], warned=raw["warned"], cpu=CpuSample(**raw["cpu"]) if raw.get("cpu") else None
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self)))


def assess(
    state: IdleState | None, *, now: float, uptime: float, cpu: CpuSample, users: int, jobs: int, limit_minutes: int
) -> tuple[IdleState, str]:
    """(next state, "active" | "idle" | "warn" | "leave"). Idle time counts from boot until
    the first activity, so a box nobody ever logs into stops too."""
    if state is None:
        state = IdleState(idle_since=now - uptime)
    busy_cpu = state.cpu is not None and cpu.busy_percent_since(state.cpu) >= IDLE_CPU_PERCENT
    if users or jobs or busy_cpu:
        return IdleState(idle_since=None, warned=False, cpu=cpu), "active"
    since = now if state.idle_since is None else state.idle_since
    idle_minutes = (now - since) / 60
    if idle_minutes >= limit_minutes:
        return IdleState(idle_since=since, warned=state.warned, cpu=cpu), "leave"
    if idle_minutes >= limit_minutes - WARNING_MINUTES and not state.warned:
        return IdleState(idle_since=since, warned=True, cpu=cpu), "warn"
    return IdleState(idle_since=since, warned=state.warned, cpu=cpu), "idle"


def idle_check(env: dict[str, str], state_path: Path = IDLE_STATE) -> str:
    limit = int(env.get("SPOTYARD_IDLE_STOP_MINUTES") or 0)
    if not limit:
        return "disabled"
    who = subprocess.run(["who"], capture_output=True, text=True, check=False).stdout
    processes = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True, check=False).stdout
    state, action = assess(
        IdleState.load(state_path),
        now=time.time(),
        uptime=float(Path("/proc/uptime").read_text().split()[0]),
        cpu=CpuSample.parse(Path("/proc/stat").read_text()),
        users=sessions(who, processes.splitlines()),
        jobs=busy_jobs(),
        limit_minutes=limit,
    )
    state.save(state_path)
    if action == "warn":
        subprocess.run(
            [
                "wall",
                f"spotyard: this idle instance stops in {WARNING_MINUTES} minutes. Log in or start work to keep it.",
            ],
            check=False,
        )
    elif action == "leave" and not Fleet(env, instance_id()).leave():
        return "kept at minCapacity"
    return action


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spotyard-agent")
    commands = parser.add_subparsers(dest="command", required=True)
    busy_parser = commands.add_parser("busy", help="run a job kept out of scale-in")
    busy_parser.add_argument("job", nargs=argparse.REMAINDER)
    commands.add_parser("idle-check", help="leave the fleet after idleStopMinutes without use")
    commands.add_parser("requeue", help="on an interruption notice, put the messages of running jobs back")
    args = parser.parse_args(argv)
    env = read_env()
    if args.command == "idle-check":
        print(idle_check(env))
        return 0
    if args.command == "requeue":
        import boto3

        print(requeue(env, boto3.session.Session(region_name=env["SPOTYARD_REGION"])))
        return 0
    handle, job = receipt_handle_of(args.job[1:] if args.job[:1] == ["--"] else args.job)
    if not job:
        parser.error("busy needs a command to run")
    with holding(handle):
        return busy(job, Fleet(env, instance_id()))


if __name__ == "__main__":
    sys.exit(main())
