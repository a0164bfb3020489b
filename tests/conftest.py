"""Shared fixtures: two agencies with people and sub-accounts, committed once per test session.

Tests that use `db` run inside a transaction that is rolled back, so they see this world and leave it
as it was. Every data test looks at agency A *and* checks nothing of agency B leaks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from django.core.cache import cache, caches
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

from agencies.models import Agency
from agencies.plans import Plan
from agencies.services import agency_create, platform_tenant_ensure
from people.models import User
from subaccounts.models import Membership, SubAccount
from tests.factories import PASSWORD, MembershipFactory, SubAccountFactory, UserFactory


@dataclass
class AgencyWorld:
    agency: Agency
    domain: str
    admin: User
    agency_user: User
    subaccounts: list[SubAccount] = field(default_factory=list)
    account_admins: list[User] = field(default_factory=list)
    account_users: list[User] = field(default_factory=list)


def build_agency_world(*, slug: str, name: str, plan: Plan) -> AgencyWorld:
    agency = agency_create(
        name=name, slug=slug, plan=plan, admin_email=f"admin@{slug}.test", admin_password=PASSWORD
    )
    with tenant_context(agency):
        world = AgencyWorld(
            agency=agency,
            domain=f"{slug}.localhost",
            admin=User.objects.get(email=f"admin@{slug}.test"),
            agency_user=UserFactory(email=f"staff@{slug}.test", role=User.Role.AGENCY_USER),
        )
        for index in (1, 2):
            subaccount = SubAccountFactory(name=f"{name} client {index}")
            world.subaccounts.append(subaccount)
            world.account_admins.append(
                MembershipFactory(
                    subaccount=subaccount, role=Membership.Role.ACCOUNT_ADMIN,
                    user__email=f"owner{index}@{slug}-client.test",
                ).user
            )
            world.account_users.append(
                MembershipFactory(
                    subaccount=subaccount, role=Membership.Role.ACCOUNT_USER,
                    user__email=f"team{index}@{slug}-client.test",
                ).user
            )
    return world


@dataclass
class World:
    a: AgencyWorld
    b: AgencyWorld


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker) -> Iterator[None]:
    """Always the test database, even in a run with no `django_db`-marked test (e.g. browser tests only)."""
    from django.test.utils import setup_databases, teardown_databases

    if MUTATION_TEMPLATE:
        with django_db_blocker.unblock():
            yield from _database_cloned_from(MUTATION_TEMPLATE)
        return
    with django_db_blocker.unblock():
        databases = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    yield
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        with connection.cursor() as cursor:  # the live server's and worker's connections would block the drop
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        teardown_databases(databases, verbosity=0)


@pytest.fixture(scope="session")
def world(django_db_setup, django_db_blocker) -> Iterator[World]:
    assert connection.settings_dict["NAME"].startswith("test_"), "refusing to build test data outside a test database"
    with django_db_blocker.unblock():
        if MUTATION_TEMPLATE:  # the clone already holds the world: load it
            built = World(a=load_agency_world(slug="alpha", name="Alpha Agency"),
                          b=load_agency_world(slug="bravo", name="Bravo Agency"))
        else:
            built = world_build()
        connection.set_schema_to_public()
    yield built


def world_build() -> World:
    platform_tenant_ensure()
    return World(
        a=build_agency_world(slug="alpha", name="Alpha Agency", plan=Plan.PRO),
        b=build_agency_world(slug="bravo", name="Bravo Agency", plan=Plan.FREELANCER),
    )


def load_agency_world(*, slug: str, name: str) -> AgencyWorld:
    """The agency `build_agency_world` made, read back from a database cloned from a template."""
    agency = Agency.objects.get(slug=slug)
    with tenant_context(agency):
        world = AgencyWorld(
            agency=agency, domain=f"{slug}.localhost", admin=User.objects.get(email=f"admin@{slug}.test"),
            agency_user=User.objects.get(email=f"staff@{slug}.test"),
        )
        for index in (1, 2):
            world.subaccounts.append(SubAccount.objects.get(name=f"{name} client {index}"))
            world.account_admins.append(User.objects.get(email=f"owner{index}@{slug}-client.test"))
            world.account_users.append(User.objects.get(email=f"team{index}@{slug}-client.test"))
    return world


# Mutation testing (devservices/mutation.py) runs one short pytest session per mutant. Building the test database
# and the world each time would cost ~10 s, so the driver builds them once into a template database
# (`mutation_template_build`) and every session works on its own copy of it.
MUTATION_TEMPLATE = os.environ.get("REBILL_MUTATION_DB_TEMPLATE", "")
_DATABASE_FIXTURES = {"db", "transactional_db", "live_server", "django_db_setup"}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """In a mutant's session, the tests that need no database run first again.

    mutmut hands each session its tests fastest first and stops at the first failure, but pytest-django moves the
    tests without a database to the end, so a mutant a plain unit test kills would first sit through every page
    test. Those tests touch no database, so running them first cannot change what the others see; the others keep
    pytest-django's order."""
    if MUTATION_TEMPLATE:
        items.sort(key=lambda item: bool(item.get_closest_marker("django_db"))
                   or bool(_DATABASE_FIXTURES & set(getattr(item, "fixturenames", ()))))


def _admin_cursor_execute(*statements: str) -> None:
    import psycopg2

    db = connection.settings_dict
    # The embedded server is reached through its socket directory (OPTIONS.host), the machine's by HOST.
    host = (db.get("OPTIONS") or {}).get("host") or db["HOST"] or None
    admin = psycopg2.connect(dbname="postgres", user=db["USER"], password=db["PASSWORD"] or None,
                             host=host, port=db["PORT"] or None)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        admin.close()


def _leftover_mutant_databases() -> list[str]:
    """Copies of the mutation template whose session is gone without dropping it (mutmut kills a session that times
    out): each is named after its session's pid, so one whose process is no longer alive is left over."""
    import psycopg2

    db = connection.settings_dict
    admin = psycopg2.connect(dbname="postgres", user=db["USER"], password=db["PASSWORD"] or None,
                             host=db["HOST"] or None, port=db["PORT"] or None)
    try:
        with admin.cursor() as cursor:
            cursor.execute(r"SELECT datname FROM pg_database WHERE datname ~ '^test_rebill_mutant_[0-9]+$'")
            names = [row[0] for row in cursor.fetchall()]
    finally:
        admin.close()
    leftover = []
    for name in names:
        try:
            os.kill(int(name.rsplit("_", 1)[1]), 0)
        except ProcessLookupError:
            leftover.append(name)
        except PermissionError:  # alive, another user's
            pass
    return leftover


def _database_cloned_from(template: str) -> Iterator[None]:
    import time

    from django.conf import settings

    name = f"test_rebill_mutant_{os.getpid()}"
    connection.close()
    for attempt in range(20):  # another worker may be cloning the same template this instant
        try:
            _admin_cursor_execute(f'DROP DATABASE IF EXISTS "{name}"',
                                  f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            break
        except Exception:
            if attempt == 19:
                raise
            time.sleep(0.25)
    settings.DATABASES["default"]["NAME"] = connection.settings_dict["NAME"] = name
    # Sessions of one mutation run may overlap: each has its own cache prefix and Celery queue too.
    from rebill.celery import app

    settings.CACHES["default"]["KEY_PREFIX"] = app.conf.task_default_queue = f"mutant{os.getpid()}"
    # This thread's cache was built (with the run's prefix) before: give it the session's, so clear_this_runs_cache
    # finds its keys and no session sees the keys of one before it (every clone has the same ids).
    caches["default"].key_prefix = settings.CACHES["default"]["KEY_PREFIX"]
    yield
    clear_this_runs_cache()  # leave no keys behind for other runs sharing this Redis database
    connection.close()
    _admin_cursor_execute(
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
        f'DROP DATABASE IF EXISTS "{name}"',
    )


def mutation_template_build(template: str) -> None:
    """Build the test database with the world in it, then keep it as `template` (called by the mutation driver)."""
    from django.conf import settings
    from django.test.utils import setup_databases

    settings.DATABASES["default"]["TEST"]["NAME"] = template
    _admin_cursor_execute(f'DROP DATABASE IF EXISTS "{template}"')
    setup_databases(verbosity=0, interactive=False, aliases={"default"})
    world_build()
    connection.set_schema_to_public()
    connection.close()


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """One localstripe (our launcher: idempotency, Stripe-Account separation, signed events) per test session."""
    from devservices.localstripe_server import start_localstripe

    service = start_localstripe()
    try:
        yield service.url
    finally:
        service.stop()


@pytest.fixture(autouse=True)
def _public_schema_after_each_test() -> Iterator[None]:
    yield
    connection.set_schema_to_public()


@pytest.fixture(autouse=True)
def _clean_cache(request) -> Iterator[None]:
    # Lockout counters live in Redis; each test starts with none of this run's keys (other runs may share Redis).
    if "db" in request.fixturenames or "world" in request.fixturenames:
        clear_this_runs_cache()
    yield


def clear_this_runs_cache() -> None:
    from django.conf import settings

    client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
    keys = list(client.scan_iter(match=f"*:{settings.CACHES['default']['KEY_PREFIX']}:*", count=1000))
    if keys:
        client.delete(*keys)


def client_for(agency_world: AgencyWorld, user: User | None = None) -> Client:
    """A browser-like client on the agency's domain, signed in as `user` when given."""
    client = Client(HTTP_HOST=agency_world.domain)
    if user is not None:
        with tenant_context(agency_world.agency):
            client.force_login(user)
    return client


def test_database_url() -> str:
    """DATABASE_URL of the test database, for child processes (a Celery worker, a server)."""
    from urllib.parse import quote

    db = connection.settings_dict
    host = db.get("HOST") or ""
    socket_dir = (db.get("OPTIONS") or {}).get("host")
    if socket_dir:
        return f"postgres://{db['USER']}@/{db['NAME']}?host={socket_dir}"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{quote(db['USER'] or '')}@{host}{port}/{db['NAME']}"


class CeleryWorker:
    def __init__(self, process):
        self.process = process

    def wait_until(self, condition, timeout: float = 30.0) -> None:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited with {self.process.returncode}")
            time.sleep(0.1)
        raise AssertionError("condition not met within timeout")


@pytest.fixture(scope="session")
def celery_worker(world, tmp_path_factory) -> Iterator[CeleryWorker]:
    """A real Celery worker process on the test database and the real Redis."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from rebill.celery import app

    log = tmp_path_factory.mktemp("celery") / "worker.log"
    env = {**os.environ, "DATABASE_URL": test_database_url(), "REBILL_ENV": "test",
           "CELERY_QUEUE": app.conf.task_default_queue}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "rebill", "worker", "--pool=solo", "--loglevel=INFO",
             "--queues", app.conf.task_default_queue,
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while not app.control.ping(timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Celery worker did not start:\n" + log.read_text())
        yield CeleryWorker(process)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


@pytest.fixture
def jobs_left_queued() -> Iterator[None]:
    """The jobs a test queues wait in a queue of their own, for the test to read (tests/queued_jobs.py): the
    session's Celery worker, once another test has started it, would otherwise take them, or run them beside the
    call under test."""
    from rebill.celery import app
    from tests.queued_jobs import broker

    queue = app.conf.task_default_queue
    app.conf.task_default_queue = f"{queue}-left-queued"
    broker().delete(app.conf.task_default_queue)
    try:
        yield
    finally:
        broker().delete(app.conf.task_default_queue)
        app.conf.task_default_queue = queue
