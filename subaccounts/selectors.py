"""Reads about sub-accounts, already scoped to what the caller may see."""

from typing import Any

from django.db.models import Count, Q, QuerySet
from django.http import Http404

from people.models import User
from subaccounts.models import Membership, SubAccount


def subaccounts_for_agency_staff(*, user: User) -> QuerySet[SubAccount]:
    if not user.is_agency_staff:
        return SubAccount.objects.none()
    return SubAccount.objects.annotate(
        account_admin_count=Count("memberships", filter=Q(memberships__role=Membership.Role.ACCOUNT_ADMIN))
    ).order_by("name", "pk")


def subaccount_for_agency_staff(*, user: User, subaccount_id: int) -> SubAccount:
    subaccount = subaccounts_for_agency_staff(user=user).filter(pk=subaccount_id).first()
    if subaccount is None:
        raise Http404("No such sub-account")
    return subaccount


# The sub-account's one-to-one rows that Manage Client's sections show: billing profile, phone provider, rebilling
# switch and wallet.
MANAGE_CLIENT_ROWS = ("billing_profile", "phone_provider", "rebilling", "wallet")
# Set by subaccount_for_manage_client on the instance it returns: the rows read with the sub-account itself.
_ROWS_READ_WITH_IT = "_rows_read_with_it"


def subaccount_for_manage_client(*, user: User, subaccount_id: int) -> SubAccount:
    """subaccount_for_agency_staff, with the rows Manage Client shows read in the same query (one_to_one_row)."""
    subaccount = (subaccounts_for_agency_staff(user=user).select_related(*MANAGE_CLIENT_ROWS)
                  .filter(pk=subaccount_id).first())
    if subaccount is None:
        raise Http404("No such sub-account")
    # A copy of what the query read: the instance's own cache is rewritten by any row built on it later.
    setattr(subaccount, _ROWS_READ_WITH_IT, {
        name: SubAccount._meta.get_field(name).get_cached_value(subaccount)  # type: ignore[union-attr]
        for name in MANAGE_CLIENT_ROWS})
    return subaccount


def one_to_one_row(*, subaccount: SubAccount, related_name: str) -> Any:
    """The sub-account's row behind a one-to-one relation (or None): as read with it by
    subaccount_for_manage_client, otherwise read now. Only that reading is trusted, never whatever a service left
    in the instance's cache (a row it created, perhaps rolled back since, or one updated after through a query)."""
    read_with_it: dict[str, Any] = getattr(subaccount, _ROWS_READ_WITH_IT, {})
    if related_name in read_with_it:
        return read_with_it[related_name]
    related_model = SubAccount._meta.get_field(related_name).related_model
    return related_model._default_manager.filter(subaccount=subaccount).first()  # type: ignore[union-attr]


def subaccounts_for_member(*, user: User) -> QuerySet[SubAccount]:
    return SubAccount.objects.filter(memberships__user=user).order_by("name", "pk")


def membership_for_member(*, user: User, subaccount_id: int) -> Membership:
    """The caller's own membership of that sub-account, or 404: ids of other sub-accounts don't exist for them."""
    membership = (
        Membership.objects.select_related("subaccount").filter(user=user, subaccount_id=subaccount_id).first()
    )
    if membership is None:
        raise Http404("No such sub-account")
    return membership


def subaccount_memberships(*, subaccount: SubAccount) -> QuerySet[Membership]:
    return subaccount.memberships.select_related("user").order_by("role", "user__email")


def subaccount_account_admins(*, subaccount: SubAccount) -> QuerySet[User]:
    # Only the client's own people: agency staff are never account admins of a client (DESIGN §13).
    return User.objects.filter(
        memberships__subaccount=subaccount, memberships__role=Membership.Role.ACCOUNT_ADMIN, is_active=True,
        role=User.Role.CLIENT,
    ).order_by("email")
