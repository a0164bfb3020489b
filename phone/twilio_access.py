"""How to reach Twilio for a sub-account: base URL and credentials, read from settings at call time."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from agencies.plans import PhoneProvider
from phone.crypto import secret_decrypt
from phone.models import SubAccountProvider
from phone.usage_client import RetryPolicy


@dataclass(frozen=True)
class TwilioAccess:
    """Read `account_sid` with `auth_sid`/`auth_token` (its own, or its master account's)."""

    account_sid: str
    auth_sid: str
    auth_token: str = field(repr=False)


class LcPhoneNotConfigured(Exception):
    """The platform's master Twilio account is not configured (TWILIO_MASTER_ACCOUNT_SID/AUTH_TOKEN)."""


def twilio_base_url() -> str | None:
    return settings.TWILIO_API_BASE or None


def twilio_retry() -> RetryPolicy:
    backoff: float = settings.TWILIO_RETRY_BACKOFF_SECONDS  # seconds, not money
    # Scaled from the first delay: 0.5 s gives the client's defaults (30 s cap, Retry-After honoured up to 60 s).
    return RetryPolicy(max_attempts=settings.TWILIO_RETRY_MAX_ATTEMPTS, backoff=backoff,
                       max_backoff=60 * backoff, max_retry_after=120 * backoff)


def twilio_page_size() -> int:
    return int(settings.TWILIO_USAGE_PAGE_SIZE)


def twilio_timeout() -> float:
    return settings.TWILIO_TIMEOUT_SECONDS  # seconds, read from the env as a float


def master_access() -> TwilioAccess:
    sid, token = settings.TWILIO_MASTER_ACCOUNT_SID, settings.TWILIO_MASTER_AUTH_TOKEN
    if not sid or not token:
        raise LcPhoneNotConfigured("TWILIO_MASTER_ACCOUNT_SID and TWILIO_MASTER_AUTH_TOKEN are not set.")
    return TwilioAccess(account_sid=sid, auth_sid=sid, auth_token=token)


def provider_access(provider: SubAccountProvider) -> TwilioAccess:
    if provider.provider == PhoneProvider.LC_PHONE:
        master = master_access()
        return TwilioAccess(account_sid=provider.lc_phone_account_sid, auth_sid=master.auth_sid,
                            auth_token=master.auth_token)
    return TwilioAccess(
        account_sid=provider.twilio_account_sid,
        auth_sid=provider.twilio_account_sid,
        auth_token=secret_decrypt(provider.twilio_auth_token_encrypted),
    )
