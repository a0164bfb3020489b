"""Browser tests: Debian's chromium driven by playwright against a live server on the test database.

Each module gets its own freshly created agency (committed, since the server runs on another thread
and connection) and drops it afterwards, so the shared `world` is untouched.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.db import connection
from django.test.testcases import LiveServerThread
from django_tenants.utils import tenant_context

from agencies.models import Agency
from agencies.plans import Plan
from agencies.services import agency_create

pytestmark = pytest.mark.browser

# Playwright's sync API keeps an asyncio loop on the test thread; our test code itself is synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def live_server_url(world, django_db_blocker) -> Iterator[str]:
    with django_db_blocker.unblock():
        server = LiveServerThread("127.0.0.1", StaticFilesHandler, port=0)
        server.daemon = True
        server.start()
        server.is_ready.wait()
        if server.error:
            raise server.error
        try:
            yield f"http://{{host}}:{server.port}"
        finally:
            server.terminate()


@pytest.fixture(scope="module")
def browser_agency(world, django_db_blocker) -> Iterator[Agency]:
    slug = f"web-{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock():
        agency = agency_create(
            name="Web Test Agency", slug=slug, plan=Plan.PRO, admin_email=f"admin@{slug}.test",
            admin_password="Browser-admin-pw-1",
        )
        connection.set_schema_to_public()
    yield agency
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        agency.delete(force_drop=True)


@pytest.fixture
def agency_db(browser_agency, django_db_blocker):
    """Read the browser agency's committed rows from a test."""

    class Reader:
        def __enter__(self):
            self._unblock = django_db_blocker.unblock()
            self._unblock.__enter__()
            self._context = tenant_context(browser_agency)
            self._context.__enter__()

        def __exit__(self, *exc):
            self._context.__exit__(*exc)
            connection.set_schema_to_public()
            self._unblock.__exit__(*exc)

    return Reader()


@pytest.fixture(scope="session")
def browser(world) -> Iterator[object]:  # the test database must exist before playwright starts its loop
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()
