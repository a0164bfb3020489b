"""Named points where a test may make the worker die (SIGKILL) to prove a crash there loses nothing.

Off unless settings.WALLET_CRASH_POINTS (test runs only). A test arms a point with a count in Redis under its
run's own queue name; each pass through an armed point takes one and kills the process.
"""

from __future__ import annotations

import os
import signal

from django.conf import settings

POINTS = ("before_stripe", "after_stripe", "after_commit")


def _key(name: str) -> str:
    return f"rebill:crashpoint:{settings.CELERY_TASK_DEFAULT_QUEUE}:{name}"


def _redis():  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis.from_url(settings.REDIS_URL)


def crash_point(name: str) -> None:
    if not settings.WALLET_CRASH_POINTS:
        return
    if _redis().decr(_key(name)) >= 0:
        os.kill(os.getpid(), signal.SIGKILL)


def crash_arm(name: str, count: int = 1) -> None:
    if name not in POINTS:
        raise ValueError(name)
    _redis().set(_key(name), count)


def crash_disarm() -> None:
    client = _redis()
    for name in POINTS:
        client.delete(_key(name))
