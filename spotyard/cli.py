"""`spotyard`: launch, stop and look at a deployed stack's fleets, and print their ssh config.

spotyard [--stack dev] [--region ap-northeast-1] status [--json]
spotyard launch <fleet> [-n N]
spotyard stop <fleet> [--no-wait]
spotyard ssh-config
spotyard ssh <fleet>|<fleet>-i-... [-i ~/.ssh/key] [-- command]
spotyard cost [--days N]
spotyard jobs [--runs N] [--json]
spotyard run <job> [--wait]
spotyard logs <job> [<run id>]
spotyard services [--json]
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3
import botocore.session
import click
import yaml
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError
from rich.console import Console
from rich.table import Table
from spotyard_lambda.names import DNS_ZONE_TAG, IMAGE_ROLE_TAG, STACK_TAG, stack_tag_value

from spotyard import fleets as found
from spotyard import jobs as batch
from spotyard import services as deployed
from spotyard import ssh as connect
from spotyard.ssh_config import host_from_tags, render

# Give up on an unreachable endpoint within seconds, not botocore's default of 60 s a
# connection times 5 attempts. https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html
CLIENT_CONFIG = Config(connect_timeout=3, read_timeout=20, retries={"mode": "standard", "total_max_attempts": 2})


def stack_region(stack: str, project_dir: Path = Path()) -> str | None:
    """`aws:region` of ./Pulumi.<stack>.yaml, where `pulumi config set aws:region` writes it."""
    stack_file = project_dir / f"Pulumi.{stack.rsplit('/', 1)[-1]}.yaml"
    if not stack_file.is_file():
        return None
    return ((yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}).get("aws:region")


def session_for(stack: str, region: str | None) -> boto3.session.Session:
    """--region, else AWS_REGION, else AWS_DEFAULT_REGION or the AWS profile (botocore's own
    order), else the stack file's aws:region."""
    core = botocore.session.get_session()
    core.set_default_client_config(CLIENT_CONFIG)
    session = boto3.session.Session(botocore_session=core, region_name=region or os.environ.get("AWS_REGION") or None)
    if session.region_name is None and (from_stack := stack_region(stack)):
        session = boto3.session.Session(botocore_session=core, region_name=from_stack)
    return session


class Context:
    def __init__(self, stack: str, region: str | None) -> None:
        self.stack = stack_tag(stack)
        self.session = session_for(stack, region)


def stack_tag(stack: str) -> str:
    """`dev` -> `<project>/dev`, the project named by ./Pulumi.yaml (spotyard by default)."""
    if "/" in stack:
        return stack
    project = Path("Pulumi.yaml")
    name = yaml.safe_load(project.read_text()).get("name", "spotyard") if project.exists() else "spotyard"
    return stack_tag_value(name, stack)


class SpotyardGroup(click.Group):
    """Turns AWS and lookup failures into one clear line and exit status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except NoCredentialsError:
            raise click.ClickException(
                "no AWS credentials: run `aws configure` or `aws sso login`, or set AWS_PROFILE"
            ) from None
        except NoRegionError:
            raise click.ClickException(
                "no AWS region: pass --region, set AWS_REGION, or set aws:region in Pulumi.<stack>.yaml"
            ) from None
        except found.NotFound as error:
            raise click.ClickException(str(error)) from None
        except ClientError as error:
            raise click.ClickException(f"AWS refused: {error}") from None
        except BotoCoreError as error:
            raise click.ClickException(f"AWS unreachable: {error}".splitlines()[0]) from None


@click.group(cls=SpotyardGroup)
@click.option(
    "--stack",
    default=lambda: os.environ.get("SPOTYARD_STACK", "dev"),
    show_default="dev",
    help="Stack name (dev) or project/stack; env SPOTYARD_STACK.",
)
@click.option(
    "--region",
    default=None,
    help="AWS region; default AWS_REGION, AWS_DEFAULT_REGION, your AWS profile, then aws:region of "
    "./Pulumi.<stack>.yaml.",
)
@click.pass_context
def main(ctx: click.Context, stack: str, region: str | None) -> None:
    """Launch, stop and inspect spotyard fleets."""
    logging.getLogger("spotyard").setLevel(logging.WARNING)  # the Lambdas' shared code logs its steps
    ctx.obj = Context(stack, region)


@main.command()
@click.argument("fleet")
@click.option("-n", "--count", default=1, show_default=True, type=click.IntRange(min=1), help="Instances to run.")
@click.pass_obj
def launch(ctx: Context, fleet: str, count: int) -> None:
    """Run COUNT instances of FLEET."""
    _set_capacity(ctx, found.fleet(ctx.session, ctx.stack, fleet), count)


@main.command()
@click.argument("fleet")
@click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Wait until the AMIs are available before stopping."
)
@click.pass_obj
def stop(ctx: Context, fleet: str, wait: bool) -> None:
    """Stop FLEET: save its instances as AMIs first when it keeps images, then capacity 0."""
    from spotyard_lambda.images import start_image
    from spotyard_lambda.instances import Instance

    target = found.fleet(ctx.session, ctx.stack, fleet)
    role = target.tags.get(IMAGE_ROLE_TAG)
    if role:
        ec2 = ctx.session.client("ec2")
        running = [
            Instance.from_api(i)
            for i in found.instances(ctx.session, ctx.stack, fleet)
            if i["State"]["Name"] == "running"
        ]
        saved = [start_image(ec2, instance, ctx.stack, role)[0] for instance in running]
        for instance, image in zip(running, saved, strict=True):
            click.echo(f"{fleet}: saving {instance.id} as {image}")
        if saved and wait:
            ec2.get_waiter("image_available").wait(ImageIds=saved, WaiterConfig={"Delay": 15, "MaxAttempts": 120})
            click.echo(f"{fleet}: {len(saved)} AMI(s) available")
    _set_capacity(ctx, target, 0)


def _set_capacity(ctx: Context, target: found.Fleet, capacity: int) -> None:
    found.set_capacity(ctx.session, target, capacity)
    click.echo(f"{target.name}: capacity {target.desired} -> {capacity}")
    if capacity < target.minimum:
        click.echo(
            f"{target.name}: minimum {target.minimum} -> {capacity} (Auto Scaling keeps capacity at or above "
            "it; the start schedule or `pulumi up --refresh` restores it)"
        )


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_obj
def status(ctx: Context, as_json: bool) -> None:
    """Every fleet (engine, desired, running) and its instances; the services, if any."""
    fleets = found.find_fleets(ctx.session, ctx.stack)
    if not fleets:
        raise found.NotFound(
            f"nothing deployed: no spotyard fleet is tagged {STACK_TAG}={ctx.stack} in "
            f"{ctx.session.region_name} (run `make up`, or pass --stack/--region)"
        )
    report = _report(ctx, fleets)
    report["services"] = deployed.find_services(ctx.session, ctx.stack)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    console = Console()
    overview = Table(title=f"{ctx.stack} in {ctx.session.region_name}")
    for column in ("fleet", "engine", "desired", "running"):
        overview.add_column(column)
    for fleet in report["fleets"]:
        overview.add_row(fleet["name"], fleet["engine"], str(fleet["desired"]), str(fleet["running"]))
    console.print(overview)
    details = Table()
    for column in ("fleet", "instance", "type", "zone", "market", "private IP", "DNS name", "uptime", "spot price"):
        details.add_column(column)
    for fleet in report["fleets"]:
        for i in fleet["instances"]:
            details.add_row(
                fleet["name"],
                i["id"],
                i["type"],
                i["availabilityZone"],
                i["market"],
                i["privateIp"] or "",
                i["dnsName"] or "",
                _duration(i["uptimeSeconds"]),
                i["spotPrice"] or "",
            )
    console.print(details)
    if report["services"]:
        console.print(_services_table(report["services"]))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def services(ctx: Context, as_json: bool) -> None:
    """Each service: host names, desired and running tasks, the instances they run on, last deployment."""
    found_services = deployed.find_services(ctx.session, ctx.stack)
    if not found_services:
        raise found.NotFound(
            f"no services: no ECS cluster is tagged {STACK_TAG}={ctx.stack} in {ctx.session.region_name} "
            "(spotyard:services in Pulumi.<stack>.yaml, then `make up`)"
        )
    if as_json:
        click.echo(json.dumps({"stack": ctx.stack, "services": found_services}, indent=2))
        return
    Console().print(_services_table(found_services, title=f"{ctx.stack} in {ctx.session.region_name}"))


def _services_table(found_services: list[dict], title: str | None = None) -> Table:
    table = Table(title=title)
    for column in ("service", "host names", "desired", "running", "instances", "last deployment"):
        table.add_column(column)
    for service in found_services:
        table.add_row(
            service["name"],
            ", ".join(service["hostNames"]),
            str(service["desired"]),
            str(service["running"]),
            ", ".join(service["instances"]),
            _deployment(service["lastDeployment"]),
        )
    return table


def _deployment(last: dict | None) -> str:
    """`<family:revision> <rollout state> <when>` of a service's newest deployment."""
    if not last:
        return ""
    state = (last["rolloutState"] or last["status"] or "").lower()
    return " ".join(part for part in (last["taskDefinition"], state, last["createdAt"]) if part)


def _report(ctx: Context, fleets: dict[str, found.Fleet]) -> dict:
    now = datetime.now(UTC)
    listed = {name: found.instances(ctx.session, ctx.stack, name) for name in fleets}
    prices = found.spot_prices(
        ctx.session,
        {(i["InstanceType"], i["Placement"]["AvailabilityZone"]) for members in listed.values() for i in members},
    )
    report = {"stack": ctx.stack, "region": ctx.session.region_name, "fleets": []}
    for name, fleet in sorted(fleets.items()):
        zone = fleet.tags.get(DNS_ZONE_TAG)
        members = [
            {
                "id": i["InstanceId"],
                "type": i["InstanceType"],
                "availabilityZone": i["Placement"]["AvailabilityZone"],
                "market": "spot" if i.get("InstanceLifecycle") == "spot" else "on-demand",
                "state": i["State"]["Name"],
                "privateIp": i.get("PrivateIpAddress"),
                "dnsName": f"{name}-{i['InstanceId']}.{zone}" if zone else None,
                "uptimeSeconds": int((now - i["LaunchTime"]).total_seconds()),
                "spotPrice": prices.get((i["InstanceType"], i["Placement"]["AvailabilityZone"])),
            }
            for i in listed[name]
        ]
        report["fleets"].append(
            {
                "name": name,
                "engine": fleet.engine,
                "desired": fleet.desired,
                "running": sum(m["state"] == "running" for m in members),
                "instances": members,
            }
        )
    return report


def _duration(seconds: int) -> str:
    hours, rest = divmod(max(seconds, 0), 3600)
    return f"{hours}h{rest // 60:02d}m"


@main.command("ssh-config")
@click.pass_obj
def ssh_config(ctx: Context) -> None:
    """A ~/.ssh/config block for every fleet with ssh (as the sshConfig stack output)."""
    fleets = found.find_fleets(ctx.session, ctx.stack)
    if not fleets:
        raise found.NotFound(
            f"nothing deployed: no spotyard fleet is tagged {STACK_TAG}={ctx.stack} in {ctx.session.region_name}"
        )
    hosts = [host_from_tags(name, f.tags, ctx.stack, ctx.session.region_name) for name, f in sorted(fleets.items())]
    click.echo(render([host for host in hosts if host]), nl=False)


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "-i",
    "--identity-file",
    default=None,
    help="Private key; its .pub is pushed. Default: the fleet's ssh.identityFile.",
)
@click.pass_obj
def ssh(ctx: Context, name: str, command: tuple[str, ...], identity_file: str | None) -> None:
    """ssh to NAME (a fleet: its newest running instance; or <fleet>-i-...), pushing your key first."""
    target = connect.resolve(ctx.session, ctx.stack, name)
    identity = identity_file or target.host.identity_file
    connect.push_key(ctx.session, target, connect.public_key(identity))
    argv = connect.command_line(target, identity, command)
    os.execvp(argv[0], argv)


@main.command()
@click.option(
    "--days",
    default=7,
    show_default=True,
    type=click.IntRange(min=1, max=42),
    help="Window, ending now (the Auto Scaling activity history keeps six weeks).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def cost(ctx: Context, days: int, as_json: bool) -> None:
    """Per fleet: instance-hours, what they cost at Spot prices, on demand, and the saving."""
    from spotyard.cost import report

    result = report(ctx.session, ctx.stack, days)
    if not result["fleets"]:
        raise found.NotFound(
            f"nothing deployed: no spotyard fleet is tagged {STACK_TAG}={ctx.stack} in {ctx.session.region_name}"
        )
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    table = Table(title=f"{ctx.stack} in {ctx.session.region_name}, last {days} day(s), USD")
    for column in ("fleet", "instances", "instance-hours", "paid", "on demand", "saving"):
        table.add_column(column, justify="left" if column == "fleet" else "right")
    for fleet in result["fleets"]:
        saving = f"{fleet['saving']:.2f}" + (
            f" ({fleet['savingPercent']}%)" if fleet["savingPercent"] is not None else ""
        )
        hours = f"{fleet['instanceHours']:.1f}" + (
            f" ({fleet['unpricedHours']:.1f} unpriced)" if fleet["unpricedHours"] else ""
        )
        table.add_row(
            fleet["name"], str(fleet["instances"]), hours, f"{fleet['paid']:.2f}", f"{fleet['onDemand']:.2f}", saving
        )
    Console().print(table)


# Between two looks at a running job: Batch moves a job on within seconds, awslogs ships every few.
FOLLOW_SECONDS = 5


@main.command("jobs")
@click.option("--runs", "last", default=3, show_default=True, type=click.IntRange(min=1), help="Runs shown per job.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def jobs_(ctx: Context, last: int, as_json: bool) -> None:
    """Every Batch job: its schedule and its last runs (status, duration)."""
    found_jobs = batch.find_jobs(ctx.session, ctx.stack)
    if not found_jobs:
        raise found.NotFound(
            f"no jobs: no Batch job definition is tagged {STACK_TAG}={ctx.stack} in {ctx.session.region_name}"
        )
    report = {"stack": ctx.stack, "region": ctx.session.region_name, "jobs": []}
    for name, job in sorted(found_jobs.items()):
        schedule = batch.schedule(ctx.session, job)
        report["jobs"].append(
            {
                "name": name,
                "schedule": dataclasses.asdict(schedule) if schedule else None,
                "runs": [
                    {
                        "id": run.id,
                        "status": run.status,
                        "createdAt": run.created.isoformat(),
                        "durationSeconds": run.seconds,
                        "statusReason": run.reason,
                    }
                    for run in batch.runs(ctx.session, job, last)
                ],
            }
        )
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    table = Table(title=f"{ctx.stack} jobs in {ctx.session.region_name}")
    for column in ("job", "schedule", "run", "status", "started", "duration", "reason"):
        table.add_column(column)
    for entry in report["jobs"]:
        schedule = entry["schedule"]
        when = (
            f"{schedule['expression']} {schedule['timezone']}"
            + ("" if schedule["state"] == "ENABLED" else f" ({schedule['state'].lower()})")
            if schedule
            else "on demand"
        )
        if not entry["runs"]:
            table.add_row(entry["name"], when, "", "no runs", "", "", "")
        for index, run in enumerate(entry["runs"]):
            seconds = run["durationSeconds"]
            table.add_row(
                entry["name"] if index == 0 else "",
                when if index == 0 else "",
                run["id"],
                run["status"],
                run["createdAt"][:16].replace("T", " "),
                "" if seconds is None else _duration(seconds) if seconds >= 60 else f"{seconds}s",
                run["statusReason"] or "",
            )
    Console().print(table)


@main.command()
@click.argument("job")
@click.option("--wait", is_flag=True, help="Follow the run: stream its log until it ends; exit 1 if it failed.")
@click.pass_obj
def run(ctx: Context, job: str, wait: bool) -> None:
    """Submit JOB now (its latest job definition, on its queue); print the run id."""
    target = batch.job(ctx.session, ctx.stack, job)
    run_id = batch.submit(ctx.session, target)
    click.echo(f"{job}: submitted run {run_id}", err=wait)
    if wait:
        detail = batch.follow(ctx.session, target, run_id, click.echo, lambda: time.sleep(FOLLOW_SECONDS))
        _finish(job, detail)


@main.command()
@click.argument("job")
@click.argument("run_id", required=False)
@click.pass_obj
def logs(ctx: Context, job: str, run_id: str | None) -> None:
    """Print the log of one run of JOB (default: its newest run), every attempt's."""
    target = batch.job(ctx.session, ctx.stack, job)
    if run_id is None:
        newest = batch.runs(ctx.session, target, 1)
        if not newest:
            raise found.NotFound(f"{job} has no runs (Batch keeps finished jobs for at least 7 days)")
        run_id = newest[0].id
    detail = batch.describe(ctx.session, run_id)
    if detail["jobName"] != job:
        raise found.NotFound(f"run {run_id} is a run of {detail['jobName']}, not of {job}")
    for line in batch.LogFollower(ctx.session, target.log_group).new_lines(batch.log_streams(detail)):
        click.echo(line)


def _finish(job: str, detail: dict) -> None:
    reason = f": {detail['statusReason']}" if detail.get("statusReason") else ""
    click.echo(f"{job}: run {detail['jobId']} {detail['status']}{reason}", err=True)
    if detail["status"] != "SUCCEEDED":
        raise SystemExit(1)
