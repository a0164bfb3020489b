"""Sign-in, sign-out and brute-force lockout."""

import pytest
from django.urls import reverse

from tests.conftest import client_for
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def sign_in(client, email, password):
    return client.post(reverse("people:login"), {"email": email, "password": password})


def test_agency_admin_signs_in_and_lands_on_subaccounts(world):
    client = client_for(world.a)
    response = sign_in(client, "ADMIN@alpha.test", PASSWORD)
    assert response.status_code == 302
    assert client.get(response["Location"], follow=True).request["PATH_INFO"] == reverse("subaccounts:list")


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(world, settings):
    client = client_for(world.a)
    for attempt in range(1, settings.LOGIN_FAILURE_LIMIT):
        page = sign_in(client, "admin@alpha.test", "wrong").content.decode()
        assert "Wrong email or password." in page, attempt
    locked = sign_in(client, "admin@alpha.test", "wrong").content.decode()
    assert "Too many failed sign-in attempts" in locked
    # the right password is refused while locked, and no session is created
    refused = sign_in(client, "admin@alpha.test", PASSWORD)
    assert refused.status_code == 200 and "Too many failed sign-in attempts" in refused.content.decode()
    assert "_auth_user_id" not in client.session


def test_lockout_on_one_agency_does_not_lock_the_same_email_elsewhere(world, settings):
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        sign_in(client_for(world.a), "admin@bravo.test", "wrong")
    # bravo's own admin signs in on bravo's domain
    assert sign_in(client_for(world.b), "admin@bravo.test", PASSWORD).status_code == 302


def test_lockout_expires(world, settings):
    from django.core.cache import cache
    from django_tenants.utils import tenant_context

    from people.lockout import lockout_key

    client = client_for(world.a)
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        sign_in(client, "admin@alpha.test", "wrong")
    assert "Too many" in sign_in(client, "admin@alpha.test", PASSWORD).content.decode()
    # the test's own key (this run's prefix, alpha's schema): never a search through whatever else is in Redis
    with tenant_context(world.a.agency):
        key = lockout_key(email="admin@alpha.test")
    assert key.startswith(f"alpha:{settings.TEST_RUN_ID}:")
    redis = cache._cache.get_client()
    lockout = settings.LOGIN_LOCKOUT.total_seconds()
    assert lockout - 5 < redis.ttl(key) <= lockout
    # Redis expires the counter itself after LOGIN_LOCKOUT; simulate the wait by deleting what Redis expires.
    redis.delete(key)
    assert sign_in(client, "admin@alpha.test", PASSWORD).status_code == 302


def test_parallel_wrong_passwords_get_at_most_the_limit_of_password_checks(world, settings, monkeypatch):
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    from people.models import User

    # given every password check is counted (and slow enough for parallel requests to overlap)
    checks = []
    real_check_password = User.check_password

    def counted_check_password(self, raw_password):
        checks.append(raw_password)
        time.sleep(0.05)
        return real_check_password(self, raw_password)

    monkeypatch.setattr(User, "check_password", counted_check_password)
    attempts = 32
    start = threading.Barrier(attempts)

    def attempt(index: int) -> tuple[int, str]:
        try:
            client = client_for(world.a)
            start.wait(timeout=30)
            response = sign_in(client, "admin@alpha.test", f"wrong-{index}")
            return response.status_code, response.content.decode()
        finally:
            connections.close_all()

    # when 32 sign-ins for one email run at once, against the real Redis
    with ThreadPoolExecutor(max_workers=attempts) as pool:
        results = list(pool.map(attempt, range(attempts)))

    # then at most LOGIN_FAILURE_LIMIT passwords were checked, and every other attempt was refused unchecked
    assert 1 <= len(checks) <= settings.LOGIN_FAILURE_LIMIT
    assert [(status, page[:300]) for status, page in results if status != 200] == []
    refused = [page for _, page in results if "Too many failed sign-in attempts" in page]
    assert len(refused) >= attempts - settings.LOGIN_FAILURE_LIMIT + 1
    # and once the window is spent, the right password is refused without being checked
    before = len(checks)
    assert "Too many" in sign_in(client_for(world.a), "admin@alpha.test", PASSWORD).content.decode()
    assert len(checks) == before


def test_a_successful_sign_in_clears_the_attempts(world, settings):
    client = client_for(world.a)
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        sign_in(client, "admin@alpha.test", "wrong")
    assert sign_in(client, "admin@alpha.test", PASSWORD).status_code == 302
    # a fresh window: LIMIT - 1 more wrong guesses still leave room for the right one
    other = client_for(world.a)
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        assert "Wrong email or password." in sign_in(other, "admin@alpha.test", "wrong").content.decode()
    assert sign_in(other, "admin@alpha.test", PASSWORD).status_code == 302


def test_users_of_another_agency_cannot_sign_in_here(world):
    response = sign_in(client_for(world.a), "admin@bravo.test", PASSWORD)
    assert response.status_code == 200 and "Wrong email or password." in response.content.decode()


def test_sign_out_needs_post(world):
    client = client_for(world.a, world.a.admin)
    assert client.get(reverse("people:logout")).status_code == 405
    assert client.get(reverse("subaccounts:list")).status_code == 200
    client.post(reverse("people:logout"))
    assert client.get(reverse("subaccounts:list")).status_code == 302


def test_state_changes_need_csrf(world):
    from django.test import Client
    from django_tenants.utils import tenant_context

    client = Client(HTTP_HOST=world.a.domain, enforce_csrf_checks=True)
    with tenant_context(world.a.agency):
        client.force_login(world.a.admin)
    response = client.post(reverse("subaccounts:create"), {"name": "No token"})
    assert response.status_code == 403
    assert sign_in(Client(HTTP_HOST=world.a.domain, enforce_csrf_checks=True), "admin@alpha.test",
                   PASSWORD).status_code == 403


def test_platform_staff_sign_in_is_locked_out_too(world, settings):
    from django.db import connection
    from django.test import Client

    from people.models import User

    connection.set_schema_to_public()
    User.objects.create_superuser("ops@rebill.localhost", "Platform-pass-123")
    client = Client(HTTP_HOST="localhost")
    login_page = client.get("/admin/", follow=True)
    assert "Sign in" in login_page.content.decode()
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        client.post("/admin/login/", {"email": "ops@rebill.localhost", "password": "nope", "next": "/admin/"})
    refused = client.post("/admin/login/", {"email": "ops@rebill.localhost", "password": "Platform-pass-123"})
    assert "Too many failed sign-in attempts" in refused.content.decode()
    assert client.get("/admin/").status_code == 302


def test_platform_staff_sign_in_reaches_the_admin(world):
    from django.db import connection
    from django.test import Client

    from people.models import User

    connection.set_schema_to_public()
    User.objects.create_superuser("ops2@rebill.localhost", "Platform-pass-123")
    client = Client(HTTP_HOST="localhost")
    response = client.post("/admin/login/", {"email": "ops2@rebill.localhost", "password": "Platform-pass-123"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert "Sign out" in client.get("/").content.decode()
