"""Small builders shared by tests: demo tables and a running loopback site."""

from __future__ import annotations

import socket
from pathlib import Path

from glaze_pipeline.sandbox.sites import demo_hosts


def write_table(path: Path, urls: list[str], extra: dict[str, list[str]] | None = None) -> Path:
    """A CSV with a `website` column (plus extra columns); values must not contain commas."""
    extra = extra or {}
    header = ["website", *extra]
    lines = [",".join(header)]
    for i, url in enumerate(urls):
        lines.append(",".join([url, *(extra[c][i] for c in extra)]))
    path.write_text("\n".join(lines) + "\n")
    return path


def demo_urls() -> list[str]:
    return [f"https://{h}" for h in demo_hosts()]


def closed_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago and has nobody listening now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port_url() -> str:
    """A Redis URL nobody answers."""
    return f"redis://127.0.0.1:{closed_port()}/0"
