"""Fixtures for the phone app's tests that need the fake Twilio server (no database)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devservices.fake_twilio import reset as reset_fake_twilio
from devservices.fake_twilio import start_fake_twilio
from devservices.processes import ServiceProcess
from phone.usage_client import RetryPolicy

# Retries in tests: a handful of attempts, milliseconds apart.
FAST_RETRY = RetryPolicy(max_attempts=4, backoff=0.01, max_backoff=0.05, max_retry_after=0.2)


@pytest.fixture(scope="session")
def fake_twilio_process() -> Iterator[ServiceProcess]:
    process = start_fake_twilio()
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
