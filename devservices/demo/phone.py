"""The phone side of the demo (`make run`): accounts in the local fake Twilio, a provider per demo client.

Importable without Django (devservices.stack uses the constants before Django is set up).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

log = logging.getLogger(__name__)

DEMO_MASTER_SID = "AC" + "de" * 16
DEMO_MASTER_AUTH_TOKEN = "d3m0" * 8  # the fake's, never a real account's


def demo_agency_twilio_account(slug: str) -> tuple[str, str]:
    """The demo agency's "own" Twilio account in the fake: (SID, auth token), the same on every run."""
    sid = "AC" + hashlib.sha256(f"demo-agency:{slug}".encode()).hexdigest()[:32]
    return sid, hashlib.sha256(f"demo-token:{slug}".encode()).hexdigest()[:32]


def demo_spare_twilio_account(slug: str) -> tuple[str, str]:
    """A second "own" Twilio account of the demo agency in the fake, left unused so people trying the demo
    can enter it in "Use the agency's own Twilio account" (a SID belongs to one sub-account only)."""
    return demo_agency_twilio_account(f"{slug}-spare")


def fake_twilio_demo_master(base_url: str) -> None:
    from devservices.fake_twilio import create_account

    create_account(base_url, DEMO_MASTER_SID, DEMO_MASTER_AUTH_TOKEN, friendly_name="Rebill platform (demo)",
                   demo=True)


def demo_phone_providers(*, slug: str, subaccounts: list[Any], by: Any) -> None:
    """First client on LC Phone, second on the agency's own Twilio account; then one pull of each.

    Only against the local fake (real Twilio would bill for it). The fake forgets everything when it
    stops, so each run re-registers the accounts an earlier run created.
    """
    from django.conf import settings

    base_url = settings.TWILIO_API_BASE
    if not base_url.startswith(("http://127.0.0.1:", "http://localhost:")) or len(subaccounts) < 2:
        return
    from devservices.fake_twilio import create_account
    from phone.models import SubAccountProvider
    from phone.services import provider_set_lc_phone, provider_set_twilio, usage_pull
    from phone.usage_client import TwilioClientError

    lc_client, twilio_client = subaccounts[0], subaccounts[1]
    existing = SubAccountProvider.objects.filter(subaccount=lc_client).first()
    if existing is not None and existing.lc_phone_account_sid:
        create_account(base_url, existing.lc_phone_account_sid, hashlib.sha256(b"lc").hexdigest()[:32],
                       parent_sid=DEMO_MASTER_SID, friendly_name=f"LC Phone: {lc_client.name}", demo=True)
    else:
        provider_set_lc_phone(subaccount=lc_client, by=by)
    account_sid, auth_token = demo_agency_twilio_account(slug)
    create_account(base_url, account_sid, auth_token, friendly_name=f"{slug} (demo agency's own)", demo=True)
    spare_sid, spare_token = demo_spare_twilio_account(slug)
    create_account(base_url, spare_sid, spare_token, friendly_name=f"{slug} (demo, free to use)", demo=True)
    if not SubAccountProvider.objects.filter(subaccount=twilio_client).exists():
        provider_set_twilio(subaccount=twilio_client, account_sid=account_sid, auth_token=auth_token, by=by)
    for provider in SubAccountProvider.objects.filter(subaccount__in=[lc_client, twilio_client]):
        try:
            usage_pull(provider_id=provider.pk)
        except TwilioClientError as error:  # the demo still starts; the beat pull tries again
            log.warning("Demo usage pull of %s failed: %s", provider.subaccount, error)
