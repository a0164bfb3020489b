"""A scratch database for a benchmark: created on the server of DATABASE_URL, dropped at the end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg2


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """Point DATABASE_URL (and Django, once set up) at a new database; drop it afterwards."""
    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    name = f"{prefix}_{os.getpid()}"
    admin_url = urlunsplit(urlsplit(server)._replace(path="/postgres"))
    os.environ["DATABASE_URL"] = urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    _execute(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        from django.db import connections

        connections.close_all()
        if os.environ.get("BENCH_KEEP_DATABASE"):  # to look into its plans afterwards; drop it by hand
            print(f"kept database {name}")
        else:
            _execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _execute(admin_url: str, sql: str) -> None:
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(sql)
    conn.close()
