"""Writes for credit usage details: the rollups (called by the rating, inside its transaction) and spend alerts."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from typing import Literal

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from agencies.plans import PhoneProvider
from creditusage.models import (
    SPAN_DAYS,
    AgencyDayRollup,
    DetailsSharing,
    LedgerDayTotal,
    SpendAlert,
    SpendAlertPolicy,
    SubAccountMonthTotal,
    SubAccountProductSpanTotal,
    SubAccountSpanTotal,
    UsageMonthRollup,
    UsageRollup,
)
from creditusage.selectors import spend_alerts_paused
from people.models import User
from phone.models import SubAccountProvider
from phone.twilio_access import master_access, twilio_base_url, twilio_retry, twilio_timeout
from phone.usage_client import set_account_status
from rebill.mail import email_send
from subaccounts.audit import audit_record
from subaccounts.models import AuditEntry, SubAccount
from wallets.models import Wallet, WalletEntry

logger = logging.getLogger(__name__)

# One statement for any number of wallets: the entries after each wallet's last counted seq, folded into every
# rollup (usage per usage day and product, per month, per span of days with and without product, per agency day;
# every entry per created day, product and sign).
_ROLLUP_SQL = f"""
WITH entries AS MATERIALIZED (
    SELECT w.subaccount_id, e.wallet_id, e.created_at, e.day, e.product, e.amount, e.units_delta, e.cost_delta,
           e.usage_delta_id
    FROM unnest(%(wallet_ids)s::bigint[], %(after_seqs)s::bigint[]) AS b(wallet_id, after_seq)
    JOIN {WalletEntry._meta.db_table} e ON e.wallet_id = b.wallet_id AND e.seq > b.after_seq
    JOIN {Wallet._meta.db_table} w ON w.id = b.wallet_id
), new AS MATERIALIZED (
    SELECT subaccount_id, day, product, sum(units_delta) AS units, sum(cost_delta) AS cost,
           sum(-amount) AS revenue, count(*) AS entries
    FROM entries WHERE usage_delta_id IS NOT NULL
    GROUP BY subaccount_id, day, product
), by_day AS (
    INSERT INTO {UsageRollup._meta.db_table} AS r (subaccount_id, day, product, units, cost, revenue, entries)
    SELECT subaccount_id, day, product, units, cost, revenue, entries FROM new
    ON CONFLICT (subaccount_id, day, product) DO UPDATE SET
        units = r.units + EXCLUDED.units, cost = r.cost + EXCLUDED.cost, revenue = r.revenue + EXCLUDED.revenue,
        entries = r.entries + EXCLUDED.entries
), by_month AS (
    INSERT INTO {UsageMonthRollup._meta.db_table} AS m (subaccount_id, month, product, units, cost, revenue, entries)
    SELECT subaccount_id, date_trunc('month', day)::date, product, sum(units), sum(cost), sum(revenue), sum(entries)
    FROM new GROUP BY 1, 2, 3
    ON CONFLICT (month, subaccount_id, product) DO UPDATE SET
        units = m.units + EXCLUDED.units, cost = m.cost + EXCLUDED.cost, revenue = m.revenue + EXCLUDED.revenue,
        entries = m.entries + EXCLUDED.entries
), month_total AS (
    INSERT INTO {SubAccountMonthTotal._meta.db_table} AS t (subaccount_id, month, cost, revenue)
    SELECT subaccount_id, date_trunc('month', day)::date, sum(cost), sum(revenue) FROM new GROUP BY 1, 2
    ON CONFLICT (month, subaccount_id) DO UPDATE SET
        cost = t.cost + EXCLUDED.cost, revenue = t.revenue + EXCLUDED.revenue
), span_totals AS (
    INSERT INTO {SubAccountSpanTotal._meta.db_table} AS t (span_days, span_start, subaccount_id, revenue, cost)
    SELECT s.days, date_trunc('month', day)::date + (extract(day FROM day)::int - 1) / s.days * s.days,
           subaccount_id, sum(revenue), sum(cost)
    FROM new CROSS JOIN unnest(%(span_days)s::int[]) AS s(days) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (span_days, span_start, subaccount_id) DO UPDATE SET
        revenue = t.revenue + EXCLUDED.revenue, cost = t.cost + EXCLUDED.cost
), product_span_totals AS (
    INSERT INTO {SubAccountProductSpanTotal._meta.db_table} AS t
        (span_days, span_start, product, subaccount_id, revenue, cost)
    SELECT s.days, date_trunc('month', day)::date + (extract(day FROM day)::int - 1) / s.days * s.days,
           product, subaccount_id, sum(revenue), sum(cost)
    FROM new CROSS JOIN unnest(%(span_days)s::int[]) AS s(days) GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (span_days, span_start, product, subaccount_id) DO UPDATE SET
        revenue = t.revenue + EXCLUDED.revenue, cost = t.cost + EXCLUDED.cost
), day_totals AS (
    INSERT INTO {LedgerDayTotal._meta.db_table} AS t
        (wallet_id, day, product, sign, entries, amount, usage_cost, usage_amount)
    SELECT wallet_id, (created_at AT TIME ZONE 'UTC')::date, product, sign(amount)::smallint, count(*),
           sum(amount), coalesce(sum(cost_delta) FILTER (WHERE usage_delta_id IS NOT NULL), 0),
           coalesce(sum(-amount) FILTER (WHERE usage_delta_id IS NOT NULL), 0)
    FROM entries GROUP BY 1, 2, 3, 4
    ON CONFLICT (wallet_id, day, product, sign) DO UPDATE SET
        entries = t.entries + EXCLUDED.entries, amount = t.amount + EXCLUDED.amount,
        usage_cost = t.usage_cost + EXCLUDED.usage_cost, usage_amount = t.usage_amount + EXCLUDED.usage_amount
)
-- Shared by every sub-account of the agency: rows taken in (day, product) order, so writers queue, never deadlock.
INSERT INTO {AgencyDayRollup._meta.db_table} AS a (day, product, cost, revenue)
SELECT day, product, sum(cost), sum(revenue) FROM new GROUP BY 1, 2 ORDER BY 1, 2
ON CONFLICT (day, product) DO UPDATE SET cost = a.cost + EXCLUDED.cost, revenue = a.revenue + EXCLUDED.revenue
"""  # noqa: S608 — only our own table names are formatted in


def entry_rollups_add(*, wallet_id: int, after_seq: int) -> None:
    """Fold the entries appended after `after_seq` into the rollups (usage per usage day and product; every entry
    per created day, product and sign). Called by every writer of the ledger, in the transaction that appended
    them, with the wallet locked: the lock orders the writers, so no entry is counted twice or missed."""
    entries_rollups_add(after_seqs={wallet_id: after_seq})


def entries_rollups_add(*, after_seqs: dict[int, int]) -> None:
    """`entry_rollups_add` for many wallets at once (wallet id → last seq already counted): one statement for a
    whole rating batch, whatever its number of wallets."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("entry_rollups_add needs the appending transaction (and its wallet lock)")
    if not after_seqs:
        return
    wallet_ids = sorted(after_seqs)
    params = {"wallet_ids": wallet_ids, "after_seqs": [after_seqs[wallet_id] for wallet_id in wallet_ids],
              "span_days": list(SPAN_DAYS)}
    with connection.cursor() as cursor:
        cursor.execute(_ROLLUP_SQL, params)


# --- who may read See details ----------------------------------------------------------------------------------

def details_sharing() -> DetailsSharing:
    sharing, _ = DetailsSharing.objects.get_or_create(singleton=True)
    return sharing


@transaction.atomic
def details_sharing_update(*, account_users_may_view: bool, by: User) -> DetailsSharing:
    """Let (or stop letting) every sub-account's account users read its See details, read-only. Agency admins
    only (the view checks); audited agency-wide in the same transaction."""
    sharing = DetailsSharing.objects.select_for_update().get(pk=details_sharing().pk)
    before = sharing.account_users_may_view
    if before == account_users_may_view:
        return sharing
    sharing.account_users_may_view = account_users_may_view
    sharing.save()
    audit_record(subaccount=None, actor=by.email, action=AuditEntry.Action.DETAILS_SHARING_CHANGED,
                 before={"account_users_may_view": before}, after={"account_users_may_view": account_users_may_view})
    return sharing


# --- spend alerts (guard against SMS pumping and toll fraud) ---------------------------------------------------

TRAILING_DAYS = 30


def spend_alert_policy() -> SpendAlertPolicy:
    policy, _ = SpendAlertPolicy.objects.get_or_create(singleton=True)
    return policy


@transaction.atomic
def spend_alert_policy_update(*, enabled: bool, multiple: Decimal, floor: Decimal, auto_pause: bool,
                              by: User) -> SpendAlertPolicy:
    if multiple <= 1:
        raise ValidationError("The multiple must be above 1.")
    if floor < 0:
        raise ValidationError("The floor cannot be negative.")
    policy = SpendAlertPolicy.objects.select_for_update().get(pk=spend_alert_policy().pk)
    policy.enabled, policy.multiple, policy.floor, policy.auto_pause = enabled, multiple, floor, auto_pause
    policy.save()
    logger.info("Spend alert policy set by %s: %s, auto-pause %s", by.email, policy, auto_pause)
    return policy


def spend_alerts_check(*, day: date, subaccount_ids: list[int] | None = None) -> list[SpendAlert]:
    """Raise today's alerts: a sub-account whose rebilled spend on `day` (usage day, from the rollups) passes
    `multiple` × its average over the 30 days before and the floor. Once per sub-account and day (unique).
    `subaccount_ids` narrows the check to those (the ones just rated)."""
    policy = spend_alert_policy()
    if not policy.enabled:
        return []
    spend_on_day = Sum("revenue", filter=Q(day=day))
    before = Sum("revenue", filter=Q(day__lt=day))
    rollups = UsageRollup.objects.filter(day__gte=day - timedelta(days=TRAILING_DAYS), day__lte=day)
    if subaccount_ids is not None:
        rollups = rollups.filter(subaccount_id__in=subaccount_ids)
    rows = (rollups.order_by().values("subaccount_id").annotate(spend=spend_on_day, before=before)
            .filter(spend__gt=policy.floor))
    raised = []
    for row in rows:
        average = ((row["before"] or Decimal(0)) / TRAILING_DAYS).quantize(Decimal("0.000001"))
        if row["spend"] <= policy.multiple * average:
            continue
        alert = _spend_alert_raise(subaccount_id=row["subaccount_id"], day=day, spend=row["spend"],
                                   average=average, policy=policy)
        if alert is not None:
            raised.append(alert)
    return raised


@transaction.atomic
def _spend_alert_raise(*, subaccount_id: int, day: date, spend: Decimal, average: Decimal,
                       policy: SpendAlertPolicy) -> SpendAlert | None:
    alert, created = SpendAlert.objects.get_or_create(
        subaccount_id=subaccount_id, day=day,
        defaults={"spend": spend, "trailing_average": average, "multiple": policy.multiple, "floor": policy.floor,
                  "paused": policy.auto_pause})
    if not created:
        return None
    subaccount = SubAccount.objects.get(pk=subaccount_id)
    admins = list(User.objects.filter(role=User.Role.AGENCY_ADMIN, is_active=True).values_list("email", flat=True))
    body = (f"{subaccount.name} spent ${spend:.2f} on phone usage on {day:%Y-%m-%d}, more than "
            f"{policy.multiple}x its 30-day daily average (${average:.2f}) and above ${policy.floor:.2f}.\n"
            "This can be SMS pumping or toll fraud: check the sub-account's usage details.\n")
    if policy.auto_pause:
        body += "Its phone usage has been paused automatically, as your settings ask.\n"
        audit_record(subaccount=subaccount, actor="spend alert", action=AuditEntry.Action.SPEND_ALERT_PAUSED,
                     after={"day": day.isoformat(), "spend": str(spend), "trailing_average": str(average)})
    if admins:
        transaction.on_commit(partial(email_send, subject=f"Unusual phone spend: {subaccount.name}", body=body,
                                      to=admins))
    if policy.auto_pause:
        from creditusage.tasks import spend_alert_pause

        transaction.on_commit(partial(spend_alert_pause.delay, alert.pk))
    return alert


def spend_alerts_after_rating(*, subaccount_ids: list[int]) -> list[SpendAlert]:
    """Right after a rating: check today's spend of the sub-accounts just rated (their rollup rows only), so a
    spike is caught with the pull that brought it, not up to 15 minutes later."""
    if not subaccount_ids:
        return []
    return spend_alerts_check(day=timezone.now().date(), subaccount_ids=sorted(set(subaccount_ids)))


def subaccount_paused_by_spend_alert(*, subaccount_id: int) -> bool:
    return spend_alerts_paused(subaccount_id=subaccount_id).exists()


def _lc_phone_sid(subaccount_id: int) -> str:
    """The sub-account's LC Phone subaccount (the platform's master account owns it), or "" — an agency's own
    Twilio account is left alone, as the wallet's suspension does."""
    provider = SubAccountProvider.objects.filter(subaccount_id=subaccount_id).first()
    if provider is None or provider.provider != PhoneProvider.LC_PHONE:
        return ""
    return provider.lc_phone_account_sid or ""


def _account_status_set(*, account_sid: str, status: Literal["active", "suspended"]) -> None:
    master = master_access()
    set_account_status(account_sid=account_sid, status=status, auth_sid=master.auth_sid,
                       auth_token=master.auth_token, base_url=twilio_base_url(), timeout=twilio_timeout(),
                       retry=twilio_retry())


def spend_alert_pause_apply(*, alert_id: int) -> str:
    """Suspend the sub-account's LC Phone subaccount at the provider — unless an agency admin lifted the pause
    first. Called outside any transaction; a lift that lands during the call is honoured by resuming again."""
    alert = SpendAlert.objects.get(pk=alert_id)
    if alert.resumed_at is not None:
        return "resumed"
    sid = _lc_phone_sid(alert.subaccount_id)
    if not sid:
        return "skipped"
    _account_status_set(account_sid=sid, status="suspended")
    if SpendAlert.objects.filter(pk=alert_id, resumed_at__isnull=False).exists():
        from creditusage.tasks import spend_alert_resume

        spend_alert_resume.delay(alert.subaccount_id)
    return "suspended"


@transaction.atomic
def spend_alert_pause_lift(*, subaccount: SubAccount, by: User) -> list[SpendAlert]:
    """An agency admin resumes a sub-account a spend alert paused: every pause of it is lifted (audited in the
    same transaction); the provider is resumed by a job once this commits."""
    alerts = list(SpendAlert.objects.select_for_update().filter(subaccount=subaccount, paused=True,
                                                                resumed_at__isnull=True).order_by("pk"))
    if not alerts:
        raise ValidationError(f"{subaccount.name}'s phone usage is not paused by a spend alert.")
    now = timezone.now()
    SpendAlert.objects.filter(pk__in=[alert.pk for alert in alerts]).update(resumed_at=now, resumed_by=by.email)
    audit_record(subaccount=subaccount, actor=by.email, action=AuditEntry.Action.SPEND_ALERT_RESUMED,
                 before={"paused_by_alerts_of": [alert.day.isoformat() for alert in alerts]},
                 after={"paused_by_alerts_of": []})
    from creditusage.tasks import spend_alert_resume

    transaction.on_commit(partial(spend_alert_resume.delay, subaccount.pk))
    return alerts


def spend_alert_resume_apply(*, subaccount_id: int) -> str:
    """Make the LC Phone subaccount active again after a lifted pause — unless it must stay suspended for
    another reason: a newer alert paused it again, or its wallet is unpaid (balance ≤ 0, recharge failed)."""
    from wallets.services.suspension import _should_be_suspended as wallet_should_be_suspended  # wallets imports us

    if subaccount_paused_by_spend_alert(subaccount_id=subaccount_id):
        return "still paused"
    wallet = Wallet.objects.filter(subaccount_id=subaccount_id).first()
    if wallet is not None and wallet_should_be_suspended(wallet):
        return "kept suspended for non-payment"
    sid = _lc_phone_sid(subaccount_id)
    if not sid:
        return "skipped"
    _account_status_set(account_sid=sid, status="active")
    return "active"
