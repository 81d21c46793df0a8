"""How fast the interruption handler drains an instance, and with how many AWS calls, for a
fleet of 1, 10 and 100 instances.

Everything runs against moto_server on 127.0.0.1 (real HTTP, real botocore): the stack is
deployed by the program under the test harness's mocks, the DNS registrar names every
instance, then the handler, loaded from its bundle with the stack's environment, gets a
Spot interruption warning. Prints a table (the README's).
"""

from __future__ import annotations

import os
import socket
import statistics
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REGION = "ap-northeast-1"
SIZES = (1, 10, 100)
RUNS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drain_once(size: int, workdir: Path) -> tuple[float, list]:
    """Deploy a fleet of `size` behind a target group, name it, then drain one instance:
    (milliseconds from event to done, the calls the handler made)."""
    import boto3
    import yaml

    from tests import events
    from tests.harness.lambdas import deployed_lambda
    from tests.harness.program import run_program
    from tests.harness.world import World

    world = World(REGION).seed()
    config = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    web = world.target_group("web", deregistration_delay=30)
    config["spotyard:fleets"]["workbench"].update(
        capacity=size, maxCapacity=size, loadBalancer={"targetGroupArns": [web]}
    )
    stack = run_program(config, region=REGION)
    deployed_lambda(stack, "dns-lambda", workdir).invoke(events.load("scheduled-event"))
    group = stack.one("aws:autoscaling/group:Group", "workbench-group").id
    members = boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
        "AutoScalingGroups"
    ][0]["Instances"]
    assert len(members) == size
    handler = deployed_lambda(stack, "interruptions-lambda", workdir)
    handler.unpack()
    warning = events.load("ec2-spot-instance-interruption-warning", instance_id=members[0]["InstanceId"])
    started = time.perf_counter()
    result = handler.invoke(warning)
    elapsed = (time.perf_counter() - started) * 1000
    assert "detached" in result["done"][0], result
    return elapsed, handler.last_calls


def main() -> None:
    port = free_port()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        MOTO_EC2_LOAD_DEFAULT_AMIS="false",
    )
    from moto.server import ThreadedMotoServer

    from tests.harness import moto_fixes

    moto_fixes.apply()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for size in SIZES:
                timings, counts, actions = [], [], Counter()
                for run in range(RUNS):
                    urllib.request.urlopen(
                        urllib.request.Request(  # noqa: S310 (loopback moto_server)
                            f"http://127.0.0.1:{port}/moto-api/reset", method="POST"
                        ),
                        timeout=10,
                    ).close()
                    workdir = Path(scratch) / f"{size}-{run}"
                    workdir.mkdir()
                    elapsed, calls = drain_once(size, workdir)
                    timings.append(elapsed)
                    counts.append(len(calls))
                    actions.update(call.action for call in calls)
                rows.append((size, statistics.median(counts), statistics.median(timings), max(timings), actions))
    finally:
        server.stop()

    print("| fleet size | AWS calls | event to done, median (ms) | slowest (ms) |")
    print("| ---: | ---: | ---: | ---: |")
    for size, calls, median, slowest, _ in rows:
        print(f"| {size} | {calls:.0f} | {median:.0f} | {slowest:.0f} |")
    per_drain = sorted(rows[-1][4].items())
    print("\nCalls per drain:", ", ".join(f"{action} x{count // RUNS}" for action, count in per_drain))


if __name__ == "__main__":
    main()
