"""Named points where a test may make the worker die (SIGKILL) to prove a crash there loses nothing.

Off unless settings.WALLET_CRASH_POINTS (test runs only). A test arms a point with a count in Redis under its
run's own queue name; each pass through an armed point takes one and kills the process.
"""

from __future__ import annotations

import os
import signal

from django.conf import settings

POINTS = ("before_stripe", "after_stripe", "after_commit")


def _key(name: str, queue: str | None = None) -> str:
    return f"rebill:crashpoint:{queue or settings.CELERY_TASK_DEFAULT_QUEUE}:{name}"


def _redis():  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis.from_url(settings.REDIS_URL)


def crash_point(name: str) -> None:
    if not settings.WALLET_CRASH_POINTS:
        return
    if _redis().decr(_key(name)) >= 0:
        os.kill(os.getpid(), signal.SIGKILL)


def crash_arm(name: str, count: int = 1, *, queue: str | None = None) -> None:
    """Kill the next `count` passes through `name` by workers of `queue` (default: this process's queue)."""
    if name not in POINTS:
        raise ValueError(name)
    _redis().set(_key(name, queue), count)


def crash_remaining(name: str, *, queue: str | None = None) -> int:
    value = _redis().get(_key(name, queue))
    return int(value) if value is not None else 0


def crash_disarm(*, queue: str | None = None) -> None:
    client = _redis()
    for name in POINTS:
        client.delete(_key(name, queue))
