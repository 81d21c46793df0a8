"""`spotyard ssh`: pick the instance (the fleet's newest running one, or the one named
`<fleet>-i-...`), push the user's public key to it with EC2 Instance Connect, and build the
ssh command line for the fleet's route (spotyard/ssh_config.py), the same route the
`sshConfig` output takes.

Why EC2 Instance Connect and not keys in the stack configuration: the key never enters
the stack (nothing to redeploy when someone joins or leaves), each push is an IAM-checked,
CloudTrail-logged call by the person connecting, scoped by tag and Linux user, and the key
is only accepted for 60 seconds. It needs the `ec2-instance-connect` package on the AMI
(Amazon Linux 2023 has it; Ubuntu packages it) and IMDS on the instance; the instance role
needs nothing for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spotyard_lambda.names import INSTANCE_NAME, instance_name

from spotyard import fleets as found
from spotyard.ssh_config import SshHost, host_from_tags, session_command


@dataclass(frozen=True)
class Target:
    host: SshHost
    instance_id: str


def resolve(session, stack: str, name: str) -> Target:
    """`<fleet>` -> its newest running instance; `<fleet>-i-...` -> that instance, if it runs in the fleet."""
    named = INSTANCE_NAME.fullmatch(name)
    fleet_name, wanted = (named["fleet"], named["instance"]) if named else (name, None)
    fleet = found.fleet(session, stack, fleet_name)
    host = host_from_tags(fleet_name, fleet.tags, stack, session.region_name)
    if host is None:
        raise found.NotFound(f"fleet '{fleet_name}' has no ssh (add an `ssh:` section to it)")
    running = [i["InstanceId"] for i in found.instances(session, stack, fleet_name) if i["State"]["Name"] == "running"]
    if wanted:
        if wanted not in running:
            raise found.NotFound(f"{wanted} is not a running instance of {fleet_name}")
        return Target(host, wanted)
    if not running:
        raise found.NotFound(f"no running instance of {fleet_name} (spotyard launch {fleet_name})")
    return Target(host, running[-1])  # found.instances sorts by launch time


def public_key(identity_file: str) -> str:
    path = Path(f"{identity_file}.pub").expanduser()
    if not path.is_file():
        raise found.NotFound(
            f"no public key at {path}: create one with `ssh-keygen -t ed25519 -f "
            f"{identity_file}`, or pass -i / set ssh.identityFile"
        )
    return path.read_text().strip()


def push_key(session, target: Target, key: str) -> None:
    """The key is accepted for 60 s by the instance's sshd (AuthorizedKeysCommand reads it from IMDS).
    https://docs.aws.amazon.com/ec2-instance-connect/latest/APIReference/API_SendSSHPublicKey.html"""
    session.client("ec2-instance-connect").send_ssh_public_key(
        InstanceId=target.instance_id, InstanceOSUser=target.host.user, SSHPublicKey=key
    )


def command_line(target: Target, identity_file: str, command: tuple[str, ...] = ()) -> list[str]:
    host = target.host
    options = {
        "IdentityFile": identity_file,
        "IdentitiesOnly": "yes",
        "StrictHostKeyChecking": "no",
        "UserKnownHostsFile": "/dev/null",
        "ServerAliveInterval": "30",
    }
    if host.forward_agent:
        options["ForwardAgent"] = "yes"
    if host.route == "ssm":
        options["ProxyCommand"] = session_command(host, target.instance_id)
        destination = target.instance_id
    else:
        destination = f"{instance_name(host.fleet, target.instance_id)}.{host.zone_name}"
        if host.route == "bastion":
            options["ProxyJump"] = host.bastion
    return [
        "ssh",
        *(arg for key, value in options.items() for arg in ("-o", f"{key}={value}")),
        f"{host.user}@{destination}",
        *(["--", *command] if command else []),
    ]
