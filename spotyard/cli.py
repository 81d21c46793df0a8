"""`spotyard`: launch, stop and look at a deployed stack's fleets, and print their ssh config.

    spotyard [--stack dev] [--region ap-northeast-1] status [--json]
    spotyard launch <fleet> [-n N]
    spotyard stop <fleet> [--no-wait]
    spotyard ssh-config
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import boto3
import click
import yaml
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError
from rich.console import Console
from rich.table import Table

from spotyard import fleets as found
from spotyard.ssh_config import SshHost, render


class Context:
    def __init__(self, stack: str, region: str | None) -> None:
        self.stack = stack
        self.session = boto3.session.Session(region_name=region)


def stack_tag(stack: str) -> str:
    """`dev` -> `<project>/dev`, the project named by ./Pulumi.yaml (spotyard by default)."""
    if "/" in stack:
        return stack
    project = Path("Pulumi.yaml")
    name = yaml.safe_load(project.read_text()).get("name", "spotyard") if project.exists() else "spotyard"
    return f"{name}/{stack}"


class SpotyardGroup(click.Group):
    """Turns AWS and lookup failures into one clear line and exit status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except NoCredentialsError:
            raise click.ClickException("no AWS credentials: run `aws configure` or `aws sso login`, "
                                       "or set AWS_PROFILE") from None
        except NoRegionError:
            raise click.ClickException("no AWS region: pass --region or set AWS_REGION") from None
        except found.NotFound as error:
            raise click.ClickException(str(error)) from None
        except ClientError as error:
            raise click.ClickException(f"AWS refused: {error}") from None
        except BotoCoreError as error:
            raise click.ClickException(f"AWS unreachable: {error}") from None


@click.group(cls=SpotyardGroup)
@click.option("--stack", default=lambda: os.environ.get("SPOTYARD_STACK", "dev"), show_default="dev",
              help="Stack name (dev) or project/stack; env SPOTYARD_STACK.")
@click.option("--region", default=None, help="AWS region; default from AWS_REGION or your AWS config.")
@click.pass_context
def main(ctx: click.Context, stack: str, region: str | None) -> None:
    """Launch, stop and inspect spotyard fleets."""
    logging.getLogger("spotyard").setLevel(logging.WARNING)  # the Lambdas' shared code logs its steps
    ctx.obj = Context(stack_tag(stack), region)


@main.command()
@click.argument("fleet")
@click.option("-n", "--count", default=1, show_default=True, type=click.IntRange(min=1), help="Instances to run.")
@click.pass_obj
def launch(ctx: Context, fleet: str, count: int) -> None:
    """Run COUNT instances of FLEET."""
    _set_capacity(ctx, found.fleet(ctx.session, ctx.stack, fleet), count)


@main.command()
@click.argument("fleet")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait until the AMIs are available before stopping.")
@click.pass_obj
def stop(ctx: Context, fleet: str, wait: bool) -> None:
    """Stop FLEET: save its instances as AMIs first when it keeps images, then capacity 0."""
    from spotyard_lambda.images import start_image
    from spotyard_lambda.instances import Instance

    target = found.fleet(ctx.session, ctx.stack, fleet)
    role = target.tags.get("spotyard:image-role")
    if role:
        ec2 = ctx.session.client("ec2")
        running = [Instance.from_api(i) for i in found.instances(ctx.session, ctx.stack, fleet)
                   if i["State"]["Name"] == "running"]
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
        click.echo(f"{target.name}: minimum {target.minimum} -> {capacity} (Auto Scaling keeps capacity at or above "
                   "it; the start schedule or `pulumi up --refresh` restores it)")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_obj
def status(ctx: Context, as_json: bool) -> None:
    """Every fleet (engine, desired, running) and its instances."""
    fleets = found.find_fleets(ctx.session, ctx.stack)
    if not fleets:
        raise found.NotFound(f"nothing deployed: no spotyard fleet is tagged spotyard:stack={ctx.stack} in "
                             f"{ctx.session.region_name} (run `make up`, or pass --stack/--region)")
    report = _report(ctx, fleets)
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
            details.add_row(fleet["name"], i["id"], i["type"], i["availabilityZone"], i["market"], i["privateIp"] or "",
                            i["dnsName"] or "", _duration(i["uptimeSeconds"]), i["spotPrice"] or "")
    console.print(details)


def _report(ctx: Context, fleets: dict[str, found.Fleet]) -> dict:
    now = datetime.now(UTC)
    listed = {name: found.instances(ctx.session, ctx.stack, name) for name in fleets}
    prices = found.spot_prices(ctx.session, {(i["InstanceType"], i["Placement"]["AvailabilityZone"])
                                             for members in listed.values() for i in members})
    report = {"stack": ctx.stack, "region": ctx.session.region_name, "fleets": []}
    for name, fleet in sorted(fleets.items()):
        zone = fleet.tags.get("spotyard:dns-zone")
        members = [{
            "id": i["InstanceId"], "type": i["InstanceType"], "availabilityZone": i["Placement"]["AvailabilityZone"],
            "market": "spot" if i.get("InstanceLifecycle") == "spot" else "on-demand",
            "state": i["State"]["Name"], "privateIp": i.get("PrivateIpAddress"),
            "dnsName": f"{name}-{i['InstanceId']}.{zone}" if zone else None,
            "uptimeSeconds": int((now - i["LaunchTime"]).total_seconds()),
            "spotPrice": prices.get((i["InstanceType"], i["Placement"]["AvailabilityZone"])),
        } for i in listed[name]]
        report["fleets"].append({"name": name, "engine": fleet.engine, "desired": fleet.desired,
                                 "running": sum(m["state"] == "running" for m in members), "instances": members})
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
        raise found.NotFound(f"nothing deployed: no spotyard fleet is tagged spotyard:stack={ctx.stack} in "
                             f"{ctx.session.region_name}")
    hosts = [SshHost(fleet=name, user=f.tags["spotyard:ssh-user"], stack_tag=ctx.stack, region=ctx.session.region_name,
                     zone_name=f.tags.get("spotyard:dns-zone"), bastion=f.tags.get("spotyard:ssh-bastion"))
             for name, f in sorted(fleets.items()) if "spotyard:ssh-user" in f.tags]
    click.echo(render(hosts), nl=False)
