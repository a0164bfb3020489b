"""The Celery jobs waiting in this test run's own queue, read straight from Redis (nothing consumes them in a test)."""

from __future__ import annotations

import base64
import json

import redis
from django.conf import settings

from rebill.celery import app


def broker() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def queued(task_name: str) -> list[tuple[str, list]]:
    """(schema, args) of each message for `task_name` waiting in this run's Celery queue."""
    found = []
    for raw in broker().lrange(app.conf.task_default_queue, 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] == task_name:
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            found.append((message["headers"].get("_schema_name"), args))
    return found
