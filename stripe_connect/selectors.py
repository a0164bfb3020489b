"""Reads about agencies' connected Stripe accounts."""

from __future__ import annotations

from django.db import connection

from agencies.models import Agency
from stripe_connect.gateway import AgencyStripe
from stripe_connect.models import ConnectedAccount


class NotConnected(Exception):
    """The agency has not connected its Stripe account."""

    def __init__(self, message: str = "Connect your agency's Stripe account first (Settings → Stripe).") -> None:
        super().__init__(message)


def current_agency() -> Agency:
    """The agency whose schema this connection is in (never the platform)."""
    tenant = getattr(connection, "tenant", None)
    if not isinstance(tenant, Agency) or tenant.is_platform:
        raise RuntimeError("Not inside an agency's schema")
    return tenant


def connected_account_for_agency(*, agency: Agency) -> ConnectedAccount | None:
    return ConnectedAccount.objects.filter(agency=agency).first()


def agency_for_stripe_account(*, account_id: str) -> Agency | None:
    connected = ConnectedAccount.objects.select_related("agency").filter(account_id=account_id).first()
    return connected.agency if connected else None


def agency_stripe(*, agency: Agency) -> AgencyStripe:
    """Stripe calls on the agency's own account; raises NotConnected."""
    connected = connected_account_for_agency(agency=agency)
    if connected is None:
        raise NotConnected()
    return AgencyStripe(connected.account_id)
