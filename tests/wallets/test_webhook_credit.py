"""The webhook's `payment_intent.succeeded` credits the charge when it arrives first, and only once."""

from decimal import Decimal

from django_tenants.utils import tenant_context

from stripe_connect.gateway import AgencyStripe
from tests.billing.fixtures import ACCT_A, event_payload, post_webhook, sign
from tests.wallets.helpers import rebill
from wallets.models import Charge, Wallet
from wallets.services import wallet_adjust, wallet_ensure, wallet_recharge_start, wallets_audit


def test_the_webhook_credits_a_charge_whose_answer_we_never_recorded_once(world, connected, raw_stripe):
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[0]
        rebill(client, account_id=ACCT_A, raw=raw_stripe)
        wallet = wallet_ensure(subaccount=client)
        wallet_adjust(wallet=wallet, amount=Decimal("1"), note="start", by="t")
        # given Stripe charged but our worker died before recording it
        charge = wallet_recharge_start(wallet_id=wallet.pk)
        intent = AgencyStripe(ACCT_A).payment_intent_create_off_session(
            amount=charge.amount, currency="usd", customer_id=charge.stripe_customer_id,
            payment_method_id=charge.payment_method_id,
            metadata={"rebill_charge": charge.idempotency_key, "rebill_wallet": str(wallet.pk)},
            idempotency_key=charge.idempotency_key)
    # when Stripe's event arrives, twice (and the second as a different event id)
    for event_id in ("evt_wallet_1", "evt_wallet_1", "evt_wallet_2"):
        payload = event_payload(event_id=event_id, event_type="payment_intent.succeeded",
                                obj={"id": intent.id, "object": "payment_intent"}, account=ACCT_A)
        assert post_webhook(payload, sign(payload)).status_code == 200
    # then the wallet is credited once
    with tenant_context(world.a.agency):
        charge.refresh_from_db()
        assert charge.status == Charge.Status.SUCCEEDED
        assert Wallet.objects.get(pk=wallet.pk).balance == Decimal("11")
        assert wallets_audit() == []
    with tenant_context(world.b.agency):
        assert not Charge.objects.exists()
