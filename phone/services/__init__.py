"""Writes of the phone app: provider settings (providers.py) and the usage pull (usage.py)."""

from phone.services.providers import (
    provider_lc_phone_resume,
    provider_lc_phone_suspend,
    provider_mark_credentials_invalid,
    provider_record_error,
    provider_set_lc_phone,
    provider_set_twilio,
)
from phone.services.usage import (
    PullOutcome,
    PullResult,
    usage_lines_store,
    usage_pull,
    usage_pull_retired,
    usage_pull_retired_accounts,
    usage_pulls,
    usage_window,
)
from phone.services.usage_store import UsageRead, usage_reads_store

__all__ = [
    "PullOutcome",
    "PullResult",
    "provider_lc_phone_resume",
    "provider_lc_phone_suspend",
    "provider_mark_credentials_invalid",
    "provider_record_error",
    "provider_set_lc_phone",
    "provider_set_twilio",
    "usage_lines_store",
    "usage_pull",
    "usage_pull_retired",
    "usage_pull_retired_accounts",
    "usage_pulls",
    "UsageRead",
    "usage_reads_store",
    "usage_window",
]
