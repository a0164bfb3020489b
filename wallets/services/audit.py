"""The wallet audit (daily tasks and `manage.py wallet_audit`): for every wallet — a client's with its agency, an
agency's with the platform — balance == Σ entries, the chain unbroken, one credit per succeeded charge, and, when
asked, each succeeded charge as Stripe has it."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import stripe
from django.db.models import Count, Max, Q, QuerySet, Sum

from stripe_connect.gateway import StripeCalls
from stripe_connect.money import to_minor_units
from stripe_connect.selectors import NotConnected, agency_stripe, current_agency
from wallets.models import Charge, Wallet, WalletEntry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditFinding:
    wallet_id: int
    problem: str
    ledger: str = "wallet"

    def __str__(self) -> str:
        return f"{self.ledger} {self.wallet_id}: {self.problem}"


def ledger_audit(*, wallets: QuerySet[Any], entries: QuerySet[Any], charges: QuerySet[Any],
                 credit_kinds: Iterable[str], api: StripeCalls | None, stripe_since: datetime | None,
                 ledger: str, stripe_charges: QuerySet[Any] | None = None) -> list[AuditFinding]:
    """The checks, for one kind of wallet: `entries` and `charges` are those of `wallets`; the succeeded ones of
    `stripe_charges` (default: `charges`) are checked on `api`, the account they were made on (None: not checked)."""
    findings: list[AuditFinding] = []

    def found(wallet_id: int, problem: str) -> None:
        findings.append(AuditFinding(wallet_id, problem, ledger))

    sums = {row["wallet_id"]: row for row in entries.values("wallet_id").annotate(
        total=Sum("amount"), entries=Count("pk"), last_seq=Max("seq"))}
    latest = dict(entries.order_by("wallet_id", "-seq").distinct("wallet_id").values_list("wallet_id", "balance_after"))
    for wallet in wallets.order_by("pk"):
        row = sums.get(wallet.pk, {"total": 0, "entries": 0, "last_seq": 0})
        if wallet.balance != (row["total"] or 0):
            found(wallet.pk, f"balance {wallet.balance} != sum of entries {row['total']}")
        if row["entries"] != (row["last_seq"] or 0):
            found(wallet.pk, f"{row['entries']} entries but last seq {row['last_seq']}")
        if wallet.pk in latest and latest[wallet.pk] != wallet.balance:
            found(wallet.pk, f"latest balance_after {latest[wallet.pk]} != {wallet.balance}")
    credits = Q(entries__kind__in=list(credit_kinds))
    for charge in charges.annotate(credits=Count("entries", filter=credits),
                                   credited=Sum("entries__amount", filter=credits)).order_by("pk"):
        succeeded = charge.status == Charge.Status.SUCCEEDED
        if succeeded and (charge.credits != 1 or charge.credited != charge.amount):
            found(charge.wallet_id, f"succeeded charge {charge.pk} credited {charge.credits} time(s)")
        if not succeeded and charge.credits:
            found(charge.wallet_id, f"charge {charge.pk} is {charge.status} but credited")
    if stripe_since is not None and api is not None:
        on_stripe = charges if stripe_charges is None else stripe_charges
        for charge in on_stripe.filter(status=Charge.Status.SUCCEEDED, completed_at__gte=stripe_since).order_by("pk"):
            try:
                intent = api.payment_intent_retrieve(charge.payment_intent_id)
            except stripe.InvalidRequestError:
                found(charge.wallet_id, f"charge {charge.pk}: {charge.payment_intent_id} not found at Stripe")
                continue
            if intent.status != "succeeded" or int(intent.amount) != to_minor_units(charge.amount, charge.currency):
                found(charge.wallet_id, f"charge {charge.pk}: Stripe says {intent.status} {intent.amount}")
    for finding in findings:
        logger.error("Wallet audit: %s", finding)
    return findings


def wallets_audit(*, stripe_since: datetime | None = None) -> list[AuditFinding]:
    """Every client wallet of the current agency (succeeded charges checked on its current Stripe account)."""
    try:
        api: StripeCalls | None = agency_stripe(agency=current_agency())
    except NotConnected:
        api = None
    checked = Charge.objects.filter(stripe_account_id=api.account_id) if api is not None else None
    return ledger_audit(wallets=Wallet.objects.all(), entries=WalletEntry.objects.all(), charges=Charge.objects.all(),
                        credit_kinds=[WalletEntry.Kind.RECHARGE, WalletEntry.Kind.MANUAL_TOP_UP], api=api,
                        stripe_since=stripe_since, ledger="wallet", stripe_charges=checked)
