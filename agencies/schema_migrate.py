"""Migrating every agency schema in time that grows with what changed, not with the square of the agencies.

One query reads every schema's django_migrations; schemas that already hold every migration are skipped.
The rest are grouped by what they have applied (after a deploy, usually all alike): a worker plans a group and
renders its migration state once, then applies the same plan schema after schema with Django's own executor,
which introspects and records each schema on its own. Workers run in parallel processes.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db import connection
from django.db.migrations import operations
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ModelState

from rebill.tenancy import schema_to_public

Applied = frozenset[tuple[str, str]]
# Schemas a worker takes at once: big enough to render a group's state rarely, small enough to share the work.
CHUNK_MAX = 50


def migrations_expected() -> Applied:
    """Every migration node a fully migrated schema has recorded (Django records all apps' migrations in every
    schema, even those whose operations the tenant router skips)."""
    return frozenset(MigrationLoader(None, ignore_no_migrations=True).graph.nodes)


def schemas_applied(*, schemas: Iterable[str]) -> dict[str, Applied]:
    """What each schema has recorded in its django_migrations, in one statement over all of them.
    Schemas without the table are missing from the answer."""
    schemas = list(schemas)
    if not schemas:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relname = 'django_migrations' AND c.relkind = 'r' AND n.nspname = ANY(%s)""",
            [schemas],
        )
        with_table = sorted(row[0] for row in cursor.fetchall())
        applied: dict[str, set[tuple[str, str]]] = {schema: set() for schema in with_table}
        if with_table:
            quote = connection.ops.quote_name
            union = " UNION ALL ".join(
                f"SELECT %s::text, app, name FROM {quote(schema)}.django_migrations" for schema in with_table  # noqa: S608
            )
            cursor.execute(union, with_table)
            for schema, app, name in cursor.fetchall():
                applied[schema].add((app, name))
    return {schema: frozenset(names) for schema, names in applied.items()}


def schemas_behind(*, schemas: Iterable[str]) -> dict[Applied, list[str]]:
    """The schemas that miss a migration, grouped by what they have applied; up-to-date ones are left out."""
    schemas = list(schemas)
    expected = migrations_expected()
    applied = schemas_applied(schemas=schemas)
    groups: dict[Applied, list[str]] = defaultdict(list)
    for schema in schemas:
        done = applied.get(schema, frozenset())
        if not expected <= done:
            groups[done].append(schema)
    return dict(groups)


# Operations that change columns, indexes and constraints only: they cannot add, remove or rename a model nor
# change its options, so they leave content types and permissions (what post_migrate writes) as they were.
# post_migrate's ~100 queries were three quarters of a one-field migration's cost per schema.
_COLUMN_LEVEL_OPERATIONS = (
    operations.AddField, operations.RemoveField, operations.AlterField, operations.RenameField,
    operations.AddIndex, operations.RemoveIndex, operations.RenameIndex, operations.AddConstraint,
    operations.RemoveConstraint, operations.AlterUniqueTogether, operations.AlterIndexTogether,
)


def _post_migrate_needed(plan: list) -> bool:
    return any(not isinstance(operation, _COLUMN_LEVEL_OPERATIONS)
               for migration, _backwards in plan for operation in migration.operations)


@dataclass(frozen=True)
class _Chunk:
    schemas: tuple[str, ...]
    verbosity: int


def _chunks(groups: dict[Applied, list[str]], *, jobs: int, verbosity: int) -> list[_Chunk]:
    chunks = []
    for schemas in groups.values():
        size = max(1, min(CHUNK_MAX, math.ceil(len(schemas) / jobs)))
        chunks += [_Chunk(tuple(schemas[i:i + size]), verbosity) for i in range(0, len(schemas), size)]
    return chunks


def _migrate_chunk(chunk: _Chunk) -> list[tuple[str, int]]:
    """Bring every schema of the chunk (all with the same migrations applied) to the latest migrations."""
    connection.set_schema(chunk.schemas[0])  # type: ignore[attr-defined]  # django-tenants' backend
    executor = MigrationExecutor(connection)
    executor.loader.check_consistent_history(connection)
    targets = executor.loader.graph.leaf_nodes()
    plan = executor.migration_plan(targets)
    pre_state = executor._create_project_state(with_applied_migrations=True)  # type: ignore[attr-defined]  # as migrate does
    pre_apps = pre_state.apps
    # Once per plan, as `migrate` does: its receivers edit the plan itself (content type renames).
    emit_pre_migrate_signal(0, False, connection.alias, apps=pre_apps, plan=plan)
    post_migrate_needed = _post_migrate_needed(plan)
    post_apps = None
    done = []
    for schema in chunk.schemas:
        connection.set_schema(schema)  # type: ignore[attr-defined]
        post_state = executor.migrate(targets, plan=plan, state=pre_state.clone())
        if not post_migrate_needed:
            done.append((schema, len(plan)))
            continue
        if post_apps is None:  # the same final state for every schema of the chunk: rendered once
            post_state.clear_delayed_apps_cache()
            post_apps = post_state.apps
            from django.apps import apps

            with post_apps.bulk_update():
                keys = []
                for model_state in post_apps.real_models:
                    keys.append((model_state.app_label, model_state.name_lower))
                    post_apps.unregister_model(*keys[-1])
            post_apps.render_multiple([ModelState.from_model(apps.get_model(*key)) for key in keys])
        emit_post_migrate_signal(0, False, connection.alias, apps=post_apps, plan=plan)
        done.append((schema, len(plan)))
    schema_to_public()
    return done


def _migrate_chunk_in_worker(chunk: _Chunk) -> list[tuple[str, int]]:
    try:
        return _migrate_chunk(chunk)
    finally:
        connection.close()


def schemas_migrate(
    *, groups: dict[Applied, list[str]], jobs: int, verbosity: int = 1,
    report: Callable[[str], None] = lambda line: None,
) -> int:
    """Migrate the given groups of schemas in `jobs` parallel processes; returns how many were migrated."""
    chunks = _chunks(groups, jobs=jobs, verbosity=verbosity)
    total = sum(len(chunk.schemas) for chunk in chunks)
    if not chunks:
        return 0
    started = time.monotonic()
    migrated = 0
    if jobs <= 1 or len(chunks) == 1:
        results: Iterable[list[tuple[str, int]]] = map(_migrate_chunk, chunks)
        for result in results:
            migrated += _report(result, migrated, total, report, verbosity)
        return migrated
    connection.close()  # a forked worker must not share the parent's connection
    with multiprocessing.get_context("fork").Pool(processes=jobs, maxtasksperchild=20) as pool:
        for result in pool.imap_unordered(_migrate_chunk_in_worker, chunks):
            migrated += _report(result, migrated, total, report, verbosity)
    if verbosity >= 1:
        report(f"{migrated} schemas migrated in {time.monotonic() - started:.1f} s")
    return migrated


def _report(result: list[tuple[str, int]], before: int, total: int, report: Callable[[str], None],
            verbosity: int) -> int:
    if verbosity >= 1:
        for offset, (schema, count) in enumerate(result, start=1):
            report(f"[{before + offset}/{total}] {schema}: {count} migration(s) applied")
    return len(result)
