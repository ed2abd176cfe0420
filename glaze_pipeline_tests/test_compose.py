"""The production compose file opens no door without a login: checked at the YAML level, since docker does not
run here. Every published port is either bound to 127.0.0.1 or the proxy's, and the proxy asks for a password
before it passes anything to the Dagster webserver."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
CADDYFILE = (ROOT / "docker" / "Caddyfile").read_text()
PROXY = "proxy"


def _published(port: object) -> tuple[str, str]:
    """(host address, host port) of a compose port entry, short or long syntax."""
    if isinstance(port, dict):
        return str(port.get("host_ip", "0.0.0.0")), str(port.get("published", ""))
    parts = str(port).split(":")
    if len(parts) == 1:
        return "0.0.0.0", ""  # a random host port on every interface
    if len(parts) == 2:
        return "0.0.0.0", parts[0]
    return parts[0], parts[1]


def test_only_the_proxy_publishes_a_port_to_the_world():
    for name, service in COMPOSE["services"].items():
        assert service.get("network_mode") != "host", f"{name} shares the host's network: every port it opens is public"
        for port in service.get("ports", []):
            address, _ = _published(port)
            assert name == PROXY or address == "127.0.0.1", f"{name} publishes {port} beyond this machine"


def test_the_webserver_is_reached_only_through_the_proxy():
    webserver = COMPOSE["services"]["webserver"]
    assert not webserver.get("ports")
    proxy = COMPOSE["services"][PROXY]
    assert "./docker/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert "webserver" in proxy["depends_on"]


def test_the_proxy_asks_for_a_password_on_every_path():
    site_blocks = re.findall(r"^(\S.*)\{\s*$", CADDYFILE, flags=re.MULTILINE)
    assert site_blocks == ["{$GLAZE_UI_HOST:localhost} "], "one site, so no route escapes the login"
    auth = CADDYFILE.index("basic_auth")
    proxying = CADDYFILE.index("reverse_proxy webserver:3000")
    assert auth < proxying and "{$GLAZE_UI_PASSWORD_HASH}" in CADDYFILE
    assert "handle" not in CADDYFILE and "route" not in CADDYFILE  # no path carved out of the login


def test_the_login_cannot_be_left_unset():
    environment = COMPOSE["services"][PROXY]["environment"]
    assert ":?" in environment["GLAZE_UI_PASSWORD_HASH"], "compose must refuse to start without a password hash"
    text = (ROOT / "docker-compose.yml").read_text()
    assert "GLAZE_READER_PASSWORD:?" in text
