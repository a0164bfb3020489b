"""Building rebilled sub-accounts, usage deltas and cards for the wallet tests."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import stripe
from django.db import connection
from django.utils import timezone

from agencies.plans import PhoneProvider, Product
from billing.models import BillingProfile
from devservices.localstripe_server import answer_slowly
from phone.models import SubAccountProvider, UsageDelta, UsageLine
from rebilling.models import SubAccountRebilling
from subaccounts.models import SubAccount
from tests.billing.fixtures import ACCT_A, customer_with_card
from wallets.crashpoints import crash_arm, crash_disarm, crash_remaining
from wallets.models import Charge, Wallet

DECLINING_CARD = "4000000000000341"
NEEDS_AUTHENTICATION = "4000002760003184"  # its bank asks the card holder to confirm every payment
_sids = itertools.count(1)
CATEGORY = {Product.SMS: "sms-outbound-longcode", Product.MMS: "mms-outbound", Product.CALLS: "calls-outbound",
            Product.PHONE_NUMBERS: "phonenumbers-local", Product.OTHER: "carrier-fees"}


def rebill(subaccount: SubAccount, *, account_id: str, raw: stripe.StripeClient | None = None,
           card_number: str = "4242424242424242", switched_on_at: datetime | None = None,
           amount: str = "10", threshold: str = "10") -> SubAccountRebilling:
    """LC Phone, a card of the client's on the agency's account (a real one on localstripe when `raw` is given)
    and rebilling switched on."""
    SubAccountProvider.objects.update_or_create(
        subaccount=subaccount, defaults={"provider": PhoneProvider.LC_PHONE,
                                         "lc_phone_account_sid": f"AC{connection.schema_name[:4]}{next(_sids):028d}"})
    customer_id, pm_id = "cus_test", "pm_test"
    if raw is not None:
        customer, pm = customer_with_card(raw, account_id, number=card_number, name=subaccount.name)
        customer_id, pm_id = customer.id, pm.id
    BillingProfile.objects.update_or_create(subaccount=subaccount, defaults={
        "stripe_account_id": account_id, "stripe_customer_id": customer_id, "card_payment_method_id": pm_id,
        "card_brand": "visa", "card_last4": card_number[-4:]})
    rebilling, _ = SubAccountRebilling.objects.update_or_create(subaccount=subaccount, defaults={
        "switched_on": True, "switched_on_at": switched_on_at or timezone.now() - timedelta(hours=1),
        "auto_recharge_amount": Decimal(amount), "auto_recharge_threshold": Decimal(threshold)})
    return rebilling


def recharge_held_by_the_bank(client: SubAccount, *, raw: stripe.StripeClient) -> tuple[Wallet, Charge]:
    """The client's recharge below its threshold, on a card whose bank asks for authentication: failed, waiting."""
    from wallets.services import charge_execute, wallet_adjust, wallet_ensure, wallet_recharge_start

    rebill(client, account_id=ACCT_A, raw=raw, card_number=NEEDS_AUTHENTICATION)
    wallet = wallet_ensure(subaccount=client)
    wallet_adjust(wallet=wallet, amount=Decimal("2"), note="start", by="t")
    return wallet, charge_execute(charge_id=wallet_recharge_start(wallet_id=wallet.pk).pk)


def add_delta(subaccount: SubAccount, cost: Decimal | str, *, product: Product = Product.SMS,
              day: date | None = None, fetched_at: datetime | None = None, units: str = "1") -> UsageDelta:
    """One more revision of a usage line (created on first use), as the pull's upsert appends it."""
    now = fetched_at or timezone.now()
    day = day or now.date()
    provider = SubAccountProvider.objects.get(subaccount=subaccount)
    line, created = UsageLine.objects.get_or_create(
        subaccount=subaccount, day=day, category=CATEGORY[product], account_sid=provider.lc_phone_account_sid,
        defaults={"provider": PhoneProvider.LC_PHONE, "product": product, "usage_unit": "segments", "count": 0,
                  "units": 0, "twilio_price": 0, "cost": 0, "revision": 0, "fetched_at": now, "created_at": now,
                  "updated_at": now})
    cost = Decimal(cost)
    line.revision += 1
    line.cost += cost
    line.units += Decimal(units)
    line.fetched_at = now
    line.save(update_fields=["revision", "cost", "units", "fetched_at"])
    return UsageDelta.objects.create(line=line, revision=line.revision, units_delta=Decimal(units),
                                     unit_price=None, cost_delta=cost, currency="usd", fetched_at=now)


def truncate_wallets() -> None:
    """Committed test data out (entries are insert-only: DELETE is refused, TRUNCATE is the way out)."""
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE wallets_walletentry, wallets_refund, wallets_charge, wallets_wallet,"
                       " creditusage_ledgerdaytotal, creditusage_usagerollup, creditusage_usagemonthrollup,"
                       " creditusage_agencydayrollup, creditusage_subaccountspantotal,"
                       " creditusage_subaccountproductspantotal, creditusage_subaccountmonthtotal,"
                       " creditusage_spendalert")


@contextmanager
def stripe_crash_point_passes() -> Iterator[Callable[[], tuple[int, int]]]:
    """The crash points around a Stripe call (on, as in every test run) armed to kill nobody: each pass takes one,
    so what is left counts the passes through the point before Stripe and the one after."""
    points = ("before_stripe", "after_stripe")
    for point in points:
        crash_arm(point, 0)
    try:
        yield lambda: (-crash_remaining(points[0]), -crash_remaining(points[1]))
    finally:
        crash_disarm()


def stripe_409_while_in_flight(localstripe: str, *, path: str, sent_elsewhere: Callable[[], object],
                               sent_here: Callable[[], object]) -> stripe.APIError:
    """What `sent_here` raises while `sent_elsewhere`, the same request under the same key, waits for Stripe's answer
    (4 s: longer than the SDK's own retries of a 409 wait)."""
    answer_slowly(localstripe, method="POST", path=path, seconds=4)
    in_flight = threading.Thread(target=sent_elsewhere)
    in_flight.start()
    time.sleep(0.5)
    try:
        with pytest.raises(stripe.APIError) as raised:
            sent_here()
    finally:
        in_flight.join()
    return raised.value
