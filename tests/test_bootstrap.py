"""The fleet's user data: cloud-init multipart, spotyard's part first, shell that passes
bash -n and shellcheck, and an environment naming what the stack built."""

from __future__ import annotations

import base64
import gzip

import pytest

from components.spot_fleet import USER_DATA_LIMIT, encode_user_data
from stack import bootstrap
from tests.conftest import dev_config
from tests.shell import check_shell
from tests.user_data import parts


@pytest.fixture
def dev(deploy):
    return deploy(dev_config())


def test_spotyard_part_comes_first_and_the_users_script_after(dev):
    found = parts(dev, "workbench")
    assert [(kind, name) for kind, name, _ in found] == [
        ("text/x-shellscript", "10-spotyard-bootstrap.sh"),
        ("text/x-shellscript", "20-user-data"),
    ]
    assert sorted(name for _, name, _ in found) == [name for _, name, _ in found]  # cloud-init runs them sorted
    assert found[1][2].startswith("#!/bin/bash\n# The workbench's own setup")


def test_cloud_config_user_data_keeps_its_type(deploy):
    config = dev_config()
    config["spotyard:fleets"]["workers"]["userData"] = "#cloud-config\npackages: [jq]\n"
    assert parts(deploy(config), "workers")[1][:2] == ("text/cloud-config", "20-user-data")


def test_fleet_without_user_data_gets_only_the_bootstrap(deploy):
    config = dev_config()
    del config["spotyard:fleets"]["workers"]["userData"]
    assert [name for _, name, _ in parts(deploy(config), "workers")] == ["10-spotyard-bootstrap.sh"]


def test_rendered_bootstrap_passes_bash_n_and_shellcheck(dev, tmp_path):
    for fleet in ("workbench", "workers"):
        check_shell(parts(dev, fleet)[0][2], tmp_path, f"{fleet}-bootstrap.sh")


def test_watcher_passes_bash_n_and_shellcheck_as_installed(dev, tmp_path):
    script = parts(dev, "workbench")[0][2]
    start = script.index("cat > /usr/local/sbin/spotyard-interruption-watcher <<'SPOTYARD_EOF'\n")
    body = script[start:].split("\n", 1)[1].split("\nSPOTYARD_EOF\n", 1)[0]
    assert body == (bootstrap.INSTANCE_DIR / "interruption-watcher.sh").read_text().rstrip("\n")
    check_shell(body + "\n", tmp_path, "spotyard-interruption-watcher")


def test_bootstrap_sets_hostname_mounts_home_and_starts_the_watcher(dev):
    script = parts(dev, "workbench")[0][2]
    for expected in (
        "SPOTYARD_FLEET=workbench",
        "SPOTYARD_STACK=spotyard/dev",
        "SPOTYARD_SSH_USER=ec2-user",
        'hostnamectl set-hostname "${SPOTYARD_FLEET}-${instance_id}"',
        "X-aws-ec2-metadata-token-ttl-seconds",  # IMDSv2
        "_netdev,noresvport,tls,iam,accesspoint=${SPOTYARD_EFS_ACCESS_POINT}",
        'grep -qF "${entry}" /etc/fstab',  # idempotent fstab entry
        'mountpoint -q "${SPOTYARD_HOME_PATH}" || mount',
        'until getent hosts "${dns}"',  # waits for the mount target's name
        "systemctl enable --now spotyard-interruption-watcher.service",
        "install -d -m 0755 /etc/spotyard/on-interruption.d",
    ):
        assert expected in script, expected
    assert "SPOTYARD_EFS_ID=''" in parts(dev, "workers")[0][2]  # no home: mount skipped


def test_environment_values_are_shell_quoted():
    script = bootstrap.bootstrap_script({"SPOTYARD_X": "a b'c $(reboot)"})
    assert "SPOTYARD_X='a b'\"'\"'c $(reboot)'" in script


def test_user_data_stays_under_the_ec2_limit_by_gzip_when_large():
    small = "#!/bin/bash\necho hi\n"
    assert base64.b64decode(encode_user_data(small)).decode() == small
    large = "#!/bin/bash\n" + "".join(f"echo line {i}\n" for i in range(3000))
    assert len(large) > USER_DATA_LIMIT
    packed = base64.b64decode(encode_user_data(large))
    assert len(packed) <= USER_DATA_LIMIT and gzip.decompress(packed).decode() == large
    assert encode_user_data(None) is None


def test_a_user_script_cannot_break_the_multipart_document():
    with pytest.raises(ValueError, match="must not contain"):
        bootstrap.user_data("#!/bin/bash\n", f"#!/bin/bash\n--{bootstrap.BOUNDARY}\n")
