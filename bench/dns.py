"""What DNS costs per event and per reconcile as one fleet grows: 10, 100, 1,000 and 3,000
instances.

In-process moto (tests/harness/moto_fixes/ makes its Route 53 check change batches,
set identifiers and limits as Route 53 does): the stack is deployed by the program under
the test harness's mocks, the fleet's instances are launched in one call, the DNS registrar
(loaded from its bundle, with the stack's environment) names them all in a first
reconcile; then one launch and one termination event (each an SQS batch of one, as the
event source mapping delivers them), a Spot interruption warning to the interruption
handler, and a reconcile of the named fleet. Counts every AWS call each makes, and its
Route 53 requests. The registrar paces its Route 53 requests (its zone's requests_per_second): its
sleeps are recorded, not slept, and reported as the time pacing adds. Prints a table (the
README's).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "lambdas"))
REGION = "ap-northeast-1"
SIZES = (10, 100, 1_000, 3_000)


def measure(size: int, workdir: Path, slept: list[float]) -> dict[str, tuple[int, int, float, Counter]]:
    """(AWS calls, Route 53 requests, seconds of pacing, calls by action) per step, at `size` instances."""
    import boto3
    import yaml

    from tests import events
    from tests.harness import sqs_events
    from tests.harness.lambdas import deployed_lambda
    from tests.harness.program import run_program
    from tests.harness.world import World

    world = World(REGION).seed()
    config = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    config["spotyard:fleets"]["workbench"].update(capacity=1, maxCapacity=size)
    stack = run_program(config, region=REGION)
    registrar = deployed_lambda(stack, "dns-lambda", workdir)
    handler = deployed_lambda(stack, "interruptions-lambda", workdir)
    world.fleet_instances("workbench", size - 1)  # with the group's instance, `size`

    def step(function, event) -> tuple[int, int, float, Counter]:
        slept.clear()
        function.invoke(event)
        route53 = sum(1 for c in function.last_calls if c.action.startswith("route53:"))
        return len(function.last_calls), route53, sum(slept), Counter(c.action for c in function.last_calls)

    rows = {"first reconcile (names all)": step(registrar, events.load("scheduled-event"))}
    (launched,) = world.fleet_instances("workbench", 1)
    rows["launch event"] = step(registrar, sqs_events.batch([events.state_change(launched, "running")]))
    boto3.client("ec2").terminate_instances(InstanceIds=[launched])
    rows["termination event"] = step(registrar, sqs_events.batch([events.state_change(launched, "terminated")]))
    group = stack.one("aws:autoscaling/group:Group", "workbench-group").id
    (member,) = boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
        "AutoScalingGroups"
    ][0]["Instances"]
    rows["interruption"] = step(
        handler, events.load("ec2-spot-instance-interruption-warning", instance_id=member["InstanceId"])
    )
    rows["reconcile"] = step(registrar, events.load("scheduled-event"))
    return rows


def main() -> None:
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_SESSION_TOKEN="bench",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        MOTO_EC2_LOAD_DEFAULT_AMIS="false",
    )
    from moto import mock_aws

    from tests.harness import moto_fixes

    moto_fixes.apply()
    slept: list[float] = []
    real_monotonic = time.monotonic
    time.sleep = slept.append  # the registrar's pacing: recorded, and the clock moved on, not slept
    time.monotonic = lambda: real_monotonic() + sum(slept)
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for size in SIZES:
            workdir = Path(scratch) / str(size)
            workdir.mkdir()
            with mock_aws():
                results[size] = measure(size, workdir, slept)
            print(f"measured {size} instances", file=sys.stderr)

    steps = list(results[SIZES[0]])
    print("| instances in the fleet | " + " | ".join(steps) + " |")
    print("| ---: | " + " | ".join("---:" for _ in steps) + " |")
    for size, rows in results.items():
        cells = [f"{calls} ({route53})" for calls, route53, _, _ in rows.values()]
        print(f"| {size:,} | " + " | ".join(cells) + " |")
    print(
        "\nAWS calls (of which Route 53 requests). Seconds the pacing adds to the last reconcile: "
        + ", ".join(f"{size:,}: {rows['reconcile'][2]:.0f}" for size, rows in results.items())
    )
    for name in ("launch event", "interruption", "reconcile"):
        print(
            f"{name} at {SIZES[-1]:,}: "
            + ", ".join(f"{action} x{count}" for action, count in sorted(results[SIZES[-1]][name][3].items()))
        )


if __name__ == "__main__":
    main()
