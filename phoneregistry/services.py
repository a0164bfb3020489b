"""Claiming a Twilio account SID for one sub-account, platform-wide."""

from __future__ import annotations

from datetime import date, datetime

from django.db import connection, transaction
from django.utils import timezone

from phoneregistry.models import TwilioAccountClaim, UsageAlert


class AccountSidTaken(Exception):
    """Another sub-account (of this agency or another) already bills this Twilio account."""


def _current_agency_id() -> int:
    return int(connection.tenant.pk)  # type: ignore[attr-defined]  # set by django-tenants


@transaction.atomic
def twilio_account_claim(*, account_sid: str, subaccount_id: int) -> TwilioAccountClaim:
    """Attach `account_sid` to this agency's sub-account; raises AccountSidTaken if someone else holds it.

    Runs in the caller's transaction, so the claim and the provider change commit together.
    """
    agency_id = _current_agency_id()
    claim, created = TwilioAccountClaim.objects.select_for_update().get_or_create(
        account_sid=account_sid, defaults={"agency_id": agency_id, "subaccount_id": subaccount_id})
    if created:
        return claim
    if (claim.agency_id, claim.subaccount_id) != (agency_id, subaccount_id):
        if claim.released_after is None or claim.released_after > timezone.now():
            raise AccountSidTaken(account_sid)
        claim.agency_id, claim.subaccount_id = agency_id, subaccount_id
    claim.released_after = None
    claim.save(update_fields=["agency", "subaccount_id", "released_after"])
    return claim


def twilio_account_release(*, account_sid: str, subaccount_id: int, after: datetime) -> None:
    """The sub-account stopped using `account_sid`: others may take it once `after` has passed."""
    TwilioAccountClaim.objects.filter(account_sid=account_sid, agency_id=_current_agency_id(),
                                      subaccount_id=subaccount_id).update(released_after=after)


def usage_alert_raise(*, subaccount_id: int, account_sid: str, kind: str, day: date, detail: str,
                      category: str = "") -> UsageAlert:
    """Record (or refresh) an alert for platform staff about this agency's sub-account."""
    alert, _ = UsageAlert.objects.update_or_create(
        account_sid=account_sid, kind=kind, day=day, category=category,
        defaults={"agency_id": _current_agency_id(), "subaccount_id": subaccount_id, "detail": detail[:500]})
    return alert
