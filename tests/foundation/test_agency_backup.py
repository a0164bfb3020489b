"""One agency's schema dumped and restored into a fresh database: its rows come back, no other agency's."""

import os

import psycopg2
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import tenant_context

from agencies.backup import postgres_max_locks_per_transaction
from people.models import User
from tests import conftest


@pytest.fixture
def fresh_database(django_db_blocker):
    name = f"test_rebill_restore_{os.getpid()}"
    with django_db_blocker.unblock():
        conftest._admin_cursor_execute(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
        url = conftest.test_database_url().replace(f"/{connection.settings_dict['NAME']}", f"/{name}", 1)
        try:
            yield url
        finally:
            conftest._admin_cursor_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_an_agency_dumped_and_restored_into_a_fresh_database_has_its_rows_and_no_others(
        world, fresh_database, tmp_path, django_db_blocker):
    dump = tmp_path / "alpha.dump"
    with django_db_blocker.unblock():
        with tenant_context(world.a.agency):
            alpha_emails = set(User.objects.values_list("email", flat=True))
        # when
        call_command("agency_dump", slug="alpha", output=dump)
        call_command("agency_restore", dump=dump, database_url=fresh_database)
    # then the fresh database holds alpha's schema with alpha's people, and nothing of bravo or the platform
    restored = psycopg2.connect(fresh_database)
    try:
        with restored.cursor() as cursor:
            cursor.execute("SELECT email FROM alpha.people_user")
            assert {row[0] for row in cursor.fetchall()} == alpha_emails and alpha_emails
            cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname IN ('bravo', 'alpha')")
            assert [row[0] for row in cursor.fetchall()] == ["alpha"]
            cursor.execute("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace")
            assert cursor.fetchone()[0] == 0
            # and its sequences go on from where alpha's were
            cursor.execute("SELECT max(id) < nextval('alpha.people_user_id_seq') FROM alpha.people_user")
            assert cursor.fetchone()[0]
    finally:
        restored.close()


def test_dumping_an_unknown_agency_is_refused(world, tmp_path, django_db_blocker):
    with django_db_blocker.unblock(), pytest.raises(CommandError, match="No agency"):
        call_command("agency_dump", slug="nobody", output=tmp_path / "x.dump")
    assert not (tmp_path / "x.dump").exists()


def test_max_locks_per_transaction_grows_with_the_agencies():
    assert postgres_max_locks_per_transaction(agencies=1) == 64 * 2
    at_1000 = postgres_max_locks_per_transaction(agencies=1000)
    assert at_1000 * 100 >= 60 * 1001 + 64 * 100 and at_1000 % 64 == 0 and at_1000 <= 1024
    assert postgres_max_locks_per_transaction(agencies=5000) > at_1000
