"""Fan-out: beat's dispatcher in public sends one task per agency carrying its schema, and a tenant task
without a schema fails loudly. One test runs a real Celery worker against the test database and Redis."""

from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from agencies.tasks import fan_out_to_agencies
from people.tasks import purge_expired_sessions
from rebill.celery import MissingTenantSchema


def make_session(*, expired: bool) -> str:
    store = SessionStore()
    store["marker"] = "x"
    store.create()
    if expired:
        Session.objects.filter(session_key=store.session_key).update(expire_date=timezone.now() - timedelta(days=1))
    return store.session_key


@pytest.mark.django_db
def test_tenant_task_without_schema_fails_loudly(world):
    connection.set_schema_to_public()
    result = purge_expired_sessions.apply()
    assert result.failed()
    assert isinstance(result.result, MissingTenantSchema)


@pytest.mark.django_db
def test_tenant_task_runs_in_the_schema_it_was_sent_from(world):
    with tenant_context(world.a.agency):
        expired_a, live_a = make_session(expired=True), make_session(expired=False)
    with tenant_context(world.b.agency):
        expired_b = make_session(expired=True)
    with tenant_context(world.a.agency):
        assert purge_expired_sessions.apply().get() == 1
        assert set(Session.objects.values_list("session_key", flat=True)) >= {live_a}
        assert not Session.objects.filter(session_key=expired_a).exists()
    with tenant_context(world.b.agency):
        assert Session.objects.filter(session_key=expired_b).exists()


def test_real_worker_fans_out_to_every_agency(world, celery_worker, django_db_blocker):
    # given expired sessions committed in both agencies
    with django_db_blocker.unblock():
        with tenant_context(world.a.agency):
            expired_a, live_a = make_session(expired=True), make_session(expired=False)
        with tenant_context(world.b.agency):
            expired_b = make_session(expired=True)
        connection.set_schema_to_public()
        # when beat's dispatcher runs (in public) on a real worker
        sent = fan_out_to_agencies.delay("people.tasks.purge_expired_sessions").get(timeout=30)
        # then each agency's own task purged its own schema
        assert sent >= 2
        celery_worker.wait_until(
            lambda: not _exists(world.a.agency, expired_a) and not _exists(world.b.agency, expired_b)
        )
        assert _exists(world.a.agency, live_a)
        # and a tenant task sent from public fails on the worker instead of running there
        failed = purge_expired_sessions.delay()
        with pytest.raises(MissingTenantSchema):
            failed.get(timeout=30)


def _exists(agency, session_key) -> bool:
    with tenant_context(agency):
        return Session.objects.filter(session_key=session_key).exists()
