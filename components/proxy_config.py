"""The Caddyfile of the services' TLS proxy, rendered in pure Python (checked by the real
`caddy validate` in tests/test_proxy_config.py).

One site per host name, each served over HTTPS with a certificate Caddy gets from the ACME
CA by itself, and one plain-HTTP site that redirects those names to HTTPS. Each site
proxies to its service's tasks found through their Cloud Map SRV record, which ECS keeps
equal to the running tasks (their instance and dynamic host port), so that the proxy
follows tasks as they move between the fleet's instances.
"""

from __future__ import annotations

from dataclasses import dataclass

# Caddy keeps certificates, ACME accounts and locks under $XDG_DATA_HOME/caddy; the official
# image sets XDG_DATA_HOME=/data (https://hub.docker.com/_/caddy, "Volumes"). The task mounts
# the proxy's EFS access point there, so a replacement box finds the certificates.
DATA_DIRECTORY = "/data"
# How long a looked-up SRV answer is reused: the SRV records' TTL, so a moved task is found within it.
SRV_REFRESH_SECONDS = 10


@dataclass(frozen=True)
class ProxyRoute:
    """Requests for `host_names` go to the targets of the SRV record `srv_name`."""

    host_names: tuple[str, ...]
    srv_name: str


def render_caddyfile(routes: list[ProxyRoute], acme_email: str | None = None, acme_ca: str | None = None) -> str:
    options = [f"\temail {acme_email}"] if acme_email else []
    if acme_ca:
        options.append(f"\tacme_ca {acme_ca}")
    # Several proxies sharing one storage (two boxes, or the old and the new box during a
    # replacement) coordinate through it: one of them gets a certificate, the others load it, and
    # whichever answers an HTTP-01 challenge finds its token there (Caddy docs, "Automatic HTTPS",
    # "Storage"; caddyserver.com/docs/automatic-https#storage).
    options.append(f"\tstorage file_system {DATA_DIRECTORY}/caddy")
    blocks = ["{\n" + "\n".join(options) + "\n}"]
    hosts = [host for route in routes for host in route.host_names]
    for route in routes:
        for host in route.host_names:
            blocks.append(
                f"{host} {{\n"
                "\treverse_proxy {\n"
                # Dynamic upstreams cannot be actively health-checked in Caddy; a target that
                # fails is skipped for fail_duration and the request retried on another one.
                f"\t\tdynamic srv {route.srv_name} {{\n"
                f"\t\t\trefresh {SRV_REFRESH_SECONDS}s\n"
                "\t\t}\n"
                "\t\tlb_try_duration 5s\n"
                "\t\tfail_duration 30s\n"
                "\t}\n"
                "}"
            )
    if hosts:
        # Explicit, so that the rendered configuration says it; Caddy answers ACME HTTP-01
        # challenges on port 80 before these routes (caddyserver.com/docs/automatic-https).
        blocks.append(", ".join(f"http://{host}" for host in hosts) + " {\n\tredir https://{host}{uri} 308\n}")
    return "\n\n".join(blocks) + "\n"
