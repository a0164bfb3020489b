"""New agency schemas cloned from a migrated template schema instead of replaying every migration (DESIGN §12).

The template is an ordinary agency schema, migrated by django-tenants, named after a hash of the migration
files: a deploy that adds or edits a migration changes the name, so the next agency built finds no template
of that name and builds a fresh one first. Cloning runs one SQL script captured from the template's catalog:
tables (`LIKE … INCLUDING` everything but indexes, so each identity column gets its own new sequence), the
rows migrations wrote (django_migrations, content types, permissions), sequence positions, then indexes and
constraints under their original names (later migrations drop and alter them by name).
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader
from django_tenants.utils import schema_exists

from rebill.tenancy import schema_to_public

TEMPLATE_PREFIX = "_agency_template_"  # a slug starts with a letter, so no agency can ever have this schema
_TARGET = "\x1e__TARGET_SCHEMA__\x1e"
_LOCK_KEY = 4_187_502_113  # pg_advisory_xact_lock: one builder of the template at a time


class TemplateUnsupported(RuntimeError):
    """The template holds an object the clone script does not know how to copy."""


@lru_cache(maxsize=1)
def tenant_migrations_key() -> str:
    """A hash of every migration (name and source) a tenant schema is built from.

    Computed once per process: migrations change only with a deploy, which restarts every process.
    """
    loader = MigrationLoader(None, ignore_no_migrations=True)
    digest = hashlib.sha256()
    for key in sorted(loader.graph.nodes):
        digest.update(f"{key[0]}.{key[1]}\n".encode())
        module = getattr(loader.graph.nodes[key], "__module__", "")
        source = _module_source(module)
        digest.update(hashlib.sha256(source).digest())
    return digest.hexdigest()


def _module_source(module_name: str) -> bytes:
    import importlib

    module = importlib.import_module(module_name)
    path = getattr(module, "__file__", None)
    return Path(path).read_bytes() if path else module_name.encode()


def template_schema_name() -> str:
    return TEMPLATE_PREFIX + tenant_migrations_key()[:16]


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def schema_template_ensure() -> str:
    """The current template schema, built (migrated) first when it does not exist yet."""
    name = template_schema_name()
    if schema_exists(name):
        return name
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        if not schema_exists(name):
            building = f"{name}_new"
            with connection.cursor() as cursor:
                cursor.execute(f"DROP SCHEMA IF EXISTS {_quote(building)} CASCADE")
                cursor.execute(f"CREATE SCHEMA {_quote(building)}")
            call_command("migrate_schemas", tenant=True, schema_name=building, interactive=False, verbosity=0)
            schema_to_public()
            with connection.cursor() as cursor:
                cursor.execute(f"ALTER SCHEMA {_quote(building)} RENAME TO {_quote(name)}")
    return name


def stale_templates_drop() -> list[str]:
    """Drop templates of older migration sets (a deploy step: running processes of the old code may still
    clone from theirs until they are replaced)."""
    current = template_schema_name()
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", [TEMPLATE_PREFIX])
        stale = [row[0] for row in cursor.fetchall() if row[0] != current]
        for name in stale:
            cursor.execute(f"DROP SCHEMA {_quote(name)} CASCADE")
    return stale


def schema_create_from_template(*, schema_name: str) -> None:
    """Create `schema_name` as a copy of the current template (built first if needed)."""
    template = schema_template_ensure()
    script = _clone_script(template).replace(_TARGET, _quote(schema_name))
    with transaction.atomic():
        schema_to_public()
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA {_quote(schema_name)}")
            # Constraint definitions were captured unqualified: they name tables of the schema on the path.
            cursor.execute(f"SET search_path = {_quote(schema_name)}, public; {script}")
    schema_to_public()


_scripts: dict[str, str] = {}


def _clone_script(template: str) -> str:
    if template not in _scripts:
        _scripts[template] = _clone_script_capture(template)
    return _scripts[template]


def _clone_script_capture(template: str) -> str:
    """The statements that turn an empty schema (named by the `_TARGET` placeholder) into a copy of `template`."""
    tmpl = _quote(template)
    with connection.cursor() as cursor:
        # With only the template on the path the catalog prints its own objects unqualified, so the
        # captured definitions resolve to the target schema's objects when replayed there.
        cursor.execute(f"SET search_path = {tmpl}")
        cursor.execute(
            """SELECT c.relname, c.relkind FROM pg_class c
               WHERE c.relnamespace = %s::regnamespace AND c.relkind NOT IN ('r', 'i', 'S')""",
            [template],
        )
        if unsupported := cursor.fetchall():
            raise TemplateUnsupported(f"cannot clone {unsupported!r}")
        cursor.execute(
            """SELECT s.relname FROM pg_class s WHERE s.relnamespace = %s::regnamespace AND s.relkind = 'S'
               AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = s.oid AND d.deptype = 'i')""",
            [template],
        )
        if free_sequences := cursor.fetchall():  # serial columns would share the template's sequence
            raise TemplateUnsupported(f"cannot clone sequences not owned by an identity column: {free_sequences!r}")
        cursor.execute(
            """SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c
               WHERE c.relnamespace = %s::regnamespace AND c.relkind = 'r' ORDER BY c.relname""",
            [template],
        )
        tables = cursor.fetchall()
        statements: list[str] = []
        for table, comment in tables:
            statements.append(
                f"CREATE TABLE {_TARGET}.{_quote(table)} (LIKE {tmpl}.{_quote(table)} INCLUDING ALL EXCLUDING INDEXES)"
            )
            if comment is not None:
                statements.append(f"COMMENT ON TABLE {_TARGET}.{_quote(table)} IS {_literal(cursor, comment)}")
        for table, _comment in tables:
            cursor.execute(f"SELECT EXISTS (SELECT FROM {tmpl}.{_quote(table)})")  # noqa: S608 — quoted names
            if cursor.fetchone()[0]:
                statements.append(f"INSERT INTO {_TARGET}.{_quote(table)} OVERRIDING SYSTEM VALUE "  # noqa: S608
                                  f"SELECT * FROM {tmpl}.{_quote(table)}")
        cursor.execute("SELECT sequencename, last_value, data_type::text FROM pg_sequences WHERE schemaname = %s",
                       [template])
        for sequence, last_value, data_type in cursor.fetchall():
            # LIKE gives each identity column a new sequence with the template's options but always as bigint.
            if data_type != "bigint":
                statements.append(f"ALTER SEQUENCE {_TARGET}.{_quote(sequence)} AS {data_type}")
            if last_value is not None:
                target = _literal(cursor, f"{_TARGET}.{_quote(sequence)}")
                statements.append(f"SELECT setval({target}, {int(last_value)}, true)")
        # Indexes that stand alone; those behind a primary key, unique or exclusion constraint come with it.
        cursor.execute(
            """SELECT i.relname, t.relname, pg_get_indexdef(x.indexrelid), x.indisunique
               FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
               WHERE t.relnamespace = %s::regnamespace
                 AND NOT EXISTS (SELECT FROM pg_constraint k
                                 WHERE k.conindid = x.indexrelid AND k.contype IN ('p', 'u', 'x'))
               ORDER BY i.relname""",
            [template],
        )
        for index, table, definition, unique in cursor.fetchall():
            using = definition[definition.index(" USING "):]
            statements.append(f"CREATE {'UNIQUE ' if unique else ''}INDEX {_quote(index)} "
                              f"ON {_TARGET}.{_quote(table)}{using}")
        cursor.execute(
            """SELECT k.conname, t.relname, pg_get_constraintdef(k.oid), k.contype
               FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid
               WHERE t.relnamespace = %s::regnamespace AND k.contype IN ('p', 'u', 'x', 'f')
               ORDER BY k.contype = 'f', k.conname""",
            [template],
        )
        for constraint, table, definition, _kind in cursor.fetchall():
            statements.append(f"ALTER TABLE {_TARGET}.{_quote(table)} ADD CONSTRAINT {_quote(constraint)} {definition}")
        statements += _functions_and_triggers(cursor, template)
    schema_to_public()
    return ";\n".join(statements) + ";"


def _functions_and_triggers(cursor, template: str) -> list[str]:
    """Functions (e.g. the wallet ledger's checks) and the triggers that call them. A function's name and its
    `SET search_path` name the template: both are pointed at the target; its body stays as written."""
    statements = []
    cursor.execute("SELECT pg_get_functiondef(p.oid) FROM pg_proc p WHERE p.pronamespace = %s::regnamespace "
                   "ORDER BY p.proname", [template])
    names = {_quote(template), template}
    for (definition,) in cursor.fetchall():
        head, separator, body = definition.partition("\nAS ")
        for name in sorted(names, key=len, reverse=True):
            head = head.replace(f"FUNCTION {name}.", f"FUNCTION {_TARGET}.")
        # Captured FROM CURRENT while the template was migrated (under its building name): what migrating the
        # target itself would have captured is the target, then public.
        head = re.sub(r"(?m)^ SET search_path TO .*$", f" SET search_path TO {_TARGET}, public", head)
        if template in head or "_new'" in head:
            raise TemplateUnsupported(f"cannot point this function at the new schema: {head!r}")
        statements.append(head + separator + body)
    cursor.execute("SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                   "WHERE c.relnamespace = %s::regnamespace AND NOT t.tgisinternal ORDER BY t.tgname", [template])
    for (definition,) in cursor.fetchall():
        # A trigger's table is printed qualified by the template; its function, on the path, unqualified.
        for name in sorted(names, key=len, reverse=True):
            definition = definition.replace(f" ON {name}.", f" ON {_TARGET}.")
        if template in definition:
            raise TemplateUnsupported(f"cannot point this trigger at the new schema: {definition!r}")
        statements.append(definition)
    return statements


def _literal(cursor, value: str) -> str:
    return cursor.mogrify("%s", [value]).decode()


def agency_schema_create(*, schema_name: str) -> None:
    """The schema of a new agency: cloned from the template, or migrated one migration at a time when the
    setting says so (or the template holds something the clone cannot copy)."""
    if settings.AGENCY_SCHEMA_FROM_TEMPLATE:
        try:
            schema_create_from_template(schema_name=schema_name)
            return
        except TemplateUnsupported:
            pass
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {_quote(schema_name)}")
    call_command("migrate_schemas", tenant=True, schema_name=schema_name, interactive=False, verbosity=0)
    schema_to_public()
