"""Small helpers for the billing tests."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from django_tenants.utils import tenant_context

from billing.models import BillingProfile
from tests.billing.fixtures import PUBLISHABLE_KEY, card


def confirm_like_stripe_js(base: str, setup_intent_id: str, client_secret: str, number: str = "4242424242424242",
                           exp_month: int = 12) -> dict[str, Any]:
    """What Stripe.js's confirmCardSetup sends from the browser: the publishable key and the client secret."""
    body = json.dumps({"key": PUBLISHABLE_KEY, "use_stripe_sdk": True, "client_secret": client_secret,
                       "payment_method_data": {"type": "card", "card": card(number, exp_month)}}).encode()
    request = urllib.request.Request(f"{base}/v1/setup_intents/{setup_intent_id}/confirm", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        result: dict[str, Any] = json.load(response)
        return result


def profile_of(agency_world, subaccount) -> BillingProfile | None:
    with tenant_context(agency_world.agency):
        return BillingProfile.objects.filter(subaccount=subaccount).first()


def add_card_on_company_billing(client, subaccount, base: str, number: str = "4242424242424242"):
    """As the account admin's browser does: start a card setup, confirm it with Stripe.js, post done."""
    import re

    start = client.post(f"/accounts/{subaccount.pk}/billing/card/")
    html = client.get(start["Location"]).content.decode()
    client_secret = re.search(r'data-client-secret="([^"]+)"', html).group(1)
    confirm_like_stripe_js(base, client_secret.split("_secret_")[0], client_secret, number)
    return client.post(start["Location"] + "done/", follow=True)
