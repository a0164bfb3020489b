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


def _failed_wallet_at_zero(subaccount) -> Wallet:
    from wallets.services import wallet_adjust, wallet_ensure

    wallet = wallet_ensure(subaccount=subaccount)
    wallet_adjust(wallet=wallet, amount=Decimal("-1"), note="usage beyond the balance", by="t")
    Wallet.objects.filter(pk=wallet.pk).update(recharge_state=Wallet.RechargeState.FAILED)
    return wallet


def test_the_agencys_own_twilio_account_is_suspended_only_when_it_is_a_subaccount(world, db, twilio):
    from phone.crypto import secret_encrypt

    # given two clients on the agency's own Twilio: one on a subaccount of the agency's main account, one on the
    # main account itself; both at a balance ≤ 0 with the recharge failed
    main_sid, sub_sid = "AC" + "4" * 32, "AC" + "5" * 32
    create_account(twilio.url, main_sid, "a" * 32)
    create_account(twilio.url, sub_sid, "b" * 32, parent_sid=main_sid)
    with tenant_context(world.a.agency):
        on_sub, on_main = world.a.subaccounts
        for client, sid, token in ((on_sub, sub_sid, "b" * 32), (on_main, main_sid, "a" * 32)):
            SubAccountProvider.objects.create(subaccount=client, provider="twilio", twilio_account_sid=sid,
                                              twilio_auth_token_encrypted=secret_encrypt(token),
                                              twilio_auth_token_last4=token[-4:])
        sub_wallet, main_wallet = _failed_wallet_at_zero(on_sub), _failed_wallet_at_zero(on_main)

        # when suspension is applied to both
        outcomes = (wallet_suspension_apply(wallet_id=sub_wallet.pk), wallet_suspension_apply(wallet_id=main_wallet.pk))

        # then Twilio says the subaccount is suspended and the main account never is
        assert outcomes == ("suspended", "skipped")
        assert account_status(twilio.url, sub_sid) == "suspended"
        assert account_status(twilio.url, main_sid) == "active"
        main_wallet.refresh_from_db()
        assert main_wallet.suspended_at is None
