"""HomeVolume under mocks: every EFS resource, and what its file-system policy allows."""

from __future__ import annotations

import json

import pytest

from tests.conftest import dev_config
from tests.user_data import bootstrap


@pytest.fixture
def dev(deploy):
    return deploy(dev_config())


def test_file_system_is_encrypted_tiered_backed_up_and_kept_on_destroy(dev):
    fs = dev.one("aws:efs/fileSystem:FileSystem", "workbench-home-fs")
    assert fs.inputs["encrypted"] is True
    assert fs.inputs["lifecyclePolicies"] == [
        {"transitionToIa": "AFTER_30_DAYS"},
        {"transitionToPrimaryStorageClass": "AFTER_1_ACCESS"},
    ]
    assert fs.retain_on_delete is True
    backup = dev.one("aws:efs/backupPolicy:BackupPolicy", "workbench-home-backup")
    assert backup.inputs == {"fileSystemId": fs.id, "backupPolicy": {"status": "ENABLED"}}
    assert dev.one("aws:efs/accessPoint:AccessPoint", "workbench-home-access-point").retain_on_delete is True
    assert dev.outputs["fleets"]["workbench"]["homeFileSystemId"] == fs.id
    assert [r.name for r in dev.of_type("spotyard:index:HomeVolume")] == ["workbench-home"]


def test_retain_on_destroy_false_lets_destroy_delete_it(deploy):
    config = dev_config()
    config["spotyard:fleets"]["workbench"]["home"]["retainOnDestroy"] = False
    assert deploy(config).one("aws:efs/fileSystem:FileSystem", "workbench-home-fs").retain_on_delete is False


def test_one_mount_target_per_zone_behind_nfs_from_the_fleet_only(dev):
    fs = dev.one("aws:efs/fileSystem:FileSystem", "workbench-home-fs")
    nfs = dev.one("aws:ec2/securityGroup:SecurityGroup", "workbench-home-nfs-sg")
    targets = dev.of_type("aws:efs/mountTarget:MountTarget")
    assert sorted(t.inputs["subnetId"] for t in targets) == sorted(dev.outputs["subnetIds"])
    assert all(t.inputs["fileSystemId"] == fs.id and t.inputs["securityGroups"] == [nfs.id] for t in targets)
    rules = [
        r
        for r in dev.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["securityGroupId"] == nfs.id
    ]
    fleet_sg = dev.one("aws:ec2/securityGroup:SecurityGroup", "workbench-sg")
    assert [
        (r.inputs["referencedSecurityGroupId"], r.inputs["fromPort"], r.inputs["toPort"], r.inputs["ipProtocol"])
        for r in rules
    ] == [(fleet_sg.id, 2049, 2049, "tcp")]
    assert not [r for r in rules if "cidrIpv4" in r.inputs or "cidrIpv6" in r.inputs]


def test_access_point_is_rooted_at_the_fleet_and_owned_by_the_ssh_user(dev, deploy):
    point = dev.one("aws:efs/accessPoint:AccessPoint", "workbench-home-access-point")
    assert point.inputs["posixUser"] == {"uid": 1000, "gid": 1000}
    assert point.inputs["rootDirectory"] == {
        "path": "/workbench",
        "creationInfo": {"ownerUid": 1000, "ownerGid": 1000, "permissions": "0750"},
    }
    config = dev_config()
    config["spotyard:fleets"]["workbench"]["home"].update(uid=1500, gid=1600)
    changed = deploy(config).one("aws:efs/accessPoint:AccessPoint", "workbench-home-access-point")
    assert changed.inputs["posixUser"] == {"uid": 1500, "gid": 1600}


# A small evaluator of EFS resource policies for the cases that matter here.
def _decides(policy: dict, principal: str, action: str, *, tls: bool, access_point: str | None) -> bool:
    context = {"aws:SecureTransport": "true" if tls else "false"}
    if access_point:
        context["elasticfilesystem:AccessPointArn"] = access_point

    def applies(statement: dict) -> bool:
        principals = statement["Principal"]["AWS"]
        if principals != "*" and principal not in (principals if isinstance(principals, list) else [principals]):
            return False
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if "*" not in actions and action not in actions:
            return False
        for operator, tests in statement.get("Condition", {}).items():
            for key, wanted in tests.items():
                have = context.get(key)
                if operator in ("Bool", "StringEquals") and have != wanted:
                    return False
                if operator == "StringNotEquals" and have == wanted:
                    return False
        return True

    matching = [s for s in policy["Statement"] if applies(s)]
    return any(s["Effect"] == "Allow" for s in matching) and not any(s["Effect"] == "Deny" for s in matching)


def test_policy_requires_tls_and_the_access_point_and_admits_only_the_fleet_role(dev):
    policy = json.loads(dev.one("aws:efs/fileSystemPolicy:FileSystemPolicy", "workbench-home-policy").inputs["policy"])
    role = dev.one("aws:iam/role:Role", "workbench-instance-role").outputs["arn"]
    other_role = dev.one("aws:iam/role:Role", "workers-instance-role").outputs["arn"]
    point = dev.one("aws:efs/accessPoint:AccessPoint", "workbench-home-access-point").outputs["arn"]
    for action in ("elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"):
        assert _decides(policy, role, action, tls=True, access_point=point)
        assert not _decides(policy, role, action, tls=False, access_point=point)
        assert not _decides(policy, role, action, tls=True, access_point=None)
        assert not _decides(policy, role, action, tls=True, access_point=point + "0")
        assert not _decides(policy, other_role, action, tls=True, access_point=point)
    assert not _decides(policy, role, "elasticfilesystem:ClientRootAccess", tls=True, access_point=point)


def test_instances_learn_the_file_system_and_access_point(dev):
    script = bootstrap(dev, "workbench")
    fs = dev.one("aws:efs/fileSystem:FileSystem", "workbench-home-fs")
    point = dev.one("aws:efs/accessPoint:AccessPoint", "workbench-home-access-point")
    assert f"SPOTYARD_EFS_ID={fs.id}" in script
    assert f"SPOTYARD_EFS_ACCESS_POINT={point.id}" in script
    assert "SPOTYARD_HOME_PATH=/home/ec2-user/var" in script
