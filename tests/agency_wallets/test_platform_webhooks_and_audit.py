"""Platform-account webhooks on their own endpoint with their own secret (each endpoint refuses the other's events
and signature), crediting an agency charge once; `wallet_audit` checks agency wallets too."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from agency_wallets.charging import agency_charge_execute, agency_wallet_recharge_start, agency_wallets_audit
from agency_wallets.models import AgencyCharge, AgencyWallet, AgencyWalletEntry
from stripe_connect.models import WebhookEvent
from tests.agency_wallets.helpers import agency_wallet_at, platform_intents
from tests.billing.fixtures import ACCT_A, PLATFORM_WEBHOOK_SECRET, WEBHOOK_SECRET, event_payload, post_webhook, sign

pytestmark = pytest.mark.django_db

PLATFORM = "/stripe/platform-webhook/"


def _charged_at_stripe_only(world, raw_stripe) -> tuple[AgencyWallet, AgencyCharge, str]:
    """A charge Stripe succeeded whose synchronous answer we never recorded (the worker died after the call)."""
    from stripe_connect.gateway import PlatformStripe

    wallet = agency_wallet_at(world.a.agency, "1", raw=raw_stripe)
    charge = agency_wallet_recharge_start(wallet_id=wallet.pk)
    intent = PlatformStripe().payment_intent_create_off_session(
        amount=charge.amount, currency=charge.currency, customer_id=charge.stripe_customer_id,
        payment_method_id=charge.payment_method_id, metadata={"rebill_charge": charge.idempotency_key},
        idempotency_key=charge.idempotency_key)
    return wallet, charge, intent.id


def test_a_platform_event_credits_the_agency_wallet_once(world, connected, raw_stripe):
    wallet, charge, intent_id = _charged_at_stripe_only(world, raw_stripe)
    payload = event_payload(event_id="evt_platform_1", event_type="payment_intent.succeeded",
                            obj={"id": intent_id, "status": "succeeded"}, account=None)

    # when the event arrives twice at the platform endpoint, and the worker's rerun comes after
    for _ in range(2):
        assert post_webhook(payload, sign(payload, secret=PLATFORM_WEBHOOK_SECRET), path=PLATFORM).status_code == 200
    agency_charge_execute(charge_id=charge.pk)

    # then the wallet is credited once, from Stripe's current state, and one PaymentIntent exists
    connection.set_schema_to_public()
    charge.refresh_from_db()
    wallet.refresh_from_db()
    assert charge.status == AgencyCharge.Status.SUCCEEDED and wallet.balance == Decimal("11")
    assert wallet.entries.filter(kind=AgencyWalletEntry.Kind.RECHARGE).count() == 1
    assert len(platform_intents(raw_stripe)) == 1
    inbox = WebhookEvent.objects.get(event_id="evt_platform_1")
    assert (inbox.status, inbox.account_id, inbox.agency) == (WebhookEvent.Status.HANDLED, "", None)


def test_each_endpoint_refuses_the_others_events_and_signature(world, connected, raw_stripe):
    wallet, charge, intent_id = _charged_at_stripe_only(world, raw_stripe)
    platform_event = event_payload(event_id="evt_p", event_type="payment_intent.succeeded",
                                   obj={"id": intent_id}, account=None)
    connect_event = event_payload(event_id="evt_c", event_type="customer.updated", obj={"id": "cus_x"},
                                  account=ACCT_A)

    refused = [
        # the platform's event at the Connect endpoint (its own secret, or the Connect one)
        post_webhook(platform_event, sign(platform_event, secret=PLATFORM_WEBHOOK_SECRET)),
        post_webhook(platform_event, sign(platform_event, secret=WEBHOOK_SECRET)),
        # a connected account's event at the platform endpoint (either secret)
        post_webhook(connect_event, sign(connect_event, secret=WEBHOOK_SECRET), path=PLATFORM),
        post_webhook(connect_event, sign(connect_event, secret=PLATFORM_WEBHOOK_SECRET), path=PLATFORM),
        # the platform's event signed with the Connect secret at the platform endpoint
        post_webhook(platform_event, sign(platform_event, secret=WEBHOOK_SECRET), path=PLATFORM),
    ]

    assert [r.status_code for r in refused] == [400] * 5
    connection.set_schema_to_public()
    assert not WebhookEvent.objects.filter(event_id__in=["evt_p", "evt_c"]).exists()
    charge.refresh_from_db()
    assert charge.status == AgencyCharge.Status.STARTED
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("1")


def test_wallet_audit_checks_agency_wallets_against_their_ledger_and_stripe(world, connected, raw_stripe):
    # given agency A's wallet recharged once, correctly
    wallet = agency_wallet_at(world.a.agency, "1", raw=raw_stripe)
    charge = agency_wallet_recharge_start(wallet_id=wallet.pk)
    agency_charge_execute(charge_id=charge.pk)
    assert agency_wallets_audit(stripe_since=timezone.now() - timedelta(days=1)) == []
    out = StringIO()
    call_command("wallet_audit", "--stripe-days", "1", stdout=out)
    assert "0 difference(s) found." in out.getvalue()

    # when Stripe disagrees with a succeeded charge (its amount recorded differently here)
    AgencyCharge.objects.filter(pk=charge.pk).update(payment_intent_id="pi_unknown")
    out = StringIO()
    with pytest.raises(SystemExit):
        call_command("wallet_audit", "--stripe-days", "1", stdout=out)

    # then the audit names the agency wallet and the charge
    assert f"platform: agency wallet {wallet.pk}: charge {charge.pk}: pi_unknown not found at Stripe" in out.getvalue()
    # and a balance that is not Σ entries is found too (the trigger is bypassed here on purpose)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")  # triggers off, this transaction only
        cursor.execute("UPDATE agency_wallets_agencywallet SET balance = balance + 1 WHERE id = %s", [wallet.pk])
        cursor.execute("SET LOCAL session_replication_role = origin")
    problems = [str(f) for f in agency_wallets_audit()]
    assert any(p.startswith(f"agency wallet {wallet.pk}: balance 12.000000 != sum of entries 11.000000")
               for p in problems), problems
