"""The `~/.ssh/config` block for a stack's fleets (the `sshConfig` output and `spotyard ssh-config`),
and the route `spotyard ssh` takes: the two always agree.

Three routes, chosen from the fleet's configuration:
- `ssh.bastion` (with DNS): `ProxyJump <bastion>` to `<fleet>.<zone>`;
- `ssh.allowFrom` (with DNS): straight to `<fleet>.<zone>` (port 22 is open to you, and you
  resolve the zone: a public zone, a VPN);
- otherwise Session Manager: the ProxyCommand resolves `<fleet>` to the fleet's newest running
  instance (or takes the id from `<fleet>-i-...`), pushes your public key
  (`<IdentityFile>.pub`) with EC2 Instance Connect for the next 60 seconds, and opens
  `AWS-StartSSHSession` to port 22. No open port, no bastion, no key pair: the laptop needs
  AWS credentials, the AWS CLI v2 and the Session Manager plugin.

Spot replaces hosts all the time, so host keys are not pinned.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from spotyard_lambda.names import DNS_ZONE_TAG, FLEET_TAG, SSH_TAG_PREFIX, STACK_TAG, instance_name

DEFAULT_IDENTITY_FILE = "~/.ssh/id_ed25519"
SSM_DOCUMENT = "AWS-StartSSHSession"
_COMMON = ("StrictHostKeyChecking no", "UserKnownHostsFile /dev/null", "ServerAliveInterval 30")


@dataclass(frozen=True)
class SshHost:
    fleet: str
    user: str
    stack_tag: str
    region: str
    zone_name: str | None = None
    bastion: str | None = None
    direct: bool = False  # port 22 open (ssh.allowFrom): the DNS name is the way in
    identity_file: str = DEFAULT_IDENTITY_FILE
    forward_agent: bool = False

    @property
    def route(self) -> str:
        """ "bastion", "direct" or "ssm"."""
        if self.zone_name and self.bastion:
            return "bastion"
        if self.zone_name and self.direct:
            return "direct"
        return "ssm"

    @property
    def public_key_file(self) -> str:
        return f"{self.identity_file}.pub"


def _shell_path(path: str) -> str:
    """A path for sh: `~/x` becomes `"$HOME"/x` (a tilde inside a word is not expanded)."""
    return f'"$HOME"/{shlex.quote(path[2:])}' if path.startswith("~/") else shlex.quote(path)


def session_command(host: SshHost, target: str) -> str:
    """The AWS CLI's Session Manager tunnel to port %p of `target` (ssh expands %p)."""
    return (
        f"aws ssm start-session --region {host.region} --target {target} --document-name {SSM_DOCUMENT} "
        "--parameters portNumber=%p"
    )


def _proxy_command(host: SshHost, instance: str) -> str:
    """`sh -c '<find the instance>; <push the key>; exec <Session Manager to port %p>'`.

    ssh hands ProxyCommand to the user's login shell (which may be fish): the script runs
    in sh whatever that shell is. `%p` is expanded by ssh before sh sees it.
    """
    region = f"--region {host.region}"
    no_instance = (
        f'[ -n "$id" ] && [ "$id" != None ] || {{ echo "spotyard: no running instance of {host.fleet} '
        f'(spotyard launch {host.fleet})" >&2; exit 1; }}'
    )
    # Key push: https://docs.aws.amazon.com/ec2-instance-connect/latest/APIReference/API_SendSSHPublicKey.html
    push = (
        f'aws ec2-instance-connect send-ssh-public-key {region} --instance-id "$id" '
        f"--instance-os-user {host.user} --ssh-public-key file://{_shell_path(host.public_key_file)} >/dev/null"
    )
    script = "; ".join([f"id={instance}", no_instance, f"{push} || exit 1", "exec " + session_command(host, '"$id"')])
    return "ProxyCommand sh -c " + shlex.quote(script)


def _newest_instance(host: SshHost) -> str:
    query = "sort_by(Reservations[].Instances[], &LaunchTime)[-1].InstanceId"
    return (
        f"$(aws ec2 describe-instances --region {host.region} --output text "
        f"--filters Name=tag:{STACK_TAG},Values={host.stack_tag} Name=tag:{FLEET_TAG},Values={host.fleet} "
        f'Name=instance-state-name,Values=running --query "{query}")'
    )


def _instance_of_name() -> str:
    """`<fleet>-i-0abc` -> `i-0abc` (instance ids never contain `-i-`; fleet names may)."""
    return 'i-$(echo %h | sed "s/.*-i-//")'


def render(hosts: list[SshHost]) -> str:
    blocks = []
    for host in hosts:
        if host.route == "ssm":
            fleet_lines = [_proxy_command(host, _newest_instance(host))]
            instance_lines = [_proxy_command(host, _instance_of_name())]
        else:
            route = [f"ProxyJump {host.bastion}"] if host.route == "bastion" else []
            fleet_lines = [f"HostName {host.fleet}.{host.zone_name}", *route]
            instance_lines = [f"HostName %h.{host.zone_name}", *route]
        common = [
            f"User {host.user}",
            f"IdentityFile {host.identity_file}",
            "IdentitiesOnly yes",
            *(["ForwardAgent yes"] if host.forward_agent else []),
            *_COMMON,
        ]
        for pattern, lines in ((host.fleet, fleet_lines), (instance_name(host.fleet, "i-*"), instance_lines)):
            blocks.append("\n".join([f"Host {pattern}", *(f"    {line}" for line in [*lines, *common])]))
    return "\n\n".join(blocks) + "\n" if blocks else ""


def ssh_tags(host: SshHost) -> dict[str, str]:
    """What the fleet's group / request carries so that the CLI renders the same block without Pulumi."""
    tags = {f"{SSH_TAG_PREFIX}user": host.user, f"{SSH_TAG_PREFIX}identity-file": host.identity_file}
    if host.bastion:
        tags[f"{SSH_TAG_PREFIX}bastion"] = host.bastion
    if host.direct:
        tags[f"{SSH_TAG_PREFIX}direct"] = "true"
    if host.forward_agent:
        tags[f"{SSH_TAG_PREFIX}forward-agent"] = "true"
    return tags


def host_from_tags(fleet: str, tags: dict[str, str], stack_tag: str, region: str) -> SshHost | None:
    """The fleet's SshHost from its tags (those of `ssh_tags` and `spotyard:dns-zone`); None without ssh."""
    if f"{SSH_TAG_PREFIX}user" not in tags:
        return None
    return SshHost(
        fleet=fleet,
        user=tags[f"{SSH_TAG_PREFIX}user"],
        stack_tag=stack_tag,
        region=region,
        zone_name=tags.get(DNS_ZONE_TAG),
        bastion=tags.get(f"{SSH_TAG_PREFIX}bastion"),
        direct=tags.get(f"{SSH_TAG_PREFIX}direct") == "true",
        identity_file=tags.get(f"{SSH_TAG_PREFIX}identity-file", DEFAULT_IDENTITY_FILE),
        forward_agent=tags.get(f"{SSH_TAG_PREFIX}forward-agent") == "true",
    )
