"""The proxy's Caddyfile, as the stack renders it, checked by the real Caddy binary
(`caddy validate`, then `caddy adapt` to read what it understood): one HTTPS route per host
name to its service's SRV record, and HTTP redirected to HTTPS.

CI installs Caddy from the OS packages (.ci/run); there a missing binary fails the tests,
elsewhere (CI unset) they are skipped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from components.proxy_config import ProxyRoute, render_caddyfile

CADDY = shutil.which("caddy")
if CADDY is None and not os.environ.get("CI"):
    pytest.skip("caddy is not installed (apt-get install caddy; .ci/run does)", allow_module_level=True)

ROUTES = [
    ProxyRoute(("whoami.example.com", "hello.example.com"), "whoami.services.dev.spotyard.internal"),
    ProxyRoute(("wiki.example.com",), "wiki.services.dev.spotyard.internal"),
]


def caddy(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    assert CADDY, "caddy is not installed: .ci/run installs it (apt-get install caddy)"
    # HOME and XDG_* in the test's directory: `caddy validate` provisions the storage it names.
    env = {**os.environ, "HOME": str(cwd), "XDG_DATA_HOME": str(cwd), "XDG_CONFIG_HOME": str(cwd)}
    return subprocess.run([CADDY, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def adapted(text: str, tmp_path: Path) -> dict:
    path = tmp_path / "Caddyfile"
    path.write_text(text.replace("/data/caddy", str(tmp_path / "data")))
    validated = caddy("validate", "--config", str(path), "--adapter", "caddyfile", cwd=tmp_path)
    assert validated.returncode == 0, validated.stderr
    result = caddy("adapt", "--config", str(path), "--adapter", "caddyfile", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def routes_by_host(server: dict) -> dict[str, dict]:
    return {host: route for route in server["routes"] for match in route["match"] for host in match["host"]}


def test_rendered_caddyfile_is_valid_with_one_tls_route_per_host_name(tmp_path):
    config = adapted(render_caddyfile(ROUTES, "ops@example.com"), tmp_path)
    servers = config["apps"]["http"]["servers"].values()
    (https,) = [s for s in servers if s["listen"] == [":443"]]
    routes = routes_by_host(https)
    assert sorted(routes) == ["hello.example.com", "whoami.example.com", "wiki.example.com"]
    for host, srv in (
        ("whoami.example.com", "whoami.services.dev.spotyard.internal"),
        ("hello.example.com", "whoami.services.dev.spotyard.internal"),
        ("wiki.example.com", "wiki.services.dev.spotyard.internal"),
    ):
        (proxy,) = routes[host]["handle"][0]["routes"][0]["handle"]
        assert proxy["handler"] == "reverse_proxy"
        assert proxy["dynamic_upstreams"] == {"source": "srv", "name": srv, "refresh": 10_000_000_000}
    # Certificates from the ACME CA for exactly these names, under the given account.
    (policy,) = config["apps"]["tls"]["automation"]["policies"]
    assert policy["issuers"][0]["email"] == "ops@example.com"
    assert config["storage"] == {"module": "file_system", "root": str(tmp_path / "data")}


def test_http_redirects_every_host_name_to_https(tmp_path):
    config = adapted(render_caddyfile(ROUTES), tmp_path)
    (http,) = [s for s in config["apps"]["http"]["servers"].values() if s["listen"] == [":80"]]
    (route,) = http["routes"]
    assert sorted(route["match"][0]["host"]) == ["hello.example.com", "whoami.example.com", "wiki.example.com"]
    (redirect,) = route["handle"][0]["routes"][0]["handle"]
    assert redirect == {
        "handler": "static_response",
        "headers": {"Location": ["https://{http.request.host}{http.request.uri}"]},
        "status_code": 308,
    }


def test_a_staging_ca_is_named_in_the_acme_issuer(tmp_path):
    staging = "https://acme-staging-v02.api.letsencrypt.org/directory"
    config = adapted(render_caddyfile(ROUTES, acme_ca=staging), tmp_path)
    (policy,) = config["apps"]["tls"]["automation"]["policies"]
    assert [issuer["ca"] for issuer in policy["issuers"]] == [staging]


def test_caddy_refuses_a_broken_configuration(tmp_path):
    """The check is real: the same binary rejects a Caddyfile with an unknown directive."""
    path = tmp_path / "Caddyfile"
    path.write_text(render_caddyfile(ROUTES).replace("lb_try_duration", "lb_try_durations", 1))
    assert caddy("validate", "--config", str(path), "--adapter", "caddyfile", cwd=tmp_path).returncode != 0
