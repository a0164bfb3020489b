"""The wallet audit (daily task and `manage.py wallet_audit`): balance == Σ entries for every wallet, the chain
unbroken, one credit per succeeded charge, and — when asked — each succeeded charge as Stripe has it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import stripe
from django.db.models import Count, Max, Q, Sum

from stripe_connect.money import to_minor_units
from stripe_connect.selectors import NotConnected, agency_stripe, current_agency
from wallets.models import Charge, Wallet, WalletEntry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditFinding:
    wallet_id: int
    problem: str

    def __str__(self) -> str:
        return f"wallet {self.wallet_id}: {self.problem}"


def wallets_audit(*, stripe_since: datetime | None = None) -> list[AuditFinding]:
    findings: list[AuditFinding] = []
    sums = {row["wallet_id"]: row for row in WalletEntry.objects.values("wallet_id").annotate(
        total=Sum("amount"), entries=Count("pk"), last_seq=Max("seq"))}
    latest = dict(WalletEntry.objects.order_by("wallet_id", "-seq").distinct("wallet_id")
                  .values_list("wallet_id", "balance_after"))
    for wallet in Wallet.objects.order_by("pk"):
        row = sums.get(wallet.pk, {"total": 0, "entries": 0, "last_seq": 0})
        if wallet.balance != (row["total"] or 0):
            findings.append(AuditFinding(wallet.pk, f"balance {wallet.balance} != sum of entries {row['total']}"))
        if row["entries"] != (row["last_seq"] or 0):
            findings.append(AuditFinding(wallet.pk, f"{row['entries']} entries but last seq {row['last_seq']}"))
        if wallet.pk in latest and latest[wallet.pk] != wallet.balance:
            findings.append(AuditFinding(wallet.pk, f"latest balance_after {latest[wallet.pk]} != {wallet.balance}"))
    credits = Q(entries__kind__in=[WalletEntry.Kind.RECHARGE, WalletEntry.Kind.MANUAL_TOP_UP])
    for charge in Charge.objects.annotate(credits=Count("entries", filter=credits),
                                          credited=Sum("entries__amount", filter=credits)).order_by("pk"):
        succeeded = charge.status == Charge.Status.SUCCEEDED
        if succeeded and (charge.credits != 1 or charge.credited != charge.amount):  # type: ignore[attr-defined]
            findings.append(AuditFinding(charge.wallet_id, f"succeeded charge {charge.pk} credited "
                                         f"{charge.credits} time(s)"))  # type: ignore[attr-defined]
        if not succeeded and charge.credits:  # type: ignore[attr-defined]
            findings.append(AuditFinding(charge.wallet_id, f"charge {charge.pk} is {charge.status} but credited"))
    if stripe_since is not None:
        findings += _stripe_findings(since=stripe_since)
    for finding in findings:
        logger.error("Wallet audit: %s", finding)
    return findings


def _stripe_findings(*, since: datetime) -> list[AuditFinding]:
    try:
        api = agency_stripe(agency=current_agency())
    except NotConnected:
        return []
    findings = []
    for charge in Charge.objects.filter(status=Charge.Status.SUCCEEDED, completed_at__gte=since,
                                        stripe_account_id=api.account_id).order_by("pk"):
        try:
            intent = api.payment_intent_retrieve(charge.payment_intent_id)
        except stripe.InvalidRequestError:
            findings.append(AuditFinding(charge.wallet_id, f"charge {charge.pk}: {charge.payment_intent_id} "
                                         "not found at Stripe"))
            continue
        if intent.status != "succeeded" or int(intent.amount) != to_minor_units(charge.amount, charge.currency):
            findings.append(AuditFinding(charge.wallet_id, f"charge {charge.pk}: Stripe says {intent.status} "
                                         f"{intent.amount}"))
    return findings
