"""Fixtures for the phone app's tests: one fake Twilio process per session, reset for each test.

The fake's address and the platform's master credentials are put in the environment at collection time,
before any fixture starts the session's Celery worker (a child process that reads them from there);
the `_phone_settings` fixture points this process's settings at the same fake.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from devservices.fake_twilio import create_account, start_fake_twilio
from devservices.fake_twilio import reset as reset_fake_twilio
from devservices.processes import ServiceProcess, free_port
from phone.usage_client import RetryPolicy

# Retries in tests: a handful of attempts, milliseconds apart.
FAST_RETRY = RetryPolicy(max_attempts=4, backoff=0.01, max_backoff=0.05, max_retry_after=0.2)

MASTER_SID = "AC" + "0" * 31 + "1"
MASTER_TOKEN = "m" * 32
FAKE_TWILIO_PORT = free_port()
PHONE_ENV = {
    "TWILIO_API_BASE": f"http://127.0.0.1:{FAKE_TWILIO_PORT}",
    "TWILIO_MASTER_ACCOUNT_SID": MASTER_SID,
    "TWILIO_MASTER_AUTH_TOKEN": MASTER_TOKEN,
    "TWILIO_RETRY_MAX_ATTEMPTS": "4",
    "TWILIO_RETRY_BACKOFF_SECONDS": "0.01",
}
os.environ.update(PHONE_ENV)


@pytest.fixture(scope="session")
def fake_twilio_process() -> Iterator[ServiceProcess]:
    process = start_fake_twilio(FAKE_TWILIO_PORT)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def fake_twilio(fake_twilio_process: ServiceProcess) -> str:
    """Base URL of a fake Twilio with no accounts, no faults and an empty request log."""
    reset_fake_twilio(fake_twilio_process.url)
    return fake_twilio_process.url


@pytest.fixture
def fast_retry() -> RetryPolicy:
    return FAST_RETRY


@dataclass(frozen=True)
class FakeTwilio:
    url: str
    master_sid: str
    master_token: str


@pytest.fixture
def twilio(fake_twilio: str, settings) -> FakeTwilio:
    """The fake with the platform's master account, and this process's settings pointed at it."""
    create_account(fake_twilio, MASTER_SID, MASTER_TOKEN, friendly_name="Rebill platform master")
    settings.TWILIO_API_BASE = fake_twilio
    settings.TWILIO_MASTER_ACCOUNT_SID = MASTER_SID
    settings.TWILIO_MASTER_AUTH_TOKEN = MASTER_TOKEN
    settings.TWILIO_RETRY_MAX_ATTEMPTS = 4
    settings.TWILIO_RETRY_BACKOFF_SECONDS = 0.01
    return FakeTwilio(url=fake_twilio, master_sid=MASTER_SID, master_token=MASTER_TOKEN)


@pytest.fixture
def staff_client(world):
    """Platform staff signed in to the admin on the platform's own domain."""
    from django.db import connection
    from django.test import Client

    from people.models import User

    connection.set_schema_to_public()
    staff = User.objects.create_superuser("prices@rebill.localhost", "Str0ng-enough-pw")
    client = Client(HTTP_HOST="localhost")
    client.force_login(staff)
    return client
