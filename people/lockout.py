"""Brute-force protection for sign-in: after LOGIN_FAILURE_LIMIT failures an email is locked for LOGIN_LOCKOUT.

Counters live in the cache (Redis), whose keys are prefixed with the agency's schema, so a lockout on
one agency's domain never locks the same email on another's.
"""

from django.conf import settings
from django.core.cache import cache


def _key(email: str) -> str:
    return f"login-failures:{email.strip().lower()}"


def login_is_locked(*, email: str) -> bool:
    return int(cache.get(_key(email), 0)) >= settings.LOGIN_FAILURE_LIMIT


def login_failure_record(*, email: str) -> int:
    key = _key(email)
    timeout = int(settings.LOGIN_LOCKOUT.total_seconds())
    cache.add(key, 0, timeout=timeout)
    failures = cache.incr(key)
    # Each failure restarts the lockout window, so a patient attacker stays locked out.
    cache.touch(key, timeout=timeout)
    return int(failures)


def login_failures_clear(*, email: str) -> None:
    cache.delete(_key(email))
