"""The on-instance interruption watcher against a fake IMDSv2 on 127.0.0.1, which answers a
GET only with the token from a PUT, as EC2 does with IMDSv2 required. Hooks report to the
same server, so the tests wait on events rather than sleeping."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from stack.bootstrap import INSTANCE_DIR

WATCHER = INSTANCE_DIR / "interruption-watcher.sh"
TOKEN = "imds-token-1"


class FakeImds(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.interruption: dict | None = None
        self.rebalance: dict | None = None
        self.instance_id: str | None = None
        self.polls: Counter[str] = Counter()
        self.hooks: list[dict[str, str]] = []
        self.walls: list[str] = []
        self.changed = threading.Condition()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def wait(self, predicate, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    def note(self, update) -> None:
        with self.changed:
            update()
            self.changed.notify_all()


class _Handler(BaseHTTPRequestHandler):
    server: FakeImds

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: str = "") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def do_PUT(self) -> None:  # noqa: N802
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            self._send(200, TOKEN)
        else:
            self._send(400)

    def do_GET(self) -> None:  # noqa: N802
        url = urlparse(self.path)
        if url.path in ("/hook", "/wall"):
            fields = {k: v[0] for k, v in parse_qs(url.query).items()}
            target = self.server.hooks if url.path == "/hook" else self.server.walls
            self.server.note(lambda: target.append(fields if url.path == "/hook" else fields["message"]))
            return self._send(200)
        if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            return self._send(401)
        if url.path == "/latest/meta-data/instance-id" and self.server.instance_id:
            return self._send(200, self.server.instance_id)
        documents = {
            "/latest/meta-data/spot/instance-action": self.server.interruption,
            "/latest/meta-data/events/recommendations/rebalance": self.server.rebalance,
        }
        if url.path not in documents:
            return self._send(404)
        self.server.note(lambda: self.server.polls.update([url.path.rsplit("/", 1)[-1]]))
        document = documents[url.path]
        self._send(200, json.dumps(document)) if document else self._send(404)


@pytest.fixture
def imds():
    server = FakeImds()
    yield server
    server.shutdown()


def hook(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(0o755)


def reporting_hook(directory: Path, name: str, url: str) -> None:
    hook(
        directory,
        name,
        f'curl -sf -G "{url}/hook" --data-urlencode name={name} '
        '--data-urlencode "notice=${SPOTYARD_NOTICE}" '
        '--data-urlencode "detail=${SPOTYARD_NOTICE_DETAIL}"',
    )


class Watcher:
    def __init__(self, imds: FakeImds, tmp_path: Path, **settings: str) -> None:
        self.hooks = tmp_path / "on-interruption.d"
        self.hooks.mkdir()
        wall = tmp_path / "wall"
        wall.write_text(f'#!/bin/bash\ncurl -sf -G "{imds.url}/wall" --data-urlencode "message=$(cat)"\n')
        wall.chmod(0o755)
        self.env = {
            "PATH": os.environ["PATH"],
            "SPOTYARD_IMDS_ENDPOINT": imds.url,
            "SPOTYARD_HOOKS_DIR": str(self.hooks),
            "SPOTYARD_STATE_DIR": str(tmp_path / "state"),
            "SPOTYARD_WALL": str(wall),
            **settings,
        }
        self.log: list[str] = []
        self.logged = threading.Condition()

    def start(self) -> Watcher:
        self.process = subprocess.Popen(
            ["bash", str(WATCHER)], env=self.env, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        for line in self.process.stderr:
            with self.logged:
                self.log.append(line.rstrip())
                self.logged.notify_all()

    def wait_for_log(self, text: str, timeout: float) -> bool:
        with self.logged:
            return self.logged.wait_for(lambda: any(text in line for line in self.log), timeout)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def watcher(imds, tmp_path):
    started: list[Watcher] = []

    def start(**settings: str) -> Watcher:
        started.append(Watcher(imds, tmp_path, **settings))
        return started[-1]

    yield start
    for w in started:
        w.stop()


def test_hooks_run_within_ten_seconds_of_a_notice_at_the_default_poll(imds, watcher):
    w = watcher()
    reporting_hook(w.hooks, "10-save", imds.url)
    w.start()
    assert imds.wait(lambda: imds.polls["instance-action"] >= 1, 10)
    notice = {"action": "terminate", "time": "2026-11-23T12:00:00Z"}
    appeared = time.monotonic()
    imds.interruption = notice
    assert imds.wait(lambda: imds.hooks, 10), "no hook ran within 10 s of the notice"
    assert time.monotonic() - appeared <= 10
    assert imds.hooks == [{"name": "10-save", "notice": "interruption", "detail": json.dumps(notice)}]
    assert imds.walls and "Spot is taking this instance back" in imds.walls[0]
    assert w.wait_for_log("interruption hooks done", 5)


def test_a_hanging_hook_is_cut_off_and_the_others_still_run(imds, watcher):
    w = watcher(SPOTYARD_POLL_SECONDS="1", SPOTYARD_HOOK_SECONDS="2")
    hook(w.hooks, "05-hang", "sleep 613")
    reporting_hook(w.hooks, "10-save", imds.url)
    hook(w.hooks, "20-not-executable", "exit 1")
    (w.hooks / "20-not-executable").chmod(0o644)
    w.start()
    notified = time.monotonic()
    imds.interruption = {"action": "terminate", "time": "2026-11-23T12:00:00Z"}
    assert imds.wait(lambda: imds.hooks, 5)
    assert w.wait_for_log("interruption hooks done", 15)
    assert time.monotonic() - notified < 2 + 5 + 3  # the cut-off, its kill grace, a poll
    assert any("hook" in line and "05-hang cut off after 2s" in line for line in w.log)
    assert [h["name"] for h in imds.hooks] == ["10-save"]
    leftover = subprocess.run(["pgrep", "-f", "sleep 613"], capture_output=True)
    assert leftover.returncode == 1, "the hanging hook's process survived"


def test_nothing_runs_without_a_notice_and_each_notice_runs_once(imds, watcher):
    w = watcher(SPOTYARD_POLL_SECONDS="1")
    reporting_hook(w.hooks, "10-save", imds.url)
    w.start()
    assert imds.wait(lambda: imds.polls["instance-action"] >= 3 and imds.polls["rebalance"] >= 3, 10)
    assert imds.hooks == [] and imds.walls == []
    imds.rebalance = {"noticeTime": "2026-11-23T11:50:00Z"}
    assert imds.wait(lambda: imds.hooks, 5)
    seen = imds.polls["rebalance"]
    assert imds.wait(lambda: imds.polls["rebalance"] >= seen + 2, 5)
    assert [h["notice"] for h in imds.hooks] == ["rebalance"]
    assert "rebalance recommendation" in imds.walls[0]
    imds.rebalance = {"noticeTime": "2026-11-23T11:58:00Z"}
    assert imds.wait(lambda: len(imds.hooks) == 2, 5)
