"""Brute-force protection for sign-in: at most LOGIN_FAILURE_LIMIT password checks per email per LOGIN_LOCKOUT.

Each attempt is *reserved* before its password is checked: one atomic Redis script increments the email's
counter and (for an attempt that will be checked) restarts its expiry. However many sign-ins run at once,
only the first LOGIN_FAILURE_LIMIT reservations of a window get a password check; a successful sign-in
clears the counter. Counters live in the cache (Redis), whose keys are prefixed with the agency's schema, so
a lockout on one agency's domain never locks the same email on another's.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import cache

# INCR and EXPIRE in one step: no window between them in which a key could live without an expiry. Attempts
# refused for being over the limit do not restart the window (a locked-out person retrying does not extend it).
_RESERVE = """
local attempts = redis.call('INCR', KEYS[1])
if attempts <= tonumber(ARGV[1]) or redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return attempts
"""


def lockout_key(*, email: str) -> str:
    """The full Redis key (schema and key prefix included) of an email's counter in the current schema."""
    return cache.make_and_validate_key(f"login-failures:{email.strip().lower()}")


def _redis() -> Any:
    return cache._cache.get_client(write=True)  # type: ignore[attr-defined]


def login_attempt_reserve(*, email: str) -> int:
    """Reserve one attempt; returns its number in the current window. Above LOGIN_FAILURE_LIMIT: do not check."""
    timeout = int(settings.LOGIN_LOCKOUT.total_seconds())
    return int(_redis().eval(_RESERVE, 1, lockout_key(email=email), settings.LOGIN_FAILURE_LIMIT, timeout))


def login_attempts_clear(*, email: str) -> None:
    _redis().delete(lockout_key(email=email))
