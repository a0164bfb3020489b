"""New agency schemas are cloned from a migrated template: the clone is the migrated schema, object for object."""

import pytest
from django.db import connection
from django_tenants.utils import schema_exists, tenant_context

from agencies.plans import Plan
from agencies.schema_template import schema_create_from_template, schema_template_ensure, template_schema_name
from agencies.services import agency_create
from people.models import User

pytestmark = pytest.mark.django_db


def _rows(sql: str, params: list | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _predicate_normalized(definition: str) -> str:
    """A partial index's predicate prints its casts differently once it has been through the parser again
    (`ARRAY[('a'::character varying)::text]` vs `(ARRAY['a'::character varying])::text[]`): compare it without
    casts and parentheses."""
    for noise in ("::character varying", "::text[]", "::text", "(", ")"):
        definition = definition.replace(noise, "")
    return definition


def schema_fingerprint(schema: str) -> dict[str, object]:
    """Everything a migration leaves in a schema, with the schema's own name taken out."""
    def unqualified(rows: list[tuple]) -> list[tuple]:
        return [tuple(v.replace(f"{schema}.", "") if isinstance(v, str) else v for v in row) for row in rows]

    ns = [schema]
    with connection.cursor() as cursor:
        cursor.execute(f'SET search_path = "{schema}"')
        cursor.execute("SELECT relname, relkind, relpersistence, obj_description(oid, 'pg_class') FROM pg_class "
                       "WHERE relnamespace = %s::regnamespace ORDER BY relname", ns)
        relations = cursor.fetchall()
        # Column order, not attnum: a migrated schema keeps the slots of dropped columns, a copy does not.
        cursor.execute(
            """SELECT c.relname, row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum), a.attname,
                      format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity, a.attgenerated,
                      pg_get_expr(d.adbin, d.adrelid), a.attcollation, col_description(c.oid, a.attnum)
               FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
               LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
               WHERE c.relnamespace = %s::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
               ORDER BY 1, 2""", ns)
        columns = cursor.fetchall()
        cursor.execute(
            """SELECT i.relname, t.relname, pg_get_indexdef(x.indexrelid), x.indisprimary, x.indisunique
               FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
               WHERE t.relnamespace = %s::regnamespace ORDER BY 1""", ns)
        indexes = [(name, table, _predicate_normalized(definition), *flags)
                   for name, table, definition, *flags in unqualified(cursor.fetchall())]
        cursor.execute(
            """SELECT k.conname, t.relname, k.contype, pg_get_constraintdef(k.oid), k.condeferrable,
                      k.condeferred, k.convalidated
               FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid
               WHERE t.relnamespace = %s::regnamespace ORDER BY 1, 2""", ns)
        constraints = unqualified(cursor.fetchall())
        cursor.execute(
            """SELECT sequencename, data_type::text, start_value, min_value, max_value, increment_by, cycle,
                      cache_size, last_value FROM pg_sequences WHERE schemaname = %s ORDER BY 1""", ns)
        sequences = cursor.fetchall()
        cursor.execute(
            """SELECT s.relname, t.relname, a.attname, d.deptype, t.relnamespace = s.relnamespace
               FROM pg_class s JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass
               JOIN pg_class t ON t.oid = d.refobjid JOIN pg_attribute a ON a.attrelid = t.oid
                    AND a.attnum = d.refobjsubid
               WHERE s.relnamespace = %s::regnamespace AND s.relkind = 'S' ORDER BY 1""", ns)
        sequence_owners = cursor.fetchall()
        cursor.execute("SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                       "WHERE c.relnamespace = %s::regnamespace AND NOT t.tgisinternal ORDER BY 1", ns)
        triggers = cursor.fetchall()
        cursor.execute("SELECT id, app, name FROM django_migrations ORDER BY id")
        migrations = [row[1:] for row in cursor.fetchall()]
        cursor.execute("SELECT id, app_label, model FROM django_content_type ORDER BY id")
        content_types = cursor.fetchall()
        cursor.execute("SELECT id, content_type_id, codename, name FROM auth_permission ORDER BY id")
        permissions = cursor.fetchall()
    connection.set_schema_to_public()
    return {"relations": relations, "columns": columns, "indexes": indexes, "constraints": constraints,
            "sequences": sequences, "sequence_owners": sequence_owners, "triggers": triggers,
            "migrations": migrations, "content_types": content_types, "permissions": permissions}


def test_a_cloned_schema_equals_the_migrated_template(world):
    # given the template: a schema migrated by django-tenants' migrate_schemas
    migrated = schema_template_ensure()
    # when a new schema is cloned from it
    schema_create_from_template(schema_name="clone_one")
    # then every table, column, index, constraint, sequence and migration row is the same
    clone, original = schema_fingerprint("clone_one"), schema_fingerprint(migrated)
    assert clone == original
    assert len(original["relations"]) > 50 and len(original["migrations"]) > 20 and original["sequences"]
    assert any(row[2] == "f" for row in original["constraints"]), "foreign keys are compared too"
    # and each sequence belongs to the clone's own table
    assert clone["sequence_owners"] and all(row[3] == "i" and row[4] for row in clone["sequence_owners"])


def test_sequences_of_clones_are_independent(world):
    # given two clones
    schema_create_from_template(schema_name="clone_one")
    schema_create_from_template(schema_name="clone_two")
    before = {name: schema_fingerprint(name)["sequences"] for name in ("clone_two", template_schema_name())}
    # when one clone's table takes ids
    with connection.cursor() as cursor:
        cursor.execute('SET search_path = "clone_one"')
        cursor.execute("INSERT INTO auth_group (name) VALUES ('X'), ('Y') RETURNING id")
        ids = [row[0] for row in cursor.fetchall()]
    connection.set_schema_to_public()
    # then its ids start at 1 and the other clone's and the template's sequences did not move
    assert ids == [1, 2]
    assert {name: schema_fingerprint(name)["sequences"] for name in before} == before
    assert schema_fingerprint("clone_one")["sequences"] != before["clone_two"]


def test_a_new_agency_is_a_clone_that_works(world):
    # when
    agency = agency_create(name="Clone Co", slug="clone-co", plan=Plan.PRO, admin_email="boss@clone.test",
                           admin_password=None)
    # then its schema is the template's, plus its own first admin
    assert schema_fingerprint("clone_co")["migrations"] == schema_fingerprint(template_schema_name())["migrations"]
    with tenant_context(agency):
        assert list(User.objects.values_list("email", flat=True)) == ["boss@clone.test"]
    # and nothing of the other agencies leaks into it
    with tenant_context(world.a.agency):
        assert not User.objects.filter(email="boss@clone.test").exists()


def test_a_migration_added_after_the_template_was_built_reaches_new_agencies(migration_added_after_the_template):
    # given a template built before the migration was added
    deployed_template = migration_added_after_the_template
    assert template_schema_name() != deployed_template
    # when an agency is created
    agency_create(name="Late Co", slug="late-co", plan=Plan.PRO, admin_email="boss@late.test", admin_password=None)
    # then it has the new migration: its table and its row
    assert ("subaccounts", "0999_probe") in schema_fingerprint("late_co")["migrations"]
    assert _rows("SELECT to_regclass('late_co.scale_probe') IS NOT NULL") == [(True,)]
    # from a new template; the old one is left to the deploy to drop
    assert schema_exists(template_schema_name()) and schema_exists(deployed_template)
    assert ("subaccounts", "0999_probe") not in schema_fingerprint(deployed_template)["migrations"]
