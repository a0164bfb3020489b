"""Balance ≤ 0 and the recharge failed: the LC Phone subaccount is suspended at the (fake) Twilio; usage keeps
being debited; a new card and a successful charge resume it."""

from decimal import Decimal

from django.core import mail
from django_tenants.utils import tenant_context

from devservices.fake_twilio import account_status, create_account
from phone.models import SubAccountProvider
from tests.billing.fixtures import ACCT_A, card, on
from tests.phone.conftest import MASTER_SID
from tests.wallets.helpers import DECLINING_CARD, add_delta, rebill
from wallets.models import Wallet
from wallets.services import charge_execute, wallet_rate, wallet_recharge_start, wallets_audit
from wallets.services.suspension import wallet_card_replaced, wallet_suspension_apply


def test_suspended_at_zero_after_a_decline_and_resumed_after_a_new_card_pays(
        world, connected, raw_stripe, twilio, django_capture_on_commit_callbacks):
    with tenant_context(world.a.agency):
        # given an LC Phone client with a declining card and usage beyond its balance
        client = world.a.subaccounts[0]
        rebill(client, account_id=ACCT_A, raw=raw_stripe, card_number=DECLINING_CARD)
        sid = SubAccountProvider.objects.get(subaccount=client).lc_phone_account_sid
        create_account(twilio.url, sid, "t" * 32, parent_sid=MASTER_SID)
        other = world.a.subaccounts[1]
        rebill(other, account_id=ACCT_A)
        other_sid = SubAccountProvider.objects.get(subaccount=other).lc_phone_account_sid
        create_account(twilio.url, other_sid, "u" * 32, parent_sid=MASTER_SID)
        add_delta(client, "3.00")
        wallet = Wallet.objects.get(pk=wallet_rate(subaccount_id=client.pk).wallet_id)

        # when the recharge is declined
        with django_capture_on_commit_callbacks() as callbacks:
            charge = wallet_recharge_start(wallet_id=wallet.pk)
            charge_execute(charge_id=charge.pk)
        assert len(callbacks) == 2  # the email and the suspension job
        wallet.refresh_from_db()
        assert wallet.balance == Decimal("-3.15") and wallet.recharge_failed
        assert wallet_suspension_apply(wallet_id=wallet.pk) == "suspended"
        assert wallet_suspension_apply(wallet_id=wallet.pk) == "unchanged"

        # then its LC Phone subaccount is suspended at Twilio, and no other account is
        assert account_status(twilio.url, sid) == "suspended"
        assert account_status(twilio.url, other_sid) == "active"
        # and usage keeps being debited
        add_delta(client, "1.00")
        wallet_rate(subaccount_id=client.pk)
        wallet.refresh_from_db()
        assert wallet.balance == Decimal("-4.20")

        # when the client adds a working card and it is charged
        pm = raw_stripe.v1.payment_methods.create(params={"type": "card", "card": card()}, options=on(ACCT_A))
        raw_stripe.v1.payment_methods.attach(pm.id, params={"customer": client.billing_profile.stripe_customer_id},
                                             options=on(ACCT_A))
        client.billing_profile.card_payment_method_id = pm.id
        client.billing_profile.save()
        with django_capture_on_commit_callbacks():
            charge = wallet_card_replaced(subaccount_id=client.pk)
            charge_execute(charge_id=charge.pk)
        wallet.refresh_from_db()
        assert wallet.balance == Decimal("10") and not wallet.recharge_failed

        # then it is resumed
        assert wallet_suspension_apply(wallet_id=wallet.pk) == "active"
        assert account_status(twilio.url, sid) == "active"
        wallet.refresh_from_db()
        assert wallet.suspended_at is None
        assert wallets_audit() == []
    assert mail.outbox == []  # captured, not executed above
