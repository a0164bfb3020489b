"""`migrate_agencies`: schemas already at the latest migration are skipped, and skipped ones really are up to date;
the ones behind are migrated. django-tenants' own `migrate_schemas` keeps working beside it."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader

from agencies.schema_migrate import schemas_behind
from agencies.schema_template import template_schema_name
from rebill.tenancy import schema_to_public

pytestmark = pytest.mark.django_db
PROBE = ("subaccounts", "0999_probe")


def plan_for(schema: str) -> list:
    connection.set_schema(schema)  # type: ignore[attr-defined]
    try:
        executor = MigrationExecutor(connection)
        return executor.migration_plan(executor.loader.graph.leaf_nodes())
    finally:
        schema_to_public()


def probe_rows(schema: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{schema}".django_migrations WHERE app = %s AND name = %s', PROBE)
        return cursor.fetchone()[0]


def test_only_schemas_behind_are_migrated_and_skipped_ones_are_up_to_date(world, migration_added_after_the_template):
    alpha, bravo = world.a.agency.schema_name, world.b.agency.schema_name
    # given a new migration that alpha already has (django-tenants' own command still works) and bravo has not
    call_command("migrate_schemas", schema_name=alpha, interactive=False, verbosity=0)
    assert probe_rows(alpha) == 1 and probe_rows(bravo) == 0
    assert list(schemas_behind(schemas=[alpha, bravo]).values()) == [[bravo]]

    # when the deploy migrates the agencies
    out = StringIO()
    call_command("migrate_agencies", tenant=True, jobs=1, stdout=out)

    # then bravo was migrated, alpha was skipped, and Django finds nothing left to apply in either
    assert "1 of 2 agency schemas are up to date; migrating 1" in out.getvalue()
    assert f"{bravo}: 1 migration(s) applied" in out.getvalue() and f"{alpha}:" not in out.getvalue()
    assert probe_rows(alpha) == 1 and probe_rows(bravo) == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [f"{bravo}.scale_probe"])
        assert cursor.fetchone()[0]
    assert plan_for(alpha) == [] and plan_for(bravo) == []
    assert schemas_behind(schemas=[alpha, bravo]) == {}
    # and the template new agencies are cloned from has the new migration too
    assert probe_rows(template_schema_name()) == 1


def test_a_schema_missing_an_old_migration_row_is_not_skipped(world):
    # given bravo has lost the record of its latest phone migration
    bravo = world.b.agency.schema_name
    phone_leaf = next(node for node in MigrationLoader(None).graph.leaf_nodes() if node[0] == "phone")
    with connection.cursor() as cursor:
        cursor.execute(f'DELETE FROM "{bravo}".django_migrations WHERE app = %s AND name = %s', phone_leaf)
    # then bravo is behind, alpha is not, and Django agrees on both
    assert list(schemas_behind(schemas=[world.a.agency.schema_name, bravo]).values()) == [[bravo]]
    assert plan_for(bravo) != [] and plan_for(world.a.agency.schema_name) == []


def test_post_migrate_runs_unless_the_plan_only_changes_columns_indexes_or_constraints():
    from django.db import migrations, models

    from agencies.schema_migrate import _post_migrate_needed

    def plan(*operations) -> list:
        migration = migrations.Migration("0999_probe", "subaccounts")
        migration.operations = list(operations)
        return [(migration, False)]

    add_field = migrations.AddField("subaccount", "flag", models.BooleanField(default=False))
    assert not _post_migrate_needed(plan(add_field, migrations.RemoveIndex("subaccount", "some_index")))
    # a new model needs its content type and permissions; new options may change permissions
    create_model = migrations.CreateModel("Probe", [("id", models.AutoField(primary_key=True))])
    assert _post_migrate_needed(plan(add_field, create_model))
    assert _post_migrate_needed(plan(migrations.AlterModelOptions("subaccount", {"permissions": [("x", "X")]})))
    assert _post_migrate_needed(plan(migrations.RunPython(migrations.RunPython.noop)))
