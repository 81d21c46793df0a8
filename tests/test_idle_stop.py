"""Idle stop: the on-instance detector on recorded inputs (who, ps, uptime, /proc/stat), and
its leave-the-fleet call against moto for both engines, checked against the instance role."""

from __future__ import annotations

import boto3
import pytest

from tests.agent import OnInstance, agent
from tests.conftest import ROOT, dev_config
from tests.user_data import bootstrap

RECORDED = ROOT / "tests" / "fixtures" / "instance"


def recorded(name: str) -> str:
    return (RECORDED / name).read_text()


def test_cpu_busy_share_between_two_samples_of_proc_stat():
    first = agent.CpuSample.parse(recorded("proc-stat-0.txt"))
    quiet = agent.CpuSample.parse(recorded("proc-stat-quiet.txt"))
    busy = agent.CpuSample.parse(recorded("proc-stat-busy.txt"))
    assert quiet.busy_percent_since(first) == pytest.approx(0.83, abs=0.01)  # 100 busy of 12,000 ticks
    assert busy.busy_percent_since(first) == pytest.approx(53.0, abs=0.1)  # 7,000 of 13,200
    assert first.busy_percent_since(first) == 0.0


def test_sessions_are_ssh_logins_and_session_manager_workers():
    assert agent.sessions(recorded("who-ssh.txt"), recorded("ps-ssh-terminal.txt").splitlines()) == 1
    assert agent.sessions(recorded("who-nobody.txt"), recorded("ps-session-manager.txt").splitlines()) == 1
    assert agent.sessions(recorded("who-nobody.txt"), recorded("ps-quiet.txt").splitlines()) == 0


# `ps -eo args=` as these sessions leave it (OpenSSH 8.7 on Amazon Linux 2023 titles the
# connection's process `sshd: <user>@notty`, OpenSSH 9.8+ `sshd-session: ...`). The samples are
# written in that format from OpenSSH's process titles, not captured on a live instance here.
@pytest.mark.parametrize(
    ("sample", "count"),
    [
        ("ps-vscode-remote-ssh.txt", 2),  # VS Code Remote-SSH through Session Manager: the tunnel and the ssh
        ("ps-port-forward.txt", 1),  # ssh -N -L 8888:localhost:8888
        ("ps-ssh-command.txt", 1),  # ssh host make test (sshd-session, OpenSSH 9.8+)
        ("ps-ssh-preauth.txt", 0),  # someone knocking, not logged in
    ],
)
def test_ssh_connections_without_a_terminal_count_although_who_is_empty(sample, count):
    assert recorded("who-nobody.txt").strip() == ""
    assert agent.sessions(recorded("who-nobody.txt"), recorded(sample).splitlines()) == count


def test_the_idle_check_reads_whole_command_lines(monkeypatch):
    """`ps -eo comm=` would show only `sshd`: the user@notty title is in args."""
    asked = []
    monkeypatch.setattr(
        agent.subprocess,
        "run",
        lambda argv, **kwargs: (
            asked.append(argv)
            or type("Done", (), {"stdout": recorded("ps-port-forward.txt") if argv[0] == "ps" else ""})()
        ),
    )
    monkeypatch.setattr(agent, "assess", lambda state, **kwargs: (agent.IdleState(), f"users={kwargs['users']}"))
    monkeypatch.setattr(agent.IdleState, "save", lambda self, path: None)
    assert agent.idle_check({"SPOTYARD_IDLE_STOP_MINUTES": "60"}) == "users=1"
    assert ["ps", "-eo", "args="] in asked


def run_checks(steps, limit=60):
    """Feed (minute, users, jobs, cpu sample) through assess; returns the actions taken."""
    state, actions = None, []
    for minute, users, jobs, sample in steps:
        state, action = agent.assess(
            state,
            now=1_000_000 + minute * 60,
            uptime=float(recorded("uptime-1h.txt").split()[0]) - 3600 + minute * 60,
            cpu=agent.CpuSample.parse(recorded(sample)),
            users=users,
            jobs=jobs,
            limit_minutes=limit,
        )
        actions.append(action)
    return actions


def test_a_box_nobody_uses_warns_five_minutes_before_and_leaves_at_the_limit():
    quiet = "proc-stat-quiet.txt"
    steps = [(m, 0, 0, quiet) for m in (30, 54, 55, 56, 59, 60)]
    assert run_checks(steps) == ["idle", "idle", "warn", "idle", "idle", "leave"]


def test_an_ssh_session_a_busy_job_or_a_busy_cpu_keeps_it():
    steps = [
        (50, 0, 0, "proc-stat-quiet.txt"),
        (56, 1, 0, "proc-stat-quiet.txt"),  # someone logs in
        (70, 0, 0, "proc-stat-quiet.txt"),
        (80, 0, 1, "proc-stat-quiet.txt"),  # a spotyard-busy job
        (90, 0, 0, "proc-stat-0.txt"),
        (91, 0, 0, "proc-stat-busy.txt"),  # the CPU works
        (140, 0, 0, "proc-stat-busy.txt"),
        (199, 0, 0, "proc-stat-busy.txt"),
        (200, 0, 0, "proc-stat-busy.txt"),
    ]
    assert run_checks(steps) == ["idle", "active", "idle", "active", "idle", "active", "idle", "warn", "leave"]


def test_idle_time_counts_from_boot_when_nobody_ever_came():
    state, action = agent.assess(
        None, now=10_000, uptime=3600, cpu=agent.CpuSample(1, 1), users=0, jobs=0, limit_minutes=60
    )
    assert action == "leave" and state.idle_since == 10_000 - 3600


def test_idle_state_survives_between_checks(tmp_path):
    state = agent.IdleState(idle_since=12.5, warned=True, cpu=agent.CpuSample(100, 40))
    state.save(tmp_path / "idle.json")
    assert agent.IdleState.load(tmp_path / "idle.json") == state
    assert agent.IdleState.load(tmp_path / "missing.json") is None


@pytest.fixture
def stack(deploy):
    config = dev_config()
    config["spotyard:fleets"]["workers"]["idleStopMinutes"] = 30
    return deploy(config)


def test_an_idle_asg_instance_leaves_its_group_with_one_less_capacity(stack):
    group = stack.one("aws:autoscaling/group:Group", "workbench-group").id
    autoscaling = boto3.client("autoscaling")
    autoscaling.update_auto_scaling_group(AutoScalingGroupName=group, MaxSize=2, DesiredCapacity=2)
    idle, other = sorted(
        i["InstanceId"]
        for i in autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0][
            "Instances"
        ]
    )
    instance = OnInstance(stack, "workbench", "asg", idle)
    instance.fleet.leave()
    after = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
    assert after["DesiredCapacity"] == 1 and [i["InstanceId"] for i in after["Instances"]] == [other]
    assert instance.refused() == []


def test_an_idle_spot_fleet_instance_lowers_the_target_then_terminates_itself(stack, aws):
    request = stack.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").id
    template = stack.one("aws:ec2/launchTemplate:LaunchTemplate", "workers-template").id
    idle, other = sorted(aws.scale_spot_fleet(request, 2, template))
    instance = OnInstance(stack, "workers", "spot-fleet", idle)
    instance.fleet.leave()
    ec2 = boto3.client("ec2")
    config = ec2.describe_spot_fleet_requests(SpotFleetRequestIds=[request])["SpotFleetRequestConfigs"][0]
    assert config["SpotFleetRequestConfig"]["TargetCapacity"] == 1
    states = {
        i["InstanceId"]: i["State"]["Name"]
        for r in ec2.describe_instances(InstanceIds=[idle, other])["Reservations"]
        for i in r["Instances"]
    }
    assert states == {idle: "terminated", other: "running"}
    assert instance.refused() == []


def test_a_busy_job_on_a_fleet_without_a_queue_is_counted_on_the_box_only(stack, tmp_path):
    """No autoscaler to keep off, and no grant for the mark: the idle check's count is all."""
    group = stack.one("aws:autoscaling/group:Group", "workbench-group").id
    (member,) = boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
        "AutoScalingGroups"
    ][0]["Instances"]
    instance = OnInstance(stack, "workbench", "asg", member["InstanceId"])
    with agent.kept_busy(instance.fleet, state_dir=tmp_path):
        assert agent.busy_jobs(tmp_path) == 1
    assert agent.busy_jobs(tmp_path) == 0
    assert instance.recorder.calls == []


def test_an_idle_spot_fleet_instance_at_the_minimum_stays(deploy, aws):
    """Spot Fleet has no minimum: the agent reads minCapacity from /etc/spotyard/env."""
    config = dev_config()
    config["spotyard:fleets"]["workers"].update(idleStopMinutes=30, minCapacity=2, capacity=2)
    run = deploy(config)
    assert "SPOTYARD_MIN_CAPACITY=2" in bootstrap(run, "workers")
    request = run.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").id
    template = run.one("aws:ec2/launchTemplate:LaunchTemplate", "workers-template").id
    idle, _ = sorted(aws.scale_spot_fleet(request, 2, template))
    instance = OnInstance(run, "workers", "spot-fleet", idle)
    instance.fleet.env["SPOTYARD_MIN_CAPACITY"] = "2"  # as the bootstrap wrote it
    assert instance.fleet.leave() is False
    ec2 = boto3.client("ec2")
    config = ec2.describe_spot_fleet_requests(SpotFleetRequestIds=[request])["SpotFleetRequestConfigs"][0]
    assert config["SpotFleetRequestConfig"]["TargetCapacity"] == 2
    state = ec2.describe_instances(InstanceIds=[idle])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "running"


def test_the_instance_role_may_not_act_on_another_fleet(stack, aws):
    """workbench's role, used on a workers instance: refused by the tag conditions."""
    request = stack.one("aws:ec2/spotFleetRequest:SpotFleetRequest", "workers-request").id
    template = stack.one("aws:ec2/launchTemplate:LaunchTemplate", "workers-template").id
    (victim,) = aws.scale_spot_fleet(request, 1, template)
    instance = OnInstance(stack, "workers", "spot-fleet", victim)
    instance.fleet.leave()
    assert instance.refused() == []
    refused = instance.refused(role_fleet="workbench")
    assert any(r.startswith("ec2:TerminateInstances") for r in refused)
    assert any(r.startswith("ec2:ModifySpotFleetRequest") for r in refused)


def test_the_timer_is_installed_and_enabled_only_with_idle_stop(deploy):
    from tests.user_data import bootstrap

    run = deploy(dev_config())
    workbench = bootstrap(run, "workbench")
    assert "SPOTYARD_IDLE_STOP_MINUTES=60" in workbench
    assert "cat > /etc/systemd/system/spotyard-idle-check.timer" in workbench
    assert (
        'if [ -n "${SPOTYARD_IDLE_STOP_MINUTES}" ]; then\n  systemctl enable --now spotyard-idle-check.timer'
        in workbench
    )
    assert "SPOTYARD_IDLE_STOP_MINUTES=''" in bootstrap(run, "workers")  # the timer stays off there


def test_an_idle_asg_instance_at_the_minimum_stays(deploy):
    """Auto Scaling refuses a decrement at MinSize (ValidationError "... will violate group's
    min size constraint", see tests/harness/moto_fixes/): minCapacity instances stay, idle
    or not, and leaving says so instead of failing every minute."""
    config = dev_config()
    config["spotyard:fleets"]["workbench"] |= {"minCapacity": 1, "capacity": 2, "maxCapacity": 2}
    run = deploy(config)
    group = run.one("aws:autoscaling/group:Group", "workbench-group").id
    autoscaling = boto3.client("autoscaling")
    first, second = sorted(
        i["InstanceId"]
        for i in autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0][
            "Instances"
        ]
    )
    assert OnInstance(run, "workbench", "asg", first).fleet.leave() is True
    at_minimum = OnInstance(run, "workbench", "asg", second)
    assert at_minimum.fleet.leave() is False
    after = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
    assert (after["DesiredCapacity"], [i["InstanceId"] for i in after["Instances"]]) == (1, [second])
    assert at_minimum.refused() == []
