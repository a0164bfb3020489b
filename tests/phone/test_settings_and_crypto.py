"""Phone settings from the environment, and the encryption of stored auth tokens."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from phone.crypto import SecretUnreadable, secret_decrypt, secret_encrypt

PROJECT_DIR = Path(__file__).resolve().parents[2]


def settings_value(expression: str, **env: str) -> str:
    code = f"import django; django.setup(); from django.conf import settings; print({expression})"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "USAGE_PULL", "PHONE_"))}
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, text=True,
                            env=base | {"DJANGO_SETTINGS_MODULE": "rebill.settings"} | env, check=True)
    return result.stdout.strip()


def test_the_tick_runs_every_minute_and_pulls_every_5_minutes_or_hourly_when_idle(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["pull-phone-usage"]
    assert entry["task"] == "agencies.tasks.usage_pull_dispatch"
    assert "args" not in entry
    schedule = "settings.CELERY_BEAT_SCHEDULE['pull-phone-usage']['schedule']"
    assert settings_value(schedule) == str(timedelta(seconds=60))
    assert settings_value(schedule, USAGE_PULL_INTERVAL_SECONDS="30") == str(timedelta(seconds=30))
    intervals = "settings.USAGE_PULL_INTERVAL_SECONDS, settings.USAGE_PULL_IDLE_INTERVAL_SECONDS"
    assert settings_value(intervals) == "300 3600"
    assert settings_value(intervals, USAGE_PULL_INTERVAL_SECONDS="120",
                          USAGE_PULL_IDLE_INTERVAL_SECONDS="1800") == "120 1800"


def test_production_has_no_default_encryption_key():
    assert settings_value("settings.PHONE_CREDENTIALS_KEYS", REBILL_ENV="production", DJANGO_SECRET_KEY="k" * 60,
                          DATABASE_URL="postgres://x@db/rebill", REDIS_URL="redis://cache:6379/0") == "[]"


def test_tokens_are_not_stored_without_a_key(settings):
    settings.PHONE_CREDENTIALS_KEYS = []
    with pytest.raises(ImproperlyConfigured, match="PHONE_CREDENTIALS_KEYS"):
        secret_encrypt("a" * 32)


def test_keys_rotate_the_first_encrypts_any_decrypts(settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.PHONE_CREDENTIALS_KEYS = [old_key]
    stored_before = secret_encrypt("token-before-rotation")
    settings.PHONE_CREDENTIALS_KEYS = [new_key, old_key]
    assert secret_decrypt(stored_before) == "token-before-rotation"
    stored_after = secret_encrypt("token-after-rotation")
    settings.PHONE_CREDENTIALS_KEYS = [new_key]
    assert secret_decrypt(stored_after) == "token-after-rotation"
    with pytest.raises(SecretUnreadable) as raised:
        secret_decrypt(stored_before)
    assert "token-before-rotation" not in str(raised.value)
