"""The production image can run `agency_dump`/`agency_restore`: it carries pg_dump of the compose server's major version
(a pg_dump older than the server refuses to dump it)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_image_ships_the_pg_client_of_the_compose_servers_major_version():
    dockerfile = (ROOT / "Dockerfile").read_text()
    compose = (ROOT / "docker-compose.yml").read_text()
    server_major = re.search(r"image:\s*postgres:(\d+)", compose)
    client_major = re.search(r"ARG PG_MAJOR=(\d+)", dockerfile)
    assert server_major and client_major
    assert client_major.group(1) == server_major.group(1)
    assert "postgresql-client-${PG_MAJOR}" in dockerfile
    app_stage = dockerfile.split("AS app", 1)[1].split("FROM ", 1)[0]
    assert "postgresql-client" in app_stage, "the client must be in the stage every target builds on"
