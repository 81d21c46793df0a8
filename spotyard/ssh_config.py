"""The `~/.ssh/config` block for a stack's fleets (the `sshConfig` output and `spotyard ssh-config`).

With DNS, `ssh <fleet>` goes to `<fleet>.<zone>` (through the bastion when one is set) and
`ssh <fleet>-i-...` to one instance. Without DNS, both go through SSM Session Manager,
which every instance's role allows. Spot replaces hosts all the time, so host keys are
not pinned.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SshHost:
    fleet: str
    user: str
    stack_tag: str
    region: str
    zone_name: str | None = None
    bastion: str | None = None


_COMMON = ("StrictHostKeyChecking no", "UserKnownHostsFile /dev/null", "ServerAliveInterval 30")


def _ssm(host: SshHost, target: str) -> str:
    # ssh runs ProxyCommand with the user's shell, so the $(...) lookups below work.
    return (f"ProxyCommand aws ssm start-session --region {host.region} --target {target} "
            "--document-name AWS-StartSSHSession --parameters portNumber=%p")


def _newest_instance(host: SshHost) -> str:
    return (f"$(aws ec2 describe-instances --region {host.region} --output text "
            f"--filters Name=tag:spotyard:stack,Values={host.stack_tag} Name=tag:spotyard:fleet,Values={host.fleet} "
            "Name=instance-state-name,Values=running "
            "--query 'sort_by(Reservations[].Instances[], &LaunchTime)[-1].InstanceId')")


def render(hosts: list[SshHost]) -> str:
    blocks = []
    for host in hosts:
        if host.zone_name:
            route = [f"ProxyJump {host.bastion}"] if host.bastion else []
            fleet_lines = [f"HostName {host.fleet}.{host.zone_name}", *route]
            instance_lines = [f"HostName %h.{host.zone_name}", *route]
        else:
            fleet_lines = [_ssm(host, _newest_instance(host))]
            instance_lines = [_ssm(host, "i-$(echo %h | sed 's/.*-i-//')")]
        for pattern, lines in ((host.fleet, fleet_lines), (f"{host.fleet}-i-*", instance_lines)):
            blocks.append("\n".join([f"Host {pattern}", *(f"    {line}" for line in
                                                           [*lines, f"User {host.user}", *_COMMON])]))
    return "\n\n".join(blocks) + "\n" if blocks else ""
